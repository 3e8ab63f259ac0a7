//! `cargo xtask rollback PAIR`: put the previous live version of a blue/green pair back live.
//! When the idle environment still runs it (the usual case after a swap), that is one swap
//! back: seconds, no redeploy. Otherwise the previous version is deployed to the idle one
//! (the version only, as any rollback), verified, and swapped live.
//!
//! The previous live version comes from the two environments' deploy histories: the
//! version of the newest side a swap took out of live, other than the one live now; without
//! one (a pair swapped by hand only), the live environment's own history, as a plain
//! rollback reads it.

use anyhow::{Context as _, bail};

use crate::config::pairs::Pair;
use crate::config::settings::Settings;
use crate::eb::ledger::history::{self, Record};
use crate::eb::ledger::{self, Job};
use crate::eb::update::Update;
use crate::eb::{Eb, pair, swap, versions};
use crate::flags;
use crate::run::Context;

pub fn run(
    ctx: &Context,
    flags: &flags::Rollback,
    settings: &Settings,
    pair: &Pair,
) -> anyhow::Result<()> {
    if flags.wait.no_wait {
        bail!(
            "--no-wait does not go with blue/green pair {}: the swap needs the idle side's \
             verdict first",
            pair.key
        );
    }
    let application = settings.application()?.to_owned();
    let wait = super::super::wait_options(&flags.wait);
    let verify = super::super::verify_options(&flags.settle, flags.wait.allow_yellow);
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), &application, wait.timeout)?;
    let (sides, records, versions) = aws.block_on(async {
        let sides = pair::sides(ctx, &eb, pair).await?;
        let store = ledger::store(ctx, &eb, settings.bucket.as_deref()).await?;
        let mut records = Vec::new();
        for name in pair.names() {
            let read = history::read(ctx, &eb, &store, name).await?;
            records.extend(read.into_iter().map(|r| (name.to_owned(), r)));
        }
        // One timeline: the times are UTC, RFC 3339, of one width.
        records.sort_by(|(_, a), (_, b)| a.ended.cmp(&b.ended));
        let versions = versions::list(ctx, &eb, Some(&application)).await?;
        anyhow::Ok((sides, records, versions))
    })?;
    let (live, idle) = (sides.live_name().to_owned(), sides.idle_name().to_owned());
    let current = sides.live_version().to_owned();
    let (label, why) = previous(pair, &live, &current, &records, flags)?;
    if label == current {
        bail!("{live}, live in pair {}, already runs {label}: nothing to roll back to", pair.key);
    }
    let swap_back = sides.idle_version() == label;
    if !swap_back && !versions.iter().any(|v| v.label == label) {
        bail!(
            "application version {label} no longer exists in {application}: pick another with \
             --to (`cargo xtask history {live}` shows what ran there)"
        );
    }
    let how = if swap_back {
        format!("swap back: {idle} still runs {label}, no redeploy")
    } else {
        format!("deploy {label} to the idle {idle}, verify it, then swap")
    };
    ctx.ui
        .step(format_args!("roll pair {} back from {current} to {label}: {how} ({why})", pair.key));
    if flags.dry_run {
        ledger::print_plan(ctx, &application, &pair.names());
        super::super::print_swap_plan(ctx, &sides, verify);
        ctx.ui.info("dry run: nothing is changed");
        return Ok(());
    }
    let commit = records
        .iter()
        .rev()
        .find(|(_, r)| r.version.as_deref() == Some(label.as_str()) && r.commit.is_some())
        .and_then(|(_, r)| Some((r.commit.clone()?, r.subject.clone().unwrap_or_default())));
    let job = Job {
        command: "rollback --blue-green",
        environments: pair.names().map(str::to_owned).to_vec(),
        version: Some(label.clone()),
        commit,
        lock_wait: flags.lock.lock_wait,
        timeout: wait.timeout,
        no_wait: false,
        logs: wait.logs,
        bucket: settings.bucket.clone(),
    };
    ledger::guarded(ctx, &aws, &eb, &job, |eb| {
        aws.block_on(async {
            let mut sides = swap::under_lock(ctx, eb, pair, &idle).await?;
            if !swap_back {
                eb.journal().placed(&idle, &label, false);
                let update =
                    Update { environment: &idle, label: &label, options: Vec::new(), wait };
                update.run(ctx, eb).await?;
                sides = pair::sides(ctx, eb, pair).await?;
            }
            let after = swap::run(ctx, eb, pair, &sides, verify).await?;
            swap::conclude(ctx, &after);
            Ok(())
        })
    })
}

/// The version to put back live, and why that one.
fn previous(
    pair: &Pair,
    live: &str,
    current: &str,
    records: &[(String, Record)],
    flags: &flags::Rollback,
) -> anyhow::Result<(String, String)> {
    let ran = |label: &str| {
        records
            .iter()
            .any(|(_, r)| r.releases() && r.succeeded() && r.version.as_deref() == Some(label))
    };
    if let Some(label) = &flags.to {
        if !ran(label) && !flags.force {
            bail!(
                "{label} never succeeded on pair {} as far as its deploy history goes (`cargo \
                 xtask history ENV` for each of {}): pick one that did, or pass --force",
                pair.key,
                pair.names().join(", ")
            );
        }
        return Ok((label.clone(), "given with --to".to_owned()));
    }
    // The side a swap took out of live records the version it ran: live until then.
    let went_idle = records.iter().rev().find(|(_, r)| {
        r.command == "swap"
            && r.live == Some(false)
            && r.succeeded()
            && r.version.as_deref().is_some_and(|v| v != current)
    });
    if let Some((environment, record)) = went_idle {
        let label = record.version.clone().unwrap_or_default();
        let why = format!(
            "live until {environment} went idle with it at {} (a swap by {})",
            record.ended, record.who
        );
        return Ok((label, why));
    }
    let (_, record) = records
        .iter()
        .rev()
        .filter(|(environment, r)| environment == live && r.releases() && r.succeeded())
        .find(|(_, r)| r.version.as_deref().is_some_and(|v| v != current))
        .with_context(|| {
            format!(
                "no version other than {current} ever went live in pair {}, nor succeeded on \
                 {live}, as far as their deploy histories go: pick one with --to LABEL --force",
                pair.key
            )
        })?;
    let label = record.version.clone().unwrap_or_default();
    let why = format!("the newest other version that succeeded on {live}: {}", record.ended);
    Ok((label, why))
}
