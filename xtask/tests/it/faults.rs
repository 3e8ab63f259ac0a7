//! Faults and bad input, one row each: the command fails (or, for a lost cache, recovers)
//! with a one-line error naming the thing and the fix, exits non-zero, and loses nothing.
//! Then the security checks (no secret in argv, image layers or tracked files) and the web
//! app under abuse. docs/what-happens-when.md lists these rows.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use crate::support::{
    ArgvWatch, Container, Image, Run, Started, TempDir, World, closed_port, docker, docker_lock,
    registry, stub_server, unique, wait_healthy, xtask_in,
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
    let started = Started::new(project.path(), &args, &[]);
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

#[test]
fn ctrl_c_during_a_push_exits_130_and_removes_the_login() {
    let _lock = docker_lock();
    let registry = registry();
    let dir = TempDir::new("push-ctrl-c");
    let path = crate::support::docker_shim(dir.path(), "push", "sleep 120");
    let image = format!("{}/xtask-it/{}", registry.addr, unique("push"));
    let started = Started::new(
        &crate::support::root(),
        &["build", "--push", "--tag", "t1"],
        &[
            ("PATH", &path),
            ("DEPLOY_IMAGE", &image),
            ("REGISTRY_USERNAME", &registry.username),
            ("REGISTRY_PASSWORD", &registry.password),
            ("HOME", dir.path().to_str().unwrap()),
            ("CIRCLE_SHA1", ""),
        ],
    );
    let config = std::env::temp_dir().join(format!("xtask-docker-config-{}", started.pid()));
    started.wait_for(&format!("push {image}:t1"), 600);
    std::thread::sleep(Duration::from_millis(300));
    assert!(config.join("config.json").exists(), "logged in, in a private config");
    started.signal_group(libc::SIGINT);
    let run = started.wait(10);
    assert_eq!(run.code, Some(130), "{}", run.output);
    let last = last_line(&run);
    assert!(last.starts_with("error: interrupted during `docker --config"), "{last}");
    run.assert_lacks("ok: pushed").assert_lacks(&registry.password);
    assert!(!config.exists(), "the private docker config (and its login) is removed");
    docker(&["rmi", "--force", &format!("{image}:t1")]);
}

// ---- S3 and Elastic Beanstalk -----------------------------------------------------------

#[test]
fn s3_down_stops_before_any_application_version() {
    let world = World::prebuilt(&["v1"]);
    let down = format!("http://127.0.0.1:{}", closed_port());
    let run = world.deploy_with(&["staging", "--tag", "v1"], &[("AWS_ENDPOINT_URL_S3", down)]);
    assert_fails_with(&run, 1, "upload the registry auth file");
    assert!(last_line(&run).contains("no application version was created"), "{}", run.output);
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
        let s3 = format!("http://{}", stub_server(status, "application/xml", body));
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

// ---- Security -------------------------------------------------------------------------

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

// ---- The web app under abuse ------------------------------------------------------------

fn raw(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn status_of(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn the_web_app_answers_abuse_with_4xx_and_drains_on_sigterm() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-abuse");
    xtask_in(
        &crate::support::root(),
        &["build", "--tag", "abuse"],
        &[("DEPLOY_IMAGE", image.0.trim_end_matches(":latest"))],
    )
    .assert_success();
    let reference = image.0.replace(":latest", ":abuse");
    let _image = Image(reference.clone());
    let container = Container::start("xtask-it-abuse", &reference, "test");
    let addr = container.host_port(80);
    wait_healthy(&addr, 10);

    let top = docker(&["top", &container.0, "-o", "user"]);
    let users = String::from_utf8_lossy(&top.stdout);
    assert!(users.lines().skip(1).all(|u| u.trim() == "10001"), "runs as non-root: {users}");

    let huge_header =
        format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000));
    let huge_body =
        format!("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 50_000_000);
    let cases: [(&str, Vec<u8>); 5] = [
        ("garbage", b"\x00\x01\x02 not http at all\r\n\r\n".to_vec()),
        ("bad request line", b"GET\r\n\r\n".to_vec()),
        ("oversized header", huge_header.into_bytes()),
        ("oversized body", huge_body.into_bytes()),
        (
            "bad chunked body",
            b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                .to_vec(),
        ),
    ];
    for (name, request) in &cases {
        let status = status_of(&raw(&addr, request));
        assert!(status == 0 || (400..500).contains(&status), "{name}: answered {status}");
    }

    // A bounded load of bad requests from 8 threads: never a 5xx, never a crash.
    let workers: Vec<_> = (0..8)
        .map(|n| {
            let addr = addr.clone();
            thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let request = match (n + i) % 3 {
                            // `Connection: close`: the answer ends the exchange, so the
                            // next request need not wait out a kept-alive connection.
                            0 => b"BREW /coffee HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
                            1 => b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
                            _ => b"POST /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
                        };
                        status_of(&raw(&addr, &request))
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for worker in workers {
        for status in worker.join().unwrap() {
            assert!((400..500).contains(&status), "a bad request answered {status}");
        }
    }
    wait_healthy(&addr, 5);
    let state =
        docker(&["inspect", "--format", "{{.State.Running}} {{.RestartCount}}", &container.0]);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "true 0");

    // SIGTERM while requests are in flight: every one of them completes.
    let slow: Vec<_> = (0..6)
        .map(|_| {
            let addr = addr.clone();
            thread::spawn(move || {
                raw(
                    &addr,
                    b"GET /debug/sleep?ms=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    assert!(docker(&["stop", "--time", "20", &container.0]).status.success());
    for request in slow {
        let response = request.join().unwrap();
        assert_eq!(status_of(&response), 200, "{response}");
        assert!(response.ends_with("slept 1500ms\n"), "{response}");
    }
    let exit = docker(&["inspect", "--format", "{{.State.ExitCode}}", &container.0]);
    assert_eq!(String::from_utf8_lossy(&exit.stdout).trim(), "0", "a clean exit after the drain");
}
