//! `cargo xtask deploy [ENV]`: release one commit to an Elastic Beanstalk environment with a
//! single environment update, and wait until it is really deployed.
//!
//! Steps, each decided before the first runs (`--dry-run` prints them): build and push the
//! image unless the registry has it → the S3 bucket → the registry auth file to S3
//! (encrypted) → the rendered Dockerrun to S3 under the tag's prefix → the application
//! version (reused when it is this very bundle) → wait for the environment to be Ready →
//! one UpdateEnvironment with the version *and* the option settings → wait for Ready, our
//! version and Green health, streaming events.

use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_elasticbeanstalk::types::{ConfigurationOptionSetting, S3Location};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use base64::Engine as _;

use crate::aws::{Clients, fail};
use crate::dockerrun::{self, Dockerrun};
use crate::options::{self, Options};
use crate::registry::Credentials;
use crate::secret::Secret;
use crate::settings::{Settings, Target};
use crate::wait::{self, Stats};
use crate::{Context, Failure, build, flags, git, local, update};

/// Default for `--timeout`: how long the environment may take to be Ready, and then to
/// finish the update.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// How long a new application version may take to become visible.
const VERSION_VISIBLE_WITHIN: Duration = Duration::from_secs(60);
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
    pub dockerrun_key: String,
    pub template: String,
    pub options: Options,
    /// `{"auths": {REGISTRY: {"auth": base64(user:password)}}}`
    pub auth_file: Secret,
    pub timeout: Duration,
    pub allow_yellow: bool,
    pub no_wait: bool,
}

pub fn run(ctx: &Context, flags: &flags::Deploy) -> anyhow::Result<()> {
    if flags.local {
        return local::run(ctx, flags);
    }
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let mut plan = Plan::new(ctx, settings, flags)?;
    if flags.dry_run {
        plan.print(ctx);
        return Ok(());
    }
    let secrets: Vec<String> =
        plan.options.secret_values().map(str::to_owned).chain([registry_password(&plan)]).collect();
    plan.execute(ctx).map_err(|err| scrub(err, &secrets))
}

impl Plan {
    pub fn new(ctx: &Context, settings: Settings, flags: &flags::Deploy) -> anyhow::Result<Plan> {
        let build = build::Plan::new(ctx, &settings, &flags.build(true))?;
        let application = settings.application()?.to_owned();
        let target =
            settings.target(flags.env.as_deref(), || match ctx.env.get("CIRCLE_BRANCH") {
                Some(branch) => Ok(Some(branch.to_owned())),
                None => git::branch(ctx),
            })?;
        let tag = build.image.tag.clone();
        let dockerrun_key = format!("{application}/deploy/{tag}/Dockerrun.aws.json");
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
        let credentials = build
            .session
            .as_ref()
            .map(|session| &session.credentials)
            .context("internal error: a deploy always pushes")?;
        let auth_file = auth_file(build.image.registry(), credentials);
        Ok(Plan {
            application,
            target,
            bucket,
            auth_key,
            dockerrun_key,
            template,
            options,
            auth_file,
            timeout: flags.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
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
    pub fn print(&self, ctx: &Context) {
        let ui = &ctx.ui;
        ui.step(format_args!(
            "plan: {} to {} of {} (dry run: nothing is run)",
            self.build.image, self.target.name, self.application
        ));
        self.build.print_steps(ctx);
        let bucket = self.bucket.as_deref().unwrap_or(BUCKET_TO_BE_CREATED);
        match &self.bucket {
            Some(bucket) => ui.info(format_args!("bucket {bucket} (setting)")),
            None => {
                ui.info("bucket: the account's Elastic Beanstalk bucket (CreateStorageLocation)")
            }
        }
        ui.info(format_args!(
            "upload the registry auth file, encrypted (SSE AES256): s3://{bucket}/{}",
            self.auth_key
        ));
        ui.info(format_args!(
            "upload the rendered Dockerrun: s3://{bucket}/{}",
            self.dockerrun_key
        ));
        if let Ok(rendered) = render(&self.template, bucket, &self.build, &self.auth_key) {
            for line in String::from_utf8_lossy(&rendered.to_bytes()).lines() {
                ui.info(format_args!("  {line}"));
            }
        }
        ui.info(format_args!(
            "application version {} of {} from that bundle (reused when it exists with it)",
            self.label(),
            self.application
        ));
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
                "then wait for Ready, version {}, health Green{} (up to {}s)",
                self.label(),
                if self.allow_yellow { " or Yellow" } else { "" },
                self.timeout.as_secs()
            ));
        }
    }

