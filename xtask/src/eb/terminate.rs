//! Terminating an environment: once it is Ready (Elastic Beanstalk refuses a busy one, and
//! one still launching: "Cannot terminate environment named … It is currently pending
//! creation."), one TerminateEnvironment (never resent blindly: `operation`), followed
//! until it is Terminated. Its application versions stay: the version can launch a new
//! environment later (EB developer guide, "Terminate an environment").

use crate::eb::Eb;
use crate::eb::follow::{self, Followed};
use crate::eb::judge::Judge;
use crate::eb::operation::{self, Kind};
use crate::eb::outcome::{self, Outcome};
use crate::eb::wait::{self, Pace};
use crate::run::Context;

pub struct Termination<'a> {
    pub environment: &'a str,
    /// Return once Elastic Beanstalk accepted it.
    pub no_wait: bool,
}

impl Termination<'_> {
    pub async fn run(self, ctx: &Context, eb: &Eb) -> anyhow::Result<()> {
        let environment = self.environment;
        ctx.ui.step(format_args!("terminate {environment}"));
        let pace = Pace::default();
        let env = wait::until_ready(ctx, eb, environment, pace).await?;
        let id = env.environment_id().map(str::to_owned);
        let doing = format!("terminate environment {environment}");
        let started = operation::start(ctx, eb, Kind::Terminate, environment, || {
            eb.call_once(ctx, &doing, || {
                eb.client_once()
                    .terminate_environment()
                    .set_environment_id(id.clone())
                    .environment_name(environment)
                    .send()
            })
        })
        .await?;
        ctx.ui.info(format_args!(
            "{environment}: termination accepted (request {}): {}",
            started.request_id.as_deref().unwrap_or("-"),
            started.status.as_deref().unwrap_or("Terminating")
        ));
        if self.no_wait {
            ctx.ui.success(format_args!(
                "{environment} is terminating; follow it with `cargo xtask status {environment}`"
            ));
            return Ok(());
        }
        let mut judge = Judge::terminated(started.request_id.clone());
        judge.since = started.since;
        judge.timeout = eb.deadline().timeout();
        let id = started.environment_id.or(id);
        let mut followed = [Followed::new(environment, id, judge)];
        follow::until_done(ctx, eb, "the termination", started.events_from, &mut followed, pace)
            .await
            .map_err(|err| outcome::explain(err, "the termination", &[environment]))?;
        let [followed] = followed;
        let application = &eb.application;
        outcome::conclude(ctx, "termination", vec![Outcome::of(followed)], |_| {
            Some(format!("is terminated; the application versions of {application} are kept"))
        })
    }
}
