//! The AWS clients, built once from `aws-config`: the standard credential chain (env, SSO
//! and other profiles, web identity for CI's OIDC role, instance metadata), the region and
//! profile from the settings, and the SDK's `AWS_ENDPOINT_URL*` variables (how tests point
//! the real clients at local servers). One HTTPS stack: hyper 1 + rustls with ring.
//!
//! Every call goes through [`Clients::call`]: raced against Ctrl-C (an in-flight call never
//! holds the process), bounded by the step's deadline (an endpoint that accepts and never
//! answers ends the command by `--timeout`), and throttling is waited out with a backoff of
//! our own once the SDK's few retries are spent: Elastic Beanstalk throttles any action, in
//! bursts longer than any retry budget.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_elasticbeanstalk::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::config::settings::Settings;
use crate::run::interrupt::Interrupted;
use crate::{Context, Env, Failure, exit};

/// Attempts per call inside the SDK (transient errors, timeouts); throttling beyond them is
/// absorbed by [`Clients::call`].
const SDK_ATTEMPTS: u32 = 3;
/// One attempt may take this long before the SDK gives up on it and retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
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
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::ElasticBeanstalk => "Elastic Beanstalk",
            Service::S3 => "S3",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub eb: aws_sdk_elasticbeanstalk::Client,
    pub region: String,
    /// Where each service is reached, as a reader would check it.
    eb_endpoint: String,
    s3_endpoint: String,
}

/// When the calls of one step must have answered: `--timeout` from the step's start.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    of: Duration,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline { at: Instant::now() + timeout, of: timeout }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The timeout this deadline was set from.
    pub fn timeout(&self) -> Duration {
        self.of
    }
}

/// A call the service answered with an error: what we were doing, the service's error code
/// (callers that tolerate one match on it), and the one line to show.
#[derive(Debug)]
pub struct AwsError {
    pub doing: String,
    pub code: Option<String>,
    pub message: Option<String>,
    detail: String,
}

impl AwsError {
    pub fn new<E>(doing: impl fmt::Display, err: &E) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => causes(err),
        };
        AwsError {
            doing: doing.to_string(),
            code: err.code().map(str::to_owned),
            message: err.message().map(str::to_owned),
            detail,
        }
    }

    /// The service's error code of `err`, when it is an [`AwsError`] that has one.
    pub fn code_of(err: &anyhow::Error) -> Option<&str> {
        err.downcast_ref::<AwsError>().and_then(|e| e.code.as_deref())
    }
}

/// An error that is not the service's answer (no connection, no credentials, a timeout), as
/// one line: each cause's own words, without the debug dump the SDK's context adds, and the
/// fix when the cause is missing credentials.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        // One line: some causes list what they tried, one per line.
        let text = cause.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !words.iter().any(|w| w.contains(&text)) {
            words.push(text);
        }
        next = cause.source();
    }
    let mut line = words.join(": ");
    if line.contains("loading credentials") || line.contains("no credentials found") {
        line.push_str(
            " (no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or AWS_PROFILE, or a role with AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)",
        );
    }
    line
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.doing, self.detail)
    }
}

impl std::error::Error for AwsError {}

