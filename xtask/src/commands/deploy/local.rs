//! `cargo xtask deploy --local`: the release on this machine, run the way Elastic Beanstalk's
//! Docker platform runs it (`docker::local`), from the very descriptor `deploy` would upload.

use std::time::Duration;

use crate::config::bundle;
use crate::config::dockerrun;
use crate::config::envfile::read_env_file;
use crate::config::options;
use crate::config::settings::{RegistryKind, Settings};
use crate::docker::local::{self, EnvVar, Names, Release};
use crate::docker::{self, image, registry};
use crate::flags;
use crate::run::Context;
use crate::run::secret;

/// Everything `deploy --local` will do, decided before anything runs.
#[derive(Debug)]
pub struct Plan {
    pub build: image::Plan,
    pub release: Release,
    pub detach: bool,
    /// The bundle directory's platform hooks: Elastic Beanstalk's, not run here.
    pub hooks: Vec<String>,
}

pub fn run(ctx: &Context, flags: &flags::Deploy) -> anyhow::Result<()> {
    let port = flags.here.port;
    if flags.here.stop {
        return stop(ctx, port);
    }
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let plan = Plan::new(ctx, &settings, flags)?;
    if flags.image.dry_run {
        return plan.print(ctx);
    }
    plan.execute(ctx)
}

impl Plan {
    pub fn new(ctx: &Context, settings: &Settings, flags: &flags::Deploy) -> anyhow::Result<Plan> {
        let mut options = super::super::image_options(&flags.image, &ctx.env, false, true)?;
        options.proxy = Some(local::FRONT_IMAGE.to_owned());
        let build = image::Plan::new(ctx, settings, &options)?;
        let values = dockerrun::Values {
            bucket: "local".to_owned(),
            image: build.image.repository.clone(),
            tag: build.image.tag.clone(),
            // As `deploy` renders it: no auth file for a registry that needs none (ECR).
            auth_key: match registry::kind(settings, &build.image.repository) {
                RegistryKind::Basic => Some("local".to_owned()),
                RegistryKind::Ecr => None,
            },
        };
        let dockerrun = dockerrun::render_file(&ctx.root, &values)?;
        let env_file = match &flags.here.env_file {
            Some(path) => read_env_file(path)?,
            None => Vec::new(),
        };
        let local_secret = secret::random_hex();
        let builtins = options::Builtins {
            deploy_env: "local",
            eb_environment: "local",
            image_tag: &build.image.tag,
        };
        let vars = |name: &str| -> Option<String> {
            let from_file = env_file.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            from_file
                .or_else(|| builtins.get(name))
                .or_else(|| ctx.env.get(name).map(str::to_owned))
                .or_else(|| match name {
                    // What the app needs that a laptop does not have: a throwaway key.
                    "SECRET_KEY" => Some(format!("local-{local_secret}")),
                    _ => None,
                })
        };
        let options = options::render_file(&ctx.root, &vars)?;
        // The bundle directory's environment variables too, as the instances get them; the
        // options template's win (it is what `deploy` sends last).
        let extras = bundle::read(ctx, settings.bundle_dir.as_deref())?;
        let mut env = local::container_env(&options);
        let mut hooks = Vec::new();
        if let Some(extras) = &extras {
            for (name, value) in extras.environment() {
                if !env.iter().any(|e| e.name == name) {
                    env.push(EnvVar { name, value, secret: false });
                }
            }
            hooks = extras.hooks().map(str::to_owned).collect();
        }
        let port = flags.here.port;
        let release = Release {
            dockerrun,
            tag: build.image.tag.clone(),
            env,
            health_path: options.health_path("/health"),
            names: Names::new(port),
            timeout: flags.wait.timeout.map_or(local::DEFAULT_TIMEOUT, Duration::from_secs),
            dir: ctx.root.join("target").join("deploy-local").join(port.to_string()),
            container: docker::unique_name(&format!("xtask-local-{port}-release")),
        };
        Ok(Plan { build, release, detach: flags.here.detach, hooks })
    }

    /// The plan as a reader checks it. Runs nothing; secret values are masked.
    pub fn print(&self, ctx: &Context) -> anyhow::Result<()> {
        let release = &self.release;
        ctx.ui.step(format_args!(
            "plan: {} on http://127.0.0.1:{}/ (dry run: nothing is run)",
            self.build.image, release.names.port
        ));
        self.build.print_steps(ctx)?;
        self.say_hooks(ctx);
        ctx.ui.info(format_args!("the rendered {}:", dockerrun::TEMPLATE));
        for line in String::from_utf8_lossy(&release.dockerrun.to_bytes()).lines() {
            ctx.ui.info(format_args!("  {line}"));
        }
        release.print_plan(ctx);
        Ok(())
    }

    pub fn execute(mut self, ctx: &Context) -> anyhow::Result<()> {
        let release = &self.release;
        self.say_hooks(ctx);
        docker::preflight(ctx)?;
        release.check_port(ctx)?;
        self.build.execute(ctx, None)?;
        release.start(ctx)?;
        if self.detach {
            let port = release.names.port;
            ctx.ui.info(format_args!(
                "detached: stop it with `cargo xtask deploy --local --stop --port {port}`"
            ));
            return Ok(());
        }
        release.follow_logs(ctx)
    }
}

impl Plan {
    /// The platform hooks are Elastic Beanstalk's to run on its instances: said, not run.
    fn say_hooks(&self, ctx: &Context) {
        if !self.hooks.is_empty() {
            ctx.ui.info(format_args!(
                "not run locally (Elastic Beanstalk runs them on its instances): {}",
                self.hooks.join(", ")
            ));
        }
    }
}

/// `--stop`: everything of the local environment on `port` goes.
fn stop(ctx: &Context, port: u16) -> anyhow::Result<()> {
    docker::preflight(ctx)?;
    ctx.ui.step(format_args!("stop the local release on port {port}"));
    let stopped = local::stop(ctx, &Names::new(port))?;
    if !stopped.is_empty() {
        ctx.ui.info(format_args!("stopped {}", stopped.join(", ")));
    }
    ctx.ui.success(format_args!("nothing runs on port {port} any more"));
    Ok(())
}
