//! `cargo xtask versions [list | prune --keep N]`: the application versions, and keeping
//! under Elastic Beanstalk's quota (1000 per region, shared by every application; when it
//! is reached, every deploy of the account fails).
//!
//! Prune deletes the oldest versions beyond the N newest, never one that an environment
//! runs or is deploying, and reports the quota use.

use anyhow::bail;
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use serde::{Serialize, Serializer};

use crate::aws::{self, Clients, DEFAULT_DEADLINE, Deadline, Service};
use crate::settings::Settings;
use crate::wait::utc;
use crate::{Context, flags, status};

/// One application version, newest first in every list.
#[derive(Clone, Debug, Serialize)]
pub struct Version {
    pub label: String,
    /// Shown in UTC with milliseconds (`2026-11-30T05:20:03.500Z`); sorted as a time.
    #[serde(serialize_with = "utc_or_null")]
    pub created: Option<DateTime>,
    pub status: Option<String>,
    /// Environments that run it (or are being updated to it).
    pub running_on: Vec<String>,
}

fn utc_or_null<S: Serializer>(time: &Option<DateTime>, serializer: S) -> Result<S::Ok, S::Error> {
    time.as_ref().map(utc).serialize(serializer)
}

pub fn run(ctx: &Context, flags: &flags::Versions) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    aws::runtime()?.block_on(async {
        let clients = Clients::new(&settings, &ctx.env).await?;
        let deadline = Deadline::after(DEFAULT_DEADLINE);
        let mut versions = list(ctx, &clients, Some(&application), deadline).await?;
        let environments = status::all(ctx, &clients, &application, deadline).await?;
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
            }
            flags::Versions::Prune { keep, dry_run, delete_bundles } => {
                let prune =
                    Prune { keep: *keep, dry_run: *dry_run, delete_bundles: *delete_bundles };
                prune.run(ctx, &clients, &application, &versions, deadline).await?;
            }
        }
        quota(ctx, &clients, deadline).await
    })
}

/// Every version of `application` (or of the region, without one), newest first.
pub async fn list(
    ctx: &Context,
    clients: &Clients,
    application: Option<&str>,
    deadline: Deadline,
) -> anyhow::Result<Vec<Version>> {
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .call(ctx, Service::ElasticBeanstalk, "describe application versions", deadline, || {
                clients
                    .eb
                    .describe_application_versions()
                    .set_application_name(application.map(str::to_owned))
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        versions.extend(page.application_versions().iter().map(|v| Version {
            label: v.version_label().unwrap_or_default().to_owned(),
            created: v.date_created().copied(),
            status: v.status().map(|s| s.as_str().to_owned()),
            running_on: Vec::new(),
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    newest_first(&mut versions);
    Ok(versions)
}

/// Sorts by creation time (not by its text: `03.5Z` is before `03.502Z`).
fn newest_first(versions: &mut [Version]) {
    versions.sort_by_key(|v| std::cmp::Reverse(v.created));
}

/// The versions prune removes: beyond the `keep` newest, and running nowhere.
pub fn to_prune(versions: &[Version], keep: usize) -> Vec<&Version> {
    versions.iter().skip(keep).filter(|v| v.running_on.is_empty()).collect()
}

/// What `versions prune` was asked to do.
struct Prune {
    keep: usize,
    dry_run: bool,
    delete_bundles: bool,
}

impl Prune {
    async fn run(
        &self,
        ctx: &Context,
        clients: &Clients,
        application: &str,
        versions: &[Version],
        deadline: Deadline,
    ) -> anyhow::Result<()> {
        let keep = self.keep;
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
            let created = version.created.as_ref().map(utc).unwrap_or_else(|| "-".to_owned());
            if self.dry_run {
                ctx.ui.info(format_args!("would delete {} ({created})", version.label));
                continue;
            }
            let doing = format!("delete application version {}", version.label);
            let deleted = clients
                .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
                    clients
                        .eb
                        .delete_application_version()
                        .application_name(application)
                        .version_label(&version.label)
                        .delete_source_bundle(self.delete_bundles)
                        .send()
                })
                .await;
            match deleted {
                Ok(_) => ctx.ui.info(format_args!("deleted {} ({created})", version.label)),
                // Being deployed somewhere this very moment: keep it, say so, go on.
                Err(err) if aws::AwsError::code_of(&err) == Some("OperationInProgressFailure") => {
                    ctx.ui.warn(format_args!(
                        "{} is in use by an operation in progress: kept",
                        version.label
                    ));
                }
                Err(err) => return Err(err),
            }
        }
        if self.dry_run {
            ctx.ui.info("dry run: nothing was deleted");
        }
        Ok(())
    }
}

/// Reports how much of the region's version quota is used.
async fn quota(ctx: &Context, clients: &Clients, deadline: Deadline) -> anyhow::Result<()> {
    let attributes = clients
        .call(ctx, Service::ElasticBeanstalk, "describe account attributes", deadline, || {
            clients.eb.describe_account_attributes().send()
        })
        .await;
    // Not every identity may read the quota: the count alone is still worth showing.
    let maximum = attributes.ok().and_then(|a| {
        a.resource_quotas().and_then(|q| q.application_version_quota()).and_then(|q| q.maximum())
    });
    let used = list(ctx, clients, None, deadline).await?.len();
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
            version.created.as_ref().map(utc).as_deref().unwrap_or("-"),
            version.status.as_deref().unwrap_or("-"),
            version.running_on.join(", "),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticbeanstalk::primitives::DateTimeFormat;

    fn version(label: &str, created: &str, running_on: &[&str]) -> Version {
        Version {
            label: label.into(),
            created: Some(DateTime::from_str(created, DateTimeFormat::DateTime).unwrap()),
            status: None,
            running_on: running_on.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn versions_sort_by_time_to_the_millisecond() {
        let mut versions = [
            version("a", "2026-11-30T05:20:03.5Z", &[]),
            version("b", "2026-11-30T05:20:03.502Z", &[]),
            version("c", "2026-11-30T05:20:03Z", &[]),
        ];
        newest_first(&mut versions);
        let labels: Vec<&str> = versions.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["b", "a", "c"]);
        let json = serde_json::to_value(&versions[0]).unwrap();
        assert_eq!(json["created"], "2026-11-30T05:20:03.502Z");
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
