//! `cargo xtask test` against the real Docker daemon of this machine.

use std::fs;
use std::io::Write;
use std::time::SystemTime;

use crate::support::{Image, TempDir, docker, docker_lock, image_id, xtask, xtask_in};
use xtask::docker::cache::{self, Cached};

fn modified(path: &std::path::Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// A builder our users have: BuildKit (Docker >= 23, CircleCI) or the legacy one.
#[derive(Clone, Copy, Debug)]
enum Builder {
    BuildKit,
    Legacy,
}

impl Builder {
    /// The environment that selects it (BuildKit is the default once `.ci/setup` ran).
    fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Builder::BuildKit => &[("DOCKER_BUILDKIT", "1")],
            Builder::Legacy => &[("DOCKER_BUILDKIT", "0")],
        }
    }

    /// Makes the daemon as a fresh CI machine finds it for this builder: `images` gone, and
    /// the builder's cache (BuildKit's own; the legacy builder's is its images).
    fn forget(self, images: &[&str]) {
        for image in images {
            docker(&["rmi", "--force", image]);
        }
        match self {
            Builder::BuildKit => {
                assert!(docker(&["builder", "prune", "--all", "--force"]).status.success())
            }
            Builder::Legacy => {
                docker(&["rmi", "--force", "web-build-stage:latest"]);
                docker(&["image", "prune", "--force"]);
            }
        }
    }
}

/// The crates a build's output says it compiled (`Compiling CRATE` lines). The legacy
/// builder paints each chunk of a step's stderr red, so colour codes can split the words.
fn compiled(run: &crate::support::Run) -> Vec<String> {
    let mut plain = String::new();
    let mut rest = run.output.as_str();
    while let Some(escape) = rest.find('\x1b') {
        plain.push_str(&rest[..escape]);
        let code = &rest[escape..];
        rest = code.find('m').map_or("", |end| &code[end + 1..]);
    }
    plain.push_str(rest);
    plain
        .lines()
        .filter_map(|l| l.split_once("Compiling ").map(|(_, c)| c.trim().to_owned()))
        .collect()
}

/// CI's cache path under one builder: on a fresh daemon with only the tarball, `test`
/// compiles nothing and saves nothing, `build` after it compiles the app crate once (and no
/// test code), and an unchanged tree then builds nothing.
fn the_tarball_serves_a_fresh_daemon(builder: Builder) {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-cache");
    let deploy = Image::unique("xtask-it-cache-deploy");
    let repository = deploy.0.trim_end_matches(":latest").to_owned();
    let deployed = Image(format!("{repository}:cached"));
    let dir = TempDir::new("cache");
    let tarball = dir.path().join("docker").join("image.tar");
    let tar = tarball.to_str().unwrap();
    let env = builder.env();
    let test = || {
        xtask_in(&crate::support::root(), &["test", "--image", &image.0, "--cache-file", tar], env)
    };
    let build = || {
        let mut env = env.to_vec();
        env.extend([("DEPLOY_IMAGE", repository.as_str()), ("CIRCLE_SHA1", "")]);
        let args = ["build", "--tag", "cached", "--test-image", &image.0, "--cache-file", tar];
        xtask_in(&crate::support::root(), &args, &env)
    };

    // A CI run: builds the image, runs the suite, writes the cache.
    test()
        .assert_success()
        .assert_contains("test result: ok")
        .assert_contains("ok: web test suite passed");
    let built = image_id(&image.0).expect("the test image exists after a run");
    assert!(matches!(
        cache::inspect(&tarball),
        Cached::Image { id, tags, .. } if id == built && tags == [image.0.clone()]
    ));
    assert!(!dir.path().join("docker").join("image.tar.partial").exists());
    let saved_at = modified(&tarball);

    // The next CI run, on a fresh machine: the daemon holds no image of the project's build
    // and the builder has no cache; only the tarball was restored.
    builder.forget(&[&image.0, &deployed.0]);
    assert_eq!(image_id(&image.0), None);
    let run = test();
    run.assert_success()
        .assert_contains("docker load")
        .assert_contains(&format!("--cache-from {}", image.0))
        .assert_contains("is up to date: not saved")
        .assert_contains("test result: ok")
        .assert_lacks("docker save");
    assert_eq!(
        compiled(&run),
        Vec::<String>::new(),
        "{builder:?}: nothing compiled:\n{}",
        run.output
    );
    assert_eq!(image_id(&image.0).as_deref(), Some(built.as_str()), "same image, nothing rebuilt");
    assert_eq!(modified(&tarball), saved_at, "the cache file is not rewritten");

    // The deploy image after it: the app crate, once; no test code.
    let run = build();
    run.assert_success().assert_lacks("cargo test");
    let crates = compiled(&run);
    assert_eq!(crates.len(), 1, "{builder:?}: {crates:?}\n{}", run.output);
    assert!(crates[0].starts_with("web v"), "{crates:?}");

    // Nothing changed: nothing is built again, and no image is replaced.
    let run = build();
    run.assert_success().assert_lacks("removed the previous");
    assert_eq!(compiled(&run), Vec::<String>::new(), "{builder:?}:\n{}", run.output);
    let run = test();
    run.assert_success()
        .assert_contains("with these layers (cache")
        .assert_contains("not loaded")
        .assert_contains("is up to date: not saved");
    assert_eq!(compiled(&run), Vec::<String>::new(), "{builder:?}:\n{}", run.output);
    drop(deployed);
}

