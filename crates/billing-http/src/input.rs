//! What the edge accepts: bodies read within a size and a time limit, JSON bodies that are
//! objects, and identifiers, emails and URLs the database and Stripe can take. Everything
//! refused here is a specific 4xx; nothing reaches the store to fail there as a 500.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, mime, web};
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt as _};
use serde::de::DeserializeOwned;

use billing_domain::ids::check_id;

use crate::error::{ApiError, ErrorCode};

/// The longest email address, in bytes (RFC 5321's path limit).
pub(crate) const MAX_EMAIL_BYTES: usize = 254;
/// The longest redirect URL, in bytes.
pub(crate) const MAX_URL_BYTES: usize = 2048;
/// The largest `/v1` JSON body, in bytes; real ones are a few hundred.
pub(crate) const API_BODY_LIMIT: usize = 64 * 1024;
/// The largest quantity of one usage request: what the database's BIGINT holds.
pub(crate) const MAX_QUANTITY: u64 = i64::MAX as u64;

/// How long a client may take to send a request body (shared by every route that reads one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDeadline(pub(crate) Duration);

/// Reads a whole body of at most `limit` bytes within `deadline`: a larger body is refused
/// (413) as soon as it is known to be larger, a body still arriving at the deadline is refused
/// (408) and the connection closed with the rest unread.
pub(crate) async fn read_body<P>(
    payload: P,
    what: &str,
    limit: usize,
    deadline: Duration,
) -> Result<BytesMut, ApiError>
where
    P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    match actix_web::rt::time::timeout(deadline, read_all(payload, what, limit)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::request_timeout(deadline)),
    }
}

async fn read_all<P>(mut payload: P, what: &str, limit: usize) -> Result<BytesMut, ApiError>
where
    P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            PayloadError::Overflow => ApiError::body_too_large(what, limit),
            other => ApiError::new(ErrorCode::UnreadableBody, other.to_string()),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::body_too_large(what, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A `/v1` JSON body: `application/json`, at most [`API_BODY_LIMIT`] bytes, sent within the
/// body deadline, and a JSON **object** (serde would otherwise take an array for a struct).
/// Errors name fields and expected values, never our types.
#[derive(Debug)]
pub(crate) struct JsonObject<T>(pub(crate) T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.subtype() == mime::JSON || m.suffix().is_some_and(|s| s == mime::JSON)
            });
        let deadline = request
            .app_data::<web::Data<BodyDeadline>>()
            .map_or(Duration::from_secs(5), |d| d.0);
        let payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the body as Content-Type: application/json",
                ));
            }
            let body = read_body(payload, "API", API_BODY_LIMIT, deadline).await?;
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(ApiError::invalid_json)?;
            if !value.is_object() {
                return Err(ApiError::invalid_json("the body must be a JSON object"));
            }
            serde_json::from_value(value)
                .map(JsonObject)
                .map_err(ApiError::invalid_json)
        })
    }
}

/// Refuses an identifier the store cannot hold ([`billing_domain::ids::check_id`]: empty, over
/// [`MAX_ID_BYTES`](billing_domain::ids::MAX_ID_BYTES) bytes, or with a control character).
pub(crate) fn identifier(field: &str, code: ErrorCode, value: &str) -> Result<(), ApiError> {
    check_id(value).map_err(|problem| ApiError::new(code, format!("{field} {problem}")))
}

/// The characters a user id cannot have besides control characters: the ones a URL path
/// cannot carry unambiguously (`/` splits the path, `?` and `#` end it, `%` is read as an
/// escape), so the id a client sends in a body is always one it can put in a path.
pub(crate) const USER_ID_FORBIDDEN: [char; 4] = ['/', '?', '#', '%'];

/// The pattern the OpenAPI document gives every user id (path and body): what [`user_id`]
/// accepts, less the length limit, which the schema states apart.
pub(crate) const USER_ID_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F%/?#]+$";

