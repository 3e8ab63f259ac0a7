//! A new environment: its name free in the region and its CNAME prefix available, its
//! platform (the newest Docker on Amazon Linux 2023, or the pinned one), its application
//! (created when missing), the IAM roles it needs (checked, never created: IAM is not
//! ours), then one CreateEnvironment (never resent blindly: `operation`) with the first
//! version and the option settings, followed like an update until it runs healthy.
//!
//! From AWS's documentation and the EB CLI: CreateEnvironment succeeds even when the
//! instance profile does not exist; the launch fails minutes later ("The instance profile …
//! associated with the environment does not exist.", "Failed to launch environment.") and
//! the environment ends Terminated. Hence the check before anything is created.

use std::cmp::Reverse;

use aws_sdk_elasticbeanstalk::types::{ConfigurationOptionSetting, PlatformFilter};

use crate::aws::{AwsError, Service};
use crate::eb::follow::{self, Followed};
use crate::eb::operation::{self, Kind};
use crate::eb::outcome::{self, Outcome};
use crate::eb::update::WaitOptions;
use crate::eb::wait::Pace;
use crate::eb::{Eb, environments};
use crate::run::Context;

/// The platform branch `env create` picks its newest version from.
pub const DOCKER_BRANCH: &str = "Docker running on 64bit Amazon Linux 2023";

/// The newest Docker on Amazon Linux 2023 that is Ready: its ARN. Among the versions of the
/// branch, the highest marked recommended, else the highest (as the EB CLI picks).
pub async fn newest_platform(ctx: &Context, eb: &Eb) -> anyhow::Result<String> {
    let filter = |kind: &str, value: &str| {
        PlatformFilter::builder().r#type(kind).operator("=").values(value).build()
    };
    let doing = format!("list the platform versions of {DOCKER_BRANCH}");
    let pages = eb
        .pages(ctx, &doing, |token| {
            eb.client()
                .list_platform_versions()
                .filters(filter("PlatformBranchName", DOCKER_BRANCH))
                .filters(filter("PlatformStatus", "Ready"))
                .set_next_token(token)
                .send()
        })
        .await?;
    let mut found = Vec::new();
    for summary in pages.iter().flat_map(|page| page.platform_summary_list()) {
        let Some(arn) = summary.platform_arn() else { continue };
        let version = summary.platform_version().or_else(|| arn.rsplit('/').next());
        let recommended = summary
            .platform_lifecycle_state()
            .is_some_and(|s| s.eq_ignore_ascii_case("recommended"));
        found.push((recommended, numbers(version.unwrap_or_default()), arn.to_owned()));
    }
    found
        .sort_by_key(|(recommended, version, _)| (Reverse(*recommended), Reverse(version.clone())));
    match found.into_iter().next() {
        Some((_, _, arn)) => Ok(arn),
        None => anyhow::bail!(
            "no platform version of \"{DOCKER_BRANCH}\" is available in {}: pin one with \
             `platform` in [workspace.metadata.deploy] (a platform ARN; `aws elasticbeanstalk \
             list-platform-versions` lists them)",
            eb.region()
        ),
    }
}

/// `4.10.2` as numbers, so that 4.10 comes after 4.9.
fn numbers(version: &str) -> Vec<u64> {
    version.split('.').map(|part| part.parse().unwrap_or(0)).collect()
}

/// Whether the application exists.
pub async fn application_exists(ctx: &Context, eb: &Eb) -> anyhow::Result<bool> {
    let application = eb.application.as_str();
    let doing = format!("describe application {application}");
    let answer = eb
        .call(ctx, &doing, || {
            eb.client().describe_applications().application_names(application).send()
        })
        .await?;
    Ok(answer.applications().iter().any(|a| a.application_name() == Some(application)))
}

/// Creates the application. Sent again after a lost answer, it is refused as existing:
/// what we wanted.
pub async fn create_application(ctx: &Context, eb: &Eb) -> anyhow::Result<()> {
    let application = eb.application.as_str();
    let doing = format!("create application {application}");
    let created = eb
        .call(ctx, &doing, || {
            eb.client()
                .create_application()
                .application_name(application)
                .description("created by cargo xtask env create")
                .send()
        })
        .await;
    match created {
        Ok(_) => {
            ctx.ui.info(format_args!("application {application} created"));
            Ok(())
        }
        // Created meanwhile by someone else: what we wanted.
        Err(err) if aws_message(&err).is_some_and(|m| m.ends_with("already exists.")) => Ok(()),
        Err(err) => Err(err),
    }
}

