//! The fault proofs of the billing server, in one binary; `just chaos` runs them with the
//! `chaos` profile of `crates/billing-chaos/nextest.toml`. Each scenario starts the real server
//! binary and its own Postgres cluster, and nextest runs every test in its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod database_faults;
mod fuzz;
mod kill9;
mod replicas;
mod secrets;
mod stop;
