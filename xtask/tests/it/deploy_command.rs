//! `cargo xtask deploy ENV` end to end through the real AWS SDK clients: S3 is moto
//! (`.ci/moto`), Elastic Beanstalk is the in-process fake of `support::eb_fake`, the image
//! goes through the local registry, and the fake runs it the way Elastic Beanstalk would.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::{
    ENVIRONMENT, Started, TempDir, World, docker_lock, unique, version_at, wait_healthy,
};

/// The messages of the fake's successful update, in the order Elastic Beanstalk emits them.
const UPDATE_EVENTS: [&str; 5] = [
    "Environment update is starting.",
    "Deploying new version to instance(s).",
    "Instance deployment completed successfully.",
    "New application version was deployed to running EC2 instances.",
    "Environment update completed successfully.",
];

/// The S3 key of the one bundle uploaded for `tag`.
fn bundle_key(world: &World, tag: &str) -> String {
    let prefix = format!("acme-web/deploy/{tag}/");
    let keys: Vec<String> =
        world.bucket.keys().into_iter().filter(|k| k.starts_with(&prefix)).collect();
    assert_eq!(keys.len(), 1, "one bundle for {tag}: {keys:?}");
    keys[0].clone()
}

#[test]
fn a_deploy_ends_with_the_new_version_answering_and_a_redeploy_reuses_everything() {
    let _lock = docker_lock();
    let world = World::new();
    // Elastic Beanstalk's longest label.
    let tag = format!("{:x<100}", unique("v"));

    let run = world.deploy(&["staging", "--tag", &tag]);
    let exited = Instant::now();
    run.assert_success()
        .assert_contains(&format!(
            "instances' pull credentials written: user {}, s3://{}/acme-web/deploy/\
             registry-auth.json (encrypted)",
            crate::support::registry().username,
            world.bucket.name
        ))
        .assert_contains(&format!("created version {tag}"))
        .assert_contains(&format!("ok: {ENVIRONMENT} runs {tag}, health Green"));
    assert_eq!(world.updates(), 1, "one environment update carries version and options");
    assert!(world.fake.requests().iter().any(|r| r.action == "CreateStorageLocation"));

    // Its events, read in pages of two: oldest first, each once, times of one width.
    let lines: Vec<&str> =
        run.output.lines().filter(|l| UPDATE_EVENTS.iter().any(|m| l.ends_with(m))).collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| UPDATE_EVENTS.iter().find(|m| l.ends_with(*m)).unwrap())
        .copied()
        .collect();
    assert_eq!(messages, UPDATE_EVENTS, "{}", run.output);
    for line in &lines {
        let time = line.split_whitespace().next().unwrap();
        assert_eq!(time.len(), "2026-11-30T05:20:03.500Z".len(), "{line}");
    }

    // The new version answers, with the option settings of the template.
    let health: serde_json::Value =
        serde_json::from_str(&wait_healthy(&format!("127.0.0.1:{}", world.port), 5).body).unwrap();
    assert_eq!(health["version"], tag.as_str());
    assert_eq!(health["environment"], "staging", "APP_ENV=${{DEPLOY_ENV}} rendered");
    let env = world.fake.environment(ENVIRONMENT);
    assert!(
        env.options.iter().any(|(_, name, value)| name == "SECRET_KEY" && *value == world.secret)
    );

    // S3 holds the auth file, encrypted, and a Dockerrun without secrets.
    let auth = world.bucket.get("acme-web/deploy/registry-auth.json").expect("auth file uploaded");
    assert_eq!(auth.encryption.as_deref(), Some("AES256"));
    assert!(auth.body.contains("\"auths\""));
    let dockerrun = world.bucket.get(&bundle_key(&world, &tag)).expect("Dockerrun uploaded");
    assert!(dockerrun.body.contains(&format!("{}:{tag}", world.image)), "{}", dockerrun.body);
    for key in world.bucket.keys().iter().filter(|k| !k.ends_with("registry-auth.json")) {
        world.assert_no_secret(&world.bucket.get(key).unwrap().body);
    }

    figures(&world, exited);

    // The same tag again: image and version reused, one more update.
    let run = world.deploy(&["staging", "--tag", &tag]);
    run.assert_success()
        .assert_contains("nothing to build or push")
        .assert_contains(&format!("version {tag} exists with this bundle: reused"));
    assert_eq!(world.updates(), 2);
    assert_eq!(world.fake.versions().len(), 1);
}

