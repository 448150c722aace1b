//! The gate channel: how replicas on one Postgres database tell each other which cached gate
//! state a commit changed ([`GateChannel`], Postgres' `LISTEN`/`NOTIFY` on channel
//! [`GATE_CHANNEL`]).
//!
//! One dedicated connection per process (outside the pool, `application_name`
//! [`GateChannel::APPLICATION_NAME`]) does both halves:
//!
//! - **Sending.** [`GateBroadcast::publish`] only queues: the invalidations of a process are
//!   coalesced in memory (more than [`MAX_PENDING_KEYS`] ids become "everything") and sent by
//!   the channel's task at most once per [`SEND_EVERY`] (at once after a quiet spell), in one
//!   statement
//!   (`SELECT pg_notify('billing_gate', p) FROM unnest($2) AS p`), each payload under Postgres'
//!   8000-byte limit (more than [`MAX_PAYLOADS`] payloads become "all"). The session commits
//!   asynchronously (`synchronous_commit = off`): a notification is not worth a disk flush,
//!   and a transaction that notifies holds Postgres' global notify lock until its commit ends,
//!   so a flush inside it would serialise every notifying commit of the cluster. Sending
//!   outside the writing transaction is deliberate for the same reason (see `docs/benchmarks.md`):
//!   a notification leaves after its commit, never before, and one that is never sent (the
//!   process died in between, the connection was down) is bounded by the caches' time to live.
//! - **Listening.** It `LISTEN`s on the same connection and reports every notification of
//!   another connection as [`GateEvent::Changed`]. Its own are skipped (by backend process
//!   id): the process already forgot those entries when it committed.
//!
//! When the connection cannot be opened or is lost (a restart, `pg_terminate_backend`, a
//! network cut, a `SELECT 1` every [`PING_EVERY`] that does not answer in time), the task
//! reconnects with a doubling backoff from 100 ms to 5 s, and reports
//! [`GateEvent::Connected`] each time it is listening again: notifications sent meanwhile are
//! lost, so the owner forgets everything then. What was queued for sending while disconnected
//! is sent after the reconnect.
//!
//! Payload: lines `c:<customer id>` and `u:<user id>` separated by `\n` (ids hold no control
//! characters), or `all`. A line this version does not understand is read as `all`.

use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use billing_ports::{GateBroadcast, GateInvalidation};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::SetupError;

/// The Postgres channel the replicas' invalidations travel on.
pub const GATE_CHANNEL: &str = "billing_gate";

/// The longest payload Postgres accepts (it must be shorter than 8000 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 7999;

/// At most this many payloads go out in one send; more are replaced by one `all`.
pub const MAX_PAYLOADS: usize = 32;

/// Queued ids beyond this count (while a send is slow or the connection is down) collapse into
/// "everything", so the queue's memory is bounded.
pub const MAX_PENDING_KEYS: usize = 10_000;

/// At most one send per this interval: a send waits until this long after the previous one,
/// so under load the invalidations of many commits share one statement (each `NOTIFY` is a
/// transaction of its own and comes back to every listener, this process's too), while a
/// lone commit's go out at once. Other replicas hear of a change at most this much later.
pub const SEND_EVERY: Duration = Duration::from_millis(10);

/// How often the connection is checked with `SELECT 1` (a silent network cut is noticed
/// within this plus the store's statement time limit).
pub const PING_EVERY: Duration = Duration::from_secs(5);

/// The first wait before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the gate channel reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateEvent {
    /// Listening, for the first time or again (`reconnect`): notifications may have been
    /// missed before, so the owner forgets everything it cached.
    Connected {
        /// False for the first connection of the channel.
        reconnect: bool,
        /// The listening connection's backend process id.
        backend_pid: i32,
    },
    /// The connection could not be opened or was lost; the next try is in `retry_in`.
    Disconnected {
        /// How long until the next attempt.
        retry_in: Duration,
    },
    /// Another connection (another replica, or a process sharing the channel) committed a
    /// change: forget what it names.
    Changed(GateInvalidation),
}

/// The gate channel of one process: queues this process's invalidations for the others
/// ([`GateBroadcast`]) and reports theirs ([`GateEvent`]) from one background task with its
/// own Postgres connection. Dropping it (or [`GateChannel::stop`]) ends the task and closes
/// the connection.
pub struct GateChannel {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for GateChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration holds the database password: never print it.
        f.debug_struct("GateChannel").finish_non_exhaustive()
    }
}

