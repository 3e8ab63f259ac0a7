//! A blue/green swap that only puts a verified environment live: both environments Ready,
//! the idle one verified as a deploy's verdict is made (every instance on one version,
//! deployed, Green on every health refresh for a settle time), then `SwapEnvironmentCNAMEs`
//! sent once (`operation`: a resend after a lost answer would swap back), its completion
//! event waited for by its RequestId on the service's clock, and the CNAMEs seen exchanged
//! (Describe calls may answer the state from before for a while).
//!
//! Events of a swap, from the EB developer guide's `eb swap` example: "swapEnvironmentCNAMEs
//! is starting.", "Swapping CNAMEs for environments 'A' and 'B'.", "'…' now points to
//! '…'.", "Completed swapping CNAMEs for environments 'A' and 'B'.".

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::config::pairs::Pair;
use crate::eb::events::{self, EventStream};
use crate::eb::instances::{self, Instances};
use crate::eb::judge::Snapshot;
use crate::eb::operation::{self, Kind};
use crate::eb::pair::{self, Sides};
use crate::eb::wait::{Pace, pause};
use crate::eb::{Eb, environments};
use crate::run::{Context, Failure, exit};

/// Default for `--settle`.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(30);
/// Health refreshes (about every 10 s on the service) the idle environment must pass.
const REFRESHES: usize = 3;
/// The message that ends a swap.
const COMPLETED: &str = "Completed swapping CNAMEs for environments";

/// How the idle environment is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verify {
    /// How long it must stay healthy (and at least [`REFRESHES`] health refreshes).
    pub settle: Duration,
    pub allow_yellow: bool,
}

/// Swaps the pair's CNAMEs, the idle environment verified first; returns the pair after it.
pub async fn run(
    ctx: &Context,
    eb: &Eb,
    pair: &Pair,
    sides: &Sides,
    verify: Verify,
) -> anyhow::Result<Sides> {
    let (live, idle) = (sides.live_name(), sides.idle_name());
    ready(ctx, eb, pair, sides).await?;
    if let Err((code, reason)) = check_idle(ctx, eb, idle, verify).await? {
        let live_version = sides.live_version();
        let message = format!(
            "no swap: {reason}; live: {live} still serves {live_version} (nothing was changed)"
        );
        return Err(Failure::new(code, message).into());
    }
    ctx.ui.step(format_args!("swap the CNAMEs of {idle} and {live}: {idle} goes live"));
    let (live_id, idle_id) = (sides.live.environment_id(), sides.idle.environment_id());
    let doing = format!("swap the CNAMEs of {idle} and {live}");
    // From here on the swap may happen: both sides get their history record.
    for side in [idle, live] {
        eb.journal().touched(side, true);
    }
    let started = operation::start(ctx, eb, Kind::Swap, idle, || {
        eb.call_once(ctx, &doing, || {
            eb.client_once()
                .swap_environment_cnames()
                .set_source_environment_id(idle_id.map(str::to_owned))
                .set_destination_environment_id(live_id.map(str::to_owned))
                .send()
        })
    })
    .await?;
    ctx.ui.info(format_args!(
        "swap accepted (request {})",
        started.request_id.as_deref().unwrap_or("-")
    ));
    let waited = async {
        completed(ctx, eb, pair, started.request_id.as_deref(), started.events_from).await?;
        exchanged(ctx, eb, pair, idle).await
    };
    let after = waited.await.map_err(|err| {
        if exit::code(&err) != exit::INTERRUPTED {
            return err;
        }
        err.context(format!(
            "stopped waiting; Elastic Beanstalk continues the swap on its own: see which is live \
             with `cargo xtask status {}`",
            pair.key
        ))
    })?;
    eb.journal().placed(after.live_name(), after.live_version(), true);
    eb.journal().placed(after.idle_name(), after.idle_version(), false);
    Ok(after)
}

/// The pair read again once its locks are held: `idle` must still be the idle one (someone
/// may have swapped in the console meanwhile). The live one counts as left alone until a
/// swap is sent: no history record says it was acted on.
pub async fn under_lock(ctx: &Context, eb: &Eb, pair: &Pair, idle: &str) -> anyhow::Result<Sides> {
    let sides = pair::sides(ctx, eb, pair).await?;
    if sides.idle_name() != idle {
        anyhow::bail!(
            "{idle} went live while this run waited for its lock (a swap by someone else): \
             nothing was changed; run the command again"
        );
    }
    eb.journal().touched(sides.live_name(), false);
    Ok(sides)
}

