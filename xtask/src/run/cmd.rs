//! External commands as data: built first (so `--dry-run` and tests can print and compare
//! them), then run through duct without a shell. Secrets go through stdin or the
//! environment and are masked wherever a command is shown.
//!
//! Three ways to run one: [`Cmd::run`] streams its output (to the terminal, or where
//! [`Cmd::keep_stderr`] and [`Cmd::log_to`] say) and [`Cmd::run_quiet`] shows it only when
//! it fails, both echoing the command first; [`Cmd::read`] (and [`Cmd::read_output`], whatever
//! the exit) ask something and echo nothing: a query is not a step. `run::pipe` carries the
//! bytes of the commands whose data we stream ourselves.

use std::ffi::OsString;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use crate::run::Context;
use crate::run::interrupt::Interrupted;
use crate::run::secret::MASK;

/// How often a running child is checked for exit and the process for Ctrl-C.
const POLL: Duration = Duration::from_millis(25);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Plain(OsString),
    Secret(OsString),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Secret(Vec<u8>),
    File(PathBuf),
    /// Text we made, shown as what it is (`shown`) rather than in full.
    Text {
        shown: String,
        bytes: Vec<u8>,
    },
}

/// Where [`Cmd::run`] sends the command's output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Sink {
    /// The terminal's stdout and stderr: progress stays visible, as it would be typed.
    #[default]
    Terminal,
    /// stdout to the terminal, stderr kept for the error (`CommandFailed::stderr`).
    KeepStderr,
    /// Both appended to a log file.
    Log(PathBuf),
}

/// One external command: program, arguments, environment, stdin, working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Value)>,
    stdin: Option<Input>,
    dir: Option<PathBuf>,
    sink: Sink,
}

