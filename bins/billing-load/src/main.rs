//! `billing-load`: puts a Stripe webhook endpoint under a realistic load and measures it.
//!
//! It generates, per concurrency level, a fresh seeded stream of unique Stripe events
//! (`billing-streamgen`: customers' journeys in two API versions, ~4 KB bodies) with exact
//! duplicates and bounded reordering, signs every delivery with the endpoint's secret, replays
//! the stream with a fixed number of deliveries in flight over keep-alive HTTP/1.1
//! connections, and reports deliveries per second, latency quantiles and errors by class;
//! with `--server-pid`, the server's CPU time per delivery and peak RSS. With
//! `--database-url` it then checks the billing server's tables against the generator's oracle
//! and exits 1 on FAIL; with `--pgbench` it runs pgbench beside each level for the ratio. It
//! takes any webhook URL, so another Stripe mirror can be put under the same load (the
//! database check reads the billing server's schema).

mod check;
mod cli;
mod error;
mod pgbench;
mod procfs;
mod replay;
mod report;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_domain::Catalog;
use billing_streamgen::{Expected, Options, Scenario};
use bytes::Bytes;
use clap::Parser;

use crate::cli::Args;
use crate::error::Error;
use crate::pgbench::Pgbench;
use crate::replay::{Target, quantile};
use crate::report::{Check, Latency, Level, Machine, Report, StreamSettings};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("billing-load: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("billing-load: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs every level, the check and the report; true when the check (if any) passed.
async fn run(args: Args) -> Result<bool, Error> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        return Err(Error::Usage(
            "--concurrency needs one or more positive numbers".to_owned(),
        ));
    }
    let pgbench_url = args.pgbench_url.clone().or(args.database_url.clone());
    if args.pgbench && pgbench_url.is_none() {
        return Err(Error::Usage(
            "--pgbench needs --pgbench-url or --database-url (where its scratch database goes)"
                .to_owned(),
        ));
    }
    let catalog = match &args.plans {
        None => billing_streamgen::example_catalog(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Plans(format!("{}: {e}", path.display())))?;
            Catalog::from_toml_str(&text).map_err(|e| Error::Plans(e.to_string()))?
        }
    };
    let postmaster = match (
        &args.postgres_cpu,
        args.database_url.as_ref().or(pgbench_url.as_ref()),
    ) {
        (false, _) => None,
        (true, Some(url)) => Some(pgbench::postmaster_pid(url).await?),
        (true, None) => {
            return Err(Error::Usage(
                "--postgres-cpu needs --database-url or --pgbench-url (whose cluster to measure)"
                    .to_owned(),
            ));
        }
    };
    let target = Target::resolve(&args.url).await?;
    let machine = Machine {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    };

    let started = Instant::now();
    let mut scenarios = Vec::with_capacity(args.concurrency.len());
    let mut expectations: Vec<Expected> = Vec::with_capacity(args.concurrency.len());
    for k in 0..args.concurrency.len() {
        let seed = args.seed.wrapping_add(k as u64);
        eprintln!(
            "generating level {}'s stream (seed {seed}, {} events)…",
            k + 1,
            args.events
        );
        let scenario = Scenario::generate(
            seed,
            &Options {
                events: args.events,
                window: Some(args.window),
                duplicates_percent: args.duplicates,
                active_customers: Some(args.active_customers),
            },
        )?;
        expectations.push(billing_streamgen::expected(&scenario.stream, &catalog)?);
        scenarios.push(scenario);
    }
    let generation_seconds = started.elapsed().as_secs_f64();
    let (bytes, count) = scenarios
        .iter()
        .flat_map(|s| &s.stream.events)
        .fold((0, 0), |(b, n), e| (b + e.body.len(), n + 1));

    let pgbench = match (&pgbench_url, args.pgbench) {
        (Some(url), true) => Some(Pgbench::prepare(url).await?),
        _ => None,
    };
    let measured = measure(&args, &target, &scenarios, pgbench.as_ref(), postmaster).await;
    if let Some(pgbench) = pgbench {
        pgbench.remove().await?;
    }
    let (levels, outcomes) = measured?;

    let check = match &args.database_url {
        None => None,
        Some(url) => {
            eprintln!("checking the database…");
            let delivered: Vec<check::Delivered<'_>> = scenarios
                .iter()
                .zip(&expectations)
                .zip(&outcomes)
                .map(|((scenario, expected), outcomes)| check::Delivered {
                    scenario,
                    expected,
                    outcomes,
                })
                .collect();
            let findings = check::check(url, &delivered).await?;
            Some(Check {
                passed: findings.passed(),
                findings,
            })
        }
    };
    let report = Report {
        url: args.url.clone(),
        stream: StreamSettings {
            events: args.events,
            seed: args.seed,
            duplicates_percent: args.duplicates,
            window: args.window,
            active_customers: args.active_customers,
            mean_body_bytes: bytes / count.max(1),
            generation_seconds,
        },
        machine,
        levels,
        server_vmhwm_mib: args
            .server_pid
            .and_then(|pid| procfs::status_kib(pid, "VmHWM"))
            .map(mib),
        check,
    };
    print_report(&report, args.json);
    if let Some(path) = &args.json_file {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Io {
            what: "write the JSON report",
            source: e.into(),
        })?;
        std::fs::write(path, text).map_err(Error::io("write the JSON report"))?;
    }
    Ok(report.check.as_ref().is_none_or(|c| c.passed))
}

