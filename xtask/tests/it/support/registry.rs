//! The local test registry started by `.ci/registry` (Debian's `docker-registry`, htpasswd
//! auth), spoken to through its HTTP API and `docker login`.

use std::fs;
use std::path::Path;

/// The local test registry started by `.ci/registry`.
pub struct Registry {
    pub addr: String,
    pub username: String,
    pub password: String,
}

pub fn registry() -> Registry {
    Registry {
        addr: "127.0.0.1:5000".to_owned(),
        username: registry_file("username"),
        password: registry_file("password"),
    }
}

/// The registry's second account, `xtask-robot`: what the instances pull with, as a team's
/// read-only robot account (`REGISTRY_PULL_USERNAME`, `REGISTRY_PULL_PASSWORD`).
pub fn robot() -> (String, String) {
    (registry_file("robot-username"), registry_file("robot-password"))
}

/// A file `.ci/registry` keeps outside the repository.
pub fn registry_file(name: &str) -> String {
    let dir = std::env::var("XTASK_TEST_REGISTRY_DIR")
        .unwrap_or_else(|_| "/var/tmp/xtask-registry".to_owned());
    fs::read_to_string(Path::new(&dir).join(name)).unwrap_or_else(|err| {
        panic!("no test registry ({dir}/{name}: {err}): run `bash .ci/registry` first")
    })
}

impl Registry {
    fn authorization(&self) -> String {
        use base64::Engine as _;
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }

    /// One request to the registry's HTTP API: its status and headers (the registry's
    /// answers here carry what we need in headers).
    fn call(&self, method: &str, path: &str, accept: &str) -> (u16, Vec<(String, String)>) {
        let authorization = self.authorization();
        let headers = [("Authorization", authorization.as_str()), ("Accept", accept)];
        let response = super::http::call(&self.addr, method, path, &headers)
            .unwrap_or_else(|| panic!("the test registry at {} does not answer", self.addr));
        (response.status, response.headers)
    }

    /// The digest of `path:tag` in the registry, `None` when it has no such manifest.
    pub fn digest(&self, path: &str, tag: &str) -> Option<String> {
        let manifest = "application/vnd.docker.distribution.manifest.v2+json";
        let (status, headers) = self.call("HEAD", &format!("/v2/{path}/manifests/{tag}"), manifest);
        match status {
            200 => headers.into_iter().find(|(n, _)| n == "docker-content-digest").map(|(_, v)| v),
            404 => None,
            other => panic!("registry answered {other} for {path}:{tag}"),
        }
    }

    pub fn delete(&self, path: &str, tag: &str) {
        if let Some(digest) = self.digest(path, tag) {
            self.call("DELETE", &format!("/v2/{path}/manifests/{digest}"), "*/*");
        }
    }

    /// `docker login` into a private config dir (password on stdin), for pulls by the test.
    pub fn login(&self, config_dir: &Path) {
        let out = duct::cmd!(
            "docker",
            "--config",
            config_dir,
            "login",
            "--username",
            &self.username,
            "--password-stdin",
            &self.addr
        )
        .stdin_bytes(self.password.as_bytes())
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
