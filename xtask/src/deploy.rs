//! `cargo xtask deploy [ENV]`: release one commit to an Elastic Beanstalk environment with a
//! single environment update, and wait until it is really deployed.
//!
//! Steps, each decided before the first runs (`--dry-run` prints them): build and push the
//! image unless the registry has it → the S3 bucket → the application version, checked
//! before anything is written: reused only when its bundle has these very bytes → the
//! registry auth file to S3 (encrypted) → the rendered Dockerrun to S3 under a key that
//! carries its digest, so that no upload ever changes what an existing version runs → the
//! version → one UpdateEnvironment with the version *and* the option settings → wait for
//! Ready, our version and Green health, streaming events.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_elasticbeanstalk::types::{ConfigurationOptionSetting, S3Location};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::aws::{self, AwsError, Clients, Deadline, Service};
use crate::dockerrun::{self, Dockerrun};
use crate::options::{self, Options};
use crate::registry::Credentials;
use crate::secret::Secret;
use crate::settings::{Settings, Target};
use crate::{Context, build, flags, git, local, update, wait};

/// Default for `--timeout`: how long the environment may take to be Ready, and then to
/// finish the update.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default for `--recovery-window`.
pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(60);
/// Elastic Beanstalk's limit on a version label (the image tag is the label).
const MAX_LABEL: usize = 100;
/// How long a new application version may take to become visible.
const VERSION_VISIBLE_WITHIN: Duration = Duration::from_secs(60);
/// An existing bundle larger than this is not read to compare: ours is a small JSON file.
const MAX_COMPARED_BUNDLE: i64 = 10 << 20;
/// Shown instead of the bucket that `CreateStorageLocation` will name.
const BUCKET_TO_BE_CREATED: &str = "elasticbeanstalk-REGION-ACCOUNT";

/// Everything `deploy` will do, decided before anything runs.
#[derive(Debug)]
pub struct Plan {
    pub build: build::Plan,
    pub settings: Settings,
    pub application: String,
    pub target: Target,
    /// `None`: the account's Elastic Beanstalk bucket, from `CreateStorageLocation`.
    pub bucket: Option<String>,
    pub auth_key: String,
    pub template: String,
    pub options: Options,
    /// `{"auths": {REGISTRY: {"auth": base64(user:password)}}}`
    pub auth_file: Secret,
    pub timeout: Duration,
    pub recovery: Duration,
    pub allow_yellow: bool,
    pub no_wait: bool,
}

/// The rendered Dockerrun as uploaded: its bytes, their SHA-256, and the key carrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub key: String,
}

impl Bundle {
    pub fn new(application: &str, tag: &str, dockerrun: &Dockerrun) -> Bundle {
        let bytes = dockerrun.to_bytes();
        let digest = sha256(&bytes);
        let key = format!("{application}/deploy/{tag}/{digest}/Dockerrun.aws.json");
        Bundle { bytes, digest, key }
    }
}

pub fn run(ctx: &Context, flags: &flags::Deploy) -> anyhow::Result<()> {
    if flags.local {
        return local::run(ctx, flags);
    }
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let plan = Plan::new(ctx, settings, flags)?;
    if flags.dry_run {
        return plan.print(ctx);
    }
    plan.execute(ctx)
}

