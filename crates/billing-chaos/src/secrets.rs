//! Random secrets per scenario, and the scan proving none of them reached a log.

use std::path::Path;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::error::{Result, io};

fn random_core(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(rng.sample(Alphanumeric)))
        .collect()
}

/// The secrets a server is started with; all random, so a match in a log cannot be chance.
#[derive(Clone)]
pub struct Secrets {
    /// The current webhook signing secret (`whsec_…`).
    pub webhook: String,
    /// The previous webhook secret, still accepted during a rotation.
    pub old_webhook: String,
    /// The Stripe secret key (`sk_test_…`).
    pub stripe_key: String,
    /// Two API keys for `/v1`.
    pub api_keys: [String; 2],
    /// A password carried in `DATABASE_URL` (trust auth ignores it; logs must not show it).
    pub db_password: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(***)")
    }
}

impl Secrets {
    /// Fresh random secrets.
    pub fn random(rng: &mut impl Rng) -> Self {
        Self {
            webhook: format!("whsec_{}", random_core(rng, 32)),
            old_webhook: format!("whsec_{}", random_core(rng, 32)),
            stripe_key: format!("sk_test_{}", random_core(rng, 40)),
            api_keys: [
                format!("chaos_key_{}", random_core(rng, 32)),
                format!("chaos_key_{}", random_core(rng, 32)),
            ],
            db_password: format!("pw{}", random_core(rng, 30)),
        }
    }

    /// `(label, value)` of every secret.
    fn labelled(&self) -> [(&'static str, &str); 6] {
        [
            ("webhook secret", &self.webhook),
            ("old webhook secret", &self.old_webhook),
            ("Stripe secret key", &self.stripe_key),
            ("API key 1", &self.api_keys[0]),
            ("API key 2", &self.api_keys[1]),
            ("database password", &self.db_password),
        ]
    }

    /// What to look for per secret: the whole secret, its random part without the prefix,
    /// and either half of that part (a truncated leak).
    fn needles(&self) -> Vec<(&'static str, String)> {
        self.labelled()
            .into_iter()
            .flat_map(|(label, secret)| {
                let core = secret
                    .rsplit_once('_')
                    .map_or(secret, |(_, core)| core)
                    .trim_start_matches("pw");
                let half = core.len() / 2;
                [secret, core, &core[..half], &core[half..]]
                    .into_iter()
                    .map(move |needle| (label, needle.to_owned()))
            })
            .collect()
    }

    /// The labels of the secrets found in `text`.
    pub fn found_in(&self, text: &str) -> Vec<&'static str> {
        let mut found: Vec<&'static str> = self
            .needles()
            .into_iter()
            .filter(|(_, needle)| text.contains(needle.as_str()))
            .map(|(label, _)| label)
            .collect();
        found.dedup();
        found
    }

    /// Every secret found in the files in `paths`, as `"file: label"`, and the bytes scanned.
    /// Logs at trace level are tens of megabytes, so the scan is GNU grep's (`grep -F`), with
    /// the needles in a temporary file that is deleted afterwards.
    pub fn scan_files(&self, paths: &[&Path]) -> Result<(Vec<String>, usize)> {
        let needles = self.needles();
        let patterns = std::env::temp_dir().join(crate::paths::unique_name("chaos-needles"));
        let list: String = needles.iter().map(|(_, n)| format!("{n}\n")).collect();
        std::fs::write(&patterns, list).map_err(io("write the needle list"))?;
        let mut found = Vec::new();
        let mut scanned = 0;
        let mut outcome = Ok(());
        for path in paths {
            scanned += std::fs::metadata(path)
                .map_err(io(format!("stat {}", path.display())))?
                .len() as usize;
            match crate::logs::grep_fixed(&patterns, path) {
                Ok(matches) => found.extend(
                    needles
                        .iter()
                        .filter(|(_, n)| matches.iter().any(|m| m == n))
                        .map(|(label, _)| format!("{}: {label}", path.display())),
                ),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(&patterns);
        outcome?;
        found.dedup();
        Ok((found, scanned))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_planted_secret_is_found_even_truncated() {
        let secrets = Secrets::random(&mut rand::rngs::StdRng::seed_from_u64(7));
        assert!(secrets.found_in("nothing to see here").is_empty());
        let line = format!("DEBUG request auth=Bearer {}", secrets.stripe_key);
        assert_eq!(secrets.found_in(&line), ["Stripe secret key"]);
        let truncated = &secrets.api_keys[1][..secrets.api_keys[1].len() - 4];
        assert_eq!(secrets.found_in(truncated), ["API key 2"]);
        let url = format!("postgres://postgres:{}@host/db", secrets.db_password);
        assert_eq!(secrets.found_in(&url), ["database password"]);
        assert!(!format!("{secrets:?}").contains(&secrets.webhook));
    }

    #[test]
    fn the_file_scan_finds_a_planted_secret() {
        let secrets = Secrets::random(&mut rand::rngs::StdRng::seed_from_u64(8));
        let dir = std::env::temp_dir().join(crate::paths::unique_name("chaos-scan-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let clean = dir.join("clean.log");
        let leaky = dir.join("leaky.log");
        std::fs::write(&clean, "INFO listening\nTRACE nothing\n").unwrap();
        let half = &secrets.webhook[6..6 + 16];
        std::fs::write(&leaky, format!("INFO ok\nDEBUG secret={half}…\n")).unwrap();
        let (found, scanned) = secrets.scan_files(&[&clean, &leaky]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, [format!("{}: webhook secret", leaky.display())]);
        assert!(scanned > 20);
    }
}
