//! Following operations under way (updates, launches, terminations) on one environment or
//! several at once, until each one's [`Judge`] decides: one DescribeEnvironments and one
//! DescribeEvents a round for all of them, whatever their number (and, once a version runs,
//! one DescribeInstancesHealth per environment with enhanced health), so the polling stays
//! polite (well under one call per second per environment). New events and state changes
//! are printed as they come; with several environments each line is tagged with its own.
//!
//! The command's deadline running out is each undecided environment's verdict (timed out,
//! or unhealthy when its health was still Red or Yellow at the end), never a bare error:
//! the caller's summary always follows.

use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;

use crate::aws::time_of_day;
use crate::eb::Eb;
use crate::eb::environments::{health_causes, live};
use crate::eb::events::EventStream;
use crate::eb::instances::{self, Instances};
use crate::eb::judge::{Goal, Judge, Snapshot, Verdict};
use crate::eb::wait::{Pace, pause};
use crate::run::exit::OutOfTime;
use crate::run::{Context, Failure, exit};

/// How often an unchanged state is said again.
const SAY_AGAIN: Duration = Duration::from_secs(30);

/// One environment being followed, and, once decided, how its operation ended.
pub struct Followed {
    pub environment: String,
    /// Its ID, when known: how a terminated environment is still found.
    pub id: Option<String>,
    pub judge: Judge,
    /// `None` while under way.
    pub outcome: Option<Result<(), Failure>>,
    /// Its URL, from its CNAME.
    pub url: Option<String>,
    last: Option<Snapshot>,
    last_said: Option<(String, Instant)>,
    /// The colour the recovery window was last said for.
    window_said: Option<String>,
    basic_said: bool,
}

impl Followed {
    pub fn new(environment: &str, id: Option<String>, judge: Judge) -> Followed {
        Followed {
            environment: environment.to_owned(),
            id,
            judge,
            outcome: None,
            url: None,
            last: None,
            last_said: None,
            window_said: None,
            basic_said: false,
        }
    }

    fn matches(&self, env: &EnvironmentDescription) -> bool {
        match &self.id {
            Some(id) => env.environment_id() == Some(id.as_str()),
            None => env.environment_name() == Some(self.environment.as_str()) && live(env),
        }
    }
}

/// Prints an environment's lines, tagged with its name when several are followed.
struct Tagger {
    width: Option<usize>,
}

impl Tagger {
    fn line(&self, ctx: &Context, environment: &str, text: impl std::fmt::Display) {
        match self.width {
            Some(width) => ctx.ui.info(format_args!("{environment:<width$} | {text}")),
            None => ctx.ui.info(text),
        }
    }
}

/// Follows `operation` ("the deployment") on every environment of `followed` until each is
/// decided or the command's deadline passes, printing their events and state as they come
/// (events from `since`, the service's time). Only Ctrl-C, or a failure of the shared
/// calls, is an error: each environment's own ending is its `outcome`.
pub async fn until_done(
    ctx: &Context,
    eb: &Eb,
    operation: &str,
    since: DateTime,
    followed: &mut [Followed],
    pace: Pace,
) -> anyhow::Result<()> {
    match rounds(ctx, eb, operation, since, followed, pace).await {
        Ok(()) => Ok(()),
        Err(err) => match err.downcast::<OutOfTime>() {
            Ok(out) => {
                for f in followed.iter_mut().filter(|f| f.outcome.is_none()) {
                    f.outcome = Some(Err(timed_out(f, eb, Some(&out))));
                }
                Ok(())
            }
            Err(err) => Err(err),
        },
    }
}