#[test]
fn buildkit_the_tarball_serves_a_fresh_daemon() {
    the_tarball_serves_a_fresh_daemon(Builder::BuildKit);
}

#[test]
fn legacy_builder_the_tarball_serves_a_fresh_daemon() {
    the_tarball_serves_a_fresh_daemon(Builder::Legacy);
}

#[test]
fn a_corrupt_cache_is_reported_rebuilt_and_replaced_by_a_good_one() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-corrupt");
    let dir = TempDir::new("corrupt");
    let tarball = dir.path().join("image.tar");
    // The first half of a real-looking `docker save` tarball: an interrupted cache upload.
    let mut builder = tar::Builder::new(Vec::new());
    let layer = vec![7u8; 64 * 1024];
    let mut header = tar::Header::new_gnu();
    header.set_size(layer.len() as u64);
    header.set_cksum();
    builder.append_data(&mut header, "0123/layer.tar", layer.as_slice()).unwrap();
    let bytes = builder.into_inner().unwrap();
    fs::write(&tarball, &bytes[..bytes.len() / 2]).unwrap();

    xtask(&["test", "--image", &image.0, "--cache-file", tarball.to_str().unwrap()])
        .assert_success()
        .assert_contains("warning: cache")
        .assert_contains("is unusable")
        .assert_contains("it will be replaced")
        .assert_contains("docker save")
        .assert_contains("ok: web test suite passed");
    let built = image_id(&image.0).unwrap();
    assert!(matches!(
        cache::inspect(&tarball),
        Cached::Image { id, tags, .. } if id == built && tags == [image.0.clone()]
    ));
}

#[test]
fn a_failing_web_test_fails_the_command_and_shows_its_output() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-failing");
    let project = TempDir::new("failing");
    crate::support::copy_of_workspace(project.path());
    fs::write(
        project.path().join("web/tests/deliberately_failing.rs"),
        "#[test]\nfn deliberately_failing() {\n    assert_eq!(1 + 1, 3, \"this test fails on purpose\");\n}\n",
    )
    .unwrap();
    // What the tag named before (an image of an earlier tree): the build replaces it.
    let previous = label_only_image(&image.0);

    let run = xtask_in(project.path(), &["test", "--no-cache", "--image", &image.0], &[]);
    assert_eq!(run.code, Some(101), "cargo test's own exit status:\n{}", run.output);
    run.assert_contains("deliberately_failing")
        .assert_contains("this test fails on purpose")
        .assert_contains("error: web test suite failed (exit status 101)")
        .assert_contains(&format!("removed the previous {} ({})", image.0, &previous[7..19]))
        .assert_lacks("docker load")
        .assert_lacks("docker save");
    let left = docker(&["image", "inspect", &previous]);
    assert!(!left.status.success(), "the replaced image is still in the daemon");
}

/// Builds a throwaway image of its own ID, tagged `tag`, and returns that ID.
fn label_only_image(tag: &str) -> String {
    let mut build = std::process::Command::new("docker")
        .args(["build", "--quiet", "--tag", tag, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dockerfile = format!("FROM debian:bookworm-slim\nLABEL dev.xtask.it={tag}\n");
    build.stdin.take().unwrap().write_all(dockerfile.as_bytes()).unwrap();
    assert!(build.wait().unwrap().success());
    image_id(tag).unwrap()
}
