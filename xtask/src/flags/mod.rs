//! Every command and flag of `cargo xtask`; the `///` lines are its `--help`.

//! Flags hold plain values only: each command turns them into the options of the parts
//! below (`commands`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::run::Env;

mod bench;
mod ledger;
mod swap;

pub use self::bench::{Bench, BenchImage, BenchTestCache, BenchXtask};
pub use self::ledger::{History, Lock, LockArgs, LockCommand, Logs};
pub use self::swap::Swap;

/// Test, build and ship the web application. CI runs exactly these commands.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    arg_required_else_help = true,
    after_help = "Reference: README.md and docs/ in this repository (docs/commands.md: every command in full)"
)]
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
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-test")]
    Test(Test),
    /// Build the deploy image IMAGE:TAG (image from the settings, tag from the commit) and,
    /// with --push, push it to its registry
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-build")]
    Build(Build),
    /// Release the commit to Elastic Beanstalk environments, one environment update each,
    /// and wait until they run healthy; with --local, run it on this machine instead
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-deploy")]
    Deploy(Deploy),
    /// Create or terminate an Elastic Beanstalk environment
    #[command(subcommand)]
    Env(EnvCommand),
    /// Swap the CNAMEs of a blue/green pair: the idle environment, verified, goes live
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-swap")]
    Swap(Swap),
    /// Show what runs where: one environment (or pair) in full, or every environment one
    /// line each
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-status")]
    Status(Status),
    /// Redeploy the newest other version that succeeded on the environment (its deploy
    /// history), or --to LABEL, waiting as deploy does
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-rollback")]
    Rollback(Rollback),
    /// List the application versions, or prune the oldest to stay under the quota
    #[command(subcommand, after_help = "Reference: docs/commands.md#cargo-xtask-versions")]
    Versions(Versions),
    /// Who deployed what to an environment, newest first: version, commit, outcome, duration
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-history")]
    History(History),
    /// The logs of an environment's instances: their tails, a bundle each, or, streamed to
    /// CloudWatch Logs, followed
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-logs")]
    Logs(Logs),
    /// Show, take (by hand) or release an environment's deploy lock
    #[command(subcommand, after_help = "Reference: docs/commands.md#cargo-xtask-lock")]
    Lock(LockCommand),
    /// Measure the pipeline against the hand-made scripts it replaces
    #[command(subcommand, after_help = "Reference: docs/commands.md#cargo-xtask-bench")]
    Bench(Bench),
}

#[derive(Debug, Args)]
pub struct Test {
    #[command(flatten)]
    pub cache: CacheFile,

    /// Name of the test image
    #[arg(long, value_name = "NAME", env = "TEST_IMAGE", default_value = "web-test:latest")]
    pub image: String,
}

/// The test image's cache tarball, shared by `test` (loads and saves it) and `build`
/// (loads it, to reuse the compiled dependencies).
#[derive(Debug, Args)]
pub struct CacheFile {
    /// Tarball that keeps the test image between CI runs [default: ~/docker/image.tar]
    #[arg(long, value_name = "PATH", env = "TEST_IMAGE_CACHE")]
    pub cache_file: Option<PathBuf>,

    /// Do not use the cache tarball at all (Docker's own build cache still applies)
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheFile {
    /// The tarball to use, or `None` with `--no-cache`.
    pub fn path(&self, env: &Env) -> anyhow::Result<Option<PathBuf>> {
        if self.no_cache {
            return Ok(None);
        }
        if let Some(path) = &self.cache_file {
            return Ok(Some(path.clone()));
        }
        let home = env
            .get("HOME")
            .context("HOME is not set: pass --cache-file PATH or set TEST_IMAGE_CACHE")?;
        Ok(Some(PathBuf::from(home).join("docker").join("image.tar")))
    }
}

#[derive(Debug, Args)]
pub struct Build {
    #[command(flatten)]
    pub image: ImageArgs,

    /// Push IMAGE:TAG (credentials from REGISTRY_USERNAME and REGISTRY_PASSWORD); skips
    /// build and push when the registry already has it
    #[arg(long)]
    pub push: bool,
}

/// The deploy image a command builds: `build`, and `deploy` (with or without `--local`).
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Image tag [default: $CIRCLE_SHA1, else the commit checked out]
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// Print the plan (every command, the rendered descriptor, secrets masked) and run
    /// nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub cache: CacheFile,

    /// Test image whose compiled dependencies the build reuses
    #[arg(long, value_name = "NAME", env = "TEST_IMAGE", default_value = "web-test:latest")]
    pub test_image: String,

    /// Push (and deploy) a commit tag even when the work tree has uncommitted changes; the
    /// deploy bundle is still taken from the commit
    #[arg(long)]
    pub allow_dirty: bool,
}

#[derive(Debug, Args)]
pub struct Deploy {
    /// Environments: keys of [workspace.metadata.deploy.environments], or Elastic Beanstalk
    /// environment names [default: those mapped to the current branch]; with --blue-green,
    /// the pair
    #[arg(value_name = "ENV", conflicts_with = "local")]
    pub env: Vec<String>,

    /// ENV is a blue/green pair: deploy to its idle environment, verify it, then swap it
    /// live (the live one is never updated)
    #[arg(long, conflicts_with_all = ["local", "no_wait"])]
    pub blue_green: bool,

    /// With --blue-green: stop after the verified deploy to the idle environment (look at
    /// it by its own URL; `cargo xtask swap PAIR` finishes)
    #[arg(long, requires = "blue_green")]
    pub no_swap: bool,

