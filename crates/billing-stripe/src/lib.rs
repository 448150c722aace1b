//! The Stripe adapter: reads Stripe webhook events into the billing domain's typed facts
//! (and, later, will hold the outgoing Stripe API client).
//!
//! [`parse_event`] takes a webhook body whose signature was already verified and returns a
//! [`BillingEvent`](billing_domain::BillingEvent) carrying one
//! [`Fact`](billing_domain::Fact); [`peek_envelope`] reads just the event's identity so a
//! body whose object is malformed can still be stored against its event id. Parsing is
//! tolerant of every Stripe API version from `2023-10-16` to `2026-09-30.endive`, including
//! the `2025-03-31.basil` reshaping of subscriptions and invoices; see [`wire`] for the
//! differences handled and the conventions followed.
//!
//! Architecture invariant: only this crate knows Stripe's wire format. Everything outside it
//! sees the domain's facts, never Stripe's JSON, field names or API versions. Within the
//! crate, wire parsing lives in [`wire`] (one submodule per Stripe object) and uses our own
//! lenient serde structs rather than a Stripe SDK's types, which accept one API version only.

mod error;
pub mod wire;

pub use error::WireError;
pub use wire::{EventEnvelope, HANDLED_EVENT_TYPES, parse_event, peek_envelope};
