//! `cargo xtask rollback [ENV] [--to LABEL]`: redeploy the version the environment ran
//! before (or the one given), with the same wait, events and exit statuses as `deploy`.
//!
//! "Before" comes from the environment's events (the versions its completed updates
//! named), else from the application's versions, the newest created before the current
//! one. Option settings are left as they are: a rollback switches the version only.

use anyhow::{Context as _, bail};

use crate::aws::{Aws, Clients, Deadline};
use crate::config::git;
use crate::config::settings::Settings;
use crate::eb::update::Update;
use crate::eb::versions::{self, Version};
use crate::eb::{environments, events};
use crate::{Context, flags};

pub fn run(ctx: &Context, flags: &flags::Rollback) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    let target = settings.target(flags.env.as_deref(), || git::deploy_branch(ctx))?;
    let wait = flags.wait.options(flags.timeout);
    let aws = Aws::connect(&ctx.env, settings.aws())?;
    aws.block_on(async {
        let clients = &aws.clients;
        let environment = target.name.as_str();
        let deadline = Deadline::after(wait.timeout);
        let current =
            environments::describe(ctx, clients, &application, environment, deadline).await?;
        let current = current.version_label().unwrap_or_default().to_owned();
        let versions = versions::list(ctx, clients, Some(&application), deadline).await?;
        let (label, why) = match &flags.to {
            Some(label) => (label.clone(), "given with --to".to_owned()),
            None => {
                previous(ctx, clients, &application, environment, &current, &versions, deadline)
                    .await?
            }
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
        let update = Update {
            application: &application,
            environment,
            label: &label,
            options: Vec::new(),
            wait,
        };
        update.run(ctx, clients).await
    })
}

/// The version the environment ran before `current`, and where that was learned.
async fn previous(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    environment: &str,
    current: &str,
    versions: &[Version],
    deadline: Deadline,
) -> anyhow::Result<(String, String)> {
    let events = events::latest(ctx, clients, application, environment, 1000, deadline);
    let events = events.await?;
    // An update whose instances failed still ends "completed successfully": its request's
    // ERROR events tell, and its label is no version to go back to.
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e.severity().is_some_and(|s| matches!(s.as_str(), "ERROR" | "FATAL")))
        .filter_map(|e| e.request_id())
        .collect();
    // Newest first: the first label other than the current one is the one before it.
    let from_events = events
        .iter()
        .filter(|e| e.message().is_some_and(|m| m.contains("completed successfully")))
        .filter(|e| e.request_id().is_none_or(|r| !failed.contains(&r)))
        .filter_map(|e| e.version_label())
        .find(|label| *label != current);
    if let Some(label) = from_events {
        return Ok((
            label.to_owned(),
            format!("the version {environment} ran before, from its events"),
        ));
    }
    let created = versions.iter().find(|v| v.label == current).and_then(|v| v.created);
    let older = versions
        .iter()
        .filter(|v| v.label != current)
        .find(|v| created.is_none_or(|c| v.created.is_some_and(|d| d < c)))
        .context(format!(
            "{environment} has no earlier version to roll back to: pass --to LABEL"
        ))?;
    Ok((older.label.clone(), "the newest version created before the current one".to_owned()))
}
