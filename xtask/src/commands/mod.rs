//! The commands of `cargo xtask`, one module each: thin, each turns its flags into the plain
//! options of the parts below and composes them. A command never imports another (the
//! `layers` test checks it); `release/` holds the two that release a commit (`deploy`,
//! `env create`) and the plan they share.

pub mod bench;
pub mod build;
pub mod local;
pub mod release;
pub mod rollback;
pub mod status;
pub mod terminate;
pub mod test;
pub mod versions;
