//! Waiting for an Elastic Beanstalk environment: until it is `Ready` before an update, and
//! until the update succeeded or failed after it, streaming new events as they arrive.
//!
//! The decision is a pure function of what was observed ([`Judge`]), unit-tested on its
//! own; the polling around it is polite (at most one describe call per second on average,
//! backing off on `Throttling`) and stops on Ctrl-C.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::primitives::DateTimeFormat;
use aws_sdk_elasticbeanstalk::types::{EnvironmentDescription, EventDescription};

use crate::aws::{fail, is_throttling};
use crate::interrupt::Interrupted;
use crate::{Context, Failure};

/// Exit status when Elastic Beanstalk reports the deployment failed (an ERROR event for our
/// request, or a rollback to another version).
pub const EXIT_FAILED: i32 = 3;
/// Exit status when the new version runs but its health is Red.
pub const EXIT_UNHEALTHY: i32 = 4;
/// Exit status when the environment did not settle within `--timeout`.
pub const EXIT_TIMED_OUT: i32 = 5;

/// How long after the update a `Ready` environment on another version may still be the
/// state from before the update (EB is eventually consistent).
const GRACE: Duration = Duration::from_secs(20);

/// What one DescribeEnvironments said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub status: String,
    pub health: String,
    pub version_label: Option<String>,
}

impl Snapshot {
    pub fn of(env: &EnvironmentDescription) -> Snapshot {
        Snapshot {
            status: env.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            health: env.health().map(|h| h.as_str().to_owned()).unwrap_or_default(),
            version_label: env.version_label().map(str::to_owned),
        }
    }
}

/// One event, as shown and judged (and in `status --json`: date, severity, message).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    pub date: String,
    pub severity: String,
    pub message: String,
    #[serde(skip)]
    pub request_id: Option<String>,
}

impl Event {
    pub fn of(event: &EventDescription) -> Event {
        Event {
            date: event
                .event_date()
                .and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
                .unwrap_or_default(),
            severity: event.severity().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            message: event.message().unwrap_or_default().to_owned(),
            request_id: event.request_id().map(str::to_owned),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Waiting,
    Deployed,
    Failed(String),
    Unhealthy(String),
}

/// Decides, from what the environment shows, whether the update of `label` is done.
#[derive(Clone, Debug)]
pub struct Judge {
    pub label: String,
    pub request_id: Option<String>,
    pub allow_yellow: bool,
    /// The environment was seen updating (EB says so in the UpdateEnvironment answer).
    pub seen_updating: bool,
}

impl Judge {
    /// An ERROR or FATAL event caused by our request fails the deployment.
    pub fn event(&self, event: &Event) -> Option<Verdict> {
        let ours = match (&self.request_id, &event.request_id) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => true,
        };
        (ours && matches!(event.severity.as_str(), "ERROR" | "FATAL"))
            .then(|| Verdict::Failed(format!("Elastic Beanstalk reported: {}", event.message)))
    }

    pub fn snapshot(&mut self, now: &Snapshot, since_update: Duration) -> Verdict {
        match now.status.as_str() {
            "Ready" => {}
            "Terminating" | "Terminated" => {
                return Verdict::Failed(format!("the environment is {}", now.status));
            }
            _ => {
                self.seen_updating = true;
                return Verdict::Waiting;
            }
        }
        let settled = self.seen_updating || since_update > GRACE;
        if now.version_label.as_deref() != Some(self.label.as_str()) {
            if !settled {
                return Verdict::Waiting;
            }
            let other = now.version_label.as_deref().unwrap_or("no version");
            return Verdict::Failed(format!(
                "Elastic Beanstalk rolled the environment back to {other}"
            ));
        }
        if !settled {
            return Verdict::Waiting;
        }
        match now.health.as_str() {
            "Green" => Verdict::Deployed,
            "Yellow" if self.allow_yellow => Verdict::Deployed,
            "Red" => Verdict::Unhealthy(format!("{} runs but its health is Red", self.label)),
            _ => Verdict::Waiting,
        }
    }
}

/// Counters for the benchmark and the summary line.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub describe_calls: u32,
    pub throttled: u32,
}

/// Polling cadence: two describe calls per round, so one call per 1.25 s on average.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub every: Duration,
    pub max_backoff: Duration,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace { every: Duration::from_millis(2500), max_backoff: Duration::from_secs(30) }
    }
}

