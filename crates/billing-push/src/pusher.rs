//! The pusher of one endpoint: rounds of "take the new change records as deliveries, send what
//! is due, record every attempt", and the loop that runs them, woken by commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_api::PushMessage;
use billing_ports::{
    AttemptOutcome, Backoff, Clock, DuePush, ErrorChain, PushAttempt, PushEndpointRecord, PushStore,
};
use futures_util::{StreamExt, stream};
use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};

use crate::endpoint::PushEndpoint;
use crate::error::PushError;
use crate::signature::Signer;
use crate::wire::change_record;

/// Attempts by outcome (`succeeded`, `retry`, `failed`), a counter.
pub const PUSH_ATTEMPTS: &str = "billing_push_attempts_total";

/// How a pusher sends and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// The longest an attempt may take, connection and answer included; past it the attempt
    /// failed and the delivery is retried later.
    pub timeout: Duration,
    /// Requests in flight at once to one endpoint.
    pub concurrency: usize,
    /// The most deliveries one round takes and sends.
    pub batch: u32,
    /// The wait before a failed delivery's next attempt, doubling per failure up to its cap.
    pub retry: Backoff,
    /// A delivery is given up (status `failed`, replayable) after this many failed attempts.
    pub max_attempts: u32,
    /// How often an idle pusher looks for work no local commit announced (changes committed
    /// by other replicas, retries coming due).
    pub poll: Duration,
}

impl Default for PushSettings {
    /// 5 s per attempt, 16 in flight, 256 per round, retries after 10 s doubling to 1 h,
    /// given up after 12 failed attempts (about 8.6 hours), a look every second when idle.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            concurrency: 16,
            batch: 256,
            retry: Backoff {
                base: chrono::TimeDelta::seconds(10),
                cap: chrono::TimeDelta::hours(1),
            },
            max_attempts: 12,
            poll: Duration::from_secs(1),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// New deliveries taken from the feed.
    pub enqueued: usize,
    /// Attempts made.
    pub attempted: usize,
    /// Attempts the product accepted (2xx).
    pub delivered: usize,
    /// Failed attempts to be retried.
    pub retried: usize,
    /// Deliveries given up.
    pub given_up: usize,
}

/// Pushes the change feed to one endpoint, over a [`PushStore`].
pub struct Pusher<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    endpoint: PushEndpoint,
    signer: Signer,
    settings: PushSettings,
    client: reqwest::Client,
}

