//! `Dockerrun.aws.json.template` → the Elastic Beanstalk single-container descriptor (v1).
//!
//! For a registry that needs no auth file (Amazon ECR: the instance profile pulls), the
//! template's `Authentication` block is dropped, so one template serves both kinds.
//!
//! The template is parsed as JSON first, so a value containing `|` or `&` can never break
//! the rendering (the seed's `sed` did), and placeholders are only replaced inside string
//! values. The result is read into [`Dockerrun`], the v1 format as the EB developer guide
//! documents it (an unknown key is an error), then checked by EB's rules. An unknown
//! placeholder, a placeholder anywhere else, bad JSON or a descriptor Elastic Beanstalk
//! would reject is an error before anything is uploaded or run.

use std::fs;
use std::path::Path;

mod v1;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use self::v1::TOP_LEVEL;
pub use self::v1::{Authentication, Dockerrun, Image, Port, Scalar, Volume};

/// The template, relative to the project root.
pub const TEMPLATE: &str = "Dockerrun.aws.json.template";

/// The placeholders a template may use, with their values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Values {
    pub bucket: String,
    pub image: String,
    pub tag: String,
    /// The registry auth file's key; `None` when the registry needs none (ECR).
    pub auth_key: Option<String>,
}

impl Values {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "BUCKET" => Some(&self.bucket),
            "IMAGE" => Some(&self.image),
            "TAG" => Some(&self.tag),
            "AUTH_KEY" => self.auth_key.as_deref(),
            _ => None,
        }
    }
}

const KNOWN: &str = "<BUCKET>, <IMAGE>, <TAG>, <AUTH_KEY>";

/// Reads `root/Dockerrun.aws.json.template` and renders it.
pub fn render_file(root: &Path, values: &Values) -> anyhow::Result<Dockerrun> {
    let path = root.join(TEMPLATE);
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    render(&text, values).context(TEMPLATE)
}

pub fn render(template: &str, values: &Values) -> anyhow::Result<Dockerrun> {
    let mut json: Value = serde_json::from_str(template).map_err(|err| {
        anyhow!("not valid JSON at line {}, column {}: {err}", err.line(), err.column())
    })?;
    if values.auth_key.is_none()
        && let Some(map) = json.as_object_mut()
    {
        map.remove("Authentication");
    }
    substitute(&mut json, "", values)?;
    let keys = json.as_object().ok_or_else(|| anyhow!("the descriptor must be a JSON object"))?;
    if let Some(key) = keys.keys().find(|key| !TOP_LEVEL.contains(&key.as_str())) {
        bail!("unknown key {key:?}: a v1 Dockerrun has {}", TOP_LEVEL.join(", "));
    }
    let dockerrun: Dockerrun = serde_json::from_value(json).map_err(|err| anyhow!("{err}"))?;
    dockerrun.check()
}

