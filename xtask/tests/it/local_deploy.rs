//! `cargo xtask deploy --local` against the real Docker daemon: a release answers on its
//! port, a new one replaces it with no failed request, a broken one leaves the old one
//! serving, and the options template's variables reach the app. The images are named as an
//! Amazon ECR repository, as most teams' are: a local deploy needs no AWS for it (every AWS
//! endpoint points at a closed port).

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::support::{
    Piped, Repository, Run, Started, TempDir, closed_port, docker, docker_lock, http, unique,
    wait_healthy, xtask_in,
};

/// An ECR registry's host.
const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

/// A local environment on its own port, stopped and its images removed when the test ends.
struct Local {
    project: TempDir,
    port: u16,
    image: String,
    /// Dropped after `drop` has stopped the releases that run its images.
    _images: Repository,
}

impl Local {
    /// A copy of the workspace whose options template takes APP_NAME from `$GREETING_NAME`.
    fn new() -> Local {
        let project = TempDir::new("local");
        crate::support::copy_of_workspace(project.path());
        let options = r#"[
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "APP_ENV", "Value": "${DEPLOY_ENV}" },
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "APP_NAME", "Value": "${GREETING_NAME}" },
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "SECRET_KEY", "Value": "${SECRET_KEY}", "Secret": true },
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "LOG_DIR", "Value": "/var/log/web" },
  { "Namespace": "aws:elasticbeanstalk:application", "OptionName": "Application Healthcheck URL", "Value": "/health" }
]"#;
        fs::write(project.path().join("eb-options.json.template"), options).unwrap();
        fs::write(project.path().join("local.env"), "GREETING_NAME=from-the-env-file\n").unwrap();
        let image = format!("{ECR}/xtask-it/{}", unique("local"));
        Local { project, port: closed_port(), image: image.clone(), _images: Repository(image) }
    }

    fn deploy(&self, tag: &str, extra: &[&str]) -> Run {
        let port = self.port.to_string();
        let env_file = self.project.path().join("local.env");
        let mut args = vec!["deploy", "--local", "--detach", "--port", &port, "--tag", tag];
        args.extend_from_slice(&["--env-file", env_file.to_str().unwrap(), "--no-cache"]);
        args.extend_from_slice(extra);
        xtask_in(self.project.path(), &args, &self.env())
    }

    fn env(&self) -> [(&str, &str); 3] {
        let nowhere = "http://127.0.0.1:9"; // discard: nothing listens
        [("DEPLOY_IMAGE", &self.image), ("CIRCLE_SHA1", ""), ("AWS_ENDPOINT_URL", nowhere)]
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn health(&self) -> serde_json::Value {
        serde_json::from_str(&wait_healthy(&self.addr(), 5).body).unwrap()
    }

    fn releases(&self) -> Vec<String> {
        let filter = format!("label=dev.xtask.local={}", self.port);
        let out = docker(&[
            "ps",
            "--filter",
            &filter,
            "--filter",
            "label=dev.xtask.local.role=release",
            "--format",
            "{{.Names}}",
        ]);
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let port = self.port.to_string();
        xtask_in(self.project.path(), &["deploy", "--local", "--stop", "--port", &port], &[]);
    }
}