/// What the caller's side and the task share.
#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

/// Invalidations queued for sending, coalesced.
#[derive(Debug, Default)]
struct Pending {
    all: bool,
    customers: HashSet<String>,
    users: HashSet<String>,
}

impl Pending {
    fn add(&mut self, change: &GateInvalidation) {
        if self.all {
            return;
        }
        match change {
            GateInvalidation::All => self.all = true,
            GateInvalidation::Keys { customers, users } => {
                self.customers.extend(customers.iter().cloned());
                self.users.extend(users.iter().cloned());
                if self.customers.len() + self.users.len() > MAX_PENDING_KEYS {
                    self.all = true;
                }
            }
        }
        if self.all {
            self.customers = HashSet::new();
            self.users = HashSet::new();
        }
    }

    /// Everything queued, leaving nothing; `None` when nothing is.
    fn take(&mut self) -> Option<GateInvalidation> {
        let taken = std::mem::take(self);
        if taken.all {
            Some(GateInvalidation::All)
        } else if taken.customers.is_empty() && taken.users.is_empty() {
            None
        } else {
            Some(GateInvalidation::Keys {
                customers: taken.customers.into_iter().collect(),
                users: taken.users.into_iter().collect(),
            })
        }
    }
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Plain data: a panic elsewhere while it was held leaves it usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl GateBroadcast for GateChannel {
    fn publish(&self, change: &GateInvalidation) {
        self.shared.pending().add(change);
        self.shared.wake.notify_one();
    }
}

impl GateChannel {
    /// The `application_name` of the channel's connection (how to find it in
    /// `pg_stat_activity`).
    pub const APPLICATION_NAME: &'static str = "billing-gate-channel";

    /// Starts the channel's task on the current tokio runtime: it connects to `url` (a
    /// `postgres://` URL) within `connect_timeout`, bounds each of its statements by
    /// `statement_timeout`, and reports to `on_event` (called on the task; keep it short).
    pub fn start(
        url: &str,
        connect_timeout: Duration,
        statement_timeout: Duration,
        on_event: impl Fn(GateEvent) + Send + Sync + 'static,
    ) -> Result<Self, SetupError> {
        // The parser's message could quote the URL, which may hold a password: not kept.
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|_| SetupError::UnsupportedUrl)?;
        config
            .application_name(Self::APPLICATION_NAME)
            .connect_timeout(connect_timeout);
        let shared = Arc::new(Shared::default());
        let session = Session {
            config,
            shared: Arc::clone(&shared),
            statement_timeout,
            connect_timeout,
        };
        let task = tokio::spawn(session.run_forever(on_event));
        Ok(Self { shared, task })
    }

    /// Ends the task and closes the connection; what is still queued is not sent.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for GateChannel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    /// It never started listening.
    Connecting(String),
    /// It was listening.
    Lost(String),
}

/// A message from the task driving the connection.
enum FromConnection {
    Notification(tokio_postgres::Notification),
    Closed(Option<tokio_postgres::Error>),
}

/// The background task's state across connections.
struct Session {
    config: tokio_postgres::Config,
    shared: Arc<Shared>,
    statement_timeout: Duration,
    connect_timeout: Duration,
}

