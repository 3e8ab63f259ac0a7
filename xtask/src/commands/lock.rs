//! `cargo xtask lock status|acquire|release ENV`: the deploy lock of an environment by hand
//! (`eb::ledger::lock`): who holds it; take it for an incident or a freeze (the commands
//! that change the environment then refuse with its message); release it.

use crate::aws::DEFAULT_DEADLINE;
use crate::config::actor::Actor;
use crate::config::settings::Settings;
use anyhow::bail;

use crate::eb::ledger::lock::{self, BY_HAND, Holder};
use crate::eb::ledger::{self, store::Store};
use crate::eb::{Eb, environments};
use crate::flags::LockCommand;
use crate::run::Context;

pub fn run(ctx: &Context, command: &LockCommand) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?;
    let env = match command {
        LockCommand::Status(lock) => lock,
        LockCommand::Acquire { lock, .. } | LockCommand::Release { lock, .. } => lock,
    };
    let target = settings.target(Some(&env.env), || Ok(None))?;
    let environment = target.name.as_str();
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), application, DEFAULT_DEADLINE)?;
    aws.block_on(async {
        // The environment is looked up first: a lock's age is told on the service's clock
        // (read from this answer), and a lock is never taken by hand for a misspelt name. A
        // lock left for an environment since terminated can still be shown and released.
        let exists = environments::find(ctx, &eb, environment).await?.is_some();
        if !exists {
            if let LockCommand::Acquire { .. } = command {
                bail!(
                    "environment {environment} not found in application {application}: check \
                     the name (`cargo xtask status` lists them)"
                );
            }
            ctx.ui.warn(format_args!(
                "environment {environment} not found in application {application}"
            ));
        }
        let store = ledger::store(ctx, &eb, settings.bucket.as_deref()).await?;
        match command {
            LockCommand::Status(_) => status(ctx, &eb, &store, environment).await,
            LockCommand::Acquire { message, .. } => {
                acquire(ctx, &eb, &store, environment, message).await
            }
            LockCommand::Release { force, .. } => {
                let me = Actor::of(ctx);
                match lock::release_by_hand(ctx, &eb, &store, environment, &me, *force).await? {
                    Some(theirs) => ctx.ui.success(format_args!(
                        "released the deploy lock of {environment}, held by {}",
                        theirs.describe(eb.now())
                    )),
                    None => ctx.ui.success(format_args!("{environment} was not locked")),
                }
                Ok(())
            }
        }
    })
}

async fn status(ctx: &Context, eb: &Eb, store: &Store, environment: &str) -> anyhow::Result<()> {
    match lock::status(ctx, eb, store, environment).await? {
        Some((holder, _)) => ctx.ui.out(format_args!(
            "{environment} is locked by {}{}",
            holder.describe(eb.now()),
            holder.build_url.as_ref().map(|u| format!(" ({u})")).unwrap_or_default()
        )),
        None => ctx.ui.out(format_args!("{environment} is not locked")),
    }
    Ok(())
}

async fn acquire(
    ctx: &Context,
    eb: &Eb,
    store: &Store,
    environment: &str,
    message: &str,
) -> anyhow::Result<()> {
    let mut holder = Holder::new(&Actor::of(ctx), BY_HAND, None, eb.now());
    holder.message = Some(message.to_owned());
    let environments = [environment.to_owned()];
    // Kept: released by `lock release`, not when this command ends.
    let _held = lock::acquire(ctx, eb, store, &environments, &holder, None).await?;
    ctx.ui.success(format_args!(
        "{environment} is locked by hand: deploys, rollbacks, env create and terminate refuse \
         until `cargo xtask lock release {environment}`"
    ));
    Ok(())
}
