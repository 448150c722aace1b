//! A small HTTP/1.1 client for the server under test: one fresh connection per request (a
//! killed server never leaves a pooled connection behind), a hard timeout on the whole
//! exchange, and only ever 127.0.0.1.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text, lossy.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listens on the port (the server is down).
    Refused,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection broke mid-exchange (a killed server), or the request was unsendable.
    Broken(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused => f.write_str("connection refused"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Broken(why) => write!(f, "connection broken: {why}"),
        }
    }
}

/// One exchange: the answer or why there was none, and how long it took.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub result: Result<Answer, Failure>,
    /// When the request was started.
    pub started: Instant,
    /// How long until the answer (or the failure).
    pub latency: Duration,
}

impl Exchange {
    /// True when a 2xx answer came.
    pub fn is_success(&self) -> bool {
        self.result.as_ref().is_ok_and(Answer::is_success)
    }

    /// When the answer (or the failure) came.
    pub fn ended(&self) -> Instant {
        self.started + self.latency
    }

    /// The status code, if an answer came.
    pub fn status(&self) -> Option<u16> {
        self.result.as_ref().ok().map(|a| a.status)
    }

    /// `"200"`, `"503"`, `"refused"`, `"timeout"`, `"broken"`: for tallies.
    pub fn label(&self) -> String {
        match &self.result {
            Ok(a) => a.status.to_string(),
            Err(Failure::Refused) => "refused".to_owned(),
            Err(Failure::Timeout) => "timeout".to_owned(),
            Err(Failure::Broken(_)) => "broken".to_owned(),
        }
    }
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A client of one server address.
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    timeout: Duration,
}

impl Client {
    /// A client of `addr` (must be a loopback address) giving up after `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        assert!(addr.ip().is_loopback(), "chaos traffic stays on 127.0.0.1");
        Self { addr, timeout }
    }

    /// Sends one request; header values that HTTP cannot carry make the exchange `Broken`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: Vec<u8>,
    ) -> Exchange {
        let started = Instant::now();
        let result =
            match tokio::time::timeout(self.timeout, self.exchange(method, path, headers, body))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(Failure::Timeout),
            };
        Exchange {
            result,
            started,
            latency: started.elapsed(),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: Vec<u8>,
    ) -> Result<Answer, Failure> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            let value = hyper::header::HeaderValue::from_bytes(value)
                .map_err(|e| Failure::Broken(format!("unsendable header {name}: {e}")))?;
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let stream = TcpStream::connect(self.addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                Failure::Refused
            } else {
                Failure::Broken(e.to_string())
            }
        })?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let response = sender.send_request(request).await;
        let result = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(body) => Ok(Answer {
                        status,
                        body: body.to_bytes(),
                    }),
                    Err(e) => Err(Failure::Broken(e.to_string())),
                }
            }
            Err(e) => Err(Failure::Broken(e.to_string())),
        };
        driver.abort();
        result
    }

    /// `GET path`, with a bearer key when given.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Exchange {
        let auth = bearer.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &[u8])> = auth
            .iter()
            .map(|a| ("authorization", a.as_bytes()))
            .collect();
        self.send("GET", path, &headers, Vec::new()).await
    }

    /// `POST path` with a JSON body, a bearer key and extra headers.
    pub async fn post_json(
        &self,
        path: &str,
        bearer: &str,
        extra: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Exchange {
        let auth = format!("Bearer {bearer}");
        let mut headers: Vec<(&str, &[u8])> = vec![
            ("authorization", auth.as_bytes()),
            ("content-type", b"application/json"),
        ];
        headers.extend(extra.iter().map(|(n, v)| (*n, v.as_bytes())));
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.send("POST", path, &headers, bytes).await
    }

    /// Posts a webhook body with the given `Stripe-Signature` header (none when `None`).
    pub async fn webhook_raw(&self, body: Vec<u8>, signature: Option<&[u8]>) -> Exchange {
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
        if let Some(signature) = signature {
            headers.push(("stripe-signature", signature));
        }
        self.send("POST", "/webhooks/stripe", &headers, body).await
    }

    /// Posts a webhook body signed now with `secret`, as Stripe does on every (re)delivery.
    pub async fn webhook(&self, body: &[u8], secret: &str) -> Exchange {
        let header = stripe_webhook_signature::sign(body, secret, unix_now());
        self.webhook_raw(body.to_vec(), Some(header.as_bytes()))
            .await
    }
}
