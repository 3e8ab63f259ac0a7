//! Deploy settings: `[workspace.metadata.deploy]` in the root `Cargo.toml`, each key
//! overridable by an environment variable. Unknown keys are errors (a typo must not
//! silently fall back to a default).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::aws;
use crate::config::ebconfig::EbConfig;
use crate::config::launch::{Environment, Health, Launch, LoadBalancer};
use crate::config::pairs::PairEntry;
use crate::run::Env;

/// The settings after environment overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Elastic Beanstalk application name (`application`, env `EB_APPLICATION`).
    pub application: Option<String>,
    /// AWS region (`region`, env `AWS_REGION`).
    pub region: Option<String>,
    /// Image repository without tag (`image`, env `DEPLOY_IMAGE`).
    pub image: Option<String>,
    /// S3 bucket for deploy files (`bucket`, env `EB_BUCKET`).
    pub bucket: Option<String>,
    /// The directory of `.ebextensions/` and `.platform/` that go into each version's bundle
    /// (`bundle_dir`, env `DEPLOY_BUNDLE_DIR`); `None`: `deploy`, if it exists.
    pub bundle_dir: Option<String>,
    /// How `--push` logs in (`registry`, env `DEPLOY_REGISTRY`); `None`: by the image's host.
    pub registry: Option<RegistryKind>,
    /// Create a missing ECR repository (`create_repository`, env `DEPLOY_CREATE_REPOSITORY`).
    pub create_repository: bool,
    /// Named environments: `staging = { name = "acme-web-stg", branch = "release/stg" }`.
    pub environments: BTreeMap<String, Environment>,
    /// How `env create` makes an environment (each may override its size).
    pub launch: Launch,
    /// Branches whose environments `env terminate` refuses without `--force`
    /// (`production_branches`, env `DEPLOY_PRODUCTION_BRANCHES`, comma-separated).
    pub production_branches: Vec<String>,
    /// The AWS profile of `.elasticbeanstalk/config.yml` (`AWS_PROFILE` is the SDK's own).
    pub profile: Option<String>,
    /// `branch-defaults` of `.elasticbeanstalk/config.yml`: branch → environment name.
    pub branch_defaults: BTreeMap<String, String>,
    /// Blue/green pairs: `[blue_green.production] environments = [A, B], cname = "…"`.
    pub blue_green: BTreeMap<String, PairEntry>,
}

/// How a registry is logged in to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    /// Amazon ECR: a token from `GetAuthorizationToken`, through the AWS credential chain.
    Ecr,
    /// A user and password: `REGISTRY_USERNAME` and `REGISTRY_PASSWORD`.
    Basic,
}

#[derive(Deserialize)]
struct Manifest {
    workspace: Option<Workspace>,
}

#[derive(Deserialize)]
struct Workspace {
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    deploy: Option<Table>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    application: Option<String>,
    region: Option<String>,
    image: Option<String>,
    bucket: Option<String>,
    bundle_dir: Option<String>,
    registry: Option<String>,
    create_repository: Option<bool>,
    platform: Option<String>,
    instance_type: Option<String>,
    instance_profile: Option<String>,
    service_role: Option<String>,
    single_instance: Option<bool>,
    health: Option<String>,
    load_balancer: Option<String>,
    production_branches: Option<Vec<String>>,
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
    #[serde(default)]
    blue_green: BTreeMap<String, PairEntry>,
}

/// The branches taken for production when `production_branches` is not set.
pub const PRODUCTION_BRANCHES: [&str; 2] = ["main", "master"];

impl Settings {
    /// Reads `root/Cargo.toml`, applies the environment's overrides, then fills what is still
    /// missing from `.elasticbeanstalk/config.yml` when there is one.
    pub fn load(root: &Path, env: &Env) -> anyhow::Result<Settings> {
        let path = root.join("Cargo.toml");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let settings =
            Settings::parse(&text, env).with_context(|| format!("{}", path.display()))?;
        Ok(settings.with_eb_config(EbConfig::load(root)?))
    }

    pub fn with_eb_config(mut self, eb: EbConfig) -> Settings {
        self.application = self.application.or(eb.application_name);
        self.region = self.region.or(eb.default_region);
        self.profile = self.profile.or(eb.profile);
        self.branch_defaults = eb.branch_environments;
        self
    }

    pub fn application(&self) -> anyhow::Result<&str> {
        self.application.as_deref().context(
            "no Elastic Beanstalk application configured: set `application` in \
             [workspace.metadata.deploy] of Cargo.toml, or EB_APPLICATION",
        )
    }

