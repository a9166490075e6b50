//! The one way library code talks to people while it works: progress lines, warnings and progress bars.
//!
//! The CLI owns the reporter (it knows `--quiet` and whether stderr is a terminal) and hands it down;
//! library code never prints on its own. Results go to stdout from the CLI (as text or `--json`); everything
//! a reporter writes goes to stderr, so `--json` output stays machine-readable.

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reporter {
    quiet: bool,
    bars: bool,
}

impl Reporter {
    /// `quiet` drops progress lines (warnings stay); `bars` draws progress bars (for a terminal).
    pub fn new(quiet: bool, bars: bool) -> Reporter {
        Reporter { quiet, bars: bars && !quiet }
    }

    /// No progress lines or bars, warnings only: tests and library callers that print for themselves.
    pub fn silent() -> Reporter {
        Reporter { quiet: true, bars: false }
    }

    /// A progress line ("extract … train: 10,000 images in 31.0 s").
    pub fn info(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// Something the user must see even with `--quiet`.
    pub fn warn(&self, message: impl std::fmt::Display) {
        eprintln!("warning: {message}");
    }

    /// A progress bar of `len` steps, hidden unless bars are on.
    pub fn bar(&self, len: u64, message: String) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        bar
    }
}
