//! Faults and bad input, one row each: the command fails (or, for a lost cache, recovers)
//! with a one-line error naming the thing and the fix, exits non-zero, and loses nothing.
//! docs/what-happens-when.md lists these rows; the security checks are in `secrets`, the
//! web app under abuse in `web_app`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::http::stub_server_but;
use crate::support::{
    Image, Run, Started, TempDir, World, closed_port, docker, docker_lock, registry, unique,
    xtask_in,
};

/// The last line of the output: where a CI log reader looks first.
fn last_line(run: &Run) -> &str {
    run.output.trim_end().lines().last().unwrap_or("")
}

fn assert_fails_with(run: &Run, code: i32, last: &str) {
    assert_eq!(run.code, Some(code), "{}", run.output);
    assert!(last_line(run).starts_with("error: "), "one last error line:\n{}", run.output);
    assert!(last_line(run).contains(last), "expected {last:?} in the last line:\n{}", run.output);
}

// ---- Docker ---------------------------------------------------------------------------

#[test]
fn docker_missing_from_path() {
    let run = xtask_in(
        &crate::support::root(),
        &["test", "--no-cache"],
        &[("PATH", "/nonexistent-xtask-bin")],
    );
    assert_fails_with(
        &run,
        1,
        "`docker` not found on PATH: install it, or add its directory to PATH",
    );
}

#[test]
fn docker_daemon_unreachable() {
    let socket = "unix:///tmp/xtask-no-such-docker.sock";
    let run =
        xtask_in(&crate::support::root(), &["build", "--tag", "t"], &[("DOCKER_HOST", socket)]);
    assert_fails_with(
        &run,
        1,
        &format!("Docker daemon not reachable at {socket}: is Docker running?"),
    );
}

#[test]
fn an_unreadable_cache_is_a_warning_and_stays_where_it_is() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-unreadable");
    let dir = TempDir::new("unreadable");
    // A directory where the tarball should be: it can be neither read nor replaced.
    let cache = dir.path().join("image.tar");
    fs::create_dir(&cache).unwrap();
    fs::write(cache.join("keep-me"), "user data").unwrap();
    let run = xtask_in(
        &crate::support::root(),
        &["test", "--image", &image.0, "--cache-file", cache.to_str().unwrap()],
        &[],
    );
    run.assert_success()
        .assert_contains("is unusable")
        .assert_contains("warning: cache not saved")
        .assert_contains("ok: web test suite passed");
    assert_eq!(fs::read_to_string(cache.join("keep-me")).unwrap(), "user data");
    assert!(!dir.path().join("image.tar.partial").exists(), "no temporary file left");
}

#[test]
fn docker_save_killed_midway_leaves_the_previous_cache_intact() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-save-killed");
    let dir = TempDir::new("save-killed");
    let cache = dir.path().join("image.tar");
    // The previous cache: a valid tarball, of another image, so this run saves a new one.
    let saved = docker(&["save", "--output", cache.to_str().unwrap(), "debian:bookworm-slim"]);
    assert!(saved.status.success());
    let before = fs::read(&cache).unwrap();
    let path =
        crate::support::docker_shim(dir.path(), "save", "head -c 3000000 /dev/zero; kill -9 $$");
    let run = xtask_in(
        &crate::support::root(),
        &["test", "--image", &image.0, "--cache-file", cache.to_str().unwrap()],
        &[("PATH", &path)],
    );
    run.assert_success()
        .assert_contains("warning: cache not saved")
        .assert_contains("left as it was");
    assert!(fs::read(&cache).unwrap() == before, "the previous cache is byte for byte intact");
    assert!(!dir.path().join("image.tar.partial").exists(), "no temporary file left");
}

