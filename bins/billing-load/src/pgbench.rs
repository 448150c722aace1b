//! Postgres' own commit rate beside ours: `pgbench -n -c C -j min(C, 2) -T S` with one 1 KB
//! `INSERT` per transaction (the cost of one commit per event), on a scratch database created
//! for the run and dropped afterwards.

use std::path::PathBuf;
use std::process::Command;

use tokio_postgres::NoTls;

use crate::error::Error;

/// The scratch table's script: one row of 1 024 random-looking characters per transaction,
/// below the TOAST threshold, so it is written as is.
const SCRIPT: &str =
    "INSERT INTO billing_load_pgbench (payload) VALUES (repeat(md5(random()::text), 32));\n";

/// A prepared scratch database.
pub(crate) struct Pgbench {
    admin_url: String,
    scratch: String,
    scratch_url: String,
    script: PathBuf,
}

/// One pgbench run's figures.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct PgbenchRun {
    /// Transactions per second (without the initial connection time).
    pub(crate) tps: f64,
    /// Mean latency, in milliseconds.
    pub(crate) latency_ms: f64,
}

impl Pgbench {
    /// Creates the scratch database on the Postgres of `url` (any database of it) with its
    /// table, and writes the script.
    pub(crate) async fn prepare(url: &str) -> Result<Self, Error> {
        let scratch = format!("billing_load_pgbench_{}", std::process::id());
        let scratch_url = with_database(url, &scratch)?;
        let admin = connect(url).await?;
        // Two statements: CREATE DATABASE cannot run in the implicit transaction of a batch.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
            .await
            .map_err(Error::database("drop an old scratch database"))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {scratch}"))
            .await
            .map_err(Error::database("create pgbench's scratch database"))?;
        let db = connect(&scratch_url).await?;
        db.batch_execute(
            "CREATE TABLE billing_load_pgbench (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)",
        )
        .await
        .map_err(Error::database("create pgbench's table"))?;
        let script = std::env::temp_dir().join(format!("{scratch}.sql"));
        std::fs::write(&script, SCRIPT).map_err(Error::io("write pgbench's script"))?;
        Ok(Self {
            admin_url: url.to_owned(),
            scratch,
            scratch_url,
            script,
        })
    }

    /// Runs pgbench with `clients` connections for `seconds`.
    pub(crate) fn run(&self, clients: usize, seconds: u64) -> Result<PgbenchRun, Error> {
        let clients = clients.max(1);
        let output = Command::new("pgbench")
            .args(["-n", "-c", &clients.to_string()])
            .args(["-j", &clients.min(2).to_string()])
            .args(["-T", &seconds.to_string()])
            .arg("-f")
            .arg(&self.script)
            .arg(&self.scratch_url)
            .output()
            .map_err(Error::io("start pgbench (is it installed?)"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(Error::Pgbench(format!(
                "exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        parse_output(&stdout)
            .ok_or_else(|| Error::Pgbench(format!("no tps in its output:\n{stdout}")))
    }

    /// Drops the scratch database and the script.
    pub(crate) async fn remove(self) -> Result<(), Error> {
        let _ = std::fs::remove_file(&self.script);
        let admin = connect(&self.admin_url).await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.scratch
            ))
            .await
            .map_err(Error::database("drop pgbench's scratch database"))
    }
}

/// The postmaster of the Postgres cluster at `url`, when it runs on this machine: the parent
/// of the backend a connection gets.
pub(crate) async fn postmaster_pid(url: &str) -> Result<u32, Error> {
    let client = connect(url).await?;
    let backend: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(Error::database("find the backend's pid"))?
        .get(0);
    u32::try_from(backend)
        .ok()
        .and_then(crate::procfs::parent_of)
        .filter(|&parent| parent > 1)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--postgres-cpu: backend {backend} is not a process of this machine"
            ))
        })
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(Error::database("connect"))?;
    tokio::spawn(async move {
        // Ends with the client; a broken connection shows in the client's next query.
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database name replaced by `database` (a `postgres://` or `postgresql://`
/// URL; query parameters are kept).
pub(crate) fn with_database(url: &str, database: &str) -> Result<String, Error> {
    let usage = || {
        Error::Usage(format!(
            "not a postgres:// URL: a database URL for {database}"
        ))
    };
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(usage)?;
    let scheme = &url[..url.len() - rest.len()];
    let (before_query, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    let mut out = format!("{scheme}{authority}/{database}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// The `tps = …` and `latency average = … ms` of pgbench's report.
fn parse_output(stdout: &str) -> Option<PgbenchRun> {
    let number_after = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    };
    Some(PgbenchRun {
        tps: number_after("tps = ")?,
        latency_ms: number_after("latency average = ").unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/billing",
                "postgres://postgres@127.0.0.1:5432/scratch",
            ),
            (
                "postgresql://u:p@db/billing?sslmode=disable",
                "postgresql://u:p@db/scratch?sslmode=disable",
            ),
            ("postgres://127.0.0.1", "postgres://127.0.0.1/scratch"),
        ];
        for (url, want) in cases {
            assert_eq!(with_database(url, "scratch").unwrap(), want);
        }
        assert!(with_database("mysql://x/y", "scratch").is_err());
    }

    #[test]
    fn reads_pgbench_output() {
        let out = "pgbench (15.20)\ntransaction type: x.sql\nnumber of clients: 16\n\
                   latency average = 1.577 ms\ninitial connection time = 12.3 ms\n\
                   tps = 10149.512345 (without initial connection time)\n";
        let run = parse_output(out).unwrap();
        assert!((run.tps - 10_149.512_345).abs() < 1e-6);
        assert!((run.latency_ms - 1.577).abs() < 1e-9);
        assert!(parse_output("nothing").is_none());
    }
}
