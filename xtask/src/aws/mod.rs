//! The AWS clients, built once from `aws-config`: the standard credential chain (env, SSO
//! and other profiles, web identity for CI's OIDC role, instance metadata), the region and
//! profile from the settings, and the SDK's `AWS_ENDPOINT_URL*` variables (how tests point
//! the real clients at local servers). One HTTPS stack: hyper 1 + rustls with ring.
//!
//! Every call goes through [`Clients::call`]: raced against Ctrl-C (an in-flight call never
//! holds the process), bounded by the command's deadline (an endpoint that accepts and never
//! answers ends the command by `--timeout`), and throttling is waited out with a backoff of
//! our own once the SDK's few retries are spent: Elastic Beanstalk throttles any action, in
//! bursts longer than any retry budget.
//!
//! A call that changes state and carries no client token (UpdateEnvironment,
//! CreateEnvironment, TerminateEnvironment) goes through [`Clients::call_once`] instead: never
//! resent, by the SDK or by us, except after throttling (which means it was not carried
//! out). When its answer is lost (a timeout, a connection cut after the request left), the
//! caller is told so and looks at what the service did before anything is sent again.

mod call;
mod clock;
mod deadline;
mod error;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub use self::call::Once;
pub use self::clock::ServiceClock;
pub use self::deadline::{Deadline, human_duration, time_of_day};
pub use self::error::{AwsError, is_throttling};
use crate::run::Env;

/// Attempts per call inside the SDK (transient errors, timeouts); throttling beyond them is
/// absorbed by `Clients::call`.
const SDK_ATTEMPTS: u32 = 3;
/// One attempt may take this long before the SDK gives up on it and retries (or, for a call
/// that is never resent, reports its answer lost); `XTASK_AWS_ATTEMPT_TIMEOUT` (seconds)
/// changes it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
pub const ATTEMPT_TIMEOUT_VAR: &str = "XTASK_AWS_ATTEMPT_TIMEOUT";
/// All attempts of one call together.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Our own backoff after a throttled call: doubling from the first, up to the last.
const THROTTLE_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(20));
/// The deadline of commands that have no `--timeout`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    ElasticBeanstalk,
    S3,
    Ecr,
    Iam,
    Logs,
}

impl Service {
    /// The SDK's variable for this service's endpoint (`AWS_ENDPOINT_URL_` + its service id).
    fn endpoint_var(self) -> &'static str {
        match self {
            Service::ElasticBeanstalk => "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK",
            Service::S3 => "AWS_ENDPOINT_URL_S3",
            Service::Ecr => "AWS_ENDPOINT_URL_ECR",
            Service::Iam => "AWS_ENDPOINT_URL_IAM",
            Service::Logs => "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::ElasticBeanstalk => "Elastic Beanstalk",
            Service::S3 => "S3",
            Service::Ecr => "ECR",
            Service::Iam => "IAM",
            Service::Logs => "CloudWatch Logs",
        })
    }
}

/// Where the clients point: the settings' region and profile (else the SDK's own chain), and
/// ECR's region when the registry is in another one than Elastic Beanstalk.
#[derive(Clone, Copy, Debug, Default)]
pub struct Setup<'a> {
    pub region: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub ecr_region: Option<&'a str>,
}

#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub eb: aws_sdk_elasticbeanstalk::Client,
    /// Elastic Beanstalk without the SDK's retries: for the calls never resent blindly.
    pub eb_once: aws_sdk_elasticbeanstalk::Client,
    /// Elastic Beanstalk's time, from the `Date` of its answers.
    pub clock: ServiceClock,
    pub ecr: aws_sdk_ecr::Client,
    /// Read only: whether the roles an environment is created with exist.
    pub iam: aws_sdk_iam::Client,
    /// `logs --follow`: the environment's streamed logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub region: String,
    /// Where each service is reached, as a reader would check it: EB, S3, ECR, IAM, Logs.
    endpoints: [String; 5],
}