#[test]
fn a_version_never_changes_a_redeploy_with_another_bundle_is_refused_before_any_write() {
    let world = World::prebuilt(&["v1"]);
    let project = TempDir::new("immutable");
    crate::support::copy_of_workspace(project.path());
    let tag = "v1".to_owned();
    world.deploy_in(project.path(), &["staging", "--tag", &tag], &[]).assert_success();
    let key = bundle_key(&world, &tag);
    let first = world.bucket.get(&key).unwrap().body;
    let auth = world.bucket.get("acme-web/deploy/registry-auth.json").unwrap().body;

    // The template changes, the tag does not.
    let template = project.path().join("Dockerrun.aws.json.template");
    let changed = fs::read_to_string(&template).unwrap().replace("/var/log/web", "/var/log/app");
    fs::write(&template, changed).unwrap();
    let run = world.deploy_in(project.path(), &["staging", "--tag", &tag], &[]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: application version {tag} already exists with another bundle (sha256:"
        )),
        "{last}"
    );
    assert!(last.contains(&format!("at s3://{}/{key}", world.bucket.name)), "{last}");
    assert!(last.contains("than this deploy's (sha256:"), "{last}");
    assert!(last.contains("a version never changes once created"), "{last}");
    assert_eq!(world.bucket.get(&key).unwrap().body, first, "the first bundle, byte for byte");
    assert_eq!(bundle_key(&world, &tag), key, "no second bundle was written");
    assert_eq!(
        world.bucket.get("acme-web/deploy/registry-auth.json").unwrap().body,
        auth,
        "refused before any write"
    );
    assert_eq!(world.updates(), 1);
}

/// The benchmark figures of the deploy issue, from the fake's request log.
fn figures(world: &World, exited: Instant) {
    let requests = world.fake.requests();
    let update = requests.iter().find(|r| r.action == "UpdateEnvironment").unwrap().at;
    let verified = world.fake.environment(ENVIRONMENT).verified_at.unwrap();
    let describes = requests
        .iter()
        .filter(|r| r.at > update && r.at <= exited && r.action.starts_with("Describe"))
        .count();
    let waited = exited.duration_since(update).as_secs_f64();
    eprintln!(
        "deploy figures: environment updates {}, first health refresh with every instance on \
         the new version and Green -> exit {:.2}s, describe calls/s while waiting {:.2} \
         ({describes} in {waited:.1}s)",
        world.updates(),
        exited.saturating_duration_since(verified).as_secs_f64(),
        describes as f64 / waited
    );
}

#[test]
fn a_busy_environment_is_waited_for() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.busy_for = Some(Duration::from_secs(6)));
    let tag = "v1";
    world
        .deploy(&["acme-web-stg", "--tag", tag])
        .assert_success()
        .assert_contains(&format!("{ENVIRONMENT} is Updating: waiting until it is Ready"))
        .assert_contains(&format!("runs {tag}, health Green"));
}

#[test]
fn a_failed_deploy_exits_3_with_the_error_events() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.fail_next_deploy = true);
    let run = world.deploy(&["staging", "--tag", "v1"]);
    assert_eq!(run.code, Some(3), "{}", run.output);
    run.assert_contains("ERROR  Failed to deploy application.").assert_contains(
        "error: Elastic Beanstalk reported: Instance deployment failed. For details, see \
         'eb-engine.log'. (and 3 more errors, above)",
    );
}

