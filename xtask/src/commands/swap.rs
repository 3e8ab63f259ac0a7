//! `cargo xtask swap PAIR`: put the idle environment of a blue/green pair live, once it is
//! verified, holding both environments' deploy locks (`eb::swap`). `deploy --blue-green`
//! and `rollback PAIR` end with the same swap.

use std::time::Duration;

use crate::config::settings::Settings;
use crate::eb::ledger::{self, Job};
use crate::eb::{Eb, pair, swap, update};
use crate::flags;
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::Swap) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    let pair = settings.require_pair(&flags.pair)?;
    let verify = super::verify_options(&flags.settle, flags.allow_yellow);
    let timeout = flags.timeout.map_or(update::DEFAULT_TIMEOUT, Duration::from_secs);
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), &application, timeout)?;
    let sides = aws.block_on(pair::sides(ctx, &eb, &pair))?;
    let idle = sides.idle_name().to_owned();
    if flags.dry_run {
        ctx.ui.step(format_args!(
            "plan: swap pair {} (public CNAME {}): {idle} would go live (dry run: nothing is \
             changed)",
            pair.key, pair.cname
        ));
        ctx.ui.info(pair::line("live", &sides.live));
        ctx.ui.info(pair::line("idle", &sides.idle));
        ledger::print_plan(ctx, &application, &pair.names());
        super::print_swap_plan(ctx, &sides, verify);
        return Ok(());
    }
    let job = Job {
        command: "swap",
        environments: pair.names().map(str::to_owned).to_vec(),
        version: Some(sides.idle_version().to_owned()),
        commit: None,
        lock_wait: flags.lock.lock_wait,
        timeout,
        no_wait: false,
        logs: false,
        bucket: settings.bucket.clone(),
    };
    ledger::guarded(ctx, &aws, &eb, &job, |eb| {
        aws.block_on(async {
            let sides = swap::under_lock(ctx, eb, &pair, &idle).await?;
            let after = swap::run(ctx, eb, &pair, &sides, verify).await?;
            swap::conclude(ctx, &after);
            Ok(())
        })
    })
}
