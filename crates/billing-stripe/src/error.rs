//! Why a Stripe webhook body could not be turned into a billing event.

use thiserror::Error;

/// A webhook body that could not be read as a billing event.
///
/// Every variant but [`WireError::NotJson`] carries the event id and type when the body gave
/// them, so a caller can log or store the failure against the right event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The body is not a JSON object (not UTF-8 JSON at all, malformed, or a JSON value other
    /// than an object).
    #[error("webhook body is not a JSON object: {message}")]
    NotJson {
        /// What the JSON reader reported.
        message: String,
    },
    /// A field the event cannot be understood without is absent or `null`.
    #[error(
        "event {} ({}): required field `{field}` is missing or null",
        show(event_id),
        show(event_type)
    )]
    MissingField {
        /// The event's `id`, when the body has one.
        event_id: Option<String>,
        /// The event's `type`, when the body has one.
        event_type: Option<String>,
        /// The field's path from the event root, e.g. `data.object.customer`.
        field: String,
    },
    /// A field is present but does not have the type or form Stripe documents.
    #[error(
        "event {} ({}): field `{field}` is invalid: {message}",
        show(event_id),
        show(event_type)
    )]
    InvalidField {
        /// The event's `id`, when the body has one.
        event_id: Option<String>,
        /// The event's `type`, when the body has one.
        event_type: Option<String>,
        /// The field's path from the event root, e.g. `data.object.amount_paid`.
        field: String,
        /// What is wrong with the value.
        message: String,
    },
}

impl WireError {
    /// The event id the failing body carried, if any.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Self::NotJson { .. } => None,
            Self::MissingField { event_id, .. } | Self::InvalidField { event_id, .. } => {
                event_id.as_deref()
            }
        }
    }

    /// The path of the offending field, for [`WireError::MissingField`] and
    /// [`WireError::InvalidField`].
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::NotJson { .. } => None,
            Self::MissingField { field, .. } | Self::InvalidField { field, .. } => Some(field),
        }
    }
}

fn show(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("<unknown>")
}
