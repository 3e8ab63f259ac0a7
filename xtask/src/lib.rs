//! The release pipeline of the web application, as a library behind `cargo xtask`.
//!
//! Layers; a module imports only from its own layer's parts and the layers below (the
//! `tidy` tests read every `use` and check it):
//! - `commands`: one module per command, thin, never importing each other; they turn
//!   their flags (`flags`) into the plain options of the parts below;
//! - `release`: one commit's release to Elastic Beanstalk, planned as data (the image and
//!   the application version), shared by `deploy` and `env create`;
//! - `docker` (the engine, builds, the cache tarball, the registries, ECR among them, the
//!   local runner), `eb` (Elastic Beanstalk and its S3 bucket: the `Eb` handle,
//!   environments, versions, update and follow) and `config` (settings, the EB CLI's
//!   config, the templates, git): the parts the commands share, grouped by what they talk
//!   to; they do not import one another, except `eb` and `docker` reading `config`;
//! - `aws`: the AWS clients from the standard chain, and the one way every call is made
//!   (bounded, interruptible, throttling waited out, state-changing calls never resent
//!   blindly), for `eb` and for ECR in `docker`;
//! - `run`: the context every step gets, commands as data, signals, terminal output,
//!   secrets, exit statuses.

pub mod aws;
pub mod commands;
pub mod config;
pub mod docker;
pub mod eb;
pub mod flags;
pub mod release;
pub mod run;

#[cfg(test)]
mod tidy;
