//! `cargo xtask build`: the deploy image, tagged by commit, pushed with `--push` unless the
//! registry has it (`docker::image`); to Amazon ECR with a token from the AWS credentials.

use crate::aws::{self, Aws};
use crate::config::settings::Settings;
use crate::docker::image::Plan;
use crate::flags;
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::Build) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let options = super::image_options(&flags.image, &ctx.env, flags.push, false)?;
    let mut plan = Plan::new(ctx, &settings, &options)?;
    if flags.image.dry_run {
        return plan.print(ctx);
    }
    let aws = match plan.ecr() {
        Some(ecr) => {
            let setup = aws::Setup { ecr_region: ecr.region(), ..settings.aws() };
            Some(Aws::connect(&ctx.env, setup)?)
        }
        None => None,
    };
    plan.execute(ctx, aws.as_ref()).map(|_| ())
}
