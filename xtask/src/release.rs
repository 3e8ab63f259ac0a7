//! The commands that release a commit to Elastic Beanstalk, and the plan they share: `deploy`
//! (to existing environments) and `env create` (to a new one). Both build and push the image
//! unless the registry has it (`docker::image`) and publish one application version that
//! never changes once created (`eb::release`); each environment gets the option settings
//! of the template rendered for it. Everything is decided before the first step runs, and
//! `--dry-run` prints it.

pub mod create;
pub mod deploy;

use std::fs;

use anyhow::Context as _;

use crate::Context;
use crate::aws::{self, Aws, Deadline};
use crate::config::dockerrun::{self, Values};
use crate::config::options::{self, Options};
use crate::config::settings::Settings;
use crate::config::targets::Target;
use crate::docker::image;
use crate::eb::release::{self, AuthFile, BUCKET_TO_BE_CREATED, Version};
use crate::eb::update::WaitOptions;
use crate::flags::ImageArgs;
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
        image: &ImageArgs,
        targets: Vec<Target>,
        wait: WaitOptions,
    ) -> anyhow::Result<Release> {
        let build = image::Plan::new(ctx, &settings, &image.options(&ctx.env, true, false)?)?;
        let tag = build.image.tag.clone();
        release::check_label(&tag)?;
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
        let auth_file = session.basic().map(|credentials| {
            ctx.ui.hide(&credentials.token());
            let content = credentials.docker_config(&session.registry);
            ctx.ui.hide(&content);
            AuthFile { key: format!("{application}/deploy/registry-auth.json"), content }
        });
        let release =
            Release { build, settings, application, template, auth_file, destinations, wait };
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
            description: format!("{} by cargo xtask", self.build.image),
            template: &self.template,
            values: Values {
                bucket: String::new(),
                image: self.build.image.repository.clone(),
                tag: self.build.image.tag.clone(),
                auth_key: None,
            },
            auth_file: self.auth_file.as_ref(),
            bucket: self.settings.bucket.as_deref(),
        }
    }

    /// The AWS clients, ECR's in the registry's region.
    pub fn connect(&self, ctx: &Context) -> anyhow::Result<Aws> {
        let ecr_region = self.build.ecr().and_then(|ecr| ecr.region());
        Aws::connect(&ctx.env, aws::Setup { ecr_region, ..self.settings.aws() })
    }

    /// Builds and pushes the image, unless the registry has it.
    pub fn build(&mut self, ctx: &Context, aws: &Aws) -> anyhow::Result<()> {
        self.build.execute(ctx, Some(aws)).map(drop)
    }

    /// Publishes the application version (the image must be in the registry).
    pub fn publish(&self, ctx: &Context, aws: &Aws) -> anyhow::Result<()> {
        let deadline = Deadline::after(self.wait.timeout);
        aws.block_on(self.version().publish(ctx, &aws.clients, deadline))
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
                "upload the registry auth file, encrypted (SSE AES256): s3://{bucket}/{}",
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
        ui.info(format_args!("upload the rendered Dockerrun: s3://{bucket}/{key}"));
        for line in String::from_utf8_lossy(&bundle.bytes).lines() {
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
    }
}

/// Option settings as the plan lists them, secrets masked.
pub fn print_options(ctx: &Context, options: &Options) {
    for option in &options.0 {
        ctx.ui.info(format_args!("  {option}"));
    }
}
