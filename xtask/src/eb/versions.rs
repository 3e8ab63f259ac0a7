//! Application versions: listed newest first (by creation time), deleted one by one, and the
//! region's quota (1000 per region, shared by every application; when it is reached, every
//! deploy of the account fails).

use aws_sdk_elasticbeanstalk::primitives::DateTime;
use serde::{Serialize, Serializer};

use crate::aws::{AwsError, Service};
use crate::eb::Eb;
use crate::eb::bundle::Bundle;
use crate::eb::events::utc;
use crate::run::Context;

/// One application version, newest first in every list.
#[derive(Clone, Debug, Serialize)]
pub struct Version {
    pub label: String,
    /// Shown in UTC with milliseconds (`2026-11-30T05:20:03.500Z`); sorted as a time.
    #[serde(serialize_with = "utc_or_null")]
    pub created: Option<DateTime>,
    pub status: Option<String>,
    /// Environments that run it (or are being updated to it).
    pub running_on: Vec<String>,
    /// Its source bundle in S3 (bucket, key).
    #[serde(skip)]
    pub source: Option<(String, String)>,
    /// `zip` (with `.ebextensions`/`.platform`) or `json` (a Dockerrun alone).
    pub bundle: Option<&'static str>,
    /// The source bundle's size in bytes, when it could be read (see [`bundle_sizes`]).
    pub bundle_size: Option<i64>,
}

fn utc_or_null<S: Serializer>(time: &Option<DateTime>, serializer: S) -> Result<S::Ok, S::Error> {
    time.as_ref().map(utc).serialize(serializer)
}

/// Every version of `application` (or of the region, without one), newest first.
pub async fn list(
    ctx: &Context,
    eb: &Eb,
    application: Option<&str>,
) -> anyhow::Result<Vec<Version>> {
    let pages = eb
        .pages(ctx, "describe application versions", |token| {
            eb.client()
                .describe_application_versions()
                .set_application_name(application.map(str::to_owned))
                .set_next_token(token)
                .send()
        })
        .await?;
    let mut versions: Vec<Version> = pages
        .iter()
        .flat_map(|page| page.application_versions())
        .map(|v| Version {
            label: v.version_label().unwrap_or_default().to_owned(),
            created: v.date_created().copied(),
            status: v.status().map(|s| s.as_str().to_owned()),
            running_on: Vec::new(),
            source: v
                .source_bundle()
                .and_then(|b| Some((b.s3_bucket()?.to_owned(), b.s3_key()?.to_owned()))),
            bundle: v.source_bundle().and_then(|b| b.s3_key()).map(Bundle::kind_of),
            bundle_size: None,
        })
        .collect();
    newest_first(&mut versions);
    Ok(versions)
}

/// Reads each version's bundle size (S3 HeadObject, ten at a time). A bundle that cannot be
/// read (elsewhere, deleted, not ours to read) keeps no size.
pub async fn bundle_sizes(ctx: &Context, eb: &Eb, versions: &mut [Version]) -> anyhow::Result<()> {
    for chunk in versions.chunks_mut(10) {
        let heads = chunk.iter().map(|v| async {
            let (bucket, key) = v.source.as_ref()?;
            let doing = format!("read the size of s3://{bucket}/{key}");
            let head = eb.call_other(ctx, Service::S3, &doing, || {
                eb.s3().head_object().bucket(bucket).key(key).send()
            });
            head.await.ok()?.content_length()
        });
        let sizes = futures_util::future::join_all(heads).await;
        ctx.interrupt.check("reading the bundles' sizes")?;
        for (version, size) in chunk.iter_mut().zip(sizes) {
            version.bundle_size = size;
        }
    }
    Ok(())
}

/// Sorts by creation time (not by its text: `03.5Z` is before `03.502Z`).
fn newest_first(versions: &mut [Version]) {
    versions.sort_by_key(|v| std::cmp::Reverse(v.created));
}

/// The versions prune removes: beyond the `keep` newest, and running nowhere.
pub fn to_prune(versions: &[Version], keep: usize) -> Vec<&Version> {
    versions.iter().skip(keep).filter(|v| v.running_on.is_empty()).collect()
}

/// Deletes one version (and its S3 bundle with `delete_bundle`). `Ok(false)` when Elastic
/// Beanstalk keeps it because an operation in progress uses it.
pub async fn delete(
    ctx: &Context,
    eb: &Eb,
    label: &str,
    delete_bundle: bool,
) -> anyhow::Result<bool> {
    let doing = format!("delete application version {label}");
    let deleted = eb
        .call(ctx, &doing, || {
            eb.client()
                .delete_application_version()
                .application_name(&eb.application)
                .version_label(label)
                .delete_source_bundle(delete_bundle)
                .send()
        })
        .await;
    match deleted {
        Ok(_) => Ok(true),
        Err(err) if AwsError::code_of(&err) == Some("OperationInProgressFailure") => Ok(false),
        Err(err) => Err(err),
    }
}

/// The region's quota of application versions, when this identity may read it.
pub async fn quota(ctx: &Context, eb: &Eb) -> anyhow::Result<Option<i32>> {
    let attributes = eb
        .call(ctx, "describe account attributes", || {
            eb.client().describe_account_attributes().send()
        })
        .await;
    Ok(attributes.ok().and_then(|a| {
        a.resource_quotas().and_then(|q| q.application_version_quota()).and_then(|q| q.maximum())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticbeanstalk::primitives::DateTimeFormat;

    fn version(label: &str, created: &str, running_on: &[&str]) -> Version {
        Version {
            label: label.into(),
            created: Some(DateTime::from_str(created, DateTimeFormat::DateTime).unwrap()),
            status: None,
            running_on: running_on.iter().map(|e| e.to_string()).collect(),
            source: None,
            bundle: None,
            bundle_size: None,
        }
    }

    #[test]
    fn versions_sort_by_time_to_the_millisecond() {
        let mut versions = [
            version("a", "2026-11-30T05:20:03.5Z", &[]),
            version("b", "2026-11-30T05:20:03.502Z", &[]),
            version("c", "2026-11-30T05:20:03Z", &[]),
        ];
        newest_first(&mut versions);
        let labels: Vec<&str> = versions.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["b", "a", "c"]);
        let json = serde_json::to_value(&versions[0]).unwrap();
        assert_eq!(json["created"], "2026-11-30T05:20:03.502Z");
    }

    #[test]
    fn prune_spares_the_newest_and_anything_running() {
        let versions = [
            version("v4", "2026-11-04T00:00:00Z", &[]),
            version("v3", "2026-11-03T00:00:00Z", &[]),
            version("v2", "2026-11-02T00:00:00Z", &[]),
            version("v1", "2026-11-01T00:00:00Z", &["acme-web-prd"]),
        ];
        let doomed: Vec<&str> = to_prune(&versions, 1).iter().map(|v| v.label.as_str()).collect();
        assert_eq!(doomed, ["v3", "v2"]);
        assert!(to_prune(&versions, 10).is_empty());
    }
}