fn aws_message(err: &anyhow::Error) -> Option<&str> {
    err.downcast_ref::<AwsError>().and_then(|e| e.message.as_deref())
}

/// The roles a new environment names, by name (an ARN's last part).
pub struct Roles<'a> {
    pub instance_profile: &'a str,
    pub service_role: &'a str,
}

/// Checks that the instance profile and the service role exist (`iam:GetInstanceProfile`,
/// `iam:GetRole`); a missing one is an error that says what to create. Identities that may
/// not read IAM get a warning, and the roles are assumed to exist (as the EB CLI does).
pub async fn check_roles(ctx: &Context, eb: &Eb, roles: &Roles<'_>) -> anyhow::Result<()> {
    let profile = last_part(roles.instance_profile);
    let doing = format!("look up instance profile {profile}");
    let found = eb
        .call_other(ctx, Service::Iam, &doing, || {
            eb.iam().get_instance_profile().instance_profile_name(profile).send()
        })
        .await;
    let profile_found = match found {
        Ok(answer) => Some(!answer.instance_profile().is_none_or(|p| p.roles().is_empty())),
        Err(err) => unknown_or_missing(
            ctx,
            err,
            &doing,
            "create it with a role that has AWS's managed policy AWSElasticBeanstalkWebTier (the \
             EB console makes aws-elasticbeanstalk-ec2-role so), or name an existing one with \
             `instance_profile` in [workspace.metadata.deploy]",
        )?,
    };
    if profile_found == Some(false) {
        anyhow::bail!(
            "instance profile {profile} has no role: add one (`aws iam \
             add-role-to-instance-profile --instance-profile-name {profile} --role-name …`) \
             with AWS's managed policy AWSElasticBeanstalkWebTier (and \
             AmazonEC2ContainerRegistryReadOnly for ECR), then run this again"
        );
    }
    let role = last_part(roles.service_role);
    let doing = format!("look up service role {role}");
    let found = eb
        .call_other(ctx, Service::Iam, &doing, || eb.iam().get_role().role_name(role).send())
        .await;
    let role_found = match found {
        Ok(_) => Some(true),
        Err(err) => unknown_or_missing(
            ctx,
            err,
            &doing,
            "create it, trusting elasticbeanstalk.amazonaws.com, with AWS's managed policies \
             AWSElasticBeanstalkEnhancedHealth and AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy \
             (the EB console makes aws-elasticbeanstalk-service-role so), or name an existing one \
             with `service_role` in [workspace.metadata.deploy]",
        )?,
    };
    if profile_found.is_some() && role_found.is_some() {
        ctx.ui.info(format_args!(
            "instance profile {profile} (with a role) and service role {role} exist"
        ));
    }
    Ok(())
}

/// A failed IAM lookup: `Ok(None)` when IAM may not be read (a warning), an error that says
/// what to create (`how`) when the thing does not exist, else the error.
fn unknown_or_missing(
    ctx: &Context,
    err: anyhow::Error,
    doing: &str,
    how: &str,
) -> anyhow::Result<Option<bool>> {
    let code = err.downcast_ref::<AwsError>().and_then(|e| e.code.clone());
    match code.as_deref() {
        Some("AccessDenied" | "AccessDeniedException") => {
            ctx.ui.warn(format_args!(
                "cannot {doing} (no permission to read IAM): assuming it exists"
            ));
            Ok(None)
        }
        Some("NoSuchEntity") => {
            let what = doing.trim_start_matches("look up ");
            anyhow::bail!("{what} does not exist: {how} (this tool creates no IAM roles)")
        }
        _ => Err(err),
    }
}