impl Clients {
    pub async fn new(settings: &Settings, env: &Env) -> anyhow::Result<Clients> {
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(SDK_ATTEMPTS));
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        // AWS_PROFILE is the SDK's own; the EB CLI's profile applies only without it.
        if env.get("AWS_PROFILE").is_none()
            && let Some(profile) = &settings.profile
        {
            loader = loader.profile_name(profile);
        }
        let config = loader.load().await;
        let Some(region) = config.region().map(|r| r.to_string()) else {
            anyhow::bail!(
                "no AWS region: set `region` in [workspace.metadata.deploy], AWS_REGION, or a \
                 profile's region"
            );
        };
        let custom = |var: &str| env.get(var).or(env.get("AWS_ENDPOINT_URL")).map(str::to_owned);
        let eb_endpoint = custom("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK")
            .unwrap_or_else(|| format!("https://elasticbeanstalk.{region}.amazonaws.com"));
        let custom_s3 = custom("AWS_ENDPOINT_URL_S3");
        // A custom S3 endpoint (a local server, an S3-compatible store) is addressed by
        // path: its host name cannot carry the bucket.
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(custom_s3.is_some())
            .build();
        let s3_endpoint = custom_s3.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        Ok(Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            eb: aws_sdk_elasticbeanstalk::Client::new(&config),
            region,
            eb_endpoint,
            s3_endpoint,
        })
    }

    /// Clients around a mocked Elastic Beanstalk client (`aws-smithy-mocks`).
    #[cfg(test)]
    pub fn for_tests(eb: aws_sdk_elasticbeanstalk::Client) -> Clients {
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            eb,
            region: "us-east-1".to_owned(),
            eb_endpoint: "mock".to_owned(),
            s3_endpoint: "mock".to_owned(),
        }
    }

    /// One AWS call, `doing` saying what it is for (`describe environment acme-web-stg`):
    /// sent again after a backoff while the service throttles, until it answers or
    /// `deadline` passes; Ctrl-C ends it at once. A service error is an [`AwsError`].
    pub async fn call<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        service: Service,
        doing: &str,
        deadline: Deadline,
        mut send: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let mut backoff = THROTTLE_BACKOFF.0;
        let mut throttled = false;
        loop {
            let during = || format!("{doing} (a call to {service} was in flight)");
            let remaining = deadline.remaining();
            let answer = tokio::select! {
                answer = tokio::time::timeout(remaining, send()) => answer,
                () = ctx.interrupt.signalled() => return Err(Interrupted { during: during() }.into()),
            };
            let err = match answer {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => err,
                Err(_elapsed) => return Err(self.stalled(service, doing, deadline)),
            };
            let stalled = matches!(&err, SdkError::TimeoutError(_))
                || matches!(&err, SdkError::DispatchFailure(f) if f.is_timeout());
            if !is_throttling(&err) && !stalled {
                return Err(AwsError::new(doing, &err).into());
            }
            if deadline.passed() {
                return Err(self.stalled(service, doing, deadline));
            }
            if is_throttling(&err) && !throttled {
                ctx.ui.info(format_args!(
                    "{service} is throttling this account ({}): {doing} again with backoff",
                    AwsError::new(doing, &err).detail
                ));
                throttled = true;
            }
            let pause = backoff.min(deadline.remaining());
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = ctx.interrupt.signalled() => return Err(Interrupted { during: doing.to_owned() }.into()),
            }
            backoff = (backoff * 2).min(THROTTLE_BACKOFF.1);
        }
    }

    fn endpoint(&self, service: Service) -> &str {
        match service {
            Service::ElasticBeanstalk => &self.eb_endpoint,
            Service::S3 => &self.s3_endpoint,
        }
    }

    fn stalled(&self, service: Service, doing: &str, deadline: Deadline) -> anyhow::Error {
        let var = match service {
            Service::ElasticBeanstalk => "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK",
            Service::S3 => "AWS_ENDPOINT_URL_S3",
        };
        Failure::new(
            exit::TIMED_OUT,
            format!(
                "{service} at {} did not answer within {}s (cannot {doing}): check the network \
                 and the endpoint ({var}), or raise --timeout",
                self.endpoint(service),
                deadline.timeout().as_secs()
            ),
        )
        .into()
    }
}

/// The one async runtime of a command that talks to AWS.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// The one HTTPS client of the SDK: hyper 1 + rustls with ring, the system's trust store.
/// Without it the lean feature set has none, and every call would fail at run time.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Whether an SDK error is the service saying "slow down".
pub fn is_throttling<E: ProvideErrorMetadata>(err: &E) -> bool {
    matches!(
        err.code(),
        Some(
            "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "SlowDown"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_without_an_answer_is_one_line_of_causes_with_the_fix() {
        let err =
            anyhow::anyhow!("no credentials found in chain. Attempted:\n  Environment: not set")
                .context("the credential provider was not enabled")
                .context("dispatch failure");
        let line = causes(err.as_ref());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with(
            "dispatch failure: the credential provider was not enabled: no credentials found in \
             chain. Attempted: Environment: not set (no AWS credentials were found: set"
        ), "{line}");
        let refused =
            anyhow::anyhow!("connection refused").context("io").context("dispatch failure");
        assert_eq!(causes(refused.as_ref()), "dispatch failure: io: connection refused");
    }
}
