//! One commit's release to Elastic Beanstalk, the plan shared by the commands that release:
//! `deploy` (to existing environments) and `env create` (to a new one). Both build and push
//! the image unless the registry has it (`docker::image`) and publish one application
//! version that never changes once created (`eb::publish`); each environment gets the
//! option settings of the template rendered for it. Everything is decided before the first
//! step runs, and `--dry-run` prints it.

use std::fs;

use anyhow::Context as _;

use crate::aws::{self, Aws};
use crate::config::bundle::{self, Extras};
use crate::config::dockerrun::{self, Values};
use crate::config::git::{self, Commit};
use crate::config::options::{self, Options};
use crate::config::settings::Settings;
use crate::config::targets::Target;
use crate::docker::credentials::Credentials;
use crate::docker::image;
use crate::eb::Eb;
use crate::eb::auth_file::AuthFile;
use crate::eb::bundle::DOCKERRUN;
use crate::eb::ledger::Job;
use crate::eb::publish::{self, BUCKET_TO_BE_CREATED, Version};
use crate::eb::update::WaitOptions;
use crate::run::Context;
use crate::run::secret::Secret;

/// One commit's release, decided before anything runs.
#[derive(Debug)]
pub struct Release {
    pub build: image::Plan,
    pub settings: Settings,
    pub application: String,
    pub template: String,
    /// `None` for a registry Elastic Beanstalk pulls from without one (ECR).
    pub auth_file: Option<AuthFile>,
    /// The environments it goes to, each with its option settings.
    pub destinations: Vec<Destination>,
    pub wait: WaitOptions,
    /// The commit built (`None` outside a git checkout with commits).
    pub commit: Option<Commit>,
    /// The bundle directory's files (`None`: the bundle is the Dockerrun alone).
    pub extras: Option<Extras>,
}

/// An environment a release goes to.
#[derive(Debug)]
pub struct Destination {
    pub target: Target,
    /// The options template, rendered for this environment (`DEPLOY_ENV`, `EB_ENVIRONMENT`).
    pub options: Options,
}

impl Release {
    pub fn new(
        ctx: &Context,
        settings: Settings,
        image: &image::Options,
        targets: Vec<Target>,
        wait: WaitOptions,
    ) -> anyhow::Result<Release> {
        // Checked first: a mistake there fails before anything else.
        let extras = bundle::read(ctx, settings.bundle_dir.as_deref())?;
        let build = image::Plan::new(ctx, &settings, image)?;
        let tag = build.image.tag.clone();
        publish::check_label(&tag)?;
        let application = settings.application()?.to_owned();
        let template_path = ctx.root.join(dockerrun::TEMPLATE);
        let template = fs::read_to_string(&template_path)
            .with_context(|| format!("cannot read {}", template_path.display()))?;
        let mut destinations = Vec::with_capacity(targets.len());
        for target in targets {
            let builtins = options::Builtins {
                deploy_env: target.deploy_env(),
                eb_environment: &target.name,
                image_tag: &tag,
            };
            let vars =
                |name: &str| builtins.get(name).or_else(|| ctx.env.get(name).map(str::to_owned));
            let options = options::render_file(&ctx.root, &vars)?;
            for value in options.secret_values() {
                ctx.ui.hide(&Secret::new(value));
            }
            destinations.push(Destination { target, options });
        }
        let session = build.session.as_ref().context("internal error: a release always pushes")?;
        let pull = Credentials::pull_from_env(&ctx.env)?;
        let auth_file = match (session.basic(), pull) {
            (None, _) => None,
            (Some(push), pull) => {
                let own = pull.is_some();
                let credentials = pull.unwrap_or_else(|| push.clone());
                ctx.ui.hide(&credentials.password);
                ctx.ui.hide(&credentials.token());
                let content = credentials.docker_config(&session.registry);
                ctx.ui.hide(&content);
                let key = format!("{application}/deploy/registry-auth.json");
                if !own {
                    ctx.ui.warn(format_args!(
                        "the instances will pull with the push credentials of {}: set \
                         REGISTRY_PULL_USERNAME and REGISTRY_PULL_PASSWORD (a read-only robot \
                         account), so that a later scale-out never depends on whoever deployed \
                         last",
                        credentials.username
                    ));
                }
                Some(AuthFile { key, content, username: credentials.username, own })
            }
        };
        let commit = git::commit(ctx, "HEAD").ok();
        let release = Release {
            build,
            settings,
            application,
            template,
            auth_file,
            destinations,
            wait,
            commit,
            extras,
        };
        // Checked now, so that a broken template fails before any AWS call.
        release.version().bundle(BUCKET_TO_BE_CREATED)?;
        Ok(release)
    }

    pub fn label(&self) -> &str {
        &self.build.image.tag
    }

    /// The environments' names, in order.
    pub fn environments(&self) -> Vec<&str> {
        self.destinations.iter().map(|d| d.target.name.as_str()).collect()
    }

