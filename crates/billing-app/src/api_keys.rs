//! Stored API keys for `/v1`, besides the bootstrap keys of the configuration: a key is
//! `bk_` followed by 32 random base62 characters (about 190 bits), shown once when created;
//! the store keeps only its SHA-256 ([`api_key_hash`]) and its first characters for display.

use billing_ports::{ApiKeyRecord, BillingStore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{AppError, BillingApp};

/// What every stored key starts with.
pub const API_KEY_PREFIX: &str = "bk_";

/// How many random base62 characters follow the prefix.
const RANDOM_CHARS: usize = 32;

/// How many characters of a key are kept for display (the prefix and 6 random ones).
const SHOWN_CHARS: usize = API_KEY_PREFIX.len() + 6;

/// The longest key name.
pub const MAX_API_KEY_NAME_LEN: usize = 64;

pub(crate) const BASE62: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The SHA-256 of a presented or new key: what is stored and compared.
pub fn api_key_hash(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// A freshly generated key, before it is stored. `Debug` never shows it.
pub struct NewApiKey(SecretString);

impl NewApiKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = String::with_capacity(API_KEY_PREFIX.len() + RANDOM_CHARS);
        key.push_str(API_KEY_PREFIX);
        let mut bytes = [0u8; 64];
        while key.len() < API_KEY_PREFIX.len() + RANDOM_CHARS {
            getrandom::fill(&mut bytes)?;
            // 248 = 4 × 62: dropping the bytes above keeps every character equally likely.
            for byte in bytes.iter().filter(|b| **b < 248) {
                if key.len() == API_KEY_PREFIX.len() + RANDOM_CHARS {
                    break;
                }
                key.push(char::from(BASE62[usize::from(*byte % 62)]));
            }
        }
        Ok(Self(key.into()))
    }

    /// The key itself, to show once.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// Its first characters, kept for display (not secret).
    pub fn prefix(&self) -> String {
        self.0.expose_secret().chars().take(SHOWN_CHARS).collect()
    }
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewApiKey({}…, redacted)", self.prefix())
    }
}

/// Checks a key name: 1 to 64 characters among letters, digits, `.`, `_` and `-`.
fn check_name(name: &str) -> Result<(), AppError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_API_KEY_NAME_LEN || !name.chars().all(allowed) {
        return Err(AppError::BadRequest(format!(
            "a key name is 1 to {MAX_API_KEY_NAME_LEN} letters, digits, '.', '_' or '-' \
             (got {name:?})"
        )));
    }
    Ok(())
}

impl<S: BillingStore> BillingApp<S> {
    /// Stores `key` (its hash and prefix) under `name`, created now; `None` when a key (live
    /// or revoked) already has that name. A bad name is [`AppError::BadRequest`].
    pub async fn create_api_key(
        &self,
        name: &str,
        key: &NewApiKey,
    ) -> Result<Option<ApiKeyRecord>, AppError> {
        check_name(name)?;
        let record = ApiKeyRecord {
            name: name.to_owned(),
            prefix: key.prefix(),
            hash: api_key_hash(key.0.expose_secret().as_bytes()),
            created_at: self.clock().now(),
            revoked_at: None,
        };
        let created = self.store().insert_api_key(&record).await?;
        Ok(created.then_some(record))
    }

    /// Every stored key (revoked ones too), by name.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, AppError> {
        Ok(self.store().api_keys().await?)
    }

    /// Revokes the key named `name` now (a revoked key stays revoked at its first time); the
    /// key as it now stands, `None` when there is none of that name.
    pub async fn revoke_api_key(&self, name: &str) -> Result<Option<ApiKeyRecord>, AppError> {
        let now = self.clock().now();
        Ok(self.store().revoke_api_key(name, now).await?)
    }

    /// The hashes of the keys not revoked (what the `/v1` gate keeps in memory).
    pub async fn live_api_key_hashes(&self) -> Result<Vec<[u8; 32]>, AppError> {
        Ok(self.store().live_api_key_hashes().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_the_prefix_and_32_base62_characters_never_twice_the_same() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let key = NewApiKey::generate().unwrap_or_else(|e| panic!("{e}"));
            let text = key.secret().expose_secret().to_owned();
            assert_eq!(text.len(), 35, "{text}");
            assert!(text.starts_with("bk_"));
            assert!(text[3..].chars().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(key.prefix(), text[..9]);
            assert!(!format!("{key:?}").contains(&text[9..]));
            assert!(seen.insert(text));
        }
    }

    #[test]
    fn names_are_short_and_plain() {
        for good in ["web", "billing-worker.2", "A_b"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "x".repeat(65);
        for bad in ["", "with space", "é", "a/b", long.as_str()] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
