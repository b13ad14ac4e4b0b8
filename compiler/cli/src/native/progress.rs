//! Build progress: cargo's own count of units ("crate n of m"), read from its progress line.
//! Cargo is run with `CARGO_TERM_PROGRESS_WHEN=always`, so it writes
//! `    Building [===>   ] 120/191: rdkafka-sys(build), serde` to the piped stderr, each
//! redraw ended by `\r` and its status lines (`   Compiling serde v1.0.0`) by `\n`. On a
//! terminal the count drives a spinner; otherwise a plain line every minute tells a CI log or a
//! pipe that the build is alive, so a warm build under a minute prints nothing extra.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cargo's progress line width; wide enough for the count and the first unit's name.
pub const CARGO_PROGRESS_WIDTH: u32 = 120;

/// How often a build that does not run on a terminal says it is alive.
const PLAIN_INTERVAL: Duration = Duration::from_secs(60);

/// One redraw of cargo's progress line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CargoProgress {
    /// Units finished.
    pub done: usize,
    /// Units in the build (crates, build scripts and their runs).
    pub total: usize,
    /// The first unit cargo lists as building, as it names it (`rdkafka-sys(build)`), if any.
    pub current: Option<String>,
}

impl CargoProgress {
    /// "crate 121 of 191 (rdkafka-sys(build))": the unit being built, counted from 1.
    pub fn describe(&self) -> String {
        let n = (self.done + 1).min(self.total);
        match &self.current {
            Some(current) => format!("crate {n} of {} ({current})", self.total),
            None => format!("crate {n} of {}", self.total),
        }
    }
}

/// Parses one segment of cargo's stderr (split at `\r` and `\n`) if it is a progress redraw:
/// `Building [<bar>] <done>/<total>` optionally followed by `: <unit>, <unit>, ...`.
pub fn parse_cargo_progress(segment: &str) -> Option<CargoProgress> {
    let rest = segment.trim_start().strip_prefix("Building [")?;
    let (_bar, rest) = rest.split_once(']')?;
    let rest = rest.trim_start();
    let (count, units) = match rest.split_once(':') {
        Some((count, units)) => (count, Some(units)),
        None => (rest.trim_end(), None),
    };
    let (done, total) = count.split_once('/')?;
    let (done, total) = (done.trim().parse().ok()?, total.trim().parse().ok()?);
    let current = units
        .and_then(|units| units.split(',').next())
        .map(|unit| unit.trim().trim_end_matches("...").trim().to_string())
        .filter(|unit| !unit.is_empty());
    Some(CargoProgress { done, total, current })
}

/// Reads cargo's stderr to the end: progress redraws go to `on_progress`, every other
/// non-empty segment is returned (status lines and errors, for the failure summary).
pub fn read_cargo_stderr(stderr: impl BufRead, mut on_progress: impl FnMut(CargoProgress)) -> Vec<String> {
    let mut lines = Vec::new();
    for segment in stderr.split(b'\n').map_while(Result::ok) {
        for part in segment.split(|&byte| byte == b'\r') {
            let text = String::from_utf8_lossy(part);
            // Cargo erases a progress line before a status line with `ESC [ K`.
            let text = text.replace("\u{1b}[K", "");
            if let Some(progress) = parse_cargo_progress(&text) {
                on_progress(progress);
            } else if !text.trim().is_empty() {
                lines.push(text.trim_end().to_string());
            }
        }
    }
    lines
}

