//! `billingctl keys create | list | revoke`: API keys for `/v1` stored as SHA-256 hashes.

use std::path::PathBuf;

use billing_app::NewApiKey;
use billing_ports::ApiKeyRecord;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::cli::KeysCommand;
use crate::error::CtlError;
use crate::output::{Output, Table, time_and_age};

/// A key as `keys list --json` and `keys revoke --json` show it (never the hash).
#[derive(Serialize)]
struct Key {
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRecord> for Key {
    fn from(k: ApiKeyRecord) -> Self {
        Self {
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// `keys create --json`: the key itself, shown this once.
#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    key: Key,
    secret: String,
}

#[derive(Serialize)]
struct Keys {
    keys: Vec<Key>,
}

/// Runs one `keys` command.
pub(crate) async fn run(
    config: &Option<PathBuf>,
    command: KeysCommand,
    out: &Output,
) -> Result<(), CtlError> {
    let config = crate::app::config(config)?;
    let app = crate::app::open(&config)?;
    let now = Utc::now();
    let refresh_ms = config.server.api_key_refresh.as_millis();
    match command {
        KeysCommand::Create { name } => {
            let key = NewApiKey::generate().map_err(CtlError::Random)?;
            let record = app
                .create_api_key(&name, &key)
                .await?
                .ok_or_else(|| CtlError::NameTaken(name.clone()))?;
            let created = Created {
                key: record.into(),
                secret: key.secret().expose_secret().to_owned(),
            };
            out.print(&created, |c| {
                format!(
                    "created API key {:?}:\n\n    {}\n\nThis is the only time it is shown: only its hash is stored. Servers \
                     accept it within a second (send it as Authorization: Bearer …).",
                    c.key.name, c.secret
                )
            })
        }
        KeysCommand::List => {
            let keys = Keys {
                keys: app.api_keys().await?.into_iter().map(Key::from).collect(),
            };
            out.print(&keys, |k| {
                if k.keys.is_empty() {
                    return "no stored keys (only BILLING_API_KEYS are accepted)".to_owned();
                }
                let mut table = Table::new(&["NAME", "PREFIX", "CREATED", "REVOKED"]);
                for key in &k.keys {
                    table.row(vec![
                        key.name.clone(),
                        format!("{}…", key.prefix),
                        time_and_age(key.created_at, now),
                        key.revoked_at
                            .map_or_else(|| "-".to_owned(), |t| time_and_age(t, now)),
                    ]);
                }
                table.to_string()
            })
        }
        KeysCommand::Revoke { name } => {
            let key: Key = app
                .revoke_api_key(&name)
                .await?
                .ok_or_else(|| CtlError::NotFound(format!("no stored key named {name:?}")))?
                .into();
            out.print(&key, |k| {
                let at = k
                    .revoked_at
                    .map_or_else(String::new, |t| time_and_age(t, now));
                format!(
                    "revoked API key {:?} ({}…) at {at}; servers refuse it within \
                     API_KEYS_REFRESH_MS ({refresh_ms} ms)",
                    k.name, k.prefix
                )
            })
        }
    }
}
