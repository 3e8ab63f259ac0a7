//! Elastic Beanstalk (and the S3 bucket beside it): the [`Eb`] handle every call goes
//! through, then what the commands do with it: look up environments, create application
//! versions that never change, create, update and terminate environments, and follow each
//! operation to a verdict that holds on the real service (see `judge`).

pub mod auth_file;
pub mod bundle;
pub mod create;
pub mod environments;
pub mod events;
pub mod follow;
pub mod instances;
pub mod judge;
pub mod ledger;
pub mod logs;
pub mod operation;
pub mod outcome;
pub mod pair;
pub mod publish;
pub mod swap;
pub mod terminate;
#[cfg(test)]
mod testing;
pub mod update;
pub mod versions;
pub mod wait;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_elasticbeanstalk::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticbeanstalk::primitives::DateTime;

use crate::aws::{self, Aws, Clients, Deadline, Once, Service};
use crate::run::{Context, Env};

/// One command's conversation with Elastic Beanstalk: the clients, the application, the
/// command's one deadline (`--timeout`, from the handle's making: no call can get a fresh
/// one of its own) and the service's clock (from the `Date` of its answers).
#[derive(Clone, Debug)]
pub struct Eb {
    clients: Clients,
    pub application: String,
    deadline: Deadline,
    journal: Journal,
}

/// What the operations of one command started and how each ended, per environment: the
/// request id and exit status its deploy history records. Shared by every handle made from
/// one (see [`Eb::with_timeout`]).
#[derive(Clone, Debug, Default)]
pub struct Journal(Arc<Mutex<BTreeMap<String, Entry>>>);

/// One environment's operation, as far as it went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub request_id: Option<String>,
    /// Its own exit status, when the command concluded on it (several environments).
    pub code: Option<i32>,
    /// A blue/green side after a swap (or a verified idle deploy): the version it runs, and
    /// whether it holds the pair's public CNAME.
    pub placed: Option<(String, bool)>,
    /// The command holds its lock and left it alone (the live side of a blue/green deploy
    /// that stopped before the swap): it gets no history record.
    pub untouched: bool,
}

impl Journal {
    pub fn started(&self, environment: &str, request_id: Option<String>) {
        self.edit(environment, |entry| entry.request_id = request_id);
    }

    pub fn ended(&self, environment: &str, code: i32) {
        self.edit(environment, |entry| entry.code = Some(code));
    }

    /// `environment` runs `version` and is (or is not) `live` after the command.
    pub fn placed(&self, environment: &str, version: &str, live: bool) {
        self.edit(environment, |entry| {
            entry.placed = Some((version.to_owned(), live));
            entry.untouched = false;
        });
    }

    /// Whether the command acted on `environment` (the default) or left it alone.
    pub fn touched(&self, environment: &str, touched: bool) {
        self.edit(environment, |entry| entry.untouched = !touched);
    }

    pub fn entry(&self, environment: &str) -> Entry {
        let entries = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(environment).cloned().unwrap_or_default()
    }

    fn edit(&self, environment: &str, change: impl FnOnce(&mut Entry)) {
        let mut entries = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(entries.entry(environment.to_owned()).or_default());
    }
}

impl Eb {
    /// The async runtime and the clients (`Aws`), and a handle for `application` whose
    /// deadline is `timeout` from now.
    pub fn connect(
        env: &Env,
        setup: aws::Setup<'_>,
        application: &str,
        timeout: Duration,
    ) -> anyhow::Result<(Aws, Eb)> {
        let aws = Aws::connect(env, setup)?;
        let eb = Eb::new(&aws.clients, application, timeout);
        Ok((aws, eb))
    }

    pub fn new(clients: &Clients, application: &str, timeout: Duration) -> Eb {
        Eb {
            clients: clients.clone(),
            application: application.to_owned(),
            deadline: Deadline::after(timeout),
            journal: Journal::default(),
        }
    }

    /// The same handle with a deadline `timeout` from now, for a part of the command that
    /// has its own: the wait for a deploy lock (`--lock-wait`), the work once the lock is
    /// held (`--timeout`), the clean-up after it (releasing the lock, the history record).
    pub fn with_timeout(&self, timeout: Duration) -> Eb {
        Eb { deadline: Deadline::after(timeout), ..self.clone() }
    }