/// How a build shows that it is alive: a spinner with the count on a terminal, a plain line
/// about once a minute elsewhere, nothing when quiet.
pub struct Reporter {
    latest: Arc<Mutex<Option<CargoProgress>>>,
    bar: Option<ProgressBar>,
    /// Stops the thread that prints the plain lines (dropping the sender stops it too).
    stop: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Reporter {
    pub fn start(name: &str, quiet: bool, terminal: bool) -> Reporter {
        let latest = Arc::new(Mutex::new(None));
        if quiet {
            return Reporter { latest, bar: None, stop: None };
        }
        if terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>3} building `{prefix}`: {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(name.to_string());
            bar.set_message("starting cargo");
            bar.enable_steady_tick(Duration::from_millis(120));
            return Reporter { latest, bar: Some(bar), stop: None };
        }
        eprintln!("building `{name}` ...");
        let (stop_sender, stop_receiver) = mpsc::channel::<()>();
        let name = name.to_string();
        let shared = Arc::clone(&latest);
        let started = Instant::now();
        // Wakes once a minute until `finish` sends (or the reporter is dropped).
        let ticker = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stop_receiver.recv_timeout(PLAIN_INTERVAL) {
                let progress = shared.lock().map(|latest| latest.clone()).unwrap_or(None);
                eprintln!("{}", plain_line(&name, started.elapsed(), progress.as_ref()));
                let _ = std::io::stderr().flush();
            }
        });
        Reporter { latest, bar: None, stop: Some((stop_sender, ticker)) }
    }

    /// A callback for `read_cargo_stderr`, to move to the thread that reads cargo's stderr.
    pub fn progress_sink(&self) -> impl FnMut(CargoProgress) + Send + 'static {
        let latest = Arc::clone(&self.latest);
        let bar = self.bar.clone();
        move |progress: CargoProgress| {
            if let Some(bar) = &bar {
                bar.set_message(progress.describe());
            }
            if let Ok(mut latest) = latest.lock() {
                *latest = Some(progress);
            }
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if let Some((stop, ticker)) = self.stop {
            let _ = stop.send(());
            let _ = ticker.join();
        }
    }
}

/// "building `welcome` ... 2m 00s, crate 57 of 191 (rocksdb)".
pub fn plain_line(name: &str, elapsed: Duration, progress: Option<&CargoProgress>) -> String {
    let seconds = elapsed.as_secs();
    let elapsed = format!("{}m {:02}s", seconds / 60, seconds % 60);
    match progress {
        Some(progress) => format!("building `{name}` ... {elapsed}, {}", progress.describe()),
        None => format!("building `{name}` ... {elapsed}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_progress_redraws() {
        let progress = parse_cargo_progress(
            "    Building [=======>                   ] 17/56: libc, ar_archive_writer                         ",
        );
        assert_eq!(progress, Some(CargoProgress { done: 17, total: 56, current: Some("libc".to_string()) }));
        let progress = parse_cargo_progress("    Building [==>    ] 7/56: proc-macro2(build), object");
        assert_eq!(progress.expect("progress").current.as_deref(), Some("proc-macro2(build)"));
        // A list cut at the width ends in `...`; no list at all is fine too.
        let progress = parse_cargo_progress("    Building [>  ] 2/191: rdkafka-sys...");
        assert_eq!(progress.expect("progress").current.as_deref(), Some("rdkafka-sys"));
        assert_eq!(
            parse_cargo_progress("    Building [===] 191/191"),
            Some(CargoProgress { done: 191, total: 191, current: None })
        );
    }

    #[test]
    fn other_lines_are_not_progress() {
        for line in [
            "   Compiling serde v1.0.219",
            "    Finished `release` profile [optimized] target(s) in 1.70s",
            "error: failed to run custom build command for `rdkafka-sys v4.8.0`",
            "    Building [====] many/191: x",
            "Building",
            "",
        ] {
            assert_eq!(parse_cargo_progress(line), None, "{line}");
        }
    }

    #[test]
    fn stderr_splits_into_progress_and_lines() {
        let stderr = b"   Compiling memchr v2.8.3\n    Building [      ] 0/56: memchr     \r   Compiling shlex v2.0.1\n    Building [>     ] 1/56: shlex, memchr  \r\x1b[K    Finished `dev` profile in 3s\n";
        let mut seen = Vec::new();
        let lines = read_cargo_stderr(&stderr[..], |progress| seen.push((progress.done, progress.total)));
        assert_eq!(seen, vec![(0, 56), (1, 56)]);
        assert_eq!(
            lines,
            vec!["   Compiling memchr v2.8.3", "   Compiling shlex v2.0.1", "    Finished `dev` profile in 3s"]
        );
    }

    #[test]
    fn describes_the_unit_being_built() {
        let progress = CargoProgress { done: 120, total: 191, current: Some("rocksdb".to_string()) };
        assert_eq!(progress.describe(), "crate 121 of 191 (rocksdb)");
        let done = CargoProgress { done: 191, total: 191, current: None };
        assert_eq!(done.describe(), "crate 191 of 191");
        assert_eq!(
            plain_line("welcome", Duration::from_secs(125), Some(&progress)),
            "building `welcome` ... 2m 05s, crate 121 of 191 (rocksdb)"
        );
        assert_eq!(plain_line("welcome", Duration::from_secs(60), None), "building `welcome` ... 1m 00s");
    }
}
