//! A new application version, made so that it never changes: its bundle (the rendered
//! Dockerrun, or a zip of it with the bundle directory's files: `bundle`) goes to S3 under a
//! key that carries the SHA-256 of its bytes, and an existing version of the label
//! is reused only when its bundle has these very bytes; with other bytes it is refused before
//! anything is written. What a rollback to a version runs can never change under it.
//!
//! The registry auth file is not part of a version (`auth_file`): every version's Dockerrun
//! names the one key. Amazon ECR needs none: the instance profile pulls.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_elasticbeanstalk::types::S3Location;

use crate::aws::{AwsError, Service};
use crate::config::bundle::Extras;
use crate::config::dockerrun;
use crate::eb::Eb;
use crate::eb::auth_file::AuthFile;
use crate::eb::bundle::{Bundle, sha256};
use crate::run::Context;
use crate::run::ui::cut;

/// How long a new application version may take to become visible.
const VERSION_VISIBLE_WITHIN: Duration = Duration::from_secs(60);
/// An existing bundle larger than this is not read to compare: ours are a JSON file, or a zip
/// of a few configuration files, kilobytes.
const MAX_COMPARED_BUNDLE: i64 = 10 << 20;
/// Elastic Beanstalk's limit on a version label.
pub const MAX_LABEL: usize = 100;
/// Elastic Beanstalk's limit on a version's description, in characters.
pub const MAX_DESCRIPTION: usize = 200;
/// Shown instead of the bucket that `CreateStorageLocation` will name.
pub const BUCKET_TO_BE_CREATED: &str = "elasticbeanstalk-REGION-ACCOUNT";

/// An application version to publish.
#[derive(Debug)]
pub struct Version<'a> {
    pub application: &'a str,
    pub label: &'a str,
    pub description: String,
    /// The Dockerrun template, and the values of its placeholders but the bucket.
    pub template: &'a str,
    pub values: dockerrun::Values,
    /// The registry auth file; `None` for a registry that needs none (ECR).
    pub auth_file: Option<&'a AuthFile>,
    /// `None`: the account's Elastic Beanstalk bucket, from `CreateStorageLocation`.
    pub bucket: Option<&'a str>,
    /// The bundle directory's files: with them the bundle is a zip.
    pub extras: Option<&'a Extras>,
}

/// A version's description: the commit's subject and author, `fix login (Ana <ana@x>)`,
/// the subject cut with `…` to fit [`MAX_DESCRIPTION`].
pub fn description(subject: &str, author: &str) -> String {
    let author = format!(" ({author})");
    let room = MAX_DESCRIPTION.saturating_sub(author.chars().count()).max(20);
    cut(&format!("{}{author}", cut(subject, room)), MAX_DESCRIPTION)
}

/// A label Elastic Beanstalk takes: 1 to 100 characters (the image tag, checked by then).
pub fn check_label(label: &str) -> anyhow::Result<()> {
    if label.len() > MAX_LABEL {
        bail!(
            "image tag {label:?} is {} characters, but the Elastic Beanstalk version label it \
             becomes is at most {MAX_LABEL}: pass a shorter --tag",
            label.len()
        );
    }
    Ok(())
}