/// A user id (path or body): an identifier ([`identifier`]) without [`USER_ID_FORBIDDEN`].
pub(crate) fn user_id(value: &str) -> Result<(), ApiError> {
    identifier("the user id", ErrorCode::InvalidUserId, value)?;
    if value.contains(USER_ID_FORBIDDEN) {
        return Err(ApiError::new(
            ErrorCode::InvalidUserId,
            "the user id contains '/', '?', '#' or '%', which a URL path cannot carry as they are",
        ));
    }
    Ok(())
}

/// A client idempotency key (usage body, `Idempotency-Key` header).
pub(crate) fn idempotency_key(value: &str) -> Result<(), ApiError> {
    identifier(
        "the idempotency key",
        ErrorCode::InvalidIdempotencyKey,
        value,
    )
}

/// An email address for a new Stripe customer.
pub(crate) fn email(value: &str) -> Result<(), ApiError> {
    let fine = !value.is_empty()
        && value.len() <= MAX_EMAIL_BYTES
        && value.contains('@')
        && !value.chars().any(|c| c.is_control() || c.is_whitespace());
    if fine {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidEmail,
            format!(
                "email must be an address of at most {MAX_EMAIL_BYTES} bytes without spaces or control characters"
            ),
        ))
    }
}

/// A redirect URL handed to Stripe (`success_url`, `cancel_url`, `return_url`).
pub(crate) fn url(field: &str, value: &str) -> Result<(), ApiError> {
    let fine = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() <= MAX_URL_BYTES
        && !value.chars().any(|c| c.is_control() || c.is_whitespace());
    if fine {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidUrl,
            format!(
                "{field} must be an http(s) URL of at most {MAX_URL_BYTES} bytes without spaces or control characters"
            ),
        ))
    }
}

/// A usage quantity the store can count.
pub(crate) fn quantity(value: u64) -> Result<(), ApiError> {
    if value > MAX_QUANTITY {
        return Err(ApiError::new(
            ErrorCode::QuantityOutOfRange,
            format!("quantity {value} is larger than the largest countable {MAX_QUANTITY}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::ids::MAX_ID_BYTES;

    #[test]
    fn user_ids_are_refused_by_size_control_characters_and_url_delimiters() {
        assert!(user_id("u_1QfZ7sLkAbCdEf").is_ok());
        assert!(user_id("ünïcødé-user@example.com").is_ok());
        assert!(user_id("a+b=c;d,e!~*'()[]:&$ \\").is_ok());
        assert!(user_id(&"x".repeat(MAX_ID_BYTES)).is_ok());
        for bad in [
            "",
            "a\u{0}b",
            "line\nforged",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert_eq!(user_id(bad).unwrap_err().code, "invalid_user_id", "{bad:?}");
        }
        assert!(idempotency_key("a/b?c#d%e").is_ok());
        for bad in ["a/b", "a?b", "a#b", "100%", "%2F"] {
            assert_eq!(user_id(bad).unwrap_err().code, "invalid_user_id", "{bad:?}");
        }
        // 128 two-byte characters: 256 bytes.
        assert_eq!(
            idempotency_key(&"é".repeat(128)).unwrap_err().code,
            "invalid_idempotency_key"
        );
    }

    #[test]
    fn emails_urls_and_quantities() {
        assert!(email("ana@example.com").is_ok());
        assert!(email("ana\u{0}@example.com").is_err());
        assert!(email("no-at-sign").is_err());
        assert!(url("success_url", "https://app.example/ok?x=1").is_ok());
        assert!(url("success_url", "javascript:alert(1)").is_err());
        assert!(
            url(
                "success_url",
                &format!("https://a.example/{}", "p".repeat(3000))
            )
            .is_err()
        );
        assert!(quantity(MAX_QUANTITY).is_ok());
        assert_eq!(
            quantity(MAX_QUANTITY + 1).unwrap_err().code,
            "quantity_out_of_range"
        );
    }
}
