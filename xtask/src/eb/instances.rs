//! What each instance runs, and how it is: enhanced health's `DescribeInstancesHealth`
//! (AttributeNames All) gives, per instance, its `Deployment` (version label, status) and
//! its colour and causes, with the time the whole list was refreshed (about every 10 s).
//! That is the truth of a deployment: the environment's own version label and colour can
//! say "done, Green" while its instances kept the old version (EB roadmap #162), and during
//! a deployment the colour is Info's Green whatever the new container does.
//!
//! With basic health (through the API, the default unless
//! `aws:elasticbeanstalk:healthreporting:system SystemType=enhanced` is set) the call is
//! refused ("DescribeInstancesHealth is not supported."): the verdict then rests on the
//! environment alone.

use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::InstancesHealthAttribute;

use crate::aws::AwsError;
use crate::eb::Eb;
use crate::run::Context;

/// What the instances of an environment report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instances {
    /// Basic health: the service does not say.
    Basic,
    Reported(Report),
}

/// One refresh of enhanced health's per-instance report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// When the service refreshed it (its clock).
    pub refreshed_at: Option<DateTime>,
    pub instances: Vec<Instance>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The version label it runs, and its deployment's status: `Deployed`, `In Progress`,
    /// `Failed`.
    pub label: Option<String>,
    pub deployment: Option<String>,
    /// Green, Yellow, Red, Grey.
    pub color: String,
    pub causes: Vec<String>,
}

/// The per-instance report of `environment`, every page of it; [`Instances::Basic`] when
/// the environment has basic health.
pub async fn report(ctx: &Context, eb: &Eb, environment: &str) -> anyhow::Result<Instances> {
    let doing = format!("describe the instances' health of {environment}");
    let pages = eb
        .pages(ctx, &doing, |token| {
            eb.client()
                .describe_instances_health()
                .environment_name(environment)
                .attribute_names(InstancesHealthAttribute::All)
                .set_next_token(token)
                .send()
        })
        .await;
    let pages = match pages {
        Ok(pages) => pages,
        Err(err) if refused_for_basic_health(&err) => return Ok(Instances::Basic),
        Err(err) if denied(&err) => {
            ctx.ui.warn(format_args!(
                "{err:#}: without elasticbeanstalk:DescribeInstancesHealth the verdict on \
                 {environment} rests on basic health"
            ));
            return Ok(Instances::Basic);
        }
        Err(err) => return Err(err),
    };
    let refreshed_at = pages.iter().filter_map(|p| p.refreshed_at()).min().copied();
    let instances = pages
        .iter()
        .flat_map(|page| page.instance_health_list())
        .map(|i| {
            let deployment = i.deployment();
            Instance {
                id: i.instance_id().unwrap_or("an instance").to_owned(),
                label: deployment.and_then(|d| d.version_label()).map(str::to_owned),
                deployment: deployment.and_then(|d| d.status()).map(str::to_owned),
                color: i.color().unwrap_or("Grey").to_owned(),
                causes: i.causes().to_vec(),
            }
        })
        .collect();
    Ok(Instances::Reported(Report { refreshed_at, instances }))
}

/// The identity may not ask.
fn denied(err: &anyhow::Error) -> bool {
    matches!(AwsError::code_of(err), Some("AccessDenied" | "AccessDeniedException"))
}

/// The service's refusal of instance health for an environment with basic health: its
/// words are "DescribeInstancesHealth is not supported." (as users report them, e.g.
/// log-just/t2.autoscaling-beanstalk#1); the code is not documented, the message tells.
fn refused_for_basic_health(err: &anyhow::Error) -> bool {
    err.downcast_ref::<AwsError>()
        .is_some_and(|e| e.message.as_deref().is_some_and(|m| m.contains("is not supported")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eb::testing::{ctx, eb};
    use aws_sdk_elasticbeanstalk::Client;
    use aws_sdk_elasticbeanstalk::error::ErrorMetadata;
    use aws_sdk_elasticbeanstalk::operation::describe_instances_health::DescribeInstancesHealthError;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use std::time::Duration;

    fn refused(code: &str, message: &str) -> DescribeInstancesHealthError {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        DescribeInstancesHealthError::generic(meta)
    }

    #[tokio::test]
    async fn basic_health_and_a_denied_identity_leave_the_verdict_to_the_environment() {
        for (code, message) in [
            ("InvalidRequestException", "DescribeInstancesHealth is not supported."),
            ("AccessDenied", "User: arn:aws:iam::1:user/ci is not authorized"),
        ] {
            let (code, message) = (code.to_owned(), message.to_owned());
            let rule = mock!(Client::describe_instances_health)
                .then_error(move || refused(&code, &message));
            let client = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&rule]);
            let eb = eb(client, Duration::from_secs(5));
            let report = report(&ctx(), &eb, "acme-web-stg").await.unwrap();
            assert_eq!(report, Instances::Basic);
        }
        let rule = mock!(Client::describe_instances_health)
            .then_error(|| refused("InvalidRequestException", "No Environment found"));
        let client = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&rule]);
        let eb = eb(client, Duration::from_secs(5));
        assert!(report(&ctx(), &eb, "nope").await.is_err(), "other refusals are errors");
    }
}
