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

mod error;

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_elasticbeanstalk::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub use self::error::{AwsError, is_throttling};
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
    Ecr,
    Iam,
}

impl Service {
    /// The SDK's variable for this service's endpoint (`AWS_ENDPOINT_URL_` + its service id).
    fn endpoint_var(self) -> &'static str {
        match self {
            Service::ElasticBeanstalk => "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK",
            Service::S3 => "AWS_ENDPOINT_URL_S3",
            Service::Ecr => "AWS_ENDPOINT_URL_ECR",
            Service::Iam => "AWS_ENDPOINT_URL_IAM",
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
    pub ecr: aws_sdk_ecr::Client,
    /// Read only: whether the roles an environment is created with exist.
    pub iam: aws_sdk_iam::Client,
    pub region: String,
    /// Where each service is reached, as a reader would check it: EB, S3, ECR, IAM.
    endpoints: [String; 4],
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

impl Clients {
    pub async fn new(env: &Env, setup: Setup<'_>) -> anyhow::Result<Clients> {
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
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
        let eb = aws_sdk_elasticbeanstalk::config::Builder::from(&config)
            .region(Region::new(region.clone()))
            .build();
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
        ];
        Ok(Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            eb: aws_sdk_elasticbeanstalk::Client::from_conf(eb),
            ecr: aws_sdk_ecr::Client::from_conf(ecr.build()),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config)
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
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            eb,
            ecr: aws_sdk_ecr::Client::from_conf(ecr),
            iam: aws_sdk_iam::Client::from_conf(iam),
            region: "us-east-1".to_owned(),
            endpoints: ["mock", "mock", "mock", "mock"].map(str::to_owned),
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

    /// Every page of a paginated call, in order: `send` gets the `NextToken` of the page
    /// before (none for the first), `next` reads it from a page. Each page is a [`call`].
    ///
    /// [`call`]: Clients::call
    pub async fn pages<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        (service, doing): (Service, &str),
        deadline: Deadline,
        mut send: F,
        next: impl Fn(&T) -> Option<&str>,
    ) -> anyhow::Result<Vec<T>>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.call(ctx, service, doing, deadline, || send(token.clone())).await?;
            token = next(&page).map(str::to_owned);
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }

    fn endpoint(&self, service: Service) -> &str {
        let [eb, s3, ecr, iam] = &self.endpoints;
        match service {
            Service::ElasticBeanstalk => eb,
            Service::S3 => s3,
            Service::Ecr => ecr,
            Service::Iam => iam,
        }
    }

    fn stalled(&self, service: Service, doing: &str, deadline: Deadline) -> anyhow::Error {
        Failure::new(
            exit::TIMED_OUT,
            format!(
                "{service} at {} did not answer within {}s (cannot {doing}): check the network \
                 and the endpoint ({}), or raise --timeout",
                self.endpoint(service),
                deadline.timeout().as_secs(),
                service.endpoint_var()
            ),
        )
        .into()
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