#[test]
fn a_failed_instance_fails_the_deploy_though_elastic_beanstalk_then_says_success() {
    let world = World::prebuilt(&["v1", "v2"]);
    let good = "v1";
    world.deploy(&["staging", "--tag", good]).assert_success();
    world.fake.faults(|f| f.fail_instances_next_deploy = true);
    let run = world.deploy(&["staging", "--tag", "v2"]);
    assert_eq!(run.code, Some(3), "{}", run.output);
    run.assert_contains("INFO   Environment update completed successfully.")
        .assert_contains("ERROR  [Instance: i-")
        .assert_lacks(&format!("ok: {ENVIRONMENT} runs"));
    let last = run.output.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        "error: Elastic Beanstalk reported: Instance deployment failed. For details, see \
         'eb-engine.log'. (and 1 more error, above)"
    );
    assert_eq!(version_at(world.port), good, "the instance runs the old one");
}

#[test]
fn red_health_after_the_update_recovers_within_the_window() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.red_after_next_deploy = Some(Duration::from_secs(6)));
    let tag = "v1";
    world
        .deploy(&["staging", "--tag", tag])
        .assert_success()
        .assert_contains("WARN   Environment health has transitioned from Ok to Severe.")
        .assert_contains(&format!("{ENVIRONMENT} runs {tag}, health Red: waiting up to 60s"))
        .assert_contains("cause: ELB processes are not healthy on all instances.")
        .assert_contains("INFO   Environment health has transitioned from Severe to Ok.")
        .assert_contains(&format!("ok: {ENVIRONMENT} runs {tag}, health Green"));
}

#[test]
fn red_health_that_outlasts_the_window_exits_4_with_its_causes() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.red_after_next_deploy = Some(Duration::from_secs(600)));
    let tag = "v1";
    let run = world.deploy(&["staging", "--tag", tag, "--recovery-window", "4"]);
    assert_eq!(run.code, Some(4), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "error: {tag} runs but its health is still Red after 4s of recovery \
             (i-0fa4e1b2c3d4e5f60: ELB health is failing or not available for all instances.)"
        )
    );
}

#[test]
fn an_environment_that_turns_busy_before_our_update_is_waited_for_and_updated() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.busy_at_update = Some(Duration::from_secs(4)));
    let tag = "v1";
    world
        .deploy(&["staging", "--tag", tag])
        .assert_success()
        .assert_contains(&format!("{ENVIRONMENT} turned busy before our update"))
        .assert_contains(&format!("ok: {ENVIRONMENT} runs {tag}, health Green"));
    assert_eq!(world.updates(), 2, "refused once, then accepted");
}

#[test]
fn a_label_longer_than_elastic_beanstalk_takes_is_refused_before_building() {
    let world = World::prebuilt(&[]);
    let tag = "v".repeat(101);
    let run = world.deploy(&["staging", "--tag", &tag]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains(
        "is 101 characters, but the Elastic Beanstalk version label it becomes \
                         is at most 100: pass a shorter --tag",
    )
    .assert_lacks("$ docker");
    assert!(world.fake.requests().is_empty());
}

#[test]
fn throttling_of_any_action_beyond_the_sdk_retries_is_waited_out() {
    let world = World::prebuilt(&["v1", "v2"]);
    // More than the SDK's 3 attempts, from the first call on (DescribeEnvironments), and
    // again later (CreateApplicationVersion, UpdateEnvironment, …).
    world.fake.faults(|f| f.throttle_next = 7);
    let tag = "v1";
    let run = world.deploy(&["staging", "--tag", tag]);
    run.assert_success()
        .assert_contains("Elastic Beanstalk is throttling this account (Throttling: Rate exceeded)")
        .assert_contains(&format!("runs {tag}"));
    assert_eq!(world.fake.faults_snapshot().throttle_next, 0, "every throttled answer was retried");
    world.fake.faults(|f| f.throttle_next = 5);
    world.deploy(&["staging", "--tag", "v2"]).assert_success();
}

#[test]
fn a_hanging_update_times_out_with_its_own_exit_status() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.hang_next_deploy = true);
    let run = world.deploy(&["staging", "--tag", "v1", "--timeout", "6"]);
    assert_eq!(run.code, Some(5), "{}", run.output);
    run.assert_contains(&format!("error: {ENVIRONMENT} did not finish within 6s, at "))
        .assert_contains(" UTC (Updating, health Grey")
        .assert_contains(&format!("cargo xtask status {ENVIRONMENT}"));
}

