//! Reading a stored event body again: the port through which a replay turns a verified raw
//! body back into a [`BillingEvent`] without knowing Stripe's wire format (only
//! `billing-stripe` knows it, and implements this port).

use billing_domain::BillingEvent;

use crate::error::DecodeError;

/// Turns a verified raw event body into the facts it carries.
pub trait EventDecoder: Send + Sync {
    /// The event `payload` says, or why it cannot be read (the payload can never apply as
    /// sent: a permanent failure).
    fn decode(&self, payload: &[u8]) -> Result<BillingEvent, DecodeError>;
}
