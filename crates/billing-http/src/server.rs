//! The whole server assembled from typed [`Settings`], as `billing-server` runs it and as the
//! black-box tests start it: the Diesel store (Postgres or SQLite, migrated), the Stripe
//! client, the application, and the actix-web server with its limits, bound and ready to run.
//!
//! ```no_run
//! # async fn start(settings: billing_http::Settings) -> Result<(), Box<dyn std::error::Error>> {
//! let server = billing_http::Server::build(settings).await?;
//! let stop = server.handle(); // `stop.stop(true)` does what SIGTERM does
//! server.run().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use billing_app::{AppSettings, BillingApp};
use billing_domain::Catalog;
use billing_ports::{Clock, ErrorChain, GateInvalidation, StripeGateway, SystemClock};
use billing_store_diesel::{DieselStore, GateChannel, GateEvent, SetupError, StoreSettings};
use billing_stripe::client::{StripeClient, StripeClientConfig};
use chrono::TimeDelta;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::{ExposeSecret, SecretString};
use stripe_webhook_signature::Verifier;

use crate::jobs::JobSettings;
use crate::{ApiKeys, HttpState, MAX_READINESS_TIMEOUT, PoolProbe, ReadinessCheck, ServerLimits};

/// Everything [`Server::build`] needs, already validated by whoever read it (the binary's
/// configuration layer); `Debug` never shows a secret.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the billing data lives and how the pool to it behaves.
    pub database: DatabaseSettings,
    /// How to reach Stripe's API and verify its webhooks.
    pub stripe: StripeSettings,
    /// The plan catalog the entitlements are computed from.
    pub catalog: Catalog,
    /// The bootstrap bearer keys accepted on `/v1`, besides the stored ones.
    pub api_keys: Vec<SecretString>,
    /// How old the in-memory copy of the stored API keys may get before a request using one
    /// reloads it: a revoked key is refused at most this long after its revocation.
    pub api_key_refresh: Duration,
    /// The listen address; port 0 picks a free port (see [`Server::addrs`]).
    pub bind_addr: SocketAddr,
    /// Workers, connection cap and the request head/body time limit.
    pub limits: ServerLimits,
    /// The largest webhook body accepted, in bytes (413 past it).
    pub webhook_body_limit: usize,
    /// How long a stop waits for in-flight requests before cutting them.
    pub shutdown_timeout: Duration,
    /// Done events older than this are purged by the hourly retention job.
    pub event_retention: TimeDelta,
    /// Change feed records older than this are purged by the same job (a reader's cursor
    /// before what is kept is answered 410 `cursor_expired`).
    pub change_retention: TimeDelta,
    /// How long the in-process gate cache keeps a user's state (zero: no cache); bounds the
    /// staleness of feature checks and entitlements after changes made by other replicas when
    /// their notification is lost (on Postgres the gate channel normally brings them at once).
    pub gate_cache_ttl: std::time::Duration,
    /// How webhook deliveries share ingest transactions (group commit).
    pub ingest: IngestSettings,
    /// The background jobs (retention purge, failed-event sweeper) and their leases.
    pub jobs: JobSettings,
    /// The push of the change feed to the product's URLs (Standard Webhooks), when any is
    /// configured: run as the `push` job, on one replica at a time.
    pub push: Option<billing_push::PushConfig>,
}

/// How concurrent webhook deliveries share ingest transactions (group commit, see
/// [`billing_app::AppSettings::ingest_batch`]).
#[derive(Debug, Clone, Copy)]
pub struct IngestSettings {
    /// How many deliveries one transaction applies at most (1: a transaction per delivery).
    pub batch: usize,
    /// How many ingest transactions run at once.
    pub lanes: usize,
}

impl Default for IngestSettings {
    /// The application's defaults.
    fn default() -> Self {
        let app = AppSettings::default();
        Self {
            batch: app.ingest_batch,
            lanes: app.ingest_lanes,
        }
    }
}

