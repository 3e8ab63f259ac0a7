//! Waiting for an Elastic Beanstalk environment: until it is `Ready` before an update, and
//! until the update succeeded or failed after it ([`Judge`] decides), streaming its events
//! and health as they arrive. The polling is polite (about one call per second) and stops on
//! Ctrl-C; throttling is waited out by [`Clients::call`].

use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;

use crate::aws::{Clients, Deadline};
use crate::eb::environments::{describe, health_causes};
use crate::eb::events::EventStream;
use crate::eb::judge::{Judge, Snapshot, Verdict};
use crate::run::interrupt::Interrupted;
use crate::{Context, Failure, exit};

/// Polling cadence: a describe and an events call per round, so one call per 1.25 s on
/// average.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub every: Duration,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace { every: Duration::from_millis(2500) }
    }
}

/// Waits until the environment is `Ready` (it may be busy with another update), until
/// `deadline`. Returns what it was when ready.
pub async fn until_ready(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    environment: &str,
    deadline: Deadline,
    pace: Pace,
) -> anyhow::Result<EnvironmentDescription> {
    let mut said = String::new();
    loop {
        let env = describe(ctx, clients, application, environment, deadline).await?;
        let status = env.status().map(|s| s.as_str()).unwrap_or("Unknown");
        if status == "Ready" {
            return Ok(env);
        }
        if status != said {
            ctx.ui.info(format_args!(
                "{environment} is {status}: waiting until it is Ready (up to {}s)",
                deadline.remaining().as_secs()
            ));
            said = status.to_owned();
        }
        pause(ctx, pace.every.min(deadline.remaining()), "waiting for the environment to be Ready")
            .await?;
        if deadline.passed() {
            return Err(Failure::new(
                exit::TIMED_OUT,
                format!(
                    "{environment} stayed {said} for {}s before the update: nothing was changed; \
                     try again when it is Ready, or raise --timeout",
                    deadline.timeout().as_secs()
                ),
            )
            .into());
        }
    }
}

/// The update being followed.
pub struct Follow<'a> {
    pub application: &'a str,
    pub environment: &'a str,
    /// Events from this moment on are shown.
    pub since: DateTime,
}

/// Follows the update until the judge decides, printing new events and health as they
/// come.
pub async fn until_done(
    ctx: &Context,
    clients: &Clients,
    follow: &Follow<'_>,
    judge: &mut Judge,
    pace: Pace,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = Deadline::after(judge.timeout);
    let mut events = EventStream::new(follow.application, follow.environment, follow.since);
    let mut last = None::<Snapshot>;
    let mut last_said = Instant::now();
    let mut causes: Vec<String> = Vec::new();
    let mut window_said = false;
    loop {
        let env = describe(ctx, clients, follow.application, follow.environment, deadline).await?;
        let now = Snapshot::of(&env);
        let health_changed = last.as_ref().is_none_or(|l| l.health != now.health);
        if last.as_ref() != Some(&now) || last_said.elapsed() > Duration::from_secs(30) {
            show_state(ctx, &now, started.elapsed());
            last_said = Instant::now();
        }
        for event in events.next(ctx, clients, deadline).await? {
            if judge.is_others(&event) {
                continue;
            }
            ctx.ui.info(event.line());
            judge.event(&event, started.elapsed());
        }
        let verdict = judge.snapshot(&now, started.elapsed());
        if let Some(end) = judge.window_end() {
            // Causes when the window opens, and whenever health changes within it.
            let ask_causes = (!window_said || health_changed) && verdict == Verdict::Waiting;
            if !window_said {
                ctx.ui.info(format_args!(
                    "{} runs {}, health {}: waiting up to {}s for it to recover",
                    follow.environment,
                    judge.label,
                    now.health,
                    end.saturating_sub(started.elapsed()).as_secs_f64().round()
                ));
                window_said = true;
            }
            if ask_causes {
                causes = health_causes(ctx, clients, follow.environment, deadline).await?;
                for cause in &causes {
                    ctx.ui.info(format_args!("  cause: {cause}"));
                }
            }
        }
        last = Some(now.clone());
        match verdict {
            Verdict::Deployed => return Ok(()),
            Verdict::Failed(why) => return Err(Failure::new(exit::DEPLOY_FAILED, why).into()),
            Verdict::Unhealthy(why) => {
                return Err(Failure::new(exit::UNHEALTHY, unhealthy(&why, &causes)).into());
            }
            Verdict::Waiting => {}
        }
        let next = pace.every.min(deadline.remaining());
        pause(ctx, next, "following the deployment").await?;
        if deadline.passed() {
            // The recovery window ends with the timeout: Red then is unhealthy.
            if let Verdict::Unhealthy(why) = judge.snapshot(&now, judge.timeout) {
                return Err(Failure::new(exit::UNHEALTHY, unhealthy(&why, &causes)).into());
            }
            let yellow = if now.health == "Yellow" && judge.window_end().is_some() {
                " (pass --allow-yellow to accept Yellow)"
            } else {
                ""
            };
            return Err(Failure::new(
                exit::TIMED_OUT,
                format!(
                    "{} did not finish within {}s ({}, health {}{yellow}); Elastic Beanstalk goes \
                     on: check it with `cargo xtask status {}`",
                    follow.environment,
                    judge.timeout.as_secs(),
                    now.status,
                    now.health,
                    follow.environment
                ),
            )
            .into());
        }
    }
}