/// Replaces placeholders in string values; refuses them in keys and unknown ones anywhere.
fn substitute(value: &mut Value, at: &str, values: &Values) -> anyhow::Result<()> {
    match value {
        Value::String(text) => *text = replace(text, at, values)?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{at}/{i}"), values)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if let Some(name) = placeholders(key).next() {
                    bail!(
                        "placeholder <{name}> in the key {key:?} at {at}/: placeholders go in string values only"
                    );
                }
                substitute(item, &format!("{at}/{key}"), values)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

fn replace(text: &str, at: &str, values: &Values) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('>').map(|end| &after[..end]).filter(|name| is_placeholder(name)) {
            Some(name) => {
                let value = match values.get(name) {
                    Some(value) => value,
                    None if name == "AUTH_KEY" => bail!(
                        "placeholder <AUTH_KEY> at {at}: this registry (Amazon ECR) has no auth \
                         file; use <AUTH_KEY> only in the Authentication block, which is dropped"
                    ),
                    None => {
                        bail!("unknown placeholder <{name}> at {at}: the known ones are {KNOWN}")
                    }
                };
                out.push_str(value);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_placeholder(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('<')
        .skip(1)
        .filter_map(|part| part.split_once('>').map(|(name, _)| name))
        .filter(|n| is_placeholder(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            bucket: "elasticbeanstalk-eu-west-1-1".into(),
            image: "quay.io/acme/web".into(),
            tag: "0123abc".into(),
            auth_key: Some("deploy/0123abc/registry-auth.json".into()),
        }
    }

    const TEMPLATE_TEXT: &str = r#"{
  "AWSEBDockerrunVersion": "1",
  "Authentication": { "Bucket": "<BUCKET>", "Key": "<AUTH_KEY>" },
  "Image": { "Name": "<IMAGE>:<TAG>", "Update": "true" },
  "Ports": [ { "ContainerPort": "80" } ],
  "Volumes": [ { "HostDirectory": "/var/app/data", "ContainerDirectory": "/data" } ],
  "Logging": "/var/log/web"
}"#;

    #[test]
    fn renders_placeholders_in_string_values() {
        let rendered = render(TEMPLATE_TEXT, &values()).unwrap();
        assert_eq!(rendered.image_name(), "quay.io/acme/web:0123abc");
        assert_eq!(rendered.container_port(), 80);
        assert_eq!(rendered.logging.as_deref(), Some("/var/log/web"));
        assert_eq!(
            rendered.authentication.as_ref().unwrap().key,
            "deploy/0123abc/registry-auth.json"
        );
        assert_eq!(rendered.volumes()[0].container_directory, "/data");
        assert_eq!(
            rendered.authentication.as_ref().unwrap().bucket,
            "elasticbeanstalk-eu-west-1-1"
        );
    }

    #[test]
    fn values_with_shell_and_sed_metacharacters_stay_intact() {
        let mut v = values();
        v.bucket = r#"a|b&c\d"e"#.into();
        let rendered = render(TEMPLATE_TEXT, &v).unwrap();
        assert_eq!(rendered.authentication.as_ref().unwrap().bucket, r#"a|b&c\d"e"#);
        let reparsed: Dockerrun = serde_json::from_slice(&rendered.to_bytes()).unwrap();
        assert_eq!(reparsed, rendered);
    }

    #[test]
    fn the_uploaded_bytes_have_sorted_keys_whatever_the_build() {
        let bytes =
            String::from_utf8(render(TEMPLATE_TEXT, &values()).unwrap().to_bytes()).unwrap();
        let at = |key: &str| bytes.find(&format!("\"{key}\"")).unwrap();
        let top =
            ["AWSEBDockerrunVersion", "Authentication", "Image", "Logging", "Ports", "Volumes"];
        assert!(top.windows(2).all(|w| at(w[0]) < at(w[1])), "{bytes}");
        assert!(at("ContainerDirectory") < at("HostDirectory"), "{bytes}");
    }

    #[test]
    fn unknown_placeholders_are_named() {
        let err =
            render(&TEMPLATE_TEXT.replace("<TAG>", "<SHA1>"), &values()).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown placeholder <SHA1> at /Image/Name: the known ones are <BUCKET>, <IMAGE>, <TAG>, <AUTH_KEY>"
        );
    }

    #[test]
    fn without_an_auth_file_the_authentication_block_is_dropped() {
        let ecr = Values { auth_key: None, ..values() };
        let rendered = render(TEMPLATE_TEXT, &ecr).unwrap();
        assert_eq!(rendered.authentication, None);
        assert!(!String::from_utf8(rendered.to_bytes()).unwrap().contains("Authentication"));
        assert_eq!(rendered.image_name(), "quay.io/acme/web:0123abc");
        let elsewhere = TEMPLATE_TEXT.replace("\"/var/log/web\"", "\"/var/log/<AUTH_KEY>\"");
        let err = render(&elsewhere, &ecr).unwrap_err().to_string();
        assert!(err.starts_with("placeholder <AUTH_KEY> at /Logging: this registry"), "{err}");
    }

    #[test]
    fn placeholders_in_keys_are_refused() {
        let template = TEMPLATE_TEXT.replace("\"Logging\"", "\"<BUCKET>\"");
        assert!(
            render(&template, &values()).unwrap_err().to_string().contains("string values only")
        );
    }

    #[test]
    fn bad_json_gives_line_and_column() {
        let err = render(&TEMPLATE_TEXT.replace("\"80\" }", "\"80\" "), &values())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not valid JSON at line 5, column"), "{err}");
    }

    #[test]
    fn v1_violations_are_errors() {
        let cases = [
            (TEMPLATE_TEXT.replace("\"1\"", "\"2\""), "AWSEBDockerrunVersion"),
            (
                TEMPLATE_TEXT.replace("\"Ports\": [ { \"ContainerPort\": \"80\" } ],", ""),
                "Ports is missing",
            ),
            (TEMPLATE_TEXT.replace("\"80\"", "\"http\""), "not a port number"),
            (TEMPLATE_TEXT.replace("\"Logging\"", "\"Loging\""), "unknown key \"Loging\""),
            (TEMPLATE_TEXT.replace("<IMAGE>:<TAG>", " "), "Image.Name is missing or empty"),
            (TEMPLATE_TEXT.replace("\"/var/log/web\"", "\"logs\""), "absolute directory"),
            (
                TEMPLATE_TEXT.replace("\"Key\": \"<AUTH_KEY>\"", "\"Key\": \"\""),
                "Authentication needs both",
            ),
        ];
        for (template, expected) in cases {
            let err = render(&template, &values()).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn the_repository_template_renders() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let rendered = render_file(root, &values()).unwrap();
        assert_eq!(rendered.image_name(), "quay.io/acme/web:0123abc");
    }
}
