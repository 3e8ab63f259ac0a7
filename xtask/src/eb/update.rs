//! `UpdateEnvironment`, waited for: shared by `deploy` (a new version with its option
//! settings, to one environment or several at once) and `rollback` (an earlier version).
//! Waits for each environment to be Ready first, then follows the updates until each
//! succeeded or failed (see `follow`).
//!
//! Another deploy can make the environment busy between our Ready check and our update:
//! Elastic Beanstalk then refuses it ("… is in an invalid state for this operation. Must be
//! Ready."), and we wait for Ready again and retry, within `--timeout`.

use std::time::{Duration, SystemTime};

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting;

use futures_util::future::join_all;

use crate::aws::{AwsError, Clients, Deadline, Service};
use crate::config::options::Options;
use crate::eb::follow::{self, Followed};
use crate::eb::judge::Judge;
use crate::eb::outcome::{self, Outcome};
use crate::eb::wait::{self, Pace};
use crate::{Context, exit};

/// Default for `--timeout`: how long the environment may take to be Ready, and then to
/// finish the update.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default for `--recovery-window`.
pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(60);

/// How to wait for an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitOptions {
    /// For the environment to be Ready, then again for the update.
    pub timeout: Duration,
    /// How long health may take to become acceptable once our version is Ready.
    pub recovery: Duration,
    pub allow_yellow: bool,
    /// Return once the update is accepted.
    pub no_wait: bool,
}

pub struct Update<'a> {
    pub application: &'a str,
    pub environment: &'a str,
    pub label: &'a str,
    /// Sent in the same call as the version: one update, one deployment.
    pub options: Vec<ConfigurationOptionSetting>,
    pub wait: WaitOptions,
}

/// An update Elastic Beanstalk accepted.
struct Started {
    id: Option<String>,
    request_id: Option<String>,
    since: DateTime,
    seen_updating: bool,
}

impl Update<'_> {
    /// This update alone: as [`run_all`] with one.
    pub async fn run(self, ctx: &Context, clients: &Clients) -> anyhow::Result<()> {
        run_all(ctx, clients, vec![self]).await
    }

    /// Waits until the environment is Ready, then sends the update (again, while another
    /// deploy makes it busy), within `--timeout`.
    async fn start(&self, ctx: &Context, clients: &Clients) -> anyhow::Result<Started> {
        let (application, environment, label) = (self.application, self.environment, self.label);
        ctx.ui.step(format_args!("update {environment} to {label}"));
        let pace = Pace::default();
        let deadline = Deadline::after(self.wait.timeout);
        let options = self.options.len();
        let doing = format!("update environment {environment}");
        let (updated, since) = loop {
            wait::until_ready(ctx, clients, application, environment, deadline, pace).await?;
            // A little before now: Elastic Beanstalk's clock is not ours.
            let since = DateTime::from(SystemTime::now() - Duration::from_secs(5));
            let sent = clients
                .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
                    clients
                        .eb
                        .update_environment()
                        .application_name(application)
                        .environment_name(environment)
                        .version_label(label)
                        .set_option_settings((options > 0).then(|| self.options.clone()))
                        .send()
                })
                .await;
            match sent {
                Ok(updated) => break (updated, since),
                Err(err) if is_busy(&err) && !deadline.passed() => {
                    ctx.ui.info(format_args!(
                        "{environment} turned busy before our update (another deploy?): waiting \
                         for it to be Ready again"
                    ));
                    let again = pace.every.min(deadline.remaining());
                    wait::pause(ctx, again, "waiting for the environment to be Ready").await?;
                }
                Err(err) => return Err(err),
            }
        };
        let request_id = updated.request_id().map(str::to_owned);
        ctx.ui.info(format_args!(
            "{environment}: update accepted (request {}): version {label}, {options} option settings",
            request_id.as_deref().unwrap_or("-"),
        ));
        Ok(Started {
            id: updated.environment_id().map(str::to_owned),
            request_id,
            since,
            seen_updating: updated.status().is_some_and(|s| s.as_str() != "Ready"),
        })
    }
}

/// The updates, one per environment, of one version: each started as soon as its
/// environment is Ready, all followed together (one event stream), then concluded: the
/// worst outcome is the result, and with several environments a summary says which
/// succeeded. Ctrl-C stops the waiting only.
pub async fn run_all(
    ctx: &Context,
    clients: &Clients,
    updates: Vec<Update<'_>>,
) -> anyhow::Result<()> {
    let Some(first) = updates.first() else { return Ok(()) };
    let (application, label, options) = (first.application, first.label, first.wait);
    let names: Vec<&str> = updates.iter().map(|u| u.environment).collect();
    let mut starts = join_all(updates.iter().map(|u| u.start(ctx, clients))).await;
    let interrupted = |s: &anyhow::Result<Started>| {
        s.as_ref().is_err_and(|e| crate::exit_code(e) == exit::INTERRUPTED)
    };
    if let Some(i) = starts.iter().position(interrupted)
        && let Err(err) = starts.swap_remove(i)
    {
        return Err(outcome::explain(err, "the deployment", &names));
    }
    let mut outcomes = Vec::new();
    let mut followed = Vec::new();
    let mut since: Option<DateTime> = None;
    for (update, started) in updates.iter().zip(starts) {
        match started {
            Err(err) => outcomes.push(Outcome::new(update.environment, Err(err))),
            Ok(_) if options.no_wait => outcomes.push(Outcome::new(update.environment, Ok(()))),
            Ok(started) => {
                let mut judge = Judge::new(label, started.request_id, options.allow_yellow);
                judge.recovery = options.recovery;
                judge.timeout = options.timeout;
                judge.seen_updating = started.seen_updating;
                since = Some(since.map_or(started.since, |s| s.min(started.since)));
                followed.push(Followed::new(update.environment, started.id, judge));
            }
        }
    }
    if let Some(since) = since {
        let pace = Pace::default();
        let operation = (application, "the deployment");
        follow::until_done(ctx, clients, operation, since, &mut followed, pace)
            .await
            .map_err(|err| outcome::explain(err, "the deployment", &names))?;
    }
    outcomes.extend(followed.into_iter().map(Outcome::of));
    // In the order they were given.
    outcomes.sort_by_key(|o| names.iter().position(|n| *n == o.environment));
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
