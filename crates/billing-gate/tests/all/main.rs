//! The gate's integration tests: the guards in-process, and the example product beside a real
//! billing server on Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[allow(dead_code)]
#[path = "../../examples/product.rs"]
mod product;

#[allow(dead_code)]
#[path = "../../../billing-http/tests/api/helpers.rs"]
mod helpers;

mod guards;
mod support;
mod unavailable;
mod walk;
