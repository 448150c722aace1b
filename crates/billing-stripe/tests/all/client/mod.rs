//! Integration tests of `billing-stripe`'s outgoing Stripe client, against a `wiremock` fake of
//! the Stripe API on 127.0.0.1 (and, when Python is there, `localstripe`): the requests it
//! sends, retries and idempotency, error mapping, and reading subscriptions.

mod create;
mod errors;
mod listing;
mod localstripe;
mod retries;
mod subscriptions;
mod support;
