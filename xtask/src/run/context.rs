//! What every step gets, passed down explicitly (no global state): the project's root, the
//! environment variables read once at start, the terminal, and the Ctrl-C flag.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

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

impl Context {
    /// The same context with a fresh interrupt flag, for clean-up after a Ctrl-C.
    pub fn without_interrupt(&self) -> Context {
        Context { interrupt: Interrupt::default(), ..self.clone() }
    }
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