#[test]
fn ctrl_c_during_test_stops_the_container_and_leaves_nothing() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-interrupt");
    let dir = TempDir::new("interrupt");
    let project = TempDir::new("interrupt-project");
    crate::support::copy_of_workspace(project.path());
    // A suite that takes long enough to be interrupted while it runs.
    fs::write(
        project.path().join("web/tests/slow.rs"),
        "#[test]\nfn slow() { std::thread::sleep(std::time::Duration::from_secs(120)); }\n",
    )
    .unwrap();
    let cache = dir.path().join("image.tar");
    let args = ["test", "--image", &image.0, "--cache-file", cache.to_str().unwrap()];
    let mut started = Started::new(project.path(), &args, &[]);
    let container = format!("xtask-test-{}-", started.pid());
    started.wait_for("run the web test suite", 900);
    started.wait_for("Running tests/slow.rs", 60);
    started.signal_group(libc::SIGINT);
    let run = started.wait(30);
    assert_eq!(run.code, Some(130), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(last.starts_with("error: ") && last.contains("stopped and removed"), "{last}");
    let left = docker(&[
        "ps",
        "--all",
        "--filter",
        &format!("name={container}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(left.stdout.is_empty(), "the test container is gone");
    let partial: Vec<PathBuf> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(partial.iter().all(|p| !p.to_string_lossy().ends_with(".partial")), "{partial:?}");
}

// ---- Registry -------------------------------------------------------------------------

#[test]
fn an_interrupted_push_is_an_error_naming_the_registry() {
    let _lock = docker_lock();
    let registry = registry();
    let dir = TempDir::new("push-killed");
    let path = crate::support::docker_shim(
        dir.path(),
        "push",
        "echo 'error parsing HTTP 408 response body: unexpected EOF' >&2; exit 1",
    );
    let image = format!("{}/xtask-it/{}", registry.addr, unique("push"));
    let run = xtask_in(
        &crate::support::root(),
        &["build", "--push", "--tag", "t1"],
        &[
            ("PATH", &path),
            ("DEPLOY_IMAGE", &image),
            ("REGISTRY_USERNAME", &registry.username),
            ("REGISTRY_PASSWORD", &registry.password),
            ("HOME", dir.path().to_str().unwrap()),
        ],
    );
    assert_fails_with(&run, 1, "registry 127.0.0.1:5000");
    run.assert_lacks("ok: pushed").assert_lacks(&registry.password);
    docker(&["rmi", "--force", &format!("{image}:t1")]);
}

/// The private docker config directories under `dir`.
fn docker_configs(dir: &std::path::Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    entries
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("xtask-docker-"))
        .collect()
}

#[test]
fn ctrl_c_or_a_closed_terminal_during_a_push_removes_the_private_login() {
    let _lock = docker_lock();
    let registry = registry();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGHUP, 129)] {
        let dir = TempDir::new("push-signal");
        let tmp = TempDir::new("push-tmp");
        let path = crate::support::docker_shim(dir.path(), "push", "sleep 120");
        let image = format!("{}/xtask-it/{}", registry.addr, unique("push"));
        let mut started = Started::new(
            &crate::support::root(),
            &["build", "--push", "--tag", "t1"],
            &[
                ("PATH", &path),
                ("TMPDIR", tmp.path().to_str().unwrap()),
                ("DEPLOY_IMAGE", &image),
                ("REGISTRY_USERNAME", &registry.username),
                ("REGISTRY_PASSWORD", &registry.password),
                ("HOME", dir.path().to_str().unwrap()),
                ("CIRCLE_SHA1", ""),
            ],
        );
        started.wait_for(&format!("push {image}:t1"), 600);
        std::thread::sleep(Duration::from_millis(300));
        let configs = docker_configs(tmp.path());
        assert_eq!(configs.len(), 1, "one private docker config: {configs:?}");
        let config = &configs[0];
        let name = config.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(&started.pid().to_string()), "{name} is derived from the PID");
        let mode = fs::metadata(config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{name}");
        assert!(config.join("config.json").exists(), "logged in, in the private config");
        started.signal_group(signal);
        let run = started.wait(10);
        assert_eq!(run.code, Some(code), "{}", run.output);
        let last = last_line(&run);
        assert!(last.starts_with("error: interrupted during `docker --config"), "{last}");
        run.assert_lacks("ok: pushed").assert_lacks(&registry.password);
        assert!(!config.exists(), "the private docker config (and its login) is removed");
        docker(&["rmi", "--force", &format!("{image}:t1")]);
    }
}

#[test]
fn the_private_login_is_gone_after_a_push_and_after_a_refused_login() {
    let _lock = docker_lock();
    let registry = registry();
    let tmp = TempDir::new("login-tmp");
    let home = TempDir::new("login-home");
    let image = format!("{}/xtask-it/{}", registry.addr, unique("login"));
    let env = |password: &str| {
        vec![
            ("TMPDIR", tmp.path().to_str().unwrap().to_owned()),
            ("DEPLOY_IMAGE", image.clone()),
            ("REGISTRY_USERNAME", registry.username.clone()),
            ("REGISTRY_PASSWORD", password.to_owned()),
            ("HOME", home.path().to_str().unwrap().to_owned()),
            ("CIRCLE_SHA1", String::new()),
        ]
    };
    let run = |password: &str| {
        let env = env(password);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        xtask_in(&crate::support::root(), &["build", "--push", "--tag", "t1"], &env)
    };
    run(&registry.password).assert_success();
    assert!(docker_configs(tmp.path()).is_empty(), "removed after success");
    let refused = run("not-the-password");
    assert_eq!(refused.code, Some(1), "{}", refused.output);
    assert!(docker_configs(tmp.path()).is_empty(), "removed after failure");
    registry.delete(&image[registry.addr.len() + 1..], "t1");
    docker(&["rmi", "--force", &format!("{image}:t1")]);
}

// ---- S3 and Elastic Beanstalk -----------------------------------------------------------

