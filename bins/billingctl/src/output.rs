//! What a command prints: text for people (aligned [`Table`]s, times with their age) or, with
//! `--json`, one JSON document on stdout. Errors go to stderr as text, or to stdout as
//! `{"error": {"code", "message"}}` with `--json`.
#![allow(clippy::print_stdout, reason = "printing is what this module is for")]

use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::process::ExitCode;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;

use crate::error::CtlError;
use crate::progress::Progress;

/// Where and how results are printed.
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// Text, or one JSON document when `json`.
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// True with `--json`.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Prints the result: `value` as JSON with `--json`, else the text `human` makes of it.
    pub(crate) fn print<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> Result<(), CtlError> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            let text = human(value);
            println!("{}", text.trim_end());
        }
        Ok(())
    }

    /// Prints one line of text as work goes on (nothing with `--json`, whose document comes
    /// at the end).
    pub(crate) fn line(&self, text: impl fmt::Display) {
        if !self.json {
            println!("{text}");
        }
    }

    /// A progress bar on stderr for `len` steps (a counter when `len` is unknown), hidden with
    /// `--json` or when stderr is not a terminal.
    pub(crate) fn progress(&self, len: Option<u64>, message: &str) -> Progress {
        let visible = !self.json && std::io::stderr().is_terminal();
        Progress::new(visible, len, message)
    }

    /// Reports `error` and returns its exit code.
    pub(crate) fn fail(&self, error: &CtlError) -> ExitCode {
        if self.json {
            let mut document = json!({"error": {"code": error.code(), "message": error.message()}});
            if let Some(details) = error.details() {
                document["error"]["details"] = details;
            }
            println!("{document:#}");
        } else {
            eprintln!("error: {}", error.message());
        }
        error.exit_code()
    }
}

/// Rows under headers, each column as wide as its widest cell, two spaces apart.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these headers.
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per header).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([self.headers[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let headers = self.headers.iter().map(|h| (*h).to_owned());
        for row in std::iter::once(headers.collect::<Vec<_>>()).chain(self.rows.iter().cloned()) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `2026-12-06 14:03:11 UTC (3h ago)`.
pub(crate) fn time_and_age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", at.format("%Y-%m-%d %H:%M:%S UTC"), age(at, now))
}

/// How long ago `at` was: `just now`, `42s ago`, `5m ago`, `3h ago`, `12d ago` (or `in …`).
pub(crate) fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = now - at;
    let (ahead, delta) = if delta < TimeDelta::zero() {
        (true, -delta)
    } else {
        (false, delta)
    };
    let text = if delta < TimeDelta::seconds(1) {
        return "just now".to_owned();
    } else if delta < TimeDelta::minutes(1) {
        format!("{}s", delta.num_seconds())
    } else if delta < TimeDelta::hours(1) {
        format!("{}m", delta.num_minutes())
    } else if delta < TimeDelta::days(2) {
        format!("{}h", delta.num_hours())
    } else {
        format!("{}d", delta.num_days())
    };
    if ahead {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// The first line of `text`, cut to `max` characters with `…`.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max && !text.contains('\n') {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_people_say_them() {
        let now = Utc::now();
        let cases = [
            (TimeDelta::zero(), "just now"),
            (TimeDelta::seconds(42), "42s ago"),
            (TimeDelta::minutes(5), "5m ago"),
            (TimeDelta::hours(30), "30h ago"),
            (TimeDelta::days(12), "12d ago"),
            (TimeDelta::hours(-3), "in 3h"),
        ];
        for (back, expected) in cases {
            assert_eq!(age(now - back, now), expected);
        }
    }

    #[test]
    fn a_table_aligns_its_columns_and_long_text_is_cut() {
        let mut table = Table::new(&["ID", "STATUS", "NOTE"]);
        table.row(vec!["evt_1".into(), "failed".into(), "x".into()]);
        table.row(vec!["evt_123456".into(), "ok".into(), String::new()]);
        assert_eq!(
            table.to_string(),
            "ID          STATUS  NOTE\nevt_1       failed  x\nevt_123456  ok\n"
        );
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("ab\ncd", 10), "ab…");
        assert_eq!(shorten("abc", 3), "abc");
    }
}
