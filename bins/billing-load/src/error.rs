//! Why a run could not be made (as opposed to a run whose check failed).

/// What stops the tool.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The webhook URL cannot be used.
    #[error("--url {url}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// The stream could not be generated.
    #[error("generating the stream: {0}")]
    Generate(#[from] billing_streamgen::Error),
    /// The plans file cannot be read.
    #[error("--plans: {0}")]
    Plans(String),
    /// A database query failed (the check, or pgbench's scratch database).
    #[error("database ({what}): {message}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The server's message (severity, SQLSTATE, text), or the client's error.
        message: String,
    },
    /// pgbench could not run, or its output was not understood.
    #[error("pgbench: {0}")]
    Pgbench(String),
    /// A local file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// A database error while doing `what`.
    pub(crate) fn database(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| {
            let message = match source.as_db_error() {
                Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
                None => match std::error::Error::source(&source) {
                    Some(cause) => format!("{source}: {cause}"),
                    None => source.to_string(),
                },
            };
            Self::Database { what, message }
        }
    }

    /// An IO error while doing `what`.
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}
