//! The ports' test support against a real store: [`FaultyStore`] over an SQLite database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faulty_store;
