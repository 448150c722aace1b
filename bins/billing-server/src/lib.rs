//! The billing server's configuration and start-up, shared by its two binaries:
//! `billing-server` (serve, migrate) and `billingctl` (the operator's tool), so both read the
//! same layered configuration ([`config::Config::load`]: defaults → `billing.toml` →
//! environment) and open the same database.
#![warn(missing_docs)]

pub mod config;
pub mod serve;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
