//! `cargo xtask rollback [ENV] [--to LABEL]`: redeploy the newest other version that
//! succeeded on the environment (or the one given), with the same lock, wait, verdict and
//! exit statuses as `deploy`.
//!
//! Elastic Beanstalk keeps no record of the versions an environment ran, and its events
//! carry no version label (AWS's own DescribeEvents examples): the choice comes from the
//! environment's deploy history (`eb::ledger`), where every deploy recorded its outcome.
//! Option settings are left as they are: a rollback switches the version only. A blue/green
//! pair is rolled back by a swap (`pair`).

mod pair;

use anyhow::{Context as _, bail};

use crate::config::git;
use crate::config::settings::Settings;
use crate::eb::ledger::history::{self, Record};
use crate::eb::ledger::{self, Job};
use crate::eb::update::Update;
use crate::eb::{Eb, environments, versions};
use crate::flags;
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::Rollback) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    if let Some(pair) = flags.env.as_deref().and_then(|arg| settings.pair(arg)) {
        return pair::run(ctx, flags, &settings, &pair);
    }
    if flags.settle.settle.is_some() {
        bail!(
            "--settle is for a blue/green pair: name the pair (a key of \
             [workspace.metadata.deploy.blue_green])"
        );
    }
    let application = settings.application()?.to_owned();
    let target = settings.target(flags.env.as_deref(), || git::deploy_branch(ctx))?;
    let environment = target.name.as_str();
    let wait = super::wait_options(&flags.wait);
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), &application, wait.timeout)?;
    let (current, records, versions) = aws.block_on(async {
        let current = environments::describe(ctx, &eb, environment).await?;
        let current = current.version_label().unwrap_or_default().to_owned();
        let store = ledger::store(ctx, &eb, settings.bucket.as_deref()).await?;
        let records = history::read(ctx, &eb, &store, environment).await?;
        let versions = versions::list(ctx, &eb, Some(&application)).await?;
        anyhow::Ok((current, records, versions))
    })?;
    let (label, why) = choose(environment, &current, &records, flags)?;
    if !versions.iter().any(|v| v.label == label) {
        bail!(
            "application version {label} no longer exists in {application}: pick another \
             with --to (`cargo xtask history {environment}` shows what ran there)"
        );
    }
    if label == current {
        bail!("{environment} already runs {label}: nothing to roll back to");
    }
    ctx.ui.step(format_args!("roll {environment} back from {current} to {label} ({why})"));
    if flags.dry_run {
        ledger::print_plan(ctx, &application, &[environment]);
        ctx.ui.info("dry run: nothing is changed");
        return Ok(());
    }
    let commit = records
        .iter()
        .rev()
        .find(|r| r.version.as_deref() == Some(label.as_str()))
        .and_then(|r| Some((r.commit.clone()?, r.subject.clone().unwrap_or_default())));
    let job = Job {
        command: "rollback",
        environments: vec![environment.to_owned()],
        version: Some(label.clone()),
        commit,
        lock_wait: flags.lock.lock_wait,
        timeout: wait.timeout,
        no_wait: wait.no_wait,
        logs: wait.logs,
        bucket: settings.bucket.clone(),
    };
    ledger::guarded(ctx, &aws, &eb, &job, |eb| {
        let update = Update { environment, label: &label, options: Vec::new(), wait };
        aws.block_on(update.run(ctx, eb))
    })
}

/// The version to go back to, and why that one: `--to` (refused when it never succeeded on
/// the environment, unless `--force`), else the newest version other than `current` that
/// succeeded there.
fn choose(
    environment: &str,
    current: &str,
    records: &[Record],
    flags: &flags::Rollback,
) -> anyhow::Result<(String, String)> {
    let succeeded = |r: &&Record| r.releases() && r.succeeded();
    let listed = format!("`cargo xtask history {environment}` lists what ran there");
    if let Some(label) = &flags.to {
        let ran = records.iter().filter(succeeded).any(|r| r.version.as_ref() == Some(label));
        if !ran && !flags.force {
            bail!(
                "{label} never succeeded on {environment}, as far as its deploy history goes \
                 ({listed}): pick one that did, or pass --force to go to {label} anyway"
            );
        }
        return Ok((label.clone(), "given with --to".to_owned()));
    }
    if records.is_empty() {
        bail!(
            "{environment} has no deploy history yet (deployed before cargo xtask kept one): pick \
             the version with --to LABEL (`cargo xtask versions list` lists them)"
        );
    }
    let record = records
        .iter()
        .rev()
        .filter(succeeded)
        .find(|r| r.version.as_deref().is_some_and(|v| v != current))
        .with_context(|| {
            format!(
                "no version other than {current} ever succeeded on {environment} ({listed}): \
                 pick one with --to LABEL --force"
            )
        })?;
    let label = record.version.clone().unwrap_or_default();
    let why = format!(
        "the newest other version that succeeded there: {} of {} by {}",
        record.command, record.ended, record.who
    );
    Ok((label, why))
}
