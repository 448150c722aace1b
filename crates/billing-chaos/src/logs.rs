//! Searching server logs, which are tens of megabytes at `RUST_LOG=trace`: with GNU grep,
//! which is far faster than a search compiled into a debug-build test.

use std::path::Path;

use crate::error::{ChaosError, Result, io};

/// The distinct strings of the pattern file `patterns` (one per line) occurring in `file`.
pub fn grep_fixed(patterns: &Path, file: &Path) -> Result<Vec<String>> {
    let output = std::process::Command::new("grep")
        .args(["-F", "-o", "-a", "-f"])
        .arg(patterns)
        .arg(file)
        .output()
        .map_err(io("run grep"))?;
    match output.status.code() {
        Some(0 | 1) => {
            let mut matches: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            matches.sort();
            matches.dedup();
            Ok(matches)
        }
        _ => Err(ChaosError::Command {
            command: format!("grep -F -f … {}", file.display()),
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
    }
}

/// How many lines of `file` contain `needle`.
pub fn count_lines_with(file: &Path, needle: &str) -> Result<usize> {
    let output = std::process::Command::new("grep")
        .args(["-F", "-c", "-a", "-e", needle])
        .arg(file)
        .output()
        .map_err(io("run grep"))?;
    match output.status.code() {
        Some(0 | 1) => Ok(String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0)),
        _ => Err(ChaosError::Command {
            command: format!("grep -c {needle:?} {}", file.display()),
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
    }
}

/// The lines of `file` containing `needle`.
pub fn lines_with(file: &Path, needle: &str) -> Result<Vec<String>> {
    let output = std::process::Command::new("grep")
        .args(["-F", "-a", "-e", needle])
        .arg(file)
        .output()
        .map_err(io("run grep"))?;
    match output.status.code() {
        Some(0 | 1) => Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()),
        _ => Err(ChaosError::Command {
            command: format!("grep {needle:?} {}", file.display()),
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
    }
}