    /// The application version this release publishes.
    pub fn version(&self) -> Version<'_> {
        Version {
            application: &self.application,
            label: &self.build.image.tag,
            description: match &self.commit {
                Some(commit) => publish::description(&commit.subject, &commit.author),
                None => format!("{} by cargo xtask", self.build.image),
            },
            template: &self.template,
            values: Values {
                bucket: String::new(),
                image: self.build.image.repository.clone(),
                tag: self.build.image.tag.clone(),
                auth_key: None,
            },
            auth_file: self.auth_file.as_ref(),
            bucket: self.settings.bucket.as_deref(),
            extras: self.extras.as_ref(),
        }
    }

    /// The release as its lock and history records see it: `command` (`deploy`, `env
    /// create`) to every destination, waiting `lock_wait` for a lock someone else holds.
    pub fn job(&self, command: &'static str, lock_wait: Option<std::time::Duration>) -> Job {
        Job {
            command,
            environments: self.destinations.iter().map(|d| d.target.name.clone()).collect(),
            version: Some(self.label().to_owned()),
            commit: self.commit.as_ref().map(|c| (c.sha.clone(), c.subject.clone())),
            lock_wait,
            timeout: self.wait.timeout,
            no_wait: self.wait.no_wait,
            logs: self.wait.logs,
            bucket: self.settings.bucket.clone(),
        }
    }

    /// The AWS clients (ECR's in the registry's region), and the Elastic Beanstalk handle
    /// whose deadline starts now.
    pub fn connect(&self, ctx: &Context) -> anyhow::Result<(Aws, Eb)> {
        let ecr_region = self.build.ecr().and_then(|ecr| ecr.region());
        let setup = aws::Setup { ecr_region, ..self.settings.aws() };
        Eb::connect(&ctx.env, setup, &self.application, self.wait.timeout)
    }

    /// Builds and pushes the image, unless the registry has it.
    pub fn build(&mut self, ctx: &Context, aws: &Aws) -> anyhow::Result<()> {
        self.build.execute(ctx, Some(aws)).map(drop)
    }

    /// Publishes the application version (the image must be in the registry).
    pub async fn publish(&self, ctx: &Context, eb: &Eb) -> anyhow::Result<()> {
        self.version().publish(ctx, eb).await
    }

    /// The steps up to the application version, as a reader checks them, secrets masked.
    pub fn print(&self, ctx: &Context) -> anyhow::Result<()> {
        let (ui, label) = (&ctx.ui, self.label());
        self.build.print_steps(ctx)?;
        let bucket = self.settings.bucket.as_deref().unwrap_or(BUCKET_TO_BE_CREATED);
        match &self.settings.bucket {
            Some(bucket) => ui.info(format_args!("bucket {bucket} (setting)")),
            None => {
                ui.info("bucket: the account's Elastic Beanstalk bucket (CreateStorageLocation)")
            }
        }
        ui.info(format_args!(
            "application version {label} of {}: reused only when it exists with this very \
             bundle, refused when it exists with another (checked before anything is written)",
            self.application
        ));
        match &self.auth_file {
            Some(auth) => ui.info(format_args!(
                "the instances pull as {} ({}): the registry auth file s3://{bucket}/{} is \
                 written, encrypted (SSE AES256), only if it holds other credentials",
                auth.username,
                if auth.own { "REGISTRY_PULL_USERNAME" } else { "the push credentials" },
                auth.key
            )),
            None => ui.info(
                "no registry auth file: Elastic Beanstalk pulls from ECR with the instance profile",
            ),
        }
        let bundle = self.version().bundle(bucket)?;
        // Its digest depends on the bucket it names: unknown until CreateStorageLocation.
        let key = match &self.settings.bucket {
            Some(_) => bundle.key.clone(),
            None => bundle.key.replace(&bundle.digest, "<SHA-256 of the bundle>"),
        };
        if bundle.entries.is_empty() {
            ui.info(format_args!("upload the rendered Dockerrun: s3://{bucket}/{key}"));
        } else {
            let digest = match &self.settings.bucket {
                Some(_) => format!("sha256:{}", bundle.digest),
                None => "its SHA-256 once the bucket is known".to_owned(),
            };
            ui.info(format_args!(
                "upload the bundle, a zip of {} bytes ({digest}): s3://{bucket}/{key}",
                bundle.bytes.len()
            ));
            for (path, mode, size) in &bundle.entries {
                ui.info(format_args!("  {mode:04o}  {size:>8}  {path}"));
            }
            ui.info(format_args!("the rendered {DOCKERRUN}:"));
        }
        for line in String::from_utf8_lossy(&bundle.dockerrun).lines() {
            ui.info(format_args!("  {line}"));
        }
        Ok(())
    }

    /// How the wait for `what` ends, as `--dry-run` says it.
    pub fn print_wait(&self, ctx: &Context, what: &str) {
        let (timeout, label) = (self.wait.timeout.as_secs(), self.label());
        if self.wait.no_wait {
            ctx.ui.info("then return (--no-wait)");
            return;
        }
        ctx.ui.info(format_args!(
            "then follow {what} until Ready, version {label}, health Green{} (up to {timeout}s; \
             health may take {}s to recover)",
            if self.wait.allow_yellow { " or Yellow" } else { "" },
            self.wait.recovery.as_secs()
        ));
        if self.wait.logs {
            ctx.ui.info(
                "if it fails (exit 3 or 4), show why from the instances' logs (up to 60s; \
                 --no-logs skips this)",
            );
        }
    }
}

/// Option settings as the plan lists them, secrets masked.
pub fn print_options(ctx: &Context, options: &Options) {
    for option in &options.0 {
        ctx.ui.info(format_args!("  {option}"));
    }
}
