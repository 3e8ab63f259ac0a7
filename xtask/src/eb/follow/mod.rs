//! Following operations under way (updates, launches, terminations) on one environment or
//! several at once, until each one's [`Judge`] decides: one DescribeEnvironments and one
//! DescribeEvents a round for all of them, whatever their number, so the polling stays
//! polite (well under one call per second per environment). New events and state changes
//! are printed as they come; with several environments each line is tagged with its own.

use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;

use crate::aws::{Clients, Deadline, Service};
use crate::eb::environments::{health_causes, live};
use crate::eb::events::EventStream;
use crate::eb::judge::{Goal, Judge, Snapshot, Verdict};
use crate::eb::wait::{Pace, pause};
use crate::{Context, Failure, exit};

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
    last_said: Instant,
    causes: Vec<String>,
    window_said: bool,
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
            last_said: Instant::now(),
            causes: Vec::new(),
            window_said: false,
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
/// decided, or `--timeout` (the judges') passes, printing their events and state as they
/// come. Only a failure of the shared calls, or Ctrl-C, is an error: each environment's own
/// ending is its `outcome`.
pub async fn until_done(
    ctx: &Context,
    clients: &Clients,
    (application, operation): (&str, &str),
    since: DateTime,
    followed: &mut [Followed],
    pace: Pace,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let timeout = followed.iter().map(|f| f.judge.timeout).max().unwrap_or_default();
    let deadline = Deadline::after(timeout);
    let several = followed.len() > 1;
    let tag = Tagger {
        width: several.then(|| followed.iter().map(|f| f.environment.len()).max()).flatten(),
    };
    let only = (!several).then(|| followed.first().map(|f| f.environment.clone())).flatten();
    let mut events = EventStream::new(application, only.as_deref(), since);
    loop {
        let described = describe(ctx, clients, application, followed, deadline).await?;
        let mut now = Vec::with_capacity(followed.len());
        for f in followed.iter_mut() {
            let env = described.iter().find(|e| f.matches(e));
            f.url = env.and_then(|e| e.cname()).map(|c| format!("http://{c}/")).or(f.url.take());
            let snapshot = env.map(Snapshot::of).or_else(|| f.last.clone());
            if f.outcome.is_none()
                && let Some(snapshot) = &snapshot
                && (f.last.as_ref() != Some(snapshot)
                    || f.last_said.elapsed() > Duration::from_secs(30))
            {
                tag.line(ctx, &f.environment, state(snapshot, started.elapsed()));
                f.last_said = Instant::now();
            }
            now.push(snapshot);
        }
        for event in events.next(ctx, clients, deadline).await? {
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
            let health_changed = f.last.as_ref().is_none_or(|l| l.health != now.health);
            let verdict = f.judge.snapshot(&now, elapsed);
            if let Some(end) = f.judge.window_end() {
                // Causes when the window opens, and whenever health changes within it.
                let ask_causes = (!f.window_said || health_changed) && verdict == Verdict::Waiting;
                if !f.window_said {
                    let left = end.saturating_sub(elapsed).as_secs_f64().round();
                    tag.line(
                        ctx,
                        &f.environment,
                        format_args!(
                            "{} runs {}, health {}: waiting up to {left}s for it to recover",
                            f.environment, f.judge.label, now.health
                        ),
                    );
                    f.window_said = true;
                }
                if ask_causes {
                    f.causes = health_causes(ctx, clients, &f.environment, deadline).await?;
                    for cause in &f.causes {
                        tag.line(ctx, &f.environment, format_args!("  cause: {cause}"));
                    }
                }
            }
            f.outcome = match verdict {
                Verdict::Waiting => None,
                Verdict::Done => Some(Ok(())),
                Verdict::Failed(why) => Some(Err(Failure::new(exit::DEPLOY_FAILED, why))),
                Verdict::Unhealthy(why) => {
                    Some(Err(Failure::new(exit::UNHEALTHY, unhealthy(&why, &f.causes))))
                }
            };
            f.last = Some(now);
        }
        if followed.iter().all(|f| f.outcome.is_some()) {
            return Ok(());
        }
        let during = format!("following {operation}");
        pause(ctx, pace.every.min(deadline.remaining()), &during).await?;
        if deadline.passed() {
            for f in followed.iter_mut().filter(|f| f.outcome.is_none()) {
                f.outcome = Some(Err(timed_out(f)));
            }
            return Ok(());
        }
    }
}

/// The environments followed, in one DescribeEnvironments: by ID when every one's is known
/// (terminated ones included), else by name.
async fn describe(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    followed: &[Followed],
    deadline: Deadline,
) -> anyhow::Result<Vec<EnvironmentDescription>> {
    let ids: Option<Vec<String>> = followed.iter().map(|f| f.id.clone()).collect();
    let names: Vec<String> = followed.iter().map(|f| f.environment.clone()).collect();
    let doing = format!("describe environment {}", names.join(", "));
    let answer = clients
        .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
            let call = clients.eb.describe_environments().application_name(application);
            match &ids {
                Some(ids) => call.set_environment_ids(Some(ids.clone())).include_deleted(true),
                None => call.set_environment_names(Some(names.clone())),
            }
            .send()
        })
        .await?;
    Ok(answer.environments().to_vec())
}

/// The timeout of an operation still under way when `--timeout` passed.
fn timed_out(f: &Followed) -> Failure {
    let timeout = f.judge.timeout.as_secs();
    let (status, health) =
        f.last.as_ref().map_or(("unknown", ""), |l| (l.status.as_str(), l.health.as_str()));
    // The recovery window ends with the timeout: Red then is unhealthy.
    if let Some(now) = &f.last
        && let Verdict::Unhealthy(why) = f.judge.clone().snapshot(now, f.judge.timeout)
    {
        return Failure::new(exit::UNHEALTHY, unhealthy(&why, &f.causes));
    }
    let yellow = if health == "Yellow" && f.judge.window_end().is_some() {
        " (pass --allow-yellow to accept Yellow)"
    } else {
        ""
    };
    let doing = match f.judge.goal {
        Goal::Runs => "did not finish",
        Goal::Terminated => "was not terminated",
    };
    Failure::new(
        exit::TIMED_OUT,
        format!(
            "{} {doing} within {timeout}s ({status}, health {}{yellow}); Elastic Beanstalk goes \
             on: check it with `cargo xtask status {}`",
            f.environment,
            if health.is_empty() { "-" } else { health },
            f.environment
        ),
    )
}

/// An unhealthy verdict with enhanced health's causes, when known.
fn unhealthy(why: &str, causes: &[String]) -> String {
    if causes.is_empty() { why.to_owned() } else { format!("{why} ({})", causes.join("; ")) }
}

fn state(now: &Snapshot, elapsed: Duration) -> String {
    let version = now.version_label.as_deref().unwrap_or("-");
    format!(
        "[{:>4}s] {} · health {} · version {version}",
        elapsed.as_secs(),
        now.status,
        if now.health.is_empty() { "-" } else { &now.health }
    )
}

#[cfg(test)]
mod tests;
