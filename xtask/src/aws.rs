//! The AWS clients, built once from `aws-config`: the standard credential chain (env, SSO
//! and other profiles, web identity for CI's OIDC role, instance metadata), the region and
//! profile from the settings, and the SDK's `AWS_ENDPOINT_URL*` variables (how tests point
//! the real clients at local servers). One HTTPS stack: hyper 1 + rustls with ring.

use std::fmt;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_elasticbeanstalk::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::Env;
use crate::settings::Settings;

/// Attempts per Elastic Beanstalk call, so that a burst of `Throttling` answers (its limit
/// is shared by the whole account) is waited out with backoff.
const EB_ATTEMPTS: u32 = 8;
/// Attempts per S3 call: a failing upload should fail fast.
const S3_ATTEMPTS: u32 = 3;

#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub eb: aws_sdk_elasticbeanstalk::Client,
    pub region: String,
}

impl Clients {
    pub async fn new(settings: &Settings, env: &Env) -> anyhow::Result<Clients> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .retry_config(RetryConfig::standard().with_max_attempts(EB_ATTEMPTS));
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
        // A custom S3 endpoint (a local server, an S3-compatible store) is addressed by
        // path: its host name cannot carry the bucket.
        let custom_s3 = env.get("AWS_ENDPOINT_URL_S3").or(env.get("AWS_ENDPOINT_URL")).is_some();
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(custom_s3)
            .retry_config(RetryConfig::standard().with_max_attempts(S3_ATTEMPTS))
            .build();
        Ok(Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            eb: aws_sdk_elasticbeanstalk::Client::new(&config),
            region,
        })
    }
}

/// The one HTTPS client of the SDK: hyper 1 + rustls with ring, the system's trust store.
/// Without it the lean feature set has none, and every call would fail at run time.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// An AWS error as one line: the service's code and message when it answered, else the
/// whole chain (timeouts, connection refused, credentials).
pub struct AwsError<'a, E>(pub &'a E);

impl<E> fmt::Display for AwsError<'_, E>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.code(), self.0.message()) {
            (Some(code), Some(message)) => write!(f, "{code}: {message}"),
            (Some(code), None) => write!(f, "{code}"),
            _ => write!(f, "{}", DisplayErrorContext(self.0)),
        }
    }
}

/// `Err` of an SDK call as an `anyhow` error: what we were doing, then [`AwsError`].
pub fn fail<E>(doing: impl fmt::Display, err: E) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    anyhow::anyhow!("{doing}: {}", AwsError(&err))
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
        )
    )
}
