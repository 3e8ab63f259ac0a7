//! Secrets stay secret: the registry password and secret option values never reach a
//! command line, an image layer, a tracked file or the output; the docker login lives in a
//! private directory that goes with the run; Elastic Beanstalk's instances pull with their
//! own read-only credentials.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::{
    ArgvWatch, TempDir, World, docker, docker_lock, registry, robot, unique, wait_healthy, xtask_in,
};

#[test]
fn secrets_never_reach_argv_image_layers_or_tracked_files() {
    let _lock = docker_lock();
    let registry = registry();
    let home = TempDir::new("argv-home");
    let image = format!("{}/xtask-it/{}", registry.addr, unique("argv"));
    let tag = unique("t");

    // Watch every process's command line while a real build and push run.
    let watch = ArgvWatch::start(vec![registry.password.clone()]);
    // Credential helpers on PATH, as a desktop has them: docker would hand them the password
    // (to an OS keychain, where it outlives the run) unless the login's config says not to.
    // They record every call and what it was given. (docker's own builds may *ask* them for
    // the user's credentials, to pull base images; they must never be *given* ours.)
    let helpers = home.path().join("helpers");
    let calls = home.path().join("helper-calls");
    fs::create_dir_all(&helpers).unwrap();
    for store in ["secretservice", "pass", "desktop", "osxkeychain"] {
        let helper = helpers.join(format!("docker-credential-{store}"));
        let script = format!(
            "#!/bin/sh\n{{ echo \"{store} $*\"; cat; echo; }} >> {}\necho '{{}}'\n",
            calls.display()
        );
        fs::write(&helper, script).unwrap();
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap());
    let run = xtask_in(
        &crate::support::root(),
        &["build", "--push", "--tag", &tag],
        &[
            ("DEPLOY_IMAGE", &image),
            ("REGISTRY_USERNAME", &registry.username),
            ("REGISTRY_PASSWORD", &registry.password),
            ("HOME", home.path().to_str().unwrap()),
            ("PATH", &path),
        ],
    );
    let (seen, scans) = watch.stop();
    run.assert_success().assert_lacks(&registry.password);
    let given = fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        !given.lines().any(|l| l.split_whitespace().nth(1) == Some("store")),
        "a credential helper was asked to store: {given}"
    );
    assert!(!given.contains(&registry.password), "a credential helper got the password");
    assert!(seen.is_empty(), "the password was in a command line: {seen:?}");
    assert!(scans > 10, "the watcher ran during the push ({scans} scans)");

    // No layer of the image carries it.
    let reference = format!("{image}:{tag}");
    let layers = docker(&["save", &reference]);
    assert!(layers.status.success());
    let needle = registry.password.as_bytes();
    assert!(
        !layers.stdout.windows(needle.len()).any(|w| w == needle),
        "the password is in an image layer"
    );
    docker(&["rmi", "--force", &reference]);
    registry.delete(&image[registry.addr.len() + 1..], &tag);

    // Nor does any file git tracks.
    let files = duct::cmd!("git", "-C", crate::support::root(), "ls-files", "-z").read().unwrap();
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        if let Ok(content) = fs::read(crate::support::root().join(file)) {
            assert!(
                !content.windows(needle.len()).any(|w| w == needle),
                "{file} holds the password"
            );
        }
    }
}

/// The user whose credentials the registry auth file in `world`'s bucket carries.
fn auth_file_user(world: &World) -> String {
    use base64::Engine as _;
    let file = world.bucket.get("acme-web/deploy/registry-auth.json").expect("an auth file");
    let json: serde_json::Value = serde_json::from_str(&file.body).unwrap();
    let auth = json["auths"][&registry().addr]["auth"].as_str().unwrap();
    let pair = base64::engine::general_purpose::STANDARD.decode(auth).unwrap();
    String::from_utf8(pair).unwrap().split(':').next().unwrap().to_owned()
}

#[test]
fn the_instances_pull_with_their_own_credentials_written_only_when_they_change() {
    let world = World::prebuilt(&["v1", "v2"]);
    let pushing = registry().username;
    world
        .deploy(&["staging", "--tag", "v1"])
        .assert_success()
        .assert_contains(&format!(
            "warning: the instances will pull with the push credentials of {pushing}: set \
             REGISTRY_PULL_USERNAME and REGISTRY_PULL_PASSWORD"
        ))
        .assert_contains(&format!("instances' pull credentials written: user {pushing}"));
    assert_eq!(auth_file_user(&world), pushing);

    let (robot, password) = robot();
    let pull = [("REGISTRY_PULL_USERNAME", robot.clone()), ("REGISTRY_PULL_PASSWORD", password)];
    world
        .deploy_with(&["staging", "--tag", "v2", "--dry-run"], &pull)
        .assert_success()
        .assert_contains(&format!("the instances pull as {robot} (REGISTRY_PULL_USERNAME)"));
    world
        .deploy_with(&["staging", "--tag", "v2"], &pull)
        .assert_success()
        .assert_lacks("warning: the instances will pull")
        .assert_contains("instances' pull credentials replaced (were written ")
        .assert_contains(&format!("ago): user {robot}"));
    assert_eq!(auth_file_user(&world), robot, "never the push user");
    let health = wait_healthy(&format!("127.0.0.1:{}", world.port), 10).body;
    assert!(health.contains("\"v2\""), "the instance pulled v2 with them: {health}");

    world
        .deploy_with(&["staging", "--tag", "v2"], &pull)
        .assert_success()
        .assert_contains(&format!("instances' pull credentials unchanged (user {robot})"));
    let only_one = [("REGISTRY_PULL_USERNAME", robot.clone())];
    let run = world.deploy_with(&["staging", "--tag", "v2"], &only_one);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: REGISTRY_PULL_USERNAME is set but REGISTRY_PULL_PASSWORD is not");
}