impl Version<'_> {
    /// The bundle for `bucket` (the Dockerrun names it), as it would be uploaded.
    pub fn bundle(&self, bucket: &str) -> anyhow::Result<Bundle> {
        let values = dockerrun::Values {
            bucket: bucket.to_owned(),
            auth_key: self.auth_file.map(|auth| auth.key.clone()),
            ..self.values.clone()
        };
        let rendered = dockerrun::render(self.template, &values).context(dockerrun::TEMPLATE)?;
        Bundle::new(self.application, self.label, &rendered, self.extras)
    }

    /// The bucket, then the version checked before anything is written, then the uploads and
    /// the version, created unless it exists with these very bytes.
    pub async fn publish(&self, ctx: &Context, eb: &Eb) -> anyhow::Result<()> {
        let label = self.label;
        ctx.ui.step(format_args!("application version {label}"));
        let bucket = bucket(ctx, eb, self.bucket).await?;
        let bundle = self.bundle(&bucket)?;
        let exists = self.existing_version(ctx, eb, &bucket, &bundle).await?;

        ctx.ui.step("upload the deploy files to S3");
        if let Some(auth) = self.auth_file {
            auth.put_if_changed(ctx, eb, &bucket).await?;
        }
        if exists {
            ctx.ui.info(format_args!("version {label} exists with this bundle: reused"));
            return Ok(());
        }
        let bytes = bundle.bytes.clone();
        let what = if bundle.entries.is_empty() { "Dockerrun" } else { "bundle" };
        upload(ctx, eb, &bucket, &bundle.key, bytes, what).await?;
        self.create_version(ctx, eb, &bucket, &bundle).await
    }

    /// Creates the version from the uploaded bundle; then waits until Elastic Beanstalk lists
    /// it (it is eventually consistent).
    async fn create_version(
        &self,
        ctx: &Context,
        eb: &Eb,
        bucket: &str,
        bundle: &Bundle,
    ) -> anyhow::Result<()> {
        let label = self.label;
        let doing = format!("create application version {label}");
        let created = eb
            .call(ctx, &doing, || {
                let source = S3Location::builder().s3_bucket(bucket).s3_key(&bundle.key).build();
                eb.client()
                    .create_application_version()
                    .application_name(self.application)
                    .version_label(label)
                    .description(&self.description)
                    .source_bundle(source)
                    .send()
            })
            .await;
        if let Err(err) = created {
            match AwsError::code_of(&err) {
                Some("TooManyApplicationVersionsException") => bail!(
                    "Elastic Beanstalk's quota of application versions is reached \
                     (TooManyApplicationVersions): delete old ones with \
                     `cargo xtask versions prune --keep 200`, then deploy again"
                ),
                // Someone created it since we looked (a re-run racing us): judged as ours
                // when it has this very bundle.
                Some(_) if self.existing_version(ctx, eb, bucket, bundle).await? => {}
                _ => return Err(err),
            }
        }
        let started = Instant::now();
        while !self.existing_version(ctx, eb, bucket, bundle).await? {
            if started.elapsed() > VERSION_VISIBLE_WITHIN {
                bail!(
                    "application version {label} was created but is still not listed after {}s",
                    VERSION_VISIBLE_WITHIN.as_secs()
                );
            }
            crate::eb::wait::pause(
                ctx,
                Duration::from_secs(1),
                "waiting for the version to be listed",
            )
            .await?;
        }
        ctx.ui.info(format_args!("created version {label}"));
        Ok(())
    }

    /// Whether the version exists with these very bytes; an error naming both digests when
    /// it exists with other ones (a version never changes once created).
    async fn existing_version(
        &self,
        ctx: &Context,
        eb: &Eb,
        bucket: &str,
        bundle: &Bundle,
    ) -> anyhow::Result<bool> {
        let label = self.label;
        let doing = format!("describe application version {label}");
        let described = eb
            .call(ctx, &doing, || {
                eb.client()
                    .describe_application_versions()
                    .application_name(self.application)
                    .version_labels(label)
                    .send()
            })
            .await?;
        let Some(version) =
            described.application_versions().iter().find(|v| v.version_label() == Some(label))
        else {
            return Ok(false);
        };
        let source = version.source_bundle();
        let theirs = (source.and_then(|b| b.s3_bucket()), source.and_then(|b| b.s3_key()));
        let (Some(their_bucket), Some(their_key)) = theirs else {
            bail!(
                "application version {label} already exists without an S3 source bundle: deploy \
                 another tag, or delete that version"
            );
        };
        // Our keys carry the digest of the bytes under them.
        if (their_bucket, their_key) == (bucket, bundle.key.as_str()) {
            return Ok(true);
        }
        let their_digest = object_digest(ctx, eb, their_bucket, their_key).await?;
        if their_digest.as_deref() == Some(bundle.digest.as_str()) {
            return Ok(true);
        }
        let theirs = match &their_digest {
            Some(digest) => format!("sha256:{digest}"),
            None => "a bundle of over 10 MiB".to_owned(),
        };
        bail!(
            "application version {label} already exists with another bundle ({theirs} at \
             s3://{their_bucket}/{their_key}) than this deploy's (sha256:{}): a version never \
             changes once created; commit the change and deploy that commit (or pass another \
             --tag), or delete version {label} first",
            bundle.digest
        )
    }
}

