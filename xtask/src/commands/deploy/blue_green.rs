//! `cargo xtask deploy PAIR --blue-green`: release the commit to the idle environment of a
//! blue/green pair (the normal update and its verdict), verify it, then swap it live
//! (`eb::swap`). The live environment is never updated: a failed verdict stops before the
//! swap with it untouched. `--no-swap` stops after the verified idle deploy. Both
//! environments' deploy locks are held for the whole run.

use anyhow::bail;

use crate::config::settings::Settings;
use crate::eb::pair::{self, Sides};
use crate::eb::update::{self, Update};
use crate::eb::{ledger, swap};
use crate::flags;
use crate::release::{Release, print_options};
use crate::run::{Context, Failure};

pub fn run(ctx: &Context, flags: &flags::Deploy) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let [arg] = flags.env.as_slice() else {
        let example = settings.blue_green.keys().next().map_or("production", String::as_str);
        bail!(
            "--blue-green deploys to one pair: name it, e.g. `cargo xtask deploy {example} \
             --blue-green`"
        );
    };
    let pair = settings.require_pair(arg)?;
    let wait = super::super::wait_options(&flags.wait);
    let verify = super::super::verify_options(&flags.settle, flags.wait.allow_yellow);
    let image = super::super::image_options(&flags.image, &ctx.env, true, false)?;
    // Both sides' option settings are rendered (and checked) now: either may be the idle one.
    let targets = pair.environments.to_vec();
    let mut release = Release::new(ctx, settings, &image, targets, wait)?;
    let (aws, eb) = release.connect(ctx)?;
    let sides = aws.block_on(pair::sides(ctx, &eb, &pair))?;
    let idle = sides.idle_name().to_owned();
    release.destinations.retain(|d| d.target.name == idle);
    if flags.image.dry_run {
        return print(ctx, &release, &sides, flags, verify);
    }
    let label = release.label().to_owned();
    let mut job = release.job("deploy --blue-green", flags.lock.lock_wait);
    job.environments = pair.names().map(str::to_owned).to_vec();
    ledger::guarded(ctx, &aws, &eb, &job, |eb| {
        let sides = aws.block_on(swap::under_lock(ctx, eb, &pair, &idle))?;
        release.build(ctx, &aws)?;
        let options = update::option_settings(&release.destinations[0].options);
        aws.block_on(async {
            release.publish(ctx, eb).await?;
            eb.journal().placed(&idle, &label, false);
            let update = Update { environment: &idle, label: &label, options, wait };
            update.run(ctx, eb).await.map_err(|err| untouched(err, &sides))?;
            if flags.no_swap {
                ctx.ui.success(format_args!(
                    "{idle} (idle) runs {label}, verified; {} still serves {}: look at {idle} by \
                     its own URL, then `cargo xtask swap {}` puts it live",
                    sides.live_name(),
                    sides.live_version(),
                    pair.key
                ));
                return Ok(());
            }
            let sides = pair::sides(ctx, eb, &pair).await?;
            let after = swap::run(ctx, eb, &pair, &sides, verify).await?;
            swap::conclude(ctx, &after);
            Ok(())
        })
    })
}

/// A failed deploy to the idle side: the error says the live one was never touched.
fn untouched(err: anyhow::Error, sides: &Sides) -> anyhow::Error {
    let live = format!("live: {} still serves {}", sides.live_name(), sides.live_version());
    match err.downcast::<Failure>() {
        Ok(failure) => Failure::new(failure.code, format!("{}; {live}", failure.message)).into(),
        Err(err) => err.context(live),
    }
}

/// The plan as a reader checks it: which side gets the version, every step, secrets masked.
fn print(
    ctx: &Context,
    release: &Release,
    sides: &Sides,
    flags: &flags::Deploy,
    verify: crate::eb::swap::Verify,
) -> anyhow::Result<()> {
    let (ui, label, idle) = (&ctx.ui, release.label(), sides.idle_name());
    ui.step(format_args!(
        "plan: {} to {idle}, the idle side of pair {}, then swap it live (dry run: nothing is \
         run)",
        release.build.image, flags.env[0]
    ));
    ui.info(pair::line("live", &sides.live));
    ui.info(pair::line("idle", &sides.idle));
    ledger::print_plan(ctx, &release.application, &[sides.live_name(), idle]);
    release.print(ctx)?;
    let options = &release.destinations[0].options;
    ui.info(format_args!(
        "one UpdateEnvironment of {idle}: version {label} and {} option settings:",
        options.0.len()
    ));
    print_options(ctx, options);
    release.print_wait(ctx, "the update");
    if flags.no_swap {
        ui.info(format_args!("--no-swap: stop there; {} stays live", sides.live_name()));
    } else {
        super::super::print_swap_plan(ctx, sides, verify);
    }
    Ok(())
}