/// The environment as EB describes it, or an error naming it when it does not exist.
pub async fn describe(
    eb: &Client,
    application: &str,
    environment: &str,
    stats: &mut Stats,
) -> anyhow::Result<Result<EnvironmentDescription, aws_sdk_elasticbeanstalk::Error>> {
    stats.describe_calls += 1;
    let answer = eb
        .describe_environments()
        .application_name(application)
        .environment_names(environment)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(err) => return Ok(Err(err.into())),
    };
    let found = answer.environments().iter().find(|e| {
        e.environment_name() == Some(environment)
            && e.status().is_none_or(|s| s.as_str() != "Terminated")
    });
    match found {
        Some(env) => Ok(Ok(env.clone())),
        None => anyhow::bail!(
            "environment {environment} not found in application {application}: check ENV and \
             [workspace.metadata.deploy.environments]"
        ),
    }
}

/// Waits until the environment is `Ready` (it may be busy with another update), within
/// `timeout`. Returns what it was when ready.
pub async fn until_ready(
    ctx: &Context,
    eb: &Client,
    application: &str,
    environment: &str,
    timeout: Duration,
    pace: Pace,
    stats: &mut Stats,
) -> anyhow::Result<EnvironmentDescription> {
    let started = Instant::now();
    let mut every = pace.every;
    let mut said = String::new();
    loop {
        match describe(eb, application, environment, stats).await? {
            Ok(env) => {
                every = pace.every;
                let status = env.status().map(|s| s.as_str()).unwrap_or("Unknown");
                if status == "Ready" {
                    return Ok(env);
                }
                if status != said {
                    ctx.ui.info(format_args!(
                        "{environment} is {status}: waiting until it is Ready (up to {}s)",
                        timeout.as_secs()
                    ));
                    said = status.to_owned();
                }
            }
            Err(err) if is_throttling(&err) => {
                stats.throttled += 1;
                every = (every * 2).min(pace.max_backoff);
            }
            Err(err) => return Err(fail(format!("describe environment {environment}"), err)),
        }
        if started.elapsed() > timeout {
            return Err(Failure::new(
                EXIT_TIMED_OUT,
                format!(
                    "{environment} stayed {said} for {}s before the update: nothing was changed; \
                     try again when it is Ready, or raise --timeout",
                    timeout.as_secs()
                ),
            )
            .into());
        }
        pause(ctx, every, "waiting for the environment to be Ready").await?;
    }
}

/// What `until_done` needs to know of the update it follows.
pub struct Update<'a> {
    pub application: &'a str,
    pub environment: &'a str,
    /// Events from this moment on are shown.
    pub since: DateTime,
    pub timeout: Duration,
}

