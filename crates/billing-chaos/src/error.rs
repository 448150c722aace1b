//! The harness's one error type.

use thiserror::Error;

/// What went wrong while setting up or driving a chaos scenario.
#[derive(Debug, Error)]
pub enum ChaosError {
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An external command (initdb, pg_ctl, psql, cargo, kill) failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line, without secrets.
        command: String,
        /// Its exit status and output.
        detail: String,
    },
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The environment cannot run the scenario (no Postgres binaries, no unprivileged user…).
    #[error("{0}")]
    Setup(String),
    /// A JSON document could not be read.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, ChaosError>;

/// Wraps an `io::Error` with what the harness was doing.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ChaosError {
    let what = what.into();
    move |source| ChaosError::Io { what, source }
}
