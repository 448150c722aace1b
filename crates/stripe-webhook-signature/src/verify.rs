//! The verifier: one or more secrets plus a timestamp tolerance.

use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::Mac;
use subtle::{Choice, ConstantTimeEq};

use crate::error::{HeaderDefect, InvalidSecrets, SignatureError};
use crate::header;
use crate::secret::{HmacSha256, Secret};
use crate::sign::{format_i64, hex_lower};
use crate::utf8;

/// The tolerance the official SDKs use by default: 300 seconds.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Verifies `Stripe-Signature` headers against one or more endpoint secrets.
///
/// Build it once at start-up and share it (it is `Clone + Send + Sync`); its
/// `Debug` output shows how many secrets it holds, never the secrets.
#[derive(Clone)]
pub struct Verifier {
    /// HMAC-SHA256 states already keyed with each secret, in the order given.
    keyed: Vec<HmacSha256>,
    /// Whole seconds; `None` skips the timestamp check.
    tolerance_secs: Option<u64>,
}

/// What a successful verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verified {
    timestamp: i64,
    secret_index: usize,
}

impl Verified {
    /// The signed `t=` timestamp, in Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Position, in the list given to [`Verifier::new`], of the first secret that matched.
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

impl Verifier {
    /// Builds a verifier from the endpoint secrets (current first, then any
    /// still-valid old ones); fails when there is none or one is blank.
    pub fn new<S: Into<Secret>>(
        secrets: impl IntoIterator<Item = S>,
    ) -> Result<Self, InvalidSecrets> {
        let mut keyed = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let secret = secret.into();
            if secret.is_blank() {
                return Err(InvalidSecrets::BlankSecret { index });
            }
            keyed.push(secret.keyed_mac());
        }
        if keyed.is_empty() {
            return Err(InvalidSecrets::NoSecrets);
        }
        Ok(Self {
            keyed,
            tolerance_secs: Some(DEFAULT_TOLERANCE.as_secs()),
        })
    }

    /// Sets the tolerance (whole seconds; sub-second parts are dropped): an event is
    /// accepted while `now - t` is strictly less than it, so zero accepts no past second.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance_secs = Some(tolerance.as_secs());
        self
    }

    /// Turns the timestamp check off (what the SDKs do with `tolerance = 0`), for offline replays.
    #[must_use]
    pub fn without_timestamp_check(mut self) -> Self {
        self.tolerance_secs = None;
        self
    }

    /// The tolerance in force, or `None` when the timestamp check is off.
    pub fn tolerance(&self) -> Option<Duration> {
        self.tolerance_secs.map(Duration::from_secs)
    }

    /// How many secrets this verifier tries.
    pub fn secret_count(&self) -> usize {
        self.keyed.len()
    }

    /// Verifies `body` (the raw request bytes) against `header` at the system clock's current time.
    pub fn verify(&self, body: &[u8], header: &str) -> Result<Verified, SignatureError> {
        self.verify_at(body, header, unix_now())
    }

    /// Like [`verify`](Self::verify), taking the header as an `Option` (`None` means the header was absent).
    pub fn verify_opt(
        &self,
        body: &[u8],
        header: Option<&str>,
    ) -> Result<Verified, SignatureError> {
        self.verify_at_opt(body, header, unix_now())
    }

    /// Like [`verify_at`](Self::verify_at), taking the header as an `Option` (`None` means absent).
    pub fn verify_at_opt(
        &self,
        body: &[u8],
        header: Option<&str>,
        now_unix: i64,
    ) -> Result<Verified, SignatureError> {
        self.verify_at(body, header.ok_or(SignatureError::MissingHeader)?, now_unix)
    }

    /// Verifies `body` against `header` as if the current time were `now_unix` (Unix seconds).
    ///
    /// Accepts exactly when both official SDKs (stripe-python and stripe-node)
    /// would accept at every instant of that second and both authenticate the
    /// same signed message; see the crate documentation for the details.
    pub fn verify_at(
        &self,
        body: &[u8],
        header: &str,
        now_unix: i64,
    ) -> Result<Verified, SignatureError> {
        if header.trim().is_empty() {
            return Err(SignatureError::MissingHeader);
        }
        let parsed = header::parse(header)?;
        if parsed.v1_count == 0 {
            return Err(SignatureError::NoV1Signature);
        }
        // stripe-python decodes the body strictly; stripe-node decodes it
        // lossily and drops a leading BOM. Only bodies both read alike pass.
        if body.starts_with(UTF8_BOM) {
            return Err(SignatureError::BodyStartsWithByteOrderMark);
        }
        if !utf8::is_utf8(body) {
            return Err(SignatureError::BodyNotUtf8);
        }

        let mut digits = [0u8; 20];
        let timestamp = format_i64(parsed.timestamp, &mut digits);

        let mut hit_non_ascii = false;
        let mut matched = None;
        for (index, keyed) in self.keyed.iter().enumerate() {
            let mut mac = keyed.clone();
            mac.update(timestamp);
            mac.update(b".");
            mac.update(body);
            let expected = hex_lower(&mac.finalize().into_bytes());
            let (found, stopped) = any_v1_matches(header, &expected);
            hit_non_ascii |= stopped;
            if found {
                matched = Some(index);
                break;
            }
        }
        let Some(secret_index) = matched else {
            return Err(if hit_non_ascii {
                SignatureError::MalformedHeader(HeaderDefect::NonAsciiSignature)
            } else {
                SignatureError::NoSignatureMatched
            });
        };

        if let Some(tolerance) = self.tolerance_secs {
            // Exact arithmetic; "strictly less" because the real clock is
            // somewhere inside the second `now_unix`, and stripe-python
            // compares against that fractional time.
            let age = i128::from(now_unix) - i128::from(parsed.timestamp);
            if age >= i128::from(tolerance) {
                return Err(SignatureError::TimestampOutsideTolerance {
                    age_secs: i64::try_from(age).unwrap_or(i64::MAX),
                    tolerance_secs: tolerance,
                });
            }
        }
        Ok(Verified {
            timestamp: parsed.timestamp,
            secret_index,
        })
    }
}

/// Compares every `v1` value with `expected` in constant time per value.
///
/// Returns `(found, stopped)`: stripe-python compares values in order and
/// raises at the first non-ASCII one, so matches only count before it;
/// `stopped` tells that such a value cut the search short.
fn any_v1_matches(header: &str, expected: &[u8; 64]) -> (bool, bool) {
    let mut found = Choice::from(0);
    for value in header::v1_values(header) {
        if !value.is_ascii() {
            return (bool::from(found), !bool::from(found));
        }
        if let Ok(candidate) = <&[u8; 64]>::try_from(value.as_bytes()) {
            found |= ct_eq_64(candidate, expected);
        }
    }
    (bool::from(found), false)
}

/// Constant-time equality of two 64-byte strings: the differences are
/// OR-ed together without branching, and only the final word goes through
/// `subtle` (one optimisation barrier instead of 64).
fn ct_eq_64(a: &[u8; 64], b: &[u8; 64]) -> Choice {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff.ct_eq(&0)
}

/// The system clock in whole Unix seconds (floored, also before 1970).
fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let floor = if before.subsec_nanos() > 0 { 1 } else { 0 };
            0i64.saturating_sub(secs).saturating_sub(floor)
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &format_args!("[*** x{}]", self.keyed.len()))
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}
