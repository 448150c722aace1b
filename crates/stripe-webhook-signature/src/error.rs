//! Error types. No message or `Debug` output ever contains a secret.

/// Why a webhook failed verification; no variant carries a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The `Stripe-Signature` header is absent, empty or only whitespace.
    #[error("the Stripe-Signature header is missing or empty")]
    MissingHeader,
    /// The header cannot be read the same way by both official Stripe SDKs.
    #[error("the Stripe-Signature header is malformed: {0}")]
    MalformedHeader(HeaderDefect),
    /// The header is readable but carries no `v1=` signature.
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    /// The body is not valid UTF-8, which stripe-python can never verify.
    #[error("the webhook body is not valid UTF-8, so the Stripe SDKs cannot verify it")]
    BodyNotUtf8,
    /// The body starts with a UTF-8 byte order mark, which the SDKs sign differently.
    #[error(
        "the webhook body starts with a UTF-8 byte order mark, which the Stripe SDKs do not sign alike"
    )]
    BodyStartsWithByteOrderMark,
    /// No `v1` signature matched the body under any configured secret.
    #[error("no v1 signature matches the body under any configured secret")]
    NoSignatureMatched,
    /// The signature is valid but the signed timestamp is too old.
    #[error(
        "the signed timestamp is {age_secs} s old, outside the tolerance of {tolerance_secs} s"
    )]
    TimestampOutsideTolerance {
        /// Seconds between the signed timestamp and the verification time.
        age_secs: i64,
        /// The configured tolerance in whole seconds.
        tolerance_secs: u64,
    },
}

/// What exactly is wrong with a malformed `Stripe-Signature` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderDefect {
    /// There is no `t=` item.
    #[error("no t= timestamp")]
    NoTimestamp,
    /// A `t` or `v1` item has no `=` (stripe-python cannot parse such a header).
    #[error("a t or v1 item has no '='")]
    ItemWithoutEquals,
    /// The `t` value is not an integer that both SDKs read the same way.
    #[error("the t= value is not an integer that both Stripe SDKs read alike")]
    InvalidTimestamp,
    /// Several `t` items that stripe-python (first wins) and stripe-node (last wins) read differently.
    #[error("several t= items that the Stripe SDKs read differently")]
    ConflictingTimestamps,
    /// The timestamp is an integer too large for an `i64`.
    #[error("the t= value does not fit in a 64-bit integer")]
    TimestampOutOfRange,
    /// A `v1=` item has an empty value (stripe-node throws on it).
    #[error("a v1= item is empty")]
    EmptySignature,
    /// A `v1` value holds non-ASCII characters in a position the SDKs fail on.
    #[error("a v1= value contains non-ASCII characters")]
    NonAsciiSignature,
}

/// Why the endpoint secrets given to [`Verifier::new`](crate::Verifier::new) cannot verify
/// anything: there are none, or one is blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSecrets {
    /// No secret was given.
    #[error("no webhook signing secret was given")]
    NoSecrets,
    /// The secret at this position is empty or only whitespace (often an unset environment variable).
    #[error("webhook signing secret #{index} is empty or whitespace")]
    BlankSecret {
        /// Zero-based position of the blank secret in the list given.
        index: usize,
    },
}
