//! What git knows about the work tree: the commit, the branch, uncommitted changes.

use anyhow::Context as _;

use crate::run::Context;
use crate::run::cmd::Cmd;

fn git(ctx: &Context) -> Cmd {
    Cmd::new("git").arg("-C").arg(&ctx.root)
}

/// The commit checked out (`git rev-parse HEAD`).
pub fn head(ctx: &Context) -> anyhow::Result<String> {
    git(ctx)
        .args(["rev-parse", "--verify", "HEAD"])
        .read(ctx)
        .context("cannot read the current commit (is this a git checkout with a commit?)")
}

/// The branch checked out, or `None` on a detached HEAD.
pub fn branch(ctx: &Context) -> anyhow::Result<Option<String>> {
    let name = git(ctx)
        .args(["rev-parse", "--abbrev-ref", "HEAD"])
        .read(ctx)
        .context("cannot read the current branch")?;
    Ok(Some(name).filter(|n| n != "HEAD"))
}

/// The branch whose mapping decides where `deploy` (and `rollback`) go without ENV:
/// `$CIRCLE_BRANCH` in CI, else the branch checked out.
pub fn deploy_branch(ctx: &Context) -> anyhow::Result<Option<String>> {
    match ctx.env.get("CIRCLE_BRANCH") {
        Some(branch) => Ok(Some(branch.to_owned())),
        None => branch(ctx),
    }
}

/// Paths with uncommitted changes, untracked files included (they would enter the image).
pub fn dirty_paths(ctx: &Context) -> anyhow::Result<Vec<String>> {
    let status = git(ctx)
        .args(["status", "--porcelain"])
        .read(ctx)
        .context("cannot read the work tree status")?;
    Ok(status.lines().map(|l| l.get(3..).unwrap_or(l).to_owned()).collect())
}
