//! Helpers shared by the integration tests: the real xtask binary, unique names, clean-up
//! on drop, and a lock that runs the Docker-heavy tests one at a time (they share one
//! daemon and two cores).

#![allow(dead_code)] // not every helper is used by every module

pub mod docker;
pub mod eb_fake;
pub mod ecr;
pub mod http;
pub mod iam;
pub mod logs;
pub mod process;
pub mod project;
pub mod registry;
pub mod s3;
pub mod world;

pub use self::docker::*;
pub use self::process::*;
pub use self::project::Project;
pub use self::registry::*;
pub use self::s3::*;
pub use self::world::*;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
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
        .env("NO_COLOR", "1")
        // As in CI: no terminal to ask on.
        .stdin_null();
    for (key, value) in env {
        expr = expr.env(key, value);
    }
    let output = expr.stderr_to_stdout().stdout_capture().unchecked().run().unwrap();
    Run { code: output.status.code(), output: String::from_utf8_lossy(&output.stdout).into_owned() }
}

pub fn xtask(args: &[&str]) -> Run {
    xtask_in(&root(), args, &[])
}

/// A directory under `target/xtask-tests` (a random name, mode 0700, made atomically by
/// `tempfile`), removed when the test ends.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let parent = root().join("target").join("xtask-tests");
        fs::create_dir_all(&parent).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(&parent);
        TempDir(dir.unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `GET http://addr/health` until it answers 200 (or panics after `secs`).
pub fn wait_healthy(addr: &str, secs: u64) -> http::Response {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(response) = http::get(addr, "/health")
            && response.status == 200
        {
            return response;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{addr}/health did not answer 200 in {secs}s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The version the app on the loopback `port` reports on `/health` (once it answers, within
/// 10 s).
pub fn version_at(port: u16) -> String {
    let body = wait_healthy(&format!("127.0.0.1:{port}"), 10).body;
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    health["version"].as_str().unwrap().to_owned()
}

/// The SDK's chain reduced to static test credentials in us-east-1 (moto takes any): no
/// instance metadata, no config or credentials file of the machine.
pub fn aws_test_credentials() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/nonexistent/xtask-test-aws-config".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/xtask-test-aws-credentials".into()),
    ]
}
