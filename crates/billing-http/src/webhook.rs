//! `POST /webhooks/stripe`: verify, parse, ingest; answer 2xx only after the commit.

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use billing_app::IngestOutcome;
use billing_ports::{BillingStore, NewEvent};
use billing_stripe::WireError;
use sha2::{Digest, Sha256};

use crate::HttpState;
use billing_api::ErrorBody;

use crate::dto::Received;
use crate::error::{ApiError, ErrorCode};
use crate::input::read_body;
use crate::openapi::{BodyErrors, DatabaseErrors, RouteErrors};
use crate::telemetry::Delivery;

/// Handles one delivery. What it learns of the event (id, type, how it ended) goes into the
/// request span and the request's extensions, for the delivery's one log line and metrics.
#[utoipa::path(
    post,
    path = "/webhooks/stripe",
    tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex>`: HMAC-SHA256 of `{t}.{body}` with the endpoint secret")),
    request_body(content = Object, description = "A Stripe event, verified before it is read", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken: applied, ignored, stale or a duplicate", body = Received),
        (status = 400, description = "Signature refused, or a verified body without a valid envelope (`invalid_payload`, not stored)", body = ErrorBody),
        (status = 422, description = "The event can never apply as sent (`unprocessable_event`)", body = ErrorBody),
        (status = 500, description = "Not applied; Stripe will retry (`event_not_applied`)", body = ErrorBody),
        RouteErrors, BodyErrors, DatabaseErrors,
    )
)]
pub(crate) async fn receive<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
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
    state.verifier.verify_at_opt(&body, header, now)?;
    let event = match billing_stripe::parse_event(&body) {
        Ok(event) => event,
        Err(error) => return Err(reject_unparsable(&state, &request, &body, error).await),
    };
    note_event(&request, &event.id, &event.event_type);
    metrics::histogram!(crate::telemetry::DELIVERY_LAG).record(crate::gauges::seconds(
        state.app.clock().now() - event.created,
    ));
    let event_id = event.id.clone();
    let payload = stored_text(body);
    match state.app.ingest(event, payload).await {
        Ok(outcome) => {
            let (label, body) = match outcome {
                IngestOutcome::Processed => ("processed", Received::default()),
                IngestOutcome::Ignored => (
                    "ignored",
                    Received {
                        ignored: Some(true),
                        ..Received::default()
                    },
                ),
                IngestOutcome::Stale => (
                    "stale",
                    Received {
                        stale: Some(true),
                        ..Received::default()
                    },
                ),
                IngestOutcome::Duplicate(_) => (
                    "duplicate",
                    Received {
                        duplicate: Some(true),
                        ..Received::default()
                    },
                ),
            };
            let body = Received {
                received: true,
                ..body
            };
            if let Some(delivery) = request.extensions_mut().get_mut::<Delivery>() {
                delivery.outcome = Some(label);
            }
            Ok(HttpResponse::Ok().json(body))
        }
        // The request log writes the delivery's line: the code, the message, and a 5xx's cause.
        Err(error) => Err(ApiError::ingest_failure(&event_id, error)),
    }
}

/// The verified body as the text stored with its event, in the same allocation: the verifier
/// refused any body that is not UTF-8 (`unverifiable_body`), so the check passes; were it ever
/// to fail, the text would be stored with U+FFFD in place of the bad bytes, never lost.
fn stored_text(body: web::BytesMut) -> String {
    match String::from_utf8(Vec::from(body)) {
        Ok(text) => text,
        Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
    }
}

/// Names the delivery's event in the request span and the request's extensions.
fn note_event(request: &HttpRequest, event_id: &str, event_type: &str) {
    crate::request::record_event(event_id, event_type);
    request.extensions_mut().insert(Delivery {
        event_id: Some(event_id.to_owned()),
        event_type: Some(event_type.to_owned()),
        outcome: None,
    });
}

/// A verified body we cannot read. With a valid envelope (id, type, created) it is stored as
/// failed (a fix and a replay can still apply it) and answered 422. Without one it cannot be
/// stored at all: it is answered 400 saying so, and logged with the body's SHA-256 so the
/// delivery can be found in Stripe's dashboard.
async fn reject_unparsable<S: BillingStore>(
    state: &HttpState<S>,
    request: &HttpRequest,
    body: &[u8],
    error: WireError,
) -> ApiError {
    let envelope = match billing_stripe::peek_envelope(body) {
        Ok(envelope) => envelope,
        Err(envelope_error) => {
            // The delivery's log line carries this message, so the body can be found in
            // Stripe's dashboard by its hash.
            let body_sha256 = hex::encode(Sha256::digest(body));
            return ApiError::new(
                ErrorCode::InvalidPayload,
                format!(
                    "{envelope_error}; the event was not stored (body sha256 {body_sha256}, {} bytes)",
                    body.len()
                ),
            );
        }
    };
    note_event(request, &envelope.id, &envelope.event_type);
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
        // A 5xx: logged once, with this cause, by the request log.
        return ApiError::from(store_error);
    }
    ApiError::new(
        ErrorCode::UnprocessableEvent,
        format!("{error}; it is stored as failed"),
    )
}