/// What a swap (and a blue/green deploy that swapped) says last.
pub fn conclude(ctx: &Context, after: &Sides) {
    ctx.ui.info(
        "clients may reach the old environment until their DNS cache expires (the CNAME's TTL \
         is 60 s; some resolvers keep it longer): keep it running for a while before \
         terminating",
    );
    let url = after.live.cname().map(|c| format!(" at http://{c}/")).unwrap_or_default();
    ctx.ui.success(format_args!(
        "{} is live{url}: runs {}; {} is idle with {}",
        after.live_name(),
        after.live_version(),
        after.idle_name(),
        after.idle_version()
    ));
}

/// Elastic Beanstalk swaps only Ready environments: say which is not, and what it is doing.
async fn ready(ctx: &Context, eb: &Eb, pair: &Pair, sides: &Sides) -> anyhow::Result<()> {
    for env in [&sides.idle, &sides.live] {
        let status = env.status().map_or("Unknown", |s| s.as_str());
        if status == "Ready" {
            continue;
        }
        let name = env.environment_name().unwrap_or_default();
        let latest = events::latest(ctx, eb, name, 1).await?;
        let doing =
            latest.first().map(|e| format!(" (latest event: {})", e.message().unwrap_or_default()));
        anyhow::bail!(
            "no swap: {name} is {status}{}; Elastic Beanstalk swaps Ready environments only: try \
             again when it is Ready (`cargo xtask status {}`)",
            doing.unwrap_or_default(),
            pair.key
        );
    }
    Ok(())
}

/// A reason not to swap, and its exit status: 3 (an instance on another version, or its
/// deployment not done), 4 (health), 1 (not Ready).
type Refusal = (i32, String);

/// Whether `idle` may go live: `Err(refusal)` at the first sign it may not. Every poll reads
/// the environment (Ready, acceptable health) and its instances (each on the environment's
/// version, deployed, acceptable); it passes once `settle` passed and the instances'
/// report was refreshed [`REFRESHES`] times (with basic health: the environment alone, as
/// often).
async fn check_idle(
    ctx: &Context,
    eb: &Eb,
    idle: &str,
    verify: Verify,
) -> anyhow::Result<Result<(), Refusal>> {
    let secs = verify.settle.as_secs();
    let colour = if verify.allow_yellow { "Green or Yellow" } else { "Green" };
    ctx.ui.step(format_args!(
        "verify {idle} before it goes live: every instance on its version, {colour} for {secs}s \
         (at least {REFRESHES} health refreshes)"
    ));
    let acceptable = |c: &str| c == "Green" || (verify.allow_yellow && c == "Yellow");
    let began = Instant::now();
    let mut refreshes = BTreeSet::new();
    let mut basic = None;
    let mut shown = 0;
    loop {
        let env = Snapshot::of(&environments::describe(ctx, eb, idle).await?);
        let label = env.version_label.clone().unwrap_or_default();
        if env.status != "Ready" {
            return Ok(Err((1, format!("{idle} is {}", env.status))));
        }
        if !acceptable(&env.health) {
            let causes = environments::health_causes(ctx, eb, idle).await?;
            return Ok(Err((exit::UNHEALTHY, unhealthy(idle, &env.health, &causes))));
        }
        let count = match instances::report(ctx, eb, idle).await? {
            Instances::Basic => {
                let polls = basic.get_or_insert(0);
                *polls += 1;
                *polls
            }
            Instances::Reported(report) => {
                if report.instances.is_empty() {
                    return Ok(Err((exit::UNHEALTHY, format!("{idle} reports no instance"))));
                }
                for i in &report.instances {
                    let runs = i.label.as_deref().unwrap_or("no version");
                    if runs != label {
                        let why = format!("{} of {idle} runs {runs}, not {label}", i.id);
                        return Ok(Err((exit::DEPLOY_FAILED, why)));
                    }
                    let deployment = i.deployment.as_deref().unwrap_or("Unknown");
                    if deployment != "Deployed" {
                        let why = format!(
                            "the deployment of {label} on {} of {idle} is {deployment}",
                            i.id
                        );
                        return Ok(Err((exit::DEPLOY_FAILED, why)));
                    }
                    if !acceptable(&i.color) {
                        let what = format!("{} of {idle}", i.id);
                        return Ok(Err((exit::UNHEALTHY, unhealthy(&what, &i.color, &i.causes))));
                    }
                }
                refreshes.insert(report.refreshed_at.and_then(|t| t.to_millis().ok()));
                refreshes.len()
            }
        };
        // One line per refresh passed (about every 10 s on AWS): progress in a CI log too.
        if count > shown {
            shown = count;
            let what = match basic {
                Some(_) => format!("check {count} (basic health): {label}"),
                None => format!("health refresh {count}: every instance on {label}"),
            };
            let secs = began.elapsed().as_secs();
            ctx.ui.info(format_args!("[{secs:>4}s] {idle}: {what}, {}", env.health));
        }
        if began.elapsed() >= verify.settle && count >= REFRESHES {
            let how = if basic.is_some() {
                "basic health: the environment's colour only"
            } else {
                "every instance"
            };
            ctx.ui.info(format_args!(
                "{idle} runs {label}, {} for {}s over {count} health refreshes ({how})",
                env.health,
                began.elapsed().as_secs()
            ));
            return Ok(Ok(()));
        }
        if eb.deadline().passed() {
            return Err(Failure::new(
                exit::TIMED_OUT,
                format!(
                    "no swap: --timeout ran out while verifying {idle} ({count} health refreshes \
                     seen): nothing was changed; raise --timeout or lower --settle"
                ),
            )
            .into());
        }
        let every = Pace::default().every.min(eb.deadline().remaining());
        pause(ctx, every, &format!("the verification of {idle}")).await?;
    }
}

