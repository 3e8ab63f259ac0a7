//! `cargo xtask status [ENV] [--json]`: what runs where. With ENV: version, status,
//! health (with enhanced health's causes when the environment has it), URL and the last
//! events. Without: every environment of the application, one line each.

use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;
use serde::Serialize;

use crate::aws::{self, Clients, DEFAULT_DEADLINE, Deadline, Service};
use crate::settings::Settings;
use crate::wait::{self, Event, utc};
use crate::{Context, flags};

/// The `--json` document of one environment. Field names and order are stable.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub application: String,
    pub environment: String,
    pub version: Option<String>,
    pub status: Option<String>,
    pub health: Option<String>,
    pub health_status: Option<String>,
    pub causes: Vec<String>,
    pub url: Option<String>,
    pub updated: Option<String>,
    pub events: Vec<Event>,
}

pub fn run(ctx: &Context, flags: &flags::Status) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    aws::runtime()?.block_on(async {
        let clients = Clients::new(&settings, &ctx.env).await?;
        let deadline = Deadline::after(DEFAULT_DEADLINE);
        match &flags.env {
            Some(arg) => {
                let target = settings.target(Some(arg), || Ok(None))?;
                let status =
                    one(ctx, &clients, &application, &target.name, flags.events, deadline).await?;
                if flags.json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print_one(&status);
                }
            }
            None => {
                let all = all(ctx, &clients, &application, deadline).await?;
                if flags.json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    print_all(&application, &all);
                }
            }
        }
        anyhow::Ok(())
    })
}

fn summary(application: &str, env: &EnvironmentDescription) -> Status {
    Status {
        application: application.to_owned(),
        environment: env.environment_name().unwrap_or_default().to_owned(),
        version: env.version_label().map(str::to_owned),
        status: env.status().map(|s| s.as_str().to_owned()),
        health: env.health().map(|h| h.as_str().to_owned()),
        health_status: env.health_status().map(|h| h.as_str().to_owned()),
        causes: Vec::new(),
        url: env.cname().map(|c| format!("http://{c}/")),
        updated: env.date_updated().map(utc),
        events: Vec::new(),
    }
}

/// Every environment of the application (terminated ones left out).
pub async fn all(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    deadline: Deadline,
) -> anyhow::Result<Vec<Status>> {
    let doing = format!("describe the environments of {application}");
    let described = clients
        .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
            clients.eb.describe_environments().application_name(application).send()
        })
        .await?;
    Ok(described
        .environments()
        .iter()
        .filter(|e| e.status().is_none_or(|s| s.as_str() != "Terminated"))
        .map(|e| summary(application, e))
        .collect())
}

/// One environment in full: its summary, enhanced health causes, and last `events`.
pub async fn one(
    ctx: &Context,
    clients: &Clients,
    application: &str,
    environment: &str,
    events: i32,
    deadline: Deadline,
) -> anyhow::Result<Status> {
    let env = wait::describe(ctx, clients, application, environment, deadline).await?;
    let mut status = summary(application, &env);
    status.causes = wait::health_causes(ctx, clients, environment, deadline).await?;
    let listed = wait::latest_events(ctx, clients, application, environment, events, deadline);
    let listed = listed.await?;
    status.events = listed.iter().take(events.max(0) as usize).map(Event::of).collect();
    Ok(status)
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

fn print_all(application: &str, all: &[Status]) {
    if all.is_empty() {
        println!("{application} has no environments");
        return;
    }
    let width = all.iter().map(|s| s.environment.len()).max().unwrap_or(0);
    for status in all {
        println!(
            "{:<width$}  {:<9}  {:<6}  {:<24}  {}",
            status.environment,
            or_dash(&status.status),
            or_dash(&status.health),
            or_dash(&status.version),
            or_dash(&status.url),
        );
    }
}
