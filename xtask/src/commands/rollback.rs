//! `cargo xtask rollback [ENV] [--to LABEL]`: redeploy an earlier version (or the one
//! given), with the same wait, verdict and exit statuses as `deploy`.
//!
//! Elastic Beanstalk keeps no record of the versions an environment ran, and its events
//! carry no version label (AWS's own DescribeEvents examples): without `--to`, the version
//! is the newest one created before the one running. Option settings are left as they are:
//! a rollback switches the version only.

use anyhow::{Context as _, bail};

use crate::config::git;
use crate::config::settings::Settings;
use crate::eb::update::Update;
use crate::eb::versions::{self, Version};
use crate::eb::{Eb, environments};
use crate::flags;
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::Rollback) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    let target = settings.target(flags.env.as_deref(), || git::deploy_branch(ctx))?;
    let wait = super::wait_options(&flags.wait);
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), &application, wait.timeout)?;
    eb.say_deadline(ctx);
    aws.block_on(async {
        let environment = target.name.as_str();
        let current = environments::describe(ctx, &eb, environment).await?;
        let current = current.version_label().unwrap_or_default().to_owned();
        let versions = versions::list(ctx, &eb, Some(&application)).await?;
        let (label, why) = match &flags.to {
            Some(label) => (label.clone(), "given with --to"),
            None => (previous(environment, &current, &versions)?, PREVIOUS),
        };
        if !versions.iter().any(|v| v.label == label) {
            bail!(
                "application version {label} no longer exists in {application}: pick another \
                 with --to (`cargo xtask versions list` shows them)"
            );
        }
        if label == current {
            bail!("{environment} already runs {label}: nothing to roll back to");
        }
        ctx.ui.step(format_args!("roll {environment} back from {current} to {label} ({why})"));
        if flags.dry_run {
            ctx.ui.info("dry run: nothing is changed");
            return Ok(());
        }
        let update = Update { environment, label: &label, options: Vec::new(), wait };
        update.run(ctx, &eb).await
    })
}

const PREVIOUS: &str = "the newest version created before the running one; --to LABEL picks \
                        another";

/// The newest version created before `current`.
fn previous(environment: &str, current: &str, versions: &[Version]) -> anyhow::Result<String> {
    let created = versions.iter().find(|v| v.label == current).and_then(|v| v.created);
    let older = versions
        .iter()
        .filter(|v| v.label != current)
        .find(|v| created.is_none_or(|c| v.created.is_some_and(|d| d < c)))
        .context(format!(
            "{environment} has no earlier version to roll back to: pass --to LABEL"
        ))?;
    Ok(older.label.clone())
}