/// An unhealthy verdict with enhanced health's causes, when known.
fn unhealthy(why: &str, causes: &[String]) -> String {
    if causes.is_empty() { why.to_owned() } else { format!("{why} ({})", causes.join("; ")) }
}

fn show_state(ctx: &Context, now: &Snapshot, elapsed: Duration) {
    let version = now.version_label.as_deref().unwrap_or("-");
    ctx.ui.info(format_args!(
        "[{:>4}s] {} · health {} · version {version}",
        elapsed.as_secs(),
        now.status,
        if now.health.is_empty() { "-" } else { &now.health }
    ));
}

/// Sleeps `every`, returning early with an error on Ctrl-C: Elastic Beanstalk goes on
/// without us, and the message says how to follow it.
pub async fn pause(ctx: &Context, every: Duration, during: &str) -> anyhow::Result<()> {
    tokio::select! {
        () = tokio::time::sleep(every) => Ok(()),
        () = ctx.interrupt.signalled() => Err(Interrupted { during: during.to_owned() }.into()),
    }
}

/// Converts a wait error: Ctrl-C gets the hint on how to follow the deployment.
pub fn explain(err: anyhow::Error, environment: &str) -> anyhow::Error {
    if err.is::<Interrupted>() {
        err.context(format!(
            "stopped waiting; Elastic Beanstalk continues the deployment on its own: check it \
             with `cargo xtask status {environment}`"
        ))
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eb::testing::{clients, ctx, environment, event_at};
    use aws_sdk_elasticbeanstalk::Client;
    use aws_sdk_elasticbeanstalk::operation::describe_environment_health::DescribeEnvironmentHealthOutput;
    use aws_sdk_elasticbeanstalk::operation::describe_environments::DescribeEnvironmentsOutput;
    use aws_sdk_elasticbeanstalk::operation::describe_events::DescribeEventsOutput;
    use aws_sdk_elasticbeanstalk::types::EventSeverity;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn follow() -> Follow<'static> {
        Follow {
            application: "acme-web",
            environment: "acme-web-stg",
            since: DateTime::from_secs(0),
        }
    }

    /// One event of the update request `req-1`.
    fn event_of_req_1(severity: EventSeverity, message: &str) -> DescribeEventsOutput {
        DescribeEventsOutput::builder()
            .events(event_at(1_000, severity, message, Some("req-1")))
            .build()
    }

    const FAST: Pace = Pace { every: Duration::from_millis(1) };

    fn judge() -> Judge {
        let mut judge = Judge::new("v2", Some("req-1".into()), false);
        judge.seen_updating = true;
        judge
    }

    #[tokio::test]
    async fn follows_updating_to_ready_green_through_the_sdk() {
        let describe = mock!(Client::describe_environments)
            .sequence()
            .output(|| environment("Updating", "Grey", "v2"))
            .times(2)
            .output(|| environment("Ready", "Green", "v2"))
            .build();
        let events = mock!(Client::describe_events).then_output(|| {
            event_of_req_1(EventSeverity::Info, "Environment update completed successfully.")
        });
        let eb = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe, &events]);
        let mut judge = judge();
        until_done(&ctx(), &clients(eb), &follow(), &mut judge, FAST).await.unwrap();
        assert_eq!(describe.num_calls(), 3);
        assert_eq!(events.num_calls(), 3, "one DescribeEvents a round");
    }

    #[tokio::test]
    async fn an_error_event_of_our_request_fails_even_when_the_environment_then_looks_fine() {
        // A failed instance deployment, as Elastic Beanstalk reports it: ERROR events, then
        // "completed successfully", Ready, our label and Green.
        let describe = mock!(Client::describe_environments)
            .sequence()
            .output(|| environment("Updating", "Grey", "v2"))
            .output(|| environment("Ready", "Green", "v2"))
            .build();
        let events = mock!(Client::describe_events)
            .sequence()
            .output(|| {
                event_of_req_1(
                    EventSeverity::Error,
                    "Instance deployment failed. For details, see 'eb-engine.log'.",
                )
            })
            .output(|| {
                event_of_req_1(EventSeverity::Info, "Environment update completed successfully.")
            })
            .build();
        let eb = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe, &events]);
        let err =
            until_done(&ctx(), &clients(eb), &follow(), &mut judge(), FAST).await.unwrap_err();
        assert_eq!(crate::exit_code(&err), exit::DEPLOY_FAILED);
        assert_eq!(
            err.to_string(),
            "Elastic Beanstalk reported: Instance deployment failed. For details, see 'eb-engine.log'."
        );
    }

    #[tokio::test]
    async fn red_health_after_the_update_gets_its_recovery_window_and_its_causes() {
        let describe =
            mock!(Client::describe_environments).then_output(|| environment("Ready", "Red", "v2"));
        let events = mock!(Client::describe_events).then_output(|| {
            DescribeEventsOutput::builder()
                .events(event_at(
                    2_000,
                    EventSeverity::Warn,
                    "Environment health has transitioned from Ok to Severe.",
                    None,
                ))
                .build()
        });
        let health = mock!(Client::describe_environment_health).then_output(|| {
            DescribeEnvironmentHealthOutput::builder()
                .causes("100.0 % of the requests are failing with HTTP 5xx.")
                .build()
        });
        let eb = mock_client!(
            aws_sdk_elasticbeanstalk,
            RuleMode::MatchAny,
            [&describe, &events, &health]
        );
        let mut judge = judge();
        judge.recovery = Duration::from_millis(30);
        let err = until_done(&ctx(), &clients(eb), &follow(), &mut judge, FAST).await.unwrap_err();
        assert_eq!(crate::exit_code(&err), exit::UNHEALTHY);
        let text = err.to_string();
        assert!(
            text.starts_with("v2 runs but its health is still Red after 0s of recovery"),
            "{text}"
        );
        assert!(text.contains("100.0 % of the requests are failing"), "{text}");
        assert_eq!(health.num_calls(), 1, "causes are asked when health changes, not every round");
        assert!(describe.num_calls() > 1, "Red was not judged at first sight");
    }

    #[tokio::test]
    async fn a_busy_environment_is_polled_until_ready() {
        let describe = mock!(Client::describe_environments)
            .sequence()
            .output(|| environment("Updating", "Grey", "v1"))
            .times(3)
            .output(|| environment("Ready", "Green", "v1"))
            .build();
        let eb = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe]);
        let deadline = Deadline::after(Duration::from_secs(60));
        let env = until_ready(&ctx(), &clients(eb), "acme-web", "acme-web-stg", deadline, FAST)
            .await
            .unwrap();
        assert_eq!(env.version_label(), Some("v1"));
        assert_eq!(describe.num_calls(), 4);
    }

    #[tokio::test]
    async fn a_missing_environment_is_named() {
        let describe = mock!(Client::describe_environments)
            .then_output(|| DescribeEnvironmentsOutput::builder().build());
        let eb = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe]);
        let deadline = Deadline::after(Duration::from_secs(1));
        let err = until_ready(&ctx(), &clients(eb), "acme-web", "nope", deadline, FAST)
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("environment nope not found in application acme-web"),
            "{err}"
        );
    }
}
