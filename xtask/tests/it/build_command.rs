//! `cargo xtask build` against the real Docker daemon and the local registry started by
//! `.ci/registry` (htpasswd auth, 127.0.0.1:5000). Every captured output is scanned for the
//! registry password.

use std::fs;
use std::path::Path;

use crate::support::{
    Container, Registry, Run, TempDir, closed_port, docker, docker_lock, image_id, registry,
    unique, wait_healthy, xtask_in,
};

/// An image pushed by a test: removed from the registry and the daemon when the test ends.
struct Pushed<'a> {
    registry: &'a Registry,
    path: String,
    tag: String,
}

impl Pushed<'_> {
    fn repository(&self) -> String {
        format!("{}/{}", self.registry.addr, self.path)
    }

    fn reference(&self) -> String {
        format!("{}:{}", self.repository(), self.tag)
    }
}

impl Drop for Pushed<'_> {
    fn drop(&mut self) {
        self.registry.delete(&self.path, &self.tag);
        docker(&["rmi", "--force", &self.reference()]);
    }
}

/// Runs `cargo xtask build ARGS` with a HOME of its own, registry credentials and the image
/// setting in the environment, and checks the password appears nowhere in the output.
fn build(home: &Path, image: &str, password: &str, args: &[&str]) -> Run {
    let registry = registry();
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let run = xtask_in(
        &crate::support::root(),
        &all,
        &[
            ("HOME", home.to_str().unwrap()),
            ("DEPLOY_IMAGE", image),
            ("REGISTRY_USERNAME", registry.username.as_str()),
            ("REGISTRY_PASSWORD", password),
            ("CIRCLE_SHA1", ""),
        ],
    );
    assert!(!run.output.contains(password), "the password leaked into:\n{}", run.output);
    assert!(!run.output.contains(&registry.password), "the password leaked into:\n{}", run.output);
    run
}

fn home_with_docker_config() -> (TempDir, String) {
    let home = TempDir::new("home");
    let config = home.path().join(".docker").join("config.json");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let sentinel = r#"{"auths":{"example.invalid":{"auth":"dXNlcjpwYXNz"}}}"#.to_owned();
    fs::write(&config, &sentinel).unwrap();
    (home, sentinel)
}

#[test]
fn pushes_then_the_pulled_image_reports_its_version_and_a_rerun_does_nothing() {
    let _lock = docker_lock();
    let registry = registry();
    let pushed = Pushed {
        registry: &registry,
        path: format!("xtask-it/{}", unique("web")),
        tag: unique("t"),
    };
    let (home, sentinel) = home_with_docker_config();

    let run = build(
        home.path(),
        &pushed.repository(),
        &registry.password,
        &["--push", "--tag", &pushed.tag],
    );
    run.assert_success()
        .assert_contains("--password-stdin 127.0.0.1:5000 <<< ***")
        .assert_contains("docker build")
        .assert_contains(&format!("--build-arg APP_VERSION={}", pushed.tag))
        .assert_contains(&format!("ok: pushed {}", pushed.reference()));
    let digest = registry.digest(&pushed.path, &pushed.tag).expect("the registry has the image");
    let config = home.path().join(".docker").join("config.json");
    assert_eq!(fs::read_to_string(&config).unwrap(), sentinel, "~/.docker/config.json untouched");

    // Pull it back as a deploy would, after removing it locally, and run it.
    assert!(docker(&["rmi", &pushed.reference()]).status.success());
    let pull_config = TempDir::new("pull-config");
    registry.login(pull_config.path());
    let pull = duct::cmd!("docker", "--config", pull_config.path(), "pull", pushed.reference())
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .unwrap();
    assert!(pull.status.success(), "{}", String::from_utf8_lossy(&pull.stderr));
    let container = Container::start("xtask-it-run", &pushed.reference(), "local");
    let health = wait_healthy(&container.host_port(80), 10);
    let json: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(json["version"], pushed.tag.as_str(), "{}", health.body);
    let user = docker(&["inspect", "--format", "{{.Config.User}}", &pushed.reference()]);
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "10001:10001");

    // A second build of the same tag: neither built nor pushed, registry unchanged.
    let run = build(
        home.path(),
        &pushed.repository(),
        &registry.password,
        &["--push", "--tag", &pushed.tag],
    );
    run.assert_success()
        .assert_contains("is already in 127.0.0.1:5000: nothing to build or push")
        .assert_lacks("docker build")
        .assert_lacks(" push ");
    assert_eq!(registry.digest(&pushed.path, &pushed.tag), Some(digest));
}

