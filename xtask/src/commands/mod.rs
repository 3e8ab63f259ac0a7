//! The commands of `cargo xtask`, one module each: thin, each turns its flags into the plain
//! options of the parts below and composes them. A command never imports another (the
//! `layers` test checks it).

pub mod bench;
pub mod build;
pub mod deploy;
pub mod local;
pub mod rollback;
pub mod status;
pub mod test;
pub mod versions;
