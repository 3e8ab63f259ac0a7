//! `UpdateEnvironment`, waited for: shared by `deploy` (a new version with its option
//! settings, to one environment or several at once) and `rollback` (an earlier version).
//! Waits for each environment to be Ready first, then follows the updates until each
//! succeeded or failed (see `follow`), all within the command's one deadline.
//!
//! Another deploy can make the environment busy between our Ready check and our update:
//! Elastic Beanstalk then refuses it ("… is in an invalid state for this operation. Must be
//! Ready."), and we wait for Ready again and send it again. That refusal is an answer: the
//! update was not carried out. A lost answer is another matter (see `operation`).

use std::time::Duration;

use aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting;
use futures_util::future::join_all;

use crate::aws::AwsError;
use crate::config::options::Options;
use crate::eb::Eb;
use crate::eb::follow::{self, Followed};
use crate::eb::judge::Judge;
use crate::eb::operation::{self, Kind, Started};
use crate::eb::outcome::{self, Outcome};
use crate::eb::wait::{self, Pace};
use crate::run::exit::OutOfTime;
use crate::run::{Context, Failure, exit};

/// Default for `--timeout`: how long the command may spend on Elastic Beanstalk in all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default for `--recovery-window`.
pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(60);

/// How to wait for an update (or a launch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitOptions {
    /// The command's one deadline on Elastic Beanstalk, from its first call.
    pub timeout: Duration,
    /// How long health may take to become acceptable once our version is Ready.
    pub recovery: Duration,
    pub allow_yellow: bool,
    /// Return once the update is accepted.
    pub no_wait: bool,
    /// On a failed deploy, show the lines of the instances' logs that explain it.
    pub logs: bool,
}

impl WaitOptions {
    /// The judge of an operation of `label` that started as `started`.
    pub fn judge(&self, label: &str, started: &Started) -> Judge {
        let mut judge = Judge::new(label, started.request_id.clone(), self.allow_yellow);
        judge.recovery = self.recovery;
        judge.timeout = self.timeout;
        judge.since = started.since;
        judge
    }
}

pub struct Update<'a> {
    pub environment: &'a str,
    pub label: &'a str,
    /// Sent in the same call as the version: one update, one deployment.
    pub options: Vec<ConfigurationOptionSetting>,
    pub wait: WaitOptions,
}

impl Update<'_> {
    /// This update alone: as [`run_all`] with one.
    pub async fn run(self, ctx: &Context, eb: &Eb) -> anyhow::Result<()> {
        run_all(ctx, eb, vec![self]).await
    }

    /// Waits until the environment is Ready, then sends the update (again, while another
    /// deploy makes it busy), once.
    async fn start(&self, ctx: &Context, eb: &Eb) -> anyhow::Result<Started> {
        let (environment, label) = (self.environment, self.label);
        ctx.ui.step(format_args!("update {environment} to {label}"));
        let pace = Pace::default();
        let options = self.options.len();
        let doing = format!("update environment {environment}");
        let started = loop {
            wait::until_ready(ctx, eb, environment, pace).await?;
            let sent = operation::start(ctx, eb, Kind::Update, environment, || {
                eb.call_once(ctx, &doing, || {
                    eb.client_once()
                        .update_environment()
                        .application_name(&eb.application)
                        .environment_name(environment)
                        .version_label(label)
                        .set_option_settings((options > 0).then(|| self.options.clone()))
                        .send()
                })
            })
            .await;
            match sent {
                Ok(started) => break started,
                Err(err) if is_busy(&err) && !eb.deadline().passed() => {
                    ctx.ui.info(format_args!(
                        "{environment} turned busy before our update (another deploy?): waiting \
                         for it to be Ready again"
                    ));
                    let again = pace.every.min(eb.deadline().remaining());
                    wait::pause(ctx, again, "waiting for the environment to be Ready").await?;
                }
                Err(err) => return Err(err),
            }
        };
        ctx.ui.info(format_args!(
            "{environment}: update accepted (request {}): version {label}, {options} option settings",
            started.request_id.as_deref().unwrap_or("-"),
        ));
        Ok(started)
    }
}

