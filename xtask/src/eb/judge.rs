//! Whether an update is done, decided from what was observed: a pure function, unit-tested
//! on its own. What it encodes, from Elastic Beanstalk as it behaves:
//! - an ERROR or FATAL event carrying our update's RequestId fails the update, even when
//!   Elastic Beanstalk then says "completed successfully", Ready, our version and Green
//!   (a failed instance deployment ends so, its instances still on the old version);
//!   events without a RequestId (enhanced health transitions) are shown, never judged;
//! - health often lags the update (Red or Yellow while instances warm up or re-register
//!   with the load balancer): after Ready on our version, health gets a recovery window
//!   before a Red one fails the deploy.

use std::time::Duration;

use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;

use crate::eb::events::Event;

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

/// Decides, from what the environment shows, whether the operation is done: the update
/// (or launch) of `label`, or a termination.
#[derive(Clone, Debug)]
pub struct Judge {
    pub goal: Goal,
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
            goal: Goal::Runs,
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

    /// A termination, requested with `request_id`.
    pub fn terminated(request_id: Option<String>) -> Judge {
        Judge { goal: Goal::Terminated, ..Judge::new("", request_id, false) }
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
            "Ready" if self.seen_updating || elapsed > GRACE => {
                self.failure(true, elapsed).unwrap_or_else(|| {
                    Verdict::Failed(
                        "the termination stopped: the environment is Ready again".into(),
                    )
                })
            }
            "Ready" => Verdict::Waiting,
            _ => {
                self.seen_updating = true;
                self.failure(false, elapsed).unwrap_or(Verdict::Waiting)
            }
        }
    }

    pub fn snapshot(&mut self, now: &Snapshot, elapsed: Duration) -> Verdict {
        if self.goal == Goal::Terminated {
            return self.termination(now, elapsed);
        }
        let ready = match now.status.as_str() {
            "Ready" => self.seen_updating || elapsed > GRACE,
            "Terminating" | "Terminated" => {
                // A launch that failed ends so: its ERROR events tell why.
                return self.failure(true, elapsed).unwrap_or_else(|| {
                    Verdict::Failed(format!("the environment is {}", now.status))
                });
            }
            _ => {
                self.seen_updating = true;
                false
            }
        };
        if let Some(verdict) = self.failure(ready, elapsed) {
            return verdict;
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
            return Verdict::Done;
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

#[cfg(test)]
mod tests {
    use super::*;

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
            environment: None,
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
        assert_eq!(judge().snapshot(&snap("Ready", "Green", "v2"), Duration::ZERO), Verdict::Done);
    }

    #[test]
    fn yellow_needs_the_flag_and_red_fails_only_after_the_recovery_window() {
        let secs = Duration::from_secs;
        let mut strict = judge();
        assert_eq!(strict.snapshot(&snap("Ready", "Yellow", "v2"), secs(1)), Verdict::Waiting);
        assert_eq!(strict.snapshot(&snap("Ready", "Yellow", "v2"), secs(100)), Verdict::Waiting);
        let mut lenient = Judge { allow_yellow: true, ..judge() };
        assert_eq!(lenient.snapshot(&snap("Ready", "Yellow", "v2"), secs(1)), Verdict::Done);

        let mut red = judge();
        assert_eq!(red.snapshot(&snap("Ready", "Red", "v2"), secs(10)), Verdict::Waiting);
        assert_eq!(red.snapshot(&snap("Ready", "Red", "v2"), secs(69)), Verdict::Waiting);
        assert_eq!(red.snapshot(&snap("Ready", "Green", "v2"), secs(50)), Verdict::Done);
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
    fn a_termination_is_done_when_terminated_and_failed_when_ready_again() {
        let secs = Duration::from_secs;
        let mut judge = Judge::terminated(Some("req-1".into()));
        judge.seen_updating = true;
        let gone =
            Snapshot { status: "Terminated".into(), health: "Grey".into(), version_label: None };
        assert_eq!(judge.snapshot(&snap("Terminating", "Grey", "v1"), secs(1)), Verdict::Waiting);
        assert_eq!(judge.snapshot(&gone, secs(2)), Verdict::Done);
        let mut stopped = Judge::terminated(Some("req-1".into()));
        stopped.snapshot(&snap("Terminating", "Grey", "v1"), secs(1));
        stopped.event(&event("ERROR", Some("req-1")), secs(2));
        assert_eq!(stopped.snapshot(&snap("Terminating", "Grey", "v1"), secs(3)), Verdict::Waiting);
        assert_eq!(
            stopped.snapshot(&snap("Ready", "Green", "v1"), secs(4)),
            Verdict::Failed("Elastic Beanstalk reported: Failed to deploy application.".into())
        );
    }

    #[test]
    fn only_error_events_of_our_request_fail_and_only_once_the_update_is_over() {
        let secs = Duration::from_secs;
        let mut theirs = judge();
        theirs.event(&event("ERROR", Some("someone-else")), secs(1));
        theirs.event(&event("ERROR", None), secs(1));
        theirs.event(&event("INFO", Some("req-1")), secs(1));
        assert_eq!(theirs.snapshot(&snap("Ready", "Green", "v2"), secs(2)), Verdict::Done);

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
        assert_eq!(unknown.snapshot(&snap("Ready", "Green", "v2"), secs(2)), Verdict::Done);
        unknown.event(&event("ERROR", Some("req-9")), secs(3));
        assert!(matches!(
            unknown.snapshot(&snap("Ready", "Green", "v2"), secs(4)),
            Verdict::Failed(_)
        ));
    }
}
