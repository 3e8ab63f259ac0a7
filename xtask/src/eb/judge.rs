//! Whether an operation is done, decided from what was observed: pure, unit-tested on its
//! own. What it encodes, from Elastic Beanstalk as AWS documents it:
//! - an ERROR or FATAL event carrying our operation's RequestId fails it, even when Elastic
//!   Beanstalk then says "completed successfully", Ready, our version and Green (a failed
//!   instance deployment ends so); events without a RequestId (enhanced health
//!   transitions) are shown, never judged;
//! - Describe calls are eventually consistent: for a few seconds after the update they may
//!   answer the state from before it. A description whose `DateUpdated` is older than our
//!   operation's is such a stale read and is not judged (nor, while it may be one, a Ready
//!   on another version taken for a rollback);
//! - with enhanced health the instances tell the truth: every one must report our version
//!   deployed, and a refresh of their health after the update completed must show them
//!   Green (or Yellow, allowed); one on another version is a failed deployment, whatever
//!   the environment says. With basic health only the environment's colour is known;
//! - health often lags the update: Red or Yellow get a recovery window before they fail;
//!   Grey (Pending, Unknown, No Data) waits until `--timeout`.

use std::time::Duration;

use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;

use crate::eb::events::Event;
use crate::eb::instances::{Instances, Report};

/// How long after the operation a description that cannot be dated may still be the state
/// from before it; past this every description is believed.
const GRACE: Duration = Duration::from_secs(20);
/// After an ERROR event of ours, how long to keep showing events until the environment is
/// Ready again (the rest of the failure's story), before failing anyway.
const FAILURE_DRAIN: Duration = Duration::from_secs(60);

/// What one DescribeEnvironments said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub status: String,
    /// The colour: Green, Yellow, Red, Grey.
    pub health: String,
    /// Enhanced health's word (Ok, Info, Warning, Degraded, Severe, No Data, …), if any.
    pub health_status: Option<String>,
    pub version_label: Option<String>,
    /// When the service last changed it (its clock).
    pub updated: Option<DateTime>,
}