/// The updates, one per environment, of one version: each started as soon as its
/// environment is Ready, all followed together (one event stream), then concluded: the
/// worst outcome is the result, and with several environments a summary says which
/// succeeded, whatever happened (the deadline too). Ctrl-C stops the waiting only.
pub async fn run_all(ctx: &Context, eb: &Eb, updates: Vec<Update<'_>>) -> anyhow::Result<()> {
    let Some(first) = updates.first() else { return Ok(()) };
    let (label, options) = (first.label, first.wait);
    let names: Vec<&str> = updates.iter().map(|u| u.environment).collect();
    let mut starts = join_all(updates.iter().map(|u| u.start(ctx, eb))).await;
    let interrupted =
        |s: &anyhow::Result<Started>| s.as_ref().is_err_and(|e| exit::code(e) == exit::INTERRUPTED);
    if let Some(i) = starts.iter().position(interrupted)
        && let Err(err) = starts.swap_remove(i)
    {
        return Err(outcome::explain(err, "the deployment", &names));
    }
    let mut outcomes = Vec::new();
    let mut followed = Vec::new();
    let mut since = None;
    for (update, started) in updates.iter().zip(starts) {
        match started {
            Err(err) => outcomes.push(Outcome::new(update.environment, Err(before_update(err)))),
            Ok(_) if options.no_wait => outcomes.push(Outcome::new(update.environment, Ok(()))),
            Ok(started) => {
                let from = started.events_from;
                since = Some(
                    since.map_or(from, |s: aws_sdk_elasticbeanstalk::primitives::DateTime| {
                        s.min(from)
                    }),
                );
                let judge = options.judge(label, &started);
                followed.push(Followed::new(update.environment, started.environment_id, judge));
            }
        }
    }
    if let Some(since) = since {
        follow::until_done(ctx, eb, "the deployment", since, &mut followed, Pace::default())
            .await
            .map_err(|err| outcome::explain(err, "the deployment", &names))?;
    }
    outcomes.extend(followed.into_iter().map(Outcome::of));
    // In the order they were given.
    outcomes.sort_by_key(|o| names.iter().position(|n| *n == o.environment));
    // Each environment's own status, when there are several: alone, the command's status
    // is its own (and a blue/green deploy goes on after its update).
    if outcomes.len() > 1 {
        for o in &outcomes {
            eb.journal().ended(&o.environment, o.result.as_ref().map_or_else(exit::code, |()| 0));
        }
    }
    if options.no_wait {
        return outcome::conclude(ctx, &format!("update to {label}"), outcomes, |o| {
            let environment = &o.environment;
            Some(format!(
                "is updating to {label}; follow it with `cargo xtask status {environment}`"
            ))
        });
    }
    let health = if options.allow_yellow { "acceptable" } else { "Green" };
    outcome::conclude(ctx, &format!("deploy of {label}"), outcomes, |o| {
        let url = o.url.as_ref().map(|u| format!(": {u}")).unwrap_or_default();
        Some(format!("runs {label}, health {health}{url}"))
    })
}

/// An update that did not start: out of time before it, the environment's own verdict.
fn before_update(err: anyhow::Error) -> anyhow::Error {
    match err.downcast::<OutOfTime>() {
        Ok(out) => Failure::new(exit::TIMED_OUT, format!("{out}: the update was not sent")).into(),
        Err(err) => err,
    }
}

/// The option settings of the options template, as UpdateEnvironment takes them.
pub fn option_settings(options: &Options) -> Vec<ConfigurationOptionSetting> {
    options
        .0
        .iter()
        .map(|o| {
            ConfigurationOptionSetting::builder()
                .namespace(&o.namespace)
                .option_name(&o.option_name)
                .set_resource_name(o.resource_name.clone())
                .value(&o.value)
                .build()
        })
        .collect()
}

/// Elastic Beanstalk refused the update because the environment is busy.
fn is_busy(err: &anyhow::Error) -> bool {
    err.downcast_ref::<AwsError>().is_some_and(|e| {
        e.code.as_deref() == Some("InvalidParameterValue")
            && e.message.as_deref().is_some_and(|m| m.contains("Must be Ready"))
    })
}
