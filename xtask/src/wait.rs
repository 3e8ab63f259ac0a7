//! Waiting for an Elastic Beanstalk environment: until it is `Ready` before an update, and
//! until the update succeeded or failed after it, streaming its events as they arrive.
//!
//! The decision is a pure function of what was observed ([`Judge`]), unit-tested on its
//! own. What it encodes, from Elastic Beanstalk as it behaves:
//! - an ERROR or FATAL event carrying our update's RequestId fails the update, even when
//!   Elastic Beanstalk then says "completed successfully", Ready, our version and Green
//!   (a failed instance deployment ends so, its instances still on the old version);
//!   events without a RequestId (enhanced health transitions) are shown, never judged;
//! - health often lags the update (Red or Yellow while instances warm up or re-register
//!   with the load balancer): after Ready on our version, health gets a recovery window
//!   before a Red one fails the deploy.
//!
//! The polling around it is polite (at most one call per second on average) and stops on
//! Ctrl-C; throttling is waited out by [`Clients::call`].

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::primitives::{DateTime, DateTimeFormat};
use aws_sdk_elasticbeanstalk::types::{
    EnvironmentDescription, EnvironmentHealthAttribute, EventDescription,
};

use crate::aws::{AwsError, Clients, Deadline, Service};
use crate::interrupt::Interrupted;
use crate::{Context, Failure, exit};

/// How long after the update a `Ready` environment on another version may still be the
/// state from before the update (Elastic Beanstalk is eventually consistent).
const GRACE: Duration = Duration::from_secs(20);
/// After an ERROR event of ours, how long to keep showing events until the environment is
/// Ready again (the rest of the failure's story), before failing anyway.
const FAILURE_DRAIN: Duration = Duration::from_secs(60);

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
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Event {
    /// UTC, fixed width: `2026-11-30T05:20:03.500Z`.
    pub date: String,
    pub severity: String,
    pub message: String,
    #[serde(skip)]
    pub request_id: Option<String>,
    #[serde(skip)]
    pub at: Option<DateTime>,
}

impl Event {
    pub fn of(event: &EventDescription) -> Event {
        Event {
            date: event.event_date().map(utc).unwrap_or_default(),
            severity: event.severity().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            message: event.message().unwrap_or_default().to_owned(),
            request_id: event.request_id().map(str::to_owned),
            at: event.event_date().copied(),
        }
    }

    /// The line a CI log shows.
    pub fn line(&self) -> String {
        format!("{}  {:<5}  {}", self.date, self.severity, self.message)
    }
}