    pub fn parse(manifest: &str, env: &Env) -> anyhow::Result<Settings> {
        let manifest: Manifest = toml::from_str(manifest)
            .map_err(|err| anyhow::anyhow!("[workspace.metadata.deploy]: {}", one_line(&err)))?;
        let table =
            manifest.workspace.and_then(|w| w.metadata).and_then(|m| m.deploy).unwrap_or_default();
        let pick = |var: &str, value: Option<String>| {
            env.get(var).map(str::to_owned).or(value).filter(|v| !v.trim().is_empty())
        };
        let registry = match pick("DEPLOY_REGISTRY", table.registry).as_deref() {
            None => None,
            Some("ecr") => Some(RegistryKind::Ecr),
            Some("basic") => Some(RegistryKind::Basic),
            Some(other) => bail!(
                "registry is {other:?}: use \"ecr\" (Amazon ECR, a token from your AWS \
                 credentials) or \"basic\" (REGISTRY_USERNAME and REGISTRY_PASSWORD), or leave \
                 it unset for the image's host to decide (`registry` in \
                 [workspace.metadata.deploy], or DEPLOY_REGISTRY)"
            ),
        };
        let create_repository =
            switch(env, "DEPLOY_CREATE_REPOSITORY", table.create_repository)?.unwrap_or(false);
        let production_branches = match env.get("DEPLOY_PRODUCTION_BRANCHES") {
            Some(list) => list.split(',').map(|b| b.trim().to_owned()).collect(),
            None => table
                .production_branches
                .unwrap_or_else(|| PRODUCTION_BRANCHES.iter().map(|b| (*b).to_owned()).collect()),
        };
        let production_branches: Vec<String> =
            production_branches.into_iter().filter(|b| !b.is_empty()).collect();
        let launch = Launch {
            platform: pick("EB_PLATFORM", table.platform),
            instance_type: pick("EB_INSTANCE_TYPE", table.instance_type),
            instance_profile: pick("EB_INSTANCE_PROFILE", table.instance_profile)
                .unwrap_or_else(|| Launch::DEFAULT_INSTANCE_PROFILE.to_owned()),
            service_role: pick("EB_SERVICE_ROLE", table.service_role)
                .unwrap_or_else(|| Launch::DEFAULT_SERVICE_ROLE.to_owned()),
            single_instance: switch(env, "EB_SINGLE_INSTANCE", table.single_instance)?
                .unwrap_or(false),
            health: match pick("EB_HEALTH", table.health).as_deref() {
                None | Some("enhanced") => Health::Enhanced,
                Some("basic") => Health::Basic,
                Some(other) => bail!(
                    "health is {other:?}: use \"enhanced\" (the default: each instance says what \
                     it runs, which the verdict of a deploy rests on) or \"basic\" (`health` in \
                     [workspace.metadata.deploy], or EB_HEALTH)"
                ),
            },
            load_balancer: match pick("EB_LOAD_BALANCER", table.load_balancer).as_deref() {
                None | Some("application") => LoadBalancer::Application,
                Some("network") => LoadBalancer::Network,
                Some("classic") => LoadBalancer::Classic,
                Some(other) => bail!(
                    "load_balancer is {other:?}: use \"application\" (the default), \"network\" \
                     or \"classic\" (`load_balancer` in [workspace.metadata.deploy], or \
                     EB_LOAD_BALANCER)"
                ),
            },
            cname: None,
        };
        let settings = Settings {
            application: pick("EB_APPLICATION", table.application),
            region: pick("AWS_REGION", table.region),
            image: pick("DEPLOY_IMAGE", table.image),
            bucket: pick("EB_BUCKET", table.bucket),
            bundle_dir: pick("DEPLOY_BUNDLE_DIR", table.bundle_dir)
                .map(|d| d.trim_end_matches('/').to_owned()),
            registry,
            create_repository,
            environments: table.environments,
            launch,
            production_branches,
            profile: None,
            branch_defaults: BTreeMap::new(),
            blue_green: table.blue_green,
        };
        settings.check_pairs()?;
        Ok(settings)
    }

    /// Where the AWS clients point; `ecr_region` when the registry is in another region.
    pub fn aws(&self) -> aws::Setup<'_> {
        aws::Setup {
            region: self.region.as_deref(),
            profile: self.profile.as_deref(),
            ecr_region: None,
        }
    }

    /// The image repository, or an error that says where to set it.
    pub fn image(&self) -> anyhow::Result<&str> {
        match self.image.as_deref() {
            Some(image) => Ok(image),
            None => bail!(
                "no image repository configured: set `image` in [workspace.metadata.deploy] \
                 of Cargo.toml, or DEPLOY_IMAGE (e.g. quay.io/acme/web)"
            ),
        }
    }
}