/// A command that ran and exited non-zero.
#[derive(Debug)]
pub struct CommandFailed {
    pub command: String,
    pub code: Option<i32>,
    /// The last lines the command wrote to stderr, when they were captured.
    pub stderr: String,
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "`{}` exited with status {code}", self.command)?,
            None => write!(f, "`{}` was killed by a signal", self.command)?,
        }
        if !self.stderr.is_empty() {
            write!(f, ": {}", self.stderr)?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandFailed {}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            dir: None,
            sink: Sink::Terminal,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, A>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `flag value` when `value` is `Some`, nothing otherwise.
    pub fn opt(self, flag: &str, value: Option<impl Into<OsString>>) -> Cmd {
        match value {
            Some(value) => self.arg(flag).arg(value),
            None => self,
        }
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), Value::Plain(value.into())));
        self
    }

    /// An environment variable whose value is shown as `***`.
    pub fn env_secret(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), Value::Secret(value.into())));
        self
    }

    /// Bytes fed to stdin, never shown.
    pub fn stdin_secret(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(Input::Secret(bytes.into()));
        self
    }

    /// Text fed to stdin; the command is shown with `# stdin: {shown}`.
    pub fn stdin_text(mut self, shown: impl Into<String>, text: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(Input::Text { shown: shown.into(), bytes: text.into() });
        self
    }

    pub fn stdin_file(mut self, path: impl Into<PathBuf>) -> Cmd {
        self.stdin = Some(Input::File(path.into()));
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    /// [`Cmd::run`] keeps stderr for its error instead of showing it: for a command whose
    /// stderr says only why it failed, and the caller explains that.
    pub fn keep_stderr(mut self) -> Cmd {
        self.sink = Sink::KeepStderr;
        self
    }

    /// [`Cmd::run`] appends stdout and stderr to the file at `log`.
    pub fn log_to(mut self, log: impl Into<PathBuf>) -> Cmd {
        self.sink = Sink::Log(log.into());
        self
    }

    pub fn program(&self) -> &Path {
        Path::new(&self.program)
    }

    /// The duct expression for this command; output handling is the caller's (`run::pipe`).
    pub(crate) fn expression(&self) -> duct::Expression {
        let mut expr = duct::cmd(&self.program, &self.args).unchecked();
        for (key, value) in &self.env {
            let (Value::Plain(value) | Value::Secret(value)) = value;
            expr = expr.env(key, value);
        }
        match &self.stdin {
            Some(Input::Secret(bytes) | Input::Text { bytes, .. }) => {
                expr = expr.stdin_bytes(bytes.clone())
            }
            Some(Input::File(path)) => expr = expr.stdin_path(path),
            None => {}
        }
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        expr
    }

    /// Echoes the command, runs it with its output streamed (see [`Sink`]), and fails when
    /// it exits non-zero ([`CommandFailed`], with its exit status).
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let expr = match &self.sink {
            Sink::Terminal => self.expression(),
            Sink::KeepStderr => self.expression().stderr_capture(),
            Sink::Log(path) => {
                let log = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("open the log {}", path.display()))?;
                self.expression().stderr_to_stdout().stdout_file(log)
            }
        };
        let output = self.spawn_and_wait(ctx, expr, true)?;
        self.check(&output)
    }

    /// Echoes the command and runs it with its output captured: shown only in the error
    /// when it fails (for chatty commands whose success says nothing).
    pub fn run_quiet(&self, ctx: &Context) -> anyhow::Result<()> {
        ctx.ui.echo(self);
        let output = self.read_output(ctx)?;
        self.check(&output)
    }

    /// Runs a query quietly and returns its stdout without trailing white space; stderr is
    /// kept for the error.
    pub fn read(&self, ctx: &Context) -> anyhow::Result<String> {
        let output = self.read_output(ctx)?;
        self.check(&output)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim_end().to_owned())
    }

    /// Runs a query quietly and returns its whole output, whatever its exit status.
    pub fn read_output(&self, ctx: &Context) -> anyhow::Result<Output> {
        let expr = self.expression().stdout_capture().stderr_capture();
        self.spawn_and_wait(ctx, expr, false)
    }

    /// Starts `expr`, then waits for it while watching for Ctrl-C: an interrupted child is
    /// killed (or has already exited of the same signal) and the step returns
    /// [`Interrupted`].
    fn spawn_and_wait(
        &self,
        ctx: &Context,
        expr: duct::Expression,
        echo: bool,
    ) -> anyhow::Result<Output> {
        let during = format!("`{self}`");
        ctx.interrupt.check(&during)?;
        if echo {
            ctx.ui.echo(self);
        }
        let handle = expr.start().map_err(|err| self.spawn_error(err))?;
        loop {
            if let Some(output) = handle.try_wait().with_context(|| format!("wait for {during}"))? {
                // Ctrl-C reached the child too: its exit is the interruption, not a failure.
                if ctx.interrupt.explains(&output.status) {
                    return Err(Interrupted { during }.into());
                }
                return Ok(output.clone());
            }
            if ctx.interrupt.is_set() {
                let _ = handle.kill();
                return Err(Interrupted { during }.into());
            }
            thread::sleep(POLL);
        }
    }

    pub(crate) fn spawn_error(&self, err: io::Error) -> anyhow::Error {
        let program = self.program().display();
        if err.kind() == io::ErrorKind::NotFound {
            anyhow!("`{program}` not found on PATH: install it, or add its directory to PATH")
        } else {
            anyhow!("cannot start `{program}`: {err}")
        }
    }

    fn check(&self, output: &Output) -> anyhow::Result<()> {
        if output.status.success() {
            return Ok(());
        }
        Err(CommandFailed {
            command: self.to_string(),
            code: output.status.code(),
            stderr: last_lines(&output.stderr, 3),
        }
        .into())
    }

    /// Fails unless `self` has no secret in its arguments: secrets belong in stdin or env.
    pub fn assert_no_secret_in_args(&self, secret: &str) -> anyhow::Result<()> {
        if !secret.is_empty() && self.args.iter().any(|a| a.to_string_lossy().contains(secret)) {
            bail!(
                "internal error: a secret would be passed in argv of `{}`",
                self.program().display()
            );
        }
        Ok(())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.env {
            let shown = match value {
                Value::Plain(value) => quote(&value.to_string_lossy()),
                Value::Secret(_) => MASK.to_owned(),
            };
            write!(f, "{}={shown} ", key.to_string_lossy())?;
        }
        write!(f, "{}", quote(&self.program.to_string_lossy()))?;
        for arg in &self.args {
            write!(f, " {}", quote(&arg.to_string_lossy()))?;
        }
        match &self.stdin {
            Some(Input::Secret(_)) => write!(f, " <<< {MASK}"),
            Some(Input::File(path)) => write!(f, " < {}", quote(&path.to_string_lossy())),
            Some(Input::Text { shown, .. }) => write!(f, " # stdin: {shown}"),
            None => Ok(()),
        }
    }
}

/// Quotes a word the way a POSIX shell would need it, only when it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,^".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// The last `n` non-empty lines of a captured stream, joined with ` | `.
pub fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_commands_as_typed_and_masks_secrets() {
        let cmd = Cmd::new("docker")
            .args(["login", "--username", "robot", "--password-stdin", "quay.io"])
            .env_secret("TOKEN", "hunter2")
            .env("DOCKER_CONFIG", "/tmp/x y")
            .stdin_secret("hunter2");
        let shown = cmd.to_string();
        assert_eq!(
            shown,
            "TOKEN=*** DOCKER_CONFIG='/tmp/x y' docker login --username robot --password-stdin quay.io <<< ***"
        );
        assert!(!shown.contains("hunter2"));
        assert!(cmd.assert_no_secret_in_args("hunter2").is_ok());
        assert!(Cmd::new("x").arg("pw=hunter2").assert_no_secret_in_args("hunter2").is_err());
    }

    #[test]
    fn optional_flags_appear_only_with_a_value() {
        let none: Option<&str> = None;
        assert_eq!(Cmd::new("docker").opt("--cache-from", none).to_string(), "docker");
        assert_eq!(
            Cmd::new("docker").opt("--cache-from", Some("web:1")).to_string(),
            "docker --cache-from web:1"
        );
    }

    #[test]
    fn quoting_is_minimal_and_safe() {
        assert_eq!(quote("web-test:latest"), "web-test:latest");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("{{.Id}}"), "'{{.Id}}'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines(b"a\n\nb\nc\nd\n", 2), "c | d");
    }
}
