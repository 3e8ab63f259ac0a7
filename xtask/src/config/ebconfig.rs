//! `.elasticbeanstalk/config.yml`, as written by `eb init`: teams that already use the EB CLI
//! keep it, and its application, region, profile and branch mappings fill what
//! `[workspace.metadata.deploy]` leaves out.
//!
//! The file is a small YAML document of nested maps with scalar values; this reads exactly
//! that subset and refuses anything else with the line number, rather than guessing.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};

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
        let values = flatten(text)?;
        let get = |path: &[&str]| {
            values
                .iter()
                .find(|(k, _)| k.iter().map(String::as_str).eq(path.iter().copied()))
                .map(|(_, v)| v.clone())
        };
        let mut branch_environments = BTreeMap::new();
        for (key, value) in &values {
            if let [section, branch, field] = key.as_slice()
                && section == "branch-defaults"
                && field == "environment"
            {
                branch_environments.insert(branch.clone(), value.clone());
            }
        }
        Ok(EbConfig {
            application_name: get(&["global", "application_name"]),
            default_region: get(&["global", "default_region"]),
            profile: get(&["global", "profile"]),
            branch_environments,
        })
    }
}

/// Every scalar of a document of nested maps, as (path of keys, value). Null values and
/// empty maps are left out.
fn flatten(text: &str) -> anyhow::Result<Vec<(Vec<String>, String)>> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut values = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        if line.trim().is_empty() || line.trim() == "---" {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        if line.starts_with("- ") || line == "-" {
            // Lists (e.g. `global.include_git_submodules` neighbours) carry nothing we read.
            continue;
        }
        let Some((key, value)) = split_key(line) else {
            bail!("line {}: expected `key: value`, found {line:?}", number + 1);
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let value = unquote(value.trim());
        if value.is_empty() {
            stack.push((indent, key));
            continue;
        }
        if value != "null" && value != "~" {
            let mut path: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
            path.push(key);
            values.push((path, value));
        }
    }
    Ok(values)
}

/// `key: value`, where the key may itself contain `:` only when quoted.
fn split_key(line: &str) -> Option<(String, &str)> {
    if let Some(rest) = line.strip_prefix('"').or_else(|| line.strip_prefix('\'')) {
        let quote = line.chars().next()?;
        let end = rest.find(quote)?;
        let after = rest[end + 1..].trim_start().strip_prefix(':')?;
        return Some((rest[..end].to_owned(), after));
    }
    let colon = line.find(": ").or_else(|| line.strip_suffix(':').map(|k| k.len()))?;
    let value = line.get(colon + 1..).unwrap_or("");
    Some((line[..colon].trim().to_owned(), value))
}

fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('#', None) if i == 0 || line[..i].ends_with(' ') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner.to_owned();
        }
    }
    value.to_owned()
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
        let err = EbConfig::parse("global:\n  application_name acme\n").unwrap_err().to_string();
        assert!(err.starts_with("line 2: expected `key: value`"), "{err}");
    }
}
