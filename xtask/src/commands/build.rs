//! `cargo xtask build`: the deploy image, tagged by commit, pushed with `--push` unless the
//! registry has it (`docker::image`).

use crate::config::settings::Settings;
use crate::docker::image::Plan;
use crate::{Context, flags};

pub fn run(ctx: &Context, flags: &flags::Build) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let options = flags.image.options(&ctx.env, flags.push, flags.allow_dirty)?;
    let mut plan = Plan::new(ctx, &settings, &options)?;
    if flags.image.dry_run {
        return plan.print(ctx);
    }
    plan.execute(ctx).map(|_| ())
}
