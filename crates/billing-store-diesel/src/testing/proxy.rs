//! A TCP proxy that freezes or cuts a test's database connections.

/// A TCP proxy in front of a database server that a test can freeze (it stops forwarding
/// bytes in both directions, like a stalled server or network, without touching the shared
/// server) and thaw, or whose connections it can cut (like a server that closed them).
///
/// It runs on a thread of its own, so it keeps working whatever the test's runtime does.
///
/// ```no_run
/// # async fn demo() {
/// use billing_store_diesel::testing::{FreezableProxy, TestDatabase};
/// let db = TestDatabase::postgres().await;
/// let proxy = FreezableProxy::start(db.url()).await;
/// let url = proxy.url(db.url()); // the same database, through the proxy
/// proxy.freeze();
/// proxy.thaw();
/// # }
/// ```
pub struct FreezableProxy {
    addr: std::net::SocketAddr,
    frozen: tokio::sync::watch::Sender<bool>,
    cuts: tokio::sync::watch::Sender<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FreezableProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreezableProxy")
            .field("addr", &self.addr)
            .field("frozen", &*self.frozen.borrow())
            .finish()
    }
}

/// The `host:port` of a `postgres://user@host:port/db` URL (port 5432 when absent).
fn authority(url: &str) -> (usize, usize, String) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let host = &url[host_start..end];
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    (host_start, end, host)
}

impl FreezableProxy {
    /// Starts a proxy on `127.0.0.1:<free port>` forwarding to the server of `url`.
    ///
    /// # Panics
    /// When the upstream address cannot be resolved or no port can be bound: test set-up.
    #[allow(clippy::expect_used)]
    pub async fn start(url: &str) -> Self {
        let (_, _, upstream) = authority(url);
        let upstream = tokio::net::lookup_host(upstream.as_str())
            .await
            .expect("resolve the database server")
            .next()
            .expect("the database server has an address");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let (frozen, frozen_rx) = tokio::sync::watch::channel(false);
        let (cuts, cuts_rx) = tokio::sync::watch::channel(0u64);
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let accept = async {
                    while let Ok((client, _)) = listener.accept().await {
                        tokio::spawn(proxy_connection(
                            client,
                            upstream,
                            frozen_rx.clone(),
                            cuts_rx.clone(),
                        ));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        Self {
            addr,
            frozen,
            cuts,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The proxy's own address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        let (start, end, _) = authority(url);
        format!("{}{}{}", &url[..start], self.addr, &url[end..])
    }

    /// Stops forwarding bytes on every connection, present and future (they stay open).
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Forwards bytes again, including what arrived while frozen.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// Closes every connection open now on both sides, as a server dropping them would.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forwards one client connection to `upstream` until either side closes, a cut, or the
/// proxy stops; while frozen, nothing is read or written.
async fn proxy_connection(
    client: tokio::net::TcpStream,
    upstream: std::net::SocketAddr,
    frozen: tokio::sync::watch::Receiver<bool>,
    mut cuts: tokio::sync::watch::Receiver<u64>,
) {
    cuts.mark_unchanged();
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, frozen.clone()) => {}
        () = pump(server_read, client_write, frozen) => {}
        _ = cuts.changed() => {}
    }
}

/// Copies bytes from `from` to `to`, waiting while `frozen` holds.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just before a freeze are held until the thaw too.
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
