//! Verdicts that hold on the real service, each against the fake behaving as AWS documents
//! it: the service's clock off ours, stale reads after an update, a lost answer to
//! UpdateEnvironment, instances that kept the old version while the environment says
//! success, Yellow that outlasts the recovery window, and the command's one deadline.

use std::time::{Duration, Instant};

use crate::support::eb_fake::{Loss, Seed};
use crate::support::{
    ENVIRONMENT, Run, Started, World, closed_port, root, stalled_endpoint, version_at,
};

fn last_line(run: &Run) -> &str {
    run.output.trim_end().lines().last().unwrap_or_default()
}

/// A prebuilt world whose environment has basic health, the service's clock `skew` seconds
/// off ours.
fn basic_health_world(tags: &[&str], skew: i64) -> World {
    let world = World::prebuilt_with(tags, |config| config.clock_skew = skew);
    world.fake.add_environment_with(
        "acme-web-basic",
        closed_port(),
        Seed { enhanced: false, instances: 1 },
    );
    world
}

#[test]
fn the_service_clock_decides_which_events_count_30_s_behind_or_ahead() {
    for skew in [-30, 30] {
        let world = basic_health_world(&["v1", "v2"], skew);
        let good = world.deploy(&["acme-web-basic", "--tag", "v1"]);
        good.assert_success().assert_contains("basic health (the instances' own health");
        world.fake.faults(|f| f.fail_instances_next_deploy = true);
        let bad = world.deploy(&["acme-web-basic", "--tag", "v2"]);
        assert_eq!(bad.code, Some(3), "skew {skew}s:\n{}", bad.output);
        assert!(
            last_line(&bad).starts_with(
                "error: Elastic Beanstalk reported: Instance deployment failed. For details, see \
                 'eb-engine.log'."
            ),
            "skew {skew}s:\n{}",
            bad.output
        );
    }
}

#[test]
fn stale_reads_after_the_update_are_not_taken_for_a_rollback() {
    let world = World::prebuilt(&["v1", "v2"]);
    world.deploy(&["staging", "--tag", "v1"]).assert_success();
    world.fake.faults(|f| f.stale_reads_for = Some(Duration::from_secs(5)));
    world
        .deploy(&["staging", "--tag", "v2"])
        .assert_success()
        .assert_lacks("rolled")
        .assert_contains(&format!("ok: {ENVIRONMENT} runs v2, health Green"));
    assert_eq!(world.updates(), 2);
}

#[test]
fn a_lost_answer_to_update_environment_is_followed_never_sent_again() {
    let world = World::prebuilt(&["v1", "v2"]);
    let quick = [("XTASK_AWS_ATTEMPT_TIMEOUT", "2".to_owned())];
    for (tag, loss) in [("v1", Loss::Late(Duration::from_secs(6))), ("v2", Loss::Cut)] {
        world.fake.faults(|f| f.lose_answer = Some(("UpdateEnvironment".into(), loss)));
        let before = world.updates();
        world
            .deploy_with(&["staging", "--tag", tag], &quick)
            .assert_success()
            .assert_contains("the answer to UpdateEnvironment of acme-web-stg was lost")
            .assert_contains(
                "the answer to UpdateEnvironment was lost; following the update that started at",
            )
            .assert_contains(&format!("ok: {ENVIRONMENT} runs {tag}, health Green"));
        assert_eq!(world.updates() - before, 1, "{loss:?}: one deployment, never a second");
        assert_eq!(version_at(world.port), tag);
    }
}

#[test]
fn instances_that_kept_the_old_version_fail_the_deploy_without_any_error_event() {
    let world = World::prebuilt(&["v1", "v2"]);
    world.deploy(&["staging", "--tag", "v1"]).assert_success();
    world.fake.faults(|f| f.instances_keep_old_version_next_deploy = true);
    let run = world.deploy(&["staging", "--tag", "v2"]);
    assert_eq!(run.code, Some(3), "{}", run.output);
    run.assert_contains("INFO   Environment update completed successfully.").assert_lacks("ERROR");
    assert_eq!(
        last_line(&run),
        "error: instance i-0fa4e1b2c3d4e5f60 runs v1, not v2 (its deployment: Deployed)"
    );
    assert_eq!(world.fake.environment(ENVIRONMENT).label.as_deref(), Some("v2"), "EB says v2");
}

