//! The change feed as a stream, and the task that forgets cached entitlements by it.

use std::collections::VecDeque;
use std::pin::pin;
use std::time::Duration;

use billing_api::ChangeRecord;
use futures_util::{Stream, StreamExt, stream};

use crate::client::Client;
use crate::error::Error;

/// Records asked per page by the stream.
const PAGE: u32 = 500;

/// The longest pause of the stream after failures in a row.
const MAX_PAUSE: Duration = Duration::from_secs(30);

struct Feed {
    client: Client,
    cursor: Option<String>,
    buffered: VecDeque<ChangeRecord>,
    failures: u32,
    ended: bool,
}

impl Client {
    /// Every change record after `cursor` (`None`: from the oldest kept), in commit order,
    /// long-polling for new ones without end. Keep the `cursor` of each record handled and
    /// pass it here to resume after a restart.
    ///
    /// A failure is yielded as an `Err` item: an [`Error::Unavailable`] (the server down) is
    /// followed by more attempts after a growing pause (up to 30 s), from the same cursor; any
    /// other error (an unknown cursor, a refused key, [`Error::CursorExpired`] when the cursor
    /// is older than the server's retention) ends the stream after it.
    pub fn changes_stream(
        &self,
        cursor: Option<String>,
    ) -> impl Stream<Item = Result<ChangeRecord, Error>> + Send + 'static {
        let feed = Feed {
            client: self.clone(),
            cursor,
            buffered: VecDeque::new(),
            failures: 0,
            ended: false,
        };
        stream::unfold(feed, |mut feed| async move {
            loop {
                if let Some(record) = feed.buffered.pop_front() {
                    return Some((Ok(record), feed));
                }
                if feed.ended {
                    return None;
                }
                if feed.failures > 0 {
                    let pause = Duration::from_millis(100)
                        .saturating_mul(1 << feed.failures.min(9))
                        .min(MAX_PAUSE);
                    tokio::time::sleep(pause).await;
                }
                let wait = feed.client.inner.changes_wait;
                match feed
                    .client
                    .changes(feed.cursor.as_deref(), Some(PAGE), Some(wait))
                    .await
                {
                    Ok(page) => {
                        feed.failures = 0;
                        feed.cursor = Some(page.next_cursor);
                        feed.buffered.extend(page.changes);
                    }
                    Err(error) => {
                        if error.is_retryable() {
                            feed.failures = feed.failures.saturating_add(1);
                        } else {
                            feed.ended = true;
                        }
                        return Some((Err(error), feed));
                    }
                }
            }
        })
    }

    /// Starts a task (on the current tokio runtime) that reads the change feed after `cursor`
    /// and forgets the cached entitlements of each record's user; `None` when the client has
    /// no cache. When the cursor has expired (records after it were purged, so some changes
    /// were never heard of), the whole cache is forgotten and the feed read again from the
    /// start. If the feed ends otherwise (an unknown cursor, a refused key), the whole cache
    /// is forgotten, the error logged, and entries live their time to live only.
    pub fn spawn_cache_invalidation(
        &self,
        cursor: Option<String>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.inner.cache.as_ref()?;
        let client = self.clone();
        Some(tokio::spawn(async move {
            let mut cursor = cursor;
            // Each time the cursor expires, the whole cache is forgotten and the feed read
            // again from the start; any other end forgets it once and stops.
            while client.forget_along(cursor.take()).await {}
        }))
    }

    /// Reads the change feed after `cursor`, forgetting the cached entitlements of each
    /// record's user, until the stream ends; then forgets the whole cache. True when it ended
    /// because the cursor expired.
    async fn forget_along(&self, cursor: Option<String>) -> bool {
        let mut expired = false;
        let mut changes = pin!(self.changes_stream(cursor));
        while let Some(change) = changes.next().await {
            match change {
                Ok(record) => {
                    if let Some(user) = &record.user_id {
                        self.forget(user);
                    }
                }
                Err(error) if error.is_retryable() => {
                    tracing::warn!(%error, "billing change feed unavailable; retrying");
                }
                Err(error @ Error::CursorExpired { .. }) => {
                    tracing::warn!(
                        %error,
                        "billing change feed cursor expired; cached entitlements forgotten, reading the feed from the start"
                    );
                    expired = true;
                }
                Err(error) => {
                    tracing::error!(
                        %error,
                        "billing change feed ended; cached entitlements now expire by their time to live only"
                    );
                }
            }
        }
        if let Some(cache) = &self.inner.cache {
            cache.clear();
        }
        expired
    }
}