#[test]
fn a_new_release_replaces_the_old_one_with_no_failed_request() {
    let _lock = docker_lock();
    let local = Local::new();
    local
        .deploy("first", &[])
        .assert_success()
        .assert_contains(&format!("answers on http://127.0.0.1:{}/ (version first)", local.port));
    let health = local.health();
    assert_eq!(health["version"], "first");
    assert_eq!(
        health["app"], "from-the-env-file",
        "the options template's variables reach the app"
    );
    assert_eq!(health["environment"], "local");
    let logged = fs::read_to_string(
        local.project.path().join(format!("target/deploy-local/{}/logs/web.log", local.port)),
    )
    .unwrap();
    assert!(logged.contains("GET /health 200"), "the Logging directory is mapped: {logged}");

    // Poll through the switch: every request must be answered by one release or the other.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, addr) = (Arc::clone(&stop), local.addr());
        thread::spawn(move || {
            let (mut answered, mut failed, mut versions) = (0, Vec::new(), Vec::<String>::new());
            while !stop.load(Ordering::SeqCst) {
                match http::get(&addr, "/health") {
                    Some(r) if r.status == 200 => {
                        answered += 1;
                        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                        let version = json["version"].as_str().unwrap().to_owned();
                        if versions.last() != Some(&version) {
                            versions.push(version);
                        }
                    }
                    Some(r) => failed.push(format!("status {}", r.status)),
                    None => failed.push("no answer".to_owned()),
                }
                thread::sleep(Duration::from_millis(5));
            }
            (answered, failed, versions)
        })
    };
    let run = local.deploy("second", &[]);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (answered, failed, versions) = poller.join().unwrap();
    run.assert_success().assert_contains("replace the previous release");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the switch: {failed:?}",
        failed.len(),
        answered + failed.len()
    );
    assert_eq!(versions, ["first", "second"], "served by the old release, then the new one");
    assert!(answered > 50, "the poller ran through the switch ({answered} requests)");
    assert_eq!(local.health()["version"], "second");
    assert_eq!(local.releases().len(), 1, "the old release was removed");
}

#[test]
fn a_broken_release_fails_with_its_log_and_the_previous_one_keeps_answering() {
    let _lock = docker_lock();
    let local = Local::new();
    local.deploy("good", &[]).assert_success();

    // A release that exits at once: production mode without SECRET_KEY.
    let broken = r#"[
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "APP_ENV", "Value": "production" }
]"#;
    fs::write(local.project.path().join("eb-options.json.template"), broken).unwrap();
    let run = local.deploy("broken", &[]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("SECRET_KEY is not set")
        .assert_contains("exited with status 2 instead of answering /health")
        .assert_contains(&format!("the previous release keeps answering on port {}", local.port));
    assert_eq!(local.health()["version"], "good");
    assert_eq!(local.releases().len(), 1, "the broken container was removed");
}

#[test]
fn a_port_in_use_is_named_before_anything_is_built() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = xtask_in(
        &crate::support::root(),
        &["deploy", "--local", "--detach", "--port", &port, "--tag", "t"],
        &[("DEPLOY_IMAGE", "xtask-it/port-in-use")],
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains(&format!(
        "error: port {port} is in use by another program: pass --port N to choose another"
    ))
    .assert_lacks("docker build");
}

#[test]
fn dry_run_shows_the_rendered_descriptor_and_masks_secrets() {
    let secret = unique("s3cr3t");
    let run = xtask_in(
        &crate::support::root(),
        &["deploy", "--local", "--dry-run", "--tag", "t"],
        &[("SECRET_KEY", &secret), ("DEPLOY_IMAGE", "xtask-it/dry")],
    );
    run.assert_success()
        .assert_contains("\"Name\": \"xtask-it/dry:t\"")
        .assert_contains("\"Authentication\": {")
        .assert_contains("SECRET_KEY=*** docker run")
        .assert_contains("--env SECRET_KEY ")
        .assert_lacks(&secret);
    // As `deploy` ships it: for ECR, the descriptor has no Authentication.
    let image = format!("{ECR}/acme/web");
    let run = xtask_in(
        &crate::support::root(),
        &["deploy", "--local", "--dry-run", "--tag", "t"],
        &[("SECRET_KEY", &secret), ("DEPLOY_IMAGE", &image)],
    );
    run.assert_success()
        .assert_contains(&format!("\"Name\": \"{image}:t\""))
        .assert_lacks("Authentication");
}

impl Local {
    /// The arguments of `deploy --local` in the foreground (following logs).
    fn foreground(&self, tag: &str) -> Vec<String> {
        let env_file = self.project.path().join("local.env");
        ["deploy", "--local", "--port", &self.port.to_string(), "--tag", tag, "--no-cache"]
            .iter()
            .map(|a| a.to_string())
            .chain(["--env-file".to_owned(), env_file.to_str().unwrap().to_owned()])
            .collect()
    }

    /// `deploy --local` in the foreground, started as a terminal would.
    fn start(&self, tag: &str) -> Started {
        let args = self.foreground(tag);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Started::new(self.project.path(), &args, &self.env())
    }

