//! `cargo xtask status [ENV] [--json]`: what runs where. With ENV: version, status,
//! health (with enhanced health's causes when the environment has it), URL and the last
//! events. Without: every environment of the application and every one the settings name
//! (those not created yet say so), one line each.

use crate::aws::{Aws, DEFAULT_DEADLINE, Deadline};
use crate::config::settings::Settings;
use crate::eb::environments::{self, Status};
use crate::{Context, flags};

pub fn run(ctx: &Context, flags: &flags::Status) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    let aws = Aws::connect(&ctx.env, settings.aws())?;
    aws.block_on(async {
        let clients = &aws.clients;
        let deadline = Deadline::after(DEFAULT_DEADLINE);
        match &flags.env {
            Some(arg) => {
                let target = settings.target(Some(arg), || Ok(None))?;
                let status = environments::one(
                    ctx,
                    clients,
                    &application,
                    &target.name,
                    flags.events,
                    deadline,
                )
                .await?;
                if flags.json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print_one(&status);
                }
            }
            None => {
                let mut all = environments::all(ctx, clients, &application, deadline).await?;
                let mut missing = Vec::new();
                for target in settings.mapped() {
                    if !all.iter().any(|s| s.environment == target.name) {
                        all.push(Status::missing(&application, &target.name));
                        missing.push(target.deploy_env().to_owned());
                    }
                }
                if flags.json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    print_all(&application, &all, &missing);
                }
            }
        }
        anyhow::Ok(())
    })
}

fn or_dash(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

fn print_one(status: &Status) {
    println!("{} / {}", status.application, status.environment);
    println!("  version  {}", or_dash(&status.version));
    println!("  status   {}", or_dash(&status.status));
    let detail = status.health_status.as_ref().map(|h| format!(" ({h})")).unwrap_or_default();
    println!("  health   {}{detail}", or_dash(&status.health));
    for cause in &status.causes {
        println!("           {cause}");
    }
    println!("  url      {}", or_dash(&status.url));
    println!("  updated  {}", or_dash(&status.updated));
    if !status.events.is_empty() {
        println!("  last events, newest first:");
        for event in &status.events {
            println!("    {}  {:<5}  {}", event.date, event.severity, event.message);
        }
    }
}

/// `missing`: how the environments that do not exist are named in the settings, in order.
fn print_all(application: &str, all: &[Status], missing: &[String]) {
    if all.is_empty() {
        println!("{application} has no environments");
        return;
    }
    let width = all.iter().map(|s| s.environment.len()).max().unwrap_or(0);
    let mut missing = missing.iter();
    for status in all {
        if status.status.is_none() {
            let name = missing.next().unwrap_or(&status.environment);
            println!(
                "{:<width$}  not created: `cargo xtask env create {name}`",
                status.environment
            );
            continue;
        }
        println!(
            "{:<width$}  {:<11}  {:<6}  {:<24}  {}",
            status.environment,
            or_dash(&status.status),
            or_dash(&status.health),
            or_dash(&status.version),
            or_dash(&status.url),
        );
    }
}