/// A name, from a name, a path or an ARN.
fn last_part(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Checks, before anything is built, that `environment` can be created: its name is free
/// in the whole region (names are unique per account and region, across applications:
/// the CreateEnvironment reference) and its CNAME prefix is available
/// (`CheckDNSAvailability`). `exists` is the error when it exists in our application.
pub async fn check_name(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
    cname_prefix: &str,
    exists: impl FnOnce() -> anyhow::Error,
) -> anyhow::Result<()> {
    if let Some(env) = environments::find_in_region(ctx, eb, environment).await? {
        let theirs = env.application_name().unwrap_or("another application");
        if theirs == eb.application {
            return Err(exists());
        }
        anyhow::bail!(
            "environment name {environment} is taken in {} by application {theirs} (names are \
             unique per region, whatever the application): pick another `name` for it in \
             [workspace.metadata.deploy.environments]",
            eb.region()
        );
    }
    let doing = format!("check that the CNAME prefix {cname_prefix} is available");
    let answer = eb
        .call(ctx, &doing, || {
            eb.client().check_dns_availability().cname_prefix(cname_prefix).send()
        })
        .await?;
    if answer.available() == Some(false) {
        anyhow::bail!(
            "the CNAME prefix {cname_prefix} is taken in {} (another account or environment \
             uses {cname_prefix}.{}.elasticbeanstalk.com): set another with `cname = \"…\"` in \
             the environment's entry of [workspace.metadata.deploy.environments]",
            eb.region(),
            eb.region()
        );
    }
    Ok(())
}

/// One CreateEnvironment, followed until the environment runs the version healthy.
pub struct Creation<'a> {
    pub environment: &'a str,
    pub cname_prefix: &'a str,
    pub label: &'a str,
    pub platform: &'a str,
    pub options: Vec<ConfigurationOptionSetting>,
    pub wait: WaitOptions,
}

/// The launches of a blue/green pair (or one), together, concluded as a deploy to several
/// environments is (`outcome::conclude`: a summary, the worst exit status); each
/// environment's own status goes to the journal.
pub async fn run_all(ctx: &Context, eb: &Eb, creations: Vec<Creation<'_>>) -> anyhow::Result<()> {
    let names: Vec<&str> = creations.iter().map(|c| c.environment).collect();
    let several = names.len() > 1;
    let results =
        futures_util::future::join_all(creations.into_iter().map(|c| c.run(ctx, eb))).await;
    let mut outcomes = Vec::new();
    for (name, result) in names.into_iter().zip(results) {
        eb.journal().ended(name, result.as_ref().map_or_else(crate::run::exit::code, |()| 0));
        outcomes.push(Outcome::new(name, result));
    }
    // Each launch said its own `ok:` line; alone, nothing is added.
    outcome::conclude(ctx, "creation", outcomes, |_| several.then(|| "created".to_owned()))
}

impl Creation<'_> {
    pub async fn run(self, ctx: &Context, eb: &Eb) -> anyhow::Result<()> {
        let (environment, label) = (self.environment, self.label);
        ctx.ui.step(format_args!("create environment {environment} with {label}"));
        let doing = format!("create environment {environment}");
        let started = operation::start(ctx, eb, Kind::Create, environment, || {
            eb.call_once(ctx, &doing, || {
                eb.client_once()
                    .create_environment()
                    .application_name(&eb.application)
                    .environment_name(environment)
                    .cname_prefix(self.cname_prefix)
                    .version_label(label)
                    .platform_arn(self.platform)
                    .set_option_settings(Some(self.options.clone()))
                    .description("created by cargo xtask env create")
                    .send()
            })
        })
        .await?;
        ctx.ui.info(format_args!(
            "{environment}: creation accepted (request {}): {}",
            started.request_id.as_deref().unwrap_or("-"),
            started.status.as_deref().unwrap_or("Launching")
        ));
        if self.wait.no_wait {
            ctx.ui.success(format_args!(
                "{environment} is launching; follow it with `cargo xtask status {environment}`"
            ));
            return Ok(());
        }
        let judge = self.wait.judge(label, &started);
        let mut followed = [Followed::new(environment, started.environment_id.clone(), judge)];
        let pace = Pace::default();
        follow::until_done(ctx, eb, "the launch", started.events_from, &mut followed, pace)
            .await
            .map_err(|err| outcome::explain(err, "the launch", &[environment]))?;
        let [followed] = followed;
        let health = if self.wait.allow_yellow { "acceptable" } else { "Green" };
        outcome::conclude(ctx, "creation", vec![Outcome::of(followed)], |o| {
            let url = o.url.as_ref().map(|u| format!(": {u}")).unwrap_or_default();
            Some(format!("created: runs {label}, health {health}{url}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers_and_names_come_from_arns() {
        assert!(numbers("4.10.0") > numbers("4.9.3"));
        assert_eq!(
            last_part("arn:aws:iam::123456789012:role/aws-elasticbeanstalk-service-role"),
            "aws-elasticbeanstalk-service-role"
        );
        assert_eq!(last_part("aws-elasticbeanstalk-ec2-role"), "aws-elasticbeanstalk-ec2-role");
    }
}
