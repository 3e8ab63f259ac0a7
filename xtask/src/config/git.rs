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
    porcelain(ctx, git(ctx).args(["status", "--porcelain"]))
}

/// The paths of a `git status --porcelain` listing.
fn porcelain(ctx: &Context, status: Cmd) -> anyhow::Result<Vec<String>> {
    let status = status.read(ctx).context("cannot read the work tree status")?;
    Ok(status.lines().map(|l| l.get(3..).unwrap_or(l).to_owned()).collect())
}

/// A commit as the deploy history and a version's description name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub subject: String,
    /// `Name <email>`.
    pub author: String,
}

/// The commit `rev` names (`HEAD`, a SHA).
pub fn commit(ctx: &Context, rev: &str) -> anyhow::Result<Commit> {
    let shown = git(ctx)
        .args(["show", "-s", "--format=%H%n%an <%ae>%n%s"])
        .arg(format!("{rev}^{{commit}}"))
        .arg("--")
        .read(ctx)
        .with_context(|| format!("cannot read commit {rev}"))?;
    let mut lines = shown.lines();
    let mut next = || lines.next().unwrap_or_default().to_owned();
    Ok(Commit { sha: next(), author: next(), subject: next() })
}

/// `git config NAME`, or `None` when unset.
pub fn config(ctx: &Context, name: &str) -> Option<String> {
    git(ctx).args(["config", "--get", name]).read(ctx).ok().filter(|v| !v.is_empty())
}

/// A file of a commit's tree: its mode (`100644`, `100755`, `120000`), object and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: String,
    pub object: String,
    pub path: String,
}

/// The files of `HEAD` under `prefix` (a directory of the workspace, `deploy/`).
pub fn committed_files(ctx: &Context, prefix: &str) -> anyhow::Result<Vec<TreeEntry>> {
    let listed = git(ctx)
        .args(["ls-tree", "-r", "-z", "HEAD", "--"])
        .arg(prefix)
        .read(ctx)
        .with_context(|| format!("cannot list {prefix} in the commit checked out"))?;
    Ok(listed
        .split('\0')
        .filter_map(|line| {
            let (meta, path) = line.split_once('\t')?;
            let mut meta = meta.split(' ');
            let (mode, kind, object) = (meta.next()?, meta.next()?, meta.next()?);
            (kind == "blob").then(|| TreeEntry {
                mode: mode.to_owned(),
                object: object.to_owned(),
                path: path.to_owned(),
            })
        })
        .collect())
}

/// The bytes of a git object (a file of a commit).
pub fn blob(ctx: &Context, object: &str) -> anyhow::Result<Vec<u8>> {
    let output = git(ctx).args(["cat-file", "blob", object]).read_output(ctx)?;
    if !output.status.success() {
        anyhow::bail!(
            "cannot read git object {object}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

/// Paths under `prefix` with uncommitted changes, untracked files one by one.
pub fn dirty_paths_under(ctx: &Context, prefix: &str) -> anyhow::Result<Vec<String>> {
    let status = git(ctx).args(["status", "--porcelain", "--untracked-files=all", "--"]);
    porcelain(ctx, status.arg(prefix))
}