/// Follows the update until the judge decides, printing new events as they come.
pub async fn until_done(
    ctx: &Context,
    eb: &Client,
    update: &Update<'_>,
    judge: &mut Judge,
    pace: Pace,
    stats: &mut Stats,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut every = pace.every;
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut last = None::<Snapshot>;
    let mut last_said = Instant::now();
    loop {
        let mut verdict = Verdict::Waiting;
        let mut throttled = false;
        match describe(eb, update.application, update.environment, stats).await? {
            Ok(env) => {
                let now = Snapshot::of(&env);
                verdict = judge.snapshot(&now, started.elapsed());
                if last.as_ref() != Some(&now) || last_said.elapsed() > Duration::from_secs(30) {
                    show_state(ctx, &now, started.elapsed());
                    last_said = Instant::now();
                }
                last = Some(now);
            }
            Err(err) if is_throttling(&err) => throttled = true,
            Err(err) => {
                return Err(fail(format!("describe environment {}", update.environment), err));
            }
        }
        match events(eb, update, stats).await {
            Ok(new) => {
                // Events of an earlier request (the window starts a little before ours)
                // are not this deployment's.
                let others = |e: &Event| matches!((&judge.request_id, &e.request_id), (Some(a), Some(b)) if a != b);
                let fresh = new.into_iter().filter(|e| !others(e));
                for event in fresh.filter(|e| seen.insert((e.date.clone(), e.message.clone()))) {
                    ctx.ui.info(format_args!(
                        "{}  {:<5}  {}",
                        event.date, event.severity, event.message
                    ));
                    if let Some(failed) = judge.event(&event) {
                        verdict = failed;
                    }
                }
            }
            Err(err) if is_throttling(&err) => throttled = true,
            Err(err) => {
                return Err(fail(format!("describe events of {}", update.environment), err));
            }
        }
        if throttled {
            stats.throttled += 1;
            every = (every * 2).min(pace.max_backoff);
        } else {
            every = pace.every;
        }
        match verdict {
            Verdict::Deployed => return Ok(()),
            Verdict::Failed(why) => return Err(Failure::new(EXIT_FAILED, why).into()),
            Verdict::Unhealthy(why) => return Err(Failure::new(EXIT_UNHEALTHY, why).into()),
            Verdict::Waiting => {}
        }
        if started.elapsed() > update.timeout {
            let state =
                last.map(|s| format!("{}, health {}", s.status, s.health)).unwrap_or_default();
            return Err(Failure::new(
                EXIT_TIMED_OUT,
                format!(
                    "{} did not finish within {}s ({state}); Elastic Beanstalk goes on: check it \
                     with `cargo xtask status {}`",
                    update.environment,
                    update.timeout.as_secs(),
                    update.environment
                ),
            )
            .into());
        }
        pause(ctx, every, "following the deployment").await?;
    }
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

/// Events of the environment since the update, oldest first.
async fn events(
    eb: &Client,
    update: &Update<'_>,
    stats: &mut Stats,
) -> Result<Vec<Event>, aws_sdk_elasticbeanstalk::Error> {
    stats.describe_calls += 1;
    let answer = eb
        .describe_events()
        .application_name(update.application)
        .environment_name(update.environment)
        .start_time(update.since)
        .send()
        .await?;
    let mut events: Vec<Event> = answer.events().iter().map(Event::of).collect();
    events.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(events)
}

/// Sleeps `every` in small steps, returning early with an error on Ctrl-C: Elastic
/// Beanstalk goes on without us, and the message says how to follow it.
async fn pause(ctx: &Context, every: Duration, during: &str) -> anyhow::Result<()> {
    let until = Instant::now() + every;
    while Instant::now() < until {
        if ctx.interrupt.is_set() {
            return Err(Interrupted { during: during.to_owned() }.into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `anyhow` context for an interrupted wait.
pub fn interrupted_context(environment: &str) -> String {
    format!(
        "stopped waiting; Elastic Beanstalk continues the deployment on its own: check it with \
         `cargo xtask status {environment}`"
    )
}

/// Converts a wait error: Ctrl-C gets the hint on how to follow the deployment.
pub fn explain(err: anyhow::Error, environment: &str) -> anyhow::Error {
    if err.is::<Interrupted>() { err.context(interrupted_context(environment)) } else { err }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticbeanstalk::operation::describe_environments::DescribeEnvironmentsOutput;
    use aws_sdk_elasticbeanstalk::operation::describe_events::DescribeEventsOutput;
    use aws_sdk_elasticbeanstalk::types::{
        EnvironmentHealth, EnvironmentStatus, EventDescription, EventSeverity,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn ctx() -> Context {
        Context {
            root: ".".into(),
            env: crate::Env::default(),
            ui: crate::ui::Ui::new(false, true),
            interrupt: Default::default(),
        }
    }

    fn environment(status: &str, health: &str, label: &str) -> DescribeEnvironmentsOutput {
        let env = EnvironmentDescription::builder()
            .environment_name("acme-web-stg")
            .status(EnvironmentStatus::from(status))
            .health(EnvironmentHealth::from(health))
            .version_label(label)
            .build();
        DescribeEnvironmentsOutput::builder().environments(env).build()
    }

    fn update() -> Update<'static> {
        Update {
            application: "acme-web",
            environment: "acme-web-stg",
            since: DateTime::from_secs(0),
            timeout: Duration::from_secs(60),
        }
    }

    /// One event of the update request `req-1`.
    fn event_of_req_1(severity: EventSeverity, message: &str) -> DescribeEventsOutput {
        let event = EventDescription::builder()
            .severity(severity)
            .message(message)
            .request_id("req-1")
            .build();
        DescribeEventsOutput::builder().events(event).build()
    }

    const FAST: Pace =
        Pace { every: Duration::from_millis(1), max_backoff: Duration::from_millis(4) };

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
        let mut stats = Stats::default();
        until_done(&ctx(), &eb, &update(), &mut judge, FAST, &mut stats).await.unwrap();
        assert_eq!(describe.num_calls(), 3);
        assert_eq!(
            stats.describe_calls, 6,
            "one DescribeEnvironments and one DescribeEvents a round"
        );
    }

    #[tokio::test]
    async fn an_error_event_of_our_request_ends_the_wait_with_exit_status_3() {
        let describe = mock!(Client::describe_environments)
            .then_output(|| environment("Updating", "Grey", "v2"));
        let events = mock!(Client::describe_events)
            .then_output(|| event_of_req_1(EventSeverity::Error, "Failed to pull the image."));
        let eb = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&describe, &events]);
        let mut judge = judge();
        let err = until_done(&ctx(), &eb, &update(), &mut judge, FAST, &mut Stats::default())
            .await
            .unwrap_err();
        assert_eq!(crate::exit_code(&err), EXIT_FAILED);
        assert_eq!(err.to_string(), "Elastic Beanstalk reported: Failed to pull the image.");
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
        let mut stats = Stats::default();
        let env = until_ready(
            &ctx(),
            &eb,
            "acme-web",
            "acme-web-stg",
            Duration::from_secs(60),
            FAST,
            &mut stats,
        )
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
        let err = until_ready(
            &ctx(),
            &eb,
            "acme-web",
            "nope",
            Duration::from_secs(1),
            FAST,
            &mut Stats::default(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().starts_with("environment nope not found in application acme-web"),
            "{err}"
        );
    }

    fn judge() -> Judge {
        Judge {
            label: "v2".into(),
            request_id: Some("req-1".into()),
            allow_yellow: false,
            seen_updating: true,
        }
    }

    fn snap(status: &str, health: &str, label: &str) -> Snapshot {
        Snapshot { status: status.into(), health: health.into(), version_label: Some(label.into()) }
    }

    #[test]
    fn ready_green_on_our_label_is_success() {
        assert_eq!(
            judge().snapshot(&snap("Updating", "Grey", "v1"), Duration::ZERO),
            Verdict::Waiting
        );
        assert_eq!(
            judge().snapshot(&snap("Ready", "Green", "v2"), Duration::ZERO),
            Verdict::Deployed
        );
    }

    #[test]
    fn yellow_needs_the_flag_and_red_is_unhealthy() {
        assert_eq!(
            judge().snapshot(&snap("Ready", "Yellow", "v2"), Duration::ZERO),
            Verdict::Waiting
        );
        let mut lenient = Judge { allow_yellow: true, ..judge() };
        assert_eq!(
            lenient.snapshot(&snap("Ready", "Yellow", "v2"), Duration::ZERO),
            Verdict::Deployed
        );
        assert!(matches!(
            judge().snapshot(&snap("Ready", "Red", "v2"), Duration::ZERO),
            Verdict::Unhealthy(_)
        ));
    }

    #[test]
    fn another_label_after_updating_is_a_rollback() {
        let verdict = judge().snapshot(&snap("Ready", "Green", "v1"), Duration::ZERO);
        assert_eq!(
            verdict,
            Verdict::Failed("Elastic Beanstalk rolled the environment back to v1".into())
        );
    }

    #[test]
    fn before_the_update_shows_the_old_state_is_not_judged() {
        let mut early = Judge { seen_updating: false, ..judge() };
        assert_eq!(
            early.snapshot(&snap("Ready", "Green", "v1"), Duration::from_secs(1)),
            Verdict::Waiting
        );
        assert_eq!(
            early.snapshot(&snap("Ready", "Green", "v2"), Duration::from_secs(1)),
            Verdict::Waiting
        );
        assert!(matches!(
            early.snapshot(&snap("Ready", "Green", "v1"), GRACE * 2),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn error_events_of_our_request_fail_the_deployment() {
        let event = |severity: &str, request: &str| Event {
            date: "2026-11-29T00:00:00Z".into(),
            severity: severity.into(),
            message: "Failed to deploy application.".into(),
            request_id: Some(request.into()),
        };
        assert_eq!(
            judge().event(&event("ERROR", "req-1")),
            Some(Verdict::Failed(
                "Elastic Beanstalk reported: Failed to deploy application.".into()
            ))
        );
        assert_eq!(judge().event(&event("ERROR", "someone-else")), None);
        assert_eq!(judge().event(&event("INFO", "req-1")), None);
    }
}
