//! The gate's integration tests: the guards in-process, and the example product beside a real
//! billing server on Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[allow(dead_code)]
#[path = "../../examples/product.rs"]
mod product;

mod guards;
mod support;
mod unavailable;
mod walk;