#[test]
fn a_wrong_password_is_a_clear_error_that_never_shows_it() {
    let registry = registry();
    let (home, _) = home_with_docker_config();
    let wrong = format!("wrong-{}", unique("pw"));
    let image = format!("{}/xtask-it/{}", registry.addr, unique("web"));
    let run = build(home.path(), &image, &wrong, &["--push", "--tag", "t1"]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: registry 127.0.0.1:5000 refused the credentials of")
        .assert_contains("check REGISTRY_USERNAME and REGISTRY_PASSWORD")
        .assert_lacks("docker build");
}

#[test]
fn a_registry_that_is_down_is_named() {
    let registry = registry();
    let (home, _) = home_with_docker_config();
    let down = format!("127.0.0.1:{}", closed_port());
    let run = build(
        home.path(),
        &format!("{down}/xtask-it/web"),
        &registry.password,
        &["--push", "--tag", "t1"],
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains(&format!("error: registry {down} is unreachable"));
}

#[test]
fn dry_run_prints_the_plan_with_the_password_masked_and_touches_nothing() {
    let registry = registry();
    let (home, sentinel) = home_with_docker_config();
    let tag = unique("dry");
    let image = format!("{}/xtask-it/{}", registry.addr, unique("web"));
    let run =
        build(home.path(), &image, &registry.password, &["--push", "--dry-run", "--tag", &tag]);
    run.assert_success()
        .assert_contains("dry run: nothing is run")
        .assert_contains("login --username xtask-test --password-stdin 127.0.0.1:5000 <<< ***")
        .assert_contains("manifest inspect --insecure")
        .assert_contains("--file web/Dockerfile --target runtime")
        .assert_contains(&format!("push {image}:{tag}"));
    assert_eq!(image_id(&format!("{image}:{tag}")), None, "nothing built");
    let config = home.path().join(".docker").join("config.json");
    assert_eq!(fs::read_to_string(config).unwrap(), sentinel);
}

#[test]
fn a_dirty_tree_is_refused_for_a_pushed_commit_tag_unless_allowed() {
    let registry = registry();
    let project = TempDir::new("dirty");
    crate::support::copy_of_workspace(project.path());
    let git = |args: &[&str]| {
        let out = duct::cmd("git", args)
            .dir(project.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "--message", "fixture"]);
    let head = git(&["rev-parse", "HEAD"]);
    fs::write(project.path().join("web/src/extra.rs"), "// not committed\n").unwrap();

    let env = |password: &str| {
        vec![
            ("DEPLOY_IMAGE", format!("{}/xtask-it/web", registry.addr)),
            ("REGISTRY_USERNAME", registry.username.clone()),
            ("REGISTRY_PASSWORD", password.to_owned()),
            ("CIRCLE_SHA1", String::new()),
        ]
    };
    let env = env(&registry.password);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = xtask_in(project.path(), &["build", "--push", "--dry-run"], &env);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: the work tree has uncommitted changes (web/src/extra.rs)")
        .assert_contains(&head[..12])
        .assert_contains("--allow-dirty")
        .assert_lacks(&registry.password);

    let run = xtask_in(project.path(), &["build", "--push", "--dry-run", "--allow-dirty"], &env);
    run.assert_success().assert_contains(&format!("tag {head} from the commit checked out"));
    // Without --push a dirty tree is fine: the image stays local.
    xtask_in(project.path(), &["build", "--dry-run"], &env).assert_success();
}

#[test]
fn bad_settings_and_tags_are_one_line_errors_before_any_docker_call() {
    /// Environment, arguments, the expected error.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 3] = [
        (
            &[("DEPLOY_IMAGE", " ")],
            &["build", "--tag", "t"],
            "error: no image repository configured",
        ),
        (
            &[("DEPLOY_IMAGE", "quay.io/acme/web")],
            &["build", "--tag", "repo:sha:sha"],
            "error: invalid image tag \"repo:sha:sha\"",
        ),
        (
            &[("DEPLOY_IMAGE", "quay.io/Acme/web")],
            &["build", "--tag", "t"],
            "error: invalid image repository \"quay.io/Acme/web\"",
        ),
    ];
    for (env, args, expected) in cases {
        let run = xtask_in(&crate::support::root(), args, env);
        assert_eq!(run.code, Some(1), "{}", run.output);
        run.assert_contains(expected).assert_lacks("$ docker");
        let last = run.output.trim_end().lines().last().unwrap();
        assert!(last.starts_with("error: "), "one last error line: {}", run.output);
    }
}