impl<S: PushStore> Pusher<S> {
    /// A pusher of `endpoint`, signing with `signer`. Redirects are not followed (a 3xx is a
    /// failed attempt): the signature was made for this URL's owner.
    pub fn new(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        endpoint: PushEndpoint,
        signer: Signer,
        settings: PushSettings,
    ) -> Result<Self, PushError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .build()
            .map_err(|e| PushError::Client(e.without_url().to_string()))?;
        Ok(Self {
            store,
            clock,
            endpoint,
            signer,
            settings,
            client,
        })
    }

    /// The endpoint it pushes to.
    pub fn endpoint(&self) -> &PushEndpoint {
        &self.endpoint
    }

    /// Stores the endpoint if it is new, starting it after the feed's newest record.
    pub async fn register(&self) -> Result<PushEndpointRecord, PushError> {
        let now = self.clock.now();
        Ok(self
            .store
            .register_push_endpoint(self.endpoint.id(), self.endpoint.display(), now)
            .await?)
    }

    /// One round: the new records become deliveries, the due ones are sent (up to
    /// `concurrency` at once) and every attempt is recorded.
    pub async fn round(&self) -> Result<Round, PushError> {
        let id = self.endpoint.id();
        let now = self.clock.now();
        let enqueued = self
            .store
            .enqueue_pushes(id, now, self.settings.batch)
            .await?;
        let due = self.store.due_pushes(id, now, self.settings.batch).await?;
        let attempts: Vec<PushAttempt> = stream::iter(due)
            .map(|due| self.attempt(due))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        self.store
            .record_push_attempts(&attempts, self.clock.now())
            .await?;
        let mut round = Round {
            enqueued,
            attempted: attempts.len(),
            ..Round::default()
        };
        for attempt in &attempts {
            match attempt.outcome {
                AttemptOutcome::Succeeded => round.delivered += 1,
                AttemptOutcome::Retry(_) => round.retried += 1,
                AttemptOutcome::Failed => round.given_up += 1,
            }
            metrics::counter!(PUSH_ATTEMPTS, "outcome" => attempt.outcome.as_str()).increment(1);
        }
        Ok(round)
    }

    /// Runs rounds for ever: back to back while there is work, else waiting for `commits`
    /// to change (a local commit) or `poll`. Registers the endpoint first (retried until it
    /// succeeds). Errors are logged and retried after `poll`; stop it by dropping the future.
    pub async fn run(&self, mut commits: tokio::sync::watch::Receiver<u64>) {
        let poll = self.settings.poll;
        let shown = self.endpoint.display();
        while let Err(error) = self.register().await {
            tracing::warn!(endpoint = shown, error = %ErrorChain(&error), "push endpoint could not be registered; retrying");
            tokio::time::sleep(poll).await;
        }
        tracing::info!(
            endpoint = shown,
            id = self.endpoint.id(),
            "pushing the change feed"
        );
        let full = self.settings.batch as usize;
        loop {
            // Seen before the round: a commit during it wakes the wait below.
            commits.borrow_and_update();
            match self.round().await {
                Ok(round) if round.enqueued >= full || round.attempted >= full => continue,
                Ok(_) => {
                    tokio::select! {
                        changed = commits.changed() => {
                            if changed.is_err() {
                                tokio::time::sleep(poll).await;
                            }
                        }
                        () = tokio::time::sleep(poll) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(endpoint = shown, error = %ErrorChain(&error), "push round failed; retrying");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    /// One attempt of `due`: the signed message, its answer, and what becomes of the delivery.
    async fn attempt(&self, due: DuePush) -> PushAttempt {
        let started_at = self.clock.now();
        let clock = Instant::now();
        let message = PushMessage::new(change_record(&due.record));
        let change_id = message.data.id.clone();
        let sent = match serde_json::to_vec(&message) {
            Ok(body) => self.send(&change_id, started_at.timestamp(), body).await,
            Err(e) => Err((None, format!("message could not be serialised: {e}"))),
        };
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let attempt = due.attempts.saturating_add(1);
        let (status_code, error, outcome) = match sent {
            Ok(status) => (Some(status), None, AttemptOutcome::Succeeded),
            Err((status, error)) => {
                let failures = due.failures.saturating_add(1);
                let outcome = if failures >= self.settings.max_attempts {
                    tracing::error!(
                        endpoint = self.endpoint.display(),
                        change_id,
                        attempt,
                        error,
                        "push delivery given up; `billingctl deliveries replay` sends it again"
                    );
                    AttemptOutcome::Failed
                } else {
                    let at = started_at + self.settings.retry.delay(failures);
                    tracing::warn!(
                        endpoint = self.endpoint.display(),
                        change_id,
                        attempt,
                        error,
                        retry_at = %at,
                        "push attempt failed"
                    );
                    AttemptOutcome::Retry(at)
                };
                (status, Some(error), outcome)
            }
        };
        PushAttempt {
            delivery_id: due.delivery_id,
            attempt,
            started_at,
            duration_ms,
            status_code,
            error,
            outcome,
        }
    }

    /// Posts one signed message; the status when 2xx, else the status (if any) and why.
    async fn send(
        &self,
        id: &str,
        timestamp: i64,
        body: Vec<u8>,
    ) -> Result<u16, (Option<u16>, String)> {
        let signature = self.signer.signature(id, timestamp, &body);
        let request = self
            .client
            .post(self.endpoint.url().clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("billing-push/", env!("CARGO_PKG_VERSION"))),
            )
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        let response = request.send().await.map_err(|e| (None, self.failure(e)))?;
        let status = response.status();
        // Read (and drop) the answer so the connection is reused; its text is never kept.
        let read = response.bytes().await;
        if !status.is_success() {
            return Err((Some(status.as_u16()), format!("answered HTTP {status}")));
        }
        match read {
            Ok(_) => Ok(status.as_u16()),
            Err(e) => Err((Some(status.as_u16()), self.failure(e))),
        }
    }

    /// Why a request failed, without its URL (which may carry a credential).
    fn failure(&self, error: reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("no answer within {} ms", self.settings.timeout.as_millis());
        }
        let kind = if error.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        // `without_url`: the URL may carry a credential; `ErrorChain`: the causes, once each.
        format!("{kind}: {}", ErrorChain(&error.without_url()))
    }
}

/// Every configured endpoint with the one signer and settings they share: what a server is
/// given to push with.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The product URLs, each pushed every change record.
    pub endpoints: Vec<PushEndpoint>,
    /// The signing secrets.
    pub signer: Signer,
    /// How attempts are sent and retried.
    pub settings: PushSettings,
}

impl PushConfig {
    /// One pusher per endpoint over `store`.
    pub fn pushers<S: PushStore>(
        &self,
        store: Arc<S>,
        clock: Arc<dyn Clock>,
    ) -> Result<Vec<Pusher<S>>, PushError> {
        self.endpoints
            .iter()
            .map(|endpoint| {
                Pusher::new(
                    Arc::clone(&store),
                    Arc::clone(&clock),
                    endpoint.clone(),
                    self.signer.clone(),
                    self.settings.clone(),
                )
            })
            .collect()
    }
}