/// Replays every level (and pgbench after each); the levels' figures and outcomes.
async fn measure(
    args: &Args,
    target: &Target,
    scenarios: &[Scenario],
    pgbench: Option<&Pgbench>,
    postmaster: Option<u32>,
) -> Result<(Vec<Level>, Vec<Vec<replay::Outcome>>), Error> {
    let ticks = procfs::clock_ticks();
    let ms_per = |ticks_used: Option<u64>, deliveries: usize| {
        ticks_used.map(|t| t as f64 * 1_000.0 / ticks as f64 / deliveries.max(1) as f64)
    };
    let mut levels = Vec::new();
    let mut all_outcomes = Vec::new();
    for (scenario, &in_flight) in scenarios.iter().zip(&args.concurrency) {
        let bodies: Vec<Bytes> = scenario
            .stream
            .events
            .iter()
            .map(|e| Bytes::from(e.body.clone()))
            .collect();
        let deliveries: Arc<Vec<Bytes>> =
            Arc::new(scenario.order.iter().map(|&i| bodies[i].clone()).collect());
        let n = deliveries.len();
        eprintln!(
            "level: {in_flight} in flight, {n} deliveries of {} events…",
            scenario.stream.events.len()
        );
        let server_before = args.server_pid.and_then(procfs::cpu_ticks);
        let postgres_before = postmaster.and_then(procfs::postgres_cpu_ticks);
        let own_before = procfs::own_cpu_ticks();
        let machine_before = procfs::machine_ticks();
        let sampler = args.server_pid.map(procfs::RssSampler::start);

        let replayed = replay::replay(
            target,
            args.secret.expose(),
            deliveries,
            in_flight,
            Duration::from_millis(args.timeout_ms),
        )
        .await;

        let peak_rss = match sampler {
            Some(sampler) => Some(sampler.finish().await),
            None => None,
        };
        let delta = |before: Option<u64>, after: Option<u64>| {
            before.zip(after).map(|(b, a)| a.saturating_sub(b))
        };
        let server_cpu = delta(server_before, args.server_pid.and_then(procfs::cpu_ticks));
        let postgres_cpu = delta(
            postgres_before,
            postmaster.and_then(procfs::postgres_cpu_ticks),
        );
        let own_cpu = delta(own_before, procfs::own_cpu_ticks());
        let machine_busy = machine_before.zip(procfs::machine_ticks()).map(
            |((busy0, total0), (busy1, total1))| {
                100.0 * (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64
            },
        );

        let mut latencies: Vec<u64> = replayed.outcomes.iter().map(|o| o.latency_us).collect();
        latencies.sort_unstable();
        let ms = |us: u64| us as f64 / 1_000.0;
        let mut errors: BTreeMap<String, usize> = BTreeMap::new();
        for outcome in &replayed.outcomes {
            if let Some(class) = outcome.answer.error_class() {
                *errors.entry(class).or_default() += 1;
            }
        }
        let seconds = replayed.elapsed.as_secs_f64();
        let rate = n as f64 / seconds.max(f64::MIN_POSITIVE);
        let pgbench_run = match pgbench {
            Some(pgbench) => {
                eprintln!("pgbench: {in_flight} clients, {} s…", args.pgbench_seconds);
                Some(pgbench.run(in_flight, args.pgbench_seconds)?)
            }
            None => None,
        };
        levels.push(Level {
            in_flight,
            seed: scenario.seed,
            unique_events: scenario.stream.events.len(),
            deliveries: n,
            seconds,
            deliveries_per_second: rate,
            latency_ms: Latency {
                p50: ms(quantile(&latencies, 0.50)),
                p90: ms(quantile(&latencies, 0.90)),
                p99: ms(quantile(&latencies, 0.99)),
                max: ms(latencies.last().copied().unwrap_or(0)),
            },
            errors,
            server_cpu_ms_per_delivery: ms_per(server_cpu, n),
            server_peak_rss_mib: peak_rss.map(mib),
            postgres_cpu_ms_per_delivery: ms_per(postgres_cpu, n),
            client_cpu_ms_per_delivery: ms_per(own_cpu, n),
            machine_busy_percent: machine_busy,
            pgbench: pgbench_run,
            ours_vs_pgbench_percent: pgbench_run.map(|p| 100.0 * rate / p.tps),
        });
        all_outcomes.push(replayed.outcomes);
    }
    Ok((levels, all_outcomes))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1_024.0
}

#[allow(
    clippy::print_stdout,
    reason = "the report is the tool's output; progress goes to stderr"
)]
fn print_report(report: &Report, json: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("billing-load: cannot write the JSON report: {error}"),
        }
    } else {
        println!("{}", report.table());
    }
}
