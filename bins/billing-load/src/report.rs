//! The report: a Markdown table for people (it pastes into `docs/benchmarks.md`), or JSON for
//! scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::check::Findings;
use crate::pgbench::PgbenchRun;

/// Differences shown per kind in the table report (the JSON report has them all).
const SHOWN: usize = 10;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// The webhook endpoint.
    pub(crate) url: String,
    /// How the streams were made.
    pub(crate) stream: StreamSettings,
    /// The machine at the start.
    pub(crate) machine: Machine,
    /// One entry per concurrency level, in the order run.
    pub(crate) levels: Vec<Level>,
    /// The server's peak resident set over its whole life (`VmHWM`) after the run, MiB.
    pub(crate) server_vmhwm_mib: Option<f64>,
    /// The database check, when asked for.
    pub(crate) check: Option<Check>,
}

/// How the streams were made.
#[derive(Debug, Serialize)]
pub(crate) struct StreamSettings {
    /// Unique events asked for per level.
    pub(crate) events: usize,
    /// Level 0's seed; level k uses seed + k.
    pub(crate) seed: u64,
    /// Percent of events delivered twice.
    pub(crate) duplicates_percent: u32,
    /// The reordering window.
    pub(crate) window: usize,
    /// Customers active at once in the stream's timeline.
    pub(crate) active_customers: u32,
    /// Mean body size, bytes.
    pub(crate) mean_body_bytes: usize,
    /// Seconds spent generating every level's stream (before any delivery).
    pub(crate) generation_seconds: f64,
}

/// The machine at the start.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    /// Online CPUs.
    pub(crate) cpus: usize,
    /// `/proc/loadavg`'s three load averages.
    pub(crate) load_average: String,
}

/// Latency quantiles, milliseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// The slowest.
    pub(crate) max: f64,
}

/// One concurrency level.
#[derive(Debug, Serialize)]
pub(crate) struct Level {
    /// Deliveries in flight.
    pub(crate) in_flight: usize,
    /// The stream's seed.
    pub(crate) seed: u64,
    /// Unique events of the stream.
    pub(crate) unique_events: usize,
    /// Deliveries sent (unique events plus duplicates).
    pub(crate) deliveries: usize,
    /// From the first request to the last answer.
    pub(crate) seconds: f64,
    /// Deliveries answered per second (errors included).
    pub(crate) deliveries_per_second: f64,
    /// From request to whole answer.
    pub(crate) latency_ms: Latency,
    /// Failed deliveries by class (`500`, `timeout`, …); empty when none.
    pub(crate) errors: BTreeMap<String, usize>,
    /// The server's CPU time per delivery, ms.
    pub(crate) server_cpu_ms_per_delivery: Option<f64>,
    /// The server's peak resident set during the level (sampled), MiB.
    pub(crate) server_peak_rss_mib: Option<f64>,
    /// Local Postgres' CPU time per delivery, ms.
    pub(crate) postgres_cpu_ms_per_delivery: Option<f64>,
    /// This tool's CPU time per delivery, ms.
    pub(crate) client_cpu_ms_per_delivery: Option<f64>,
    /// Share of the machine's CPU time that was busy during the level, percent.
    pub(crate) machine_busy_percent: Option<f64>,
    /// pgbench at the same concurrency, right after.
    pub(crate) pgbench: Option<PgbenchRun>,
    /// Our deliveries per second as a share of pgbench's transactions per second, percent.
    pub(crate) ours_vs_pgbench_percent: Option<f64>,
}

/// The database check's verdict.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    /// True when nothing is wrong.
    pub(crate) passed: bool,
    /// What was looked at, and every difference.
    #[serde(flatten)]
    pub(crate) findings: Findings,
}

impl Report {
    /// The human-readable report.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let s = &self.stream;
        let _ = writeln!(
            out,
            "{} — {} unique events per level (mean body {} B) + {} % duplicates, window {}, \
             {} customers active, seed {} (+level), {} CPUs, load average {} at start\n",
            self.url,
            s.events,
            s.mean_body_bytes,
            s.duplicates_percent,
            s.window,
            s.active_customers,
            s.seed,
            self.machine.cpus,
            self.machine.load_average
        );
        out.push_str(
            "| in flight | deliveries | deliveries/s | p50 ms | p90 ms | p99 ms | errors | \
             server CPU ms/delivery | server peak RSS MiB | Postgres CPU ms/delivery | \
             client CPU ms/delivery | machine busy | pgbench tps | ours/pgbench |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for l in &self.levels {
            let errors = if l.errors.is_empty() {
                "0".to_owned()
            } else {
                l.errors
                    .iter()
                    .map(|(class, n)| format!("{n}×{class}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
                l.in_flight,
                l.deliveries,
                l.deliveries_per_second,
                l.latency_ms.p50,
                l.latency_ms.p90,
                l.latency_ms.p99,
                errors,
                opt(l.server_cpu_ms_per_delivery, 3, ""),
                opt(l.server_peak_rss_mib, 1, ""),
                opt(l.postgres_cpu_ms_per_delivery, 3, ""),
                opt(l.client_cpu_ms_per_delivery, 3, ""),
                opt(l.machine_busy_percent, 0, " %"),
                l.pgbench
                    .map_or_else(|| "—".to_owned(), |p| format!("{:.0}", p.tps)),
                opt(l.ours_vs_pgbench_percent, 1, " %"),
            );
        }
        if let Some(hwm) = self.server_vmhwm_mib {
            let _ = writeln!(out, "\nserver VmHWM after the run: {hwm:.1} MiB");
        }
        if let Some(check) = &self.check {
            let checked: Vec<String> = check
                .findings
                .checked
                .iter()
                .map(|(what, n)| format!("{n} {what}"))
                .collect();
            let _ = writeln!(
                out,
                "\ndatabase check: {} ({})",
                if check.passed { "PASS" } else { "FAIL" },
                checked.join(", ")
            );
            for (kind, problems) in &check.findings.problems {
                let _ = writeln!(out, "  {kind}: {}", problems.len());
                for problem in problems.iter().take(SHOWN) {
                    let _ = writeln!(out, "    {problem}");
                }
                if problems.len() > SHOWN {
                    let _ = writeln!(out, "    … and {} more", problems.len() - SHOWN);
                }
            }
        }
        out
    }
}

fn opt(value: Option<f64>, decimals: usize, unit: &str) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}{unit}"))
}