/// A time as every line shows it: UTC, milliseconds always, so that lines align and read
/// in order (`DateTime`'s own format drops zero fractions: `03.5Z`, `03Z`).
pub fn utc(time: &DateTime) -> String {
    let seconds = DateTime::from_secs(time.secs()).fmt(DateTimeFormat::DateTime);
    let seconds = seconds.unwrap_or_default();
    let millis = time.subsec_nanos() / 1_000_000;
    match seconds.strip_suffix('Z') {
        Some(whole) => format!("{whole}.{millis:03}Z"),
        None => seconds,
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
    /// The RequestId of our UpdateEnvironment; `None` when Elastic Beanstalk gave none.
    pub request_id: Option<String>,
    pub allow_yellow: bool,
    /// How long health may take to become acceptable once our version is Ready.
    pub recovery: Duration,
    /// The whole wait; the recovery window ends with it at the latest.
    pub timeout: Duration,
    /// The environment was seen updating (EB says so in the UpdateEnvironment answer).
    pub seen_updating: bool,
    /// The first ERROR or FATAL event of ours, and when it was seen.
    failed: Option<(String, Duration)>,
    /// How many more ERROR or FATAL events of ours followed it.
    more_errors: usize,
    /// When our version was first seen Ready.
    settled_at: Option<Duration>,
}

impl Judge {
    pub fn new(label: &str, request_id: Option<String>, allow_yellow: bool) -> Judge {
        Judge {
            label: label.to_owned(),
            request_id,
            allow_yellow,
            recovery: Duration::from_secs(60),
            timeout: Duration::from_secs(20 * 60),
            seen_updating: false,
            failed: None,
            more_errors: 0,
            settled_at: None,
        }
    }

    /// Whether an event is of our update: it carries our RequestId (or, when ours is
    /// unknown, any RequestId: ours is the update running).
    pub fn is_ours(&self, event: &Event) -> bool {
        match (&self.request_id, &event.request_id) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }

    /// Whether an event belongs to another request than ours (not shown).
    pub fn is_others(&self, event: &Event) -> bool {
        event.request_id.is_some() && !self.is_ours(event)
    }

    /// Notes an ERROR or FATAL event of ours: it fails the update.
    pub fn event(&mut self, event: &Event, elapsed: Duration) {
        if !self.is_ours(event) || !matches!(event.severity.as_str(), "ERROR" | "FATAL") {
            return;
        }
        match self.failed {
            None => {
                let why = format!("Elastic Beanstalk reported: {}", event.message);
                self.failed = Some((why, elapsed));
            }
            Some(_) => self.more_errors += 1,
        }
    }

    fn acceptable(&self, health: &str) -> bool {
        health == "Green" || (self.allow_yellow && health == "Yellow")
    }

    /// When the recovery window ends, once it has started.
    pub fn window_end(&self) -> Option<Duration> {
        self.settled_at.map(|at| (at + self.recovery).min(self.timeout))
    }

    pub fn snapshot(&mut self, now: &Snapshot, elapsed: Duration) -> Verdict {
        let ready = match now.status.as_str() {
            "Ready" => self.seen_updating || elapsed > GRACE,
            "Terminating" | "Terminated" => {
                return Verdict::Failed(format!("the environment is {}", now.status));
            }
            _ => {
                self.seen_updating = true;
                false
            }
        };
        if let Some((why, seen_at)) = &self.failed {
            // Ready again: the update is over. Or it takes too long to be: fail anyway.
            if !ready && elapsed.saturating_sub(*seen_at) <= FAILURE_DRAIN {
                return Verdict::Waiting;
            }
            return Verdict::Failed(match self.more_errors {
                0 => why.clone(),
                1 => format!("{why} (and 1 more error, above)"),
                n => format!("{why} (and {n} more errors, above)"),
            });
        }
        if !ready {
            return Verdict::Waiting;
        }
        if now.version_label.as_deref() != Some(self.label.as_str()) {
            let other = now.version_label.as_deref().unwrap_or("no version");
            return Verdict::Failed(format!(
                "Elastic Beanstalk rolled the environment back to {other}"
            ));
        }
        if self.acceptable(&now.health) {
            return Verdict::Deployed;
        }
        self.settled_at.get_or_insert(elapsed);
        let window_over = self.window_end().is_some_and(|end| elapsed >= end);
        if window_over && now.health == "Red" {
            let window =
                self.window_end().unwrap_or_default() - self.settled_at.unwrap_or_default();
            return Verdict::Unhealthy(format!(
                "{} runs but its health is still Red after {}s of recovery",
                self.label,
                window.as_secs()
            ));
        }
        Verdict::Waiting
    }
}

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

/// The environment as Elastic Beanstalk describes it, or an error naming it when it does
/// not exist.
pub async fn describe(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    environment: &str,
    deadline: Deadline,
) -> anyhow::Result<EnvironmentDescription> {
    let doing = format!("describe environment {environment}");
    let answer = clients
        .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
            clients
                .eb
                .describe_environments()
                .application_name(application)
                .environment_names(environment)
                .send()
        })
        .await?;
    let found = answer.environments().iter().find(|e| {
        e.environment_name() == Some(environment)
            && e.status().is_none_or(|s| s.as_str() != "Terminated")
    });
    match found {
        Some(env) => Ok(env.clone()),
        None => anyhow::bail!(
            "environment {environment} not found in application {application}: check ENV and \
             [workspace.metadata.deploy.environments]"
        ),
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

/// The events of one environment from a moment on: each shown once, oldest first, across
/// pages and polls.
pub struct EventStream<'a> {
    pub application: &'a str,
    pub environment: &'a str,
    /// Asked from here on; moves to the newest event seen (`StartTime` is inclusive, so
    /// events of that very moment come again and are recognised).
    since: DateTime,
    seen: HashSet<Event>,
}