impl Snapshot {
    pub fn of(env: &EnvironmentDescription) -> Snapshot {
        Snapshot {
            status: env.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            health: env.health().map(|h| h.as_str().to_owned()).unwrap_or_default(),
            health_status: env.health_status().map(|h| h.as_str().to_owned()),
            version_label: env.version_label().map(str::to_owned),
            updated: env.date_updated().copied(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Waiting,
    /// Deployed (or, for a termination, terminated).
    Done,
    Failed(String),
    Unhealthy(String),
}

/// What the operation being followed should end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// `label` runs, Ready and healthy (an update, a launch).
    Runs,
    /// The environment is Terminated.
    Terminated,
}

/// Decides, from what the environment and its instances show, whether the operation is
/// done: the update (or launch) of `label`, or a termination.
#[derive(Clone, Debug)]
pub struct Judge {
    pub goal: Goal,
    pub label: String,
    /// The RequestId of our operation; `None` when Elastic Beanstalk gave none.
    pub request_id: Option<String>,
    /// When our operation changed the environment (its answer's `DateUpdated`, the
    /// service's clock): older descriptions are stale reads.
    pub since: Option<DateTime>,
    pub allow_yellow: bool,
    /// How long health may take to become acceptable once our version is Ready.
    pub recovery: Duration,
    /// The whole wait; the recovery window ends with it at the latest.
    pub timeout: Duration,
    /// The environment was seen busy with the operation (a believed description).
    seen_updating: bool,
    /// The first ERROR or FATAL event of ours, and when it was seen.
    failed: Option<(String, Duration)>,
    /// How many more ERROR or FATAL events of ours followed it.
    more_errors: usize,
    /// When our version was first seen Ready: elapsed, and the service's time.
    settled: Option<(Duration, DateTime)>,
    /// The instances' health was refused: the verdict rests on basic health.
    pub basic: bool,
    /// Why it waits, when the environment alone does not say (shown with its state).
    pub note: Option<String>,
    /// The causes the last health said, for an unhealthy verdict.
    pub causes: Vec<String>,
    /// The colour the recovery window waits to see turn acceptable (Red, Yellow), if any.
    pub recovering: Option<String>,
}

impl Judge {
    pub fn new(label: &str, request_id: Option<String>, allow_yellow: bool) -> Judge {
        Judge {
            goal: Goal::Runs,
            label: label.to_owned(),
            request_id,
            since: None,
            allow_yellow,
            recovery: Duration::from_secs(60),
            timeout: Duration::from_secs(20 * 60),
            seen_updating: false,
            failed: None,
            more_errors: 0,
            settled: None,
            basic: false,
            note: None,
            causes: Vec::new(),
            recovering: None,
        }
    }

    /// A termination, requested with `request_id`.
    pub fn terminated(request_id: Option<String>) -> Judge {
        Judge { goal: Goal::Terminated, ..Judge::new("", request_id, false) }
    }

    /// Whether an event is of our operation: it carries our RequestId (or, when ours is
    /// unknown, any RequestId: ours is the operation running).
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

    /// Notes an ERROR or FATAL event of ours: it fails the operation.
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
        self.settled.map(|(at, _)| (at + self.recovery).min(self.timeout))
    }

    /// Whether a description is believed: not a stale read from before our operation.
    fn believed(&self, now: &Snapshot, elapsed: Duration) -> bool {
        if elapsed > GRACE {
            return true;
        }
        match (self.since, now.updated) {
            (Some(since), Some(updated)) => updated >= since,
            // Undated: a busy environment is ours; Ready only once it was seen busy.
            _ => now.status != "Ready" || self.seen_updating,
        }
    }

    /// After an ERROR event of ours: waiting for the operation to be over (`over`), or
    /// failed.
    fn failure(&self, over: bool, elapsed: Duration) -> Option<Verdict> {
        let (why, seen_at) = self.failed.as_ref()?;
        // Over: the failure's story is told. Or it takes too long to be: fail anyway.
        if !over && elapsed.saturating_sub(*seen_at) <= FAILURE_DRAIN {
            return Some(Verdict::Waiting);
        }
        Some(Verdict::Failed(match self.more_errors {
            0 => why.clone(),
            1 => format!("{why} (and 1 more error, above)"),
            n => format!("{why} (and {n} more errors, above)"),
        }))
    }

    /// A termination: done once Terminated; failed when the environment is Ready again.
    fn termination(&mut self, now: &Snapshot, elapsed: Duration) -> Verdict {
        match now.status.as_str() {
            "Terminated" => Verdict::Done,
            "Ready" if self.believed(now, elapsed) && (self.seen_updating || elapsed > GRACE) => {
                self.failure(true, elapsed).unwrap_or_else(|| {
                    Verdict::Failed(
                        "the termination stopped: the environment is Ready again".into(),
                    )
                })
            }
            "Ready" => Verdict::Waiting,
            _ => {
                self.seen_updating |= self.believed(now, elapsed);
                self.failure(false, elapsed).unwrap_or(Verdict::Waiting)
            }
        }
    }

    /// What a DescribeEnvironments says, seen `elapsed` into the wait, at the service's
    /// time `service_now`. With enhanced health, once our version is Ready the instances
    /// decide: [`Judge::wants_instances`], then [`Judge::instances`].
    pub fn snapshot(
        &mut self,
        now: &Snapshot,
        elapsed: Duration,
        service_now: DateTime,
    ) -> Verdict {
        self.note = None;
        if self.goal == Goal::Terminated {
            return self.termination(now, elapsed);
        }
        let believed = self.believed(now, elapsed);
        let ready = match now.status.as_str() {
            "Ready" => believed,
            "Terminating" | "Terminated" if believed => {
                // A launch that failed ends so: its ERROR events tell why.
                return self.failure(true, elapsed).unwrap_or_else(|| {
                    Verdict::Failed(format!("the environment is {}", now.status))
                });
            }
            _ => {
                self.seen_updating |= believed;
                false
            }
        };
        if let Some(verdict) = self.failure(ready, elapsed) {
            return verdict;
        }
        if !ready {
            if !believed {
                self.note = Some("(a description from before the update: not judged)".into());
            }
            return Verdict::Waiting;
        }
        if now.version_label.as_deref() != Some(self.label.as_str()) {
            let other = now.version_label.as_deref().unwrap_or("no version");
            return Verdict::Failed(format!(
                "Elastic Beanstalk rolled the environment back to {other}"
            ));
        }
        // When it completed, on the service's clock: when the description last changed.
        self.settled.get_or_insert((elapsed, now.updated.unwrap_or(service_now)));
        if self.basic {
            return self.colour(&now.health, elapsed);
        }
        self.note = Some("waiting for the instances to report".into());
        Verdict::Waiting
    }

    /// Whether the verdict now waits on what the instances report.
    pub fn wants_instances(&self) -> bool {
        self.goal == Goal::Runs && self.settled.is_some() && !self.basic
    }

    /// What the instances report, once our version is Ready (see [`Judge::snapshot`]):
    /// `health` is the environment's colour in the same round.
    pub fn instances(&mut self, instances: &Instances, health: &str, elapsed: Duration) -> Verdict {
        let report = match instances {
            Instances::Basic => {
                self.basic = true;
                return self.colour(health, elapsed);
            }
            Instances::Reported(report) => report,
        };
        let completed = self.settled.map(|(_, at)| at);
        let refreshed = report.refreshed_at.zip(completed).is_some_and(|(r, c)| r >= c);
        if !refreshed {
            self.note = Some("waiting for a refresh of the instances' health".into());
            return Verdict::Waiting;
        }
        let label = self.label.as_str();
        for instance in &report.instances {
            let deployment = instance.deployment.as_deref().unwrap_or("unknown");
            match instance.label.as_deref() {
                Some(theirs) if theirs != label => {
                    return Verdict::Failed(format!(
                        "instance {} runs {theirs}, not {label} (its deployment: {deployment})",
                        instance.id
                    ));
                }
                None => {
                    return Verdict::Failed(format!(
                        "instance {} reports no version, not {label} (its deployment: \
                         {deployment})",
                        instance.id
                    ));
                }
                Some(_) if deployment == "Failed" => {
                    return Verdict::Failed(format!(
                        "instance {}: its deployment of {label} Failed",
                        instance.id
                    ));
                }
                Some(_) => {}
            }
        }
        if report.instances.iter().any(|i| i.deployment.as_deref() == Some("In Progress")) {
            self.note = Some("an instance is still deploying".into());
            return Verdict::Waiting;
        }
        self.causes = causes(report);
        let colours = report.instances.iter().map(|i| i.color.as_str());
        let colour = worst(std::iter::once(health).chain(colours), report.instances.is_empty());
        self.colour(colour, elapsed)
    }

    /// The verdict of a colour once our version runs: acceptable is done; Red or Yellow
    /// fail at the end of the recovery window; Grey waits for `--timeout`.
    fn colour(&mut self, colour: &str, elapsed: Duration) -> Verdict {
        self.recovering = None;
        if self.acceptable(colour) {
            return Verdict::Done;
        }
        let window_over = self.window_end().is_some_and(|end| elapsed >= end);
        match colour {
            "Red" | "Yellow" if window_over => {
                let (start, end) = (self.settled.map(|(at, _)| at), self.window_end());
                let window = end.unwrap_or_default().saturating_sub(start.unwrap_or_default());
                let flag =
                    if colour == "Yellow" { ": pass --allow-yellow to accept Yellow" } else { "" };
                Verdict::Unhealthy(format!(
                    "{} runs but its health is still {colour} after {}s of recovery{flag}",
                    self.label,
                    window.as_secs()
                ))
            }
            "Red" | "Yellow" => {
                self.note = Some(format!("health {colour}: waiting for it to recover"));
                self.recovering = Some(colour.to_owned());
                Verdict::Waiting
            }
            _ => {
                self.note = Some(format!(
                    "health {}: waiting for the instances to report, until --timeout",
                    if colour.is_empty() { "unknown" } else { colour }
                ));
                Verdict::Waiting
            }
        }
    }
}

/// The worst of some colours: Red, then Yellow, then Grey (no data), then Green. No
/// instance at all is Grey.
fn worst<'a>(colours: impl Iterator<Item = &'a str>, none: bool) -> &'a str {
    let rank = |c: &str| match c {
        "Red" => 3,
        "Yellow" => 2,
        "Green" => 0,
        _ => 1,
    };
    let worst = colours.max_by_key(|c| rank(c)).unwrap_or("Grey");
    if none && rank(worst) == 0 { "Grey" } else { worst }
}

/// The instances' causes, each with its instance.
fn causes(report: &Report) -> Vec<String> {
    report
        .instances
        .iter()
        .flat_map(|i| i.causes.iter().map(move |c| format!("{}: {c}", i.id)))
        .collect()
}

#[cfg(test)]
mod tests;