#[test]
fn yellow_past_the_recovery_window_exits_4_with_its_causes_and_the_flag() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.yellow_after_next_deploy = Some(Duration::from_secs(600)));
    let started = Instant::now();
    let run = world.deploy(&["staging", "--tag", "v1", "--recovery-window", "5"]);
    assert_eq!(run.code, Some(4), "{}", run.output);
    assert_eq!(
        last_line(&run),
        "error: v1 runs but its health is still Yellow after 5s of recovery: pass --allow-yellow \
         to accept Yellow (i-0fa4e1b2c3d4e5f60: Application has 5xx errors on some requests.)"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "not the whole --timeout");
}

#[test]
fn the_deadline_running_out_mid_call_is_the_verdict_and_the_summary_is_always_printed() {
    let world = World::prebuilt(&["v1"]);
    world.fake.add_environment("acme-web-other", closed_port());
    world.fake.faults(|f| f.hang_next_deploy_on = Some("acme-web-other".into()));
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["deploy", "staging", "acme-web-other", "--tag", "v1", "--timeout", "25"];
    let mut started = Started::new(&root(), &args, &env);
    started.wait_for("Elastic Beanstalk: waiting at most 25s, until", 30);
    started.wait_for("acme-web-other: update accepted", 30);
    started.wait_for("| 20", 30);
    started.wait_for("INFO   Environment update completed successfully.", 30);
    // The next describe is answered too late: the deadline passes while it is in flight.
    world.fake.faults(|f| {
        f.lose_answer = Some(("DescribeEnvironments".into(), Loss::Late(Duration::from_secs(60))))
    });
    let run = started.wait(60);
    world.assert_no_secret(&run.output);
    assert_eq!(run.code, Some(5), "{}", run.output);
    run.assert_contains("summary of the deploy of v1: 1 of 2 environments succeeded")
        .assert_contains(&format!("succeeded  {ENVIRONMENT}"))
        .assert_contains("FAILED     acme-web-other  acme-web-other did not finish within 25s")
        .assert_contains("the last call did not answer: describe environment")
        .assert_lacks("check the network");
}

#[test]
fn a_stalled_endpoint_ends_the_deploy_by_its_timeout_and_ctrl_c_or_sigterm_at_once() {
    let world = World::prebuilt(&[]);
    let stalled = stalled_endpoint();
    let extra = [("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", stalled.clone())];
    let started = Instant::now();
    let run = world.deploy_with(&["staging", "--tag", "t1", "--timeout", "6"], &extra);
    let took = started.elapsed();
    assert_eq!(run.code, Some(5), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "error: Elastic Beanstalk at {stalled} did not answer within 6s (cannot describe \
             environment {ENVIRONMENT}): check the network and the endpoint \
             (AWS_ENDPOINT_URL_ELASTIC_BEANSTALK), or raise --timeout"
        )
    );
    assert!(took < Duration::from_secs(15), "ended by its timeout, took {took:?}");

    for signal in [libc::SIGINT, libc::SIGTERM] {
        let env = world.env_with(&extra);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = Started::new(&crate::support::root(), &["status", "staging"], &env);
        std::thread::sleep(Duration::from_secs(2));
        let signalled = Instant::now();
        started.signal_group(signal);
        let run = started.wait(10);
        assert!(signalled.elapsed() < Duration::from_secs(2), "ended at once");
        assert_eq!(run.code, Some(130), "{}", run.output);
        let last = run.output.trim_end().lines().last().unwrap();
        assert_eq!(
            last,
            format!(
                "error: interrupted during describe environment {ENVIRONMENT} (a call to \
                 Elastic Beanstalk was in flight)"
            )
        );
    }
}
