//! When billing cannot answer (the database is unreachable): 503 by default; with fail-open,
//! every gated route passes and each pass is logged.

use std::sync::Arc;

use billing_gate::LocalBackend;
use billing_ports::ManualClock;

use crate::helpers::logs;
use crate::support::{now, product_app, spawn_product};

/// Nothing listens on port 1: every connection is refused at once.
const UNREACHABLE: &str = "postgres://postgres@127.0.0.1:1/billing_unreachable";

/// Every gated route of the example product.
pub const ROUTES: [(&str, &str); 4] = [
    ("GET", "/reports/advanced"),
    ("GET", "/support/priority"),
    ("GET", "/domains"),
    ("POST", "/generate"),
];

#[actix_web::test]
async fn an_unreachable_billing_database_fails_closed_by_default_and_open_when_told() {
    let logs = logs();
    let user = format!("user_unreachable_{}", std::process::id());
    let app = product_app(UNREACHABLE, Arc::new(ManualClock::new(now())));

    let closed = spawn_product(LocalBackend::new(app.clone()), false).await;
    for (method, path) in ROUTES {
        let answer = closed.call(method, path, Some(&user), &[]).await;
        assert_eq!(
            (answer.status, answer.code()),
            (503, "billing_unavailable"),
            "{method} {path}"
        );
        // The cause is logged, never answered.
        assert!(!answer.body.to_string().contains("127.0.0.1"));
    }
    let lines_with = |text: &str| {
        let lines = logs.lines_with(&user);
        lines.iter().filter(|l| l.contains(text)).count()
    };
    assert_eq!(lines_with("refuses the request (503)"), ROUTES.len());
    // No user is still 401, whatever billing's state.
    assert_eq!(closed.call("GET", "/domains", None, &[]).await.status, 401);

    let open = spawn_product(LocalBackend::new(app), true).await;
    assert!(!logs.lines_with("the billing gate fails open").is_empty());
    for (method, path) in ROUTES {
        let answer = open.call(method, path, Some(&user), &[]).await;
        assert_eq!(answer.status, 200, "{method} {path}: {:?}", answer.body);
        assert_eq!(answer.body["failed_open"], true);
    }
    assert_eq!(
        lines_with("fails open and lets the request through"),
        ROUTES.len()
    );
    closed.handle.stop(true).await;
    open.handle.stop(true).await;
}