/// The database URL (a secret: it may carry a password) and the pool's size and time limits.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `postgres://…`, `postgresql://…` or `sqlite://path`.
    pub url: SecretString,
    /// The pool size and the time limit of every database call.
    pub pool: StoreSettings,
}

/// Stripe's side: the API key, the webhook endpoint secrets and how far to trust payloads.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// The secret (`sk_…`) or restricted (`rk_…`) API key.
    pub secret_key: SecretString,
    /// The webhook endpoint secrets, current first, then old ones still valid in a rotation.
    pub webhook_secrets: Vec<SecretString>,
    /// Another base URL for the API (a local fake); `None` for Stripe's own.
    pub api_base: Option<String>,
    /// Re-fetch subscriptions from Stripe instead of trusting webhook payloads.
    pub refetch: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The directory of a SQLite database file could not be created.
    #[error("cannot create the database directory {}", .path.display())]
    DatabaseDirectory {
        /// The directory that could not be created.
        path: PathBuf,
        /// Why the file system refused it.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened or migrated.
    #[error("database")]
    Store(#[source] SetupError),
    /// The Stripe API client could not be built from the settings.
    #[error("Stripe client")]
    Stripe(#[source] billing_stripe::client::ClientConfigError),
    /// The webhook secrets cannot verify anything (none, or a blank one).
    #[error("webhook secrets")]
    WebhookSecrets(#[source] stripe_webhook_signature::InvalidSecrets),
    /// The process-wide Prometheus recorder could not be installed.
    #[error("metrics recorder")]
    Metrics(#[source] metrics_exporter_prometheus::BuildError),
    /// The push of the change feed could not be set up.
    #[error("change feed push")]
    Push(#[source] billing_push::PushError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// Why the operating system refused it (in use, not local, not permitted).
        #[source]
        source: std::io::Error,
    },
}

impl DatabaseSettings {
    /// Builds the store's pool (creating a SQLite file's directory when missing); opens no
    /// connection and runs no migration.
    pub fn open(&self) -> Result<DieselStore, StartError> {
        let url = self.url.expose_secret();
        if let Some(path) = url.strip_prefix("sqlite://")
            && let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StartError::DatabaseDirectory {
                path: dir.to_owned(),
                source,
            })?;
        }
        DieselStore::connect_with(url, self.pool).map_err(StartError::Store)
    }
}

/// The parts of a server that tests replace: the store, the Stripe gateway and the clock.
pub struct Parts {
    /// The store, already migrated.
    pub store: DieselStore,
    /// Stripe's API.
    pub gateway: Arc<dyn StripeGateway>,
    /// The time every use case reads.
    pub clock: Arc<dyn Clock>,
}

impl Parts {
    /// The production parts: the store of `settings.database` with its pending migrations
    /// applied, the Stripe client of `settings.stripe`, and the system clock.
    pub async fn open(settings: &Settings) -> Result<Self, StartError> {
        let parts = Self::unmigrated(settings)?;
        parts
            .store
            .run_migrations()
            .await
            .map_err(StartError::Store)?;
        Ok(parts)
    }

    /// The production parts without running migrations: the store's pool (no connection
    /// opened yet), the Stripe client and the system clock, for tools working beside a
    /// server (`billingctl`).
    pub fn unmigrated(settings: &Settings) -> Result<Self, StartError> {
        let store = settings.database.open()?;
        let stripe = &settings.stripe;
        let mut config = StripeClientConfig::new(stripe.secret_key.expose_secret());
        config.api_base = stripe.api_base.clone();
        let client = StripeClient::new(config).map_err(StartError::Stripe)?;
        Ok(Self {
            store,
            gateway: Arc::new(client),
            clock: Arc::new(SystemClock),
        })
    }

    /// The application `settings` describe over these parts: the catalog, the Stripe
    /// options, retention, the gate cache, the retry schedule and the webhook decoder. The
    /// server serves exactly this one; `billingctl` replays and reconciles through it.
    pub fn app(&self, settings: &Settings) -> BillingApp<DieselStore> {
        BillingApp::new(
            Arc::new(self.store.clone()),
            Arc::new(settings.catalog.clone()),
            self.clock.clone(),
            Some(self.gateway.clone()),
            AppSettings {
                refetch: settings.stripe.refetch,
                retention: settings.event_retention,
                change_retention: settings.change_retention,
                gate_ttl: settings.gate_cache_ttl,
                ingest_batch: settings.ingest.batch,
                ingest_lanes: settings.ingest.lanes,
                // A lane is a pooled connection: waiting for one is bounded the same way.
                ingest_wait: settings.database.pool.pool_timeout,
                retry: settings.jobs.retry,
                max_attempts: settings.jobs.max_attempts,
                ..AppSettings::default()
            },
        )
        .with_decoder(Arc::new(billing_stripe::StripeEventDecoder))
    }
}

/// A bound server, not yet running: [`Server::run`] serves until stopped.
pub struct Server {
    http: actix_web::dev::Server,
    addrs: Vec<SocketAddr>,
    app: BillingApp<DieselStore>,
    jobs: JobSettings,
    pushers: Vec<billing_push::Pusher<DieselStore>>,
}

impl Server {
    /// Opens the production [`Parts`] (store migrated, Stripe client) and builds the server
    /// over them; see [`Server::build_with`].
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let parts = Parts::open(&settings).await?;
        Self::build_with(settings, parts)
    }

    /// Builds the application over `parts` (in place of the store and Stripe client that
    /// `settings` name) and binds the HTTP server with the settings' limits. Call it inside
    /// an actix-web system (`#[actix_web::main]` or `#[actix_web::test]`).
    pub fn build_with(settings: Settings, parts: Parts) -> Result<Self, StartError> {
        let app = parts.app(&settings);
        let pushers = match &settings.push {
            Some(push) => push
                .pushers(Arc::new(parts.store.clone()), parts.clock.clone())
                .map_err(StartError::Push)?,
            None => Vec::new(),
        };
        let store = parts.store;
        let secrets = settings.stripe.webhook_secrets.iter();
        let state = web::Data::new(HttpState {
            verifier: Verifier::new(secrets.map(|s| s.expose_secret().to_owned()))
                .map_err(StartError::WebhookSecrets)?,
            api_keys: ApiKeys::new(settings.api_keys.iter().map(|k| k.expose_secret().into()))
                .with_stored(stored_keys(app.clone()), settings.api_key_refresh),
            webhook_body_limit: settings.webhook_body_limit,
            pool_status: Some(pool_status(store.clone())),
            readiness: readiness(store),
            readiness_timeout: MAX_READINESS_TIMEOUT,
            request_timeout: settings.limits.request_timeout,
            metrics: Some(metrics()?),
            app: app.clone(),
        });
        let addr = settings.bind_addr;
        let http = settings
            .limits
            .apply(HttpServer::new(move || {
                App::new().configure(|cfg| crate::configure(cfg, state.clone()))
            }))
            .bind(addr)
            .map_err(|source| StartError::Bind { addr, source })?
            .shutdown_timeout(settings.shutdown_timeout.as_secs())
            // `run` handles them: the feed's long polls end before the stop waits for them.
            .disable_signals();
        let addrs = http.addrs();
        Ok(Self {
            http: http.run(),
            addrs,
            app,
            jobs: settings.jobs,
            pushers,
        })
    }

    /// Where the server listens (the bind address, with the port chosen when it was 0).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// A handle that stops the server: `stop(true)` is what SIGTERM does (in-flight requests
    /// finish within the shutdown timeout).
    pub fn handle(&self) -> StopHandle {
        StopHandle {
            http: self.http.handle(),
            app: self.app.clone(),
        }
    }

    /// Serves until SIGINT/SIGTERM or [`Server::handle`]'s stop, with the enabled background
    /// jobs (retention purge, failed-event sweeper; see [`crate::jobs`]) and (on Postgres)
    /// the gate channel running meanwhile.
    pub async fn run(self) -> std::io::Result<()> {
        for addr in &self.addrs {
            tracing::info!(addr = %addr, "listening");
        }
        let gate_channel = gate_channel(&self.app);
        let (forced_tx, forced_rx) = tokio::sync::oneshot::channel();
        let signals = actix_web::rt::spawn(stop_on_signal(self.handle(), forced_tx));
        let jobs = crate::jobs::spawn(&self.app, &self.jobs, self.pushers);
        actix_web::rt::spawn(read_reconcile_cursor(self.app.clone()));
        // A second stop signal returns at once, leaving the requests still in flight to be
        // cut when the process exits (actix-web's stop does not preempt its graceful one).
        let forced = async {
            if forced_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let stopped = tokio::select! {
            stopped = self.http => stopped,
            () = forced => Ok(()),
        };
        signals.abort();
        for job in jobs {
            job.abort();
        }
        if let Some(channel) = gate_channel {
            channel.stop();
        }
        stopped
    }
}

/// Stops a [`Server`]: first ends the change feed's long polls (they answer at once with
/// what they have, [`BillingApp::stop_waiting`]), then stops the HTTP server as actix-web's
/// own handle does.
#[derive(Clone)]
pub struct StopHandle {
    http: ServerHandle,
    app: BillingApp<DieselStore>,
}

impl StopHandle {
    /// `graceful`: requests in flight finish within the shutdown timeout (what SIGTERM and
    /// SIGINT do); otherwise they are dropped (SIGQUIT). Returns once the server stopped. A
    /// stop asked for during a graceful one waits for it (actix-web's rule); a second signal
    /// makes [`Server::run`] return at once instead.
    pub async fn stop(&self, graceful: bool) {
        self.app.stop_waiting();
        self.http.stop(graceful).await;
    }
}

/// Waits for SIGTERM or SIGINT (a graceful stop: requests in flight finish within the
/// shutdown timeout) or SIGQUIT (an immediate one), and stops the server through `stop`; a
/// second signal during a graceful stop tells [`Server::run`] to return at once (`forced`).
/// (actix-web's own handling, which this replaces, stopped at once on SIGINT.)
async fn stop_on_signal(stop: StopHandle, forced: tokio::sync::oneshot::Sender<()>) {
    let mut signals = StopSignals::listen();
    let Some(graceful) = signals.next().await else {
        return;
    };
    tracing::info!(graceful, "stop signal received");
    let stopping = actix_web::rt::spawn(async move { stop.stop(graceful).await });
    if graceful && signals.next().await.is_some() {
        tracing::warn!("second stop signal received: stopping now, requests in flight are cut");
        let _ = forced.send(());
    }
    let _ = stopping.await;
}

/// The stop signals this process listens for: SIGTERM, SIGINT and SIGQUIT on Unix (each one
/// that cannot be listened for is logged and left to its default action), Ctrl-C elsewhere.
struct StopSignals {
    #[cfg(unix)]
    listening: Vec<(tokio::signal::unix::Signal, bool)>,
}

impl StopSignals {
    #[cfg(unix)]
    fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            ("SIGTERM", SignalKind::terminate(), true),
            ("SIGINT", SignalKind::interrupt(), true),
            ("SIGQUIT", SignalKind::quit(), false),
        ];
        let listening = kinds
            .into_iter()
            .filter_map(|(name, kind, graceful)| match signal(kind) {
                Ok(listening) => Some((listening, graceful)),
                Err(error) => {
                    tracing::error!(signal = name, error = %error, "cannot listen for a stop signal");
                    None
                }
            })
            .collect();
        Self { listening }
    }

    #[cfg(not(unix))]
    fn listen() -> Self {
        Self {}
    }

    /// The next stop signal: true for a graceful stop, false for an immediate one; `None`
    /// when none can be listened for.
    #[cfg(unix)]
    async fn next(&mut self) -> Option<bool> {
        if self.listening.is_empty() {
            return None;
        }
        std::future::poll_fn(|cx| {
            for (signal, graceful) in &mut self.listening {
                if signal.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(Some(*graceful));
                }
            }
            std::task::Poll::Pending
        })
        .await
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Option<bool> {
        tokio::signal::ctrl_c().await.ok().map(|()| true)
    }
}

