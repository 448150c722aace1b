//! The Stripe adapter: reads Stripe webhook events into the billing domain's typed facts, and
//! calls Stripe's API for the application.
//!
//! # Incoming: webhook events ([`wire`])
//!
//! [`parse_event`] takes a webhook body whose signature was already verified and returns a
//! [`BillingEvent`](billing_domain::BillingEvent) carrying one
//! [`Fact`](billing_domain::Fact); [`peek_envelope`] reads just the event's identity so a
//! body whose object is malformed can still be stored against its event id. Parsing is
//! tolerant of every Stripe API version from `2023-10-16` to `2026-09-30.endive`, including
//! the `2025-03-31.basil` reshaping of subscriptions and invoices, and of the older
//! renderings of the objects it reads (invoices without `amount_paid` before 2018, payment
//! intents with embedded `charges` before `2022-11-15`, Charges API charges without a payment
//! intent); see [`wire`] for the differences handled and the conventions followed.
//!
//! # Outgoing: the Stripe API client ([`client`])
//!
//! [`StripeClient`] implements the application's
//! [`StripeGateway`](billing_ports::StripeGateway) port on async-stripe (rustls): it creates
//! customers, Checkout Sessions and billing-portal sessions under the caller's idempotency
//! key, and fetches subscriptions, with a per-attempt timeout, bounded retries with backoff
//! (re-sending the same idempotency key) and Stripe's answers mapped to
//! [`GatewayError`](billing_ports::GatewayError). Request parameters come from async-stripe's
//! typed builders; answers are read leniently, and fetched subscriptions go through the same
//! [`wire`] parser as webhook events, so both give the same
//! [`SubscriptionSnapshot`](billing_domain::facts::SubscriptionSnapshot) whatever the API
//! version. See [`client`] for the calls, the retry rules and the error mapping.
//!
//! # Architecture invariant
//!
//! Only this crate knows Stripe's wire format. Everything outside it sees the domain's facts
//! and the ports' types, never Stripe's JSON, field names, API versions or SDK types. Within
//! the crate, wire parsing lives in [`wire`] (one submodule per Stripe object) and uses our
//! own lenient serde structs rather than a Stripe SDK's types, which accept one API version
//! only; the SDK (async-stripe) is used only inside [`client`], to build and send requests.
#![warn(missing_docs)]

pub mod client;
mod error;
pub mod wire;

pub use client::{StripeClient, StripeClientConfig};
pub use error::WireError;
pub use wire::{
    EventEnvelope, HANDLED_EVENT_TYPES, StripeEventDecoder, parse_event, peek_envelope,
};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
