//! Concurrent consumes on Postgres share one transaction (group commit).
//!
//! A lone consume is the one statement of [`usage::consume_postgres`]: one round trip and one
//! commit. Under load most of a consume's cost is that commit (a WAL flush), and a hot counter
//! serialises its consumes on its row lock, held until the commit. So consumes are queued to a
//! few workers ([`WORKERS`], each user's to one of them); each takes what is queued (up to
//! [`MAX_BATCH`]) and decides the whole batch in one transaction:
//!
//! 1. the batch's counters are created when missing (`ON CONFLICT DO NOTHING`, in sorted
//!    order) and locked (`SELECT … ORDER BY … FOR UPDATE`, the same order in every batch, so
//!    two batches never wait for each other in a cycle);
//! 2. the earlier records of the batch's idempotency keys are read (committed ones; a key
//!    another transaction is still inserting makes step 4 fail, see below);
//! 3. the requests are decided in the order they were queued, with the rule the single
//!    statement applies ([`usage::verdict`]) on the locked totals: a key recorded earlier (in
//!    the database or in this batch) replays that record, a request that fits is counted, one
//!    that does not is denied and recorded, one past `i64::MAX` is refused;
//! 4. the new totals and the new records are written (one statement each) and the
//!    transaction commits; only then is each request answered.
//!
//! A batch whose usage insert meets a key committed meanwhile by another transaction (a unique
//! violation) rolls back entirely and runs again: its next run replays that record. A batch of
//! one runs the single statement. The guarantees are those of
//! [`BillingStore::consume_usage`](billing_ports::BillingStore::consume_usage): no counter
//! passes its limit, each counter is the sum of the allowed quantities recorded for it, a key
//! is recorded once, and an answer comes only after its commit.

use std::collections::HashMap;
use std::sync::OnceLock;

use billing_ports::{Cause, StoreError, UsageConsumed, UsageRequest};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::pg;
use crate::prepared::cached;
use crate::usage::{self, MAX_RUNS, Stored, UsageRow, Verdict, usage_record, verdict};

/// How many batches run at once, each on a pooled connection of its own. A user's consumes
/// always go to the same worker ([`worker_of`]), so two batches never share a counter or an
/// idempotency key and never wait for each other's locks (only for other writers').
pub(crate) const WORKERS: usize = 8;

/// The most consumes one transaction decides.
pub(crate) const MAX_BATCH: usize = 128;

/// The most consumes one worker's queue holds; a consume that finds it full runs alone (its
/// own statement and commit) instead of waiting behind more than a few batches.
pub(crate) const QUEUE: usize = 4 * MAX_BATCH;

/// What a queued consume is answered with.
type Answer = Result<UsageConsumed, StoreError>;

/// One queued consume.
struct Job {
    request: UsageRequest,
    reply: oneshot::Sender<Answer>,
}

/// The queues of the store's consumes, one per worker, started on first use.
#[derive(Default)]
pub(crate) struct UsageBatcher {
    queues: OnceLock<Vec<mpsc::Sender<Job>>>,
}

/// The worker of `user_id`'s consumes.
fn worker_of(user_id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    // Any stable spread will do: the same user always maps to the same worker.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    user_id.hash(&mut hasher);
    usize::try_from(hasher.finish() % WORKERS as u64).unwrap_or(0)
}

impl UsageBatcher {
    /// Consumes `request` in a batch of the consumes queued with it; answers after the commit.
    /// The workers run on `runtime` when given (the store's database thread), else on the
    /// current runtime.
    pub(crate) async fn consume(
        &self,
        pool: &pg::Pool,
        runtime: Option<&Handle>,
        request: &UsageRequest,
    ) -> Answer {
        let queues = self.queues.get_or_init(|| start(pool, runtime));
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request: request.clone(),
            reply,
        };
        let sent = queues[worker_of(&request.user_id)].try_send(job).is_ok();
        if sent && let Ok(answer) = answer.await {
            return answer;
        }
        // The worker's queue is full, or the workers are gone or dropped the batch unanswered
        // (the runtime that started them is shutting down, with the actix worker that ran it):
        // the consume runs alone. Its key makes that safe: a batch that committed before it
        // was dropped is replayed.
        let mut conn = pg::connection(pool).await?;
        usage::consume_postgres(&mut conn, request).await
    }
}

