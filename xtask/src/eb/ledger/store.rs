//! JSON documents in the Elastic Beanstalk bucket, written only on a condition, as S3 offers
//! them (PutObject's `If-None-Match: *` creates only what is absent, `If-Match: ETAG` replaces
//! only the version read; DeleteObject's `If-Match` likewise): what a lock and an append
//! without lost records need. A condition that does not hold is an answer, not an error:
//! S3 says 412 PreconditionFailed, or 409 ConditionalRequestConflict when another
//! conditional write of the key was in flight ("retry", the S3 user guide's "Conditional
//! writes"); an `If-Match` on a key deleted since we read it is 404 NoSuchKey.

use anyhow::Context as _;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ServerSideEncryption;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws::{AwsError, Service};
use crate::eb::Eb;
use crate::run::Context;

/// The bucket and the application whose documents live under `APP/deploy/`.
#[derive(Clone, Debug)]
pub struct Store {
    pub bucket: String,
    pub application: String,
}

/// A document as read: its value, and the ETag a conditional write names.
#[derive(Debug)]
pub struct Read<T> {
    pub value: T,
    pub etag: String,
    /// When S3 stored it (the service's clock).
    pub modified: Option<DateTime>,
}

/// What a write may require of the key.
#[derive(Clone, Debug)]
pub enum Condition {
    /// Nothing is there yet.
    Absent,
    /// What is there is the version read, with this ETag.
    Unchanged(String),
}

/// How a conditional write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Done; the new ETag (none after a delete).
    Done(Option<String>),
    /// The condition did not hold: someone else wrote (or deleted) it first.
    Refused,
}

impl Store {
    /// `APP/deploy/KIND/ENV.json`.
    pub fn key(&self, kind: &str, environment: &str) -> String {
        format!("{}/deploy/{kind}/{environment}.json", self.application)
    }

    /// `s3://BUCKET/KEY`, as messages name it.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The document at `key`, or `None` when there is none.
    pub async fn get<T: DeserializeOwned>(
        &self,
        ctx: &Context,
        eb: &Eb,
        key: &str,
    ) -> anyhow::Result<Option<Read<T>>> {
        let url = self.url(key);
        let doing = format!("read {url}");
        let got = eb
            .call_other(ctx, Service::S3, &doing, || {
                eb.s3().get_object().bucket(&self.bucket).key(key).send()
            })
            .await;
        let object = match got {
            Ok(object) => object,
            Err(err) if AwsError::code_of(&err) == Some("NoSuchKey") => return Ok(None),
            Err(err) => return Err(err),
        };
        let etag = object.e_tag().unwrap_or_default().to_owned();
        let modified = object.last_modified().copied();
        let bytes = object.body.collect().await.with_context(|| doing.clone())?.into_bytes();
        let value = serde_json::from_slice(&bytes).with_context(|| {
            format!("{url} is not what cargo xtask writes there: delete it or fix it by hand")
        })?;
        Ok(Some(Read { value, etag, modified }))
    }

    /// Writes `value` at `key` (JSON, encrypted at rest) if `condition` holds.
    pub async fn put<T: Serialize>(
        &self,
        ctx: &Context,
        eb: &Eb,
        key: &str,
        value: &T,
        condition: &Condition,
    ) -> anyhow::Result<Written> {
        let body = serde_json::to_vec_pretty(value)?;
        let doing = format!("write {}", self.url(key));
        let put = eb
            .call_other(ctx, Service::S3, &doing, || {
                let request = self
                    .s3_put(eb, key)
                    .server_side_encryption(ServerSideEncryption::Aes256)
                    .body(ByteStream::from(body.clone()));
                match condition {
                    Condition::Absent => request.if_none_match("*"),
                    Condition::Unchanged(etag) => request.if_match(etag),
                }
                .send()
            })
            .await;
        match put {
            Ok(answer) => Ok(Written::Done(answer.e_tag().map(str::to_owned))),
            Err(err) if refused(&err) => Ok(Written::Refused),
            Err(err) => Err(err),
        }
    }

    /// Deletes `key` if it is still the version with `etag`.
    pub async fn delete(
        &self,
        ctx: &Context,
        eb: &Eb,
        key: &str,
        etag: &str,
    ) -> anyhow::Result<Written> {
        let doing = format!("delete {}", self.url(key));
        let deleted = eb
            .call_other(ctx, Service::S3, &doing, || {
                eb.s3().delete_object().bucket(&self.bucket).key(key).if_match(etag).send()
            })
            .await;
        match deleted {
            Ok(_) => Ok(Written::Done(None)),
            Err(err) if refused(&err) => Ok(Written::Refused),
            Err(err) => Err(err),
        }
    }

    fn s3_put(
        &self,
        eb: &Eb,
        key: &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        eb.s3().put_object().bucket(&self.bucket).key(key).content_type("application/json")
    }
}

/// S3's answers to a condition that did not hold (see the module's header).
fn refused(err: &anyhow::Error) -> bool {
    matches!(
        AwsError::code_of(err),
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
    )
}
