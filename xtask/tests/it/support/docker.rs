//! Docker for the tests: the CLI, images and repositories and containers removed when a
//! test ends, a copy of the workspace, and a `docker` that misbehaves on cue.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use super::{root, unique};

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

/// An image repository whose every tag (built or pulled) is removed from the daemon when
/// the test ends. Drop it after the containers that use its images, or they stay untagged.
pub struct Repository(pub String);

impl Drop for Repository {
    /// Its images go from the daemon, and from the test registry the ones pushed there.
    fn drop(&mut self) {
        let out = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", &self.0]);
        for image in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((repository, tag)) = image.rsplit_once(':') {
                // A clean-up never panics in a drop (a panic while unwinding aborts).
                let _ = std::panic::catch_unwind(|| {
                    let registry = super::registry();
                    if let Some(path) = repository.strip_prefix(&format!("{}/", registry.addr)) {
                        registry.delete(path, tag);
                    }
                });
            }
            docker(&["rmi", "--force", image]);
        }
    }
}

/// A running container removed when the test ends; its port 80 published on loopback.
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        docker(&["rm", "--force", &self.0]);
    }
}

impl Container {
    /// Runs `image` detached, its port 80 published on a free loopback port, with `APP_ENV`.
    pub fn start(prefix: &str, image: &str, app_env: &str) -> Container {
        let container = Container(unique(prefix));
        let env = format!("APP_ENV={app_env}");
        let started = docker(&[
            "run",
            "--detach",
            "--name",
            &container.0,
            "--publish",
            "127.0.0.1::80",
            "--env",
            &env,
            image,
        ]);
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
        container
    }

    /// The `127.0.0.1:PORT` that container port `port` is published on.
    pub fn host_port(&self, port: u16) -> String {
        let out = docker(&["port", &self.0, &format!("{port}/tcp")]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find(|l| l.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("no port: {text}"))
            .to_owned()
    }
}

/// A copy of what `docker build` needs of this workspace, for tests that change the tree.
pub fn copy_of_workspace(into: &Path) {
    let root = root();
    let files = [
        "Cargo.toml",
        "Cargo.lock",
        ".dockerignore",
        "xtask/Cargo.toml",
        "Dockerrun.aws.json.template",
        "eb-options.json.template",
    ];
    for file in files {
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

/// A directory holding a `docker` that runs the real one except for `subcommand`, where
/// it runs `instead` (a shell snippet).
pub fn docker_shim(dir: &Path, subcommand: &str, instead: &str) -> String {
    let real = duct::cmd!("sh", "-c", "command -v docker").read().unwrap();
    let script = format!(
        "#!/bin/sh\nfor arg in \"$@\"; do\n  if [ \"$arg\" = {subcommand} ]; then\n    {instead}\n  fi\ndone\nexec {real} \"$@\"\n"
    );
    let path = dir.join("docker");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}
