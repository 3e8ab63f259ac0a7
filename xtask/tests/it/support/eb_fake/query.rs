//! Reading the Query protocol's form (lists as `Name.member.N`, option settings, paging)
//! and writing the shapes several answers share (an environment, a version), with the
//! service's timestamps.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_elasticbeanstalk::primitives::{DateTime, DateTimeFormat};

use super::Config;
use super::state::{Environment, Version};
use super::xml::Xml;

pub type Form = BTreeMap<String, String>;

/// The account of every ARN the fake makes.
pub const ACCOUNT: &str = "123456789012";

/// `Prefix.member.N` values in order (the Query protocol's lists).
pub fn members(form: &Form, prefix: &str) -> Vec<String> {
    (1..).map_while(|n| form.get(&format!("{prefix}.member.{n}")).cloned()).collect()
}

/// The `OptionSettings` of a request: (namespace, name, value).
pub fn option_settings(form: &Form) -> Vec<(String, String, String)> {
    (1..)
        .map_while(|n| {
            let field = |f: &str| form.get(&format!("OptionSettings.member.{n}.{f}")).cloned();
            Some((field("Namespace")?, field("OptionName")?, field("Value").unwrap_or_default()))
        })
        .collect()
}

/// One page of `items` as the Query APIs page: `MaxRecords` (else `size`) from `NextToken`
/// (an offset here). Returns the page and the `NextToken` when more remain.
pub fn page<'a, T>(form: &Form, items: &'a [T], size: usize) -> (&'a [T], Option<String>) {
    let size = form.get("MaxRecords").and_then(|m| m.parse().ok()).unwrap_or(size).max(1);
    let from: usize = form.get("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let from = from.min(items.len());
    let to = (from + size).min(items.len());
    let next = (to < items.len()).then(|| to.to_string());
    (&items[from..to], next)
}

/// `2026-11-29T00:12:33.120Z`: the service's timestamps carry three digits of milliseconds.
pub fn iso8601(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = DateTime::from_secs(since.as_secs() as i64).fmt(DateTimeFormat::DateTime);
    let whole = whole.unwrap_or_default();
    format!("{}.{:03}Z", whole.trim_end_matches('Z'), since.subsec_millis())
}

/// The HTTP `Date` header's form: `Mon, 07 Dec 2026 05:17:22 GMT`.
pub fn http_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    DateTime::from_secs(secs).fmt(DateTimeFormat::HttpDate).unwrap_or_default()
}

pub fn parse_time(text: &str) -> Option<SystemTime> {
    let time = DateTime::from_str(text, DateTimeFormat::DateTime).ok()?;
    SystemTime::try_from(time).ok()
}

/// Enhanced health's word for a colour.
pub fn health_status(health: &str) -> &'static str {
    match health {
        "Green" => "Ok",
        "Yellow" => "Warning",
        "Red" => "Severe",
        _ => "No Data",
    }
}

/// The platform's solution stack name, as DescribeEnvironments gives it beside the ARN.
pub fn solution_stack(platform: &str) -> String {
    let version = platform.rsplit('/').next().unwrap_or("4.10.0");
    format!("64bit Amazon Linux 2023 v{version} running Docker")
}

/// An `EnvironmentDescription`. What the EB CLI needs of one (`eb status`, `eb deploy`):
/// `PlatformArn`, `SolutionStackName`, `Tier`, and `EnvironmentArn` in AWS's form.
pub fn environment(xml: &mut Xml, config: &Config, env: &Environment) {
    // A launching environment may have no CNAME yet (aws-cli #1891; the EB CLI then
    // prints "CNAME: UNKNOWN"). The CNAME is `PREFIX.REGION.elasticbeanstalk.com` (the API
    // reference); the endpoint is its load balancer's, here the fake's on loopback.
    let launched = env.status != "Launching";
    let cname =
        launched.then(|| format!("{}.{}.elasticbeanstalk.com", env.cname_prefix, config.region));
    let endpoint = launched.then(|| format!("127.0.0.1:{}", env.port));
    let arn = format!(
        "arn:aws:elasticbeanstalk:{}:{ACCOUNT}:environment/{}/{}",
        config.region, env.application, env.name
    );
    xml.el("EnvironmentName", &env.name)
        .el("EnvironmentId", &env.id)
        .el("ApplicationName", &env.application)
        .opt("VersionLabel", env.label.as_deref())
        .el("SolutionStackName", &solution_stack(&env.platform))
        .el("PlatformArn", &env.platform)
        .opt("EndpointURL", endpoint.as_deref())
        .opt("CNAME", cname.as_deref())
        .el("DateCreated", &iso8601(env.created))
        .el("DateUpdated", &iso8601(env.updated))
        .el("Status", &env.status)
        .el("AbortableOperationInProgress", "false")
        .el("Health", &env.health)
        // Enhanced health's word comes with enhanced health only (the API reference).
        .opt("HealthStatus", env.enhanced.then(|| health_status(&env.health)))
        .node("Tier", |xml| {
            xml.el("Name", "WebServer").el("Type", "Standard").el("Version", "1.0");
        })
        .el("EnvironmentArn", &arn);
}

/// An `ApplicationVersionDescription`.
pub fn version(xml: &mut Xml, application: &str, label: &str, version: &Version) {
    xml.el("ApplicationName", application).el("VersionLabel", label);
    if let Some(description) = &version.description {
        xml.el("Description", description);
    }
    xml.node("SourceBundle", |xml| {
        xml.el("S3Bucket", &version.bucket).el("S3Key", &version.key);
    })
    .el("DateCreated", &iso8601(version.created))
    .el("DateUpdated", &iso8601(version.created))
    .el("Status", "Unprocessed");
}

#[test]
fn times_round_trip_and_pages_slice() {
    let now = SystemTime::now();
    let back = parse_time(&iso8601(now)).unwrap();
    let diff = now.duration_since(back).unwrap_or_else(|e| e.duration());
    assert!(diff < Duration::from_millis(2), "{}", iso8601(now));
    assert!(iso8601(UNIX_EPOCH).starts_with("1970-01-01T00:00:00"));
    assert_eq!(
        http_date(UNIX_EPOCH + Duration::from_secs(1_000_000)),
        "Mon, 12 Jan 1970 13:46:40 GMT"
    );
    let form: Form = [("NextToken".to_owned(), "2".to_owned())].into();
    assert_eq!(page(&form, &[1, 2, 3, 4, 5], 2), (&[3, 4][..], Some("4".to_owned())));
    assert_eq!(page(&Form::new(), &[1], 2), (&[1][..], None));
}