#[test]
fn s3_down_stops_before_any_application_version() {
    let world = World::prebuilt(&["v1"]);
    let down = format!("http://127.0.0.1:{}", closed_port());
    let run = world.deploy_with(&["staging", "--tag", "v1"], &[("AWS_ENDPOINT_URL_S3", down)]);
    // The deploy lock, in the bucket, is its first write.
    assert_fails_with(&run, 1, "cannot take the deploy lock of acme-web-stg");
    assert!(last_line(&run).contains("nothing was built or changed"), "{}", run.output);
    assert!(world.fake.versions().is_empty());
    assert_eq!(world.updates(), 0);
}

#[test]
fn s3_refusing_or_failing_uploads_stops_before_any_application_version() {
    let cases = [
        (
            "403 Forbidden",
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            "AccessDenied: Access Denied",
        ),
        (
            "500 Internal Server Error",
            "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
            "InternalError",
        ),
    ];
    for (status, body, said) in cases {
        let world = World::prebuilt(&["v1"]);
        // All but the deploy lock and history: the uploads of the deploy files fail.
        let moto = world.bucket.s3.rsplit(':').next().and_then(|p| p.parse().ok());
        let ledger = &["/deploy/locks/", "/deploy/history/"];
        let stub = stub_server_but(moto, ledger, status, "application/xml", body);
        let s3 = format!("http://{stub}");
        let run = world.deploy_with(&["staging", "--tag", "v1"], &[("AWS_ENDPOINT_URL_S3", s3)]);
        assert_fails_with(&run, 1, said);
        assert!(last_line(&run).contains("no application version was created"), "{}", run.output);
        assert!(world.fake.versions().is_empty(), "{status}: no version created");
        assert_eq!(world.updates(), 0);
    }
}

#[test]
fn a_rollback_by_elastic_beanstalk_exits_3() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.roll_back_next_deploy = true);
    let run = world.deploy(&["staging", "--tag", "v1"]);
    assert_fails_with(&run, 3, "Elastic Beanstalk rolled the environment back to");
}

#[test]
fn an_unknown_environment_fails_before_building() {
    let world = World::prebuilt(&[]);
    let run = world.deploy(&["no-such-env", "--tag", "t1"]);
    assert_fails_with(&run, 1, "environment no-such-env not found in application acme-web");
    run.assert_lacks("$ docker build");
}

// ---- Templates ------------------------------------------------------------------------

/// A copy of the workspace with `file` replaced by `content`, run with `args`.
fn with_file(file: &str, content: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let project = TempDir::new("template");
    crate::support::copy_of_workspace(project.path());
    fs::write(project.path().join(file), content).unwrap();
    xtask_in(project.path(), args, env)
}

#[test]
fn broken_templates_are_named_with_the_place() {
    let dockerrun =
        fs::read_to_string(crate::support::root().join("Dockerrun.aws.json.template")).unwrap();
    let local = ["deploy", "--local", "--dry-run", "--tag", "t"];
    let run = with_file(
        "Dockerrun.aws.json.template",
        &dockerrun.replace("\"80\"\n", "\"80\",\n"),
        &local,
        &[],
    );
    assert_fails_with(&run, 1, "Dockerrun.aws.json.template: not valid JSON at line 14, column");
    let run = with_file(
        "Dockerrun.aws.json.template",
        &dockerrun.replace("<TAG>", "<SHA1>"),
        &local,
        &[],
    );
    assert_fails_with(&run, 1, "unknown placeholder <SHA1> at /Image/Name");
    let run = with_file(
        "eb-options.json.template",
        r#"[{"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "X", "Value": "$NOT_SET_ANYWHERE"}]"#,
        &local,
        &[],
    );
    assert_fails_with(
        &run,
        1,
        "NOT_SET_ANYWHERE (for aws:elasticbeanstalk:application:environment:X) not set",
    );
}

#[test]
fn bad_settings_are_named_with_the_fix() {
    let run = xtask_in(&crate::support::root(), &["build", "--tag", "t"], &[("DEPLOY_IMAGE", " ")]);
    assert_fails_with(&run, 1, "no image repository configured");
    let run = xtask_in(
        &crate::support::root(),
        &["build", "--tag", "sha:sha"],
        &[("DEPLOY_IMAGE", "quay.io/acme/web")],
    );
    assert_fails_with(&run, 1, "invalid image tag \"sha:sha\"");
    let run = xtask_in(
        &crate::support::root(),
        &["deploy", "--dry-run", "--tag", "t"],
        &[
            ("CIRCLE_BRANCH", "feature/y"),
            ("REGISTRY_USERNAME", "robot"),
            ("REGISTRY_PASSWORD", "not-the-real-one"),
        ],
    );
    assert_fails_with(&run, 1, "branch \"feature/y\" deploys nowhere");
    let manifest = fs::read_to_string(crate::support::root().join("Cargo.toml")).unwrap();
    let run = with_file(
        "Cargo.toml",
        &manifest.replace("image = ", "imgae = "),
        &["build", "--tag", "t"],
        &[],
    );
    assert_fails_with(&run, 1, "imgae");
}