/// The SHA-256 of an S3 object, or `None` when it is too large to be a Dockerrun.
async fn object_digest(
    ctx: &Context,
    eb: &Eb,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let doing = format!("read s3://{bucket}/{key} to compare it with this deploy's bundle");
    let object = eb
        .call_other(ctx, Service::S3, &doing, || {
            eb.s3().get_object().bucket(bucket).key(key).send()
        })
        .await?;
    if object.content_length().is_some_and(|size| size > MAX_COMPARED_BUNDLE) {
        return Ok(None);
    }
    let bytes = object.body.collect().await.with_context(|| doing.clone())?.into_bytes();
    Ok(Some(sha256(&bytes)))
}

/// The bucket of the deploy files: the `bucket` setting, else the account's Elastic Beanstalk
/// bucket (`CreateStorageLocation` makes it once and names it ever after).
pub async fn bucket(ctx: &Context, eb: &Eb, setting: Option<&str>) -> anyhow::Result<String> {
    if let Some(bucket) = setting {
        return Ok(bucket.to_owned());
    }
    let doing = "find the Elastic Beanstalk bucket (CreateStorageLocation)";
    let created = eb.call(ctx, doing, || eb.client().create_storage_location().send()).await?;
    created.s3_bucket().map(str::to_owned).context(
        "CreateStorageLocation named no bucket: set `bucket` in [workspace.metadata.deploy]",
    )
}

async fn upload(
    ctx: &Context,
    eb: &Eb,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    what: &str,
) -> anyhow::Result<()> {
    ctx.ui.info(format_args!("put s3://{bucket}/{key} ({what}, encrypted)"));
    let doing =
        format!("upload the {what} to s3://{bucket}/{key} (no application version was created)");
    eb.put_encrypted(ctx, (bucket, key), &body, &doing).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_key_carries_the_digest_of_its_bytes() {
        let values = dockerrun::Values {
            bucket: "b".into(),
            image: "quay.io/acme/web".into(),
            tag: "v1".into(),
            auth_key: None,
        };
        let template = r#"{"AWSEBDockerrunVersion": "1", "Image": {"Name": "<IMAGE>:<TAG>"},
            "Ports": [{"ContainerPort": "80"}]}"#;
        let render = |t: &str| dockerrun::render(t, &values).unwrap();
        let bundle = Bundle::new("acme-web", "v1", &render(template), None).unwrap();
        assert_eq!(bundle.digest, sha256(&bundle.bytes));
        assert_eq!(bundle.key, format!("acme-web/deploy/v1/{}/Dockerrun.aws.json", bundle.digest));
        let other = template.replace("\"80\"", "\"8080\"");
        let changed = Bundle::new("acme-web", "v1", &render(&other), None).unwrap();
        assert_ne!(changed.key, bundle.key, "other bytes, another key: nothing is overwritten");
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_description_keeps_the_author_and_cuts_the_subject() {
        let long = "é".repeat(300);
        let described = description(&long, "Ana Lima <ana@example.com>");
        assert_eq!(described.chars().count(), MAX_DESCRIPTION);
        assert!(described.ends_with("… (Ana Lima <ana@example.com>)"), "{described}");
        assert_eq!(description("fix login", "Ana <a@x>"), "fix login (Ana <a@x>)");
    }
}
