//! `cargo xtask deploy [ENV…]`: release one commit to Elastic Beanstalk environments, one
//! environment update each, and wait until each really runs it.
//!
//! Steps (`--dry-run` prints them): every environment is looked up (a wrong name fails
//! before a build) → their deploy locks (`eb::ledger`) → the image and the application
//! version, once for all (`Release`) → one UpdateEnvironment per environment with the
//! version *and* its option settings, started together and followed together
//! (`eb::update`). `deploy --local` is `local`, `deploy PAIR --blue-green` is `blue_green`.

pub mod blue_green;
pub mod local;

use anyhow::bail;

use crate::config::git;
use crate::config::settings::Settings;
use crate::eb::update::{self, Update};
use crate::eb::{environments, ledger, pair};
use crate::flags;
use crate::release::{Release, print_options};
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::Deploy) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    if let Some(pair) = flags.env.iter().find_map(|arg| settings.pair(arg)) {
        let [a, b] = pair.names();
        bail!(
            "{} is a blue/green pair: pass --blue-green (deploy to its idle side, then swap), or \
             name one of its environments ({a}, {b})",
            pair.key
        );
    }
    let targets = settings.targets(&flags.env, || git::deploy_branch(ctx))?;
    let wait = super::wait_options(&flags.wait);
    let image = super::image_options(&flags.image, &ctx.env, true, false)?;
    let mut release = Release::new(ctx, settings, &image, targets, wait)?;
    if flags.image.dry_run {
        return print(ctx, &release);
    }
    let (aws, eb) = release.connect(ctx)?;
    // A wrong environment name fails now, not after a build and a push.
    aws.block_on(async {
        for environment in release.environments() {
            let env = environments::describe(ctx, &eb, environment).await?;
            if let Some(pair) = release.settings.pair_of(environment)
                && pair::holds(&env, &pair.cname)
            {
                ctx.ui.warn(format_args!(
                    "{environment} is the live side of blue/green pair {}: this updates it in \
                     place; `cargo xtask deploy {} --blue-green` deploys to the idle side and \
                     swaps",
                    pair.key, pair.key
                ));
            }
        }
        anyhow::Ok(())
    })?;
    let job = release.job("deploy", flags.lock.lock_wait);
    ledger::guarded(ctx, &aws, &eb, &job, |eb| {
        release.build(ctx, &aws)?;
        let updates = release
            .destinations
            .iter()
            .map(|d| Update {
                environment: &d.target.name,
                label: release.label(),
                options: update::option_settings(&d.options),
                wait,
            })
            .collect();
        aws.block_on(async {
            release.publish(ctx, eb).await?;
            update::run_all(ctx, eb, updates).await
        })
    })
}

/// The plan as a reader checks it: every step, secrets masked. Runs nothing.
fn print(ctx: &Context, release: &Release) -> anyhow::Result<()> {
    let (ui, label) = (&ctx.ui, release.label());
    let environments = release.environments().join(", ");
    ui.step(format_args!(
        "plan: {} to {environments} of {} (dry run: nothing is run)",
        release.build.image, release.application
    ));
    ledger::print_plan(ctx, &release.application, &release.environments());
    release.print(ctx)?;
    let timeout = release.wait.timeout.as_secs();
    for destination in &release.destinations {
        let (environment, options) = (&destination.target.name, &destination.options.0);
        ui.info(format_args!("wait until {environment} is Ready (up to {timeout}s)"));
        ui.info(format_args!(
            "one UpdateEnvironment of {environment}: version {label} and {} option settings:",
            options.len()
        ));
        print_options(ctx, &destination.options);
    }
    if release.destinations.len() > 1 {
        ui.info("the updates start together, each as soon as its environment is Ready");
    }
    let what = if release.destinations.len() > 1 { "each update" } else { "the update" };
    release.print_wait(ctx, what);
    Ok(())
}