impl Session {
    async fn run_forever(self, on_event: impl Fn(GateEvent)) {
        let mut backoff = MIN_BACKOFF;
        let mut connected_before = false;
        loop {
            match self.connection(&on_event, connected_before).await {
                Ended::Connecting(error) => {
                    tracing::warn!(
                        error,
                        retry_in_ms = backoff.as_millis() as u64,
                        "gate channel: could not listen; the gate cache relies on its time to live meanwhile"
                    );
                }
                Ended::Lost(error) => {
                    connected_before = true;
                    backoff = MIN_BACKOFF;
                    tracing::warn!(
                        error,
                        retry_in_ms = backoff.as_millis() as u64,
                        "gate channel: connection lost; the gate cache relies on its time to live until it is back"
                    );
                }
            }
            on_event(GateEvent::Disconnected { retry_in: backoff });
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection, from opening it until it fails.
    async fn connection(&self, on_event: &impl Fn(GateEvent), reconnect: bool) -> Ended {
        let opened = tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls)).await;
        let (client, mut connection) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(error)) => return Ended::Connecting(error.to_string()),
            Err(_) => return Ended::Connecting("no connection within the time limit".to_owned()),
        };
        let (to_session, mut from_connection) = mpsc::unbounded_channel();
        let driver = AbortOnDrop(tokio::spawn(async move {
            loop {
                match poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(notification))) => {
                        if to_session
                            .send(FromConnection::Notification(notification))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some(Ok(_notice)) => {}
                    Some(Err(error)) => {
                        let _ = to_session.send(FromConnection::Closed(Some(error)));
                        return;
                    }
                    None => {
                        let _ = to_session.send(FromConnection::Closed(None));
                        return;
                    }
                }
            }
        }));
        let setup = format!(
            "SET synchronous_commit = off; SET statement_timeout = {}; LISTEN {GATE_CHANNEL}",
            self.statement_timeout.as_millis()
        );
        let prepared = self
            .bounded(async {
                client.batch_execute(&setup).await?;
                let pid: i32 = client
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await?
                    .get(0);
                let notify = client
                    .prepare("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                    .await?;
                Ok((pid, notify))
            })
            .await;
        let (own_pid, notify) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return Ended::Connecting(error),
        };
        if reconnect {
            tracing::info!(
                backend_pid = own_pid,
                "gate channel: listening again; the gate cache is flushed (notifications may have been missed)"
            );
        } else {
            tracing::info!(backend_pid = own_pid, "gate channel: listening");
        }
        on_event(GateEvent::Connected {
            reconnect,
            backend_pid: own_pid,
        });
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let now = tokio::time::Instant::now();
        let mut last_send = now.checked_sub(SEND_EVERY).unwrap_or(now);
        let ended = loop {
            // What was queued while disconnected, or whose wake-up was taken by a send that
            // had already drained it, goes out here; not within `SEND_EVERY` of the last send
            // (after a notification heard, say): what is queued then has its wake-up still to
            // come, and the wake arm below waits out the interval.
            if tokio::time::Instant::now() >= last_send + SEND_EVERY {
                match self.send_pending(&client, &notify).await {
                    Ok(true) => last_send = tokio::time::Instant::now(),
                    Ok(false) => {}
                    Err(error) => break error,
                }
            }
            tokio::select! {
                message = from_connection.recv() => match message {
                    Some(FromConnection::Notification(notification)) => {
                        if notification.process_id() != own_pid
                            && notification.channel() == GATE_CHANNEL
                        {
                            on_event(GateEvent::Changed(decode(notification.payload())));
                        }
                    }
                    Some(FromConnection::Closed(Some(error))) => break error.to_string(),
                    Some(FromConnection::Closed(None)) | None => {
                        break "the database closed the connection".to_owned();
                    }
                },
                // Sent at the loop's top, once `SEND_EVERY` has passed since the last send
                // (at once when it has); what is queued meanwhile goes in the same send.
                () = self.shared.wake.notified() => {
                    tokio::time::sleep_until(last_send + SEND_EVERY).await;
                }
                _ = ping.tick() => {
                    if let Err(error) = self.bounded(async {
                        client.simple_query("SELECT 1").await.map(drop)
                    }).await {
                        break error;
                    }
                }
            }
        };
        drop(driver);
        Ended::Lost(ended)
    }

    /// Sends what is queued, if anything (true when a statement was sent); puts it back when
    /// the send fails.
    async fn send_pending(
        &self,
        client: &tokio_postgres::Client,
        notify: &tokio_postgres::Statement,
    ) -> Result<bool, String> {
        let Some(change) = self.shared.pending().take() else {
            return Ok(false);
        };
        let payloads = encode(&change);
        if payloads.is_empty() {
            return Ok(false);
        }
        let sent = self
            .bounded(async {
                client
                    .execute(notify, &[&GATE_CHANNEL, &payloads])
                    .await
                    .map(drop)
            })
            .await;
        if sent.is_err() {
            self.shared.pending().add(&change);
        }
        sent.map(|()| true)
    }

    /// Runs `call` within the statement time limit.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(self.statement_timeout, call).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.statement_timeout.as_millis()
            )),
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The payloads that carry `change`: none for an empty one, `["all"]` for everything or for
/// more than [`MAX_PAYLOADS`] payloads, else lines packed into payloads of at most
/// [`MAX_PAYLOAD_BYTES`].
pub fn encode(change: &GateInvalidation) -> Vec<String> {
    let (customers, users) = match change {
        GateInvalidation::All => return vec!["all".to_owned()],
        GateInvalidation::Keys { customers, users } => (customers, users),
    };
    let lines = customers
        .iter()
        .map(|c| ("c:", c))
        .chain(users.iter().map(|u| ("u:", u)));
    let mut payloads: Vec<String> = Vec::new();
    let mut current = String::new();
    for (prefix, id) in lines {
        let line_len = prefix.len() + id.len();
        if line_len > MAX_PAYLOAD_BYTES || id.contains('\n') {
            return vec!["all".to_owned()];
        }
        if !current.is_empty() && current.len() + 1 + line_len > MAX_PAYLOAD_BYTES {
            payloads.push(std::mem::take(&mut current));
            if payloads.len() == MAX_PAYLOADS {
                return vec!["all".to_owned()];
            }
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(prefix);
        current.push_str(id);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// What a payload names; `all` for `all`, an empty payload or any line this version does not
/// understand.
pub fn decode(payload: &str) -> GateInvalidation {
    let mut customers = Vec::new();
    let mut users = Vec::new();
    for line in payload.split('\n') {
        match (line.strip_prefix("c:"), line.strip_prefix("u:")) {
            (Some(customer), _) if !customer.is_empty() => customers.push(customer.to_owned()),
            (_, Some(user)) if !user.is_empty() => users.push(user.to_owned()),
            _ => return GateInvalidation::All,
        }
    }
    GateInvalidation::Keys { customers, users }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys(customers: &[&str], users: &[&str]) -> GateInvalidation {
        GateInvalidation::Keys {
            customers: customers.iter().map(|s| (*s).to_owned()).collect(),
            users: users.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_change_survives_the_trip_through_a_payload() {
        let change = keys(&["cus_A", "cus_B"], &["user_1"]);
        let payloads = encode(&change);
        assert_eq!(payloads, vec!["c:cus_A\nc:cus_B\nu:user_1".to_owned()]);
        assert_eq!(decode(&payloads[0]), change);
        assert_eq!(encode(&GateInvalidation::All), vec!["all".to_owned()]);
        assert_eq!(decode("all"), GateInvalidation::All);
        assert!(encode(&keys(&[], &[])).is_empty());
    }

    #[test]
    fn an_unknown_or_empty_line_means_everything() {
        assert_eq!(decode(""), GateInvalidation::All);
        assert_eq!(decode("u:user_1\nx:what"), GateInvalidation::All);
        assert_eq!(decode("u:"), GateInvalidation::All);
    }

    #[test]
    fn many_ids_are_split_under_the_payload_limit_and_too_many_become_all() {
        let users: Vec<String> = (0..2_000).map(|n| format!("user_{n:06}")).collect();
        let change = GateInvalidation::Keys {
            customers: Vec::new(),
            users: users.clone(),
        };
        let payloads = encode(&change);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD_BYTES));
        let mut decoded = Vec::new();
        for payload in &payloads {
            let GateInvalidation::Keys { users, .. } = decode(payload) else {
                panic!("keys expected");
            };
            decoded.extend(users);
        }
        assert_eq!(decoded, users);

        let too_many: Vec<String> = (0..40_000).map(|n| format!("user_{n:06}")).collect();
        let payloads = encode(&GateInvalidation::Keys {
            customers: Vec::new(),
            users: too_many,
        });
        assert_eq!(payloads, vec!["all".to_owned()]);
    }

    #[test]
    fn the_queue_coalesces_and_collapses_into_all_past_its_bound() {
        let mut pending = Pending::default();
        assert_eq!(pending.take(), None);
        pending.add(&GateInvalidation::user("user_1"));
        pending.add(&GateInvalidation::user("user_1"));
        pending.add(&keys(&["cus_A"], &[]));
        assert_eq!(pending.take(), Some(keys(&["cus_A"], &["user_1"])));
        assert_eq!(pending.take(), None);

        for n in 0..=MAX_PENDING_KEYS {
            pending.add(&GateInvalidation::user(&format!("user_{n}")));
        }
        assert!(pending.users.is_empty(), "memory is released");
        pending.add(&GateInvalidation::user("user_late"));
        assert_eq!(pending.take(), Some(GateInvalidation::All));
    }
}
