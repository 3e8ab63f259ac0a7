//! `cargo xtask history ENV|PAIR [--limit N] [--json]`: who deployed what to an environment
//! (each of a blue/green pair's two), from its deploy history in the bucket
//! (`eb::ledger::history`), newest first.

use crate::aws::DEFAULT_DEADLINE;
use crate::config::settings::Settings;
use crate::eb::Eb;
use crate::eb::ledger::{self, history};
use crate::flags;
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::History) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?;
    let names: Vec<String> = match settings.pair(&flags.env) {
        Some(pair) => pair.names().map(str::to_owned).to_vec(),
        None => vec![settings.target(Some(&flags.env), || Ok(None))?.name],
    };
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), application, DEFAULT_DEADLINE)?;
    let histories = aws.block_on(async {
        let store = ledger::store(ctx, &eb, settings.bucket.as_deref()).await?;
        let mut histories = Vec::new();
        for name in &names {
            let records = history::read(ctx, &eb, &store, name).await?;
            histories.push((name, records));
        }
        anyhow::Ok(histories)
    })?;
    let pair = histories.len() > 1;
    let mut documents = serde_json::Map::new();
    for (environment, records) in histories {
        let newest: Vec<_> = records.iter().rev().take(flags.limit).collect();
        if flags.json {
            documents.insert(environment.clone(), serde_json::to_value(&newest)?);
            continue;
        }
        if pair {
            ctx.ui.out(format_args!("{environment}:"));
        }
        if newest.is_empty() {
            ctx.ui.out(format_args!(
                "{environment} has no deploy history yet: deploys, rollbacks and env create \
                 record theirs from now on"
            ));
            continue;
        }
        for line in history::table(newest.into_iter()) {
            ctx.ui.out(line);
        }
    }
    if flags.json {
        // One environment: its array, as before; a pair: an object of both.
        let json = match documents.len() {
            1 => documents.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
            _ => serde_json::Value::Object(documents),
        };
        ctx.ui.out(serde_json::to_string_pretty(&json)?);
    }
    Ok(())
}
