//! `swap PAIR`'s flags (`deploy --blue-green` and `rollback PAIR` share its `--settle`).

use clap::Args;

use super::{LockArgs, SettleArgs};

#[derive(Debug, Args)]
pub struct Swap {
    /// Blue/green pair: a key of [workspace.metadata.deploy.blue_green]
    #[arg(value_name = "PAIR")]
    pub pair: String,

    #[command(flatten)]
    pub settle: SettleArgs,

    /// Accept Yellow health on the idle environment (Green is required otherwise)
    #[arg(long)]
    pub allow_yellow: bool,

    /// Seconds the command may spend on Elastic Beanstalk in all: the checks, the
    /// verification, the swap and its end [default: 1200]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// Say which environment is live, which would go live, and each one's version and
    /// health; change nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub lock: LockArgs,
}
