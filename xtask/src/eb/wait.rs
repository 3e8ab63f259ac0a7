//! Waiting for Elastic Beanstalk: until an environment is `Ready` before an update, the
//! pace of every poll, and pauses that end on Ctrl-C (following an operation under way is
//! `follow`'s). Throttling is waited out by [`Clients::call`].

use std::time::Duration;

use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;

use crate::eb::Eb;
use crate::eb::environments::describe;
use crate::run::interrupt::Interrupted;
use crate::run::{Context, Failure, exit};

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

/// Waits until the environment is `Ready` (it may be busy with another update), within the
/// command's deadline. Returns what it was when ready.
pub async fn until_ready(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
    pace: Pace,
) -> anyhow::Result<EnvironmentDescription> {
    let deadline = eb.deadline();
    let mut said = String::new();
    loop {
        let env = describe(ctx, eb, environment).await?;
        let status = env.status().map(|s| s.as_str()).unwrap_or("Unknown");
        if status == "Ready" {
            return Ok(env);
        }
        if status != said {
            ctx.ui.info(format_args!(
                "{environment} is {status}: waiting until it is Ready (until {})",
                crate::aws::time_of_day(deadline.until())
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

/// Sleeps `every`, returning early with an error on Ctrl-C: Elastic Beanstalk goes on
/// without us, and the message says how to follow it.
pub async fn pause(ctx: &Context, every: Duration, during: &str) -> anyhow::Result<()> {
    tokio::select! {
        () = tokio::time::sleep(every) => Ok(()),
        () = ctx.interrupt.signalled() => Err(Interrupted { during: during.to_owned() }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eb::testing::{ctx, eb, environment};
    use aws_sdk_elasticbeanstalk::Client;
    use aws_sdk_elasticbeanstalk::operation::describe_environments::DescribeEnvironmentsOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    const FAST: Pace = Pace { every: Duration::from_millis(1) };

    #[tokio::test]
    async fn a_busy_environment_is_polled_until_ready() {
        let describe = mock!(Client::describe_environments)
            .sequence()
            .output(|| environment("Updating", "Grey", "v1"))
            .times(3)
            .output(|| environment("Ready", "Green", "v1"))
            .build();
        let client = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe]);
        let eb = eb(client, Duration::from_secs(60));
        let env = until_ready(&ctx(), &eb, "acme-web-stg", FAST).await.unwrap();
        assert_eq!(env.version_label(), Some("v1"));
        assert_eq!(describe.num_calls(), 4);
    }

    #[tokio::test]
    async fn a_missing_environment_is_named() {
        let describe = mock!(Client::describe_environments)
            .then_output(|| DescribeEnvironmentsOutput::builder().build());
        let client = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe]);
        let eb = eb(client, Duration::from_secs(1));
        let err = until_ready(&ctx(), &eb, "nope", FAST).await.unwrap_err();
        assert!(
            err.to_string().starts_with("environment nope not found in application acme-web"),
            "{err}"
        );
    }
}