impl Plan {
    pub fn new(ctx: &Context, settings: Settings, flags: &flags::Deploy) -> anyhow::Result<Plan> {
        let build = build::Plan::new(ctx, &settings, &flags.build(true))?;
        let tag = build.image.tag.clone();
        if tag.len() > MAX_LABEL {
            bail!(
                "image tag {tag:?} is {} characters, but the Elastic Beanstalk version label it \
                 becomes is at most {MAX_LABEL}: pass a shorter --tag",
                tag.len()
            );
        }
        let application = settings.application()?.to_owned();
        let target =
            settings.target(flags.env.as_deref(), || match ctx.env.get("CIRCLE_BRANCH") {
                Some(branch) => Ok(Some(branch.to_owned())),
                None => git::branch(ctx),
            })?;
        let auth_key = format!("{application}/deploy/registry-auth.json");
        let template_path = ctx.root.join(dockerrun::TEMPLATE);
        let template = std::fs::read_to_string(&template_path)
            .with_context(|| format!("cannot read {}", template_path.display()))?;
        let bucket = settings.bucket.clone();
        // Checked now, so that a broken template fails before any AWS call.
        render(&template, bucket.as_deref().unwrap_or(BUCKET_TO_BE_CREATED), &build, &auth_key)?;
        let builtins = options::Builtins {
            deploy_env: target.deploy_env(),
            eb_environment: &target.name,
            image_tag: &tag,
        };
        let vars = |name: &str| builtins.get(name).or_else(|| ctx.env.get(name).map(str::to_owned));
        let options = options::render_file(&ctx.root, &vars)?;
        for value in options.secret_values() {
            ctx.ui.hide(&Secret::new(value));
        }
        let credentials = build
            .session
            .as_ref()
            .map(|session| &session.credentials)
            .context("internal error: a deploy always pushes")?;
        let token = registry_token(credentials);
        let auth_file = auth_file(build.image.registry(), &token);
        ctx.ui.hide(&token);
        ctx.ui.hide(&auth_file);
        Ok(Plan {
            application,
            target,
            bucket,
            auth_key,
            template,
            options,
            auth_file,
            timeout: flags.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            recovery: flags.recovery_window.map_or(DEFAULT_RECOVERY, Duration::from_secs),
            allow_yellow: flags.allow_yellow,
            no_wait: flags.no_wait,
            settings,
            build,
        })
    }

    fn label(&self) -> &str {
        &self.build.image.tag
    }

    /// The plan as a reader checks it: every step, secrets masked. Runs nothing.
    pub fn print(&self, ctx: &Context) -> anyhow::Result<()> {
        let ui = &ctx.ui;
        ui.step(format_args!(
            "plan: {} to {} of {} (dry run: nothing is run)",
            self.build.image, self.target.name, self.application
        ));
        self.build.print_steps(ctx)?;
        let bucket = self.bucket.as_deref().unwrap_or(BUCKET_TO_BE_CREATED);
        match &self.bucket {
            Some(bucket) => ui.info(format_args!("bucket {bucket} (setting)")),
            None => {
                ui.info("bucket: the account's Elastic Beanstalk bucket (CreateStorageLocation)")
            }
        }
        let rendered = render(&self.template, bucket, &self.build, &self.auth_key);
        let bundle =
            rendered.as_ref().ok().map(|d| Bundle::new(&self.application, self.label(), d));
        ui.info(format_args!(
            "application version {} of {}: reused only when it exists with this very bundle, \
             refused when it exists with another (checked before anything is written)",
            self.label(),
            self.application
        ));
        ui.info(format_args!(
            "upload the registry auth file, encrypted (SSE AES256): s3://{bucket}/{}",
            self.auth_key
        ));
        if let Some(bundle) = &bundle {
            // Its digest depends on the bucket it names: unknown until CreateStorageLocation.
            let key = match &self.bucket {
                Some(_) => bundle.key.clone(),
                None => bundle.key.replace(&bundle.digest, "<SHA-256 of the bundle>"),
            };
            ui.info(format_args!("upload the rendered Dockerrun: s3://{bucket}/{key}"));
            for line in String::from_utf8_lossy(&bundle.bytes).lines() {
                ui.info(format_args!("  {line}"));
            }
        }
        ui.info(format_args!(
            "wait until {} is Ready (up to {}s)",
            self.target.name,
            self.timeout.as_secs()
        ));
        ui.info(format_args!(
            "one UpdateEnvironment of {}: version {} and {} option settings:",
            self.target.name,
            self.label(),
            self.options.0.len()
        ));
        for option in &self.options.0 {
            ui.info(format_args!("  {option}"));
        }
        if self.no_wait {
            ui.info("then return (--no-wait)");
        } else {
            ui.info(format_args!(
                "then wait for Ready, version {}, health Green{} (up to {}s; health may take {}s \
                 to recover)",
                self.label(),
                if self.allow_yellow { " or Yellow" } else { "" },
                self.timeout.as_secs(),
                self.recovery.as_secs()
            ));
        }
        Ok(())
    }