impl<'a> EventStream<'a> {
    pub fn new(application: &'a str, environment: &'a str, since: DateTime) -> EventStream<'a> {
        EventStream { application, environment, since, seen: HashSet::new() }
    }

    /// Events not returned before, oldest first.
    pub async fn next(
        &mut self,
        ctx: &Context,
        clients: &Clients,
        deadline: Deadline,
    ) -> anyhow::Result<Vec<Event>> {
        let doing = format!("describe the events of {}", self.environment);
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = clients
                .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
                    clients
                        .eb
                        .describe_events()
                        .application_name(self.application)
                        .environment_name(self.environment)
                        .start_time(self.since)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            listed.extend(page.events().iter().map(Event::of));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        // Newest first from the service: reversed, then a stable sort by time keeps events
        // of the same millisecond in the order they happened.
        listed.reverse();
        listed.sort_by_key(|e| e.at);
        let fresh: Vec<Event> =
            listed.into_iter().filter(|e| self.seen.insert(e.clone())).collect();
        if let Some(newest) = fresh.iter().filter_map(|e| e.at).max() {
            self.since = self.since.max(newest);
        }
        Ok(fresh)
    }
}

/// The latest `max` (1 to 1000) events of an environment, newest first.
pub async fn latest_events(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    environment: &str,
    max: i32,
    deadline: Deadline,
) -> anyhow::Result<Vec<EventDescription>> {
    let doing = format!("describe the events of {environment}");
    let listed = clients
        .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
            clients
                .eb
                .describe_events()
                .application_name(application)
                .environment_name(environment)
                .max_records(max.clamp(1, 1000))
                .send()
        })
        .await?;
    Ok(listed.events().to_vec())
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

