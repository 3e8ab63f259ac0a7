//! `Dockerrun.aws.json.template` → the Elastic Beanstalk single-container descriptor (v1).
//!
//! The template is parsed as JSON first, so a value containing `|` or `&` can never break
//! the rendering (the seed's `sed` did), and placeholders are only replaced inside string
//! values. An unknown placeholder, a placeholder anywhere else, bad JSON or a descriptor
//! Elastic Beanstalk would reject is an error before anything is uploaded or run.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value};

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

/// A rendered and validated v1 descriptor: the JSON to upload, and what a local run needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dockerrun {
    pub json: Value,
    pub image: String,
    /// The `ContainerPort`s, in order; Elastic Beanstalk routes traffic to the first.
    pub ports: Vec<u16>,
    pub volumes: Vec<Volume>,
    /// The container directory Elastic Beanstalk maps to the instance's log directory.
    pub logging: Option<String>,
    pub entrypoint: Option<String>,
    pub command: Option<String>,
    pub authentication: Option<Authentication>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub host_directory: String,
    pub container_directory: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication {
    pub bucket: String,
    pub key: String,
}

impl Dockerrun {
    /// The descriptor as uploaded: pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(&self.json).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The port traffic goes to.
    pub fn container_port(&self) -> u16 {
        self.ports[0]
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
    validate(json)
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

/// The rules of the v1 format (single container), checked the way Elastic Beanstalk would.
fn validate(json: Value) -> anyhow::Result<Dockerrun> {
    let root = json.as_object().ok_or_else(|| anyhow!("the descriptor must be a JSON object"))?;
    for key in root.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            bail!("unknown key {key:?}: a v1 Dockerrun has {}", TOP_LEVEL.join(", "));
        }
    }
    match root.get("AWSEBDockerrunVersion") {
        Some(Value::String(v)) if v == "1" => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => bail!(
            "AWSEBDockerrunVersion is {other}: this is a single-container (v1) descriptor, use \"1\""
        ),
        None => bail!("AWSEBDockerrunVersion is missing: add \"AWSEBDockerrunVersion\": \"1\""),
    }
    let image = object(root, "Image")?.ok_or_else(|| {
        anyhow!("Image is missing: add \"Image\": {{\"Name\": \"<IMAGE>:<TAG>\"}}")
    })?;
    let name = string(image, "Image", "Name")?.filter(|n| !n.trim().is_empty());
    let name = name.ok_or_else(|| anyhow!("Image.Name is missing or empty"))?.to_owned();
    for key in image.keys() {
        if key != "Name" && key != "Update" {
            bail!("unknown key Image.{key}: Image has Name and Update");
        }
    }
    if let Some(update) = image.get("Update")
        && !matches!(update.as_str(), Some("true" | "false"))
    {
        bail!("Image.Update is {update}: use \"true\" or \"false\"");
    }
    let ports = match root.get("Ports") {
        None => bail!(
            "Ports is missing: Elastic Beanstalk needs the ContainerPort it routes traffic to"
        ),
        Some(Value::Array(ports)) if !ports.is_empty() => ports
            .iter()
            .enumerate()
            .map(|(i, port)| container_port(port, i))
            .collect::<anyhow::Result<Vec<u16>>>()?,
        Some(_) => bail!("Ports must be a non-empty array of {{\"ContainerPort\": \"80\"}}"),
    };
    let volumes = match root.get("Volumes") {
        None => Vec::new(),
        Some(Value::Array(volumes)) => {
            volumes.iter().enumerate().map(|(i, v)| volume(v, i)).collect::<anyhow::Result<_>>()?
        }
        Some(_) => {
            bail!("Volumes must be an array of {{\"HostDirectory\", \"ContainerDirectory\"}}")
        }
    };
    let logging = string(root, "", "Logging")?.map(str::to_owned);
    if let Some(dir) = &logging
        && !dir.starts_with('/')
    {
        bail!("Logging is {dir:?}: it must be an absolute directory in the container");
    }
    let authentication = match object(root, "Authentication")? {
        None => None,
        Some(auth) => {
            let bucket = string(auth, "Authentication", "Bucket")?.filter(|b| !b.is_empty());
            let key = string(auth, "Authentication", "Key")?.filter(|k| !k.is_empty());
            match (bucket, key) {
                (Some(bucket), Some(key)) => {
                    Some(Authentication { bucket: bucket.to_owned(), key: key.to_owned() })
                }
                _ => bail!(
                    "Authentication needs both Bucket and Key (the S3 location of the registry auth file)"
                ),
            }
        }
    };
    let entrypoint = string(root, "", "Entrypoint")?.map(str::to_owned);
    let command = string(root, "", "Command")?.map(str::to_owned);
    Ok(Dockerrun {
        image: name,
        ports,
        volumes,
        logging,
        entrypoint,
        command,
        authentication,
        json,
    })
}

fn object<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> anyhow::Result<Option<&'a Map<String, Value>>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => bail!("{key} must be an object"),
    }
}

fn string<'a>(
    map: &'a Map<String, Value>,
    parent: &str,
    key: &str,
) -> anyhow::Result<Option<&'a str>> {
    let dotted = if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") };
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => bail!("{dotted} is {other}: it must be a string"),
    }
}

fn container_port(port: &Value, i: usize) -> anyhow::Result<u16> {
    let map = port.as_object().ok_or_else(|| anyhow!("Ports[{i}] must be an object"))?;
    for key in map.keys() {
        if key != "ContainerPort" && key != "HostPort" {
            bail!("unknown key Ports[{i}].{key}: a port has ContainerPort and HostPort");
        }
    }
    let raw = match map.get("ContainerPort") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => bail!("Ports[{i}].ContainerPort is missing: add \"ContainerPort\": \"80\""),
    };
    raw.parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| anyhow!("Ports[{i}].ContainerPort {raw:?} is not a port number"))
}

fn volume(value: &Value, i: usize) -> anyhow::Result<Volume> {
    let map = value.as_object().ok_or_else(|| anyhow!("Volumes[{i}] must be an object"))?;
    let host = string(map, &format!("Volumes[{i}]"), "HostDirectory")?;
    let container = string(map, &format!("Volumes[{i}]"), "ContainerDirectory")?;
    match (host, container) {
        (Some(host), Some(container)) if host.starts_with('/') && container.starts_with('/') => {
            Ok(Volume {
                host_directory: host.to_owned(),
                container_directory: container.to_owned(),
            })
        }
        _ => bail!("Volumes[{i}] needs absolute HostDirectory and ContainerDirectory paths"),
    }
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
        assert_eq!(rendered.image, "quay.io/acme/web:0123abc");
        assert_eq!(rendered.ports, vec![80]);
        assert_eq!(rendered.logging.as_deref(), Some("/var/log/web"));
        assert_eq!(rendered.authentication.unwrap().key, "deploy/0123abc/registry-auth.json");
        assert_eq!(rendered.volumes[0].container_directory, "/data");
        assert_eq!(rendered.json["Authentication"]["Bucket"], "elasticbeanstalk-eu-west-1-1");
    }

    #[test]
    fn values_with_shell_and_sed_metacharacters_stay_intact() {
        let mut v = values();
        v.bucket = r#"a|b&c\d"e"#.into();
        let rendered = render(TEMPLATE_TEXT, &v).unwrap();
        assert_eq!(rendered.json["Authentication"]["Bucket"], r#"a|b&c\d"e"#);
        let reparsed: Value = serde_json::from_slice(&rendered.to_bytes()).unwrap();
        assert_eq!(reparsed, rendered.json);
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
        assert_eq!(rendered.image, "quay.io/acme/web:0123abc");
    }
}
