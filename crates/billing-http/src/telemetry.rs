//! Metrics: names, labels and the Prometheus recorder.

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Webhook deliveries by event type and outcome.
pub(crate) const DELIVERIES: &str = "billing_webhook_deliveries_total";
/// Seconds from receiving a delivery to answering it.
pub(crate) const DELIVERY_SECONDS: &str = "billing_webhook_delivery_seconds";
/// API requests by route and status.
pub(crate) const API_REQUESTS: &str = "billing_api_requests_total";
/// Seconds to answer an API request.
pub(crate) const API_SECONDS: &str = "billing_api_request_seconds";

/// Installs the process-wide Prometheus recorder and returns the handle `/metrics` renders.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, BuildError> {
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)?
        .install_recorder()
}

/// Counts one webhook delivery and its latency.
pub(crate) fn record_delivery(
    event_id: &str,
    event_type: &str,
    outcome: &'static str,
    elapsed: Duration,
) {
    let labels = [
        ("type", event_type.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!(DELIVERIES, &labels).increment(1);
    metrics::histogram!(DELIVERY_SECONDS, "outcome" => outcome).record(elapsed.as_secs_f64());
    tracing::info!(
        event_id,
        event_type,
        outcome,
        latency_ms = elapsed.as_secs_f64() * 1e3,
        "webhook delivery"
    );
}

/// Counts one API request and its latency.
pub(crate) fn record_api(route: &'static str, status: u16, elapsed: Duration) {
    metrics::counter!(API_REQUESTS, "route" => route, "status" => status.to_string()).increment(1);
    metrics::histogram!(API_SECONDS, "route" => route).record(elapsed.as_secs_f64());
}
