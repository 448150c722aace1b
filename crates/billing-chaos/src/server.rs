//! The real `billing-server` binary as a child process on a free 127.0.0.1 port: started with
//! an environment of our choosing (never the caller's), logged at `RUST_LOG=trace` to a file,
//! killed with SIGKILL, restarted on the same port, stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::cluster::{free_port, signal};
use crate::error::{ChaosError, Result, io};
use crate::paths::{target_dir, workspace_root};
use crate::secrets::Secrets;
use crate::watchdog::Watchdog;

/// The server binary: `BILLING_SERVER_BIN`, or `target/debug/billing-server` after
/// `cargo build -p billing-server` (once per test process; a no-op when it is up to date).
pub fn server_binary() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("BILLING_SERVER_BIN") {
                return Ok(PathBuf::from(path));
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let output = std::process::Command::new(cargo)
                .current_dir(workspace_root())
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "billing-server",
                    "--bin",
                    "billing-server",
                ])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("run cargo build -p billing-server: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "cargo build -p billing-server failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(target_dir().join("debug").join("billing-server"))
        })
        .clone()
        .map_err(ChaosError::Setup)
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// The secrets it is configured with.
    pub secrets: Secrets,
    /// Accept the old webhook secret too (`STRIPE_WEBHOOK_SECRET=new,old`).
    pub rotation: bool,
    /// `STRIPE_API_BASE`: a local fake; by default a closed local port, so no request can
    /// leave the machine.
    pub stripe_api_base: Option<String>,
    /// The file both stdout and stderr are appended to.
    pub log: PathBuf,
    /// More variables (`WEBHOOK_BODY_LIMIT`, `DATABASE_MAX_CONNECTIONS`, `LOG_FORMAT`…).
    pub extra_env: Vec<(String, String)>,
}

impl ServerSpec {
    /// A spec with JSON logs at trace level in `log`.
    pub fn new(database_url: String, secrets: Secrets, log: PathBuf) -> Self {
        Self {
            database_url,
            secrets,
            rotation: false,
            stripe_api_base: None,
            log,
            extra_env: Vec::new(),
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.extra_env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A server child process.
pub struct Server {
    spec: ServerSpec,
    addr: SocketAddr,
    stripe_base: String,
    child: Option<tokio::process::Child>,
    watchdog: Option<Watchdog>,
    starts: u32,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

/// The command line `billing-server <args>` with the spec's environment and nothing else.
fn command(spec: &ServerSpec, bind: &str, stripe_base: &str) -> Result<tokio::process::Command> {
    let binary = server_binary()?;
    let mut command = tokio::process::Command::new(binary);
    let webhook = if spec.rotation {
        format!("{},{}", spec.secrets.webhook, spec.secrets.old_webhook)
    } else {
        spec.secrets.webhook.clone()
    };
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .env("NO_COLOR", "1")
        .env("LOG_FORMAT", "json")
        .env("PLANS_FILE", workspace_root().join("plans.toml"))
        .env("BIND_ADDR", bind)
        .env("DATABASE_URL", &spec.database_url)
        .env("STRIPE_SECRET_KEY", &spec.secrets.stripe_key)
        .env("STRIPE_WEBHOOK_SECRET", webhook)
        .env("BILLING_API_KEYS", spec.secrets.api_keys.join(","))
        .env("STRIPE_API_BASE", stripe_base);
    for (name, value) in &spec.extra_env {
        command.env(name, value);
    }
    Ok(command)
}

fn log_handles(path: &Path) -> Result<(Stdio, Stdio)> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(format!("open {}", path.display())))
    };
    Ok((Stdio::from(open()?), Stdio::from(open()?)))
}

/// Runs `billing-server <args>` to completion with the spec's environment (e.g. `migrate`,
/// or a start that must fail); returns the exit code. Output is appended to the spec's log.
pub async fn run_once(spec: &ServerSpec, bind: &str, args: &[&str]) -> Result<Option<i32>> {
    let stripe_base = spec
        .stripe_api_base
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", free_port().unwrap_or(9)));
    let mut command = command(spec, bind, &stripe_base)?;
    let (out, err) = log_handles(&spec.log)?;
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let status = tokio::time::timeout(Duration::from_secs(60), command.status())
        .await
        .map_err(|_| ChaosError::Timeout(format!("billing-server {}", args.join(" "))))?
        .map_err(io("run billing-server"))?;
    Ok(status.code())
}

impl Server {
    /// Starts the server and waits until `/healthz` answers.
    pub async fn start(spec: ServerSpec) -> Result<Self> {
        let port = free_port()?;
        let stripe_base = spec
            .stripe_api_base
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", free_port().unwrap_or(9)));
        let mut server = Self {
            spec,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stripe_base,
            child: None,
            watchdog: None,
            starts: 0,
        };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<()> {
        let mut last_error = None;
        // A restart right after a kill may find the port still held for a moment: retry.
        for _ in 0..20 {
            let mut command = command(&self.spec, &self.addr.to_string(), &self.stripe_base)?;
            let (out, err) = log_handles(&self.spec.log)?;
            command
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true);
            let child = command.spawn().map_err(io("start billing-server"))?;
            let pid = child.id().unwrap_or(0);
            self.watchdog = Some(Watchdog::after_exit(&format!("kill -9 {pid} 2>/dev/null"))?);
            self.child = Some(child);
            self.starts += 1;
            match self.wait_healthy(Duration::from_secs(30)).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last_error = Some(e);
                    if let Some(mut child) = self.child.take() {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| ChaosError::Setup("server never started".to_owned())))
    }

    /// Waits until `/healthz` answers 200 (the process is up and listening).
    pub async fn wait_healthy(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let client = Client::new(self.addr, Duration::from_secs(2));
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(ChaosError::Setup(format!(
                    "billing-server exited with {status} at start (log: {})",
                    self.spec.log.display()
                )));
            }
            if client.get("/healthz", None).await.status() == Some(200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(ChaosError::Timeout(format!(
            "billing-server on {} not healthy (log: {})",
            self.addr,
            self.spec.log.display()
        )))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client of it with `timeout`.
    pub fn client(&self, timeout: Duration) -> Client {
        Client::new(self.addr, timeout)
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// How many times a process was started (1 + restarts).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    pub fn log(&self) -> &Path {
        &self.spec.log
    }

    /// True while the process is alive (it did not crash or exit).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `kill -9`: the process dies at once, mid-request and mid-transaction.
    pub async fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill().map_err(io("SIGKILL billing-server"))?;
            child.wait().await.map_err(io("reap billing-server"))?;
        }
        Ok(())
    }

    /// Starts the process again on the same port and waits until it is healthy.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9().await?;
        self.spawn().await
    }

    /// SIGTERM, then waits up to `grace` for a clean exit (SIGKILL after).
    pub async fn stop(&mut self, grace: Duration) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                signal("TERM", pid)?;
            }
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(ChaosError::Timeout(format!(
                    "billing-server did not stop within {grace:?} of SIGTERM"
                )));
            }
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
