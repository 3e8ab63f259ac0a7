//! Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed: a window, an ssh session):
//! noted in a flag that long waits poll, so that a step can stop its child processes,
//! remove its temporary files and say what it left behind. SIGHUP is handled as SIGTERM,
//! and the command then exits 129 instead of 130.
//!
//! A terminal sends Ctrl-C to the whole foreground process group: our child processes get
//! the signal too, and usually exit before we look. A child that exits while the flag is set
//! is therefore an interruption, never a failed command ([`Interrupt::explains`]). A second
//! signal while the first is being handled ends the process at once (exit 130): the way out
//! when a clean-up takes longer than the person is willing to wait.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long a child that died of a signal may precede our own handler setting the flag.
const SIGNAL_SKEW: Duration = Duration::from_millis(300);

/// The flag, and which signal set it first (0 while none has).
#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    set: Arc<AtomicBool>,
    hangup: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Routes SIGINT, SIGTERM and SIGHUP to the flag instead of ending the process at once;
    /// a second one, once the flag is set, exits at once (130, or 129 for SIGHUP).
    pub fn install() -> anyhow::Result<Interrupt> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let interrupt = Interrupt::default();
        for (signal, status) in [(SIGINT, 130), (SIGTERM, 130), (SIGHUP, 129)] {
            let install = || -> std::io::Result<()> {
                // Registered first, so it sees the flag as it was before this signal.
                signal_hook::flag::register_conditional_shutdown(
                    signal,
                    status,
                    Arc::clone(&interrupt.set),
                )?;
                if signal == SIGHUP {
                    signal_hook::flag::register_usize(signal, Arc::clone(&interrupt.hangup), 1)?;
                }
                signal_hook::flag::register(signal, Arc::clone(&interrupt.set))?;
                Ok(())
            };
            install().context("cannot install the handler of Ctrl-C and the other signals")?;
        }
        Ok(interrupt)
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// The exit status of a command that ended with `code`: 129 whenever the terminal hung
    /// up (the clean-up done, whatever the command's own ending), else `code`.
    pub fn exit_code(&self, code: i32) -> i32 {
        if self.hangup.load(Ordering::SeqCst) != 0 { crate::run::exit::HANGUP } else { code }
    }

    /// Sets the flag as a signal would.
    #[cfg(test)]
    pub fn trigger(&self) {
        self.set.store(true, Ordering::SeqCst);
    }

    /// `Err(Interrupted)` once a signal has arrived.
    pub fn check(&self, during: &str) -> Result<(), Interrupted> {
        if self.is_set() { Err(Interrupted { during: during.to_owned() }) } else { Ok(()) }
    }

    /// Whether a child that exited with `status` was stopped by the signal that reached us
    /// too. A child killed by SIGINT, SIGTERM or SIGHUP (or exiting 129, 130 or 143, as
    /// programs that catch them do) may see it a moment before our handler runs: then the
    /// flag is given that moment.
    pub fn explains(&self, status: &ExitStatus) -> bool {
        if self.is_set() {
            return true;
        }
        let by_signal =
            matches!(status.signal(), Some(libc::SIGINT | libc::SIGTERM | libc::SIGHUP))
                || matches!(status.code(), Some(129 | 130 | 143));
        if !by_signal {
            return false;
        }
        let until = Instant::now() + SIGNAL_SKEW;
        while Instant::now() < until {
            if self.is_set() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Waits, at most 2 s, until the processes that got the same signal are gone: the
    /// others of our process group that are not our siblings (a `tee` we print into shares
    /// our parent), so our children and the processes they left behind (docker's buildx
    /// plugin outlives the docker CLI that started it). Then the last line of the log is
    /// ours. Where `/proc` cannot tell, 300 ms.
    pub fn let_descendants_finish(&self) {
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            match signalled_with_us().map(|pids| pids.len()) {
                Some(0) => return,
                Some(_) => std::thread::sleep(Duration::from_millis(20)),
                None => return std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    /// Resolves once a signal has arrived: raced against an in-flight call so that Ctrl-C
    /// ends it at once.
    pub async fn signalled(&self) {
        while !self.is_set() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One process as `/proc/PID/stat` has it: its ID, state, parent and process group.
fn stat(text: &str) -> Option<(u32, String, u32, u32)> {
    // `PID (COMM) STATE PPID PGRP …`: COMM may hold spaces and parentheses.
    let (head, rest) = text.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let state = fields.next()?.to_owned();
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((pid, state, ppid, pgrp))
}

/// The live processes of our process group other than us and our siblings (`None`
/// without `/proc`).
fn signalled_with_us() -> Option<Vec<u32>> {
    let us = stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((pid, state, ppid, pgrp)) = stat(&text) else { continue };
        if pgrp == us.3 && pid != us.0 && ppid != us.2 && state != "Z" {
            pids.push(pid);
        }
    }
    Some(pids)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_in_our_group_is_counted_until_it_ends() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert!(signalled_with_us().unwrap().contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!signalled_with_us().unwrap().contains(&child.id()));
        assert_eq!(stat("12 (a (b) c) S 1 12 12 0").unwrap(), (12, "S".to_owned(), 1, 12));
    }

    #[test]
    fn a_child_stopped_by_the_signal_is_an_interruption_only_with_the_flag() {
        let killed = ExitStatus::from_raw(libc::SIGINT);
        let exited_130 = ExitStatus::from_raw(130 << 8);
        let failed = ExitStatus::from_raw(1 << 8);
        let interrupt = Interrupt::default();
        assert!(!interrupt.explains(&killed), "no signal reached us: a failure");
        assert!(!interrupt.explains(&failed));
        interrupt.trigger();
        assert!(interrupt.explains(&killed));
        assert!(interrupt.explains(&exited_130));
        assert!(interrupt.explains(&failed), "whatever the child did, we were interrupted");
    }
}