async fn rounds(
    ctx: &Context,
    eb: &Eb,
    operation: &str,
    since: DateTime,
    followed: &mut [Followed],
    pace: Pace,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = eb.deadline();
    let several = followed.len() > 1;
    let tag = Tagger {
        width: several.then(|| followed.iter().map(|f| f.environment.len()).max()).flatten(),
    };
    let only = (!several).then(|| followed.first().map(|f| f.environment.clone())).flatten();
    let mut events = EventStream::new(only.as_deref(), since);
    loop {
        let described = describe(ctx, eb, followed).await?;
        let service_now = eb.now();
        let mut now = Vec::with_capacity(followed.len());
        for f in followed.iter_mut() {
            let env = described.iter().find(|e| f.matches(e));
            f.url = env.and_then(|e| e.cname()).map(|c| format!("http://{c}/")).or(f.url.take());
            now.push(env.map(Snapshot::of).or_else(|| f.last.clone()));
        }
        for event in events.next(ctx, eb).await? {
            let of = |f: &&mut Followed| {
                !several || event.environment.as_deref() == Some(f.environment.as_str())
            };
            let Some(f) = followed.iter_mut().find(|f| of(f)) else { continue };
            if f.outcome.is_some() || f.judge.is_others(&event) {
                continue;
            }
            tag.line(ctx, &f.environment, event.line());
            f.judge.event(&event, started.elapsed());
        }
        for (f, now) in followed.iter_mut().zip(now) {
            let Some(now) = now.filter(|_| f.outcome.is_none()) else { continue };
            let elapsed = started.elapsed();
            let mut verdict = f.judge.snapshot(&now, elapsed, service_now);
            if verdict == Verdict::Waiting && f.judge.wants_instances() {
                let report = instances::report(ctx, eb, &f.environment).await?;
                verdict = f.judge.instances(&report, &now.health, elapsed);
                if report == Instances::Basic && !f.basic_said {
                    tag.line(ctx, &f.environment, BASIC_HEALTH);
                    f.basic_said = true;
                }
            }
            say_state(ctx, &tag, f, &now, elapsed);
            if let Some(end) = f.judge.window_end().filter(|_| verdict == Verdict::Waiting)
                && let Some(colour) = f.judge.recovering.clone()
            {
                let changed = f.window_said.as_deref() != Some(colour.as_str());
                recovery_window(ctx, eb, &tag, f, &colour, end.saturating_sub(elapsed), changed)
                    .await?;
            }
            f.outcome = match verdict {
                Verdict::Waiting => None,
                Verdict::Done => Some(Ok(())),
                Verdict::Failed(why) => Some(Err(Failure::new(exit::DEPLOY_FAILED, why))),
                Verdict::Unhealthy(why) => {
                    Some(Err(Failure::new(exit::UNHEALTHY, with_causes(&why, &f.judge.causes))))
                }
            };
            f.last = Some(now);
        }
        if followed.iter().all(|f| f.outcome.is_some()) {
            return Ok(());
        }
        pause(ctx, pace.every.min(deadline.remaining()), &format!("following {operation}")).await?;
        if deadline.passed() {
            for f in followed.iter_mut().filter(|f| f.outcome.is_none()) {
                f.outcome = Some(Err(timed_out(f, eb, None)));
            }
            return Ok(());
        }
    }
}

const BASIC_HEALTH: &str = "basic health (the instances' own health and version cannot be \
                            asked): the verdict rests on the environment's status, version and \
                            colour";

/// The state line: when it changes, and every 30 s while it does not.
fn say_state(ctx: &Context, tag: &Tagger, f: &mut Followed, now: &Snapshot, elapsed: Duration) {
    if f.outcome.is_some() {
        return;
    }
    let version = now.version_label.as_deref().unwrap_or("-");
    let health = match (&now.health, &now.health_status) {
        (h, _) if h.is_empty() => "-".to_owned(),
        (h, Some(status)) => format!("{h} ({status})"),
        (h, None) => h.clone(),
    };
    let note = f.judge.note.as_deref().map(|n| format!(" · {n}")).unwrap_or_default();
    let state = format!("{} · health {health} · version {version}{note}", now.status);
    let again =
        f.last_said.as_ref().is_none_or(|(said, at)| *said != state || at.elapsed() > SAY_AGAIN);
    if again {
        tag.line(ctx, &f.environment, format_args!("[{:>4}s] {state}", elapsed.as_secs()));
        f.last_said = Some((state, Instant::now()));
    }
}

