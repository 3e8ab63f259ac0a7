//! `cargo xtask test` against the real Docker daemon of this machine.

use std::fs;
use std::io::Write;
use std::time::SystemTime;

use crate::support::{Image, TempDir, docker, docker_lock, image_id, xtask, xtask_in};
use xtask::cache::{self, Cached};

fn modified(path: &std::path::Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn builds_runs_saves_then_a_fresh_daemon_reuses_the_tarball_without_recompiling() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-cache");
    let dir = TempDir::new("cache");
    let tarball = dir.path().join("docker").join("image.tar");
    let tar = tarball.to_str().unwrap();

    // First run: builds the image, runs the suite, writes the cache.
    xtask(&["test", "--image", &image.0, "--cache-file", tar])
        .assert_success()
        .assert_contains("test result: ok")
        .assert_contains("ok: web test suite passed");
    let built = image_id(&image.0).expect("the test image exists after a run");
    assert_eq!(
        cache::inspect(&tarball),
        Cached::Image { id: built.clone(), tags: vec![image.0.clone()] }
    );
    assert!(!dir.path().join("docker").join("image.tar.partial").exists());
    let saved_at = modified(&tarball);

    // A fresh CI machine: the daemon no longer holds the image or its build chain.
    assert!(docker(&["rmi", &image.0]).status.success());
    assert_eq!(image_id(&image.0), None);
    let images = docker(&["images", "--all", "--no-trunc", "--quiet"]);
    assert!(!String::from_utf8_lossy(&images.stdout).contains(&built));

    let run = xtask(&["test", "--image", &image.0, "--cache-file", tar]);
    run.assert_success()
        .assert_contains("docker load")
        .assert_contains(&format!("--cache-from {}", image.0))
        .assert_contains("is up to date: not saved")
        .assert_contains("test result: ok")
        .assert_lacks("Compiling ")
        .assert_lacks("docker save");
    assert_eq!(image_id(&image.0).as_deref(), Some(built.as_str()), "same image, nothing rebuilt");
    assert_eq!(modified(&tarball), saved_at, "the cache file is not rewritten");
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
    assert_eq!(cache::inspect(&tarball), Cached::Image { id: built, tags: vec![image.0.clone()] });
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
