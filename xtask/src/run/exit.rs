//! Exit statuses beyond 0 (success), 1 (an error) and 2 (a wrong command line), and the
//! failure that carries one.

use std::fmt;

use crate::run::interrupt::Interrupted;

/// Elastic Beanstalk reported the deployment failed: an ERROR event of our update, an
/// instance on another version, or the environment back on another version.
pub const DEPLOY_FAILED: i32 = 3;
/// Our version runs, but its health is still Red (or Yellow, without `--allow-yellow`) at
/// the end of the recovery window.
pub const UNHEALTHY: i32 = 4;
/// Not done within `--timeout`: the environment never became Ready or never finished,
/// or an AWS endpoint did not answer.
pub const TIMED_OUT: i32 = 5;
/// Another run (or a person, by hand) holds the environment's deploy lock.
pub const LOCKED: i32 = 6;
/// Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;
/// SIGHUP: the terminal closed (a window, an ssh session).
pub const HANGUP: i32 = 129;

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

/// The command's deadline (`--timeout`) passed during a step: exit 5. What waits on an
/// operation turns it into its own verdict on the operation ("did not finish within …").
#[derive(Debug)]
pub struct OutOfTime {
    /// What was in flight.
    pub doing: String,
    /// Whether it was a call that never answered (a network or endpoint problem).
    pub stalled: bool,
    pub message: String,
}

impl fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OutOfTime {}

/// The exit status for an error: the failure's own, 5 when out of time, 130 for an
/// interruption, else 1.
pub fn code(err: &anyhow::Error) -> i32 {
    if let Some(failure) = err.downcast_ref::<Failure>() {
        failure.code
    } else if err.downcast_ref::<OutOfTime>().is_some() {
        TIMED_OUT
    } else if err.chain().any(|e| e.is::<Interrupted>()) {
        INTERRUPTED
    } else {
        1
    }
}
