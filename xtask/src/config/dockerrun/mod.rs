//! `Dockerrun.aws.json.template` → the Elastic Beanstalk single-container descriptor (v1).
//!
//! The template is parsed as JSON first, so a value containing `|` or `&` can never break
//! the rendering (the seed's `sed` did), and placeholders are only replaced inside string
//! values. The result is read into [`Dockerrun`], the v1 format as the EB developer guide
//! documents it (an unknown key is an error), then checked by EB's rules. An unknown
//! placeholder, a placeholder anywhere else, bad JSON or a descriptor Elastic Beanstalk
//! would reject is an error before anything is uploaded or run.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The template, relative to the project root.
pub const TEMPLATE: &str = "Dockerrun.aws.json.template";

/// The placeholders a template may use, with their values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Values {
    pub bucket: String,
    pub image: String,
    pub tag: String,
    pub auth_key: String,
}

impl Values {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "BUCKET" => Some(&self.bucket),
            "IMAGE" => Some(&self.image),
            "TAG" => Some(&self.tag),
            "AUTH_KEY" => Some(&self.auth_key),
            _ => None,
        }
    }
}

const KNOWN: &str = "<BUCKET>, <IMAGE>, <TAG>, <AUTH_KEY>";
/// The keys of a v1 descriptor, as the EB developer guide lists them.
const TOP_LEVEL: [&str; 8] = [
    "AWSEBDockerrunVersion",
    "Authentication",
    "Image",
    "Ports",
    "Volumes",
    "Logging",
    "Entrypoint",
    "Command",
];

/// A v1 descriptor, rendered and checked: what is uploaded, and what a local run needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Dockerrun {
    #[serde(rename = "AWSEBDockerrunVersion")]
    pub version: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Elastic Beanstalk routes traffic to the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Port>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// The container directory Elastic Beanstalk maps to the instance's log directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The S3 location of the registry auth file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Authentication {
    pub bucket: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Image {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Port {
    pub container_port: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<Scalar>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Volume {
    pub host_directory: String,
    pub container_directory: String,
}

/// A value the format takes as a string or a number (`"1"` or `1`, `"80"` or `80`), kept as
/// written so that the uploaded bytes are the template's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(u64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.clone(),
            Scalar::Number(n) => n.to_string(),
        }
    }
}

impl Dockerrun {
    /// The descriptor as uploaded: pretty JSON, keys in order, with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut bytes = serde_json::to_vec_pretty(&value).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The image to run (checked present when rendered).
    pub fn image_name(&self) -> &str {
        self.image.as_ref().map_or("", |i| i.name.as_str())
    }

    /// The port traffic goes to (checked present and valid when rendered).
    pub fn container_port(&self) -> u16 {
        let first = self.ports.as_ref().and_then(|p| p.first());
        first
            .and_then(|p| p.container_port.as_ref())
            .and_then(|p| p.text().parse().ok())
            .unwrap_or(80)
    }

    pub fn volumes(&self) -> &[Volume] {
        self.volumes.as_deref().unwrap_or_default()
    }

    /// Elastic Beanstalk's rules of the v1 format, beyond its keys.
    fn check(self) -> anyhow::Result<Dockerrun> {
        match &self.version {
            Some(v) if v.text() == "1" => {}
            Some(v) => bail!(
                "AWSEBDockerrunVersion is {:?}: this is a single-container (v1) descriptor, use \"1\"",
                v.text()
            ),
            None => bail!("AWSEBDockerrunVersion is missing: add \"AWSEBDockerrunVersion\": \"1\""),
        }
        let image = self.image.as_ref().ok_or_else(|| {
            anyhow!("Image is missing: add \"Image\": {{\"Name\": \"<IMAGE>:<TAG>\"}}")
        })?;
        if image.name.trim().is_empty() {
            bail!("Image.Name is missing or empty");
        }
        if let Some(update) = &image.update
            && update != "true"
            && update != "false"
        {
            bail!("Image.Update is {update:?}: use \"true\" or \"false\"");
        }
        let ports = match &self.ports {
            Some(ports) if !ports.is_empty() => ports,
            Some(_) => bail!("Ports must be a non-empty array of {{\"ContainerPort\": \"80\"}}"),
            None => bail!(
                "Ports is missing: Elastic Beanstalk needs the ContainerPort it routes traffic to"
            ),
        };
        for (i, port) in ports.iter().enumerate() {
            let Some(raw) = port.container_port.as_ref().map(Scalar::text) else {
                bail!("Ports[{i}].ContainerPort is missing: add \"ContainerPort\": \"80\"");
            };
            if raw.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
                bail!("Ports[{i}].ContainerPort {raw:?} is not a port number");
            }
        }
        for (i, volume) in self.volumes().iter().enumerate() {
            if !volume.host_directory.starts_with('/')
                || !volume.container_directory.starts_with('/')
            {
                bail!("Volumes[{i}] needs absolute HostDirectory and ContainerDirectory paths");
            }
        }
        if let Some(dir) = &self.logging
            && !dir.starts_with('/')
        {
            bail!("Logging is {dir:?}: it must be an absolute directory in the container");
        }
        if let Some(auth) = &self.authentication
            && (auth.bucket.is_empty() || auth.key.is_empty())
        {
            bail!(
                "Authentication needs both Bucket and Key (the S3 location of the registry auth file)"
            );
        }
        Ok(self)
    }
}

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
                let value = values.get(name).ok_or_else(|| {
                    anyhow!("unknown placeholder <{name}> at {at}: the known ones are {KNOWN}")
                })?;
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
            auth_key: "deploy/0123abc/registry-auth.json".into(),
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
    fn unknown_placeholders_are_named() {
        let err =
            render(&TEMPLATE_TEXT.replace("<TAG>", "<SHA1>"), &values()).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown placeholder <SHA1> at /Image/Name: the known ones are <BUCKET>, <IMAGE>, <TAG>, <AUTH_KEY>"
        );
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
