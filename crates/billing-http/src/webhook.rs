//! `POST /webhooks/stripe`: verify, parse, ingest; answer 2xx only after the commit.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use billing_app::IngestOutcome;
use billing_ports::{BillingStore, NewEvent};
use billing_stripe::WireError;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::HttpState;
use crate::error::ApiError;
use crate::input::read_body;
use crate::telemetry;

/// Handles one delivery.
pub(crate) async fn receive<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut seen = Seen::default();
    let result = handle(&state, &request, payload, &mut seen).await;
    let outcome = match &result {
        Ok((outcome, _)) => *outcome,
        Err(error) => error.code,
    };
    telemetry::record_delivery(
        seen.id.as_deref().unwrap_or(""),
        seen.event_type.as_deref().unwrap_or("unknown"),
        outcome,
        started.elapsed(),
    );
    result.map(|(_, response)| response)
}

/// What is known of the delivery so far, for its log line and metrics.
#[derive(Default)]
struct Seen {
    id: Option<String>,
    event_type: Option<String>,
}

type Handled = Result<(&'static str, HttpResponse), ApiError>;

async fn handle<S: BillingStore>(
    state: &HttpState<S>,
    request: &HttpRequest,
    payload: web::Payload,
    seen: &mut Seen,
) -> Handled {
    // Over the limit → 413 before it is read whole; still arriving at the deadline → 408.
    let body = read_body(
        payload,
        "webhook",
        state.webhook_body_limit,
        state.request_timeout,
    )
    .await?;
    let header = request
        .headers()
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let now = state.app.clock().now().timestamp();
    state
        .verifier
        .verify_at_opt(&body, header, now)
        .map_err(|e| {
            tracing::warn!(error = e.to_string(), "webhook signature rejected");
            ApiError::from(e)
        })?;
    let event = match billing_stripe::parse_event(&body) {
        Ok(event) => event,
        Err(error) => return Err(reject_unparsable(state, &body, error, seen).await),
    };
    seen.id = Some(event.id.clone());
    seen.event_type = Some(event.event_type.clone());
    crate::request::record_event_id(&event.id);
    let event_id = event.id.clone();
    let payload = String::from_utf8_lossy(&body).into_owned();
    match state.app.ingest(event, payload).await {
        Ok(outcome) => {
            let (label, body) = match outcome {
                IngestOutcome::Processed => ("processed", json!({"received": true})),
                IngestOutcome::Ignored => ("ignored", json!({"received": true, "ignored": true})),
                IngestOutcome::Stale => ("stale", json!({"received": true, "stale": true})),
                IngestOutcome::Duplicate(_) => {
                    ("duplicate", json!({"received": true, "duplicate": true}))
                }
            };
            Ok((label, HttpResponse::Ok().json(body)))
        }
        // The request context logs a 5xx answer once, with the request id, the event id and
        // the cause; a 422 is logged here, since it is the event's own fault.
        Err(error) => {
            if error.cause.is_unprocessable() {
                tracing::warn!(
                    event_id = event_id.as_str(),
                    error = error.cause.to_string(),
                    stored = error.recorded,
                    "event cannot be applied as sent"
                );
            }
            Err(ApiError::ingest_failure(&event_id, error))
        }
    }
}

/// A verified body we cannot read. With a valid envelope (id, type, created) it is stored as
/// failed (a fix and a replay can still apply it) and answered 422. Without one it cannot be
/// stored at all: it is answered 400 saying so, and logged with the body's SHA-256 so the
/// delivery can be found in Stripe's dashboard.
async fn reject_unparsable<S: BillingStore>(
    state: &HttpState<S>,
    body: &[u8],
    error: WireError,
    seen: &mut Seen,
) -> ApiError {
    let envelope = match billing_stripe::peek_envelope(body) {
        Ok(envelope) => envelope,
        Err(envelope_error) => {
            let body_sha256 = hex::encode(Sha256::digest(body));
            tracing::warn!(
                error = envelope_error.to_string(),
                body_sha256 = body_sha256.as_str(),
                body_bytes = body.len(),
                "verified webhook body has no valid event envelope; not stored"
            );
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_payload",
                format!("{envelope_error}; the event was not stored (body sha256 {body_sha256})"),
            );
        }
    };
    seen.id = Some(envelope.id.clone());
    seen.event_type = Some(envelope.event_type.clone());
    crate::request::record_event_id(&envelope.id);
    let event = NewEvent {
        id: envelope.id.clone(),
        event_type: envelope.event_type,
        api_version: envelope.api_version,
        livemode: envelope.livemode,
        created: envelope.created,
        payload: String::from_utf8_lossy(body).into_owned(),
        received_at: state.app.clock().now(),
    };
    if let Err(store_error) = state.app.record_unparsed(event, &error.to_string()).await {
        // A 5xx: logged once, with this cause, by the request context.
        return ApiError::from(store_error);
    }
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_event",
        format!("{error}; it is stored as failed"),
    )
}