    pub fn execute(&mut self, ctx: &Context) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start the async runtime")?;
        let clients = runtime.block_on(Clients::new(&self.settings, &ctx.env))?;
        // A wrong environment name fails now, not after a build and a push.
        let environment = &self.target.name;
        let mut stats = Stats::default();
        runtime
            .block_on(wait::describe(&clients.eb, &self.application, environment, &mut stats))?
            .map_err(|err| fail(format!("describe environment {environment}"), err))?;
        self.build.execute(ctx)?;
        runtime.block_on(self.release(ctx, &clients, stats))
    }

    async fn release(
        &self,
        ctx: &Context,
        clients: &Clients,
        mut stats: Stats,
    ) -> anyhow::Result<()> {
        let label = self.label();

        ctx.ui.step("upload the deploy files to S3");
        let bucket = match &self.bucket {
            Some(bucket) => bucket.clone(),
            None => storage_location(clients).await?,
        };
        let dockerrun = render(&self.template, &bucket, &self.build, &self.auth_key)?;
        let auth = self.auth_file.expose().as_bytes().to_vec();
        upload(ctx, clients, &bucket, &self.auth_key, auth, "registry auth file").await?;
        upload(ctx, clients, &bucket, &self.dockerrun_key, dockerrun.to_bytes(), "Dockerrun")
            .await?;

        ctx.ui.step(format_args!("application version {label}"));
        self.application_version(ctx, clients, &bucket).await?;

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
            allow_yellow: self.allow_yellow,
            no_wait: self.no_wait,
        };
        update.run(ctx, &clients.eb, &mut stats).await?;
        Ok(())
    }

    /// Creates the version, or reuses it when it exists with this very bundle; then waits
    /// until Elastic Beanstalk lists it (it is eventually consistent).
    async fn application_version(
        &self,
        ctx: &Context,
        clients: &Clients,
        bucket: &str,
    ) -> anyhow::Result<()> {
        let label = self.label();
        if self.existing_version(clients, bucket).await? {
            ctx.ui.info(format_args!("version {label} exists with this bundle: reused"));
            return Ok(());
        }
        let bundle = S3Location::builder().s3_bucket(bucket).s3_key(&self.dockerrun_key).build();
        let created = clients
            .eb
            .create_application_version()
            .application_name(&self.application)
            .version_label(label)
            .description(format!("{} by cargo xtask deploy", self.build.image))
            .source_bundle(bundle)
            .send()
            .await;
        if let Err(err) = created {
            use aws_sdk_elasticbeanstalk::operation::create_application_version::CreateApplicationVersionError as E;
            match err.as_service_error() {
                Some(E::TooManyApplicationVersionsException(_)) => bail!(
                    "Elastic Beanstalk's quota of application versions is reached \
                     (TooManyApplicationVersions): delete old ones with \
                     `cargo xtask versions prune --keep 200`, then deploy again"
                ),
                // Someone created it since we looked (a re-run racing us): judge it as ours.
                _ if self.existing_version(clients, bucket).await? => {}
                _ => return Err(fail(format!("create application version {label}"), err)),
            }
        }
        let started = std::time::Instant::now();
        while !self.existing_version(clients, bucket).await? {
            if started.elapsed() > VERSION_VISIBLE_WITHIN {
                bail!(
                    "application version {label} was created but is still not listed after {}s",
                    VERSION_VISIBLE_WITHIN.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        ctx.ui.info(format_args!("created version {label}"));
        Ok(())
    }

    /// Whether the version exists with our bundle; an error when it exists with another.
    async fn existing_version(&self, clients: &Clients, bucket: &str) -> anyhow::Result<bool> {
        let label = self.label();
        let described = clients
            .eb
            .describe_application_versions()
            .application_name(&self.application)
            .version_labels(label)
            .send()
            .await
            .map_err(|err| fail(format!("describe application version {label}"), err))?;
        let Some(version) =
            described.application_versions().iter().find(|v| v.version_label() == Some(label))
        else {
            return Ok(false);
        };
        let bundle = version.source_bundle();
        let theirs = (bundle.and_then(|b| b.s3_bucket()), bundle.and_then(|b| b.s3_key()));
        if theirs != (Some(bucket), Some(self.dockerrun_key.as_str())) {
            bail!(
                "application version {label} already exists with another source bundle \
                 (s3://{}/{}), not s3://{bucket}/{}: deploy another tag, or delete that version",
                theirs.0.unwrap_or("?"),
                theirs.1.unwrap_or("?"),
                self.dockerrun_key
            );
        }
        Ok(true)
    }
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

/// The docker config Elastic Beanstalk reads to pull from the private registry.
fn auth_file(registry: &str, credentials: &Credentials) -> Secret {
    let key = if registry == "docker.io" { "https://index.docker.io/v1/" } else { registry };
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials.username,
        credentials.password.expose()
    ));
    let json = serde_json::json!({ "auths": { key: { "auth": token } } });
    Secret::new(json.to_string())
}

async fn storage_location(clients: &Clients) -> anyhow::Result<String> {
    let created =
        clients.eb.create_storage_location().send().await.map_err(|err| {
            fail("find the Elastic Beanstalk bucket (CreateStorageLocation)", err)
        })?;
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
) -> anyhow::Result<()> {
    ctx.ui.info(format_args!("put s3://{bucket}/{key} ({what}, encrypted)"));
    clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|err| {
            fail(
                format!(
                    "upload the {what} to s3://{bucket}/{key} (no application version was created)"
                ),
                err,
            )
        })?;
    Ok(())
}

