//! What the unit tests of the `eb` modules share: a context, and Elastic Beanstalk answers
//! for `aws-smithy-mocks`.

use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::operation::describe_environments::DescribeEnvironmentsOutput;
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::{
    EnvironmentDescription, EnvironmentHealth, EnvironmentStatus, EventDescription, EventSeverity,
};

use crate::aws::Clients;
use crate::eb::Eb;
use crate::run::Context;

pub fn ctx() -> Context {
    Context {
        root: ".".into(),
        env: crate::run::Env::default(),
        ui: crate::run::ui::Ui::new(false, true),
        interrupt: Default::default(),
    }
}

pub fn environment(status: &str, health: &str, label: &str) -> DescribeEnvironmentsOutput {
    let env = EnvironmentDescription::builder()
        .environment_name("acme-web-stg")
        .status(EnvironmentStatus::from(status))
        .health(EnvironmentHealth::from(health))
        .version_label(label)
        .date_updated(DateTime::from_secs(2_000))
        .build();
    DescribeEnvironmentsOutput::builder().environments(env).build()
}

pub fn event_at(
    millis: i64,
    severity: EventSeverity,
    message: &str,
    request: Option<&str>,
) -> EventDescription {
    EventDescription::builder()
        .event_date(DateTime::from_millis(millis))
        .severity(severity)
        .message(message)
        .set_request_id(request.map(str::to_owned))
        .build()
}

/// A handle on a mocked client, whose deadline is `timeout` from now.
pub fn eb(client: Client, timeout: std::time::Duration) -> Eb {
    Eb::new(&Clients::for_tests(client), "acme-web", timeout)
}
