//! Terminating an environment: once it is Ready (Elastic Beanstalk refuses a busy one, and
//! one still launching: "Cannot terminate environment named … It is currently pending
//! creation."), one TerminateEnvironment, followed until it is Terminated. Its application
//! versions stay: the version can launch a new environment later (EB developer guide,
//! "Terminate an environment").

use std::time::{Duration, SystemTime};

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::primitives::DateTime;

use crate::Context;
use crate::aws::{Clients, Deadline, Service};
use crate::eb::follow::{self, Followed};
use crate::eb::judge::Judge;
use crate::eb::outcome::{self, Outcome};
use crate::eb::wait::{self, Pace};

pub struct Termination<'a> {
    pub application: &'a str,
    pub environment: &'a str,
    pub timeout: Duration,
    /// Return once Elastic Beanstalk accepted it.
    pub no_wait: bool,
}

impl Termination<'_> {
    pub async fn run(self, ctx: &Context, clients: &Clients) -> anyhow::Result<()> {
        let (application, environment) = (self.application, self.environment);
        ctx.ui.step(format_args!("terminate {environment}"));
        let (deadline, pace) = (Deadline::after(self.timeout), Pace::default());
        wait::until_ready(ctx, clients, application, environment, deadline, pace).await?;
        let since = DateTime::from(SystemTime::now() - Duration::from_secs(5));
        let doing = format!("terminate environment {environment}");
        let answer = clients
            .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
                clients.eb.terminate_environment().environment_name(environment).send()
            })
            .await?;
        let request_id = answer.request_id().map(str::to_owned);
        ctx.ui.info(format_args!(
            "{environment}: termination accepted (request {}): {}",
            request_id.as_deref().unwrap_or("-"),
            answer.status().map_or("Terminating", |s| s.as_str())
        ));
        if self.no_wait {
            ctx.ui.success(format_args!(
                "{environment} is terminating; follow it with `cargo xtask status {environment}`"
            ));
            return Ok(());
        }
        let mut judge = Judge::terminated(request_id);
        judge.timeout = self.timeout;
        judge.seen_updating = answer.status().is_some_and(|s| s.as_str() != "Ready");
        let id = answer.environment_id().map(str::to_owned);
        let mut followed = [Followed::new(environment, id, judge)];
        let operation = (application, "the termination");
        follow::until_done(ctx, clients, operation, since, &mut followed, pace)
            .await
            .map_err(|err| outcome::explain(err, "the termination", &[environment]))?;
        let [followed] = followed;
        outcome::conclude(ctx, "termination", vec![Outcome::of(followed)], |_| {
            Some(format!("is terminated; the application versions of {application} are kept"))
        })
    }
}