    /// Whether anything of this local environment is left: a container or the network.
    fn leftovers(&self) -> Vec<String> {
        let filter = format!("label=dev.xtask.local={}", self.port);
        let out = docker(&["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"]);
        let mut left: Vec<String> =
            String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        let network = format!("xtask-local-{}", self.port);
        if docker(&["network", "inspect", &network]).status.success() {
            left.push(network);
        }
        left
    }
}

#[test]
fn ctrl_c_while_following_logs_stops_the_release_the_proxy_and_the_network() {
    let _lock = docker_lock();
    let local = Local::new();
    let mut started = local.start("fg");
    started.wait_for("following its logs; Ctrl-C stops it", 600);
    wait_healthy(&local.addr(), 10);
    started.signal_group(libc::SIGINT);
    let run = started.wait(60);
    assert_eq!(run.code, Some(0), "following ends with Ctrl-C by design:\n{}", run.output);
    run.assert_lacks("error:");
    let last = run.output.trim_end().lines().last().unwrap();
    let port = local.port;
    assert!(
        last.starts_with(&format!(
            "ok: stopped the local release on port {port}: release xtask-local-{port}-release-"
        )),
        "{last}"
    );
    assert!(
        last.ends_with(&format!(", proxy xtask-local-front-{port}, network xtask-local-{port}")),
        "{last}"
    );
    assert!(local.leftovers().is_empty(), "left: {:?}", local.leftovers());
    assert!(http::get(&local.addr(), "/health").is_none());
}

#[test]
fn with_the_output_piped_through_tee_ctrl_c_or_a_closed_terminal_still_cleans_up() {
    let _lock = docker_lock();
    for (signal, code) in [(libc::SIGINT, 0), (libc::SIGHUP, 129)] {
        let local = Local::new();
        let log = local.project.path().join("deploy.log");
        let args = local.foreground("piped");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut piped = Piped::new(local.project.path(), &args, &local.env(), &log);
        piped.wait_for("following its logs; Ctrl-C stops it", 600);
        wait_healthy(&local.addr(), 10);
        piped.signal_group(signal);
        let run = piped.wait(60);
        assert_eq!(run.code, Some(code), "signal {signal}; the log tee kept:\n{}", run.output);
        assert!(local.leftovers().is_empty(), "signal {signal}, left: {:?}", local.leftovers());
    }
}

#[test]
fn ctrl_c_during_the_build_exits_130_and_starts_nothing() {
    let _lock = docker_lock();
    let local = Local::new();
    // A source change: the build has crates to compile, long enough to be interrupted.
    let main = local.project.path().join("web/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{source}\n// changed by {}\n", unique("build"))).unwrap();
    let mut started = local.start("interrupted-build");
    started.wait_for("$ docker build", 600);
    std::thread::sleep(Duration::from_secs(3));
    started.signal_group(libc::SIGINT);
    let run = started.wait(60);
    assert_eq!(run.code, Some(130), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(last.starts_with("error: interrupted during `docker build"), "{last}");
    assert!(local.leftovers().is_empty(), "left: {:?}", local.leftovers());
    let stopped = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        "status=exited",
        "--filter",
        "ancestor=rust:1.95-slim-bookworm",
    ]);
    assert!(stopped.stdout.is_empty(), "no build container left behind");
}

#[test]
fn ctrl_c_during_the_health_wait_removes_the_new_release_and_exits_130() {
    let _lock = docker_lock();
    let local = Local::new();
    // A health path the app never answers with 200: the wait lasts until Ctrl-C.
    let options = local.project.path().join("eb-options.json.template");
    let text = fs::read_to_string(&options).unwrap().replace("\"/health\"", "\"/never-healthy\"");
    fs::write(&options, text).unwrap();
    let mut started = local.start("never-healthy");
    started.wait_for(&format!("on 127.0.0.1:{}", local.port), 600);
    // The health wait begins once the release container runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !local.releases().iter().any(|r| r.contains("-release-")) {
        assert!(std::time::Instant::now() < deadline, "no release started:\n{}", started.output());
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_secs(1));
    started.signal_group(libc::SIGINT);
    let run = started.wait(60);
    assert_eq!(run.code, Some(130), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(last.contains("interrupted during the health check of the new release"), "{last}");
    assert!(local.leftovers().is_empty(), "left: {:?}", local.leftovers());
}
