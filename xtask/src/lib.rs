//! The release pipeline of the web application, as a library behind `cargo xtask`.
//! The modules read like the pipeline: test, then (in later commands) build and deploy;
//! the pieces they share are named for what they hold.

pub mod aws;
pub mod bench;
pub mod build;
pub mod cache;
pub mod cmd;
pub mod deploy;
pub mod docker;
pub mod dockerfile;
pub mod dockerrun;
pub mod ebconfig;
pub mod flags;
pub mod git;
pub mod http;
pub mod interrupt;
pub mod local;
pub mod options;
pub mod registry;
pub mod rollback;
pub mod secret;
pub mod settings;
pub mod status;
pub mod test;
pub mod ui;
pub mod update;
pub mod versions;
pub mod wait;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::interrupt::Interrupt;
use crate::ui::Ui;

/// What every step needs, passed down explicitly: no global state.
#[derive(Clone, Debug)]
pub struct Context {
    /// The workspace root (holds `Cargo.toml`, `web/`, `xtask/`).
    pub root: PathBuf,
    /// The environment variables, read once at start.
    pub env: Env,
    pub ui: Ui,
    pub interrupt: Interrupt,
}

/// A snapshot of environment variables. Its `Debug` shows names only: values may be secret.
#[derive(Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    pub fn from_process() -> Env {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect())
    }

    /// The value of `name`; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn with(mut self, name: &str, value: &str) -> Env {
        self.0.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Context {
    /// The same context with a fresh interrupt flag, for clean-up after a Ctrl-C.
    pub fn without_interrupt(&self) -> Context {
        Context { interrupt: Interrupt::default(), ..self.clone() }
    }
}

/// Exit statuses beyond 0 (success), 1 (an error) and 2 (a wrong command line).
pub mod exit {
    /// Elastic Beanstalk reported the deployment failed: an ERROR event of our update, or
    /// the environment back on another version.
    pub const DEPLOY_FAILED: i32 = 3;
    /// Our version runs, but its health is still Red at the end of the recovery window.
    pub const UNHEALTHY: i32 = 4;
    /// Not done within `--timeout`: the environment never became Ready or never finished,
    /// or an AWS endpoint did not answer.
    pub const TIMED_OUT: i32 = 5;
    /// Ctrl-C or SIGTERM.
    pub const INTERRUPTED: i32 = 130;
}

/// A failure whose exit status is decided by what failed (the test suite's own status,
/// a deploy failure kind), not the generic 1.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit status for an error: the failure's own, 130 for Ctrl-C, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(failure) = err.downcast_ref::<Failure>() {
        failure.code
    } else if err.chain().any(|e| e.is::<interrupt::Interrupted>()) {
        exit::INTERRUPTED
    } else {
        1
    }
}

/// The workspace to work on: `--project-dir`, else the one this xtask was built in.
pub fn project_root(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = match flag {
        Some(dir) => dir.to_path_buf(),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf()
        }
    };
    if !root.join(docker::DOCKERFILE).is_file() {
        bail!(
            "{} is not this project's workspace (no {}): pass --project-dir DIR",
            root.display(),
            docker::DOCKERFILE
        );
    }
    Ok(root)
}
