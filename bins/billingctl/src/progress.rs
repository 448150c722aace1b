//! Progress of long work on stderr (indicatif): a bar when the number of steps is known, a
//! counter when it is not. Hidden with `--json` and when stderr is not a terminal, so scripts
//! and logs never see it; the commands report through it the same way either way.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// One piece of long work's progress.
pub(crate) struct Progress(ProgressBar);

impl Progress {
    /// A bar of `len` steps (a spinner counting them when `None`) saying `message`; drawn
    /// only when `visible`.
    pub(crate) fn new(visible: bool, len: Option<u64>, message: &str) -> Self {
        if !visible {
            return Self(ProgressBar::hidden());
        }
        let bar = match len {
            Some(len) => ProgressBar::new(len).with_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg}: {pos} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(bar)
    }

    /// `n` more steps done.
    pub(crate) fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    /// Removes the bar (the command prints its result next).
    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}