    #[command(flatten)]
    pub settle: SettleArgs,

    /// Run the release on this machine, behind a proxy on 127.0.0.1:PORT, as Elastic
    /// Beanstalk's Docker platform would (no AWS account needed)
    #[arg(
        long,
        conflicts_with_all = ["no_wait", "allow_yellow", "recovery_window", "lock_wait", "no_logs"]
    )]
    pub local: bool,

    #[command(flatten)]
    pub image: ImageArgs,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub here: LocalArgs,
}

/// `--settle` of `deploy --blue-green` and `rollback PAIR` (`swap` has it too).
#[derive(Debug, Args)]
pub struct SettleArgs {
    /// With a blue/green pair: seconds the idle environment must stay healthy before the
    /// swap (at least three health refreshes) [default: 30]
    #[arg(long, value_name = "SECS")]
    pub settle: Option<u64>,
}

/// How `deploy`, `env create` and `rollback` wait for Elastic Beanstalk.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Seconds the command may spend on Elastic Beanstalk in all, from its first call: the
    /// checks, the version, the update or launch and its verdict [default: 1200]; with
    /// deploy --local, for the new release to answer its health path [default: 60]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// Return once Elastic Beanstalk accepted the update, without waiting for it
    #[arg(long)]
    pub no_wait: bool,

    /// Accept Yellow health as deployed (Green is required otherwise)
    #[arg(long)]
    pub allow_yellow: bool,

    /// Seconds health may take to turn Green once the environment runs the version
    /// (instances warm up, re-register with the load balancer); Red or Yellow after that
    /// fails [default: 60]
    #[arg(long, value_name = "SECS")]
    pub recovery_window: Option<u64>,

    /// On a failed deploy (exit 3 or 4), do not fetch the instances' logs to show why
    #[arg(long)]
    pub no_logs: bool,
}

/// `deploy --local`'s own flags.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// With --local: port on 127.0.0.1 that serves the release
    #[arg(long, value_name = "N", default_value_t = 8080, requires = "local")]
    pub port: u16,

    /// With --local: KEY=VALUE lines used to render the options template, before the
    /// environment
    #[arg(long, value_name = "FILE", requires = "local")]
    pub env_file: Option<PathBuf>,

    /// With --local: return once the release answers, instead of following its logs
    #[arg(long, requires = "local")]
    pub detach: bool,

    /// With --local: stop and remove the local release (and its proxy) on --port
    #[arg(long, requires = "local")]
    pub stop: bool,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Create the environment (and the application if missing) on the newest Docker
    /// platform, with the commit as its first version, and wait until it runs healthy
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-env-create")]
    Create(EnvCreate),
    /// Terminate the environment and wait until it is gone; its application versions stay
    #[command(after_help = "Reference: docs/commands.md#cargo-xtask-env-terminate")]
    Terminate(EnvTerminate),
}

#[derive(Debug, Args)]
pub struct EnvCreate {
    /// Environment: a key of [workspace.metadata.deploy.environments], or an Elastic
    /// Beanstalk environment name; or a blue/green pair (both of its environments)
    #[arg(value_name = "ENV")]
    pub env: String,

    #[command(flatten)]
    pub image: ImageArgs,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct EnvTerminate {
    /// Environment: a key of [workspace.metadata.deploy.environments], or an Elastic
    /// Beanstalk environment name
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long)]
    pub yes: bool,

    /// Terminate even an environment deployed from a production branch, or the live side of
    /// a blue/green pair
    #[arg(long)]
    pub force: bool,

    /// Seconds to wait until it is terminated [default: 1200]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// Return once Elastic Beanstalk accepted the termination, without waiting for it
    #[arg(long)]
    pub no_wait: bool,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct Status {
    /// Environment: a key of [workspace.metadata.deploy.environments] or an Elastic
    /// Beanstalk environment name, or a blue/green pair [default: every environment of the
    /// application and every one the settings name]
    #[arg(value_name = "ENV")]
    pub env: Option<String>,

    /// Print a JSON document (stable field names) instead of text
    #[arg(long)]
    pub json: bool,

    /// How many of the latest events to show for ENV
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub events: i32,
}

#[derive(Debug, Args)]
pub struct Rollback {
    /// Environment, as for deploy [default: the one mapped to the current branch]; or a
    /// blue/green pair: swap back, or deploy the previous version to the idle one and swap
    #[arg(value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub settle: SettleArgs,

    /// The version label to go back to [default: the newest version other than the running
    /// one that succeeded there, from the environment's deploy history]
    #[arg(long, value_name = "LABEL")]
    pub to: Option<String>,

    /// With --to: go to LABEL even if it never succeeded on the environment
    #[arg(long, requires = "to")]
    pub force: bool,

    /// Say which version it would go back to, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Subcommand)]
pub enum Versions {
    /// The application's versions, newest first, with the environments that run them
    List {
        /// Print a JSON array instead of text
        #[arg(long)]
        json: bool,
    },
    /// Delete the oldest versions beyond the N newest, never one an environment runs
    Prune {
        /// How many of the newest versions to keep
        #[arg(long, value_name = "N")]
        keep: usize,

        /// List what would be deleted, and delete nothing
        #[arg(long)]
        dry_run: bool,

        /// Delete their source bundles from S3 too
        #[arg(long)]
        delete_bundles: bool,

        /// Seconds the listing and every deletion may take in all [default: 1200]
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
}
