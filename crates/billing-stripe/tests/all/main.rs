//! The integration tests of `billing-stripe`, in one binary: the outgoing client against a
//! fake Stripe ([`client`]) and webhook parsing against the fixtures ([`wire`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod wire;
