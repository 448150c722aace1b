//! A private PostgreSQL cluster per scenario: `initdb` in a temporary folder, started on a free
//! 127.0.0.1 port with `track_commit_timestamp = on`, restarted, frozen (SIGSTOP on the
//! postmaster and every backend) and thawed on request, and always stopped and deleted at the
//! end — by `Drop`, or by a [`Watchdog`] when the test process dies. Never the shared server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{ChaosError, Result, io};
use crate::paths::unique_name;
use crate::watchdog::Watchdog;

/// Where the PostgreSQL binaries are looked for (then `PATH`); `CHAOS_PG_BIN` comes first.
const BIN_DIRS: &[&str] = &["/usr/lib/postgresql/15/bin", "/usr/local/bin"];

fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("CHAOS_PG_BIN")
        .map(|d| vec![PathBuf::from(d)])
        .unwrap_or_default();
    dirs.extend(BIN_DIRS.iter().map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// How to stop the cluster (`pg_ctl stop -m …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, checkpoint, exit.
    Fast,
    /// Kill every process at once; crash recovery at the next start.
    Immediate,
}

impl StopMode {
    fn as_str(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// The unprivileged account that runs Postgres when the tests run as root.
#[derive(Debug, Clone)]
struct Owner {
    name: String,
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `(uid, gid)` of `user` from /etc/passwd.
fn account(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("bind a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("read a free port"))?
        .port();
    Ok(port)
}

fn output_detail(output: &std::process::Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// A running private cluster.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    port: u16,
    owner: Option<Owner>,
    frozen: Vec<u32>,
    keep_log_in: Option<PathBuf>,
    _watchdog: Option<Watchdog>,
}

impl Cluster {
    /// Creates and starts a cluster in a new temporary folder. As root, Postgres runs as the
    /// `postgres` account (`CHAOS_PG_USER` overrides), since initdb refuses root.
    pub fn start() -> Result<Self> {
        let root = std::env::temp_dir().join(unique_name("billing-chaos-pg"));
        std::fs::create_dir_all(&root).map_err(io(format!("create {}", root.display())))?;
        let owner = if running_as_root() {
            let name = std::env::var("CHAOS_PG_USER").unwrap_or_else(|_| "postgres".to_owned());
            let (uid, gid) = account(&name).ok_or_else(|| {
                ChaosError::Setup(format!(
                    "running as root, and there is no {name:?} account to run Postgres as \
                     (initdb refuses root); create one or set CHAOS_PG_USER"
                ))
            })?;
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .map_err(io(format!("chown {} to {name}", root.display())))?;
            Some(Owner { name })
        } else {
            None
        };
        let port = free_port()?;
        let data = root.join("data");
        let mut cluster = Self {
            root,
            data,
            port,
            owner,
            frozen: Vec::new(),
            keep_log_in: None,
            _watchdog: None,
        };
        cluster._watchdog = Some(Watchdog::after_exit(&cluster.cleanup_script())?);
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let settings = format!(
            "\n# billing-chaos\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{root}'\ntrack_commit_timestamp = on\n\
             fsync = off\nfull_page_writes = off\nmax_connections = 120\n\
             shared_buffers = 32MB\nlog_min_messages = warning\n",
            root = cluster.root.display()
        );
        let conf = cluster.data.join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(io(format!("read {}", conf.display())))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(io(format!("write {}", conf.display())))?;
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    /// Copies the Postgres log into `dir` when the cluster is dropped.
    pub fn keep_log_in(&mut self, dir: &Path) {
        self.keep_log_in = Some(dir.to_path_buf());
    }

    /// The cluster's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `db` as the `postgres` superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The same URL with a password (ignored under trust auth), to check that the database
    /// URL never reaches a log.
    pub fn url_with_password(&self, db: &str, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    fn command(&self, bin: &str) -> Command {
        let path = pg_bin(bin);
        match &self.owner {
            Some(owner) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &owner.name, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, bin: &str, args: &[&str]) -> Result<String> {
        let output = self
            .command(bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io(format!("run {bin}")))?;
        if !output.status.success() {
            return Err(ChaosError::Command {
                command: format!("{bin} {}", args.join(" ")),
                detail: output_detail(&output),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let data = self.data.display().to_string();
        let log = self.log_file().display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        )
        .map(|_| ())
    }

    fn cleanup_script(&self) -> String {
        let data = self.data.display();
        let root = self.root.display();
        let pg_ctl = pg_bin("pg_ctl");
        let as_owner = match &self.owner {
            Some(o) => format!("runuser -u {} -- ", o.name),
            None => String::new(),
        };
        format!(
            "PM=$(head -n1 {data}/postmaster.pid 2>/dev/null); \
             if [ -n \"$PM\" ]; then kill -CONT $PM 2>/dev/null; \
             for c in $(ps -o pid= --ppid $PM); do kill -CONT $c 2>/dev/null; done; fi; \
             {as_owner}{pg_ctl} -D {data} -m immediate -w -t 20 stop >/dev/null 2>&1; \
             if [ -n \"$PM\" ]; then kill -9 $PM 2>/dev/null; fi; rm -rf {root}",
            pg_ctl = pg_ctl.display()
        )
    }

    /// Runs `sql` on `db` with psql and returns its unaligned, tuples-only output.
    pub async fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let port = self.port.to_string();
        let mut command = tokio::process::Command::new(pg_bin("psql"));
        command
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", db])
            .args(["-c", sql])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .map_err(|_| ChaosError::Timeout(format!("psql on {db}")))?
            .map_err(io("run psql"))?;
        if !output.status.success() {
            let head: String = sql.chars().take(120).collect();
            return Err(ChaosError::Command {
                command: format!("psql -d {db} -c {head:?}"),
                detail: output_detail(&output),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Creates an empty database.
    pub async fn create_database(&self, name: &str) -> Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .await
            .map(|_| ())
    }

    /// Stops the cluster (`pg_ctl stop -m mode`); clients see their connections drop.
    pub async fn stop(&self, mode: StopMode) -> Result<()> {
        let data = self.data.display().to_string();
        let mut command = tokio::process::Command::from(self.command("pg_ctl"));
        command.args(["-D", &data, "-m", mode.as_str(), "-w", "-t", "60", "stop"]);
        let output = command.output().await.map_err(io("run pg_ctl stop"))?;
        if !output.status.success() {
            return Err(ChaosError::Command {
                command: format!("pg_ctl stop -m {}", mode.as_str()),
                detail: output_detail(&output),
            });
        }
        Ok(())
    }

    /// Starts the stopped cluster again (crash recovery after an immediate stop).
    pub async fn start_again(&self) -> Result<()> {
        let data = self.data.display().to_string();
        let log = self.log_file().display().to_string();
        let mut command = tokio::process::Command::from(self.command("pg_ctl"));
        command.args(["-D", &data, "-l", &log, "-w", "-t", "60", "start"]);
        let output = command.output().await.map_err(io("run pg_ctl start"))?;
        if !output.status.success() {
            return Err(ChaosError::Command {
                command: "pg_ctl start".to_owned(),
                detail: output_detail(&output),
            });
        }
        Ok(())
    }

    /// The postmaster's process id.
    pub fn postmaster_pid(&self) -> Result<u32> {
        let file = self.data.join("postmaster.pid");
        let text =
            std::fs::read_to_string(&file).map_err(io(format!("read {}", file.display())))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| ChaosError::Setup(format!("no pid in {}", file.display())))
    }

    /// Freezes the cluster: SIGSTOP to the postmaster (so it forks nothing new), then to every
    /// child (backends, checkpointer, WAL writer…). Connections stay open and silent, like a
    /// database host that stopped answering. Returns how many processes were stopped.
    pub fn freeze(&mut self) -> Result<usize> {
        let postmaster = self.postmaster_pid()?;
        signal("STOP", postmaster)?;
        self.frozen.push(postmaster);
        for child in children_of(postmaster) {
            if signal("STOP", child).is_ok() {
                self.frozen.push(child);
            }
        }
        Ok(self.frozen.len())
    }

    /// Resumes every process [`freeze`](Self::freeze) stopped.
    pub fn thaw(&mut self) -> Result<()> {
        let mut first_error = None;
        for pid in self.frozen.drain(..).rev() {
            if let Err(e) = signal("CONT", pid) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.thaw();
        let data = self.data.display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        if let Some(dir) = &self.keep_log_in {
            let _ = std::fs::copy(self.log_file(), dir.join("postgres.log"));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Sends `SIGname` to one process (ours: a cluster process we started).
pub(crate) fn signal(name: &str, pid: u32) -> Result<()> {
    let output = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .output()
        .map_err(io("run kill"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ChaosError::Command {
            command: format!("kill -{name} {pid}"),
            detail: output_detail(&output),
        })
    }
}

/// The direct children of `parent`, from /proc.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // "pid (comm) state ppid …": comm may hold spaces, so split after ')'.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