    /// What this command's operations started and how they ended.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Says how long the command may take on Elastic Beanstalk, once, at its start.
    pub fn say_deadline(&self, ctx: &Context) {
        ctx.ui.info(format_args!(
            "Elastic Beanstalk: waiting {} (--timeout)",
            self.deadline.describe()
        ));
    }

    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    pub fn region(&self) -> &str {
        &self.clients.region
    }

    /// The Elastic Beanstalk client (with the SDK's retries).
    pub fn client(&self) -> &aws_sdk_elasticbeanstalk::Client {
        &self.clients.eb
    }

    /// The Elastic Beanstalk client for calls that are never resent blindly.
    pub fn client_once(&self) -> &aws_sdk_elasticbeanstalk::Client {
        &self.clients.eb_once
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.clients.s3
    }

    pub fn iam(&self) -> &aws_sdk_iam::Client {
        &self.clients.iam
    }

    pub fn logs(&self) -> &aws_sdk_cloudwatchlogs::Client {
        &self.clients.logs
    }

    /// The service's time now.
    pub fn now(&self) -> DateTime {
        self.clients.clock.now()
    }

    /// One Elastic Beanstalk call within the command's deadline (see `Clients::call`).
    pub async fn call<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        doing: &str,
        send: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        self.clients.call(ctx, Service::ElasticBeanstalk, doing, self.deadline, send).await
    }

    /// A state-changing Elastic Beanstalk call, never resent blindly (see
    /// `Clients::call_once`); send it with [`Eb::client_once`].
    pub async fn call_once<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        doing: &str,
        send: F,
    ) -> anyhow::Result<Once<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        self.clients.call_once(ctx, Service::ElasticBeanstalk, doing, self.deadline, send).await
    }

    /// Every page of a paginated Elastic Beanstalk call (see `Clients::pages`): `send` gets
    /// the `NextToken` of the page before.
    pub async fn pages<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        doing: &str,
        send: F,
    ) -> anyhow::Result<Vec<T>>
    where
        T: Paged,
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let call = (Service::ElasticBeanstalk, doing);
        self.clients.pages(ctx, call, self.deadline, send, T::next_token).await
    }

    /// One call to another service (S3, IAM) within the command's deadline.
    pub async fn call_other<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        service: Service,
        doing: &str,
        send: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        self.clients.call(ctx, service, doing, self.deadline, send).await
    }
}

impl Eb {
    /// Puts `body` (JSON, or a zip for a `.zip` key) at `s3://bucket/key`, encrypted at rest (SSE AES256); `doing`
    /// says what for, in an error.
    pub async fn put_encrypted(
        &self,
        ctx: &Context,
        (bucket, key): (&str, &str),
        body: &[u8],
        doing: &str,
    ) -> anyhow::Result<()> {
        use aws_sdk_s3::primitives::ByteStream;
        use aws_sdk_s3::types::ServerSideEncryption;
        self.call_other(ctx, Service::S3, doing, || {
            self.s3()
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type(if key.ends_with(".zip") {
                    "application/zip"
                } else {
                    "application/json"
                })
                .server_side_encryption(ServerSideEncryption::Aes256)
                .body(ByteStream::from(body.to_vec()))
                .send()
        })
        .await
        .map(drop)
    }
}

/// An answer that comes in pages: its `NextToken`.
pub trait Paged {
    fn next_token(&self) -> Option<&str>;
}

macro_rules! paged {
    ($($output:ty),*) => {
        $(impl Paged for $output {
            fn next_token(&self) -> Option<&str> {
                self.next_token.as_deref()
            }
        })*
    };
}

paged!(
    aws_sdk_elasticbeanstalk::operation::describe_events::DescribeEventsOutput,
    aws_sdk_elasticbeanstalk::operation::describe_application_versions::DescribeApplicationVersionsOutput,
    aws_sdk_elasticbeanstalk::operation::list_platform_versions::ListPlatformVersionsOutput,
    aws_sdk_elasticbeanstalk::operation::describe_instances_health::DescribeInstancesHealthOutput
);
