//! The adapter's error type and its mapping onto the port's [`StoreError`].

use std::str::FromStr;

use billing_ports::StoreError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use thiserror::Error;

/// Failures of setting the store up (opening pools, running migrations).
#[derive(Debug, Error)]
pub enum SetupError {
    /// The database URL is neither `postgres://…` nor `sqlite://…` / a file path.
    #[error("unsupported database url scheme (expected postgres:// or sqlite://)")]
    UnsupportedUrl,
    /// The pool could not be built.
    #[error("could not build the connection pool: {0}")]
    Pool(String),
    /// A connection could not be opened.
    #[error("could not connect to the database: {0}")]
    Connect(String),
    /// Migrations failed.
    #[error("migrations failed: {0}")]
    Migration(String),
}

/// Why a transaction ended in an error: the unit of work's own error, or the database's
/// (for example when committing).
pub(crate) enum TxFailure<E> {
    /// The unit of work returned an error.
    Work(E),
    /// Diesel failed (begin, commit, rollback).
    Database(DieselError),
}

impl<E> From<DieselError> for TxFailure<E> {
    fn from(error: DieselError) -> Self {
        TxFailure::Database(error)
    }
}

/// Maps a Diesel error onto the port's error.
pub(crate) fn db_err(error: DieselError) -> StoreError {
    match &error {
        DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
            info,
        ) => StoreError::Conflict(info.message().to_owned()),
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
            StoreError::Unavailable(info.message().to_owned())
        }
        DieselError::BrokenTransactionManager => StoreError::Unavailable(error.to_string()),
        DieselError::DatabaseError(_, info)
            if info.message().contains("does not exist")
                || info.message().contains("no such table") =>
        {
            StoreError::NotMigrated(info.message().to_owned())
        }
        _ => StoreError::Query(error.to_string()),
    }
}

/// Parses a stored enum column, reporting a corrupt value.
pub(crate) fn parse_stored<T: FromStr<Err = StoreError>>(value: &str) -> Result<T, StoreError> {
    value.parse()
}