/// Enhanced health's causes (`DescribeEnvironmentHealth`); none for an environment with
/// basic health, which refuses the call.
pub async fn health_causes(
    ctx: &Context,
    clients: &Clients,
    environment: &str,
    deadline: Deadline,
) -> anyhow::Result<Vec<String>> {
    let doing = format!("describe the health of {environment}");
    let answer = clients
        .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
            clients
                .eb
                .describe_environment_health()
                .environment_name(environment)
                .attribute_names(EnvironmentHealthAttribute::Causes)
                .attribute_names(EnvironmentHealthAttribute::HealthStatus)
                .send()
        })
        .await;
    match answer {
        Ok(health) => Ok(health.causes().to_vec()),
        Err(err) if err.is::<AwsError>() => Ok(Vec::new()),
        Err(err) => Err(err),
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
    use aws_sdk_elasticbeanstalk::Client;
    use aws_sdk_elasticbeanstalk::operation::describe_environment_health::DescribeEnvironmentHealthOutput;
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

    fn follow() -> Follow<'static> {
        Follow {
            application: "acme-web",
            environment: "acme-web-stg",
            since: DateTime::from_secs(0),
        }
    }

    fn event_at(
        millis: i64,
        severity: EventSeverity,
        message: &str,
        request: Option<&str>,
    ) -> EventDescription {
        EventDescription::builder()
            .event_date(DateTime::from_millis(millis))
            .severity(severity)
            .message(message)
            .set_request_id(request.map(str::to_owned))
            .build()
    }

    /// One event of the update request `req-1`.
    fn event_of_req_1(severity: EventSeverity, message: &str) -> DescribeEventsOutput {
        DescribeEventsOutput::builder()
            .events(event_at(1_000, severity, message, Some("req-1")))
            .build()
    }

    const FAST: Pace = Pace { every: Duration::from_millis(1) };

    fn clients(eb: Client) -> Clients {
        Clients::for_tests(eb)
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
        let mut judge = Judge { recovery: Duration::from_millis(30), ..judge() };
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
    async fn events_come_oldest_first_across_pages_each_once() {
        let events = mock!(Client::describe_events)
            .sequence()
            .output(|| {
                DescribeEventsOutput::builder()
                    .events(event_at(3_000, EventSeverity::Info, "third", None))
                    .events(event_at(2_500, EventSeverity::Info, "second", None))
                    .next_token("page-2")
                    .build()
            })
            .output(|| {
                DescribeEventsOutput::builder()
                    .events(event_at(2_000, EventSeverity::Info, "first", None))
                    .build()
            })
            .output(|| {
                DescribeEventsOutput::builder()
                    .events(event_at(3_500, EventSeverity::Info, "fourth", None))
                    .events(event_at(3_000, EventSeverity::Info, "third", None))
                    .build()
            })
            .build();
        let eb = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&events]);
        let clients = clients(eb);
        let mut stream = EventStream::new("acme-web", "acme-web-stg", DateTime::from_secs(0));
        let deadline = Deadline::after(Duration::from_secs(5));
        let first: Vec<String> = stream
            .next(&ctx(), &clients, deadline)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(first, ["first", "second", "third"]);
        let then: Vec<String> = stream
            .next(&ctx(), &clients, deadline)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.line())
            .collect();
        assert_eq!(then, ["1970-01-01T00:00:03.500Z  INFO   fourth"]);
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

    fn judge() -> Judge {
        Judge { seen_updating: true, ..Judge::new("v2", Some("req-1".into()), false) }
    }

    fn snap(status: &str, health: &str, label: &str) -> Snapshot {
        Snapshot { status: status.into(), health: health.into(), version_label: Some(label.into()) }
    }

    fn event(severity: &str, request: Option<&str>) -> Event {
        Event {
            date: "2026-11-29T00:00:00.000Z".into(),
            severity: severity.into(),
            message: "Failed to deploy application.".into(),
            request_id: request.map(str::to_owned),
            at: None,
        }
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
    fn yellow_needs_the_flag_and_red_fails_only_after_the_recovery_window() {
        let secs = Duration::from_secs;
        let mut strict = judge();
        assert_eq!(strict.snapshot(&snap("Ready", "Yellow", "v2"), secs(1)), Verdict::Waiting);
        assert_eq!(strict.snapshot(&snap("Ready", "Yellow", "v2"), secs(100)), Verdict::Waiting);
        let mut lenient = Judge { allow_yellow: true, ..judge() };
        assert_eq!(lenient.snapshot(&snap("Ready", "Yellow", "v2"), secs(1)), Verdict::Deployed);

        let mut red = judge();
        assert_eq!(red.snapshot(&snap("Ready", "Red", "v2"), secs(10)), Verdict::Waiting);
        assert_eq!(red.snapshot(&snap("Ready", "Red", "v2"), secs(69)), Verdict::Waiting);
        assert_eq!(red.snapshot(&snap("Ready", "Green", "v2"), secs(50)), Verdict::Deployed);
        assert!(matches!(
            red.snapshot(&snap("Ready", "Red", "v2"), secs(70)),
            Verdict::Unhealthy(why) if why.ends_with("still Red after 60s of recovery")
        ));
        let mut short = Judge { timeout: secs(30), ..judge() };
        short.snapshot(&snap("Ready", "Red", "v2"), secs(10));
        assert!(
            matches!(short.snapshot(&snap("Ready", "Red", "v2"), secs(30)), Verdict::Unhealthy(_)),
            "the window ends with --timeout"
        );
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
    fn only_error_events_of_our_request_fail_and_only_once_the_update_is_over() {
        let secs = Duration::from_secs;
        let mut theirs = judge();
        theirs.event(&event("ERROR", Some("someone-else")), secs(1));
        theirs.event(&event("ERROR", None), secs(1));
        theirs.event(&event("INFO", Some("req-1")), secs(1));
        assert_eq!(theirs.snapshot(&snap("Ready", "Green", "v2"), secs(2)), Verdict::Deployed);

        let mut ours = judge();
        ours.event(&event("ERROR", Some("req-1")), secs(1));
        assert_eq!(ours.snapshot(&snap("Updating", "Grey", "v2"), secs(2)), Verdict::Waiting);
        let failed =
            Verdict::Failed("Elastic Beanstalk reported: Failed to deploy application.".into());
        assert_eq!(ours.snapshot(&snap("Ready", "Green", "v2"), secs(3)), failed);
        let mut stuck = judge();
        stuck.event(&event("FATAL", Some("req-1")), secs(1));
        assert_eq!(stuck.snapshot(&snap("Updating", "Grey", "v2"), FAILURE_DRAIN * 2), failed);

        let mut unknown = Judge { request_id: None, ..judge() };
        unknown.event(&event("ERROR", None), secs(1));
        assert_eq!(unknown.snapshot(&snap("Ready", "Green", "v2"), secs(2)), Verdict::Deployed);
        unknown.event(&event("ERROR", Some("req-9")), secs(3));
        assert!(matches!(
            unknown.snapshot(&snap("Ready", "Green", "v2"), secs(4)),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn times_are_fixed_width_utc() {
        assert_eq!(utc(&DateTime::from_millis(3_500)), "1970-01-01T00:00:03.500Z");
        assert_eq!(utc(&DateTime::from_secs(3)), "1970-01-01T00:00:03.000Z");
        assert_eq!(utc(&DateTime::from_secs_and_nanos(3, 502_999_999)), "1970-01-01T00:00:03.502Z");
    }
}
