//! Fault-injection harness for the billing server, and the proofs the project keeps
//! (`tests/`, run by `just chaos`): fuzzing of the signature header, the event parser and the
//! webhook handler; `kill -9` of the server under load; database restarts and freezes; no
//! secret in trace logs. See docs/operations.md, "What we promise under faults".
//!
//! Everything runs on 127.0.0.1: the real `billing-server` binary as a child process, a
//! private PostgreSQL cluster per scenario in a temporary folder (never the shared server),
//! and a small HTTP client with hard timeouts.

pub mod client;
pub mod cluster;
pub mod drive;
pub mod error;
pub mod load;
pub mod logs;
pub mod mutate;
pub mod paths;
pub mod replay;
pub mod scenario;
pub mod secrets;
pub mod server;
pub mod state;
pub mod watchdog;

pub use error::{ChaosError, Result};

/// The seed for a scenario's randomness: `CHAOS_SEED` when set, else a fresh one (printed by
/// the tests, so a failure can be replayed).
pub fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
                .unwrap_or(1)
        })
}

/// A duration from the environment variable `name` in seconds, else `default`.
pub fn seconds_from_env(name: &str, default: u64) -> std::time::Duration {
    std::time::Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}
