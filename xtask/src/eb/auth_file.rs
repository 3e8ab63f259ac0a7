//! The registry auth file the instances pull with, in the Elastic Beanstalk bucket: one key
//! per application, which every version's Dockerrun names, so that after a password
//! rotation an old version can still pull its image. It is written only when its content
//! changes (and says so, with the age of what it replaces): every instance started later,
//! in every environment of the application, pulls with it.

use aws_sdk_elasticbeanstalk::primitives::DateTime;

use crate::aws::{AwsError, Service};
use crate::eb::Eb;
use crate::run::Context;
use crate::run::secret::Secret;

/// The auth file: its key in the bucket, its content (`{"auths": {REGISTRY: {"auth":
/// base64(user:password)}}}`) and whose credentials it carries.
#[derive(Debug)]
pub struct AuthFile {
    pub key: String,
    pub content: Secret,
    pub username: String,
    /// The instances' own (`REGISTRY_PULL_*`), or the push credentials.
    pub own: bool,
}

impl AuthFile {
    /// Writes it to `bucket`, encrypted, unless it holds this very content already.
    pub async fn put_if_changed(&self, ctx: &Context, eb: &Eb, bucket: &str) -> anyhow::Result<()> {
        let (key, user) = (&self.key, &self.username);
        let doing = format!(
            "read the registry auth file s3://{bucket}/{key} (no application version was created)"
        );
        let existing = eb.call_other(ctx, Service::S3, &doing, || {
            eb.s3().get_object().bucket(bucket).key(key).send()
        });
        let existing = match existing.await {
            Ok(object) => {
                let written = object.last_modified().copied();
                let body = object.body.collect().await.map(|b| b.into_bytes().to_vec()).ok();
                Some((body, written))
            }
            Err(err) if AwsError::code_of(&err) == Some("NoSuchKey") => None,
            Err(err) => return Err(err),
        };
        let content = self.content.expose().as_bytes();
        let was = match &existing {
            Some((Some(body), _)) if body == content => {
                ctx.ui.info(format_args!(
                    "instances' pull credentials unchanged (user {user}): s3://{bucket}/{key}"
                ));
                return Ok(());
            }
            Some((_, written)) => {
                let age = written.map(|w| ago(eb.now(), w));
                format!(
                    "replaced (were written {})",
                    age.unwrap_or_else(|| "at an unknown time".into())
                )
            }
            None => "written".to_owned(),
        };
        let doing = format!(
            "upload the registry auth file to s3://{bucket}/{key} (no application version was \
             created)"
        );
        eb.put_encrypted(ctx, (bucket, key), content, &doing).await?;
        ctx.ui.info(format_args!(
            "instances' pull credentials {was}: user {user}, s3://{bucket}/{key} (encrypted)"
        ));
        Ok(())
    }
}

/// `3 days ago`, `5 minutes ago`: how long before `now` `then` was (both AWS's clock).
fn ago(now: DateTime, then: DateTime) -> String {
    let millis = now.to_millis().unwrap_or_default() - then.to_millis().unwrap_or_default();
    let secs = u64::try_from(millis / 1000).unwrap_or(0);
    let (n, unit) = match secs {
        0..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_a_person_says_them() {
        let now = DateTime::from_secs(1_000_000);
        let before = |secs: i64| ago(now, DateTime::from_secs(1_000_000 - secs));
        assert_eq!(before(1), "1 second ago");
        assert_eq!(before(600), "10 minutes ago");
        assert_eq!(before(3 * 86_400 + 5), "3 days ago");
    }
}
