//! The adapter's error type and its mapping onto the port's [`StoreError`].

use std::str::FromStr;

use billing_ports::{Cause, StoreError};
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
    /// The database thread ([`StoreSettings::database_thread`](crate::StoreSettings)) could
    /// not be started.
    #[error("could not start the database thread: {0}")]
    Thread(String),
    /// Migrations failed.
    #[error("migrations failed: {0}")]
    Migration(String),
    /// The pool settings cannot work (no connections, a zero time limit).
    #[error("invalid store settings: {0}")]
    InvalidSettings(String),
    /// The database did not answer within the store's time limits.
    #[error("the database did not answer: {0}")]
    Unavailable(String),
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

/// True when `error` says the connection is gone rather than that the statement failed: the
/// database closed it (an administrator's or a shutdown's termination is followed by the
/// close), the network dropped it, or the connection task died. Decided by Diesel's error kind
/// and type only, never by message text:
///
/// - `ClosedConnection`: Diesel's own "the connection was closed";
/// - `UnableToSendCommand`: what diesel-async reports for every tokio-postgres error that
///   carries no SQLSTATE (connection closed, I/O error, background task gone) and for a
///   SQLite worker thread that could not run the statement;
/// - `BrokenTransactionManager`: the connection is in an unknown transaction state;
/// - a commit whose rollback failed, when either error is one of these.
pub(crate) fn connection_lost(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => connection_lost(rollback_error) || connection_lost(commit_error),
        _ => false,
    }
}

/// Maps a Diesel error onto the port's error, keeping the Diesel error as its cause.
///
/// Decided by Diesel's error kind only. A failure Diesel cannot name (an unknown table among
/// them: diesel-async does not expose the SQLSTATE) is a [`StoreError::Query`] here; the store
/// then tells a database that lacks a migration by its recorded migrations
/// (`Tx::diagnose`), never by the message.
pub(crate) fn db_err(error: DieselError) -> StoreError {
    if connection_lost(&error) {
        return StoreError::Unavailable(Cause::new(error));
    }
    let kind = match &error {
        DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
            _,
        ) => StoreError::Conflict,
        DieselError::DatabaseError(
            DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation,
            _,
        ) => StoreError::Refused,
        _ => StoreError::Query,
    };
    kind(Cause::new(error))
}

/// Parses a stored enum column, reporting a corrupt value.
pub(crate) fn parse_stored<T: FromStr>(value: &str) -> Result<T, StoreError> {
    value.parse().map_err(|_| {
        let name = std::any::type_name::<T>()
            .rsplit("::")
            .next()
            .unwrap_or("value");
        StoreError::Corrupt(billing_ports::Cause::msg(format!(
            "unknown {name} {value:?}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_lost_connection_is_unavailable_whatever_its_message_says() {
        for error in [
            database(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            database(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            // diesel-async's wording for an I/O error: the kind decides, not the words.
            database(
                DatabaseErrorKind::UnableToSendCommand,
                "error communicating with the server: Connection reset by peer (os error 104)",
            ),
            DieselError::BrokenTransactionManager,
            DieselError::RollbackErrorOnCommit {
                rollback_error: Box::new(database(
                    DatabaseErrorKind::UnableToSendCommand,
                    "connection closed",
                )),
                commit_error: Box::new(database(
                    DatabaseErrorKind::Unknown,
                    "terminating connection due to administrator command",
                )),
            },
        ] {
            let text = format!("{error:?}");
            assert!(
                matches!(db_err(error), StoreError::Unavailable(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn statement_failures_are_not_lost_connections_even_when_they_mention_connections() {
        // A message that merely talks about connections is not a lost connection.
        let error = database(DatabaseErrorKind::Unknown, "connection closed");
        assert!(matches!(db_err(error), StoreError::Query(_)));
        let error = database(
            DatabaseErrorKind::CheckViolation,
            "new row violates check constraint",
        );
        assert!(matches!(db_err(error), StoreError::Refused(_)));
        let error = database(DatabaseErrorKind::UniqueViolation, "duplicate key");
        assert!(matches!(db_err(error), StoreError::Conflict(_)));
    }

    #[test]
    fn the_diesel_error_itself_is_the_source() {
        let error = db_err(database(
            DatabaseErrorKind::CheckViolation,
            "new row violates check constraint \"amount_positive\"",
        ));
        let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<Cause>());
        let diesel = source.and_then(Cause::downcast_ref::<DieselError>);
        assert!(
            matches!(
                diesel,
                Some(DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info))
                    if info.message().contains("amount_positive")
            ),
            "{error:?}"
        );
        // The kind is said once, the database's message once.
        assert_eq!(
            billing_ports::ErrorChain(&error).to_string(),
            "value refused by the database: new row violates check constraint \"amount_positive\""
        );

        let lost = db_err(DieselError::BrokenTransactionManager);
        assert!(matches!(
            lost.cause().downcast_ref::<DieselError>(),
            Some(DieselError::BrokenTransactionManager)
        ));
        let other = db_err(DieselError::NotFound);
        assert!(matches!(&other, StoreError::Query(_)));
        assert!(matches!(
            other.cause().downcast_ref::<DieselError>(),
            Some(DieselError::NotFound)
        ));
    }
}