/// On Postgres, this process's gate channel (see `billing_store_diesel::notify`): the app
/// broadcasts its invalidations on it, and forgets what the other replicas report (everything
/// whenever the channel listens again, since notifications may have been missed). `None` on
/// SQLite, or when the channel cannot start (the time to live then bounds staleness).
fn gate_channel(app: &BillingApp<DieselStore>) -> Option<Arc<GateChannel>> {
    let listener = app.clone();
    let started = app.store().gate_channel(move |event| match event {
        GateEvent::Connected { reconnect, .. } => {
            listener.forget_gate_state(&GateInvalidation::All);
            if reconnect {
                metrics::counter!(crate::telemetry::GATE_RECONNECTS).increment(1);
            }
            metrics::gauge!(crate::telemetry::GATE_LISTENING).set(1.0);
        }
        GateEvent::Disconnected { .. } => {
            metrics::gauge!(crate::telemetry::GATE_LISTENING).set(0.0);
        }
        GateEvent::Changed(change) => {
            metrics::counter!(crate::telemetry::GATE_NOTIFICATIONS).increment(1);
            listener.forget_gate_state(&change);
            // Another replica committed: it may have written change records.
            listener.changes_committed();
        }
    });
    match started {
        Ok(Some(channel)) => {
            let channel = Arc::new(channel);
            app.broadcast_gate_changes(channel.clone());
            Some(channel)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(
                error = ErrorChain(&e).to_string(),
                "gate channel not started; other replicas' changes show within the gate cache's time to live"
            );
            None
        }
    }
}

