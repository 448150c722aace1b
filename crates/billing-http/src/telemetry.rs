//! Metrics: names, labels, the Prometheus recorder, and every series registered at zero when
//! the recorder is installed (so `/metrics` is complete before the first request, and a
//! rate over a series never misses its first increment).

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::{Error, HttpMessage as _, HttpRequest};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::{ApiError, ErrorLog};
use crate::request::RequestMeta;

/// Webhook deliveries by event type and outcome.
pub(crate) const DELIVERIES: &str = "billing_webhook_deliveries_total";
/// Seconds from receiving a delivery to answering it.
pub(crate) const DELIVERY_SECONDS: &str = "billing_webhook_delivery_seconds";
/// The webhook's route pattern.
pub(crate) const WEBHOOK_ROUTE: &str = "/webhooks/stripe";

/// API requests by route and status.
pub(crate) const API_REQUESTS: &str = "billing_api_requests_total";
/// Seconds to answer an API request.
pub(crate) const API_SECONDS: &str = "billing_api_request_seconds";

/// Gate invalidations received from other replicas (gate channel notifications).
pub(crate) const GATE_NOTIFICATIONS: &str = "billing_gate_notifications_total";
/// Times the gate channel listened again after losing its connection.
pub(crate) const GATE_RECONNECTS: &str = "billing_gate_channel_reconnects_total";
/// 1 while the gate channel listens, 0 while it is disconnected (or the store is SQLite).
pub(crate) const GATE_LISTENING: &str = "billing_gate_channel_listening";

/// Failed events waiting (not done), in the whole database.
pub(crate) const FAILED_EVENTS: &str = "billing_failed_events";
/// Seconds since the oldest failed event was first received (0 when none).
pub(crate) const FAILED_OLDEST_AGE: &str = "billing_failed_event_oldest_age_seconds";
/// Events first received in the last minute, in the whole database.
pub(crate) const EVENTS_RECEIVED_LAST_MINUTE: &str = "billing_events_received_last_minute";
/// Now minus the event's `created`, of each delivery this process received (a histogram).
pub(crate) const DELIVERY_LAG: &str = "billing_delivery_lag_seconds";
/// The delivery lag's buckets: a second to three days (Stripe's redelivery horizon); events
/// older than that (a replayed backlog, `billingctl trigger`'s stories) fall in `+Inf`.
/// Buckets of deliveries per ingest transaction: one alone, then the sizes a batch
/// (`INGEST_BATCH`, 8 by default) takes.
const TRANSACTION_DELIVERIES_BUCKETS: [f64; 9] = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0];

const DELIVERY_LAG_BUCKETS: [f64; 14] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 43_200.0, 86_400.0,
    172_800.0, 259_200.0,
];
/// Pooled database connections lent out in this process.
pub(crate) const POOL_IN_USE: &str = "billing_pool_connections_in_use";
/// Calls of this process waiting for a pooled database connection.
pub(crate) const POOL_WAITING: &str = "billing_pool_connections_waiting";

/// Background job runs, by job and outcome (`success`, `failure`, `lease_lost`).
pub(crate) const JOB_RUNS: &str = "billing_job_runs_total";
/// The unix time of each job's last successful run on this replica.
pub(crate) const JOB_LAST_SUCCESS: &str = "billing_job_last_success_timestamp_seconds";
/// Events the sweeper replayed, by outcome (`applied`, `failed`, …).
pub(crate) const SWEEPER_REPLAYS: &str = "billing_sweeper_replays_total";

/// The `/v1` route patterns (the `route` label).
pub(crate) const API_ROUTES: [&str; 7] = [
    "/v1/users/{user_id}/entitlements",
    "/v1/users/{user_id}/features/{feature}",
    "/v1/users/{user_id}/usage",
    "/v1/users/{user_id}/sync",
    "/v1/checkout/sessions",
    "/v1/portal/sessions",
    "/v1/catalog",
];

/// The statuses `/v1` answers with.
const API_STATUSES: [u16; 13] = [
    200, 400, 401, 402, 404, 405, 408, 413, 415, 422, 500, 502, 503,
];

/// Outcomes of a delivery whose event was read (labelled with its type).
const EVENT_OUTCOMES: [&str; 6] = [
    "processed",
    "duplicate",
    "stale",
    "unprocessable_event",
    "event_not_applied",
    "database_unavailable",
];