/// Once our version runs but its health is Red or Yellow (`colour`): says the window when
/// it opens, and the causes then and whenever the colour changes within it.
async fn recovery_window(
    ctx: &Context,
    eb: &Eb,
    tag: &Tagger,
    f: &mut Followed,
    colour: &str,
    left: Duration,
    changed: bool,
) -> anyhow::Result<()> {
    let env = f.environment.clone();
    if f.window_said.is_none() {
        let (label, left) = (&f.judge.label, left.as_secs_f64().round());
        let line =
            format!("{env} runs {label}, health {colour}: waiting up to {left}s for it to recover");
        tag.line(ctx, &env, line);
    }
    if changed {
        let mut causes = health_causes(ctx, eb, &env).await?;
        causes.extend(f.judge.causes.iter().cloned());
        for cause in &causes {
            tag.line(ctx, &env, format_args!("  cause: {cause}"));
        }
        if f.judge.causes.is_empty() {
            f.judge.causes = causes;
        }
    }
    f.window_said = Some(colour.to_owned());
    Ok(())
}

/// The environments followed, in one DescribeEnvironments: by ID when every one's is known
/// (terminated ones included), else by name.
async fn describe(
    ctx: &Context,
    eb: &Eb,
    followed: &[Followed],
) -> anyhow::Result<Vec<EnvironmentDescription>> {
    let ids: Option<Vec<String>> = followed.iter().map(|f| f.id.clone()).collect();
    let names: Vec<String> = followed.iter().map(|f| f.environment.clone()).collect();
    let doing = format!("describe environment {}", names.join(", "));
    let answer = eb
        .call(ctx, &doing, || {
            let call = eb.client().describe_environments().application_name(&eb.application);
            match &ids {
                Some(ids) => call.set_environment_ids(Some(ids.clone())).include_deleted(true),
                None => call.set_environment_names(Some(names.clone())),
            }
            .send()
        })
        .await?;
    Ok(answer.environments().to_vec())
}

/// The verdict on an operation still under way when the command's deadline passed: Red or
/// Yellow at the end of the window is unhealthy; anything else did not finish in time.
/// `out` is the call that was in flight, if the deadline passed during one.
fn timed_out(f: &Followed, eb: &Eb, out: Option<&OutOfTime>) -> Failure {
    let timeout = eb.deadline().timeout().as_secs();
    let last = f.last.as_ref();
    let (status, health) = last.map_or(("unknown", ""), |l| (l.status.as_str(), l.health.as_str()));
    if f.judge.window_end().is_some() && matches!(health, "Red" | "Yellow") {
        let flag = if health == "Yellow" { ": pass --allow-yellow to accept Yellow" } else { "" };
        let why = format!(
            "{} runs but its health is still {health} at the end of --timeout ({timeout}s){flag}",
            f.judge.label
        );
        return Failure::new(exit::UNHEALTHY, with_causes(&why, &f.judge.causes));
    }
    let doing = match f.judge.goal {
        Goal::Runs => "did not finish",
        Goal::Terminated => "was not terminated",
    };
    let why = match (&f.judge.note, out) {
        (_, Some(out)) if out.stalled => format!("; the last call did not answer: {}", out.doing),
        (Some(note), _) => format!("; {note}"),
        _ => String::new(),
    };
    Failure::new(
        exit::TIMED_OUT,
        format!(
            "{} {doing} within {timeout}s, at {} ({status}, health {}{why}); Elastic Beanstalk \
             goes on: check it with `cargo xtask status {}`",
            f.environment,
            time_of_day(eb.deadline().until()),
            if health.is_empty() { "-" } else { health },
            f.environment
        ),
    )
}

/// An unhealthy verdict with health's causes, when known.
fn with_causes(why: &str, causes: &[String]) -> String {
    if causes.is_empty() { why.to_owned() } else { format!("{why} ({})", causes.join("; ")) }
}

#[cfg(test)]
mod tests;
