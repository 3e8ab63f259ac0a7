//! `cargo xtask status [ENV] [--json]`: what runs where. With ENV: version, status,
//! health (with enhanced health's causes when the environment has it), URL and the last
//! events. Without: every environment of the application and every one the settings name
//! (those not created yet say so), one line each. With a blue/green pair: which side is
//! live, each one's version and health, and their last deploys.
//!
//! Events are kept six weeks and some echo option values ("Invalid option value: '…'"):
//! the values of the options template's secret entries that this environment sets are
//! masked, as `deploy` masks them.

use crate::aws::DEFAULT_DEADLINE;
use crate::config::settings::Settings;
use crate::eb::environments::{self, Status};
use crate::eb::ledger::{self, history};
use crate::eb::{Eb, pair};
use crate::flags;
use crate::run::Context;
use crate::run::ui::Ui;

pub fn run(ctx: &Context, flags: &flags::Status) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?;
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), application, DEFAULT_DEADLINE)?;
    let ui = &ctx.ui;
    aws.block_on(async {
        match &flags.env {
            Some(arg) if settings.pair(arg).is_some() => {
                let pair = settings.require_pair(arg)?;
                for target in &pair.environments {
                    super::hide_secrets(ctx, target);
                }
                let sides = pair::sides(ctx, &eb, &pair).await?;
                let live = environments::one(ctx, &eb, sides.live_name(), flags.events).await?;
                let idle = environments::one(ctx, &eb, sides.idle_name(), flags.events).await?;
                if flags.json {
                    let json = serde_json::json!({
                        "pair": pair.key, "cname": pair.cname, "live": live, "idle": idle,
                    });
                    ui.out(serde_json::to_string_pretty(&json)?);
                    return Ok(());
                }
                ui.out(format_args!(
                    "{application} / {} (blue/green, public CNAME {})",
                    pair.key, pair.cname
                ));
                ui.out(format_args!("  {}", pair::line("live", &sides.live)));
                ui.out(format_args!("  {}", pair::line("idle", &sides.idle)));
                for status in [&live, &idle] {
                    for cause in &status.causes {
                        ui.out(format_args!("  {}: {cause}", status.environment));
                    }
                }
                for (role, name) in [("live", sides.live_name()), ("idle", sides.idle_name())] {
                    ui.out(format_args!("{name} ({role})"));
                    print_history(ctx, &eb, settings.bucket.as_deref(), name).await;
                }
            }
            Some(arg) => {
                let target = settings.target(Some(arg), || Ok(None))?;
                super::hide_secrets(ctx, &target);
                let status = environments::one(ctx, &eb, &target.name, flags.events).await?;
                if flags.json {
                    ui.out(serde_json::to_string_pretty(&status)?);
                } else {
                    print_one(ui, &status);
                    print_history(ctx, &eb, settings.bucket.as_deref(), &target.name).await;
                }
            }
            None => {
                let mut all = environments::all(ctx, &eb).await?;
                let mut missing = Vec::new();
                for target in settings.mapped() {
                    if !all.iter().any(|s| s.environment == target.name) {
                        all.push(Status::missing(application, &target.name));
                        missing.push(target.deploy_env().to_owned());
                    }
                }
                if flags.json {
                    ui.out(serde_json::to_string_pretty(&all)?);
                } else {
                    print_all(ui, application, &all, &missing);
                }
            }
        }
        anyhow::Ok(())
    })
}

fn or_dash(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

fn print_one(ui: &Ui, status: &Status) {
    ui.out(format_args!("{} / {}", status.application, status.environment));
    ui.out(format_args!("  version  {}", or_dash(&status.version)));
    ui.out(format_args!("  status   {}", or_dash(&status.status)));
    let detail = status.health_status.as_ref().map(|h| format!(" ({h})")).unwrap_or_default();
    ui.out(format_args!("  health   {}{detail}", or_dash(&status.health)));
    for cause in &status.causes {
        ui.out(format_args!("           {cause}"));
    }
    ui.out(format_args!("  url      {}", or_dash(&status.url)));
    ui.out(format_args!("  updated  {}", or_dash(&status.updated)));
    if !status.events.is_empty() {
        ui.out("  last events, newest first:");
        for event in &status.events {
            ui.out(format_args!("    {}  {:<5}  {}", event.date, event.severity, event.message));
        }
    }
}

/// The last three records of the environment's deploy history; one line when it cannot be
/// read (the status above stands).
async fn print_history(ctx: &Context, eb: &Eb, bucket: Option<&str>, environment: &str) {
    let read = async {
        let store = ledger::store(ctx, eb, bucket).await?;
        history::read(ctx, eb, &store, environment).await
    };
    match read.await {
        Ok(records) if records.is_empty() => ctx.ui.out("  history  none yet"),
        Ok(records) => {
            ctx.ui.out(format_args!(
                "  last deploys, newest first (`cargo xtask history {environment}` for more):"
            ));
            for line in history::table(records.iter().rev().take(3)) {
                ctx.ui.out(format_args!("    {line}"));
            }
        }
        Err(err) => ctx.ui.out(format_args!("  history  cannot be read: {err:#}")),
    }
}

/// `missing`: how the environments that do not exist are named in the settings, in order.
fn print_all(ui: &Ui, application: &str, all: &[Status], missing: &[String]) {
    if all.is_empty() {
        ui.out(format_args!("{application} has no environments"));
        return;
    }
    let width = all.iter().map(|s| s.environment.len()).max().unwrap_or(0);
    let mut missing = missing.iter();
    for status in all {
        if status.status.is_none() {
            let name = missing.next().unwrap_or(&status.environment);
            ui.out(format_args!(
                "{:<width$}  not created: `cargo xtask env create {name}`",
                status.environment
            ));
            continue;
        }
        ui.out(format_args!(
            "{:<width$}  {:<11}  {:<6}  {:<24}  {}",
            status.environment,
            or_dash(&status.status),
            or_dash(&status.health),
            or_dash(&status.version),
            or_dash(&status.url),
        ));
    }
}
