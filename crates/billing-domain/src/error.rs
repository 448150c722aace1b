//! The domain crate's error type.

use thiserror::Error;

/// Errors raised by domain constructors and parsers.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// A currency code that is not three ASCII letters.
    #[error("invalid currency code {0:?}: expected three letters such as \"usd\"")]
    InvalidCurrency(String),
}
