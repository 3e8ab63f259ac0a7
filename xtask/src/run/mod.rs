//! The plumbing every part uses: the context a step gets, external commands as data,
//! Ctrl-C and the other signals, what the terminal or the CI log shows, secrets, exit
//! statuses, and a small HTTP client for health checks. It imports nothing above it.

pub mod cmd;
pub mod context;
pub mod exit;
pub mod http;
pub mod interrupt;
pub mod pipe;
pub mod secret;
pub mod ui;

pub use context::{Context, Env};
pub use exit::Failure;
