//! The request span and the request log: a request id (the caller's `X-Request-Id` when it is
//! a plain token, else a new one) answered in `X-Request-Id`; a tracing span
//! `request{request_id, method, route, status, latency_ms, event_id, event_type}` around
//! everything the request logs, built by [`tracing_actix_web::TracingLogger`]; and, when the
//! request ends, its metrics and its log line ([`crate::telemetry::request_ended`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

/// The header carrying the request id, both ways.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id and when it arrived, in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestMeta {
    pub(crate) id: String,
    pub(crate) started: Instant,
}

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

/// Builds the request span for `TracingLogger` and ends each request with its log line and
/// metrics. It keeps no clone of the request while the request is routed (a scope routes after
/// its middleware, and routing needs the request unshared).
pub(crate) struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request_id(request);
        let span = tracing::info_span!(
            "request",
            request_id = id.as_str(),
            method = request.method().as_str(),
            event_id = tracing::field::Empty,
            event_type = tracing::field::Empty,
        );
        request.extensions_mut().insert(RequestMeta {
            id,
            started: Instant::now(),
        });
        span
    }

    /// Runs inside the request span, whose lines carry its fields; the route, status and
    /// latency go in the request's own log line, not into the span: with `LOG_FORMAT=json`,
    /// each field recorded into a span parses and writes its fields again.
    fn on_request_end<B: MessageBody>(_span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        crate::telemetry::request_ended(outcome);
    }
}

/// Answers the request id in `X-Request-Id` (runs inside the request span).
pub(crate) async fn answer_request_id(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = request
        .extensions()
        .get::<RequestMeta>()
        .map(|m| m.id.clone());
    let mut response = next.call(request).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// Names the event a webhook request is about, in its request span: both fields in one
/// record (with `LOG_FORMAT=json` each record parses and writes the span's fields again).
pub(crate) fn record_event(event_id: &str, event_type: &str) {
    let span = Span::current();
    let Some(fields) = span.metadata().map(tracing::Metadata::fields) else {
        return; // no subscriber takes the span
    };
    let (Some(id), Some(kind)) = (fields.field("event_id"), fields.field("event_type")) else {
        return;
    };
    let values: [(&tracing::field::Field, Option<&dyn tracing::Value>); 2] =
        [(&id, Some(&event_id)), (&kind, Some(&event_type))];
    span.record_all(&fields.value_set(&values));
}
