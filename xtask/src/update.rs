//! One `UpdateEnvironment`, waited for: shared by `deploy` (a new version with its option
//! settings) and `rollback` (an earlier version). Waits for the environment to be Ready
//! first, then follows the update until it succeeded or failed (see `wait`).

use std::time::{Duration, SystemTime};

use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting;

use crate::Context;
use crate::aws::fail;
use crate::wait::{self, Judge, Pace, Stats};

pub struct Update<'a> {
    pub application: &'a str,
    pub environment: &'a str,
    pub label: &'a str,
    /// Sent in the same call as the version: one update, one deployment.
    pub options: Vec<ConfigurationOptionSetting>,
    pub timeout: Duration,
    pub allow_yellow: bool,
    pub no_wait: bool,
}

impl Update<'_> {
    pub async fn run(self, ctx: &Context, eb: &Client, stats: &mut Stats) -> anyhow::Result<()> {
        let (environment, label) = (self.environment, self.label);
        ctx.ui.step(format_args!("update {environment} to {label}"));
        let pace = Pace::default();
        wait::until_ready(ctx, eb, self.application, environment, self.timeout, pace, stats)
            .await
            .map_err(|err| wait::explain(err, environment))?;
        let since = DateTime::from(SystemTime::now() - Duration::from_secs(5));
        let options = self.options.len();
        let updated = eb
            .update_environment()
            .application_name(self.application)
            .environment_name(environment)
            .version_label(label)
            .set_option_settings((options > 0).then_some(self.options))
            .send()
            .await
            .map_err(|err| fail(format!("update environment {environment}"), err))?;
        let request_id = updated.request_id().map(str::to_owned);
        ctx.ui.info(format_args!(
            "update accepted (request {}): version {label}, {options} option settings",
            request_id.as_deref().unwrap_or("-"),
        ));
        if self.no_wait {
            ctx.ui.success(format_args!(
                "{environment} is updating to {label}; follow it with `cargo xtask status {environment}`"
            ));
            return Ok(());
        }
        let mut judge = Judge {
            label: label.to_owned(),
            request_id,
            allow_yellow: self.allow_yellow,
            seen_updating: updated.status().is_some_and(|s| s.as_str() != "Ready"),
        };
        let follow = wait::Update {
            application: self.application,
            environment,
            since,
            timeout: self.timeout,
        };
        wait::until_done(ctx, eb, &follow, &mut judge, pace, stats)
            .await
            .map_err(|err| wait::explain(err, environment))?;
        let url = updated.cname().map(|c| format!(": http://{c}/")).unwrap_or_default();
        let health = if self.allow_yellow { "acceptable" } else { "Green" };
        ctx.ui.success(format_args!("{environment} runs {label}, health {health}{url}"));
        Ok(())
    }
}
