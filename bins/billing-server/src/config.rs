//! The server's configuration: defaults, then an optional `billing.toml`, then environment
//! variables (`sources`), checked in one pass that lists every problem in one error, and
//! turned into the typed [`billing_http::Settings`]. Secrets become `SecretString`s as soon as
//! they are checked, and no problem message quotes one. `billingctl` reads the same
//! configuration through this module.

mod sources;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use billing_domain::Catalog;
use billing_http::{
    DatabaseSettings, IngestSettings, JobSchedule, JobSettings, ServerLimits, Settings,
    StripeSettings,
};
use billing_push::{PushConfig, PushEndpoint, PushSecret, PushSettings, Signer};
use billing_store_diesel::StoreSettings;
use chrono::TimeDelta;
use secrecy::SecretString;

use self::sources::Values;

/// The longest interval or backoff a setting may ask for, in seconds.
const WEEK: u64 = 7 * 24 * 3600;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "billing.toml";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Everything the binary needs: the server's settings and how to log.
#[derive(Debug)]
pub struct Config {
    /// What `billing_http::Server::build` needs (also the database and catalog `billingctl`
    /// opens).
    pub server: Settings,
    /// How to log.
    pub log_format: LogFormat,
}

/// Every problem found in the configuration, each naming its setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct InvalidConfig(pub Vec<String>);