/// Starts the workers on `runtime`, or on the current runtime; returns their queues.
fn start(pool: &pg::Pool, runtime: Option<&Handle>) -> Vec<mpsc::Sender<Job>> {
    (0..WORKERS)
        .map(|_| {
            let (queue, jobs) = mpsc::channel(QUEUE);
            let runtime = runtime.cloned().unwrap_or_else(Handle::current);
            drop(runtime.spawn(work(pool.clone(), jobs)));
            queue
        })
        .collect()
}

/// A worker: waits for a consume, takes every one queued behind it (up to [`MAX_BATCH`]),
/// decides them; until the store (the queue's sender) is dropped.
async fn work(pool: pg::Pool, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run(&pool, batch).await;
    }
}

/// Decides `batch` and answers each of its consumes.
async fn run(pool: &pg::Pool, batch: Vec<Job>) {
    // A caller that stopped waiting (its call limit passed) was answered "unavailable": its
    // consume is not started (one already started may still commit; its key replays it).
    let waiting = |batch: Vec<Job>| -> Vec<Job> {
        batch
            .into_iter()
            .filter(|job| !job.reply.is_closed())
            .collect()
    };
    let batch = waiting(batch);
    if batch.is_empty() {
        return;
    }
    let mut conn = match pg::connection(pool).await {
        Ok(conn) => conn,
        Err(error) => {
            for job in batch {
                job.reply.send(Err(error.clone())).ok();
            }
            return;
        }
    };
    let batch = waiting(batch);
    let requests: Vec<&UsageRequest> = batch.iter().map(|job| &job.request).collect();
    let answers = match requests.as_slice() {
        [request] => vec![usage::consume_postgres(&mut conn, request).await],
        // Whatever failed the batch (a lost connection, a timeout, a request the database
        // cannot store or refuses) is not every request's: each runs alone and gets its own
        // answer.
        _ => match decide_batch(&mut conn, &requests).await {
            Ok(answers) => answers,
            Err(_) => {
                let mut answers = Vec::with_capacity(requests.len());
                for request in &requests {
                    answers.push(usage::consume_postgres(&mut conn, request).await);
                }
                answers
            }
        },
    };
    for (job, answer) in batch.into_iter().zip(answers) {
        job.reply.send(answer).ok();
    }
}

/// Runs the batch's transaction until it commits (again after a key committed meanwhile);
/// the answers in the order of `requests`.
async fn decide_batch(
    conn: &mut AsyncPgConnection,
    requests: &[&UsageRequest],
) -> Result<Vec<Answer>, StoreError> {
    let stored = requests
        .iter()
        .map(|request| Stored::of(request))
        .collect::<Result<Vec<_>, _>>()?;
    let stored = &stored;
    for _ in 0..MAX_RUNS {
        let result = conn
            .transaction(async |c: &mut AsyncPgConnection| decide(c, stored).await)
            .await;
        match result {
            Ok(answers) => return Ok(answers),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
            Err(error) => return usage::failed(conn, error).await,
        }
    }
    Err(StoreError::Unavailable(Cause::msg(format!(
        "a usage batch raced by other requests {MAX_RUNS} times in a row"
    ))))
}

/// A counter as locked.
#[derive(QueryableByName)]
struct CounterRow {
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = Timestamptz)]
    period_start: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    used: i64,
}

/// A counter's key.
type CounterKey = (String, String, DateTime<Utc>);

