//! One deploy test's world: a bucket in moto, the Elastic Beanstalk fake with one
//! environment, an image repository, a secret option value and a HOME of its own; and the
//! deploy images built once per run.

use std::path::Path;
use std::time::Duration;

use super::{
    Bucket, Repository, Run, TempDir, closed_port, docker, docker_lock, eb_fake, ecr, registry,
    root, unique, xtask_in,
};

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
        World::prebuilt_with(tags, |_| {})
    }

    /// A prebuilt world whose fake is configured by `configure` (its clock, its health).
    pub fn prebuilt_with(tags: &[&str], configure: impl FnOnce(&mut eb_fake::Config)) -> World {
        for tag in tags {
            prebuilt(tag);
        }
        let repository = prebuilt(tags.first().copied().unwrap_or("v1"));
        World::start(repository, None, None, configure)
    }

    /// A world whose image is in the ECR stand-in, from which the fake's instance profile
    /// pulls. Its deploys get the variables of [`ecr::Repository::env`].
    pub fn ecr(repository: &ecr::Repository) -> World {
        let registry = ecr::registry();
        let profile = (registry.addr, registry.username, registry.password);
        World::start(repository.image.clone(), None, Some(profile), |_| {})
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
        World::start(image, images, None, |_| {})
    }

    fn fake_config(&self, ecr: Option<(String, String, String)>) -> eb_fake::Config {
        fake_config(&self.bucket, ecr)
    }

    fn start(
        image: String,
        images: Option<Repository>,
        instance_profile_ecr: Option<(String, String, String)>,
        configure: impl FnOnce(&mut eb_fake::Config),
    ) -> World {
        let bucket = Bucket::new();
        let mut config = fake_config(&bucket, instance_profile_ecr);
        configure(&mut config);
        let fake = eb_fake::EbFake::start(config);
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
        assert!(!text.contains(&super::robot().1), "the pull password leaked:\n{text}");
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
        region: "us-east-1".into(),
        // Small pages, so that every deploy reads its events across several.
        page_size: 2,
        instance_profile_ecr: ecr,
        application_exists: true,
        clock_skew: 0,
        health_refresh: Duration::from_secs(1),
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