impl Config {
    /// Reads `file` when given (it must exist), else `./billing.toml` when present, then the
    /// process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, InvalidConfig> {
        Self::read(file_or_default(file), |name| std::env::var(name).ok())
    }

    /// The catalog alone (`PLANS_FILE`, `GRACE_DAYS`), read from the same layers as
    /// [`Config::load`] without requiring the other settings: for tools that need only the
    /// plans (`billingctl trigger`).
    pub fn load_catalog(file: Option<&Path>) -> Result<Catalog, InvalidConfig> {
        Self::read_catalog(file_or_default(file), |name| std::env::var(name).ok())
    }

    /// [`Config::load_catalog`] with the environment as `env` gives it.
    pub fn read_catalog(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Catalog, InvalidConfig> {
        let mut problems = Vec::new();
        let values = Values::merge(file, env, &mut problems);
        let mut check = Check { values, problems };
        match check.catalog() {
            Some(catalog) if check.problems.is_empty() => Ok(catalog),
            _ => Err(InvalidConfig(check.problems)),
        }
    }

    /// Reads the defaults, `file` and the environment as `env` gives it (the process's, or a
    /// map in tests).
    pub fn read(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, InvalidConfig> {
        let mut problems = Vec::new();
        let values = Values::merge(file, env, &mut problems);
        let mut check = Check { values, problems };
        let config = check.config();
        match config {
            Some(config) if check.problems.is_empty() => Ok(config),
            _ => Err(InvalidConfig(check.problems)),
        }
    }
}

/// `file` when given, else `./billing.toml` when present.
fn file_or_default(file: Option<&Path>) -> Option<&Path> {
    let default = Path::new(DEFAULT_FILE);
    file.or_else(|| default.is_file().then_some(default))
}

/// The validation pass: reads each setting, records what is wrong and goes on.
struct Check {
    values: Values,
    problems: Vec<String>,
}

impl Check {
    /// Records that `name`'s value `message`, naming the file when it came from one.
    fn problem(&mut self, name: &str, message: impl std::fmt::Display) {
        if self.values.is_unreadable(name) {
            return;
        }
        let origin = self.values.origin(name);
        self.problems.push(format!("{name} {message}{origin}"));
    }

    /// A whole number from `min` to `max`.
    fn number(&mut self, name: &str, min: u64, max: u64) -> u64 {
        match self.values.get(name).map(|v| v.trim().parse::<u64>()) {
            Some(Ok(n)) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(name, format!("must be a whole number from {min} to {max}"));
                min
            }
        }
    }

    /// A duration in milliseconds, from 1 ms to 10 minutes.
    fn millis(&mut self, name: &str) -> Duration {
        Duration::from_millis(self.number(name, 1, 600_000))
    }

    /// A comma-separated list, blanks dropped.
    fn list(&self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// One of `choices` (their text and value).
    fn choice<T: Copy>(&mut self, name: &str, choices: &[(&str, T)], wanted: &str) -> T {
        let value = self.values.get(name).unwrap_or_default();
        match choices.iter().find(|(text, _)| *text == value.trim()) {
            Some((_, chosen)) => *chosen,
            None => {
                self.problem(name, format!("must be {wanted}"));
                choices[0].1
            }
        }
    }

    fn config(&mut self) -> Option<Config> {
        let pool = StoreSettings {
            pool_timeout: self.millis("DATABASE_POOL_TIMEOUT_MS"),
            connect_timeout: self.millis("DATABASE_CONNECT_TIMEOUT_MS"),
            recycle_timeout: self.millis("DATABASE_RECYCLE_TIMEOUT_MS"),
            statement_timeout: self.millis("DATABASE_STATEMENT_TIMEOUT_MS"),
            verify_idle_after: Duration::from_millis(self.number(
                "DATABASE_VERIFY_IDLE_AFTER_MS",
                0,
                600_000,
            )),
            max_connections: self.number("DATABASE_MAX_CONNECTIONS", 1, 1_000) as usize,
            database_thread: self.flag("DATABASE_THREAD"),
            random_page_cost: self.random_page_cost(),
        };
        let request_timeout =
            Duration::from_millis(self.number("HTTP_REQUEST_TIMEOUT_MS", 100, 600_000));
        let max_connections = self.number("HTTP_MAX_CONNECTIONS", 1, 100_000) as usize;
        let workers = match self.values.get("HTTP_WORKERS") {
            Some(_) => self.number("HTTP_WORKERS", 1, 1024) as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let shutdown_timeout = Duration::from_secs(self.number("SHUTDOWN_TIMEOUT_SECS", 1, 3_600));
        let retention_days = self.number("EVENT_RETENTION_DAYS", 0, 3_650);
        let change_retention_days = self.number("CHANGE_RETENTION_DAYS", 1, 3_650);
        let gate_cache_ttl = Duration::from_millis(self.number("GATE_CACHE_TTL_MS", 0, 3_600_000));
        let ingest_batch = self.number("INGEST_BATCH", 1, 1_000) as usize;
        let ingest_lanes = self.number("INGEST_LANES", 1, 256) as usize;
        let webhook_body_limit = self.number("WEBHOOK_BODY_LIMIT", 0, 64 * 1024 * 1024) as usize;
        let jobs = self.jobs(pool.statement_timeout);
        let push = self.push();
        let stripe = self.stripe();
        let api_keys = self.api_keys();
        let api_key_refresh =
            Duration::from_millis(self.number("API_KEYS_REFRESH_MS", 100, 3_600_000));
        let url = self.database_url();
        let bind_addr = self.bind_addr();
        let log_format = self.choice(
            "LOG_FORMAT",
            &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
            "pretty or json",
        );
        let catalog = self.catalog();
        Some(Config {
            server: Settings {
                database: DatabaseSettings { url, pool },
                stripe,
                catalog: catalog?,
                api_keys,
                api_key_refresh,
                bind_addr,
                limits: ServerLimits {
                    request_timeout,
                    max_connections,
                    workers,
                },
                webhook_body_limit,
                shutdown_timeout,
                event_retention: TimeDelta::days(retention_days as i64),
                change_retention: TimeDelta::days(change_retention_days as i64),
                gate_cache_ttl,
                ingest: IngestSettings {
                    batch: ingest_batch,
                    lanes: ingest_lanes,
                },
                jobs,
                push,
            },
            log_format,
        })
    }

    /// A boolean: `true`/`1` or `false`/`0`.
    fn flag(&mut self, name: &str) -> bool {
        self.choice(
            name,
            &[("false", false), ("0", false), ("true", true), ("1", true)],
            "true or false",
        )
    }

    /// `DATABASE_RANDOM_PAGE_COST`: a number from 0.1 to 100, or `database` (the database's own).
    fn random_page_cost(&mut self) -> Option<f64> {
        const NAME: &str = "DATABASE_RANDOM_PAGE_COST";
        let value = self.values.get(NAME).unwrap_or_default();
        match value.trim() {
            "database" => None,
            text => match text.parse::<f64>() {
                Ok(cost) if (0.1..=100.0).contains(&cost) => Some(cost),
                _ => {
                    self.problem(NAME, "must be a number from 0.1 to 100, or database");
                    None
                }
            },
        }
    }

    /// A duration in whole seconds from `min` to `max`.
    fn secs(&mut self, name: &str, min: u64, max: u64) -> Duration {
        Duration::from_secs(self.number(name, min, max))
    }

    /// The background jobs; a lease must outlast one database call (`statement_timeout`).
    fn jobs(&mut self, statement_timeout: Duration) -> JobSettings {
        let retention = JobSchedule {
            enabled: self.flag("JOB_RETENTION_ENABLED"),
            interval: self.secs("JOB_RETENTION_INTERVAL_SECS", 1, WEEK),
        };
        let sweeper = JobSchedule {
            enabled: self.flag("JOB_SWEEPER_ENABLED"),
            interval: self.secs("JOB_SWEEPER_INTERVAL_SECS", 1, WEEK),
        };
        let reconcile = JobSchedule {
            enabled: self.flag("JOB_RECONCILE_ENABLED"),
            interval: self.secs("JOB_RECONCILE_INTERVAL_SECS", 10, WEEK),
        };
        let retention_duty_percent = self.number("JOB_RETENTION_DUTY_PERCENT", 1, 100) as u8;
        let grace = JobSchedule {
            enabled: self.flag("JOB_GRACE_ENABLED"),
            interval: self.secs("JOB_GRACE_INTERVAL_SECS", 1, WEEK),
        };
        let lease_ttl = self.secs("JOB_LEASE_TTL_SECS", 1, 3600);
        if lease_ttl <= statement_timeout {
            self.problem(
                "JOB_LEASE_TTL_SECS",
                "must be longer than DATABASE_STATEMENT_TIMEOUT_MS (a job renews its lease between database calls)",
            );
        }
        let base = self.secs("SWEEPER_BACKOFF_BASE_SECS", 1, WEEK);
        let cap = self.secs("SWEEPER_BACKOFF_CAP_SECS", 1, WEEK);
        if cap < base {
            self.problem(
                "SWEEPER_BACKOFF_CAP_SECS",
                "must be at least SWEEPER_BACKOFF_BASE_SECS",
            );
        }
        let max_attempts = self.number("SWEEPER_MAX_ATTEMPTS", 1, 1_000) as u32;
        let delta = |d: Duration| TimeDelta::seconds(d.as_secs() as i64);
        JobSettings {
            lease_ttl,
            retention,
            retention_duty_percent,
            sweeper,
            reconcile,
            grace,
            retry: billing_ports::Backoff {
                base: delta(base),
                cap: delta(cap),
            },
            max_attempts,
        }
    }

    /// The push of the change feed: `PUSH_URLS` (comma-separated, each http or https) and
    /// `PUSH_SECRET` (`whsec_…`, comma-separated during a rotation, current first) together,
    /// or neither.
    fn push(&mut self) -> Option<PushConfig> {
        let urls = self.list("PUSH_URLS");
        let secrets = self.list("PUSH_SECRET");
        let timeout = self.millis("PUSH_TIMEOUT_MS");
        let concurrency = self.number("PUSH_CONCURRENCY", 1, 1_024) as usize;
        let base = self.secs("PUSH_BACKOFF_BASE_SECS", 1, WEEK);
        let cap = self.secs("PUSH_BACKOFF_CAP_SECS", 1, WEEK);
        if cap < base {
            self.problem(
                "PUSH_BACKOFF_CAP_SECS",
                "must be at least PUSH_BACKOFF_BASE_SECS",
            );
        }
        let max_attempts = self.number("PUSH_MAX_ATTEMPTS", 1, 1_000) as u32;
        if urls.is_empty() {
            if !secrets.is_empty() {
                self.problem("PUSH_SECRET", "is set but PUSH_URLS is not");
            }
            return None;
        }
        let mut endpoints = Vec::new();
        for (n, url) in urls.iter().enumerate() {
            match PushEndpoint::parse(url) {
                Ok(endpoint) => endpoints.push(endpoint),
                // The message names the URL's place in the list, never the URL (a token may
                // be part of it).
                Err(error) => self.problem("PUSH_URLS", format!("entry {}: {error}", n + 1)),
            }
        }
        if secrets.is_empty() {
            self.problem(
                "PUSH_SECRET",
                "is required with PUSH_URLS (whsec_ and the base64 of a 24-64 byte key)",
            );
            return None;
        }
        let mut keys = Vec::new();
        for (n, secret) in secrets.iter().enumerate() {
            match PushSecret::parse(secret) {
                Ok(key) => keys.push(key),
                Err(error) => self.problem("PUSH_SECRET", format!("entry {}: {error}", n + 1)),
            }
        }
        let signer = Signer::new(keys).ok()?;
        let delta = |d: Duration| TimeDelta::seconds(d.as_secs() as i64);
        Some(PushConfig {
            endpoints,
            signer,
            settings: PushSettings {
                timeout,
                concurrency,
                retry: billing_ports::Backoff {
                    base: delta(base),
                    cap: delta(cap),
                },
                max_attempts,
                ..PushSettings::default()
            },
        })
    }

    fn stripe(&mut self) -> StripeSettings {
        let secret_key = self.values.get("STRIPE_SECRET_KEY").unwrap_or_default();
        if secret_key.is_empty() {
            self.problem("STRIPE_SECRET_KEY", "is required (sk_… or rk_…)");
        } else if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
            self.problem("STRIPE_SECRET_KEY", "must start with sk_ or rk_");
        }
        let webhook_secrets = self.list("STRIPE_WEBHOOK_SECRET");
        if webhook_secrets.is_empty() {
            self.problem(
                "STRIPE_WEBHOOK_SECRET",
                "is required (one or several whsec_…, comma-separated)",
            );
        }
        for (i, secret) in webhook_secrets.iter().enumerate() {
            if !secret.starts_with("whsec_") {
                let entry = format!("entry {} does not start with whsec_", i + 1);
                self.problem("STRIPE_WEBHOOK_SECRET", entry);
            }
        }
        let api_base = self.values.get("STRIPE_API_BASE");
        if let Some(base) = &api_base
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            self.problem("STRIPE_API_BASE", "must be an http:// or https:// URL");
        }
        let refetch = self.flag("STRIPE_REFETCH");
        StripeSettings {
            secret_key: SecretString::from(secret_key),
            webhook_secrets: webhook_secrets.into_iter().map(Into::into).collect(),
            api_base,
            refetch,
        }
    }

    fn api_keys(&mut self) -> Vec<SecretString> {
        let keys = self.list("BILLING_API_KEYS");
        if keys.is_empty() {
            self.problem(
                "BILLING_API_KEYS",
                "is required (comma-separated bearer keys for /v1)",
            );
        }
        for (i, key) in keys.iter().enumerate() {
            if key.len() < 16 {
                let entry = format!("entry {} is shorter than 16 characters", i + 1);
                self.problem("BILLING_API_KEYS", entry);
            }
        }
        keys.into_iter().map(Into::into).collect()
    }

    fn database_url(&mut self) -> SecretString {
        let url = self.values.get("DATABASE_URL").unwrap_or_default();
        if !["postgres://", "postgresql://", "sqlite://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            self.problem(
                "DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite://",
            );
        }
        url.into()
    }

    fn bind_addr(&mut self) -> SocketAddr {
        let bind = self.values.get("BIND_ADDR").unwrap_or_default();
        bind.trim().parse().unwrap_or_else(|_| {
            let message = format!("{bind:?} is not an address like 127.0.0.1:8080");
            self.problem("BIND_ADDR", message);
            SocketAddr::from(([127, 0, 0, 1], 8080))
        })
    }

    /// The catalog of `PLANS_FILE`, with `GRACE_DAYS` applied to every tier when set.
    fn catalog(&mut self) -> Option<Catalog> {
        let grace_days = self
            .values
            .get("GRACE_DAYS")
            .map(|v| v.trim().parse::<u32>());
        let grace = match grace_days {
            None => None,
            Some(Ok(days)) => Some(TimeDelta::days(i64::from(days))),
            Some(Err(_)) => {
                self.problem("GRACE_DAYS", "must be a whole number of days");
                None
            }
        };
        let path = PathBuf::from(self.values.get("PLANS_FILE").unwrap_or_default());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| self.problem("PLANS_FILE", format!("{}: {e}", path.display())))
            .ok()?;
        let catalog = Catalog::from_toml_str(&text)
            .map_err(|e| {
                for p in e.problems {
                    let message = format!("{}: {}: {}", path.display(), p.place, p.message);
                    self.problem("PLANS_FILE", message);
                }
            })
            .ok()?;
        let Some(grace) = grace else {
            return Some(catalog);
        };
        catalog
            .with_grace_period(grace)
            .map_err(|e| {
                for p in e.problems {
                    self.problem("GRACE_DAYS", format!("{}: {}", p.place, p.message));
                }
            })
            .ok()
    }
}
