//! Standard Webhooks signatures: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! under the endpoint secret (`whsec_` and the base64 key), one per secret in force, separated
//! by spaces, so a receiver keeps verifying while the secret is rotated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::PushError;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The shortest key accepted, in bytes (the specification asks for 24 to 64).
const MIN_KEY_BYTES: usize = 24;
/// The longest key accepted, in bytes.
const MAX_KEY_BYTES: usize = 64;

/// One signing secret: the key bytes of a `whsec_…` string. `Debug` never shows them.
#[derive(Clone)]
pub struct PushSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for PushSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushSecret(<redacted>)")
    }
}

impl PushSecret {
    /// Reads `whsec_` followed by the base64 of a 24–64 byte key (the prefix may be left
    /// out). The error never quotes the secret.
    pub fn parse(secret: &str) -> Result<Self, PushError> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
        let key = STANDARD.decode(encoded).map_err(|_| {
            PushError::InvalidSecret("is not whsec_ followed by standard base64".to_owned())
        })?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(PushError::InvalidSecret(format!(
                "decodes to {} bytes; a key of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes is required",
                key.len()
            )));
        }
        Ok(Self { key })
    }

    /// The secret written as `whsec_…` (to hand to the product's receiver).
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The bare signature (base64, without `v1,`) of one message.
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // Any key length is valid for HMAC; the length was checked at parse.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// Signs messages with every secret in force, the current one first.
#[derive(Debug, Clone)]
pub struct Signer {
    secrets: Vec<PushSecret>,
}

impl Signer {
    /// A signer with `secrets` (at least one: the current first, then those a rotation keeps
    /// valid).
    pub fn new(secrets: Vec<PushSecret>) -> Result<Self, PushError> {
        if secrets.is_empty() {
            return Err(PushError::InvalidSecret(
                "at least one secret is required".to_owned(),
            ));
        }
        Ok(Self { secrets })
    }

    /// The `webhook-signature` header's value for message `id` sent at `timestamp` (Unix
    /// seconds) with `body`: `v1,<base64>` per secret, separated by spaces.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut header = String::new();
        for secret in &self.secrets {
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str("v1,");
            header.push_str(&secret.sign(id, timestamp, body));
        }
        header
    }
}
