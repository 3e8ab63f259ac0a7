//! The follow loop against `aws-smithy-mocks`.

use super::*;
use crate::eb::testing::{ctx, eb, environment, event_at};
use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::operation::describe_environment_health::DescribeEnvironmentHealthOutput;
use aws_sdk_elasticbeanstalk::operation::describe_environments::DescribeEnvironmentsOutput;
use aws_sdk_elasticbeanstalk::operation::describe_events::DescribeEventsOutput;
use aws_sdk_elasticbeanstalk::types::{
    EnvironmentHealth, EnvironmentStatus, EventDescription, EventSeverity,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

const FAST: Pace = Pace { every: Duration::from_millis(1) };

/// One event of the update request `req-1`.
fn event_of_req_1(severity: EventSeverity, message: &str) -> DescribeEventsOutput {
    DescribeEventsOutput::builder()
        .events(event_at(1_000, severity, message, Some("req-1")))
        .build()
}

/// The judge of an update that started at 1000 s (the mocked environments were updated at
/// 2000 s), on an environment with basic health.
fn judge() -> Judge {
    let mut judge = Judge::new("v2", Some("req-1".into()), false);
    judge.since = Some(DateTime::from_secs(1_000));
    judge.basic = true;
    judge
}

fn one(judge: Judge) -> Vec<Followed> {
    vec![Followed::new("acme-web-stg", None, judge)]
}

async fn follow(client: Client, followed: &mut [Followed]) {
    let since = DateTime::from_secs(0);
    let eb = eb(client, Duration::from_secs(60));
    until_done(&ctx(), &eb, "the deployment", since, followed, FAST).await.unwrap();
}

fn failure(followed: &Followed) -> &Failure {
    match &followed.outcome {
        Some(Err(failure)) => failure,
        other => panic!("not a failure: {other:?}"),
    }
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
    let mut followed = one(judge());
    follow(eb, &mut followed).await;
    assert!(matches!(followed[0].outcome, Some(Ok(()))));
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
    let mut followed = one(judge());
    follow(eb, &mut followed).await;
    let failure = failure(&followed[0]);
    assert_eq!(failure.code, exit::DEPLOY_FAILED);
    assert_eq!(
        failure.message,
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
    let eb =
        mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe, &events, &health]);
    let mut judge = judge();
    judge.recovery = Duration::from_millis(30);
    let mut followed = one(judge);
    follow(eb, &mut followed).await;
    let failure = failure(&followed[0]);
    assert_eq!(failure.code, exit::UNHEALTHY);
    assert!(
        failure.message.starts_with("v2 runs but its health is still Red after 0s of recovery"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains("100.0 % of the requests are failing"));
    assert_eq!(health.num_calls(), 1, "causes are asked when health changes, not every round");
    assert!(describe.num_calls() > 1, "Red was not judged at first sight");
}

fn env(name: &str, id: &str, status: &str, health: &str) -> EnvironmentDescription {
    EnvironmentDescription::builder()
        .environment_name(name)
        .environment_id(id)
        .status(EnvironmentStatus::from(status))
        .health(EnvironmentHealth::from(health))
        .version_label("v2")
        .date_updated(DateTime::from_secs(2_000))
        .build()
}

fn event_of(environment: &str, request: &str, severity: EventSeverity) -> EventDescription {
    EventDescription::builder()
        .event_date(DateTime::from_millis(1_000))
        .environment_name(environment)
        .message(format!("{severity:?} of {environment}"))
        .severity(severity)
        .request_id(request)
        .build()
}

#[tokio::test]
async fn several_environments_share_each_round_s_two_calls_and_end_each_on_its_own() {
    let describe = mock!(Client::describe_environments)
        .sequence()
        .output(|| {
            DescribeEnvironmentsOutput::builder()
                .environments(env("stg-a", "e-a", "Updating", "Grey"))
                .environments(env("stg-b", "e-b", "Updating", "Grey"))
                .build()
        })
        .output(|| {
            DescribeEnvironmentsOutput::builder()
                .environments(env("stg-a", "e-a", "Ready", "Green"))
                .environments(env("stg-b", "e-b", "Ready", "Red"))
                .build()
        })
        .build();
    let events = mock!(Client::describe_events).then_output(|| {
        DescribeEventsOutput::builder()
            .events(event_of("stg-b", "req-b", EventSeverity::Error))
            .events(event_of("stg-a", "req-a", EventSeverity::Info))
            .events(event_of("other-env", "req-x", EventSeverity::Error))
            .build()
    });
    let eb = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe, &events]);
    let of = |name: &str, id: &str, request: &str| {
        let mut judge = judge();
        judge.request_id = Some(request.into());
        Followed::new(name, Some(id.into()), judge)
    };
    let mut followed = [of("stg-a", "e-a", "req-a"), of("stg-b", "e-b", "req-b")];
    follow(eb, &mut followed).await;
    assert!(matches!(followed[0].outcome, Some(Ok(()))));
    assert_eq!(failure(&followed[1]).message, "Elastic Beanstalk reported: Error of stg-b");
    assert_eq!((describe.num_calls(), events.num_calls()), (2, 2), "two calls a round");
}

#[tokio::test]
async fn with_enhanced_health_an_instance_on_the_old_version_fails_the_deploy() {
    use aws_sdk_elasticbeanstalk::operation::describe_instances_health::DescribeInstancesHealthOutput;
    use aws_sdk_elasticbeanstalk::types::{Deployment, SingleInstanceHealth};
    let describe =
        mock!(Client::describe_environments).then_output(|| environment("Ready", "Green", "v2"));
    let events = mock!(Client::describe_events).then_output(|| {
        event_of_req_1(EventSeverity::Info, "Environment update completed successfully.")
    });
    // Refreshed long after the update was seen done (the mocked clock is our own).
    let instances = mock!(Client::describe_instances_health).then_output(|| {
        let deployment = Deployment::builder().version_label("v1").status("Deployed").build();
        DescribeInstancesHealthOutput::builder()
            .instance_health_list(
                SingleInstanceHealth::builder()
                    .instance_id("i-0abc")
                    .color("Green")
                    .deployment(deployment)
                    .build(),
            )
            .refreshed_at(DateTime::from_secs(4_000_000_000))
            .build()
    });
    let client = mock_client!(
        aws_sdk_elasticbeanstalk,
        RuleMode::MatchAny,
        [&describe, &events, &instances]
    );
    let mut enhanced = judge();
    enhanced.basic = false;
    let mut followed = one(enhanced);
    follow(client, &mut followed).await;
    let failure = failure(&followed[0]);
    assert_eq!(failure.code, exit::DEPLOY_FAILED);
    assert_eq!(failure.message, "instance i-0abc runs v1, not v2 (its deployment: Deployed)");
    assert_eq!(instances.num_calls(), 1);
}
