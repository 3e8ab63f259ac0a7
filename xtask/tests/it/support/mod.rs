//! Helpers shared by the integration tests: the real xtask binary, unique names, clean-up
//! on drop, and a lock that runs the Docker-heavy tests one at a time (they share one
//! daemon and two cores).

#![allow(dead_code)] // not every helper is used by every module

pub mod eb_fake;
pub mod ecr;
pub mod iam;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    fn drop(&mut self) {
        let out = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", &self.0]);
        for image in String::from_utf8_lossy(&out.stdout).lines() {
            docker(&["rmi", "--force", image]);
        }
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
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nAccept: {accept}\r\n\
             Connection: close\r\n\r\n",
            self.addr,
            self.authorization()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut lines = BufReader::new(stream).lines().map_while(Result::ok);
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':').map(|(n, v)| (n.to_lowercase(), v.trim().to_owned())))
            .collect();
        (status, headers)
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

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// Polls `GET http://addr/health` until it answers 200 (or panics after `secs`).
pub fn wait_healthy(addr: &str, secs: u64) -> xtask::run::http::Response {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Ok(response) =
            xtask::run::http::get(addr, "/health", std::time::Duration::from_secs(2))
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

/// moto's S3 started by `.ci/moto`.
pub fn moto() -> String {
    let addr = std::env::var("XTASK_TEST_MOTO").unwrap_or_else(|_| "127.0.0.1:5100".to_owned());
    if xtask::run::http::get(&addr, "/moto-api/", std::time::Duration::from_secs(2)).is_err() {
        panic!("moto does not answer on {addr}: run `bash .ci/moto` first");
    }
    addr
}

/// A signed S3 client for moto (it refuses anonymous reads of private objects), with a
/// runtime of its own so that synchronous test code can call it.
pub struct S3 {
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Runtime,
}

/// An object as read back.
pub struct Object {
    pub body: String,
    pub encryption: Option<String>,
}

impl S3 {
    pub fn new(addr: &str) -> S3 {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{addr}"))
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .http_client(http)
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        S3 { client: aws_sdk_s3::Client::from_conf(config), runtime }
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.runtime.block_on(self.client.create_bucket().bucket(bucket).send()).unwrap();
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Object> {
        self.runtime.block_on(async {
            let object = self.client.get_object().bucket(bucket).key(key).send().await.ok()?;
            let encryption = object.server_side_encryption().map(|e| e.as_str().to_owned());
            let bytes = object.body.collect().await.ok()?.into_bytes();
            Some(Object { body: String::from_utf8_lossy(&bytes).into_owned(), encryption })
        })
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let listed = self.runtime.block_on(self.client.list_objects_v2().bucket(bucket).send());
        listed
            .map(|l| l.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub fn delete_bucket(&self, bucket: &str) {
        for key in self.keys(bucket) {
            let _ =
                self.runtime.block_on(self.client.delete_object().bucket(bucket).key(key).send());
        }
        let _ = self.runtime.block_on(self.client.delete_bucket().bucket(bucket).send());
    }
}

/// A bucket in moto, emptied and removed when the test ends.
pub struct Bucket {
    pub s3: String,
    pub name: String,
    client: S3,
}

impl Bucket {
    pub fn new() -> Bucket {
        let s3 = moto();
        let name = unique("xtask-it").to_lowercase();
        let client = S3::new(&s3);
        client.create_bucket(&name);
        Bucket { s3, name, client }
    }

    pub fn get(&self, key: &str) -> Option<Object> {
        self.client.get(&self.name, key)
    }

    pub fn keys(&self) -> Vec<String> {
        self.client.keys(&self.name)
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        self.client.delete_bucket(&self.name);
    }
}

pub const ENVIRONMENT: &str = "acme-web-stg";

/// One deploy test's world: a bucket, the fake with one environment, an image repository,
/// a secret option value, and a HOME of its own.
pub struct World {
    pub bucket: Bucket,
    pub fake: eb_fake::EbFake,
    pub port: u16,
    pub image: String,
    pub secret: String,
    pub home: TempDir,
    /// Last: fields drop in order, so the fake has removed its containers by then. `None`
    /// for the shared prebuilt repository.
    _images: Option<Repository>,
}

impl World {
    /// A world whose deploys build and push to a repository of their own (removed at the
    /// end): for tests of the build and push a deploy starts with. Take the Docker lock.
    pub fn new() -> World {
        let image = format!("{}/xtask-it/{}", registry().addr, unique("deploy"));
        World::with_image(image.clone(), Some(Repository(image)))
    }

    /// A world whose deploys find their image already pushed (see [`prebuilt`]), so that
    /// they build nothing and need no Docker lock: deploy only the tags `tags` names.
    pub fn prebuilt(tags: &[&str]) -> World {
        for tag in tags {
            prebuilt(tag);
        }
        let repository = prebuilt(tags.first().copied().unwrap_or("v1"));
        World::with_image(repository, None)
    }

    /// A world whose image is in the ECR stand-in, from which the fake's instance profile
    /// pulls. Its deploys get the variables of [`ecr::Repository::env`].
    pub fn ecr(repository: &ecr::Repository) -> World {
        let registry = ecr::registry();
        let profile = (registry.addr, registry.username, registry.password);
        World::start(repository.image.clone(), None, Some(profile))
    }

    /// A prebuilt world (see [`World::prebuilt`]) of an account with neither the
    /// application nor any environment: for `env create`.
    pub fn empty_account(tags: &[&str]) -> World {
        let world = World::prebuilt(tags);
        let fake = eb_fake::EbFake::start(eb_fake::Config {
            application_exists: false,
            ..world.fake_config(None)
        });
        World { fake, ..world }
    }

    fn with_image(image: String, images: Option<Repository>) -> World {
        World::start(image, images, None)
    }

    fn fake_config(&self, ecr: Option<(String, String, String)>) -> eb_fake::Config {
        fake_config(&self.bucket, ecr)
    }

    fn start(
        image: String,
        images: Option<Repository>,
        instance_profile_ecr: Option<(String, String, String)>,
    ) -> World {
        let bucket = Bucket::new();
        let fake = eb_fake::EbFake::start(fake_config(&bucket, instance_profile_ecr));
        let port = closed_port();
        fake.add_environment(ENVIRONMENT, port);
        World {
            bucket,
            fake,
            port,
            image,
            secret: unique("secret-key-value"),
            home: TempDir::new("deploy-home"),
            _images: images,
        }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        let registry = registry();
        let mut env = self.fake.client_env();
        env.extend([
            ("DEPLOY_IMAGE", self.image.clone()),
            ("REGISTRY_USERNAME", registry.username),
            ("REGISTRY_PASSWORD", registry.password),
            ("SECRET_KEY", self.secret.clone()),
            ("HOME", self.home.path().display().to_string()),
            ("CIRCLE_SHA1", String::new()),
            ("CIRCLE_BRANCH", String::new()),
            ("EB_BUCKET", String::new()),
        ]);
        env
    }

    pub fn deploy(&self, args: &[&str]) -> Run {
        self.deploy_with(args, &[])
    }

    pub fn deploy_with(&self, args: &[&str], extra: &[(&'static str, String)]) -> Run {
        self.deploy_in(&root(), args, extra)
    }

    /// `deploy ARGS` on the workspace at `project`, with `extra` environment variables.
    pub fn deploy_in(
        &self,
        project: &Path,
        args: &[&str],
        extra: &[(&'static str, String)],
    ) -> Run {
        let mut all = vec!["deploy"];
        all.extend_from_slice(args);
        self.xtask_in(project, &all, extra)
    }

    /// `cargo xtask ARGS` in this world, with `extra` environment variables; no secret may
    /// show in its output.
    pub fn xtask(&self, args: &[&str], extra: &[(&'static str, String)]) -> Run {
        self.xtask_in(&root(), args, extra)
    }

    fn xtask_in(&self, project: &Path, args: &[&str], extra: &[(&'static str, String)]) -> Run {
        let env = self.env_with(extra);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let run = xtask_in(project, args, &env);
        self.assert_no_secret(&run.output);
        run
    }

    /// This world's environment variables, with `extra` set over them.
    pub fn env_with(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key, value.clone()));
        }
        env
    }

    pub fn assert_no_secret(&self, text: &str) {
        assert!(!text.contains(&self.secret), "the secret option value leaked:\n{text}");
        assert!(!text.contains(&registry().password), "the registry password leaked:\n{text}");
    }

    pub fn updates(&self) -> usize {
        self.fake.requests().iter().filter(|r| r.action == "UpdateEnvironment").count()
    }
}

/// The fake of a world: application `acme-web`, its versions in `bucket`.
fn fake_config(bucket: &Bucket, ecr: Option<(String, String, String)>) -> eb_fake::Config {
    eb_fake::Config {
        application: "acme-web".into(),
        bucket: bucket.name.clone(),
        s3: bucket.s3.clone(),
        update_takes: Duration::from_secs(1),
        // Small pages, so that every deploy reads its events across several.
        events_per_page: 2,
        instance_profile_ecr: ecr,
        application_exists: true,
    }
}

/// The repository of the deploy images built and pushed once per test run for the tests
/// that deploy without testing the build (`World::prebuilt`): `REPOSITORY:tag` is in the test
/// registry once this returns. Removed from the daemon and the registry when the run ends.
pub fn prebuilt(tag: &str) -> String {
    static REPOSITORY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let repository = REPOSITORY.get_or_init(|| {
        extern "C" fn remove_prebuilt() {
            let (Some(repository), Ok(built)) = (REPOSITORY.get(), BUILT.lock()) else { return };
            let registry = registry();
            for tag in built.iter() {
                registry.delete(&repository[registry.addr.len() + 1..], tag);
                docker(&["rmi", "--force", &format!("{repository}:{tag}")]);
            }
        }
        // SAFETY: registers a plain function to run at exit; it only runs commands.
        unsafe { libc::atexit(remove_prebuilt) };
        format!("{}/xtask-it/{}", registry().addr, unique("prebuilt"))
    });
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|t| t == tag) {
        let _lock = docker_lock();
        let registry = registry();
        let home = TempDir::new("prebuilt-home");
        xtask_in(
            &root(),
            &["build", "--push", "--no-cache", "--tag", tag],
            &[
                ("DEPLOY_IMAGE", repository),
                ("REGISTRY_USERNAME", &registry.username),
                ("REGISTRY_PASSWORD", &registry.password),
                ("HOME", home.path().to_str().unwrap()),
                ("CIRCLE_SHA1", ""),
            ],
        )
        .assert_success();
        built.push(tag.to_owned());
    }
    repository.clone()
}

/// The real xtask, started the way a terminal starts a foreground job: in a process group
/// of its own, so that a signal sent as a terminal sends Ctrl-C (to the whole group)
/// reaches it and its children alike. Its output is collected as it comes.
pub struct Started {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    started: std::time::Instant,
}

impl Started {
    pub fn new(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Started {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let (reader, writer) = os_pipe::pipe().unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .arg("--project-dir")
            .arg(project)
            .args(args)
            .env_remove("TEST_IMAGE")
            .env_remove("TEST_IMAGE_CACHE")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .process_group(0);
        let child = command.spawn().unwrap();
        // Our copies of the pipe's write end are gone with `command`.
        drop(command);
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collected = std::sync::Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let mut output = collected.lock().unwrap();
                output.push_str(&line);
                output.push('\n');
            }
        });
        Started { child, output, reader: Some(reader), started: std::time::Instant::now() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output holds `needle` (panics with the output after `secs`).
    pub fn wait_for(&self, needle: &str, secs: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !self.output().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "{needle:?} not seen in {secs}s; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the whole process group, as a terminal sends Ctrl-C (`SIGINT`).
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: kill(2) on the process group of a child we started and have not reaped.
        let sent = unsafe { libc::kill(-(self.child.id() as i32), signal) };
        assert_eq!(sent, 0, "kill(-{}, {signal})", self.child.id());
    }

    /// Waits for the command to end (panics after `secs`) and returns how it ended.
    pub fn wait(mut self, secs: u64) -> Run {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running after {secs}s; output:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        Run { code: status.code(), output: self.output() }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A server on 127.0.0.1 that accepts every connection and never answers: a stalled AWS
/// endpoint. Returns its URL.
pub fn stalled_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    url
}

/// A server on 127.0.0.1 that answers every request with `status`, a body of `content_type`
/// and `body`: a service that refuses. Returns its address.
pub fn stub_server(status: &'static str, content_type: &'static str, body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = stream.read(&mut buf);
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    addr
}

/// Watches every process's command line, from start to stop, for any of some secrets.
pub struct ArgvWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<String>, usize)>,
}

impl ArgvWatch {
    pub fn start(secrets: Vec<String>) -> ArgvWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut scans = 0;
            while !stopped.load(Ordering::SeqCst) {
                for entry in fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
                        let cmdline = String::from_utf8_lossy(&cmdline);
                        if secrets.iter().any(|secret| cmdline.contains(secret.as_str())) {
                            seen.push(cmdline.replace('\0', " "));
                        }
                    }
                }
                scans += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (seen, scans)
        });
        ArgvWatch { stop, thread }
    }

    /// The command lines that held a secret, and how many scans of all processes ran.
    pub fn stop(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}
