#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;

use super::sources::SETTINGS;
use super::*;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn from_env(pairs: &[(&str, &str)]) -> Result<Config, InvalidConfig> {
    Config::read(None, lookup(pairs))
}

/// A config file holding `text`, removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("billing-config-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const PLANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans.toml");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../billing.example.toml");
const REQUIRED: [(&str, &str); 4] = [
    ("STRIPE_SECRET_KEY", "sk_test_123"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
    ("BILLING_API_KEYS", "0123456789abcdef"),
    ("PLANS_FILE", PLANS),
];

/// The environment with the required settings and `more`.
fn required_and(more: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    lookup(&[&REQUIRED[..], more].concat())
}

#[test]
fn every_problem_is_listed_at_once() {
    let error = from_env(&[
        ("STRIPE_SECRET_KEY", "pk_live_oops"),
        ("BILLING_API_KEYS", "short"),
        ("BIND_ADDR", "localhost"),
        ("DATABASE_URL", "mysql://x"),
        ("EVENT_RETENTION_DAYS", "soon"),
        ("CHANGE_RETENTION_DAYS", "0"),
        ("DATABASE_RANDOM_PAGE_COST", "0"),
        ("PLANS_FILE", "/nonexistent/plans.toml"),
    ])
    .unwrap_err();
    let text = error.to_string();
    for expected in [
        "STRIPE_SECRET_KEY must start with sk_",
        "STRIPE_WEBHOOK_SECRET is required",
        "BILLING_API_KEYS entry 1 is shorter",
        "BIND_ADDR",
        "DATABASE_URL must start with",
        "EVENT_RETENTION_DAYS must be a whole number",
        "CHANGE_RETENTION_DAYS",
        "DATABASE_RANDOM_PAGE_COST must be a number from 0.1 to 100, or database",
        "PLANS_FILE /nonexistent/plans.toml",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert_eq!(error.0.len(), 9, "{text}");
    assert!(
        !text.contains("pk_live_oops"),
        "a secret leaked into the error"
    );
}

#[test]
fn a_complete_environment_is_accepted_with_defaults() {
    let config = from_env(&[
        ("STRIPE_SECRET_KEY", "sk_test_123"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_new, whsec_old"),
        ("BILLING_API_KEYS", "0123456789abcdef,fedcba9876543210"),
        ("PLANS_FILE", PLANS),
        ("GRACE_DAYS", "7"),
    ])
    .unwrap();
    let server = &config.server;
    assert_eq!(server.stripe.webhook_secrets.len(), 2);
    assert_eq!(server.api_keys.len(), 2);
    assert_eq!(
        server.database.url.expose_secret(),
        "sqlite://data/billing.sqlite"
    );
    assert_eq!(server.bind_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(server.webhook_body_limit, 1024 * 1024);
    assert_eq!(server.event_retention, TimeDelta::days(30));
    assert_eq!(server.change_retention, TimeDelta::days(30));
    assert_eq!(
        server.database.pool,
        StoreSettings {
            database_thread: true,
            ..StoreSettings::new(16)
        }
    );
    assert_eq!(server.limits.request_timeout, Duration::from_secs(5));
    assert_eq!(server.limits.max_connections, 1024);
    assert_eq!(server.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(server.stripe.api_base, None);
    assert!(!server.stripe.refetch);
    assert_eq!(config.log_format, LogFormat::Pretty);
    assert!(
        server
            .catalog
            .tiers()
            .iter()
            .all(|t| t.grace_period == TimeDelta::days(7))
    );
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("sk_test_123")
            && !debug.contains("whsec_new")
            && !debug.contains("0123456789abcdef")
    );
}

#[test]
fn a_pool_without_connections_and_zero_time_limits_are_refused() {
    let error = from_env(&[
        ("STRIPE_SECRET_KEY", "sk_test_123"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
        ("BILLING_API_KEYS", "0123456789abcdef"),
        ("PLANS_FILE", PLANS),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("DATABASE_POOL_TIMEOUT_MS", "0"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "soon"),
        ("HTTP_REQUEST_TIMEOUT_MS", "0"),
        ("HTTP_MAX_CONNECTIONS", "0"),
        ("HTTP_WORKERS", "0"),
    ])
    .unwrap_err();
    let text = error.to_string();
    for expected in [
        "DATABASE_MAX_CONNECTIONS must be a whole number from 1 to 1000",
        "DATABASE_POOL_TIMEOUT_MS must be a whole number from 1 to 600000",
        "DATABASE_STATEMENT_TIMEOUT_MS must be a whole number from 1 to 600000",
        "HTTP_REQUEST_TIMEOUT_MS must be a whole number from 100 to 600000",
        "HTTP_MAX_CONNECTIONS must be a whole number from 1 to 100000",
        "HTTP_WORKERS must be a whole number from 1 to 1024",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert_eq!(error.0.len(), 6, "{text}");
}

#[test]
fn the_time_limits_are_read_in_milliseconds() {
    let config = from_env(&[
        ("STRIPE_SECRET_KEY", "sk_test_123"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
        ("BILLING_API_KEYS", "0123456789abcdef"),
        ("PLANS_FILE", PLANS),
        ("DATABASE_MAX_CONNECTIONS", "4"),
        ("DATABASE_POOL_TIMEOUT_MS", "250"),
        ("DATABASE_CONNECT_TIMEOUT_MS", "750"),
        ("DATABASE_RECYCLE_TIMEOUT_MS", "100"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "1500"),
        ("DATABASE_VERIFY_IDLE_AFTER_MS", "0"),
        ("DATABASE_THREAD", "false"),
        ("DATABASE_RANDOM_PAGE_COST", "database"),
        ("HTTP_REQUEST_TIMEOUT_MS", "2000"),
        ("HTTP_MAX_CONNECTIONS", "64"),
        ("HTTP_WORKERS", "1"),
        ("SHUTDOWN_TIMEOUT_SECS", "5"),
    ])
    .unwrap();
    assert_eq!(
        config.server.database.pool,
        StoreSettings {
            max_connections: 4,
            pool_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(750),
            recycle_timeout: Duration::from_millis(100),
            statement_timeout: Duration::from_millis(1500),
            verify_idle_after: Duration::ZERO,
            database_thread: false,
            random_page_cost: None,
        }
    );
    assert_eq!(config.server.limits.request_timeout, Duration::from_secs(2));
    assert_eq!(config.server.limits.max_connections, 64);
    assert_eq!(config.server.limits.workers, 1);
    assert_eq!(config.server.shutdown_timeout, Duration::from_secs(5));
}

#[test]
fn the_file_sets_values_and_the_environment_wins_over_it() {
    let file = ConfigFile::new(
        "layers",
        r#"
            stripe_secret_key = "sk_test_from_file"
            stripe_webhook_secret = ["whsec_new", "whsec_old"]
            billing_api_keys = "0123456789abcdef, fedcba9876543210"
            plans_file = "/nonexistent/overridden/by/the/environment.toml"
            database_max_connections = 4
            http_max_connections = 64
            stripe_refetch = true
            log_format = "json"
            bind_addr = "127.0.0.1:9090"
        "#,
    );
    let env = lookup(&[
        ("PLANS_FILE", PLANS),
        ("HTTP_MAX_CONNECTIONS", "128"),
        ("BIND_ADDR", "  "), // blank: unset, so the file's value stands
    ]);
    let config = Config::read(Some(&file.0), env).unwrap();
    let server = &config.server;
    assert_eq!(
        server.stripe.secret_key.expose_secret(),
        "sk_test_from_file"
    );
    let secrets: Vec<&str> = server
        .stripe
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(secrets, ["whsec_new", "whsec_old"]);
    assert_eq!(server.api_keys.len(), 2);
    assert_eq!(server.database.pool.max_connections, 4);
    assert_eq!(server.limits.max_connections, 128, "the environment wins");
    assert!(server.stripe.refetch);
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(server.bind_addr.to_string(), "127.0.0.1:9090");
    assert_eq!(
        server.database.pool.pool_timeout,
        Duration::from_secs(5),
        "the default stands where no layer sets a value"
    );
}

#[test]
fn a_bad_value_in_the_file_names_the_file_and_unknown_keys_are_refused() {
    let file = ConfigFile::new(
        "bad",
        "database_max_connections = 0\nDATABASE_URL = \"sqlite://x\"\ndatabse_url = \"x\"\n\
         bind_addr = [\"127.0.0.1:1\", 2]\n",
    );
    let env = required_and(&[]);
    let error = Config::read(Some(&file.0), env).unwrap_err();
    let text = error.to_string();
    let place = file.0.display().to_string();
    for expected in [
        format!("DATABASE_MAX_CONNECTIONS must be a whole number from 1 to 1000 (set in {place})"),
        format!("config file {place}: unknown key `DATABASE_URL`"),
        format!("config file {place}: unknown key `databse_url`"),
        format!("BIND_ADDR (set in {place}) must be a string, a number, a boolean or a list"),
    ] {
        assert!(
            text.contains(&expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert_eq!(error.0.len(), 4, "{text}");
}

#[test]
fn a_file_that_is_not_toml_is_reported_by_place_without_its_text() {
    let file = ConfigFile::new(
        "syntax",
        "bind_addr = \"127.0.0.1:8080\"\nstripe_secret_key = \"sk_live_TopSecret\n",
    );
    let env = lookup(&[("STRIPE_WEBHOOK_SECRET", "whsec_1")]);
    let error = Config::read(Some(&file.0), env).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "config file {}: not valid TOML at line 2",
            file.0.display()
        )),
        "{text}"
    );
    assert!(!text.contains("TopSecret"), "a secret leaked: {text}");
    // The other layers are still checked: every problem at once.
    assert!(text.contains("BILLING_API_KEYS is required"), "{text}");

    let missing = Config::read(Some(Path::new("/nonexistent/billing.toml")), lookup(&[]));
    let text = missing.unwrap_err().to_string();
    assert!(
        text.contains("config file /nonexistent/billing.toml:"),
        "{text}"
    );
}

#[test]
fn secrets_from_the_file_stay_out_of_debug() {
    let file = ConfigFile::new(
        "secrets",
        "stripe_secret_key = \"sk_test_FileSecret\"\n\
         stripe_webhook_secret = \"whsec_FileSecret\"\n\
         billing_api_keys = [\"FileApiKey0123456789\"]\n\
         database_url = \"postgres://billing:DbPassword@127.0.0.1/billing\"\n",
    );
    let config = Config::read(Some(&file.0), lookup(&[("PLANS_FILE", PLANS)])).unwrap();
    let debug = format!("{config:?}");
    for secret in ["FileSecret", "FileApiKey", "DbPassword"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn a_grace_override_beyond_the_catalog_rules_is_refused_by_the_domain() {
    let error = from_env(&[
        ("STRIPE_SECRET_KEY", "sk_test_123"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
        ("BILLING_API_KEYS", "0123456789abcdef"),
        ("PLANS_FILE", PLANS),
        ("GRACE_DAYS", "400"),
    ])
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("GRACE_DAYS tiers[0].grace_period: must be at most 365 days"),
        "{text}"
    );
    let error = Config::read(None, required_and(&[("GRACE_DAYS", "a week")])).unwrap_err();
    assert_eq!(
        error.0,
        ["GRACE_DAYS must be a whole number of days"],
        "{error}"
    );
}

#[test]
fn the_example_file_documents_every_setting_and_holds_the_defaults() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    for (name, _) in SETTINGS {
        let key = name.to_ascii_lowercase();
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
            "{key} is not in billing.example.toml"
        );
    }
    let with_file = Config::read(Some(Path::new(EXAMPLE)), required_and(&[])).unwrap();
    let mut without = Config::read(None, required_and(&[])).unwrap();
    assert_eq!(with_file.server.catalog, without.server.catalog);
    // The catalog's Debug shows hash maps in no fixed order; everything else is compared here.
    without.server.catalog = with_file.server.catalog.clone();
    assert_eq!(format!("{with_file:?}"), format!("{without:?}"));
}

#[test]
fn the_readme_lists_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let readme = readme.unwrap();
    for (name, _) in SETTINGS {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "{name} is not in README's configuration table"
        );
    }
}

#[test]
fn the_catalog_alone_needs_no_other_setting_and_names_its_file_when_wrong() {
    let catalog =
        Config::read_catalog(None, lookup(&[("PLANS_FILE", PLANS), ("GRACE_DAYS", "5")])).unwrap();
    assert_eq!(catalog.tiers()[1].id.as_str(), "PRO");
    assert!(
        catalog
            .tiers()
            .iter()
            .all(|t| t.grace_period == TimeDelta::days(5))
    );
    let error = Config::read_catalog(None, lookup(&[("PLANS_FILE", "/nonexistent/plans.toml")]))
        .unwrap_err();
    assert_eq!(error.0.len(), 1, "{error}");
    assert!(
        error.0[0].starts_with("PLANS_FILE /nonexistent/plans.toml"),
        "{error}"
    );
}

#[test]
fn push_urls_must_be_http_or_https_and_come_with_a_secret() {
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let error = Config::read(
        None,
        required_and(&[
            (
                "PUSH_URLS",
                "ftp://product.example/hooks,https://product.example/hooks?token=tok_q8Lm2Zx",
            ),
            ("PUSH_SECRET", SECRET),
        ]),
    )
    .unwrap_err();
    assert_eq!(error.0.len(), 1, "{error}");
    assert!(
        error.0[0].starts_with("PUSH_URLS entry 1: push URL has scheme \"ftp\""),
        "{error}"
    );
    let error =
        Config::read(None, required_and(&[("PUSH_URLS", "file:///etc/passwd")])).unwrap_err();
    assert_eq!(error.0.len(), 2, "{error}");
    assert!(error.0[1].starts_with("PUSH_SECRET is required"), "{error}");
    let error = Config::read(
        None,
        required_and(&[
            ("PUSH_URLS", "https://product.example/hooks"),
            ("PUSH_SECRET", "whsec_tooShortKq7"),
        ]),
    )
    .unwrap_err();
    assert!(error.0[0].starts_with("PUSH_SECRET entry 1"), "{error}");
    assert!(!error.to_string().contains("tooShortKq7"), "{error}");
    let error = Config::read(None, required_and(&[("PUSH_SECRET", SECRET)])).unwrap_err();
    assert_eq!(error.0, ["PUSH_SECRET is set but PUSH_URLS is not"]);

    let config = Config::read(
        None,
        required_and(&[
            (
                "PUSH_URLS",
                "https://a.product.example/hooks, http://127.0.0.1:9000/hooks?token=tok_q8Lm2Zx",
            ),
            ("PUSH_SECRET", SECRET),
        ]),
    )
    .unwrap();
    let push = config.server.push.expect("push configured");
    assert_eq!(push.endpoints.len(), 2);
    assert_eq!(push.endpoints[1].display(), "http://127.0.0.1:9000/hooks");
    assert_eq!(push.settings.max_attempts, 12);
    assert!(!format!("{push:?}").contains("C2FVsBQ"));
    assert!(!format!("{push:?}").contains("tok_q8Lm2Zx"));
    assert!(
        Config::read(None, required_and(&[]))
            .unwrap()
            .server
            .push
            .is_none()
    );
}
