//! One `UpdateEnvironment`, waited for: shared by `deploy` (a new version with its option
//! settings) and `rollback` (an earlier version). Waits for the environment to be Ready
//! first, then follows the update until it succeeded or failed (see `wait`).
//!
//! Another deploy can make the environment busy between our Ready check and our update:
//! Elastic Beanstalk then refuses it ("… is in an invalid state for this operation. Must be
//! Ready."), and we wait for Ready again and retry, within `--timeout`.

use std::time::{Duration, SystemTime};

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting;

use crate::Context;
use crate::aws::{AwsError, Clients, Deadline, Service};
use crate::config::options::Options;
use crate::eb::judge::Judge;
use crate::eb::wait::{self, Follow, Pace};

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

impl Update<'_> {
    pub async fn run(self, ctx: &Context, clients: &Clients) -> anyhow::Result<()> {
        let (environment, label) = (self.environment, self.label);
        let url = self
            .start_and_follow(ctx, clients)
            .await
            .map_err(|err| wait::explain(err, environment))?;
        if !self.wait.no_wait {
            let health = if self.wait.allow_yellow { "acceptable" } else { "Green" };
            let url = url.map(|c| format!(": http://{c}/")).unwrap_or_default();
            ctx.ui.success(format_args!("{environment} runs {label}, health {health}{url}"));
        }
        Ok(())
    }

    /// Returns the environment's CNAME, when it has one.
    async fn start_and_follow(
        &self,
        ctx: &Context,
        clients: &Clients,
    ) -> anyhow::Result<Option<String>> {
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
        let cname = updated.cname().map(str::to_owned);
        ctx.ui.info(format_args!(
            "update accepted (request {}): version {label}, {options} option settings",
            request_id.as_deref().unwrap_or("-"),
        ));
        if self.wait.no_wait {
            ctx.ui.success(format_args!(
                "{environment} is updating to {label}; follow it with `cargo xtask status {environment}`"
            ));
            return Ok(cname);
        }
        let mut judge = Judge::new(label, request_id, self.wait.allow_yellow);
        judge.recovery = self.wait.recovery;
        judge.timeout = self.wait.timeout;
        judge.seen_updating = updated.status().is_some_and(|s| s.as_str() != "Ready");
        let follow = Follow { application, environment, since };
        wait::until_done(ctx, clients, &follow, &mut judge, pace).await?;
        Ok(cname)
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
