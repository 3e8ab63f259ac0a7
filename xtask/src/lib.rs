//! The release pipeline of the web application, as a library behind `cargo xtask`.
//!
//! Five layers; a module imports only from its own layer's parts and the layers below:
//! - `commands`: one module per command, thin, never importing each other;
//! - `docker` (the engine, builds, the cache tarball, the registries, ECR among them, the
//!   local runner), `eb` (Elastic Beanstalk and its S3 bucket: environments, versions,
//!   update and wait) and `config` (settings, the EB CLI's config, the templates, git): the
//!   parts the commands share, grouped by what they talk to; they do not import one another,
//!   except `eb` and `docker` reading `config`;
//! - `aws`: the AWS clients from the standard chain, and the one way every call is made
//!   (bounded, interruptible, throttling waited out), for `eb` and for ECR in `docker`;
//! - `run`: commands as data, interrupts, terminal output, secrets;
//! - this root: the context every step gets, exit statuses, the project's root.

pub mod aws;
pub mod commands;
pub mod config;
pub mod docker;
pub mod eb;
pub mod flags;
pub mod run;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::run::interrupt::Interrupt;
use crate::run::ui::Ui;

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
    } else if err.chain().any(|e| e.is::<run::interrupt::Interrupted>()) {
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    /// The layers of `lib.rs`'s header, checked on the sources: a module imports nothing of
    /// the layers above it, a command nothing of another command, and the parts below the
    /// commands nothing of each other but `config`.
    #[test]
    fn imports_point_down_only() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let parts = ["crate::docker", "crate::eb", "crate::config"];
        let above_aws = [&parts[..], &["crate::commands", "crate::flags"]].concat();
        let above_run = [&above_aws[..], &["crate::aws"]].concat();
        let forbidden: [(&str, &[&str]); 6] = [
            ("commands", &["crate::commands", "super::"]),
            ("docker", &["crate::commands", "crate::eb", "crate::flags"]),
            ("eb", &["crate::commands", "crate::docker", "crate::flags"]),
            ("config", &["crate::commands", "crate::docker", "crate::eb", "crate::flags"]),
            ("aws", &above_aws),
            ("run", &above_run),
        ];
        let mut found = Vec::new();
        for (layer, imports) in forbidden {
            let dir = src.join(layer);
            let mut files = vec![if dir.is_dir() { dir } else { src.join(format!("{layer}.rs")) }];
            while let Some(path) = files.pop() {
                if path.is_dir() {
                    files.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                    continue;
                }
                let text = fs::read_to_string(&path).unwrap();
                // A module's own unit tests may use what they test; a command made of
                // several files (bench) may use its own parts.
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
                let nested = path.parent() != Some(src.join(layer).as_path());
                for import in imports.iter().filter(|i| code.contains(*i)) {
                    if !(nested && *import == "super::") {
                        found.push(format!("{} uses {import}", path.display()));
                    }
                }
            }
        }
        assert!(found.is_empty(), "imports against the layers: {found:#?}");
    }

    /// Small enough to read in one go: no module over 400 lines, no command over 200.
    #[test]
    fn modules_stay_small() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.clone()];
        let mut long = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let lines = fs::read_to_string(&path).unwrap().lines().count();
            let limit = if path.starts_with(src.join("commands")) { 200 } else { 400 };
            if lines > limit {
                long.push(format!("{}: {lines} lines (at most {limit})", path.display()));
            }
        }
        assert!(long.is_empty(), "{long:#?}");
    }
}
