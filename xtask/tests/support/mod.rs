//! Helpers shared by the integration tests: the real xtask binary, unique names, clean-up
//! on drop, and a lock that runs the Docker-heavy tests one at a time (they share one
//! daemon and two cores).

#![allow(dead_code)] // each test target uses its own subset

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Held for the duration of a test that builds or runs images.
pub struct DockerLock(File);

pub fn docker_lock() -> DockerLock {
    let dir = root().join("target").join("xtask-tests");
    fs::create_dir_all(&dir).unwrap();
    let file = File::create(dir.join("docker.lock")).unwrap();
    file.lock().unwrap();
    DockerLock(file)
}

/// A name no other test or run uses: `prefix-pid-nanos-n`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// What a run printed (stderr and stdout in one stream) and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub output: String,
}

impl Run {
    pub fn assert_success(&self) -> &Run {
        assert_eq!(self.code, Some(0), "expected success; output:\n{}", self.output);
        self
    }

    pub fn assert_contains(&self, needle: &str) -> &Run {
        assert!(self.output.contains(needle), "expected {needle:?} in output:\n{}", self.output);
        self
    }

    pub fn assert_lacks(&self, needle: &str) -> &Run {
        assert!(!self.output.contains(needle), "unexpected {needle:?} in output:\n{}", self.output);
        self
    }
}

/// Runs the real `cargo xtask` binary on `project` with `args`, environment as given.
pub fn xtask_in(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["--project-dir".to_owned(), project.display().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut expr = duct::cmd(env!("CARGO_BIN_EXE_xtask"), &all)
        .env_remove("TEST_IMAGE")
        .env_remove("TEST_IMAGE_CACHE")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        expr = expr.env(key, value);
    }
    let output = expr.stderr_to_stdout().stdout_capture().unchecked().run().unwrap();
    Run { code: output.status.code(), output: String::from_utf8_lossy(&output.stdout).into_owned() }
}

pub fn xtask(args: &[&str]) -> Run {
    xtask_in(&root(), args, &[])
}

pub fn docker(args: &[&str]) -> Output {
    duct::cmd("docker", args).stdout_capture().stderr_capture().unchecked().run().unwrap()
}

pub fn image_id(image: &str) -> Option<String> {
    let out = docker(&["images", "--no-trunc", "--quiet", image]);
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned)
}

/// An image name removed from the daemon when the test ends, pass or fail.
pub struct Image(pub String);

impl Image {
    pub fn unique(prefix: &str) -> Image {
        Image(format!("{}:latest", unique(prefix)))
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        docker(&["rmi", "--force", &self.0]);
    }
}

/// A directory under `target/xtask-tests`, removed when the test ends.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = root().join("target").join("xtask-tests").join(unique(prefix));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A copy of what `docker build` needs of this workspace, for tests that change the tree.
pub fn copy_of_workspace(into: &Path) {
    let root = root();
    for file in ["Cargo.toml", "Cargo.lock", ".dockerignore", "xtask/Cargo.toml"] {
        let target = into.join(file);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(root.join(file), target).unwrap();
    }
    copy_dir(&root.join("web"), &into.join("web"));
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}