/// Outcomes of a delivery refused before its event type is known (type `unknown`).
const EARLY_OUTCOMES: [&str; 14] = [
    "method_not_allowed",
    "body_too_large",
    "unreadable_body",
    "request_timeout",
    "missing_signature",
    "malformed_signature",
    "no_v1_signature",
    "signature_mismatch",
    "timestamp_outside_tolerance",
    "unverifiable_body",
    "invalid_signature",
    "invalid_payload",
    "unprocessable_event",
    "database_unavailable",
];

/// Installs the process-wide Prometheus recorder, registers every series at zero, and returns
/// the handle `/metrics` renders.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, BuildError> {
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    // A full-name matcher wins over the suffix one.
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(DELIVERY_LAG.to_owned()),
            &DELIVERY_LAG_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(billing_app::TRANSACTION_DELIVERIES_METRIC.to_owned()),
            &TRANSACTION_DELIVERIES_BUCKETS,
        )?
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)?
        .install_recorder()?;
    register_series();
    Ok(handle)
}

/// Describes every metric and registers each known label set with a zero value.
pub(crate) fn register_series() {
    metrics::describe_counter!(DELIVERIES, "Webhook deliveries by event type and outcome.");
    metrics::describe_histogram!(
        DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "Seconds from receiving a webhook delivery to answering it."
    );
    metrics::describe_counter!(API_REQUESTS, "API requests by route and status.");
    metrics::describe_histogram!(
        API_SECONDS,
        metrics::Unit::Seconds,
        "Seconds to answer an API request."
    );
    metrics::describe_counter!(
        GATE_NOTIFICATIONS,
        "Gate cache invalidations received from other replicas."
    );
    metrics::describe_counter!(
        GATE_RECONNECTS,
        "Times the gate channel listened again after losing its connection (each flushes the gate cache)."
    );
    metrics::describe_gauge!(
        GATE_LISTENING,
        "1 while the gate channel listens for other replicas' invalidations, else 0."
    );
    for (name, help) in [
        (
            FAILED_EVENTS,
            "Failed Stripe events waiting to be applied (whole database).",
        ),
        (
            FAILED_OLDEST_AGE,
            "Seconds since the oldest failed event was first received; 0 when none.",
        ),
        (
            EVENTS_RECEIVED_LAST_MINUTE,
            "Stripe events first received in the last minute (whole database).",
        ),
        (
            POOL_IN_USE,
            "Database connections lent out by this process's pool.",
        ),
        (
            POOL_WAITING,
            "Calls waiting for a database connection in this process.",
        ),
    ] {
        metrics::describe_gauge!(name, help);
        metrics::gauge!(name).set(0.0);
    }
    metrics::describe_histogram!(
        DELIVERY_LAG,
        metrics::Unit::Seconds,
        "Seconds from an event's creation at Stripe to its delivery here, per delivery."
    );
    let _ = metrics::histogram!(DELIVERY_LAG);
    metrics::describe_counter!(
        JOB_RUNS,
        "Background job runs on this replica, by job and outcome."
    );
    metrics::describe_gauge!(
        JOB_LAST_SUCCESS,
        metrics::Unit::Seconds,
        "Unix time of the last successful run of each job on this replica (0: none yet)."
    );
    metrics::describe_counter!(
        SWEEPER_REPLAYS,
        "Failed events the sweeper re-applied on this replica, by outcome."
    );
    for job in crate::jobs::JOB_NAMES {
        for outcome in crate::jobs::JOB_OUTCOMES {
            metrics::counter!(JOB_RUNS, "job" => job, "outcome" => outcome).absolute(0);
        }
        metrics::gauge!(JOB_LAST_SUCCESS, "job" => job).set(0.0);
    }
    for outcome in billing_app::ReplayOutcome::LABELS {
        metrics::counter!(SWEEPER_REPLAYS, "outcome" => outcome).absolute(0);
    }
    metrics::describe_counter!(
        billing_push::PUSH_ATTEMPTS,
        "Attempts to push a change record to a product URL on this replica, by outcome."
    );
    for outcome in ["succeeded", "retry", "failed"] {
        metrics::counter!(billing_push::PUSH_ATTEMPTS, "outcome" => outcome).absolute(0);
    }
    metrics::describe_gauge!(
        billing_app::LAST_SUCCESS_METRIC,
        metrics::Unit::Seconds,
        "Unix time of the last successful reconciliation with Stripe (0 before any)."
    );
    metrics::describe_counter!(
        billing_app::DIFFERENCES_METRIC,
        "Subscription fields reconciliation found different from Stripe and repaired, by kind."
    );
    metrics::gauge!(billing_app::LAST_SUCCESS_METRIC).set(0.0);
    for kind in billing_app::DifferenceKind::ALL {
        metrics::counter!(billing_app::DIFFERENCES_METRIC, "kind" => kind.as_str()).absolute(0);
    }
    metrics::describe_histogram!(
        billing_app::TRANSACTION_DELIVERIES_METRIC,
        "Deliveries per ingest transaction on this replica (1: applied alone)."
    );
    metrics::describe_histogram!(
        billing_app::QUEUE_WAIT_METRIC,
        metrics::Unit::Seconds,
        "Seconds a delivery waited for an ingest transaction to take it."
    );
    metrics::describe_counter!(
        billing_app::SHARED_FAILURES_METRIC,
        "Shared ingest transactions that failed on this replica, by what followed."
    );
    let _ = metrics::histogram!(billing_app::TRANSACTION_DELIVERIES_METRIC);
    let _ = metrics::histogram!(billing_app::QUEUE_WAIT_METRIC);
    for outcome in billing_app::SHARED_FAILURE_OUTCOMES {
        metrics::counter!(billing_app::SHARED_FAILURES_METRIC, "outcome" => outcome).absolute(0);
    }
    metrics::counter!(GATE_NOTIFICATIONS).absolute(0);
    metrics::counter!(GATE_RECONNECTS).absolute(0);
    metrics::gauge!(GATE_LISTENING).set(0.0);
    for event_type in billing_stripe::HANDLED_EVENT_TYPES {
        for outcome in EVENT_OUTCOMES {
            metrics::counter!(DELIVERIES, "type" => event_type, "outcome" => outcome).absolute(0);
        }
    }
    metrics::counter!(DELIVERIES, "type" => "unknown", "outcome" => "ignored").absolute(0);
    for outcome in EARLY_OUTCOMES {
        metrics::counter!(DELIVERIES, "type" => "unknown", "outcome" => outcome).absolute(0);
    }
    for outcome in EVENT_OUTCOMES
        .iter()
        .chain(&EARLY_OUTCOMES)
        .chain(&["ignored"])
    {
        // Registering creates the series with zero samples.
        let _ = metrics::histogram!(DELIVERY_SECONDS, "outcome" => *outcome);
    }
    let series = ApiSeries {
        requests: std::array::from_fn(|r| {
            std::array::from_fn(|s| {
                let counter = metrics::counter!(
                    API_REQUESTS,
                    "route" => API_ROUTES[r],
                    "status" => API_STATUSES[s].to_string()
                );
                counter.absolute(0);
                counter
            })
        }),
        seconds: std::array::from_fn(
            |r| metrics::histogram!(API_SECONDS, "route" => API_ROUTES[r]),
        ),
    };
    // Only the first recorder's handles are kept (a process installs one).
    let _ = API_SERIES.set(series);
}

