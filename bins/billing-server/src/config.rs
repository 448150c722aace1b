//! The server's configuration: read once from the environment, validated with every problem
//! listed in one error. Secrets are redacted in `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use billing_domain::Catalog;
use billing_store_diesel::StoreSettings;
use chrono::TimeDelta;

/// A secret string; `Debug` prints `***`.
#[derive(Clone)]
pub(crate) struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Everything the server needs, validated.
#[derive(Debug)]
pub(crate) struct Config {
    /// `STRIPE_SECRET_KEY`.
    pub(crate) stripe_secret_key: Secret,
    /// `STRIPE_WEBHOOK_SECRET`, comma-separated for rotation.
    pub(crate) webhook_secrets: Vec<Secret>,
    /// `DATABASE_URL`; unset → `sqlite://data/billing.sqlite`.
    pub(crate) database_url: Secret,
    /// `DATABASE_MAX_CONNECTIONS` (default 16, at least 1) and the database time limits:
    /// `DATABASE_POOL_TIMEOUT_MS` (5000), `DATABASE_CONNECT_TIMEOUT_MS` (5000),
    /// `DATABASE_RECYCLE_TIMEOUT_MS` (1000), `DATABASE_STATEMENT_TIMEOUT_MS` (10000).
    pub(crate) database: StoreSettings,
    /// `PLANS_FILE` (default `plans.toml`), loaded and validated.
    pub(crate) catalog: Catalog,
    /// `BILLING_API_KEYS`, comma-separated.
    pub(crate) api_keys: Vec<Secret>,
    /// `BIND_ADDR` (default `127.0.0.1:8080`).
    pub(crate) bind_addr: SocketAddr,
    /// `STRIPE_API_BASE` (default Stripe's own).
    pub(crate) stripe_api_base: Option<String>,
    /// `EVENT_RETENTION_DAYS` (default 30).
    pub(crate) event_retention: TimeDelta,
    /// `WEBHOOK_BODY_LIMIT` in bytes (default 1 MiB).
    pub(crate) webhook_body_limit: usize,
    /// `STRIPE_REFETCH`: re-fetch subscriptions instead of trusting payloads (default false).
    pub(crate) refetch: bool,
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    pub(crate) log_format: LogFormat,
    /// `HTTP_REQUEST_TIMEOUT_MS` (default 5000): the longest a client may take to send its
    /// request head, and then its body.
    pub(crate) http_request_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS` (default 1024): concurrent connections across all workers.
    pub(crate) http_max_connections: usize,
    /// `SHUTDOWN_TIMEOUT_SECS` (default 30): how long a stop waits for in-flight requests.
    pub(crate) shutdown_timeout_secs: u64,
}

/// Every problem found in the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub(crate) struct ConfigError(pub Vec<String>);

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Config {
    /// Reads the configuration from the process environment.
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads the configuration through `get` (the environment, or a map in tests).
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut number = |name: &str, default: u64, min: u64, max: u64| -> u64 {
            match get(name).map(|v| v.trim().parse::<u64>()) {
                None => default,
                Some(Ok(n)) if (min..=max).contains(&n) => n,
                Some(_) => {
                    problems.push(format!("{name} must be a whole number from {min} to {max}"));
                    default
                }
            }
        };
        let mut millis =
            |name: &str, default: u64| Duration::from_millis(number(name, default, 1, 600_000));
        let database = StoreSettings {
            pool_timeout: millis("DATABASE_POOL_TIMEOUT_MS", 5_000),
            connect_timeout: millis("DATABASE_CONNECT_TIMEOUT_MS", 5_000),
            recycle_timeout: millis("DATABASE_RECYCLE_TIMEOUT_MS", 1_000),
            statement_timeout: millis("DATABASE_STATEMENT_TIMEOUT_MS", 10_000),
            max_connections: number("DATABASE_MAX_CONNECTIONS", 16, 1, 1_000) as usize,
        };
        let http_request_timeout =
            Duration::from_millis(number("HTTP_REQUEST_TIMEOUT_MS", 5_000, 100, 600_000));
        let http_max_connections = number("HTTP_MAX_CONNECTIONS", 1_024, 1, 100_000) as usize;
        let shutdown_timeout_secs = number("SHUTDOWN_TIMEOUT_SECS", 30, 1, 3_600);
        let retention_days = number("EVENT_RETENTION_DAYS", 30, 0, 3_650);
        let webhook_body_limit =
            number("WEBHOOK_BODY_LIMIT", 1024 * 1024, 0, 64 * 1024 * 1024) as usize;
        let grace_days = get("GRACE_DAYS").map(|v| v.trim().parse::<u32>());

        let stripe_secret_key = get("STRIPE_SECRET_KEY").unwrap_or_default();
        if stripe_secret_key.is_empty() {
            problems.push("STRIPE_SECRET_KEY is required (sk_… or rk_…)".to_owned());
        } else if !(stripe_secret_key.starts_with("sk_") || stripe_secret_key.starts_with("rk_")) {
            problems.push("STRIPE_SECRET_KEY must start with sk_ or rk_".to_owned());
        }
        let webhook_secrets = list(&get("STRIPE_WEBHOOK_SECRET").unwrap_or_default());
        if webhook_secrets.is_empty() {
            problems.push(
                "STRIPE_WEBHOOK_SECRET is required (one or several whsec_…, comma-separated)"
                    .to_owned(),
            );
        }
        for (i, s) in webhook_secrets.iter().enumerate() {
            if !s.starts_with("whsec_") {
                problems.push(format!(
                    "STRIPE_WEBHOOK_SECRET entry {} does not start with whsec_",
                    i + 1
                ));
            }
        }
        let api_keys = list(&get("BILLING_API_KEYS").unwrap_or_default());
        if api_keys.is_empty() {
            problems.push(
                "BILLING_API_KEYS is required (comma-separated bearer keys for /v1)".to_owned(),
            );
        }
        for (i, k) in api_keys.iter().enumerate() {
            if k.len() < 16 {
                problems.push(format!(
                    "BILLING_API_KEYS entry {} is shorter than 16 characters",
                    i + 1
                ));
            }
        }
        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| "sqlite://data/billing.sqlite".to_owned());
        if !["postgres://", "postgresql://", "sqlite://"]
            .iter()
            .any(|p| database_url.starts_with(p))
        {
            problems.push(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite://".to_owned(),
            );
        }
        let bind = get("BIND_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let bind_addr = bind.parse::<SocketAddr>().unwrap_or_else(|_| {
            problems.push(format!(
                "BIND_ADDR {bind:?} is not an address like 127.0.0.1:8080"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let stripe_api_base = get("STRIPE_API_BASE");
        if let Some(base) = &stripe_api_base
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            problems.push("STRIPE_API_BASE must be an http:// or https:// URL".to_owned());
        }
        let refetch = match get("STRIPE_REFETCH").as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => {
                problems.push("STRIPE_REFETCH must be true or false".to_owned());
                false
            }
        };
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => {
                problems.push("LOG_FORMAT must be pretty or json".to_owned());
                LogFormat::Pretty
            }
        };
        let plans_file =
            PathBuf::from(get("PLANS_FILE").unwrap_or_else(|| "plans.toml".to_owned()));
        let catalog = match std::fs::read_to_string(&plans_file) {
            Err(e) => {
                problems.push(format!("PLANS_FILE {}: {e}", plans_file.display()));
                None
            }
            Ok(text) => match Catalog::from_toml_str(&text) {
                Err(e) => {
                    problems.extend(e.problems.iter().map(|p| {
                        format!(
                            "PLANS_FILE {}: {}: {}",
                            plans_file.display(),
                            p.place,
                            p.message
                        )
                    }));
                    None
                }
                Ok(catalog) => Some(catalog),
            },
        };
        let catalog = match (catalog, grace_days) {
            (catalog, None) => catalog,
            (catalog, Some(Err(_))) => {
                problems.push("GRACE_DAYS must be a whole number of days".to_owned());
                catalog
            }
            (Some(catalog), Some(Ok(days))) => {
                let tiers = catalog
                    .tiers()
                    .iter()
                    .cloned()
                    .map(|mut t| {
                        t.grace_period = TimeDelta::days(i64::from(days));
                        t
                    })
                    .collect();
                Catalog::from_tiers(tiers)
                    .map_err(|e| {
                        problems.extend(
                            e.problems
                                .iter()
                                .map(|p| format!("GRACE_DAYS: {}: {}", p.place, p.message)),
                        )
                    })
                    .ok()
            }
            (None, Some(Ok(_))) => None,
        };
        match catalog {
            Some(catalog) if problems.is_empty() => Ok(Config {
                stripe_secret_key: Secret(stripe_secret_key),
                webhook_secrets: webhook_secrets.into_iter().map(Secret).collect(),
                database_url: Secret(database_url),
                database,
                catalog,
                api_keys: api_keys.into_iter().map(Secret).collect(),
                bind_addr,
                stripe_api_base,
                event_retention: TimeDelta::days(retention_days as i64),
                webhook_body_limit,
                refetch,
                log_format,
                http_request_timeout,
                http_max_connections,
                shutdown_timeout_secs,
            }),
            _ => Err(ConfigError(problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const PLANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans.toml");

    #[test]
    fn every_problem_is_listed_at_once() {
        let error = Config::from_lookup(lookup(&[
            ("STRIPE_SECRET_KEY", "pk_live_oops"),
            ("BILLING_API_KEYS", "short"),
            ("BIND_ADDR", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("EVENT_RETENTION_DAYS", "soon"),
            ("PLANS_FILE", "/nonexistent/plans.toml"),
        ]))
        .unwrap_err();
        let text = error.to_string();
        for expected in [
            "STRIPE_SECRET_KEY must start with sk_",
            "STRIPE_WEBHOOK_SECRET is required",
            "BILLING_API_KEYS entry 1 is shorter",
            "BIND_ADDR",
            "DATABASE_URL must start with",
            "EVENT_RETENTION_DAYS must be a whole number",
            "PLANS_FILE /nonexistent/plans.toml",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        assert_eq!(error.0.len(), 7, "{text}");
        assert!(
            !text.contains("pk_live_oops"),
            "a secret leaked into the error"
        );
    }

    #[test]
    fn a_complete_environment_is_accepted_with_defaults() {
        let config = Config::from_lookup(lookup(&[
            ("STRIPE_SECRET_KEY", "sk_test_123"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_new, whsec_old"),
            ("BILLING_API_KEYS", "0123456789abcdef,fedcba9876543210"),
            ("PLANS_FILE", PLANS),
            ("GRACE_DAYS", "7"),
        ]))
        .unwrap();
        assert_eq!(config.webhook_secrets.len(), 2);
        assert_eq!(config.api_keys.len(), 2);
        assert_eq!(config.database_url.0, "sqlite://data/billing.sqlite");
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.webhook_body_limit, 1024 * 1024);
        assert_eq!(config.event_retention, TimeDelta::days(30));
        assert_eq!(config.database, StoreSettings::new(16));
        assert_eq!(config.http_request_timeout, Duration::from_secs(5));
        assert_eq!(config.http_max_connections, 1024);
        assert_eq!(config.shutdown_timeout_secs, 30);
        assert!(
            config
                .catalog
                .tiers()
                .iter()
                .all(|t| t.grace_period == TimeDelta::days(7))
        );
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("sk_test_123")
                && !debug.contains("whsec_new")
                && !debug.contains("0123456789abcdef")
        );
    }

    #[test]
    fn a_pool_without_connections_and_zero_time_limits_are_refused() {
        let error = Config::from_lookup(lookup(&[
            ("STRIPE_SECRET_KEY", "sk_test_123"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
            ("BILLING_API_KEYS", "0123456789abcdef"),
            ("PLANS_FILE", PLANS),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_POOL_TIMEOUT_MS", "0"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "soon"),
            ("HTTP_REQUEST_TIMEOUT_MS", "0"),
            ("HTTP_MAX_CONNECTIONS", "0"),
        ]))
        .unwrap_err();
        let text = error.to_string();
        for expected in [
            "DATABASE_MAX_CONNECTIONS must be a whole number from 1 to 1000",
            "DATABASE_POOL_TIMEOUT_MS must be a whole number from 1 to 600000",
            "DATABASE_STATEMENT_TIMEOUT_MS must be a whole number from 1 to 600000",
            "HTTP_REQUEST_TIMEOUT_MS must be a whole number from 100 to 600000",
            "HTTP_MAX_CONNECTIONS must be a whole number from 1 to 100000",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        assert_eq!(error.0.len(), 5, "{text}");
    }

    #[test]
    fn the_time_limits_are_read_in_milliseconds() {
        let config = Config::from_lookup(lookup(&[
            ("STRIPE_SECRET_KEY", "sk_test_123"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
            ("BILLING_API_KEYS", "0123456789abcdef"),
            ("PLANS_FILE", PLANS),
            ("DATABASE_MAX_CONNECTIONS", "4"),
            ("DATABASE_POOL_TIMEOUT_MS", "250"),
            ("DATABASE_CONNECT_TIMEOUT_MS", "750"),
            ("DATABASE_RECYCLE_TIMEOUT_MS", "100"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "1500"),
            ("HTTP_REQUEST_TIMEOUT_MS", "2000"),
            ("HTTP_MAX_CONNECTIONS", "64"),
            ("SHUTDOWN_TIMEOUT_SECS", "5"),
        ]))
        .unwrap();
        assert_eq!(
            config.database,
            StoreSettings {
                max_connections: 4,
                pool_timeout: Duration::from_millis(250),
                connect_timeout: Duration::from_millis(750),
                recycle_timeout: Duration::from_millis(100),
                statement_timeout: Duration::from_millis(1500),
            }
        );
        assert_eq!(config.http_request_timeout, Duration::from_secs(2));
        assert_eq!(config.http_max_connections, 64);
        assert_eq!(config.shutdown_timeout_secs, 5);
    }
}
