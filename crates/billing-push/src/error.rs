//! The crate's one error type.

use billing_ports::StoreError;

/// What can go wrong configuring or running the push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A push URL is not an absolute `http`/`https` URL with a host. The message names the
    /// problem, never the URL (it may carry a credential).
    #[error("push URL {0}")]
    InvalidUrl(String),
    /// The signing secret is unusable; the message never quotes it.
    #[error("push secret {0}")]
    InvalidSecret(String),
    /// The HTTP client could not be built.
    #[error("push HTTP client: {0}")]
    Client(String),
    /// The store failed.
    #[error("push store: {0}")]
    Store(#[from] StoreError),
}