/// The handles of every `/v1` series, taken from the recorder when it is installed, so that
/// counting a request neither formats its status nor looks its series up by name and labels.
struct ApiSeries {
    /// `billing_api_requests_total{route, status}` by [`API_ROUTES`] and [`API_STATUSES`] index.
    requests: [[Counter; API_STATUSES.len()]; API_ROUTES.len()],
    /// `billing_api_request_seconds{route}` by [`API_ROUTES`] index.
    seconds: [Histogram; API_ROUTES.len()],
}

/// Set by [`register_series`]; without it (a recorder installed by the embedding application),
/// [`record_api`] looks each series up through the `metrics` macros.
static API_SERIES: OnceLock<ApiSeries> = OnceLock::new();

/// What a webhook handler learnt of its delivery, in the request's extensions, for the
/// delivery's log line and metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delivery {
    pub(crate) event_id: Option<String>,
    pub(crate) event_type: Option<String>,
    /// How a delivery answered 200 ended (`processed`, `duplicate`, …); an error's outcome is
    /// its code.
    pub(crate) outcome: Option<&'static str>,
}

/// The request log (run inside the request span): counts the request under its matched route
/// pattern, and writes the request's one log line when there is one, with its status and
/// latency: every webhook delivery, and every 5xx with its route and cause.
pub(crate) fn request_ended<B>(outcome: &Result<ServiceResponse<B>, Error>) {
    let (request, status, error) = match outcome {
        Ok(response) => (
            Some(response.request()),
            response.status(),
            response.response().error(),
        ),
        Err(error) => (None, error.as_response_error().status_code(), Some(error)),
    };
    let logged = match outcome {
        Ok(response) => response.response().extensions().get::<ErrorLog>().cloned(),
        Err(_) => None,
    };
    let route = request.and_then(HttpRequest::match_pattern);
    let elapsed = request
        .and_then(|r| {
            r.extensions()
                .get::<RequestMeta>()
                .map(|m| m.started.elapsed())
        })
        .unwrap_or_default();
    let route = route.as_deref().unwrap_or("");
    let status = status.as_u16();
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    let code = logged.as_ref().map_or_else(
        || error.and_then(|e| e.as_error::<ApiError>()).map(|e| e.code),
        |l| Some(l.code),
    );
    let failure = (status >= 500).then(|| {
        logged
            .as_ref()
            .and_then(|l| l.cause.clone())
            .or_else(|| error.map(ToString::to_string))
            .unwrap_or_else(|| "no cause recorded".to_owned())
    });
    let code_str = code.map_or(if status >= 500 { "internal_error" } else { "" }, |c| {
        c.as_str()
    });
    if route == WEBHOOK_ROUTE {
        let delivery = request
            .and_then(|r| r.extensions().get::<Delivery>().cloned())
            .unwrap_or_default();
        let event_id = delivery.event_id.as_deref().unwrap_or("");
        let event_type = delivery.event_type.as_deref().unwrap_or("unknown");
        let outcome = delivery.outcome.unwrap_or(code_str);
        record_delivery(event_type, outcome, elapsed);
        let message = logged.as_ref().map_or("", |l| l.message.as_str());
        match failure {
            Some(cause) => {
                log_failure(route, status, code_str, &cause, latency_ms, Some(&delivery))
            }
            None if status >= 400 => tracing::warn!(
                event_id,
                event_type,
                outcome,
                status,
                error = message,
                latency_ms,
                "webhook delivery"
            ),
            None => tracing::info!(
                event_id,
                event_type,
                outcome,
                status,
                latency_ms,
                "webhook delivery"
            ),
        }
        return;
    }
    if let Some(known) = API_ROUTES.iter().position(|known| *known == route) {
        record_api(known, status, elapsed);
    }
    if let Some(cause) = failure {
        log_failure(route, status, code_str, &cause, latency_ms, None);
    }
}

