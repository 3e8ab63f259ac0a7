//! `cargo xtask env terminate ENV`: terminate an environment and wait until it is gone. It
//! asks first on a terminal (`--yes` otherwise), refuses an environment deployed from a
//! production branch or the live side of a blue/green pair unless `--force`, and keeps the
//! application versions.

use std::io::IsTerminal;

use anyhow::bail;

use crate::aws::DEFAULT_DEADLINE;
use crate::config::settings::Settings;
use crate::eb::ledger::{self, Job};
use crate::eb::terminate::Termination;
use crate::eb::update::DEFAULT_TIMEOUT;
use crate::eb::{Eb, environments, pair};
use crate::flags;
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::EnvTerminate) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    let target = settings.target(Some(&flags.env), || Ok(None))?;
    let environment = target.name.as_str();
    if let Some(branch) = settings.production_branch(&target)
        && !flags.force
    {
        bail!(
            "{environment} is deployed from {branch}, a production branch (`production_branches` \
             in [workspace.metadata.deploy]): pass --force to terminate it anyway"
        );
    }
    if !flags.yes && !std::io::stdin().is_terminal() {
        bail!(
            "terminating {environment} needs a confirmation, and there is no terminal to ask on: \
             pass --yes"
        );
    }
    // What runs there, shown before the question; the command's deadline starts once the
    // question is answered and the deploy lock is held: a person's thinking (or another
    // run's deploy) is not Elastic Beanstalk's time.
    let (aws, lookup) = Eb::connect(&ctx.env, settings.aws(), &application, DEFAULT_DEADLINE)?;
    let env = aws.block_on(environments::describe(ctx, &lookup, environment))?;
    if let Some(pair) = settings.pair_of(environment)
        && pair::holds(&env, &pair.cname)
        && !flags.force
    {
        bail!(
            "{environment} is the live side of blue/green pair {} (it holds {}): swap first \
             (`cargo xtask swap {}`), or pass --force to take the public URL down",
            pair.key,
            pair.cname,
            pair.key
        );
    }
    if !flags.yes {
        let or_dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
        ctx.ui.warn(format_args!(
            "{environment} of {application} runs {}, {}, at {}: terminating it removes its \
             instances, everything Elastic Beanstalk made for it, and its URL (its \
             application versions stay)",
            or_dash(env.version_label()),
            or_dash(env.status().map(|s| s.as_str())),
            or_dash(env.cname()),
        ));
        let answer =
            ctx.ui.ask(format_args!("Type {environment} to terminate it:"), &ctx.interrupt)?;
        if answer != environment {
            bail!(
                "not confirmed ({answer:?} is not {environment}): {environment} is left as it is"
            );
        }
    }
    let timeout = flags.timeout.map_or(DEFAULT_TIMEOUT, std::time::Duration::from_secs);
    let job = Job {
        command: "env terminate",
        environments: vec![environment.to_owned()],
        version: env.version_label().map(str::to_owned),
        commit: None,
        lock_wait: flags.lock.lock_wait,
        timeout,
        no_wait: flags.no_wait,
        logs: false,
        bucket: settings.bucket.clone(),
    };
    ledger::guarded(ctx, &aws, &lookup, &job, |eb| {
        let termination = Termination { environment, no_wait: flags.no_wait };
        aws.block_on(termination.run(ctx, eb))
    })
}
