use super::*;
use crate::eb::instances::Instance;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The service's clock, `s` seconds after the update started.
fn at(s: i64) -> DateTime {
    DateTime::from_secs(1_000 + s)
}

fn judge() -> Judge {
    Judge { since: Some(at(0)), ..Judge::new("v2", Some("req-1".into()), false) }
}

fn snap(status: &str, health: &str, label: &str) -> Snapshot {
    Snapshot {
        status: status.into(),
        health: health.into(),
        health_status: None,
        version_label: Some(label.into()),
        updated: Some(at(1)),
    }
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

fn instance(id: &str, label: &str, deployment: &str, color: &str) -> Instance {
    Instance {
        id: id.into(),
        label: Some(label.into()),
        deployment: Some(deployment.into()),
        color: color.into(),
        causes: if color == "Green" { vec![] } else { vec![format!("{color} for a reason")] },
    }
}

fn report(refreshed: i64, instances: Vec<Instance>) -> Instances {
    Instances::Reported(Report { refreshed_at: Some(at(refreshed)), instances })
}

/// A judge that saw v2 Ready, which it became at service time 5.
fn settled() -> Judge {
    let mut judge = judge();
    let ready = Snapshot { updated: Some(at(5)), ..snap("Ready", "Green", "v2") };
    assert_eq!(judge.snapshot(&ready, secs(5), at(7)), Verdict::Waiting);
    assert!(judge.wants_instances());
    judge
}

#[test]
fn success_is_every_instance_on_our_version_green_in_a_refresh_after_the_update() {
    let mut judge = settled();
    let on_v2 = || {
        vec![instance("i-1", "v2", "Deployed", "Green"), instance("i-2", "v2", "Deployed", "Green")]
    };
    assert_eq!(judge.instances(&report(4, on_v2()), "Green", secs(5)), Verdict::Waiting);
    assert_eq!(judge.note.as_deref(), Some("waiting for a refresh of the instances' health"));
    assert_eq!(judge.recovering, None, "no recovery window while Green waits for a refresh");
    assert_eq!(judge.instances(&report(6, on_v2()), "Green", secs(7)), Verdict::Done);
}

#[test]
fn an_instance_on_another_version_fails_even_when_the_environment_says_success() {
    let mut judge = settled();
    let kept = vec![
        instance("i-1", "v2", "Deployed", "Green"),
        instance("i-2", "v1", "Deployed", "Green"),
    ];
    assert_eq!(
        judge.instances(&report(6, kept), "Green", secs(7)),
        Verdict::Failed("instance i-2 runs v1, not v2 (its deployment: Deployed)".into())
    );
    let mut judge = settled();
    let failed = vec![instance("i-1", "v2", "Failed", "Red")];
    assert_eq!(
        judge.instances(&report(6, failed), "Green", secs(7)),
        Verdict::Failed("instance i-1: its deployment of v2 Failed".into())
    );
    let mut judge = settled();
    let deploying = vec![instance("i-1", "v2", "In Progress", "Green")];
    assert_eq!(judge.instances(&report(6, deploying), "Green", secs(7)), Verdict::Waiting);
}

#[test]
fn red_and_yellow_fail_at_the_end_of_the_recovery_window_and_grey_waits_for_the_timeout() {
    let red = || vec![instance("i-1", "v2", "Deployed", "Red")];
    let mut judge = settled();
    assert_eq!(judge.instances(&report(6, red()), "Red", secs(10)), Verdict::Waiting);
    assert_eq!(judge.recovering.as_deref(), Some("Red"));
    assert_eq!(judge.instances(&report(6, red()), "Red", secs(64)), Verdict::Waiting);
    assert_eq!(
        judge.instances(&report(6, red()), "Red", secs(65)),
        Verdict::Unhealthy("v2 runs but its health is still Red after 60s of recovery".into())
    );
    assert_eq!(judge.causes, ["i-1: Red for a reason"]);

    let yellow = || vec![instance("i-1", "v2", "Deployed", "Yellow")];
    let mut strict = settled();
    assert_eq!(strict.instances(&report(6, yellow()), "Green", secs(30)), Verdict::Waiting);
    assert_eq!(
        strict.instances(&report(6, yellow()), "Green", secs(65)),
        Verdict::Unhealthy(
            "v2 runs but its health is still Yellow after 60s of recovery: pass --allow-yellow \
             to accept Yellow"
                .into()
        )
    );
    let mut lenient = Judge { allow_yellow: true, ..settled() };
    assert_eq!(lenient.instances(&report(6, yellow()), "Yellow", secs(7)), Verdict::Done);

    let mut grey = settled();
    let none = vec![instance("i-1", "v2", "Deployed", "Grey")];
    assert_eq!(grey.instances(&report(6, none), "Grey", secs(600)), Verdict::Waiting);
    assert!(grey.note.as_deref().unwrap().starts_with("health Grey: waiting"));
    assert_eq!(grey.instances(&report(6, vec![]), "Green", secs(600)), Verdict::Waiting);
}

#[test]
fn with_basic_health_the_environment_colour_decides() {
    let mut basic = settled();
    assert_eq!(basic.instances(&Instances::Basic, "Red", secs(6)), Verdict::Waiting);
    assert!(basic.basic && !basic.wants_instances());
    assert_eq!(basic.snapshot(&snap("Ready", "Green", "v2"), secs(8), at(8)), Verdict::Done);
    let mut short = Judge { timeout: secs(30), basic: true, ..judge() };
    short.snapshot(&snap("Ready", "Red", "v2"), secs(10), at(10));
    assert!(
        matches!(
            short.snapshot(&snap("Ready", "Red", "v2"), secs(30), at(30)),
            Verdict::Unhealthy(_)
        ),
        "the window ends with --timeout"
    );
}

#[test]
fn a_stale_description_is_not_judged_and_not_taken_for_a_rollback() {
    let mut judge = judge();
    let stale = Snapshot { updated: Some(at(-30)), ..snap("Ready", "Green", "v1") };
    assert_eq!(judge.snapshot(&stale, secs(1), at(1)), Verdict::Waiting);
    assert_eq!(judge.snapshot(&stale, secs(5), at(5)), Verdict::Waiting);
    // The UpdateEnvironment answer's own status is never taken for a sighting.
    assert_eq!(
        judge.snapshot(&snap("Ready", "Green", "v1"), secs(6), at(6)),
        Verdict::Failed("Elastic Beanstalk rolled the environment back to v1".into())
    );
    let mut undated = Judge { since: None, ..Judge::new("v2", None, false) };
    let old = Snapshot { updated: None, ..snap("Ready", "Green", "v1") };
    assert_eq!(undated.snapshot(&old, secs(1), at(1)), Verdict::Waiting);
    assert!(matches!(undated.snapshot(&old, GRACE * 2, at(40)), Verdict::Failed(_)));
}

#[test]
fn a_termination_is_done_when_terminated_and_failed_when_ready_again() {
    let mut judge = Judge { since: Some(at(0)), ..Judge::terminated(Some("req-1".into())) };
    let gone = Snapshot { status: "Terminated".into(), ..snap("Terminated", "Grey", "v1") };
    assert_eq!(
        judge.snapshot(&snap("Terminating", "Grey", "v1"), secs(1), at(1)),
        Verdict::Waiting
    );
    assert_eq!(judge.snapshot(&gone, secs(2), at(2)), Verdict::Done);
    let mut stopped = Judge { since: Some(at(0)), ..Judge::terminated(Some("req-1".into())) };
    stopped.snapshot(&snap("Terminating", "Grey", "v1"), secs(1), at(1));
    stopped.event(&event("ERROR", Some("req-1")), secs(2));
    assert_eq!(
        stopped.snapshot(&snap("Terminating", "Grey", "v1"), secs(3), at(3)),
        Verdict::Waiting
    );
    assert_eq!(
        stopped.snapshot(&snap("Ready", "Green", "v1"), secs(4), at(4)),
        Verdict::Failed("Elastic Beanstalk reported: Failed to deploy application.".into())
    );
}

#[test]
fn only_error_events_of_our_request_fail_and_only_once_the_update_is_over() {
    let mut theirs = Judge { basic: true, ..judge() };
    theirs.event(&event("ERROR", Some("someone-else")), secs(1));
    theirs.event(&event("ERROR", None), secs(1));
    theirs.event(&event("INFO", Some("req-1")), secs(1));
    assert_eq!(theirs.snapshot(&snap("Ready", "Green", "v2"), secs(2), at(2)), Verdict::Done);

    let mut ours = judge();
    ours.event(&event("ERROR", Some("req-1")), secs(1));
    assert_eq!(ours.snapshot(&snap("Updating", "Grey", "v2"), secs(2), at(2)), Verdict::Waiting);
    let failed =
        Verdict::Failed("Elastic Beanstalk reported: Failed to deploy application.".into());
    assert_eq!(ours.snapshot(&snap("Ready", "Green", "v2"), secs(3), at(3)), failed);
    let mut stuck = judge();
    stuck.event(&event("FATAL", Some("req-1")), secs(1));
    assert_eq!(stuck.snapshot(&snap("Updating", "Grey", "v2"), FAILURE_DRAIN * 2, at(9)), failed);

    let mut unknown = Judge { request_id: None, basic: true, ..judge() };
    unknown.event(&event("ERROR", None), secs(1));
    assert_eq!(unknown.snapshot(&snap("Ready", "Green", "v2"), secs(2), at(2)), Verdict::Done);
    unknown.event(&event("ERROR", Some("req-9")), secs(3));
    assert!(matches!(
        unknown.snapshot(&snap("Ready", "Green", "v2"), secs(4), at(4)),
        Verdict::Failed(_)
    ));
}