/// A true/false setting: the environment variable `var`, else the table's value.
fn switch(env: &Env, var: &str, table: Option<bool>) -> anyhow::Result<Option<bool>> {
    match env.get(var) {
        None => Ok(table),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => bail!("{var} is {other:?}: use true or false"),
    }
}

/// toml's errors span several lines (a source excerpt); a CI log wants one.
fn one_line(err: &toml::de::Error) -> String {
    let message = err.message().trim();
    match err.span() {
        Some(span) => format!("{message} (at byte {})", span.start),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[workspace]
members = ["web"]

[workspace.metadata.deploy]
application = "acme-web"
region = "eu-west-1"
image = "quay.io/acme/web"

[workspace.metadata.deploy.environments]
staging = { name = "acme-web-stg", branch = "release/stg" }
"#;

    #[test]
    fn reads_the_table_and_lets_env_override_it() {
        let settings = Settings::parse(MANIFEST, &Env::default()).unwrap();
        assert_eq!(settings.image.as_deref(), Some("quay.io/acme/web"));
        assert_eq!(settings.environments["staging"].branch.as_deref(), Some("release/stg"));
        let env = Env::default().with("DEPLOY_IMAGE", "127.0.0.1:5000/web");
        let settings = Settings::parse(MANIFEST, &env).unwrap();
        assert_eq!(settings.image().unwrap(), "127.0.0.1:5000/web");
    }

    #[test]
    fn an_empty_image_is_an_error_naming_both_places() {
        let env = Env::default().with("DEPLOY_IMAGE", " ");
        let manifest = MANIFEST.replace("quay.io/acme/web", "");
        let err = Settings::parse(&manifest, &env).unwrap().image().unwrap_err().to_string();
        assert!(err.contains("[workspace.metadata.deploy]") && err.contains("DEPLOY_IMAGE"));
    }

    #[test]
    fn the_eb_cli_config_fills_what_the_table_lacks() {
        let manifest = MANIFEST.replace("application = \"acme-web\"", "");
        let eb = EbConfig {
            application_name: Some("from-eb".into()),
            default_region: Some("us-east-1".into()),
            profile: Some("eb-admin".into()),
            branch_environments: [("main".to_owned(), "main-env".to_owned())].into(),
        };
        let settings = Settings::parse(&manifest, &Env::default()).unwrap().with_eb_config(eb);
        assert_eq!(settings.application().unwrap(), "from-eb");
        assert_eq!(settings.region.as_deref(), Some("eu-west-1"), "the table wins");
        assert_eq!(settings.profile.as_deref(), Some("eb-admin"));
        assert_eq!(settings.target(None, || Ok(Some("main".into()))).unwrap().name, "main-env");
    }

    #[test]
    fn the_registry_kind_is_ecr_basic_or_left_to_the_host() {
        let parse = |manifest: &str, env: Env| Settings::parse(manifest, &env);
        assert_eq!(parse(MANIFEST, Env::default()).unwrap().registry, None);
        let ecr = MANIFEST.replace(
            "[workspace.metadata.deploy]\n",
            "[workspace.metadata.deploy]\nregistry = \"ecr\"\ncreate_repository = true\n",
        );
        let settings = parse(&ecr, Env::default()).unwrap();
        assert_eq!(
            (settings.registry, settings.create_repository),
            (Some(RegistryKind::Ecr), true)
        );
        let env = Env::default()
            .with("DEPLOY_REGISTRY", "basic")
            .with("DEPLOY_CREATE_REPOSITORY", "false");
        let settings = parse(&ecr, env).unwrap();
        assert_eq!(
            (settings.registry, settings.create_repository),
            (Some(RegistryKind::Basic), false)
        );
        let err = parse(MANIFEST, Env::default().with("DEPLOY_REGISTRY", "ECR "))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("registry is \"ECR \": use \"ecr\""), "{err}");
        let err = parse(MANIFEST, Env::default().with("DEPLOY_CREATE_REPOSITORY", "yes"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "DEPLOY_CREATE_REPOSITORY is \"yes\": use true or false");
    }

    #[test]
    fn a_misspelt_key_is_an_error() {
        let manifest = MANIFEST.replace("image =", "imgae =");
        let err = format!("{:#}", Settings::parse(&manifest, &Env::default()).unwrap_err());
        assert!(err.contains("imgae"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