#[test]
fn an_unset_template_variable_fails_before_any_call() {
    let world = World::prebuilt(&[]);
    let run = world.deploy_with(&["staging", "--tag", "t1"], &[("SECRET_KEY", String::new())]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: eb-options.json.template: SECRET_KEY (for aws:elasticbeanstalk:application:environment:SECRET_KEY) not set")
        .assert_lacks("$ docker");
    assert!(world.fake.requests().is_empty(), "no AWS call was made");
    assert!(world.bucket.keys().is_empty(), "nothing was uploaded");
}

#[test]
fn the_version_quota_points_at_versions_prune() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.version_quota = true);
    let run = world.deploy(&["staging", "--tag", "v1"]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("quota of application versions is reached")
        .assert_contains("cargo xtask versions prune");
    assert_eq!(world.updates(), 0);
}

#[test]
fn dry_run_prints_the_plan_masks_secrets_and_calls_nothing() {
    let world = World::prebuilt(&[]);
    // No ENV: the branch decides, and CIRCLE_BRANCH names it.
    let run = world
        .deploy_with(&["--dry-run", "--tag", "t1"], &[("CIRCLE_BRANCH", "release/stg".into())]);
    run.assert_success()
        .assert_contains(&format!(
            "plan: {}:t1 to acme-web-stg of acme-web (dry run: nothing is run)",
            world.image
        ))
        .assert_contains("CreateStorageLocation")
        .assert_contains("SECRET_KEY = ***")
        .assert_contains("one UpdateEnvironment of acme-web-stg: version t1");
    assert!(world.fake.requests().is_empty());
}

#[test]
fn a_branch_without_mapping_lists_the_mappings() {
    let world = World::prebuilt(&[]);
    let run = world.deploy_with(&["--tag", "t1"], &[("CIRCLE_BRANCH", "feature/x".into())]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: branch \"feature/x\" deploys nowhere: pass ENV")
        .assert_contains("release/stg -> staging (acme-web-stg)");
}

#[test]
fn ctrl_c_while_waiting_says_how_to_follow_the_deployment() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.hang_next_deploy = true);
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tag = "v1";
    let mut started =
        Started::new(&crate::support::root(), &["deploy", "staging", "--tag", tag], &env);
    started.wait_for("update accepted", 300);
    std::thread::sleep(Duration::from_millis(500));
    started.signal_group(libc::SIGINT);
    let run = started.wait(10);
    world.assert_no_secret(&run.output);
    assert_eq!(run.code, Some(130), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(last.contains("Elastic Beanstalk continues the deployment on its own"), "{last}");
    assert!(last.contains(&format!("cargo xtask status {ENVIRONMENT}")), "{last}");
}

#[test]
fn ctrl_c_during_the_push_stops_before_anything_reaches_elastic_beanstalk() {
    let _lock = docker_lock();
    let world = World::new();
    let shim = TempDir::new("slow-push");
    let path = crate::support::docker_shim(shim.path(), "push", "sleep 120");
    let env = world.env_with(&[("PATH", path)]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tag = unique("unpushed");
    let mut started =
        Started::new(&crate::support::root(), &["deploy", "staging", "--tag", &tag], &env);
    started.wait_for(&format!(" push {}:{tag}", world.image), 600);
    std::thread::sleep(Duration::from_millis(500));
    started.signal_group(libc::SIGINT);
    let run = started.wait(10);
    assert_eq!(run.code, Some(130), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(last.starts_with("error: interrupted during `docker"), "{last}");
    assert!(last.contains(" push "), "{last}");
    assert!(world.fake.versions().is_empty() && world.updates() == 0);
    // Nothing uploaded: the one object is the deploy history, which records the interruption
    // (and the lock is released).
    let history = format!("acme-web/deploy/history/{ENVIRONMENT}.json");
    assert_eq!(world.bucket.keys(), std::slice::from_ref(&history), "nothing uploaded");
    let records = world.bucket.get(&history).unwrap().body;
    assert!(records.contains("\"outcome\": \"interrupted\""), "{records}");
}