/// The store's pool for `/metrics`: connections lent out, calls waiting.
fn pool_status(store: DieselStore) -> PoolProbe {
    Arc::new(move || {
        let status = store.pool_status();
        (status.in_use, status.waiting)
    })
}

/// Reads the stored API keys' hashes through the app, for the `/v1` gate's copy.
fn stored_keys(app: BillingApp<DieselStore>) -> crate::LoadKeyHashes {
    Arc::new(move || {
        let app = app.clone();
        Box::pin(async move {
            app.live_api_key_hashes()
                .await
                .map_err(|e| ErrorChain(&e).to_string())
        })
    })
}

/// `/readyz`'s probe: the database answers and every migration is applied.
fn readiness(store: DieselStore) -> ReadinessCheck {
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match store.migrations_applied().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("migrations are pending".to_owned()),
                Err(e) => Err(e.to_string()),
            }
        })
    })
}

/// The process-wide Prometheus recorder, installed by the first server built in the process
/// and shared by the next ones (a process has one recorder).
fn metrics() -> Result<PrometheusHandle, StartError> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut handle = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = handle.as_ref() {
        return Ok(handle.clone());
    }
    let installed = crate::install_metrics_recorder().map_err(StartError::Metrics)?;
    *handle = Some(installed.clone());
    Ok(installed)
}

/// Reads the stored reconciliation cursor once, which sets
/// `billing_reconcile_last_success_timestamp_seconds` from it (a reconciliation run by another
/// process, `billingctl reconcile`, is seen at the next start or run).
async fn read_reconcile_cursor(app: BillingApp<DieselStore>) {
    if let Err(e) = app.reconcile_cursor().await {
        tracing::warn!(
            error = ErrorChain(&e).to_string(),
            "could not read the reconciliation cursor"
        );
    }
}
