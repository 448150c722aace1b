//! Per-request context: a request id (the caller's `X-Request-Id` when it is a plain token,
//! else a new one) answered in `X-Request-Id`; a tracing span `request{request_id, event_id}`
//! around everything the request logs (a webhook fills in `event_id` once it has read it);
//! and the one log line of every 5xx answer, in that span, with its cause — the only line
//! that carries the cause (lower layers return errors rather than log them), while the
//! answer itself stays opaque.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::Error;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument as _;

use crate::error::ApiError;

/// The header carrying the request id, both ways.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's id when it is 1 to 64 characters of `[A-Za-z0-9._:-]`, else a new one.
fn request_id(request: &ServiceRequest) -> String {
    let theirs = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b))
        });
    match theirs {
        Some(id) => id.to_owned(),
        None => new_request_id(),
    }
}

/// A process-unique id: a per-process prefix and a counter.
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        format!(
            "{:012x}",
            (nanos ^ u64::from(std::process::id()).rotate_left(40)) & 0xffff_ffff_ffff
        )
    });
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The middleware: runs the request inside its span, answers the id, logs a 5xx once.
///
/// It holds no clone of the request while the request is routed (a scope routes after its
/// middleware, and routing needs the request unshared).
pub(crate) async fn context(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let id = request_id(&request);
    let span = tracing::info_span!(
        "request",
        request_id = id.as_str(),
        event_id = tracing::field::Empty
    );
    let method = request.method().clone();
    match next.call(request).instrument(span.clone()).await {
        Ok(mut response) => {
            if response.status().is_server_error() {
                let route = response.request().match_pattern().unwrap_or_default();
                let status = response.status().as_u16();
                let error = response.response().error();
                span.in_scope(|| log_failure(method.as_str(), &route, status, error, started));
            }
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            Ok(response)
        }
        // Handlers' and extractors' errors arrive as responses; only a middleware's error
        // arrives here. actix answers it.
        Err(error) => {
            let status = error.as_response_error().status_code();
            if status.is_server_error() {
                span.in_scope(|| {
                    log_failure(method.as_str(), "", status.as_u16(), Some(&error), started)
                });
            }
            Err(error)
        }
    }
}

/// Names the event a webhook request is about, in its request span.
pub(crate) fn record_event_id(event_id: &str) {
    tracing::Span::current().record("event_id", event_id);
}

/// The one log line of a 5xx (in the request span: request id, event id): route, status,
/// code and cause. Untrusted text (causes quote ids) goes in as str fields, which every
/// formatter escapes.
fn log_failure(method: &str, route: &str, status: u16, error: Option<&Error>, started: Instant) {
    let api = error.and_then(|e| e.as_error::<ApiError>());
    let code = api.map_or("internal_error", |e| e.code);
    let cause = api
        .and_then(|e| e.cause.clone())
        .or_else(|| error.map(ToString::to_string))
        .unwrap_or_else(|| "no cause recorded".to_owned());
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    if status == 503 {
        tracing::warn!(
            method,
            route,
            status,
            code,
            cause = cause.as_str(),
            latency_ms,
            "request failed"
        );
    } else {
        tracing::error!(
            method,
            route,
            status,
            code,
            cause = cause.as_str(),
            latency_ms,
            "request failed"
        );
    }
}
