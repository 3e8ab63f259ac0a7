//! `cargo xtask deploy ENV` end to end through the real AWS SDK clients: S3 is moto
//! (`.ci/moto`), Elastic Beanstalk is the in-process fake of `support::eb_fake`, the image
//! goes through the local registry, and the fake runs it the way Elastic Beanstalk would.

use std::time::{Duration, Instant};

use crate::support::{ENVIRONMENT, Run, World, docker_lock, unique, wait_healthy, xtask_in};

#[test]
fn a_deploy_ends_with_the_new_version_answering_and_a_redeploy_reuses_everything() {
    let _lock = docker_lock();
    let world = World::new();
    let tag = unique("v");

    let run = world.deploy(&["staging", "--tag", &tag]);
    let exited = Instant::now();
    run.assert_success()
        .assert_contains(&format!(
            "put s3://{}/acme-web/deploy/registry-auth.json",
            world.bucket.name
        ))
        .assert_contains(&format!("created version {tag}"))
        .assert_contains("Environment update completed successfully.")
        .assert_contains(&format!("ok: {ENVIRONMENT} runs {tag}, health Green"));
    assert_eq!(world.updates(), 1, "one environment update carries version and options");
    assert!(world.fake.requests().iter().any(|r| r.action == "CreateStorageLocation"));

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
    let dockerrun = world
        .bucket
        .get(&format!("acme-web/deploy/{tag}/Dockerrun.aws.json"))
        .expect("Dockerrun uploaded");
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

/// The benchmark figures of the deploy issue, from the fake's request log.
fn figures(world: &World, exited: Instant) {
    let requests = world.fake.requests();
    let update = requests.iter().find(|r| r.action == "UpdateEnvironment").unwrap().at;
    let ready = world.fake.environment(ENVIRONMENT).ready_at.unwrap();
    let describes = requests
        .iter()
        .filter(|r| r.at > update && r.at <= exited && r.action.starts_with("Describe"))
        .count();
    let waited = exited.duration_since(update).as_secs_f64();
    eprintln!(
        "deploy figures: environment updates {}, Ready -> exit {:.2}s, describe calls/s while waiting {:.2} ({describes} in {waited:.1}s)",
        world.updates(),
        exited.saturating_duration_since(ready).as_secs_f64(),
        describes as f64 / waited
    );
}

#[test]
fn a_busy_environment_is_waited_for() {
    let _lock = docker_lock();
    let world = World::new();
    world.fake.faults(|f| f.busy_for = Some(Duration::from_secs(6)));
    let tag = unique("busy");
    world
        .deploy(&["acme-web-stg", "--tag", &tag])
        .assert_success()
        .assert_contains(&format!("{ENVIRONMENT} is Updating: waiting until it is Ready"))
        .assert_contains(&format!("runs {tag}, health Green"));
}

#[test]
fn a_failed_deploy_exits_3_with_the_error_event() {
    let _lock = docker_lock();
    let world = World::new();
    world.fake.faults(|f| f.fail_next_deploy = true);
    let run = world.deploy(&["staging", "--tag", &unique("fail")]);
    assert_eq!(run.code, Some(3), "{}", run.output);
    run.assert_contains("ERROR  Failed to deploy application")
        .assert_contains("error: Elastic Beanstalk reported: Failed to deploy application");
}

#[test]
fn throttling_bursts_are_waited_out() {
    let _lock = docker_lock();
    let world = World::new();
    world.fake.faults(|f| f.throttle_next = 5);
    let tag = unique("throttled");
    world
        .deploy(&["staging", "--tag", &tag])
        .assert_success()
        .assert_contains(&format!("runs {tag}"));
    assert_eq!(world.fake.faults_snapshot().throttle_next, 0, "every throttled answer was retried");
}

#[test]
fn a_hanging_update_times_out_with_its_own_exit_status() {
    let _lock = docker_lock();
    let world = World::new();
    world.fake.faults(|f| f.hang_next_deploy = true);
    let run = world.deploy(&["staging", "--tag", &unique("hang"), "--timeout", "6"]);
    assert_eq!(run.code, Some(5), "{}", run.output);
    run.assert_contains(&format!("error: {ENVIRONMENT} did not finish within 6s (Updating"))
        .assert_contains(&format!("cargo xtask status {ENVIRONMENT}"));
}

#[test]
fn an_unset_template_variable_fails_before_any_call() {
    let world = World::new();
    let run = world.deploy_with(&["staging", "--tag", "t1"], &[("SECRET_KEY", String::new())]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: eb-options.json.template: SECRET_KEY (for aws:elasticbeanstalk:application:environment:SECRET_KEY) not set")
        .assert_lacks("$ docker");
    assert!(world.fake.requests().is_empty(), "no AWS call was made");
    assert!(world.bucket.keys().is_empty(), "nothing was uploaded");
}

#[test]
fn the_version_quota_points_at_versions_prune() {
    let _lock = docker_lock();
    let world = World::new();
    world.fake.faults(|f| f.version_quota = true);
    let run = world.deploy(&["staging", "--tag", &unique("quota")]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("quota of application versions is reached")
        .assert_contains("cargo xtask versions prune");
    assert_eq!(world.updates(), 0);
}

#[test]
fn dry_run_prints_the_plan_masks_secrets_and_calls_nothing() {
    let world = World::new();
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
    let world = World::new();
    let run = world.deploy_with(&["--tag", "t1"], &[("CIRCLE_BRANCH", "feature/x".into())]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: branch \"feature/x\" deploys nowhere: pass ENV")
        .assert_contains("release/stg -> staging (acme-web-stg)");
}

#[test]
fn ctrl_c_while_waiting_says_how_to_follow_the_deployment() {
    let _lock = docker_lock();
    let world = World::new();
    world.fake.faults(|f| f.hang_next_deploy = true);
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let root = crate::support::root();
    let tag = unique("interrupted");
    let args = ["--project-dir", root.to_str().unwrap(), "deploy", "staging", "--tag", &tag];
    let handle = crate::support::xtask_start(&args, &env);
    let deadline = Instant::now() + Duration::from_secs(300);
    while world.updates() == 0 {
        assert!(Instant::now() < deadline, "the deploy never reached UpdateEnvironment");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (code, text) = crate::support::interrupt(handle);
    world.assert_no_secret(&text);
    assert_eq!(code, Some(130), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(last.contains("Elastic Beanstalk continues the deployment on its own"), "{last}");
    assert!(last.contains(&format!("cargo xtask status {ENVIRONMENT}")), "{last}");
}

fn xtask(world: &World, args: &[&str]) -> Run {
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = xtask_in(&crate::support::root(), args, &env);
    world.assert_no_secret(&run.output);
    run
}

#[test]
fn status_shows_what_runs_where_as_text_and_stable_json() {
    let _lock = docker_lock();
    let world = World::new();
    let tag = unique("status");
    world.deploy(&["staging", "--tag", &tag]).assert_success();

    let url = format!("http://127.0.0.1:{}/", world.port);
    xtask(&world, &["status", "staging"])
        .assert_success()
        .assert_contains(&format!("acme-web / {ENVIRONMENT}"))
        .assert_contains(&format!("version  {tag}"))
        .assert_contains("status   Ready")
        .assert_contains("health   Green (Ok)")
        .assert_contains(&format!("url      {url}"))
        .assert_contains("INFO   Environment update completed successfully.");

    let run = xtask(&world, &["status", "staging", "--json", "--events", "2"]);
    run.assert_success();
    let json: serde_json::Value = serde_json::from_str(&run.output).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "application",
            "environment",
            "version",
            "status",
            "health",
            "health_status",
            "causes",
            "url",
            "updated",
            "events"
        ]
    );
    assert_eq!(json["version"], tag.as_str());
    assert_eq!(json["url"], url.as_str());
    assert_eq!(json["events"].as_array().unwrap().len(), 2);
    assert_eq!(json["events"][0]["message"], "Environment update completed successfully.");

    let run = xtask(&world, &["status"]);
    run.assert_success();
    let line = run.output.lines().find(|l| l.starts_with(ENVIRONMENT)).unwrap();
    assert!(line.contains("Ready") && line.contains("Green") && line.contains(&tag), "{line}");
}

#[test]
fn rollback_after_a_good_then_a_bad_release_brings_the_good_one_back() {
    let _lock = docker_lock();
    let world = World::new();
    let (good, bad) = (unique("good"), unique("bad"));
    world.deploy(&["staging", "--tag", &good]).assert_success();
    world.deploy(&["staging", "--tag", &bad]).assert_success();
    let addr = format!("127.0.0.1:{}", world.port);
    let version = |addr: &str| -> String {
        let body = wait_healthy(addr, 5).body;
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(version(&addr), bad);

    xtask(&world, &["rollback", "staging", "--dry-run"])
        .assert_success()
        .assert_contains(&format!("roll {ENVIRONMENT} back from {bad} to {good} (the version {ENVIRONMENT} ran before, from its events)"))
        .assert_contains("dry run: nothing is changed");
    assert_eq!(world.updates(), 2, "a dry run updates nothing");

    xtask(&world, &["rollback", "staging"])
        .assert_success()
        .assert_contains(&format!("ok: {ENVIRONMENT} runs {good}, health Green"));
    assert_eq!(version(&addr), good, "the container of the good version answers");
    assert_eq!(world.fake.environment(ENVIRONMENT).label.as_deref(), Some(good.as_str()));

    let run = xtask(&world, &["rollback", "staging", "--to", "deleted-long-ago"]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: application version deleted-long-ago no longer exists in acme-web");
}

#[test]
fn prune_keeps_the_deployed_version_even_when_it_is_the_oldest() {
    let _lock = docker_lock();
    let world = World::new();
    let deployed = unique("deployed");
    world.deploy(&["staging", "--tag", &deployed]).assert_success();
    for (n, label) in ["newer-1", "newer-2", "newer-3", "newer-4"].iter().enumerate() {
        world.fake.add_version(label, Duration::from_millis(40 - 10 * n as u64));
    }
    let all = world.fake.versions();
    assert_eq!(all.len(), 5);

    xtask(&world, &["versions", "prune", "--keep", "2", "--dry-run"])
        .assert_success()
        .assert_contains("keep the 2 newest and 1 older ones in use, delete 2")
        .assert_contains("would delete newer-2")
        .assert_contains("would delete newer-1")
        .assert_contains("dry run: nothing was deleted")
        .assert_contains("application versions in this region, all applications: 5 of 1000");
    assert_eq!(world.fake.versions(), all, "a dry run deletes nothing");

    xtask(&world, &["versions", "prune", "--keep", "2"])
        .assert_success()
        .assert_contains("deleted newer-1")
        .assert_contains("3 of 1000");
    let mut left = world.fake.versions();
    left.sort();
    let mut expected = vec![deployed.clone(), "newer-3".to_owned(), "newer-4".to_owned()];
    expected.sort();
    assert_eq!(left, expected, "the deployed version survives although it is the oldest");

    let run = xtask(&world, &["versions", "list"]);
    run.assert_success();
    let line = run.output.lines().find(|l| l.starts_with(&deployed)).unwrap();
    assert!(line.ends_with(ENVIRONMENT), "{line}");
}