    pub fn execute(mut self, ctx: &Context) -> anyhow::Result<()> {
        let runtime = aws::runtime()?;
        let clients = runtime.block_on(Clients::new(&self.settings, &ctx.env))?;
        // A wrong environment name fails now, not after a build and a push.
        let (application, environment) = (&self.application, &self.target.name);
        let deadline = Deadline::after(self.timeout);
        runtime.block_on(wait::describe(ctx, &clients, application, environment, deadline))?;
        self.build.execute(ctx)?;
        runtime.block_on(self.release(ctx, &clients))
    }

    async fn release(&self, ctx: &Context, clients: &Clients) -> anyhow::Result<()> {
        let label = self.label();
        let deadline = Deadline::after(self.timeout);

        ctx.ui.step(format_args!("application version {label}"));
        let bucket = match &self.bucket {
            Some(bucket) => bucket.clone(),
            None => storage_location(ctx, clients, deadline).await?,
        };
        let dockerrun = render(&self.template, &bucket, &self.build, &self.auth_key)?;
        let bundle = Bundle::new(&self.application, label, &dockerrun);
        let exists = self.existing_version(ctx, clients, &bucket, &bundle, deadline).await?;

        ctx.ui.step("upload the deploy files to S3");
        let auth = self.auth_file.expose().as_bytes().to_vec();
        upload(ctx, clients, &bucket, &self.auth_key, auth, "registry auth file", deadline).await?;
        if exists {
            ctx.ui.info(format_args!("version {label} exists with this bundle: reused"));
        } else {
            let bytes = bundle.bytes.clone();
            upload(ctx, clients, &bucket, &bundle.key, bytes, "Dockerrun", deadline).await?;
            self.create_version(ctx, clients, &bucket, &bundle, deadline).await?;
        }

        let settings: Vec<ConfigurationOptionSetting> = self
            .options
            .0
            .iter()
            .map(|o| {
                ConfigurationOptionSetting::builder()
                    .namespace(&o.namespace)
                    .option_name(&o.option_name)
                    .set_resource_name(o.resource_name.clone())
                    .value(&o.value)
                    .build()
            })
            .collect();
        let update = update::Update {
            application: &self.application,
            environment: &self.target.name,
            label,
            options: settings,
            timeout: self.timeout,
            recovery: self.recovery,
            allow_yellow: self.allow_yellow,
            no_wait: self.no_wait,
        };
        update.run(ctx, clients).await
    }

