//! What the person at the terminal or reading the CI log sees: step headings, echoed
//! commands, warnings and progress. Animated only on a terminal; plain lines otherwise;
//! colour only on a terminal and never with `NO_COLOR`. Every line passes the run's secret
//! scrubber on its way out.
//!
//! A line that cannot be written (the pipe to `tee` closed by the same Ctrl-C, the terminal
//! gone with SIGHUP) is dropped, never a panic: what the command was doing, a clean-up
//! above all, goes on. Hence no `println!`/`eprintln!` anywhere: they panic on EPIPE.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::run::interrupt::Interrupt;
use crate::run::secret::{Scrubber, Secret};

/// How often a progress line is printed when the output is not a terminal (a CI log).
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often a progress line is redrawn on a terminal.
const TTY_REDRAW_EVERY: Duration = Duration::from_millis(100);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// All our own messages go to stderr, like cargo's; children write where they write.
#[derive(Clone, Debug)]
pub struct Ui {
    tty: bool,
    color: bool,
    secrets: Scrubber,
}

impl Ui {
    /// `tty`: stderr is a terminal and `TERM` is not `dumb`; `no_color`: `NO_COLOR` is set
    /// to a non-empty value (https://no-color.org).
    pub fn new(tty: bool, no_color: bool) -> Ui {
        Ui { tty, color: tty && !no_color, secrets: Scrubber::default() }
    }

    pub fn from_env() -> Ui {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui::new(std::io::stderr().is_terminal() && !dumb, no_color)
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// From now on, `secret` is shown as `***` in every line this Ui (or a clone) prints.
    pub fn hide(&self, secret: &Secret) {
        self.secrets.add(secret);
    }

    /// `text` as it may be shown: every secret masked.
    pub fn scrub(&self, text: impl Display) -> String {
        self.secrets.scrub(&text.to_string())
    }

    fn paint(&self, style: &str, text: impl Display) -> String {
        let text = self.scrub(text);
        if self.color { format!("\x1b[{style}m{text}\x1b[0m") } else { text }
    }

    /// A pipeline step: `==> build the test image`.
    pub fn step(&self, text: impl Display) {
        err_line(format_args!("{} {}", self.paint("1;34", "==>"), self.paint("1", text)));
    }

    /// A command about to run, as it would be typed (secrets masked by the caller).
    pub fn echo(&self, command: impl Display) {
        err_line(format_args!("{}", self.paint("2", format!("$ {command}"))));
    }

    pub fn info(&self, text: impl Display) {
        err_line(format_args!("    {}", self.scrub(text)));
    }

    pub fn warn(&self, text: impl Display) {
        err_line(format_args!("{} {}", self.paint("1;33", "warning:"), self.scrub(text)));
    }

    /// The last line of a failed command: the whole error chain on one line.
    pub fn error(&self, err: &anyhow::Error) {
        let text = self.scrub(format_args!("{err:#}"));
        err_line(format_args!("{} {text}", self.paint("1;31", "error:")));
    }

    pub fn success(&self, text: impl Display) {
        err_line(format_args!("{} {}", self.paint("1;32", "ok:"), self.scrub(text)));
    }

    /// A line of the command's result on stdout (`status`, `versions list`, `--json`),
    /// scrubbed like every other.
    pub fn out(&self, text: impl Display) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", self.scrub(text));
    }

    /// Asks the person at the terminal (stdin must be one), and returns their answer. Ctrl-C
    /// while they think ends the wait at once: the answer is read beside the wait.
    pub fn ask(&self, question: impl Display, interrupt: &Interrupt) -> anyhow::Result<String> {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("no terminal to ask on (stdin is not one)");
        }
        err_text(format_args!("{} ", self.paint("1", question)));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut answer = String::new();
            let _ = tx.send(std::io::stdin().read_line(&mut answer).map(|_| answer));
        });
        loop {
            if interrupt.is_set() {
                err_line("");
                interrupt.check("the question (nothing was changed)")?;
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(answer) => return Ok(answer?.trim().to_owned()),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Progress of something measured in bytes (`total` when known).
    pub fn progress(&self, label: impl Into<String>, total: Option<u64>) -> Progress {
        Progress {
            ui: self.clone(),
            label: label.into(),
            total,
            done: 0,
            started: Instant::now(),
            last_drawn: Instant::now(),
            ticks: 0,
        }
    }
}

/// A byte counter that reports itself: redrawn in place on a terminal, one plain line every
/// few seconds in a log, and a final summary line either way.
pub struct Progress {
    ui: Ui,
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_drawn: Instant,
    ticks: usize,
}

impl Progress {
    pub fn add(&mut self, bytes: u64) {
        self.done += bytes;
        let every = if self.ui.tty { TTY_REDRAW_EVERY } else { PLAIN_PROGRESS_EVERY };
        if self.last_drawn.elapsed() >= every {
            self.last_drawn = Instant::now();
            self.ticks += 1;
            self.draw();
        }
    }

    fn describe(&self) -> String {
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        match self.total {
            Some(total) if total > 0 => {
                let percent = (self.done * 100 / total).min(99);
                format!(
                    "{}: {} of ~{} ({percent}%), {}/s",
                    self.label,
                    human_bytes(self.done),
                    human_bytes(total),
                    human_bytes(rate as u64)
                )
            }
            _ => format!(
                "{}: {}, {}/s",
                self.label,
                human_bytes(self.done),
                human_bytes(rate as u64)
            ),
        }
    }

    fn draw(&self) {
        if self.ui.tty {
            let spin = SPINNER[self.ticks % SPINNER.len()];
            err_text(format_args!("\r\x1b[2K    {spin} {}", self.ui.scrub(self.describe())));
        } else {
            err_line(format_args!("    {}", self.ui.scrub(self.describe())));
        }
    }

    /// Ends the line with what was done and how long it took.
    pub fn finish(self) {
        if self.ui.tty {
            err_text("\r\x1b[2K");
        }
        err_line(format_args!(
            "    {}: {} in {:.1}s",
            self.label,
            human_bytes(self.done),
            self.started.elapsed().as_secs_f64()
        ));
    }

    /// Clears a redrawn line without a summary (the step failed; its error says why).
    pub fn abandon(self) {
        if self.ui.tty {
            err_text("\r\x1b[2K");
        }
    }
}

/// One line to stderr; dropped when it cannot be written (see the module's header).
fn err_line(text: impl Display) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// Text without a newline (a prompt, a redrawn progress line), flushed; dropped when it
/// cannot be written.
fn err_text(text: impl Display) {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{text}");
    let _ = stderr.flush();
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// `text`, cut to `max` characters with `…` as the last: for fixed-width columns and
/// length limits.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(max.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_scrubbed() {
        let ui = Ui::new(true, false);
        ui.clone().hide(&Secret::new("hunter2"));
        assert_eq!(ui.paint("1", "pw hunter2"), "\x1b[1mpw ***\x1b[0m");
        assert_eq!(ui.scrub(format_args!("{}", "x hunter2 y")), "x *** y");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert_eq!(Ui::new(false, false).paint("1", "x"), "x");
        assert_eq!(Ui::new(true, true).paint("1", "x"), "x");
        assert_eq!(Ui::new(true, false).paint("1", "x"), "\x1b[1mx\x1b[0m");
    }

    #[test]
    fn bytes_read_like_a_person_writes_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1_429_352_448), "1.3 GiB");
    }
}
