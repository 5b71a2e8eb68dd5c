//! The one progress bar of long commands (`vigie backup`, `vigie storage migrate`,
//! `vigie import`): a line on stderr redrawn in place, and only on a terminal — a script, a
//! pipe or a log file gets the command's closing summary alone.

use std::io::{IsTerminal, Write};

const WIDTH: usize = 30;

pub struct Bar {
    label: String,
    shown: bool,
}

impl Bar {
    /// A bar for `label`; it draws nothing unless stderr is a terminal.
    pub fn new(label: impl Into<String>) -> Bar {
        Bar {
            label: label.into(),
            shown: std::io::stderr().is_terminal(),
        }
    }

    /// Redraws the bar at `done` of `total`, with `detail` after it.
    pub fn draw(&self, done: u64, total: u64, detail: &str) {
        if !self.shown {
            return;
        }
        let fraction = if total == 0 {
            1.0
        } else {
            (done as f64 / total as f64).min(1.0)
        };
        let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
        eprint!(
            "\r{} [{}{}] {:>5.1}%  {detail}\x1b[K",
            self.label,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            fraction * 100.0
        );
        let _ = std::io::stderr().flush();
    }

    /// Ends the bar's line, so what is printed next starts on its own.
    pub fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
