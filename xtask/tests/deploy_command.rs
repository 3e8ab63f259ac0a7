//! `cargo xtask deploy ENV` end to end through the real AWS SDK clients: S3 is moto
//! (`.ci/moto`), Elastic Beanstalk is the in-process fake of `support::eb_fake`, the image
//! goes through the local registry, and the fake runs it the way Elastic Beanstalk would.

mod support;

use std::time::{Duration, Instant};

use support::eb_fake::{Config, EbFake};
use support::{
    Bucket, Run, TempDir, closed_port, docker_lock, registry, unique, wait_healthy, xtask_in,
};

const ENVIRONMENT: &str = "acme-web-stg";

/// One deploy test's world: a bucket, the fake with one environment, an image repository,
/// a secret option value, and a HOME of its own.
struct World {
    bucket: Bucket,
    fake: EbFake,
    port: u16,
    image: String,
    secret: String,
    home: TempDir,
}

impl World {
    fn new() -> World {
        let bucket = Bucket::new();
        let fake = EbFake::start(Config {
            application: "acme-web".into(),
            bucket: bucket.name.clone(),
            s3: bucket.s3.clone(),
            update_takes: Duration::from_secs(1),
        });
        let port = closed_port();
        fake.add_environment(ENVIRONMENT, port);
        World {
            bucket,
            fake,
            port,
            image: format!("{}/xtask-it/deploy", registry().addr),
            secret: unique("secret-key-value"),
            home: TempDir::new("deploy-home"),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let registry = registry();
        let mut env = self.fake.client_env();
        env.extend([
            ("DEPLOY_IMAGE", self.image.clone()),
            ("REGISTRY_USERNAME", registry.username),
            ("REGISTRY_PASSWORD", registry.password),
            ("SECRET_KEY", self.secret.clone()),
            ("HOME", self.home.path().display().to_string()),
            ("CIRCLE_SHA1", String::new()),
            ("CIRCLE_BRANCH", String::new()),
            ("EB_BUCKET", String::new()),
        ]);
        env
    }

    fn deploy(&self, args: &[&str]) -> Run {
        self.deploy_with(args, &[])
    }

    fn deploy_with(&self, args: &[&str], extra: &[(&'static str, String)]) -> Run {
        let mut env = self.env();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key, value.clone()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all = vec!["deploy"];
        all.extend_from_slice(args);
        let run = xtask_in(&support::root(), &all, &env);
        self.assert_no_secret(&run.output);
        run
    }

    fn assert_no_secret(&self, text: &str) {
        assert!(!text.contains(&self.secret), "the secret option value leaked:\n{text}");
        assert!(!text.contains(&registry().password), "the registry password leaked:\n{text}");
    }

    fn updates(&self) -> usize {
        self.fake.requests().iter().filter(|r| r.action == "UpdateEnvironment").count()
    }
}

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
        .assert_contains("plan: 127.0.0.1:5000/xtask-it/deploy:t1 to acme-web-stg of acme-web (dry run: nothing is run)")
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
    let mut env = world.env();
    env.push(("NO_COLOR", "1".into()));
    let root = support::root();
    let tag = unique("interrupted");
    let args = ["--project-dir", root.to_str().unwrap(), "deploy", "staging", "--tag", &tag];
    let mut expr = duct::cmd(env!("CARGO_BIN_EXE_xtask"), args);
    for (key, value) in &env {
        expr = expr.env(key, value);
    }
    let handle = expr.stderr_to_stdout().stdout_capture().unchecked().start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while world.updates() == 0 {
        assert!(Instant::now() < deadline, "the deploy never reached UpdateEnvironment");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    for pid in handle.pids() {
        // SAFETY: kill(2) on the child we started and have not reaped.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
    }
    let output = handle.wait().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    world.assert_no_secret(&text);
    assert_eq!(output.status.code(), Some(130), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(last.contains("Elastic Beanstalk continues the deployment on its own"), "{last}");
    assert!(last.contains(&format!("cargo xtask status {ENVIRONMENT}")), "{last}");
}
