//! Every command and flag of `cargo xtask`; the `///` lines are its `--help`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// Test, build and ship the web application. CI runs exactly these commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, arg_required_else_help = true)]
pub struct Xtask {
    /// Workspace to work on [default: the workspace this xtask belongs to]
    #[arg(long, global = true, value_name = "DIR", env = "XTASK_PROJECT_DIR")]
    pub project_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the test image (reusing the cached one as build cache) and run the web test
    /// suite in it; the suite's exit status is this command's
    Test(Test),
    /// Measure the pipeline against the hand-made scripts it replaces
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Debug, Args)]
pub struct Test {
    /// Tarball that keeps the test image between CI runs [default: ~/docker/image.tar]
    #[arg(long, value_name = "PATH", env = "TEST_IMAGE_CACHE")]
    pub cache_file: Option<PathBuf>,

    /// Neither load nor save the cache tarball (Docker's own build cache still applies)
    #[arg(long)]
    pub no_cache: bool,

    /// Name of the test image
    #[arg(long, value_name = "NAME", env = "TEST_IMAGE", default_value = "web-test:latest")]
    pub image: String,
}

impl Test {
    pub fn cache_file(&self) -> anyhow::Result<PathBuf> {
        match &self.cache_file {
            Some(path) => Ok(path.clone()),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .context("HOME is not set: pass --cache-file PATH or set TEST_IMAGE_CACHE")?;
                Ok(PathBuf::from(home).join("docker").join("image.tar"))
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// The seed's `docker load/build/save/run` against `cargo xtask test`, on a fresh daemon
    /// with a cache tarball and on a daemon that already holds the image. It removes this
    /// project's build-cache images from the daemon to simulate a fresh CI machine.
    TestCache(BenchTestCache),
    /// Cold debug build of the xtask (wall and CPU time) and a warm `cargo xtask --help`
    Xtask(BenchXtask),
}

#[derive(Debug, Args)]
pub struct BenchTestCache {
    /// Timed runs of each side on a fresh daemon (each seed run rebuilds everything)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub fresh_rounds: usize,

    /// Timed runs of each side on a daemon that holds the image (the median is reported)
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub warm_rounds: usize,
}

#[derive(Debug, Args)]
pub struct BenchXtask {
    /// Runs of `cargo xtask --help` (the median is reported)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub help_rounds: usize,
}
