//! `cargo xtask test`: build the test stage of the web Dockerfile with the cached image as
//! build cache, keep the cache tarball current, and run the suite in a throwaway container.

use std::path::PathBuf;

use crate::docker::cache;
use crate::docker::{self, Build};
use crate::flags;
use crate::run::{Context, Failure};

/// Everything `test` will do, decided before anything runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub image: String,
    /// `None` with `--no-cache`.
    pub cache_file: Option<PathBuf>,
    pub container: String,
}

impl Plan {
    pub fn new(flags: &flags::Test, env: &crate::run::Env) -> anyhow::Result<Plan> {
        let cache_file = flags.cache.path(env)?;
        Ok(Plan {
            image: docker::with_default_tag(&flags.image),
            cache_file,
            container: docker::unique_name("xtask-test"),
        })
    }

    /// The suite runs offline (`--network none`) in a container removed when it ends.
    pub fn run_cmd(&self) -> crate::run::cmd::Cmd {
        docker::docker()
            .args(["run", "--rm", "--network", "none", "--name", &self.container])
            .arg(&self.image)
    }
}

pub fn run(ctx: &Context, flags: &flags::Test) -> anyhow::Result<()> {
    let plan = Plan::new(flags, &ctx.env)?;
    let engine = docker::preflight(ctx)?;

    let cached = match &plan.cache_file {
        Some(path) => cache::restore(ctx, path, &plan.image)?,
        None => None,
    };

    ctx.ui.step(format_args!("build the test image {}", plan.image));
    let build = Build {
        target: "test",
        tag: plan.image.clone(),
        cache_from: docker::present(ctx, docker::cache_images(engine.builder, &plan.image))?,
        build_args: Vec::new(),
    };
    build.run(ctx, &engine, false)?;

    if let Some(path) = &plan.cache_file {
        if cached.is_some() && cached == docker::image_layers(ctx, &plan.image)? {
            ctx.ui.info(format_args!("cache {} is up to date: not saved", path.display()));
        } else {
            ctx.ui.step(format_args!("save the test image to {}", path.display()));
            let size = docker::image_size(ctx, &plan.image).ok();
            // The cache only saves time: failing to write it must not fail the tests.
            match cache::save(ctx, &plan.image, path, size) {
                Err(err) if !err.is::<crate::run::interrupt::Interrupted>() => {
                    ctx.ui.warn(format_args!("cache not saved: {err:#}"));
                }
                saved => saved?,
            }
        }
    }

    ctx.ui.step("run the web test suite");
    let code = docker::run_container(ctx, &plan.run_cmd(), &plan.container)?;
    match code {
        Some(0) => {
            ctx.ui.success("web test suite passed");
            Ok(())
        }
        Some(code) => {
            Err(Failure::new(code, format!("web test suite failed (exit status {code})")).into())
        }
        None => Err(Failure::new(1, "web test suite was killed by a signal").into()),
    }
}
