//! Deploy settings: `[workspace.metadata.deploy]` in the root `Cargo.toml`, each key
//! overridable by an environment variable. Unknown keys are errors (a typo must not
//! silently fall back to a default).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::Env;

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
    /// Named environments: `staging = { name = "acme-web-stg", branch = "release/stg" }`.
    pub environments: BTreeMap<String, Environment>,
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
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
}

impl Settings {
    /// Reads `root/Cargo.toml` and applies the environment's overrides.
    pub fn load(root: &Path, env: &Env) -> anyhow::Result<Settings> {
        let path = root.join("Cargo.toml");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Settings::parse(&text, env).with_context(|| format!("{}", path.display()))
    }

    pub fn parse(manifest: &str, env: &Env) -> anyhow::Result<Settings> {
        let manifest: Manifest = toml::from_str(manifest)
            .map_err(|err| anyhow::anyhow!("[workspace.metadata.deploy]: {}", one_line(&err)))?;
        let table =
            manifest.workspace.and_then(|w| w.metadata).and_then(|m| m.deploy).unwrap_or_default();
        let pick = |var: &str, value: Option<String>| {
            env.get(var).map(str::to_owned).or(value).filter(|v| !v.trim().is_empty())
        };
        Ok(Settings {
            application: pick("EB_APPLICATION", table.application),
            region: pick("AWS_REGION", table.region),
            image: pick("DEPLOY_IMAGE", table.image),
            bucket: pick("EB_BUCKET", table.bucket),
            environments: table.environments,
        })
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
    fn a_misspelt_key_is_an_error() {
        let manifest = MANIFEST.replace("image =", "imgae =");
        let err = format!("{:#}", Settings::parse(&manifest, &Env::default()).unwrap_err());
        assert!(err.contains("imgae"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
