//! `cargo xtask history ENV [--limit N] [--json]`: who deployed what to an environment, from
//! its deploy history in the bucket (`eb::ledger::history`), newest first.

use crate::aws::DEFAULT_DEADLINE;
use crate::config::settings::Settings;
use crate::eb::Eb;
use crate::eb::ledger::{self, history};
use crate::flags;
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::History) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?;
    let target = settings.target(Some(&flags.env), || Ok(None))?;
    let environment = target.name.as_str();
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), application, DEFAULT_DEADLINE)?;
    let records = aws.block_on(async {
        let store = ledger::store(ctx, &eb, settings.bucket.as_deref()).await?;
        history::read(ctx, &eb, &store, environment).await
    })?;
    let newest: Vec<_> = records.iter().rev().take(flags.limit).collect();
    if flags.json {
        ctx.ui.out(serde_json::to_string_pretty(&newest)?);
    } else if newest.is_empty() {
        ctx.ui.out(format_args!(
            "{environment} has no deploy history yet: deploys, rollbacks and env create record \
             theirs from now on"
        ));
    } else {
        for line in history::table(newest.into_iter()) {
            ctx.ui.out(line);
        }
    }
    Ok(())
}