/// The batch's transaction (see the module docs): the database's error, or each request's
/// answer (a record that cannot be read back fails its own request only).
async fn decide(
    c: &mut AsyncPgConnection,
    stored: &[Stored<'_>],
) -> diesel::QueryResult<Vec<Answer>> {
    // 1. The counters, created when missing and locked, in one order.
    let mut keys: Vec<CounterKey> = stored
        .iter()
        .map(|s| (s.user_id.to_owned(), s.metric.to_owned(), s.period_start))
        .collect();
    keys.sort();
    keys.dedup();
    let users: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let metrics: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let periods: Vec<DateTime<Utc>> = keys.iter().map(|k| k.2).collect();
    cached(
        diesel::sql_query(
            "INSERT INTO usage_counters (user_id, metric, period_start, used) \
             SELECT k.user_id, k.metric, k.period_start, 0 \
             FROM unnest($1::text[], $2::text[], $3::timestamptz[]) \
                  WITH ORDINALITY AS k(user_id, metric, period_start, position) \
             ORDER BY k.position \
             ON CONFLICT (user_id, metric, period_start) DO NOTHING",
        )
        .bind::<Array<Text>, _>(&users)
        .bind::<Array<Text>, _>(&metrics)
        .bind::<Array<Timestamptz>, _>(&periods),
    )
    .execute(c)
    .await?;
    let counters: Vec<CounterRow> = cached(
        diesel::sql_query(
            "SELECT c.user_id, c.metric, c.period_start, c.used FROM usage_counters c \
             JOIN unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(user_id, metric, period_start) \
               ON c.user_id = k.user_id AND c.metric = k.metric \
                  AND c.period_start = k.period_start \
             ORDER BY c.user_id, c.metric, c.period_start \
             FOR UPDATE OF c",
        )
        .bind::<Array<Text>, _>(&users)
        .bind::<Array<Text>, _>(&metrics)
        .bind::<Array<Timestamptz>, _>(&periods),
    )
    .load(c)
    .await?;
    let mut used: HashMap<CounterKey, i64> = counters
        .into_iter()
        .map(|row| ((row.user_id, row.metric, row.period_start), row.used))
        .collect();

    // 2. The earlier records of the batch's keys.
    let key_users: Vec<&str> = stored.iter().map(|s| s.user_id).collect();
    let key_names: Vec<&str> = stored.iter().map(|s| s.idempotency_key).collect();
    let priors: Vec<UsageRow> = cached(
        diesel::sql_query(
            "SELECT u.user_id, u.metric, u.period_start, u.quantity, u.idempotency_key, \
                    u.allowed, u.used_after, u.limit_value, u.recorded_at \
             FROM usage u \
             JOIN unnest($1::text[], $2::text[]) AS k(user_id, idempotency_key) \
               ON u.user_id = k.user_id AND u.idempotency_key = k.idempotency_key",
        )
        .bind::<Array<Text>, _>(&key_users)
        .bind::<Array<Text>, _>(&key_names),
    )
    .load(c)
    .await?;
    let mut recorded: HashMap<(String, String), UsageRow> = priors
        .into_iter()
        .map(|row| ((row.user_id.clone(), row.idempotency_key.clone()), row))
        .collect();

    // 3. Each request in its turn.
    let mut answers = Vec::with_capacity(stored.len());
    let mut new_rows: Vec<UsageRow> = Vec::new();
    let mut bumped: Vec<CounterKey> = Vec::new();
    for s in stored {
        let key = (s.user_id.to_owned(), s.idempotency_key.to_owned());
        if let Some(prior) = recorded.get(&key) {
            answers.push(usage_record(prior.clone()).map(UsageConsumed::Replayed));
            continue;
        }
        let counter = (s.user_id.to_owned(), s.metric.to_owned(), s.period_start);
        let total = used.get(&counter).copied().unwrap_or(0);
        let row = match verdict(total, s.quantity, s.limit) {
            Verdict::TooLarge => {
                answers.push(
                    usage::from_stored(total, "usage_counters.used")
                        .map(|used| UsageConsumed::TooLarge { used }),
                );
                continue;
            }
            Verdict::Deny => s.row(false, total),
            Verdict::Count => {
                let after = total + s.quantity;
                used.insert(counter.clone(), after);
                bumped.push(counter);
                s.row(true, after)
            }
        };
        answers.push(usage_record(row.clone()).map(UsageConsumed::Recorded));
        recorded.insert(key, row.clone());
        new_rows.push(row);
    }

    // 4. The new totals and records.
    bumped.sort();
    bumped.dedup();
    if !bumped.is_empty() {
        let users: Vec<&str> = bumped.iter().map(|k| k.0.as_str()).collect();
        let metrics: Vec<&str> = bumped.iter().map(|k| k.1.as_str()).collect();
        let periods: Vec<DateTime<Utc>> = bumped.iter().map(|k| k.2).collect();
        let totals: Vec<i64> = bumped.iter().map(|k| used[k]).collect();
        cached(
            diesel::sql_query(
                "UPDATE usage_counters c SET used = k.used \
                 FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[]) \
                      AS k(user_id, metric, period_start, used) \
                 WHERE c.user_id = k.user_id AND c.metric = k.metric \
                   AND c.period_start = k.period_start",
            )
            .bind::<Array<Text>, _>(&users)
            .bind::<Array<Text>, _>(&metrics)
            .bind::<Array<Timestamptz>, _>(&periods)
            .bind::<Array<BigInt>, _>(&totals),
        )
        .execute(c)
        .await?;
    }
    if !new_rows.is_empty() {
        // In one order (user, key) in every batch: two batches of one user's keys (on two
        // replicas) never wait for each other's keys in a cycle.
        new_rows.sort_by(|a, b| {
            (&a.user_id, &a.idempotency_key).cmp(&(&b.user_id, &b.idempotency_key))
        });
        let column = |f: fn(&UsageRow) -> &str| -> Vec<&str> { new_rows.iter().map(f).collect() };
        let users = column(|r| &r.user_id);
        let metrics = column(|r| &r.metric);
        let keys = column(|r| &r.idempotency_key);
        let periods: Vec<DateTime<Utc>> = new_rows.iter().map(|r| r.period_start.0).collect();
        let quantities: Vec<i64> = new_rows.iter().map(|r| r.quantity).collect();
        let allowed: Vec<bool> = new_rows.iter().map(|r| r.allowed).collect();
        let used_after: Vec<i64> = new_rows.iter().map(|r| r.used_after).collect();
        let limits: Vec<Option<i64>> = new_rows.iter().map(|r| r.limit_value).collect();
        let recorded_at: Vec<DateTime<Utc>> = new_rows.iter().map(|r| r.recorded_at.0).collect();
        cached(
            diesel::sql_query(
                "INSERT INTO usage (user_id, metric, period_start, quantity, idempotency_key, \
                                    allowed, used_after, limit_value, recorded_at) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], \
                                      $5::text[], $6::bool[], $7::bigint[], $8::bigint[], \
                                      $9::timestamptz[])",
            )
            .bind::<Array<Text>, _>(&users)
            .bind::<Array<Text>, _>(&metrics)
            .bind::<Array<Timestamptz>, _>(&periods)
            .bind::<Array<BigInt>, _>(&quantities)
            .bind::<Array<Text>, _>(&keys)
            .bind::<Array<Bool>, _>(&allowed)
            .bind::<Array<BigInt>, _>(&used_after)
            .bind::<Array<Nullable<BigInt>>, _>(&limits)
            .bind::<Array<Timestamptz>, _>(&recorded_at),
        )
        .execute(c)
        .await?;
    }
    Ok(answers)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_ports::{UsageRecord, UsageRequest};
    use chrono::TimeZone;
    use diesel_async::AsyncConnection;

    use std::time::Duration;

    use super::*;
    use crate::testing::TestDatabase;
    use crate::tx::Tx;

    fn request(user: &str, metric: &str, quantity: u64, key: &str) -> UsageRequest {
        UsageRequest {
            user_id: user.to_owned(),
            metric: metric.to_owned(),
            period_start: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            quantity,
            idempotency_key: key.to_owned(),
            limit: Some(10),
            recorded_at: Utc.with_ymd_and_hms(2026, 12, 6, 9, 30, 0).unwrap(),
        }
    }

    fn record(r: &UsageRequest, allowed: bool, used_after: u64) -> UsageRecord {
        UsageRecord {
            user_id: r.user_id.clone(),
            metric: r.metric.clone(),
            period_start: r.period_start,
            quantity: r.quantity,
            idempotency_key: r.idempotency_key.clone(),
            allowed,
            used_after,
            limit: r.limit,
            recorded_at: r.recorded_at,
        }
    }

    /// One batch decides its requests in order on the locked totals, as the single statement
    /// would one after another: counted until the limit, then denied, a key seen earlier in the
    /// batch or in the database replayed (also under another metric), a sum past BIGINT
    /// refused; the counters and records it commits are exactly the answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_decides_in_order_as_single_consumes_would() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let earlier = request("user_Lq3v9T", "api_calls", 2, "req_0e4Kd1");
        assert!(matches!(
            usage::consume_postgres(&mut conn, &earlier).await.unwrap(),
            UsageConsumed::Recorded(_)
        ));
        let a = request("user_Lq3v9T", "api_calls", 6, "req_7Hs2Wq");
        let b = request("user_Lq3v9T", "api_calls", 3, "req_c81PxZ");
        let a_again = request("user_Lq3v9T", "api_calls", 6, "req_7Hs2Wq");
        let earlier_other_metric = request("user_Lq3v9T", "ai_generations", 1, "req_0e4Kd1");
        let c = request("user_Lq3v9T", "api_calls", 2, "req_Yt50mB");
        let other_user = request("user_9Zr1Qp", "api_calls", 10, "req_7Hs2Wq");
        let huge = UsageRequest {
            limit: None,
            ..request("user_9Zr1Qp", "ai_generations", u64::MAX >> 1, "req_Gm2s7V")
        };
        let huge_again = UsageRequest {
            idempotency_key: "req_Pf8a3N".to_owned(),
            ..huge.clone()
        };
        let batch = [
            &a,
            &b,
            &a_again,
            &earlier_other_metric,
            &c,
            &other_user,
            &huge,
            &huge_again,
        ];
        let answers: Vec<UsageConsumed> = decide_batch(&mut conn, &batch)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let max = u64::MAX >> 1;
        assert_eq!(
            answers,
            [
                UsageConsumed::Recorded(record(&a, true, 8)),
                UsageConsumed::Recorded(record(&b, false, 8)),
                UsageConsumed::Replayed(record(&a, true, 8)),
                UsageConsumed::Replayed(record(&earlier, true, 2)),
                UsageConsumed::Recorded(record(&c, true, 10)),
                UsageConsumed::Recorded(record(&other_user, true, 10)),
                UsageConsumed::Recorded(record(&huge, true, max)),
                UsageConsumed::TooLarge { used: max },
            ]
        );
        // What was committed: the totals, and one record per new key.
        let again = decide_batch(&mut conn, &[&b, &c]).await.unwrap();
        assert_eq!(
            again.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [
                UsageConsumed::Replayed(record(&b, false, 8)),
                UsageConsumed::Replayed(record(&c, true, 10)),
            ]
        );
        let mut tx = Tx::new(&mut conn);
        use billing_ports::UsageRead;
        let used = tx
            .usage_used("user_Lq3v9T", "api_calls", a.period_start)
            .await
            .unwrap();
        assert_eq!(used, 10);
        let huge_used = tx
            .usage_used("user_9Zr1Qp", "ai_generations", a.period_start)
            .await
            .unwrap();
        assert_eq!(huge_used, max);
    }

    /// Consumes sent at once through the queue: each counter ends at the sum of the allowed
    /// quantities recorded for it, never past its limit, each key recorded once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_consumes_add_up_per_counter() {
        let db = TestDatabase::postgres().await;
        let store = db.store().clone();
        let mut consumes = tokio::task::JoinSet::new();
        for n in 0..300u64 {
            let store = store.clone();
            consumes.spawn(async move {
                let user = format!("user_{}", ["Wk2p", "Rt9x", "Mb4q"][(n % 3) as usize]);
                // Every key twice (n and n + 150 share one).
                let r = request(&user, "api_calls", 1 + n % 2, &format!("req_{}", n % 150));
                use billing_ports::BillingStore;
                (r.clone(), store.consume_usage(&r).await.unwrap())
            });
        }
        let mut first: HashMap<(String, String), UsageRecord> = HashMap::new();
        let mut allowed: HashMap<String, u64> = HashMap::new();
        let mut answers = Vec::new();
        while let Some(joined) = consumes.join_next().await {
            answers.push(joined.unwrap());
        }
        for (r, consumed) in &answers {
            if let UsageConsumed::Recorded(record) = consumed {
                assert!(record.used_after <= 10, "{record:?}");
                let key = (r.user_id.clone(), r.idempotency_key.clone());
                assert!(first.insert(key, record.clone()).is_none(), "{record:?}");
                if record.allowed {
                    *allowed.entry(r.user_id.clone()).or_default() += r.quantity;
                }
            }
        }
        for (r, consumed) in &answers {
            if let UsageConsumed::Replayed(record) = consumed {
                let key = (r.user_id.clone(), r.idempotency_key.clone());
                assert_eq!(first.get(&key), Some(record), "{r:?}");
            }
        }
        assert_eq!(first.len(), 150, "each key recorded once");
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let mut tx = Tx::new(&mut conn);
        use billing_ports::UsageRead;
        for user in ["user_Wk2p", "user_Rt9x", "user_Mb4q"] {
            let used = tx
                .usage_used(
                    user,
                    "api_calls",
                    request(user, "api_calls", 1, "x").period_start,
                )
                .await
                .unwrap();
            assert_eq!(used, allowed.get(user).copied().unwrap_or(0), "{user}");
            assert!(used >= 9, "{user}: the limit is reached ({used})");
        }
    }

    /// A consume whose worker's queue is full does not wait behind it: it runs alone and is
    /// answered (here no worker drains the queues at all).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consume_that_finds_its_queue_full_runs_alone() {
        let db = TestDatabase::postgres().await;
        let crate::Inner::Postgres(pool) = &db.store().inner else {
            unreachable!("a Postgres test database")
        };
        let (queues, _stalled): (Vec<_>, Vec<_>) = (0..WORKERS).map(|_| mpsc::channel(1)).unzip();
        for queue in &queues {
            let (reply, _) = oneshot::channel();
            let request = request("user_Qx81Vd", "api_calls", 1, "req_tL4n0G");
            queue.try_send(Job { request, reply }).unwrap();
        }
        let batcher = UsageBatcher::default();
        assert!(batcher.queues.set(queues).is_ok());
        let r = request("user_Hb3k2W", "api_calls", 4, "req_N7s1cP");
        let answer = tokio::time::timeout(Duration::from_secs(10), batcher.consume(pool, None, &r))
            .await
            .expect("answered without a worker")
            .unwrap();
        assert_eq!(answer, UsageConsumed::Recorded(record(&r, true, 4)));
    }

    /// A period start finer than Postgres' microseconds still finds its counter (the batch
    /// matches counters by the stored value): the limit holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_period_start_finer_than_microseconds_finds_its_counter() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let fine = |quantity: u64, key: &str| UsageRequest {
            period_start: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
                + chrono::TimeDelta::nanoseconds(1_500),
            ..request("user_Nq8c2L", "api_calls", quantity, key)
        };
        let first = fine(8, "req_F1rst0");
        usage::consume_postgres(&mut conn, &first).await.unwrap();
        let (two, three) = (fine(2, "req_Tw0aaa"), fine(3, "req_Thr33b"));
        let answers: Vec<UsageConsumed> = decide_batch(&mut conn, &[&two, &three])
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let allowed: Vec<(bool, u64)> = answers
            .iter()
            .map(|a| match a {
                UsageConsumed::Recorded(r) => (r.allowed, r.used_after),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(allowed, [(true, 10), (false, 10)]);
    }

    /// One request the database refuses (a NUL in its key) fails alone: the consumes queued
    /// with it (one user's, so one worker's batches) are answered as if it were not there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_the_database_refuses_fails_alone() {
        let db = TestDatabase::postgres().await;
        let store = db.store().clone();
        let mut consumes = tokio::task::JoinSet::new();
        for n in 0..48u64 {
            let store = store.clone();
            consumes.spawn(async move {
                let key = if n == 20 {
                    "req_bad\0key".to_owned()
                } else {
                    format!("req_{n}")
                };
                let r = UsageRequest {
                    limit: Some(1_000),
                    ..request("user_Hx5r0P", "api_calls", 1, &key)
                };
                use billing_ports::BillingStore;
                (n, store.consume_usage(&r).await)
            });
        }
        let mut failed = Vec::new();
        let mut allowed = 0;
        while let Some(joined) = consumes.join_next().await {
            match joined.unwrap() {
                (_, Ok(UsageConsumed::Recorded(r))) if r.allowed => allowed += 1,
                (n, Ok(other)) => panic!("request {n}: {other:?}"),
                (n, Err(_)) => failed.push(n),
            }
        }
        assert_eq!(failed, [20]);
        assert_eq!(allowed, 47);
    }
}
