//! `cargo xtask versions [list | prune --keep N]`: the application versions, and keeping
//! under Elastic Beanstalk's quota (`eb::versions`).
//!
//! Prune deletes the oldest versions beyond the N newest, never one that an environment
//! runs or is deploying, and reports the quota use.

use anyhow::bail;

use std::time::Duration;

use crate::config::settings::Settings;
use crate::eb::events::utc;
use crate::eb::versions::{self, Version};
use crate::eb::{Eb, environments};
use crate::flags;
use crate::run::Context;
use crate::run::ui::human_bytes;

/// How many of the newest versions' bundle sizes `versions list` reads (an S3 call each).
const MAX_SIZED: usize = 200;

pub fn run(ctx: &Context, flags: &flags::Versions) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?;
    let timeout = match flags {
        flags::Versions::Prune { timeout, .. } => {
            timeout.map_or(PRUNE_TIMEOUT, Duration::from_secs)
        }
        flags::Versions::List { .. } => crate::aws::DEFAULT_DEADLINE,
    };
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), application, timeout)?;
    aws.block_on(async {
        let mut versions = versions::list(ctx, &eb, Some(application)).await?;
        let environments = environments::all(ctx, &eb).await?;
        for version in &mut versions {
            version.running_on = environments
                .iter()
                .filter(|e| e.version.as_deref() == Some(version.label.as_str()))
                .map(|e| e.environment.clone())
                .collect();
        }
        if let flags::Versions::List { .. } = flags {
            let newest = versions.len().min(MAX_SIZED);
            versions::bundle_sizes(ctx, &eb, &mut versions[..newest]).await?;
        }
        match flags {
            flags::Versions::List { json: true } => {
                ctx.ui.out(serde_json::to_string_pretty(&versions)?)
            }
            flags::Versions::List { json: false } => print(ctx, application, &versions),
            flags::Versions::Prune { keep, dry_run, delete_bundles, .. } => {
                let prune =
                    Prune { keep: *keep, dry_run: *dry_run, delete_bundles: *delete_bundles };
                eb.say_deadline(ctx);
                prune.run(ctx, &eb, &versions).await?;
            }
        }
        let used = versions::list(ctx, &eb, None).await?.len();
        let of = match versions::quota(ctx, &eb).await? {
            Some(max) => format!(" of {max} ({}%)", used * 100 / (max.max(1) as usize)),
            None => String::new(),
        };
        ctx.ui.info(format_args!(
            "application versions in this region, all applications: {used}{of}"
        ));
        Ok(())
    })
}

/// Default for `versions prune --timeout`: listing and deleting hundreds of versions, one
/// call each, under throttling.
const PRUNE_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// What `versions prune` was asked to do.
struct Prune {
    keep: usize,
    dry_run: bool,
    delete_bundles: bool,
}

impl Prune {
    async fn run(&self, ctx: &Context, eb: &Eb, versions: &[Version]) -> anyhow::Result<()> {
        let application = &eb.application;
        let keep = self.keep;
        if keep == 0 {
            bail!("--keep 0 would leave nothing to roll back to: keep at least 1");
        }
        let doomed = versions::to_prune(versions, keep);
        let spared = versions.iter().skip(keep).filter(|v| !v.running_on.is_empty()).count();
        ctx.ui.step(format_args!(
            "prune {application}: {} versions, keep the {keep} newest{}, delete {}",
            versions.len(),
            if spared > 0 { format!(" and {spared} older ones in use") } else { String::new() },
            doomed.len()
        ));
        for version in &doomed {
            let (label, created) = (&version.label, version.created.as_ref().map(utc));
            let created = created.unwrap_or_else(|| "-".to_owned());
            if self.dry_run {
                ctx.ui.info(format_args!("would delete {label} ({created})"));
            } else if versions::delete(ctx, eb, label, self.delete_bundles).await? {
                ctx.ui.info(format_args!("deleted {label} ({created})"));
            } else {
                // Being deployed somewhere this very moment: kept, said, and on we go.
                ctx.ui.warn(format_args!("{label} is in use by an operation in progress: kept"));
            }
        }
        if self.dry_run {
            ctx.ui.info("dry run: nothing was deleted");
        }
        Ok(())
    }
}

fn print(ctx: &Context, application: &str, versions: &[Version]) {
    if versions.is_empty() {
        ctx.ui.out(format_args!("{application} has no application versions"));
    }
    let width = versions.iter().map(|v| v.label.len()).max().unwrap_or(0);
    for version in versions {
        let size = version.bundle_size.map(|s| human_bytes(s as u64));
        ctx.ui.out(format_args!(
            "{:<width$}  {:<24}  {:<11}  {:<4}  {:>9}  {}",
            version.label,
            version.created.as_ref().map(utc).as_deref().unwrap_or("-"),
            version.status.as_deref().unwrap_or("-"),
            version.bundle.unwrap_or("-"),
            size.as_deref().unwrap_or("-"),
            version.running_on.join(", "),
        ));
    }
}
