//! The plumbing every part uses: external commands as data, Ctrl-C, what the terminal or the
//! CI log shows, secrets, and a small HTTP client for health checks.

pub mod cmd;
pub mod http;
pub mod interrupt;
pub mod pipe;
pub mod secret;
pub mod ui;
