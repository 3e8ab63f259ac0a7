//! `cargo xtask bench`'s flags.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// The seed's `docker load/build/save/run` against `cargo xtask test`, under BuildKit and
    /// the legacy builder, on a fresh daemon with a cache tarball (then `cargo xtask build`)
    /// and on a daemon that already holds the image. It removes this project's images and
    /// prunes the builder's cache to simulate a fresh CI machine.
    TestCache(BenchTestCache),
    /// The deploy image: size, and `docker run` to the first 200 on /health
    Image(BenchImage),
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
pub struct BenchImage {
    /// Container starts to time (the median is reported)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub starts: usize,
}

#[derive(Debug, Args)]
pub struct BenchXtask {
    /// Runs of `cargo xtask --help` (the median is reported)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub help_rounds: usize,
}