fn unhealthy(what: &str, colour: &str, causes: &[String]) -> String {
    match causes {
        [] => format!("{what} is {colour}"),
        causes => format!("{what} is {colour}: {}", causes.join("; ")),
    }
}

/// Waits for the swap's completion event (by its RequestId, from `from` on the service's
/// clock), showing its events; an ERROR of it fails.
async fn completed(
    ctx: &Context,
    eb: &Eb,
    pair: &Pair,
    request_id: Option<&str>,
    from: aws_sdk_elasticbeanstalk::primitives::DateTime,
) -> anyhow::Result<()> {
    let mut stream = EventStream::new(None, from);
    loop {
        for event in stream.next(ctx, eb).await? {
            // Without a RequestId of ours (never seen), any swap's events are taken.
            let ours = match (request_id, event.request_id.as_deref()) {
                (Some(mine), Some(theirs)) => mine == theirs,
                (None, Some(_)) => event.message.contains("CNAMEs"),
                (_, None) => false,
            };
            if !ours {
                continue;
            }
            ctx.ui.info(event.line());
            if matches!(event.severity.as_str(), "ERROR" | "FATAL") {
                return Err(Failure::new(
                    exit::DEPLOY_FAILED,
                    format!("the swap failed: Elastic Beanstalk reported: {}", event.message),
                )
                .into());
            }
            if event.message.starts_with(COMPLETED) {
                return Ok(());
            }
        }
        out_of_time(eb, pair, "its completion event")?;
        let every = Pace::default().every.min(eb.deadline().remaining());
        pause(ctx, every, "the swap").await?;
    }
}

/// Waits until Elastic Beanstalk describes `idle` as live and both Ready: Describe calls
/// may answer the CNAMEs from before the swap for a while after it completed.
async fn exchanged(ctx: &Context, eb: &Eb, pair: &Pair, idle: &str) -> anyhow::Result<Sides> {
    loop {
        let sides = pair::sides(ctx, eb, pair).await;
        if let Ok(sides) = sides {
            let ready = [&sides.live, &sides.idle]
                .iter()
                .all(|e| e.status().is_some_and(|s| s.as_str() == "Ready"));
            if sides.live_name() == idle && ready {
                return Ok(sides);
            }
        }
        out_of_time(eb, pair, "the CNAMEs exchanged")?;
        let every = Pace::default().every.min(eb.deadline().remaining());
        pause(ctx, every, "the swap").await?;
    }
}

fn out_of_time(eb: &Eb, pair: &Pair, waiting_for: &str) -> anyhow::Result<()> {
    if !eb.deadline().passed() {
        return Ok(());
    }
    Err(Failure::new(
        exit::TIMED_OUT,
        format!(
            "the swap did not show {waiting_for} within {}s (--timeout): Elastic Beanstalk may \
             still carry it out; see which is live with `cargo xtask status {}`",
            eb.deadline().timeout().as_secs(),
            pair.key
        ),
    )
    .into())
}
