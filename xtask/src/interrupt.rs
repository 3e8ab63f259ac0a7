//! Ctrl-C (SIGINT) and SIGTERM: noted in a flag that long waits poll, so that a step can
//! stop its child processes, remove its temporary files and say what it left behind.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;

#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Routes SIGINT and SIGTERM to the flag instead of ending the process at once.
    pub fn install() -> anyhow::Result<Interrupt> {
        let interrupt = Interrupt::default();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&interrupt.0))
                .context("cannot install the Ctrl-C handler")?;
        }
        Ok(interrupt)
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sets the flag as a signal would (for tests).
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// `Err(Interrupted)` once a signal has arrived.
    pub fn check(&self, during: &str) -> Result<(), Interrupted> {
        if self.is_set() { Err(Interrupted { during: during.to_owned() }) } else { Ok(()) }
    }
}

/// The error a step returns when interrupted; `main` turns it into exit code 130.
#[derive(Debug)]
pub struct Interrupted {
    pub during: String,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupted during {}", self.during)
    }
}

impl std::error::Error for Interrupted {}
