//! Deploy settings: `[workspace.metadata.deploy]` in the root `Cargo.toml`, each key
//! overridable by an environment variable. Unknown keys are errors (a typo must not
//! silently fall back to a default).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::Env;
use crate::aws;
use crate::config::ebconfig::EbConfig;

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
    /// How `--push` logs in (`registry`, env `DEPLOY_REGISTRY`); `None`: by the image's host.
    pub registry: Option<RegistryKind>,
    /// Create a missing ECR repository (`create_repository`, env `DEPLOY_CREATE_REPOSITORY`).
    pub create_repository: bool,
    /// Named environments: `staging = { name = "acme-web-stg", branch = "release/stg" }`.
    pub environments: BTreeMap<String, Environment>,
    /// The AWS profile of `.elasticbeanstalk/config.yml` (`AWS_PROFILE` is the SDK's own).
    pub profile: Option<String>,
    /// `branch-defaults` of `.elasticbeanstalk/config.yml`: branch → environment name.
    pub branch_defaults: BTreeMap<String, String>,
}

/// How a registry is logged in to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    /// Amazon ECR: a token from `GetAuthorizationToken`, through the AWS credential chain.
    Ecr,
    /// A user and password: `REGISTRY_USERNAME` and `REGISTRY_PASSWORD`.
    Basic,
}

/// The environment a deploy goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The key under `environments`, when the environment is named there.
    pub key: Option<String>,
    /// The Elastic Beanstalk environment name.
    pub name: String,
}

impl Target {
    /// What `$DEPLOY_ENV` means in the options template: the key, else the EB name.
    pub fn deploy_env(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The Elastic Beanstalk environment name.
    pub name: String,
    /// The git branch that deploys to it when `deploy` is given no environment.
    pub branch: Option<String>,
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
    registry: Option<String>,
    create_repository: Option<bool>,
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
}

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

    /// The environment to deploy to: `arg` as a key of `environments`, else as an EB
    /// environment name; without `arg`, the environment mapped to `branch` (asked only then).
    pub fn target(
        &self,
        arg: Option<&str>,
        branch: impl FnOnce() -> anyhow::Result<Option<String>>,
    ) -> anyhow::Result<Target> {
        if let Some(arg) = arg {
            if let Some(env) = self.environments.get(arg) {
                return Ok(Target { key: Some(arg.to_owned()), name: env.name.clone() });
            }
            let by_name = self.environments.iter().find(|(_, env)| env.name == arg);
            return Ok(Target { key: by_name.map(|(key, _)| key.clone()), name: arg.to_owned() });
        }
        let Some(branch) = branch()? else {
            bail!(
                "no environment given and no branch checked out (detached HEAD): pass ENV, e.g. `{}`",
                self.example()
            );
        };
        if let Some((key, env)) =
            self.environments.iter().find(|(_, env)| env.branch.as_deref() == Some(&branch))
        {
            return Ok(Target { key: Some(key.clone()), name: env.name.clone() });
        }
        if let Some(name) = self.branch_defaults.get(&branch) {
            return Ok(Target { key: None, name: name.clone() });
        }
        let mut mappings: Vec<String> = self
            .environments
            .iter()
            .filter_map(|(key, env)| {
                env.branch.as_ref().map(|b| format!("{b} -> {key} ({})", env.name))
            })
            .collect();
        mappings.extend(self.branch_defaults.iter().map(|(b, name)| format!("{b} -> {name}")));
        let known = if mappings.is_empty() { "none".to_owned() } else { mappings.join(", ") };
        bail!(
            "branch {branch:?} deploys nowhere: pass ENV, or map the branch in \
             [workspace.metadata.deploy.environments] (mapped branches: {known})"
        )
    }

    fn example(&self) -> String {
        match self.environments.keys().next() {
            Some(key) => format!("cargo xtask deploy {key}"),
            None => "cargo xtask deploy my-eb-env".to_owned(),
        }
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
        let create_repository = match env.get("DEPLOY_CREATE_REPOSITORY") {
            None => table.create_repository.unwrap_or(false),
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                bail!("DEPLOY_CREATE_REPOSITORY is {other:?}: use true or false")
            }
        };
        Ok(Settings {
            application: pick("EB_APPLICATION", table.application),
            region: pick("AWS_REGION", table.region),
            image: pick("DEPLOY_IMAGE", table.image),
            bucket: pick("EB_BUCKET", table.bucket),
            registry,
            create_repository,
            environments: table.environments,
            profile: None,
            branch_defaults: BTreeMap::new(),
        })
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
    fn environments_resolve_by_key_name_or_branch() {
        let settings = Settings::parse(MANIFEST, &Env::default()).unwrap();
        let by_key = settings.target(Some("staging"), || unreachable!()).unwrap();
        assert_eq!(
            (by_key.key.as_deref(), by_key.name.as_str()),
            (Some("staging"), "acme-web-stg")
        );
        let by_name = settings.target(Some("acme-web-stg"), || unreachable!()).unwrap();
        assert_eq!(by_name.deploy_env(), "staging");
        let raw = settings.target(Some("other-env"), || unreachable!()).unwrap();
        assert_eq!((raw.key, raw.name.as_str()), (None, "other-env"));
        let by_branch = settings.target(None, || Ok(Some("release/stg".into()))).unwrap();
        assert_eq!(by_branch.name, "acme-web-stg");
    }

    #[test]
    fn an_unmapped_branch_lists_the_mappings() {
        let settings = Settings::parse(MANIFEST, &Env::default()).unwrap();
        let err = settings.target(None, || Ok(Some("feature/x".into()))).unwrap_err().to_string();
        assert!(err.starts_with("branch \"feature/x\" deploys nowhere: pass ENV"), "{err}");
        assert!(err.contains("release/stg -> staging (acme-web-stg)"), "{err}");
        let err = settings.target(None, || Ok(None)).unwrap_err().to_string();
        assert!(err.contains("cargo xtask deploy staging"), "{err}");
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
