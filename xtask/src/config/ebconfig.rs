//! `.elasticbeanstalk/config.yml`, as written by `eb init`: teams that already use the EB CLI
//! keep it, and its application, region, profile and branch mappings fill what
//! `[workspace.metadata.deploy]` leaves out. Read with a YAML parser (serde_norway); the
//! many keys the EB CLI writes that we do not use are ignored, a malformed file is refused
//! with its line.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

pub const PATH: &str = ".elasticbeanstalk/config.yml";

/// What the EB CLI's config says, where it says it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EbConfig {
    pub application_name: Option<String>,
    pub default_region: Option<String>,
    pub profile: Option<String>,
    /// `branch-defaults.<branch>.environment`.
    pub branch_environments: BTreeMap<String, String>,
}

/// The file as the EB CLI writes it (`ebcli/core/fileoperations.py`), the parts we read.
#[derive(Default, Deserialize)]
struct File {
    #[serde(default)]
    global: Option<Global>,
    #[serde(default, rename = "branch-defaults")]
    branch_defaults: Option<BTreeMap<String, Option<BranchDefault>>>,
}

#[derive(Default, Deserialize)]
struct Global {
    application_name: Option<String>,
    default_region: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize)]
struct BranchDefault {
    environment: Option<String>,
}

impl EbConfig {
    /// Reads `root/.elasticbeanstalk/config.yml`; a missing file is an empty config.
    pub fn load(root: &Path) -> anyhow::Result<EbConfig> {
        let path = root.join(PATH);
        match fs::read_to_string(&path) {
            Ok(text) => EbConfig::parse(&text).with_context(|| PATH.to_owned()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(EbConfig::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<EbConfig> {
        let file: Option<File> = serde_norway::from_str(text)?;
        let file = file.unwrap_or_default();
        let global = file.global.unwrap_or_default();
        let branch_environments = file
            .branch_defaults
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(branch, d)| Some((branch, d?.environment?)))
            .collect();
        Ok(EbConfig {
            application_name: global.application_name,
            default_region: global.default_region,
            profile: global.profile,
            branch_environments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EB_INIT: &str = r#"branch-defaults:
  release/stg:
    environment: acme-web-stg
    group_suffix: null
  'release/prd':
    environment: "acme-web-prd"
global:
  application_name: acme-web   # from eb init
  branch: null
  default_ec2_keyname: null
  default_platform: Docker running on 64bit Amazon Linux 2023
  default_region: eu-west-1
  include_git_submodules: true
  instance_profile: null
  profile: eb-admin
  repository: null
  sc: git
  workspace_type: Application
"#;

    #[test]
    fn reads_what_eb_init_writes() {
        let config = EbConfig::parse(EB_INIT).unwrap();
        assert_eq!(config.application_name.as_deref(), Some("acme-web"));
        assert_eq!(config.default_region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.profile.as_deref(), Some("eb-admin"));
        assert_eq!(config.branch_environments["release/stg"], "acme-web-stg");
        assert_eq!(config.branch_environments["release/prd"], "acme-web-prd");
    }

    #[test]
    fn a_malformed_line_is_named() {
        let err = EbConfig::parse("global:\n  application_name acme\n  region: x\n").unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("line 2"), "{err}");
        let err = format!("{:#}", EbConfig::parse("global: [a, b]\n").unwrap_err());
        assert!(err.contains("global"), "{err}");
    }
}