impl Clients {
    pub async fn new(env: &Env, setup: Setup<'_>) -> anyhow::Result<Clients> {
        let attempt = match env.get(ATTEMPT_TIMEOUT_VAR) {
            None => ATTEMPT_TIMEOUT,
            Some(secs) => match secs.parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => anyhow::bail!(
                    "{ATTEMPT_TIMEOUT_VAR}={secs:?} is not a number of seconds (at least 1): \
                     fix or unset it"
                ),
            },
        };
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(attempt)
            .operation_timeout(OPERATION_TIMEOUT.max(attempt * SDK_ATTEMPTS))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(SDK_ATTEMPTS));
        if let Some(region) = setup.region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        // AWS_PROFILE is the SDK's own; the EB CLI's profile applies only without it.
        if env.get("AWS_PROFILE").is_none()
            && let Some(profile) = setup.profile
        {
            loader = loader.profile_name(profile);
        }
        let config = loader.load().await;
        // Without one of its own, a command that talks to ECR only works in the registry's.
        let region = config.region().map(|r| r.to_string());
        let Some(region) = region.or(setup.ecr_region.map(str::to_owned)) else {
            anyhow::bail!(
                "no AWS region: set `region` in [workspace.metadata.deploy], AWS_REGION, or a \
                 profile's region"
            );
        };
        let ecr_region = setup.ecr_region.unwrap_or(&region).to_owned();
        let custom = |service: Service| {
            env.get(service.endpoint_var()).or(env.get("AWS_ENDPOINT_URL")).map(str::to_owned)
        };
        // A custom S3 endpoint (a local server, an S3-compatible store) is addressed by
        // path: its host name cannot carry the bucket.
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .region(Region::new(region.clone()))
            .force_path_style(custom(Service::S3).is_some())
            .build();
        let clock = ServiceClock::default();
        let eb = aws_sdk_elasticbeanstalk::config::Builder::from(&config)
            .region(Region::new(region.clone()))
            .interceptor(clock.interceptor());
        let eb_once = eb.clone().retry_config(RetryConfig::disabled()).build();
        let eb = eb.build();
        let ecr =
            aws_sdk_ecr::config::Builder::from(&config).region(Region::new(ecr_region.clone()));
        let endpoints = [
            custom(Service::ElasticBeanstalk)
                .unwrap_or_else(|| format!("https://elasticbeanstalk.{region}.amazonaws.com")),
            custom(Service::S3).unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
            custom(Service::Ecr)
                .unwrap_or_else(|| format!("https://api.ecr.{ecr_region}.amazonaws.com")),
            // IAM is global: one endpoint per partition, whatever the region.
            custom(Service::Iam).unwrap_or_else(|| "https://iam.amazonaws.com".to_owned()),
            custom(Service::Logs).unwrap_or_else(|| format!("https://logs.{region}.amazonaws.com")),
        ];
        Ok(Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            eb: aws_sdk_elasticbeanstalk::Client::from_conf(eb),
            eb_once: aws_sdk_elasticbeanstalk::Client::from_conf(eb_once),
            clock,
            ecr: aws_sdk_ecr::Client::from_conf(ecr.build()),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config)
                    .region(Region::new(region.clone()))
                    .build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(&config)
                    .region(Region::new(region.clone()))
                    .build(),
            ),
            region,
            endpoints,
        })
    }

    /// Clients around a mocked Elastic Beanstalk client (`aws-smithy-mocks`).
    #[cfg(test)]
    pub fn for_tests(eb: aws_sdk_elasticbeanstalk::Client) -> Clients {
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let ecr = aws_sdk_ecr::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let iam = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let logs = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            eb_once: eb.clone(),
            eb,
            clock: ServiceClock::default(),
            ecr: aws_sdk_ecr::Client::from_conf(ecr),
            iam: aws_sdk_iam::Client::from_conf(iam),
            region: "us-east-1".to_owned(),
            endpoints: ["mock", "mock", "mock", "mock", "mock"].map(str::to_owned),
        }
    }

    fn endpoint(&self, service: Service) -> &str {
        let [eb, s3, ecr, iam, logs] = &self.endpoints;
        match service {
            Service::ElasticBeanstalk => eb,
            Service::S3 => s3,
            Service::Ecr => ecr,
            Service::Iam => iam,
            Service::Logs => logs,
        }
    }
}

/// What a command that talks to AWS has: one async runtime and the clients, made once and
/// used by every step (the clients' connections live on that runtime).
#[derive(Debug)]
pub struct Aws {
    runtime: tokio::runtime::Runtime,
    pub clients: Clients,
}

impl Aws {
    /// The runtime, then the clients (no call is made: credentials are resolved at the
    /// first call).
    pub fn connect(env: &Env, setup: Setup<'_>) -> anyhow::Result<Aws> {
        use anyhow::Context as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start the async runtime")?;
        let clients = runtime.block_on(Clients::new(env, setup))?;
        Ok(Aws { runtime, clients })
    }

    /// Runs `future` to its end: the steps of a command between its synchronous parts.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// The one HTTPS client of the SDK: hyper 1 + rustls with ring, the system's trust store.
/// Without it the lean feature set has none, and every call would fail at run time.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// `GET url` with the SDK's HTTPS stack (a presigned S3 URL): the status and the body.
/// The URL is a secret to its holder: errors never repeat it.
pub async fn https_get(url: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_smithy_runtime_api::client::http::HttpConnector;
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    let connector = aws_smithy_http_client::Connector::builder()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build();
    let request = HttpRequest::get(url).map_err(|_| anyhow::anyhow!("not a URL"))?;
    let response = connector.call(request).await.map_err(|err| anyhow::anyhow!("{err}"))?;
    let status = response.status().as_u16();
    let body = ByteStream::new(response.into_body()).collect().await?;
    Ok((status, body.into_bytes().to_vec()))
}