/// The one log line of a 5xx (in the request span: request id, method): route, status, code
/// and cause. Untrusted text (causes quote ids) goes in as str fields, which every formatter
/// escapes.
fn log_failure(
    route: &str,
    status: u16,
    code: &str,
    cause: &str,
    latency_ms: f64,
    delivery: Option<&Delivery>,
) {
    let event_id = delivery.and_then(|d| d.event_id.as_deref());
    let event_type = delivery.and_then(|d| d.event_type.as_deref());
    if status == 503 {
        tracing::warn!(
            route,
            status,
            code,
            cause,
            latency_ms,
            event_id,
            event_type,
            "request failed"
        );
    } else {
        tracing::error!(
            route,
            status,
            code,
            cause,
            latency_ms,
            event_id,
            event_type,
            "request failed"
        );
    }
}

/// Counts one webhook delivery and its latency.
fn record_delivery(event_type: &str, outcome: &str, elapsed: Duration) {
    let labels = [
        ("type", event_type.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!(DELIVERIES, &labels).increment(1);
    metrics::histogram!(DELIVERY_SECONDS, "outcome" => outcome.to_owned())
        .record(elapsed.as_secs_f64());
}

/// Counts one API request and its latency; `route` is an index of [`API_ROUTES`]. The series
/// registered at start are counted through their handles; a status not in [`API_STATUSES`]
/// (or no handles) goes through the registry, to the same series names and labels.
fn record_api(route: usize, status: u16, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let known = API_STATUSES.iter().position(|s| *s == status);
    if let (Some(series), Some(status)) = (API_SERIES.get(), known) {
        series.requests[route][status].increment(1);
        series.seconds[route].record(seconds);
        return;
    }
    let pattern = API_ROUTES[route];
    metrics::counter!(API_REQUESTS, "route" => pattern, "status" => status.to_string())
        .increment(1);
    metrics::histogram!(API_SECONDS, "route" => pattern).record(seconds);
}
