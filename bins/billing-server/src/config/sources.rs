//! The three layers of the configuration, merged by figment in this order: the defaults below,
//! then an optional TOML file, then environment variables; a later layer wins.
//!
//! Each setting has one name, its environment variable; its key in the file is the same name
//! in lower case. Every value is kept as text (a TOML number or boolean becomes its text, an
//! array of strings a comma-separated list), so the validation pass reads each setting the
//! same way whichever layer set it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Num, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

/// Every setting and its default; `None` when it has none (required, or an optional override).
pub(super) const SETTINGS: [(&str, Option<&str>); 49] = [
    ("STRIPE_SECRET_KEY", None),
    ("STRIPE_WEBHOOK_SECRET", None),
    ("BILLING_API_KEYS", None),
    ("API_KEYS_REFRESH_MS", Some("10000")),
    ("DATABASE_URL", Some("sqlite://data/billing.sqlite")),
    ("DATABASE_MAX_CONNECTIONS", Some("16")),
    ("DATABASE_POOL_TIMEOUT_MS", Some("5000")),
    ("DATABASE_CONNECT_TIMEOUT_MS", Some("5000")),
    ("DATABASE_RECYCLE_TIMEOUT_MS", Some("1000")),
    ("DATABASE_STATEMENT_TIMEOUT_MS", Some("10000")),
    ("DATABASE_VERIFY_IDLE_AFTER_MS", Some("1000")),
    ("DATABASE_THREAD", Some("true")),
    ("DATABASE_RANDOM_PAGE_COST", Some("1.1")),
    ("PLANS_FILE", Some("plans.toml")),
    ("GRACE_DAYS", None),
    ("BIND_ADDR", Some("127.0.0.1:8080")),
    ("STRIPE_API_BASE", None),
    ("STRIPE_REFETCH", Some("false")),
    ("EVENT_RETENTION_DAYS", Some("30")),
    ("CHANGE_RETENTION_DAYS", Some("30")),
    ("GATE_CACHE_TTL_MS", Some("5000")),
    ("INGEST_BATCH", Some("8")),
    ("INGEST_LANES", Some("4")),
    ("JOB_RETENTION_ENABLED", Some("true")),
    ("JOB_RETENTION_INTERVAL_SECS", Some("3600")),
    ("JOB_RETENTION_DUTY_PERCENT", Some("50")),
    ("JOB_SWEEPER_ENABLED", Some("true")),
    ("JOB_SWEEPER_INTERVAL_SECS", Some("30")),
    ("JOB_RECONCILE_ENABLED", Some("false")),
    ("JOB_RECONCILE_INTERVAL_SECS", Some("600")),
    ("JOB_GRACE_ENABLED", Some("true")),
    ("JOB_GRACE_INTERVAL_SECS", Some("60")),
    ("JOB_LEASE_TTL_SECS", Some("60")),
    ("SWEEPER_BACKOFF_BASE_SECS", Some("60")),
    ("SWEEPER_BACKOFF_CAP_SECS", Some("21600")),
    ("SWEEPER_MAX_ATTEMPTS", Some("10")),
    ("PUSH_URLS", None),
    ("PUSH_SECRET", None),
    ("PUSH_TIMEOUT_MS", Some("5000")),
    ("PUSH_CONCURRENCY", Some("16")),
    ("PUSH_BACKOFF_BASE_SECS", Some("10")),
    ("PUSH_BACKOFF_CAP_SECS", Some("3600")),
    ("PUSH_MAX_ATTEMPTS", Some("12")),
    ("WEBHOOK_BODY_LIMIT", Some("1048576")),
    ("HTTP_REQUEST_TIMEOUT_MS", Some("5000")),
    ("HTTP_MAX_CONNECTIONS", Some("1024")),
    ("HTTP_WORKERS", None),
    ("SHUTDOWN_TIMEOUT_SECS", Some("30")),
    ("LOG_FORMAT", Some("pretty")),
];

