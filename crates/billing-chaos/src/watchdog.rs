//! Clean-up that survives the test process: a detached shell waits for this process to end
//! (however it ends, `kill -9` or a nextest timeout included) and then runs a clean-up script.
//! Dropping the [`Watchdog`] normally stops the shell, so the script runs only when the test
//! process could not clean up itself.

use std::process::{Child, Command, Stdio};

use crate::error::{Result, io};

/// A detached shell that runs a script once this process is gone.
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts the shell. `script` runs with `sh` after this process has exited; `$WATCHED`
    /// holds the test process id.
    pub fn after_exit(script: &str) -> Result<Self> {
        let me = std::process::id();
        let body =
            format!("WATCHED={me}; while kill -0 $WATCHED 2>/dev/null; do sleep 1; done; {script}");
        let child = Command::new("setsid")
            .args(["sh", "-c", &body])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("start the clean-up watchdog (setsid sh)"))?;
        Ok(Self { child })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Our own child, by its id: the clean-up already happened in-process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
