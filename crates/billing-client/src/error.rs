//! The client's one error type: what a caller needs to fail closed or open on purpose.

use std::fmt;
use std::time::Duration;

use billing_api::UsageRefused;

/// Why the server did not grant what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    /// The user's plan does not have the feature (`require_feature`).
    Feature {
        /// The feature asked about.
        feature: String,
        /// The tier in force.
        tier: String,
        /// Why the tier is what it is (`no_subscription`, `grace_period_over`, …).
        reason: String,
    },
    /// The usage would exceed the period's limit (402 `usage_limit_exceeded`); nothing was
    /// counted. `period_end` is when the usage starts again from zero.
    UsageLimit(Box<UsageRefused>),
    /// Another 402 answer.
    Other {
        /// The answer's error code.
        code: String,
        /// The answer's message.
        message: String,
    },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Feature {
                feature,
                tier,
                reason,
            } => write!(f, "feature {feature} is not in tier {tier} ({reason})"),
            Denial::UsageLimit(refused) => write!(
                f,
                "usage limit reached ({} used of {}) until {}",
                refused.used,
                refused
                    .limit
                    .map_or_else(|| "unlimited".to_owned(), |l| l.to_string()),
                billing_api::time::format(&refused.period_end)
            ),
            Denial::Other { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

/// Everything a call can end with besides its answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The server answered, and the answer is no (402, or a feature the plan lacks).
    #[error("denied: {reason}")]
    Denied {
        /// Why.
        reason: Denial,
    },
    /// The server does not know the thing asked about (404: an unknown feature, a user without
    /// a Stripe customer, a Stripe object).
    #[error("not found ({code}): {message}")]
    NotFound {
        /// The answer's error code (`unknown_feature`, `unknown_user`, …).
        code: String,
        /// The answer's message.
        message: String,
    },
    /// The API key is missing or refused (401).
    #[error("unauthorized ({code}): {message}")]
    Unauthorized {
        /// `missing_api_key` or `invalid_api_key`.
        code: String,
        /// The answer's message.
        message: String,
    },
    /// The request was refused as sent (400, 413, 415, 422): retrying it cannot help.
    #[error("invalid input ({code}): {message}")]
    InvalidInput {
        /// The answer's error code (`unknown_metric`, `invalid_cursor`, …).
        code: String,
        /// The answer's message.
        message: String,
    },
    /// The change feed cursor is older than what the server keeps (410 `cursor_expired`):
    /// records after it were purged by the server's retention. What they would have told must
    /// be read again (entitlements, say); the feed then goes on from the start, without a
    /// cursor.
    #[error("change feed cursor expired: {message}")]
    CursorExpired {
        /// The answer's message (the cursor and the server's horizon).
        message: String,
    },
    /// Too many requests (429); `retry_after` is the server's `Retry-After`, when it sent one.
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// How long to wait before asking again.
        retry_after: Option<Duration>,
    },
    /// The server could not answer: a 5xx or 408 answer, a timeout, a refused or broken
    /// connection. Retried for safe calls before it is returned.
    #[error("billing unavailable: {message}")]
    Unavailable {
        /// The HTTP status, when the server answered.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The answer could not be read as the type the route answers (a server of another
    /// version, or something else on that address).
    #[error("unreadable answer (HTTP {status}): {message}")]
    Decode {
        /// The HTTP status of the answer.
        status: u16,
        /// What did not match.
        message: String,
    },
    /// An answer this client does not expect (a redirect, 405, …).
    #[error("unexpected answer (HTTP {status}, {code}): {message}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// The answer's error code, if it had one.
        code: String,
        /// The answer's message or body.
        message: String,
    },
    /// The client is misconfigured (a base URL that is not http(s), an API key that cannot be
    /// sent in a header, …).
    #[error("client configuration: {0}")]
    Config(String),
}

impl Error {
    /// True when asking again later may succeed ([`Error::Unavailable`]); the client already
    /// retried safe calls before returning it.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// True when the billing server gave no answer on the question itself (unavailable, rate
    /// limited, unreadable or unexpected answer): where a caller chooses to fail open or
    /// closed. A denial, an unknown name or a refused key is an answer, never this.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. }
                | Error::RateLimited { .. }
                | Error::Decode { .. }
                | Error::Unexpected { .. }
        )
    }

    /// The [`Denial`] of a [`Error::Denied`].
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Error::Denied { reason } => Some(reason),
            _ => None,
        }
    }

    /// A transport failure (no HTTP answer, or its body could not be read).
    pub(crate) fn transport(error: &reqwest::Error) -> Self {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        Error::Unavailable {
            status: error.status().map(|s| s.as_u16()),
            message: format!("{what}: {}", ErrorSources(error)),
        }
    }
}

/// An error with its sources, `: `-separated (reqwest's own message hides the cause).
struct ErrorSources<'e>(&'e (dyn std::error::Error + 'static));

impl fmt::Display for ErrorSources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
