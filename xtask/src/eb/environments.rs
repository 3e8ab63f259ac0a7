//! Environments: one looked up by name (an error naming it when it does not exist), every
//! one of an application, one by name across the region (names are unique per account and
//! region, whatever the application), their enhanced health's causes, and what `status`
//! shows of them.

use aws_sdk_elasticbeanstalk::types::{EnvironmentDescription, EnvironmentHealthAttribute};
use serde::Serialize;

use crate::aws::AwsError;
use crate::eb::Eb;
use crate::eb::events::{self, Event, utc};
use crate::run::Context;

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

/// The environment as Elastic Beanstalk describes it, or an error naming it when it does
/// not exist.
pub async fn describe(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
) -> anyhow::Result<EnvironmentDescription> {
    match find(ctx, eb, environment).await? {
        Some(env) => Ok(env),
        None => anyhow::bail!(
            "environment {environment} not found in application {}: check ENV and \
             [workspace.metadata.deploy.environments]",
            eb.application
        ),
    }
}

/// Not terminated: Elastic Beanstalk lists terminated environments for a while, and their
/// names are free again.
pub fn live(env: &EnvironmentDescription) -> bool {
    env.status().is_none_or(|s| s.as_str() != "Terminated")
}

/// The environment, unless it does not exist (terminated ones do not).
pub async fn find(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
) -> anyhow::Result<Option<EnvironmentDescription>> {
    find_in(ctx, eb, Some(&eb.application), environment).await
}

/// The environment of that name in any application of the region (names are unique per
/// account and region: CreateEnvironment refuses one taken by another application).
pub async fn find_in_region(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
) -> anyhow::Result<Option<EnvironmentDescription>> {
    find_in(ctx, eb, None, environment).await
}

async fn find_in(
    ctx: &Context,
    eb: &Eb,
    application: Option<&str>,
    environment: &str,
) -> anyhow::Result<Option<EnvironmentDescription>> {
    let doing = format!("describe environment {environment}");
    let answer = eb
        .call(ctx, &doing, || {
            eb.client()
                .describe_environments()
                .set_application_name(application.map(str::to_owned))
                .environment_names(environment)
                .include_deleted(false)
                .send()
        })
        .await?;
    let found =
        answer.environments().iter().find(|e| e.environment_name() == Some(environment) && live(e));
    Ok(found.cloned())
}

/// Enhanced health's causes (`DescribeEnvironmentHealth`); none for an environment with
/// basic health, which refuses the call.
pub async fn health_causes(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
) -> anyhow::Result<Vec<String>> {
    let doing = format!("describe the health of {environment}");
    let answer = eb
        .call(ctx, &doing, || {
            eb.client()
                .describe_environment_health()
                .environment_name(environment)
                .attribute_names(EnvironmentHealthAttribute::Causes)
                .attribute_names(EnvironmentHealthAttribute::HealthStatus)
                .send()
        })
        .await;
    match answer {
        Ok(health) => Ok(health.causes().to_vec()),
        Err(err) if err.is::<AwsError>() => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

impl Status {
    /// An environment the settings name that does not exist: every field but the names null.
    pub fn missing(application: &str, environment: &str) -> Status {
        Status {
            application: application.to_owned(),
            environment: environment.to_owned(),
            version: None,
            status: None,
            health: None,
            health_status: None,
            causes: Vec::new(),
            url: None,
            updated: None,
            events: Vec::new(),
        }
    }
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
pub async fn all(ctx: &Context, eb: &Eb) -> anyhow::Result<Vec<Status>> {
    let application = eb.application.as_str();
    let doing = format!("describe the environments of {application}");
    let described = eb
        .call(ctx, &doing, || {
            eb.client().describe_environments().application_name(application).send()
        })
        .await?;
    Ok(described
        .environments()
        .iter()
        .filter(|e| live(e))
        .map(|e| summary(application, e))
        .collect())
}

/// One environment in full: its summary, enhanced health causes, and last `events`.
pub async fn one(ctx: &Context, eb: &Eb, environment: &str, events: i32) -> anyhow::Result<Status> {
    let env = describe(ctx, eb, environment).await?;
    let mut status = summary(&eb.application, &env);
    status.causes = health_causes(ctx, eb, environment).await?;
    let listed = events::latest(ctx, eb, environment, events).await?;
    status.events = listed.iter().take(events.max(0) as usize).map(Event::of).collect();
    Ok(status)
}
