//! Why a command failed, with its exit code and its stable code for `--json`.

use std::process::ExitCode;

use billing_app::AppError;
use billing_http::StartError;
use billing_ports::{ErrorChain, StoreError};
use billing_server::config::InvalidConfig;
use billing_store_diesel::SetupError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CtlError {
    /// The configuration is invalid (every problem listed).
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// The database could not be opened.
    #[error("cannot open the database")]
    Open(#[from] StartError),
    /// Migrations could not be read or applied.
    #[error("migrations")]
    Setup(#[from] SetupError),
    /// A use case failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// A store call failed.
    #[error("database")]
    Store(#[from] StoreError),
    /// What the command was asked about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A key of that name exists already (live or revoked).
    #[error("a key named {0:?} exists already (names are never reused, even once revoked)")]
    NameTaken(String),
    /// `migrate --check` found migrations to apply.
    #[error("{} pending migration(s): {}", .0.len(), .0.join(", "))]
    Pending(Vec<String>),
    /// `plans check` found problems (printed as found, and in `--json`'s error document).
    #[error("{} problem(s) in {file}", .problems.len())]
    Catalog {
        /// The file checked.
        file: String,
        /// Every problem, with its place.
        problems: Vec<billing_domain::CatalogProblem>,
    },
    /// A replay left events not applied (still failing, or not stored).
    #[error("{unapplied} of {total} event(s) not applied")]
    Unapplied {
        /// Events still failing or not found.
        unapplied: usize,
        /// Events replayed.
        total: usize,
        /// Every event's outcome, for `--json` (null when already printed).
        details: serde_json::Value,
    },
    /// `trigger` sent events the server refused.
    #[error("the server refused {refused} of {sent} event(s)")]
    Refused {
        /// Deliveries answered other than 2xx.
        refused: usize,
        /// Deliveries sent.
        sent: usize,
        /// The run's report, for `--json` (null when already printed).
        details: serde_json::Value,
    },
    /// An argument clap accepted makes no sense when the command runs (a time in the future).
    #[error("{0}")]
    BadArgument(String),
    /// `trigger` found no price to subscribe to.
    #[error("the catalog has no tier with a price: nothing to subscribe to")]
    NoPaidPrice,
    /// `events purge` was asked to delete events Stripe may still redeliver.
    #[error(
        "--older-than {given} is under 3 days: Stripe redelivers an event for up to 3 days and the stored event is what makes a redelivery a duplicate (purging it would apply the event again); pass --force to purge anyway"
    )]
    PurgeTooRecent {
        /// The age given, as written.
        given: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random generator failed.
    #[error("no random bytes: {0}")]
    Random(getrandom::Error),
    /// A server could not be reached, or answered what `trigger` did not expect.
    #[error("{0}")]
    Http(String),
    /// A test event could not be generated.
    #[error("generating the events")]
    Generate(#[from] billing_streamgen::Error),
    /// JSON could not be written or read.
    #[error("JSON")]
    Json(#[from] serde_json::Error),
}

impl CtlError {
    /// The stable code `--json` prints in `{"error": {"code", "message"}}`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            CtlError::Config(_) => "invalid_config",
            CtlError::Open(_) | CtlError::Setup(_) | CtlError::Store(_) => "database",
            CtlError::App(AppError::BadRequest(_)) | CtlError::BadArgument(_) => "bad_request",
            CtlError::App(AppError::Store(_)) => "database",
            CtlError::App(_) => "failed",
            CtlError::NotFound(_) => "not_found",
            CtlError::NameTaken(_) => "name_taken",
            CtlError::Pending(_) => "pending_migrations",
            CtlError::Catalog { .. } | CtlError::NoPaidPrice => "invalid_catalog",
            CtlError::Refused { .. } => "refused",
            CtlError::PurgeTooRecent { .. } => "too_recent",
            CtlError::Unapplied { .. } => "not_applied",
            CtlError::Read { .. } => "unreadable_file",
            CtlError::Random(_) => "no_randomness",
            CtlError::Http(_) => "server",
            CtlError::Generate(_) | CtlError::Json(_) => "internal",
        }
    }

    /// 2 for a bad configuration (like the server), 1 for everything else.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CtlError::Config(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }

    /// What `--json` adds to the error document for a script to act on.
    pub(crate) fn details(&self) -> Option<serde_json::Value> {
        match self {
            CtlError::Pending(pending) => Some(serde_json::json!({ "pending": pending })),
            CtlError::Catalog { file, problems } => Some(serde_json::json!({
                "file": file,
                "problems": problems
                    .iter()
                    .map(|p| serde_json::json!({"place": p.place, "message": p.message}))
                    .collect::<Vec<_>>(),
            })),
            CtlError::Unapplied { details, .. } | CtlError::Refused { details, .. }
                if !details.is_null() =>
            {
                Some(details.clone())
            }
            _ => None,
        }
    }

    /// The error with all its causes, each once, and what to do when the database lacks
    /// migrations.
    pub(crate) fn message(&self) -> String {
        let chain = ErrorChain(self).to_string();
        if self
            .store_error()
            .is_some_and(|e| matches!(e, StoreError::NotMigrated(_)))
        {
            return format!("{chain}; run `billingctl migrate`");
        }
        chain
    }

    /// The store's error behind this one, if a store call failed.
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            CtlError::Store(e) | CtlError::App(AppError::Store(e)) => Some(e),
            _ => None,
        }
    }
}
