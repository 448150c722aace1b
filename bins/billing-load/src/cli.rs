//! The command line.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;

/// Replays a realistic signed Stripe webhook stream against a webhook endpoint at fixed
/// concurrency levels and reports throughput, latency, errors, and (optionally) the server's
/// CPU and memory, the final database state, and pgbench's commit rate beside ours.
///
/// Every level replays a fresh stream: level k (from 0) is the stream of seed `--seed` + k,
/// so its event, customer and subscription ids are new to the server and each level is a
/// load on new objects, not a replay of duplicates.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub(crate) struct Args {
    /// The webhook endpoint, e.g. `http://127.0.0.1:8080/webhooks/stripe` (plain HTTP).
    #[arg(long)]
    pub(crate) url: String,
    /// The endpoint's signing secret (`whsec_…`); every delivery is signed with it at send
    /// time, as Stripe does.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub(crate) secret: Secret,
    /// Unique events per level, at least (whole customer journeys are generated until there
    /// are this many).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) events: usize,
    /// The seed of level 0's stream (decimal or `0x…`); level k uses seed + k.
    #[arg(long, default_value = "1", value_parser = parse_seed)]
    pub(crate) seed: u64,
    /// Percent of the events delivered a second time (exact re-deliveries).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub(crate) duplicates: u32,
    /// How far a delivery may move from its place in time order (bounded reordering).
    #[arg(long, default_value_t = 32)]
    pub(crate) window: usize,
    /// About how many customers' journeys run at once in the stream's timeline: how many
    /// distinct customers a burst of concurrent deliveries touches.
    #[arg(long, default_value_t = 64)]
    pub(crate) active_customers: u32,
    /// Deliveries in flight, one level per value, in this order.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub(crate) concurrency: Vec<usize>,
    /// The server's process id: its CPU time per delivery (`/proc/PID/stat`) and peak RSS
    /// (`VmRSS` sampled every 50 ms, and `VmHWM`) are reported.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Also report the CPU time per delivery of the local Postgres cluster that serves
    /// `--database-url` (or `--pgbench-url`): its postmaster and all its processes, exited
    /// backends included. Other clients of the same cluster count too.
    #[arg(long)]
    pub(crate) postgres_cpu: bool,
    /// The billing server's database: after the run, check that every delivered event is
    /// stored once and done, every subscription equals its newest snapshot, credits were
    /// granted exactly once, and payments and refunds are at their totals. Exit 1 on FAIL.
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    /// Run `pgbench` (one 1 KB INSERT per transaction) after each level at the same
    /// concurrency, on a scratch database created on `--pgbench-url` (default: the server of
    /// `--database-url`) and dropped afterwards, and report ours as a share of its rate.
    #[arg(long)]
    pub(crate) pgbench: bool,
    /// Where pgbench's scratch database is created (any database URL of that Postgres).
    #[arg(long)]
    pub(crate) pgbench_url: Option<String>,
    /// How long each pgbench run lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) pgbench_seconds: u64,
    /// The plans file the server runs with, for the credits each paid invoice grants
    /// (default: the workspace's example `plans.toml`, whose prices the stream bills).
    #[arg(long)]
    pub(crate) plans: Option<PathBuf>,
    /// How long one delivery may take before it counts as a timeout error, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub(crate) timeout_ms: u64,
    /// Threads of the client's runtime (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    pub(crate) client_threads: usize,
    /// Print the report as JSON on stdout instead of the table (progress still goes to
    /// stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub(crate) json_file: Option<PathBuf>,
}

/// The signing secret: never shown by `Debug` or `Display`.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// The secret's text, for signing.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            Err("the signing secret is empty".to_owned())
        } else {
            Ok(Self(s.to_owned()))
        }
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let digits = s.replace('_', "");
    match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}
