//! The bundle directory (`bundle_dir`, default `deploy/`): its `.ebextensions/` and
//! `.platform/` trees go beside the Dockerrun in each version's zip (Elastic Beanstalk reads
//! them from the source bundle only, never from the image: AWS's "Extending Elastic
//! Beanstalk Linux platforms"). They are read from the commit (git's tree of `HEAD`), not
//! the work tree, so that a version is what the commit says (an uncommitted file is left out
//! with a warning: EB CLI #528 drops them silently), and checked before anything is built
//! (`checks`).

mod checks;

use anyhow::{Context as _, bail};

use crate::config::{git, options};
use crate::run::Context;

/// The trees of the bundle directory that go into the bundle.
const TREES: [&str; 2] = [".ebextensions/", ".platform/"];
/// Where the hooks are: their files run on the instances, so they get mode 0755.
const HOOKS: [&str; 2] = [".platform/hooks/", ".platform/confighooks/"];

/// A file of the bundle beside the Dockerrun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extra {
    /// Its path in the zip: `.platform/hooks/predeploy/01-migrate.sh`.
    pub path: String,
    pub bytes: Vec<u8>,
    /// 0o755 for a hook or a file executable in git, else 0o644.
    pub mode: u32,
}

/// The bundle directory's files, as committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extras {
    /// The directory, relative to the workspace root (`deploy`).
    pub dir: String,
    pub files: Vec<Extra>,
}

/// The default bundle directory.
pub const DEFAULT_DIR: &str = "deploy";

/// The committed `.ebextensions/` and `.platform/` files of `dir` (the setting; `None`:
/// [`DEFAULT_DIR`]), checked; `None` when it holds none (the bundle is then the Dockerrun
/// alone). A directory the setting names must exist. The options template's secret
/// options may not be set there.
pub fn read(ctx: &Context, dir: Option<&str>) -> anyhow::Result<Option<Extras>> {
    let secret_names = options::secret_names(&ctx.root);
    if let Some(dir) = dir
        && !ctx.root.join(dir).is_dir()
    {
        bail!(
            "bundle_dir {dir:?} is not a directory of {}: fix `bundle_dir` in \
             [workspace.metadata.deploy] (or DEPLOY_BUNDLE_DIR), or remove it to use {DEFAULT_DIR}/",
            ctx.root.display()
        );
    }
    let dir = dir.unwrap_or(DEFAULT_DIR);
    let prefix = format!("{dir}/");
    let listed = git::committed_files(ctx, &prefix);
    let uncommitted = git::dirty_paths_under(ctx, &prefix).unwrap_or_default();
    let uncommitted: Vec<&String> = uncommitted.iter().filter(|p| in_trees(&prefix, p)).collect();
    if !uncommitted.is_empty() {
        let shown: Vec<&str> = uncommitted.iter().take(3).map(|p| p.as_str()).collect();
        let more = uncommitted.len().saturating_sub(3);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        ctx.ui.warn(format_args!(
            "{}{more} not committed: left out of the bundle, which is taken from the commit \
             (commit them to ship them)",
            shown.join(", ")
        ));
    }
    let listed = match listed {
        Ok(listed) => listed,
        Err(_) if !ctx.root.join(dir).exists() => return Ok(None),
        Err(err) => return Err(err).context(format!("cannot read {dir}/ from git")),
    };
    let mut files = Vec::new();
    for entry in listed.into_iter().filter(|e| in_trees(&prefix, &e.path)) {
        let path = entry.path[prefix.len()..].to_owned();
        if entry.mode == "120000" {
            bail!(
                "{}: a symbolic link; the bundle holds files only: commit the file itself",
                entry.path
            );
        }
        let bytes = git::blob(ctx, &entry.object)?;
        let executable = entry.mode == "100755";
        let hook = HOOKS.iter().any(|h| path.starts_with(h));
        if hook && !executable {
            ctx.ui.warn(format_args!(
                "{} is not executable in git: the bundle gives it mode 0755 (say so in git: \
                 `git update-index --chmod=+x {}`)",
                entry.path, entry.path
            ));
        }
        checks::check(&entry.path, &path, &bytes, &secret_names)?;
        let mode = if hook || executable { 0o755 } else { 0o644 };
        files.push(Extra { path, bytes, mode });
    }
    if files.is_empty() {
        return Ok(None);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(Extras { dir: dir.to_owned(), files }))
}

/// Whether `path` (from the workspace root) is in one of the bundled trees of the directory.
fn in_trees(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| TREES.iter().any(|t| rest.starts_with(t)))
}

impl Extras {
    /// The environment variables its `.ebextensions` set (`option_settings` of
    /// `aws:elasticbeanstalk:application:environment`), in file order.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.files.iter().flat_map(|f| checks::environment(&f.path, &f.bytes)).collect()
    }

    /// The platform hooks it carries (`.platform/hooks/predeploy/01.sh`…).
    pub fn hooks(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|f| HOOKS.iter().any(|h| f.path.starts_with(h)))
            .map(|f| f.path.as_str())
    }
}
