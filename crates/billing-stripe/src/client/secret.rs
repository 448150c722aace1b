//! The Stripe secret key, kept out of every `Debug` and `Display` output.

use std::fmt;

/// A Stripe secret (or restricted) API key, `sk_…` or `rk_…`.
///
/// Its `Debug` output never shows the key, so a [`StripeClientConfig`](super::StripeClientConfig)
/// or a [`StripeClient`](super::StripeClient) can be logged whole. The key only leaves this
/// wrapper through [`SecretKey::expose`], which the client calls once to build the
/// `Authorization` header (which async-stripe marks as sensitive in turn).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl From<&str> for SecretKey {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The `sk_test_`/`sk_live_` prefix says which mode the key is for without revealing it.
        let mode = ["sk_live_", "sk_test_", "rk_live_", "rk_test_"]
            .into_iter()
            .find(|prefix| self.0.starts_with(prefix));
        match mode {
            Some(prefix) => write!(f, "SecretKey({prefix}[redacted])"),
            None => f.write_str("SecretKey([redacted])"),
        }
    }
}

/// Removes API keys from a message that is about to leave the client (an error or a log line).
///
/// Stripe masks most of a wrong key in its 401 message (`sk_test_****1234`), and async-stripe
/// does not put the key in its errors; this is a second line of defence that removes the
/// configured key wherever it appears and reduces any other `sk_…`/`rk_…` token to its prefix.
pub(super) fn redact(message: &str, secret: &SecretKey) -> String {
    let key = secret.expose();
    let message = if key.is_empty() {
        message.to_owned()
    } else {
        message.replace(key, "[redacted]")
    };
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(at) = find_key_token(rest) {
        out.push_str(&rest[..at + 3]);
        out.push_str("[redacted]");
        let token = &rest[at + 3..];
        let end = token
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '*'))
            .unwrap_or(token.len());
        rest = &token[end..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of the next `sk_`/`rk_` that starts a word and is followed by a key body.
fn find_key_token(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(3)).find(|&at| {
        let starts_word =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        starts_word
            && (bytes[at] == b's' || bytes[at] == b'r')
            && bytes[at + 1] == b'k'
            && bytes[at + 2] == b'_'
            && bytes
                .get(at + 3)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'*')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = SecretKey::new("sk_test_51Habcdefghijklmnop");
        let shown = format!("{key:?}");
        assert_eq!(shown, "SecretKey(sk_test_[redacted])");
        assert_eq!(
            format!("{:?}", SecretKey::new("whatever")),
            "SecretKey([redacted])"
        );
    }

    #[test]
    fn redact_removes_the_configured_key_and_other_key_tokens() {
        let key = SecretKey::new("sk_test_abc123");
        assert_eq!(
            redact("bad key sk_test_abc123 given", &key),
            "bad key [redacted] given"
        );
        assert_eq!(
            redact("Invalid API Key provided: sk_test_****1234.", &key),
            "Invalid API Key provided: sk_[redacted]."
        );
        assert_eq!(redact("rk_live_XYZ", &key), "rk_[redacted]");
        assert_eq!(redact("ask_me sk_ task_x", &key), "ask_me sk_ task_x");
        assert_eq!(redact("", &SecretKey::new("")), "");
    }
}