fn registry_password(plan: &Plan) -> String {
    plan.build
        .session
        .as_ref()
        .map(|s| s.credentials.password.expose().to_owned())
        .unwrap_or_default()
}

/// The error with every secret value replaced by `***`, keeping its exit status.
fn scrub(err: anyhow::Error, secrets: &[String]) -> anyhow::Error {
    let mut text = format!("{err:#}");
    if !secrets.iter().any(|s| !s.is_empty() && text.contains(s.as_str())) {
        return err;
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), crate::secret::MASK);
    }
    match err.downcast_ref::<Failure>() {
        Some(failure) => Failure::new(failure.code, text).into(),
        None => anyhow::anyhow!(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_file_is_a_docker_config() {
        let credentials =
            Credentials { username: "acme+deployer".into(), password: Secret::new("pw") };
        let file = auth_file("quay.io", &credentials);
        let json: serde_json::Value = serde_json::from_str(file.expose()).unwrap();
        assert_eq!(json["auths"]["quay.io"]["auth"], "YWNtZStkZXBsb3llcjpwdw==");
        let hub = auth_file("docker.io", &credentials);
        assert!(hub.expose().contains("https://index.docker.io/v1/"));
        assert_eq!(format!("{file:?}"), "***");
    }

    #[test]
    fn scrubbing_keeps_the_exit_status() {
        let err: anyhow::Error = Failure::new(3, "bad value hunter2").into();
        let scrubbed = scrub(err, &["hunter2".into()]);
        assert_eq!(scrubbed.to_string(), "bad value ***");
        assert_eq!(crate::exit_code(&scrubbed), 3);
    }
}
