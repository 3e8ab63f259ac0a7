//! `cargo xtask env create` and `env terminate`: an environment's beginning and end.

pub mod create;
pub mod terminate;
