//! The endpoint signing secret and the keyed HMAC state derived from it.

use core::fmt;

use hmac::digest::Key;
use hmac::{Hmac, KeyInit};
use sha2::{Digest, Sha256};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A webhook endpoint signing secret (`whsec_…`), used verbatim as the HMAC key.
///
/// Its `Debug` output is `Secret(***)`; it has no `Display`.
#[derive(Clone)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps an endpoint secret exactly as given (no trimming, like the official SDKs).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().into_boxed_str())
    }

    /// Whether the SDKs would refuse this secret: empty or only ASCII whitespace.
    pub fn is_blank(&self) -> bool {
        is_blank(&self.0)
    }

    /// The HMAC-SHA256 state keyed with this secret, ready to absorb a message.
    pub(crate) fn keyed_mac(&self) -> HmacSha256 {
        keyed_mac(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl From<&String> for Secret {
    fn from(secret: &String) -> Self {
        Self::new(secret.as_str())
    }
}

impl From<Box<str>> for Secret {
    fn from(secret: Box<str>) -> Self {
        Self(secret)
    }
}

impl From<&Secret> for Secret {
    fn from(secret: &Secret) -> Self {
        secret.clone()
    }
}

/// The SDKs' blank test: empty or only `[ \t\r\n\f\v]`.
fn is_blank(secret: &str) -> bool {
    secret
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\x0b'))
}

/// HMAC-SHA256 keyed with `key`, built through the infallible fixed-size-key
/// constructor: keys longer than the block are hashed first, shorter ones are
/// zero-padded, exactly as RFC 2104 (and `new_from_slice`) do.
pub(crate) fn keyed_mac(key: &[u8]) -> HmacSha256 {
    let mut block = Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    HmacSha256::new(&block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;

    #[test]
    fn keyed_mac_matches_new_from_slice_for_all_key_lengths() {
        for len in [0usize, 1, 31, 32, 63, 64, 65, 100, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut ours = keyed_mac(&key);
            let mut reference = HmacSha256::new_from_slice(&key).unwrap();
            ours.update(b"message");
            reference.update(b"message");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes(),
                "key length {len}"
            );
        }
    }

    #[test]
    fn blank_detection_matches_sdks() {
        assert!(Secret::new("").is_blank());
        assert!(Secret::new(" \t\r\n\x0b\x0c").is_blank());
        assert!(!Secret::new("\u{a0}").is_blank());
        assert!(!Secret::new(" whsec_x ").is_blank());
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Secret::new("whsec_topsecret")),
            "Secret(***)"
        );
        assert_eq!(
            format!("{:#?}", Secret::new("whsec_topsecret")),
            "Secret(***)"
        );
    }
}
