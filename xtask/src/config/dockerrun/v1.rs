//! The Elastic Beanstalk single-container descriptor (v1), as the EB developer guide
//! documents it: its keys (an unknown one is an error), and the rules EB checks beyond them.

use anyhow::{anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The keys of a v1 descriptor, as the EB developer guide lists them.
pub(super) const TOP_LEVEL: [&str; 8] = [
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

/// `value` with every object's keys in sorted order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(key, value)| (key, sorted(value))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

impl Dockerrun {
    /// The descriptor as uploaded: pretty JSON, keys sorted at every level, with a final
    /// newline. Sorted explicitly: a JSON object's order otherwise depends on whether some
    /// crate of the build enables serde_json's `preserve_order` (a test build does, a
    /// `cargo xtask` build does not), and the bytes name an immutable version.
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = sorted(serde_json::to_value(self).unwrap_or(Value::Null));
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
    pub(super) fn check(self) -> anyhow::Result<Dockerrun> {
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