/// One layer's settings, keyed by their lower-case names, with where they came from.
struct Layer {
    metadata: Metadata,
    values: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// A layer of text values named by their environment variables.
fn text_layer<'a>(name: &'static str, pairs: impl Iterator<Item = (&'a str, String)>) -> Layer {
    Layer {
        metadata: Metadata::named(name),
        values: pairs
            .map(|(name, value)| (name.to_ascii_lowercase(), Value::from(value)))
            .collect(),
    }
}

/// The file's layer, or the problems that keep it from being read. A syntax error is reported
/// by line and column only: the line's text may hold a secret.
fn file_layer(path: &Path, problems: &mut Vec<String>) -> Option<Layer> {
    let place = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| problems.push(format!("config file {place}: {e}")))
        .ok()?;
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(e) => {
            let at = e.span().map_or(0, |span| span.start);
            let line = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
            problems.push(format!(
                "config file {place}: not valid TOML at line {line}, column {column}: {}",
                e.message().trim_end()
            ));
            return None;
        }
    };
    let known = |key: &str| {
        SETTINGS
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(key))
    };
    for key in table.keys() {
        if !known(key) || key.to_ascii_lowercase() != *key {
            problems.push(format!(
                "config file {place}: unknown key `{key}` (keys are the variable names in lower \
                 case, as in billing.example.toml)"
            ));
        }
    }
    let values = Value::serialize(&table)
        .map_err(|e| problems.push(format!("config file {place}: {e}")))
        .ok()?
        .into_dict()
        .unwrap_or_default();
    Some(Layer {
        metadata: Metadata::from("config file", Source::File(path.to_owned())),
        values,
    })
}

/// The merged settings: each one's value as text, and the file it came from, if it did.
pub(super) struct Values {
    entries: BTreeMap<&'static str, (String, Option<PathBuf>)>,
    /// Settings whose value has a shape no setting takes (already reported).
    unreadable: BTreeSet<&'static str>,
}

impl Values {
    /// Merges the defaults, the file at `file` (if any) and the environment as read by `env`
    /// (blank values count as unset), recording in `problems` what cannot be read.
    pub(super) fn merge(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Self {
        let defaults = SETTINGS
            .iter()
            .filter_map(|(name, default)| Some((*name, (*default)?.to_owned())));
        let mut figment = Figment::new().merge(text_layer("default", defaults));
        if let Some(layer) = file.and_then(|path| file_layer(path, problems)) {
            figment = figment.merge(layer);
        }
        let set = SETTINGS.iter().filter_map(|(name, _)| {
            let value = env(name).filter(|v| !v.trim().is_empty())?;
            Some((*name, value))
        });
        let figment = figment.merge(text_layer("environment variable", set));
        let mut entries = BTreeMap::new();
        let mut unreadable = BTreeSet::new();
        for (name, _) in SETTINGS {
            let key = name.to_ascii_lowercase();
            let Ok(value) = figment.find_value(&key) else {
                continue;
            };
            let file = figment
                .get_metadata(value.tag())
                .and_then(|m| m.source.as_ref())
                .and_then(Source::file_path)
                .map(Path::to_owned);
            match as_text(&value) {
                Some(text) => {
                    entries.insert(name, (text, file));
                }
                None => {
                    unreadable.insert(name);
                    problems.push(format!(
                        "{name}{} must be a string, a number, a boolean or a list of strings",
                        origin(file.as_deref())
                    ));
                }
            }
        }
        Self {
            entries,
            unreadable,
        }
    }

    /// The value of the setting named `name` (its environment variable), if any layer set it.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        self.entries.get(name).map(|(text, _)| text.clone())
    }

    /// True when `name`'s value was refused for its shape: nothing more is said about it.
    pub(super) fn is_unreadable(&self, name: &str) -> bool {
        self.unreadable.contains(name)
    }

    /// Where `name`'s value came from, to append to a problem: nothing for the environment
    /// and the defaults, the file and key for the file.
    pub(super) fn origin(&self, name: &str) -> String {
        origin(self.entries.get(name).and_then(|(_, file)| file.as_deref()))
    }
}

fn origin(file: Option<&Path>) -> String {
    file.map_or_else(String::new, |path| format!(" (set in {})", path.display()))
}

/// A scalar as its text; an array of strings as a comma-separated list.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(_, text) => Some(text.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => Some(number_text(*n)),
        Value::Array(_, items) => items
            .iter()
            .map(|item| match item {
                Value::String(_, text) => Some(text.as_str()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(",")),
        Value::Dict(..) | Value::Empty(..) => None,
    }
}

fn number_text(n: Num) -> String {
    match (n.to_u128(), n.to_i128(), n.to_f64()) {
        (Some(u), _, _) => u.to_string(),
        (None, Some(i), _) => i.to_string(),
        (None, None, Some(f)) => f.to_string(),
        (None, None, None) => String::new(),
    }
}
