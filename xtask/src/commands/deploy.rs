//! `cargo xtask deploy [ENV]`: release one commit to an Elastic Beanstalk environment with a
//! single environment update, and wait until it is really deployed.
//!
//! Steps, each decided before the first runs (`--dry-run` prints them): build and push the
//! image unless the registry has it (`docker::image`) → the application version, which
//! never changes once created (`eb::release`) → one UpdateEnvironment with the version
//! *and* the option settings, then the wait for Ready, our version and Green (`eb::update`).

use std::fs;

use anyhow::Context as _;

use crate::aws::{self, Aws, Deadline};
use crate::config::dockerrun::{self, Values};
use crate::config::git;
use crate::config::options::{self, Options};
use crate::config::settings::{Settings, Target};
use crate::docker::image;
use crate::eb::environments;
use crate::eb::release::{self, AuthFile, BUCKET_TO_BE_CREATED, Version};
use crate::eb::update::{self, Update, WaitOptions};
use crate::run::secret::Secret;
use crate::{Context, flags};

/// Everything `deploy` will do, decided before anything runs.
#[derive(Debug)]
pub struct Plan {
    pub build: image::Plan,
    pub settings: Settings,
    pub application: String,
    pub target: Target,
    pub template: String,
    /// `None` for a registry Elastic Beanstalk pulls from without one (ECR).
    pub auth_file: Option<AuthFile>,
    pub options: Options,
    pub wait: WaitOptions,
}

pub fn run(ctx: &Context, flags: &flags::Deploy) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let plan = Plan::new(ctx, settings, flags)?;
    if flags.image.dry_run {
        return plan.print(ctx);
    }
    plan.execute(ctx)
}

impl Plan {
    pub fn new(ctx: &Context, settings: Settings, flags: &flags::Deploy) -> anyhow::Result<Plan> {
        let build = image::Plan::new(ctx, &settings, &flags.image.options(&ctx.env, true, false)?)?;
        let tag = build.image.tag.clone();
        release::check_label(&tag)?;
        let application = settings.application()?.to_owned();
        let target = settings.target(flags.env.as_deref(), || git::deploy_branch(ctx))?;
        let template_path = ctx.root.join(dockerrun::TEMPLATE);
        let template = fs::read_to_string(&template_path)
            .with_context(|| format!("cannot read {}", template_path.display()))?;
        let builtins = options::Builtins {
            deploy_env: target.deploy_env(),
            eb_environment: &target.name,
            image_tag: &tag,
        };
        let vars = |name: &str| builtins.get(name).or_else(|| ctx.env.get(name).map(str::to_owned));
        let options = options::render_file(&ctx.root, &vars)?;
        for value in options.secret_values() {
            ctx.ui.hide(&Secret::new(value));
        }
        let session = build.session.as_ref().context("internal error: a deploy always pushes")?;
        let auth_file = session.basic().map(|credentials| {
            ctx.ui.hide(&credentials.token());
            let content = credentials.docker_config(&session.registry);
            ctx.ui.hide(&content);
            AuthFile { key: format!("{application}/deploy/registry-auth.json"), content }
        });
        let plan = Plan {
            wait: flags.wait.options(flags.timeout),
            build,
            settings,
            application,
            target,
            template,
            auth_file,
            options,
        };
        // Checked now, so that a broken template fails before any AWS call.
        plan.version().bundle(BUCKET_TO_BE_CREATED)?;
        Ok(plan)
    }

    /// The application version this deploy publishes.
    fn version(&self) -> Version<'_> {
        Version {
            application: &self.application,
            label: &self.build.image.tag,
            description: format!("{} by cargo xtask deploy", self.build.image),
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

    /// The plan as a reader checks it: every step, secrets masked. Runs nothing.
    pub fn print(&self, ctx: &Context) -> anyhow::Result<()> {
        let (ui, label, environment) = (&ctx.ui, &self.build.image.tag, &self.target.name);
        ui.step(format_args!(
            "plan: {} to {environment} of {} (dry run: nothing is run)",
            self.build.image, self.application
        ));
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
        let (timeout, options) = (self.wait.timeout.as_secs(), &self.options.0);
        ui.info(format_args!("wait until {environment} is Ready (up to {timeout}s)"));
        ui.info(format_args!(
            "one UpdateEnvironment of {environment}: version {label} and {} option settings:",
            options.len()
        ));
        for option in options {
            ui.info(format_args!("  {option}"));
        }
        if self.wait.no_wait {
            ui.info("then return (--no-wait)");
        } else {
            ui.info(format_args!(
                "then wait for Ready, version {label}, health Green{} (up to {timeout}s; health \
                 may take {}s to recover)",
                if self.wait.allow_yellow { " or Yellow" } else { "" },
                self.wait.recovery.as_secs()
            ));
        }
        Ok(())
    }

    pub fn execute(mut self, ctx: &Context) -> anyhow::Result<()> {
        let ecr_region = self.build.ecr().and_then(|ecr| ecr.region());
        let aws = Aws::connect(&ctx.env, aws::Setup { ecr_region, ..self.settings.aws() })?;
        let clients = &aws.clients;
        // A wrong environment name fails now, not after a build and a push.
        let (application, environment) = (&self.application, &self.target.name);
        let deadline = Deadline::after(self.wait.timeout);
        aws.block_on(environments::describe(ctx, clients, application, environment, deadline))?;
        self.build.execute(ctx, Some(&aws))?;
        aws.block_on(async {
            let deadline = Deadline::after(self.wait.timeout);
            self.version().publish(ctx, clients, deadline).await?;
            let update = Update {
                application,
                environment,
                label: &self.build.image.tag,
                options: update::option_settings(&self.options),
                wait: self.wait,
            };
            update.run(ctx, clients).await
        })
    }
}