    /// Creates the version from the uploaded bundle; then waits until Elastic Beanstalk lists
    /// it (it is eventually consistent).
    async fn create_version(
        &self,
        ctx: &Context,
        clients: &Clients,
        bucket: &str,
        bundle: &Bundle,
        deadline: Deadline,
    ) -> anyhow::Result<()> {
        let label = self.label();
        let doing = format!("create application version {label}");
        let description = format!("{} by cargo xtask deploy", self.build.image);
        let created = clients
            .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
                let source = S3Location::builder().s3_bucket(bucket).s3_key(&bundle.key).build();
                clients
                    .eb
                    .create_application_version()
                    .application_name(&self.application)
                    .version_label(label)
                    .description(&description)
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
                Some(_)
                    if self.existing_version(ctx, clients, bucket, bundle, deadline).await? => {}
                _ => return Err(err),
            }
        }
        let started = Instant::now();
        while !self.existing_version(ctx, clients, bucket, bundle, deadline).await? {
            if started.elapsed() > VERSION_VISIBLE_WITHIN {
                bail!(
                    "application version {label} was created but is still not listed after {}s",
                    VERSION_VISIBLE_WITHIN.as_secs()
                );
            }
            wait::pause(ctx, Duration::from_secs(1), "waiting for the version to be listed")
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
        clients: &Clients,
        bucket: &str,
        bundle: &Bundle,
        deadline: Deadline,
    ) -> anyhow::Result<bool> {
        let label = self.label();
        let doing = format!("describe application version {label}");
        let described = clients
            .call(ctx, Service::ElasticBeanstalk, &doing, deadline, || {
                clients
                    .eb
                    .describe_application_versions()
                    .application_name(&self.application)
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
        let their_digest = object_digest(ctx, clients, their_bucket, their_key, deadline).await?;
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
    clients: &Clients,
    bucket: &str,
    key: &str,
    deadline: Deadline,
) -> anyhow::Result<Option<String>> {
    let doing = format!("read s3://{bucket}/{key} to compare it with this deploy's bundle");
    let object = clients
        .call(ctx, Service::S3, &doing, deadline, || {
            clients.s3.get_object().bucket(bucket).key(key).send()
        })
        .await?;
    if object.content_length().is_some_and(|size| size > MAX_COMPARED_BUNDLE) {
        return Ok(None);
    }
    let bytes = object.body.collect().await.with_context(|| doing.clone())?.into_bytes();
    Ok(Some(sha256(&bytes)))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn render(
    template: &str,
    bucket: &str,
    build: &build::Plan,
    auth_key: &str,
) -> anyhow::Result<Dockerrun> {
    let values = dockerrun::Values {
        bucket: bucket.to_owned(),
        image: build.image.repository.clone(),
        tag: build.image.tag.clone(),
        auth_key: auth_key.to_owned(),
    };
    dockerrun::render(template, &values).context(dockerrun::TEMPLATE)
}

/// `base64(user:password)`, as a docker config carries it: as secret as the password.
fn registry_token(credentials: &Credentials) -> Secret {
    let pair = format!("{}:{}", credentials.username, credentials.password.expose());
    Secret::new(base64::engine::general_purpose::STANDARD.encode(pair))
}

/// The docker config Elastic Beanstalk reads to pull from the private registry.
fn auth_file(registry: &str, token: &Secret) -> Secret {
    let key = crate::registry::server_key(registry);
    let json = serde_json::json!({ "auths": { key: { "auth": token.expose() } } });
    Secret::new(json.to_string())
}

async fn storage_location(
    ctx: &Context,
    clients: &Clients,
    deadline: Deadline,
) -> anyhow::Result<String> {
    let doing = "find the Elastic Beanstalk bucket (CreateStorageLocation)";
    let created = clients
        .call(ctx, Service::ElasticBeanstalk, doing, deadline, || {
            clients.eb.create_storage_location().send()
        })
        .await?;
    created.s3_bucket().map(str::to_owned).context(
        "CreateStorageLocation named no bucket: set `bucket` in [workspace.metadata.deploy]",
    )
}

async fn upload(
    ctx: &Context,
    clients: &Clients,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    what: &str,
    deadline: Deadline,
) -> anyhow::Result<()> {
    ctx.ui.info(format_args!("put s3://{bucket}/{key} ({what}, encrypted)"));
    let doing =
        format!("upload the {what} to s3://{bucket}/{key} (no application version was created)");
    clients
        .call(ctx, Service::S3, &doing, deadline, || {
            clients
                .s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .server_side_encryption(ServerSideEncryption::Aes256)
                .body(ByteStream::from(body.clone()))
                .send()
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_file_is_a_docker_config() {
        let credentials =
            Credentials { username: "acme+deployer".into(), password: Secret::new("pw") };
        let token = registry_token(&credentials);
        let file = auth_file("quay.io", &token);
        let json: serde_json::Value = serde_json::from_str(file.expose()).unwrap();
        assert_eq!(json["auths"]["quay.io"]["auth"], "YWNtZStkZXBsb3llcjpwdw==");
        let hub = auth_file("docker.io", &token);
        assert!(hub.expose().contains("https://index.docker.io/v1/"));
        assert_eq!(format!("{file:?} {token:?}"), "*** ***");
    }

    #[test]
    fn a_bundle_key_carries_the_digest_of_its_bytes() {
        let values = dockerrun::Values {
            bucket: "b".into(),
            image: "quay.io/acme/web".into(),
            tag: "v1".into(),
            auth_key: "k".into(),
        };
        let template = r#"{"AWSEBDockerrunVersion": "1", "Image": {"Name": "<IMAGE>:<TAG>"},
            "Ports": [{"ContainerPort": "80"}]}"#;
        let bundle = Bundle::new("acme-web", "v1", &dockerrun::render(template, &values).unwrap());
        assert_eq!(bundle.digest, sha256(&bundle.bytes));
        assert_eq!(bundle.key, format!("acme-web/deploy/v1/{}/Dockerrun.aws.json", bundle.digest));
        let other = template.replace("\"80\"", "\"8080\"");
        let changed = Bundle::new("acme-web", "v1", &dockerrun::render(&other, &values).unwrap());
        assert_ne!(changed.key, bundle.key, "other bytes, another key: nothing is overwritten");
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
