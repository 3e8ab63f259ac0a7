//! Environments: one looked up by name (an error naming it when it does not exist), every
//! one of an application, their enhanced health's causes, and what `status` shows of them.

use aws_sdk_elasticbeanstalk::types::{EnvironmentDescription, EnvironmentHealthAttribute};
use serde::Serialize;

use crate::Context;
use crate::aws::{AwsError, Clients, Deadline, Service};
use crate::eb::events::{self, Event, utc};

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
    clients: &Clients,
    application: &str,
    environment: &str,
    deadline: Deadline,
) -> anyhow::Result<EnvironmentDescription> {
    match find(ctx, clients, application, environment, deadline).await? {
        Some(env) => Ok(env),
        None => anyhow::bail!(
            "environment {environment} not found in application {application}: check ENV and \
             [workspace.metadata.deploy.environments]"
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
    clients: &Clients,
    application: &str,
    environment: &str,
    deadline: Deadline,
) -> anyhow::Result<Option<EnvironmentDescription>> {
    let doing = format!("describe environment {environment}");
    let answer = clients
        .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
            clients
                .eb
                .describe_environments()
                .application_name(application)
                .environment_names(environment)
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
    clients: &Clients,
    environment: &str,
    deadline: Deadline,
) -> anyhow::Result<Vec<String>> {
    let doing = format!("describe the health of {environment}");
    let answer = clients
        .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
            clients
                .eb
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
        .filter(|e| live(e))
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
    let env = describe(ctx, clients, application, environment, deadline).await?;
    let mut status = summary(application, &env);
    status.causes = health_causes(ctx, clients, environment, deadline).await?;
    let listed = events::latest(ctx, clients, application, environment, events, deadline);
    let listed = listed.await?;
    status.events = listed.iter().take(events.max(0) as usize).map(Event::of).collect();
    Ok(status)
}
