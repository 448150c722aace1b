//! What Linux's `/proc` says about the server, Postgres, this process and the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`, 100 when unknown).
pub(crate) fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// The fields of `/proc/<who>/stat` after the command name, and the command name.
fn stat(who: &str) -> Option<(String, Vec<u64>)> {
    let text = std::fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // From the parent pid (field 4) on; numbers only where they are numbers.
    let fields = text
        .get(close + 1..)?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    Some((comm, fields))
}

/// User + system CPU ticks of process `who` (a pid or `self`), its waited-for children's
/// included when `children`.
fn cpu_of(who: &str, children: bool) -> Option<(String, u64)> {
    let (comm, fields) = stat(who)?;
    // utime, stime, cutime, cstime are fields 14–17; `fields` starts at field 4.
    let own = fields.get(10)? + fields.get(11)?;
    let waited = if children {
        fields.get(12)? + fields.get(13)?
    } else {
        0
    };
    Some((comm, own + waited))
}

/// CPU ticks process `pid` has used.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    cpu_of(&pid.to_string(), false).map(|(_, ticks)| ticks)
}

/// CPU ticks this process has used.
pub(crate) fn own_cpu_ticks() -> Option<u64> {
    cpu_of("self", false).map(|(_, ticks)| ticks)
}

/// CPU ticks of one Postgres cluster: its postmaster and every child process (backends,
/// background workers), each with the children it waited for, and the postmaster's waited-for
/// children, so backends that exited during the interval still count.
pub(crate) fn postgres_cpu_ticks(postmaster: u32) -> Option<u64> {
    let (_, own) = cpu_of(&postmaster.to_string(), true)?;
    let entries = std::fs::read_dir("/proc").ok()?;
    let children: u64 = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| stat(&pid))
        .filter(|(_, fields)| fields.first() == Some(&u64::from(postmaster)))
        .filter_map(|(_, fields)| {
            Some(fields.get(10)? + fields.get(11)? + fields.get(12)? + fields.get(13)?)
        })
        .sum();
    Some(own + children)
}

/// The parent of process `pid` (for a Postgres backend: its postmaster).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    let (_, fields) = stat(&pid.to_string())?;
    u32::try_from(*fields.first()?).ok()
}

/// The machine's busy and total CPU ticks since boot (`/proc/stat`, all CPUs; idle and
/// iowait are not busy).
pub(crate) fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((total - idle, total))
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub(crate) fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Samples a process's resident set every 50 ms until stopped, keeping the peak.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub(crate) fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(status_kib(pid, "VmRSS").unwrap_or(0)));
        let task = tokio::spawn({
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if let Some(rss) = status_kib(pid, "VmRSS") {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                }
            }
        });
        Self { stop, peak, task }
    }

    /// Stops sampling; the peak resident set seen, in KiB.
    pub(crate) async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(own_cpu_ticks().is_some());
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS").is_some_and(|kib| kib > 0));
        assert!(status_kib(pid, "VmHWM").is_some_and(|kib| kib > 0));
        let (busy, total) = machine_ticks().unwrap();
        assert!(busy <= total && total > 0);
        assert!(clock_ticks() > 0);
        // This process as a "postmaster": its own ticks and its children's, at least.
        assert!(postgres_cpu_ticks(pid).is_some());
        assert!(parent_of(pid).is_some_and(|parent| parent != pid));
    }
}
