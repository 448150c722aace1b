//! Replaying deliveries over HTTP/1.1: a closed loop of `in_flight` workers, each with its own
//! keep-alive connection, each taking the next delivery as soon as its previous one was
//! answered. Every body is signed just before it is sent (as Stripe signs at delivery time),
//! outside the timed part.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::Error;

/// Where deliveries go.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    /// Resolves a plain `http://host[:port]/path` URL.
    pub(crate) async fn resolve(url: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only plain http:// endpoints are supported"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .map_err(|e| bad(&format!("cannot resolve: {e}")))?
            .next()
            .ok_or_else(|| bad("the host has no address"))?;
        Ok(Self {
            addr,
            host: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// An HTTP answer with this status; `duplicate` when its body says `"duplicate":true`
    /// (the billing server's answer to an event it already had).
    Status {
        /// The HTTP status code.
        code: u16,
        /// Whether the answer names the delivery a duplicate.
        duplicate: bool,
    },
    /// No connection could be made.
    Connect,
    /// The connection failed while sending or receiving.
    Transport,
    /// No answer within the timeout.
    Timeout,
}

impl Answer {
    /// True for a 2xx answer.
    pub(crate) fn is_success(self) -> bool {
        matches!(self, Answer::Status { code, .. } if (200..300).contains(&code))
    }

    /// The error class of a failed delivery (`"500"`, `"connect"`, …), `None` on success.
    pub(crate) fn error_class(self) -> Option<String> {
        match self {
            _ if self.is_success() => None,
            Answer::Status { code, .. } => Some(code.to_string()),
            Answer::Connect => Some("connect".to_owned()),
            Answer::Transport => Some("transport".to_owned()),
            Answer::Timeout => Some("timeout".to_owned()),
        }
    }
}

/// One delivery's result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// How it ended.
    pub(crate) answer: Answer,
    /// From sending the request to the whole answer, in microseconds.
    pub(crate) latency_us: u64,
}

/// What a replay did.
#[derive(Debug)]
pub(crate) struct Replay {
    /// The outcome of each delivery, in the order given.
    pub(crate) outcomes: Vec<Outcome>,
    /// From the first request to the last answer.
    pub(crate) elapsed: Duration,
}

/// Sends every body of `bodies` (in that order, `in_flight` at a time) to `target`, signed
/// with `secret`.
pub(crate) async fn replay(
    target: &Target,
    secret: &str,
    bodies: Arc<Vec<Bytes>>,
    in_flight: usize,
    timeout: Duration,
) -> Replay {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight.max(1))
        .map(|_| {
            let worker = Worker {
                target: target.clone(),
                secret: secret.to_owned(),
                bodies: Arc::clone(&bodies),
                next: Arc::clone(&next),
                timeout,
                sender: None,
            };
            tokio::spawn(worker.run())
        })
        .collect();
    let mut outcomes = vec![
        Outcome {
            answer: Answer::Transport,
            latency_us: 0,
        };
        bodies.len()
    ];
    for worker in workers {
        // A worker that panicked leaves its deliveries as transport errors.
        if let Ok(done) = worker.await {
            for (slot, outcome) in done {
                outcomes[slot] = outcome;
            }
        }
    }
    Replay {
        outcomes,
        elapsed: started.elapsed(),
    }
}

struct Worker {
    target: Target,
    secret: String,
    bodies: Arc<Vec<Bytes>>,
    next: Arc<AtomicUsize>,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Worker {
    async fn run(mut self) -> Vec<(usize, Outcome)> {
        let mut done = Vec::new();
        loop {
            let slot = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = self.bodies.get(slot).cloned() else {
                return done;
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            let signature = stripe_webhook_signature::sign(&body, &self.secret, now);
            let started = Instant::now();
            let answer = match tokio::time::timeout(self.timeout, self.send(body, signature)).await
            {
                Ok(answer) => answer,
                Err(_) => {
                    self.sender = None;
                    Answer::Timeout
                }
            };
            let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            done.push((slot, Outcome { answer, latency_us }));
        }
    }

    async fn send(&mut self, body: Bytes, signature: String) -> Answer {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.target.path.as_str())
            .header(header::HOST, self.target.host.as_str())
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .header(
                header::USER_AGENT,
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", signature)
            .body(Full::new(body));
        let Ok(request) = request else {
            return Answer::Transport;
        };
        let sender = match self.sender.take().filter(|s| !s.is_closed()) {
            Some(sender) => sender,
            None => match connect(self.target.addr).await {
                Some(sender) => sender,
                None => return Answer::Connect,
            },
        };
        let mut sender = sender;
        if sender.ready().await.is_err() {
            return Answer::Transport;
        }
        let Ok(response) = sender.send_request(request).await else {
            return Answer::Transport;
        };
        let code = response.status().as_u16();
        let keep = !response
            .headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let Ok(collected) = response.into_body().collect().await else {
            return Answer::Transport;
        };
        let text = collected.to_bytes();
        if keep {
            self.sender = Some(sender);
        }
        Answer::Status {
            code,
            duplicate: contains(&text, b"\"duplicate\":true"),
        }
    }
}

async fn connect(addr: SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(async move {
        // The connection ends when the worker drops its sender or the server closes it; a
        // failure shows in the worker's next request.
        let _ = connection.await;
    });
    Some(sender)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `q`-quantile (0 < q ≤ 1) of sorted values, by the nearest-rank method.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Ranks are small (a run's deliveries), so the float round trip is exact.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), 50);
        assert_eq!(quantile(&values, 0.9), 90);
        assert_eq!(quantile(&values, 0.99), 99);
        assert_eq!(quantile(&values, 1.0), 100);
        assert_eq!(quantile(&[7], 0.5), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn answers_classify_errors() {
        let ok = Answer::Status {
            code: 200,
            duplicate: true,
        };
        assert!(ok.is_success());
        assert_eq!(ok.error_class(), None);
        let failed = Answer::Status {
            code: 500,
            duplicate: false,
        };
        assert_eq!(failed.error_class().as_deref(), Some("500"));
        assert_eq!(Answer::Timeout.error_class().as_deref(), Some("timeout"));
        assert!(contains(
            br#"{"received":true,"duplicate":true}"#,
            b"\"duplicate\":true"
        ));
        assert!(!contains(br#"{"received":true}"#, b"\"duplicate\":true"));
    }
}
