//! `cargo xtask versions [list | prune --keep N]`: the application versions, and keeping
//! under Elastic Beanstalk's quota (1000 per region, shared by every application; when it
//! is reached, every deploy of the account fails).
//!
//! Prune deletes the oldest versions beyond the N newest, never one that an environment
//! runs or is deploying, and reports the quota use.

use anyhow::bail;
use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::primitives::DateTimeFormat;
use serde::Serialize;

use crate::aws::{Clients, fail};
use crate::settings::Settings;
use crate::{Context, flags, status};

/// One application version, newest first in every list.
#[derive(Clone, Debug, Serialize)]
pub struct Version {
    pub label: String,
    /// RFC 3339, so that text order is time order.
    pub created: Option<String>,
    pub status: Option<String>,
    /// Environments that run it (or are being updated to it).
    pub running_on: Vec<String>,
}

pub fn run(ctx: &Context, flags: &flags::Versions) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let clients = Clients::new(&settings, &ctx.env).await?;
        let mut versions = list(&clients.eb, Some(&application)).await?;
        let environments = status::all(&clients.eb, &application).await?;
        for version in &mut versions {
            version.running_on = environments
                .iter()
                .filter(|e| e.version.as_deref() == Some(version.label.as_str()))
                .map(|e| e.environment.clone())
                .collect();
        }
        match flags {
            flags::Versions::List { json } => {
                if *json {
                    println!("{}", serde_json::to_string_pretty(&versions)?);
                } else {
                    print(&application, &versions);
                }
                quota(ctx, &clients.eb).await
            }
            flags::Versions::Prune { keep, dry_run, delete_bundles } => {
                prune(ctx, &clients, &application, &versions, *keep, *dry_run, *delete_bundles)
                    .await?;
                quota(ctx, &clients.eb).await
            }
        }
    })
}

/// Every version of `application` (or of the region, without one), newest first.
pub async fn list(eb: &Client, application: Option<&str>) -> anyhow::Result<Vec<Version>> {
    let mut versions = Vec::new();
    let mut token = None;
    loop {
        let page = eb
            .describe_application_versions()
            .set_application_name(application.map(str::to_owned))
            .set_next_token(token)
            .send()
            .await
            .map_err(|err| fail("describe application versions", err))?;
        versions.extend(page.application_versions().iter().map(|v| Version {
            label: v.version_label().unwrap_or_default().to_owned(),
            created: v.date_created().and_then(|d| d.fmt(DateTimeFormat::DateTime).ok()),
            status: v.status().map(|s| s.as_str().to_owned()),
            running_on: Vec::new(),
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    versions.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(versions)
}

/// The versions prune removes: beyond the `keep` newest, and running nowhere.
pub fn to_prune(versions: &[Version], keep: usize) -> Vec<&Version> {
    versions.iter().skip(keep).filter(|v| v.running_on.is_empty()).collect()
}

async fn prune(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    versions: &[Version],
    keep: usize,
    dry_run: bool,
    delete_bundles: bool,
) -> anyhow::Result<()> {
    if keep == 0 {
        bail!("--keep 0 would leave nothing to roll back to: keep at least 1");
    }
    let doomed = to_prune(versions, keep);
    let spared = versions.iter().skip(keep).filter(|v| !v.running_on.is_empty()).count();
    ctx.ui.step(format_args!(
        "prune {application}: {} versions, keep the {keep} newest{}, delete {}",
        versions.len(),
        if spared > 0 { format!(" and {spared} older ones in use") } else { String::new() },
        doomed.len()
    ));
    for version in &doomed {
        let created = version.created.as_deref().unwrap_or("-");
        if dry_run {
            ctx.ui.info(format_args!("would delete {} ({created})", version.label));
            continue;
        }
        let deleted = clients
            .eb
            .delete_application_version()
            .application_name(application)
            .version_label(&version.label)
            .delete_source_bundle(delete_bundles)
            .send()
            .await;
        match deleted {
            Ok(_) => ctx.ui.info(format_args!("deleted {} ({created})", version.label)),
            // Being deployed somewhere this very moment: keep it, say so, go on.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_operation_in_progress_exception()) =>
            {
                ctx.ui.warn(format_args!(
                    "{} is in use by an operation in progress: kept",
                    version.label
                ));
            }
            Err(err) => {
                return Err(fail(format!("delete application version {}", version.label), err));
            }
        }
    }
    if dry_run {
        ctx.ui.info("dry run: nothing was deleted");
    }
    Ok(())
}

/// Reports how much of the region's version quota is used.
async fn quota(ctx: &Context, eb: &Client) -> anyhow::Result<()> {
    let attributes = eb.describe_account_attributes().send().await;
    let maximum = attributes.ok().and_then(|a| {
        a.resource_quotas().and_then(|q| q.application_version_quota()).and_then(|q| q.maximum())
    });
    let used = list(eb, None).await?.len();
    match maximum {
        Some(max) => ctx.ui.info(format_args!(
            "application versions in this region, all applications: {used} of {max} ({}%)",
            used * 100 / (max.max(1) as usize)
        )),
        None => ctx
            .ui
            .info(format_args!("application versions in this region, all applications: {used}")),
    }
    Ok(())
}

fn print(application: &str, versions: &[Version]) {
    if versions.is_empty() {
        println!("{application} has no application versions");
    }
    let width = versions.iter().map(|v| v.label.len()).max().unwrap_or(0);
    for version in versions {
        println!(
            "{:<width$}  {:<24}  {:<11}  {}",
            version.label,
            version.created.as_deref().unwrap_or("-"),
            version.status.as_deref().unwrap_or("-"),
            version.running_on.join(", "),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(label: &str, created: &str, running_on: &[&str]) -> Version {
        Version {
            label: label.into(),
            created: Some(created.into()),
            status: None,
            running_on: running_on.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn prune_spares_the_newest_and_anything_running() {
        let versions = [
            version("v4", "2026-11-04T00:00:00Z", &[]),
            version("v3", "2026-11-03T00:00:00Z", &[]),
            version("v2", "2026-11-02T00:00:00Z", &[]),
            version("v1", "2026-11-01T00:00:00Z", &["acme-web-prd"]),
        ];
        let doomed: Vec<&str> = to_prune(&versions, 1).iter().map(|v| v.label.as_str()).collect();
        assert_eq!(doomed, ["v3", "v2"]);
        assert!(to_prune(&versions, 10).is_empty());
    }
}
