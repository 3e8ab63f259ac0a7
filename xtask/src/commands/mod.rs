//! The commands of `cargo xtask`, one module each (a folder when the command line has a
//! second word: `env create`, or a second mode: `deploy --local`): thin, each turns its
//! flags into the plain options of the parts below and composes them. A command never
//! imports another (the `tidy` tests check it); what several need of their flags is here.

pub mod bench;
pub mod build;
pub mod deploy;
pub mod env;
pub mod history;
pub mod lock;
pub mod logs;
pub mod rollback;
pub mod status;
pub mod swap;
pub mod test;
pub mod versions;

use std::time::Duration;

use crate::config::options::{self, Builtins};
use crate::config::targets::Target;
use crate::docker::image;
use crate::eb::pair::Sides;
use crate::eb::swap::{DEFAULT_SETTLE, Verify};
use crate::eb::update::{self, WaitOptions};
use crate::flags::{ImageArgs, SettleArgs, WaitArgs};
use crate::run::secret::Secret;
use crate::run::{Context, Env};

/// The build `ImageArgs` ask for, pushed or not; `local`: a dirty work tree may carry a
/// commit tag (nothing leaves the machine), else only with `--allow-dirty`.
fn image_options(
    args: &ImageArgs,
    env: &Env,
    push: bool,
    local: bool,
) -> anyhow::Result<image::Options> {
    Ok(image::Options {
        tag: args.tag.clone(),
        push,
        allow_dirty: local || args.allow_dirty,
        cache_file: args.cache.path(env)?,
        test_image: args.test_image.clone(),
        proxy: None,
    })
}

/// How `WaitArgs` wait for Elastic Beanstalk.
fn wait_options(args: &WaitArgs) -> WaitOptions {
    WaitOptions {
        timeout: args.timeout.map_or(update::DEFAULT_TIMEOUT, Duration::from_secs),
        recovery: args.recovery_window.map_or(update::DEFAULT_RECOVERY, Duration::from_secs),
        allow_yellow: args.allow_yellow,
        no_wait: args.no_wait,
        logs: !args.no_logs,
    }
}

/// How the idle environment of a pair is verified before it goes live.
fn verify_options(args: &SettleArgs, allow_yellow: bool) -> Verify {
    Verify { settle: args.settle.map_or(DEFAULT_SETTLE, Duration::from_secs), allow_yellow }
}

/// What `--dry-run` says of a swap.
fn print_swap_plan(ctx: &Context, sides: &Sides, verify: Verify) {
    let (idle, live) = (sides.idle_name(), sides.live_name());
    let colour = if verify.allow_yellow { "Green or Yellow" } else { "Green" };
    ctx.ui.info(format_args!(
        "verify {idle}: Ready, every instance on its version and {colour} for {}s (at least 3 \
         health refreshes); else stop, {live} untouched",
        verify.settle.as_secs()
    ));
    ctx.ui.info(format_args!(
        "one SwapEnvironmentCNAMEs of {idle} and {live}; wait for \"Completed swapping CNAMEs\" \
         and for {idle} to hold the public CNAME"
    ));
}

/// Masks, from now on, the secret values the options template renders to for `target`
/// with this process's variables (Elastic Beanstalk's events and logs may echo them).
fn hide_secrets(ctx: &Context, target: &Target) {
    let builtins =
        Builtins { deploy_env: target.deploy_env(), eb_environment: &target.name, image_tag: "" };
    let vars = |name: &str| builtins.get(name).or_else(|| ctx.env.get(name).map(str::to_owned));
    for value in options::secret_values_in(&ctx.root, &vars) {
        ctx.ui.hide(&Secret::new(value));
    }
}
