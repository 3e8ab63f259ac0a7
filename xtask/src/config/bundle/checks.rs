//! What is checked of the bundle directory's files before anything is built, so that a
//! mistake fails here, naming the file and the line, instead of on the instances after an
//! upload and a deployment:
//! - `.ebextensions/*.config`: YAML or JSON (JSON is YAML); top-level keys Elastic Beanstalk
//!   knows (AWS's "Advanced environment customization with configuration files");
//!   `option_settings` in either form it accepts, each with a namespace and an option name;
//!   no secret option set there (a value in the bundle is in every copy of it: S3, the
//!   console's version list): secrets go through the options template and the environment.
//! - hooks (`.platform/hooks/**`, `.platform/confighooks/**`): a `#!` first line, no CRLF
//!   (the instance runs `bash\r`: "No such file or directory").
//! - `.platform/nginx/**/*.conf`: text (UTF-8).

use anyhow::bail;
use serde_norway::Value;

use crate::config::options::{self, ENVIRONMENT};

/// The top-level keys of a configuration file.
const KEYS: [&str; 11] = [
    "option_settings",
    "packages",
    "groups",
    "users",
    "sources",
    "files",
    "commands",
    "container_commands",
    "services",
    "Resources",
    "Outputs",
];

/// Checks one file; `shown` is its path from the workspace root, `path` its path in the zip.
pub fn check(shown: &str, path: &str, bytes: &[u8], secret_names: &[String]) -> anyhow::Result<()> {
    if is_config(path) {
        config_file(shown, bytes, secret_names)
    } else if path.starts_with(".platform/hooks/") || path.starts_with(".platform/confighooks/") {
        hook(shown, bytes)
    } else if path.starts_with(".platform/nginx/") && path.ends_with(".conf") {
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(err) => bail!("{shown}: not text (UTF-8) at byte {}", err.valid_up_to()),
        }
    } else {
        Ok(())
    }
}

/// A configuration file Elastic Beanstalk reads: `.ebextensions/*.config`, at the top of the
/// folder (files in its subfolders are data, for `files:` and `sources:`).
fn is_config(path: &str) -> bool {
    path.strip_prefix(".ebextensions/").is_some_and(|n| n.ends_with(".config") && !n.contains('/'))
}

fn hook(shown: &str, bytes: &[u8]) -> anyhow::Result<()> {
    if !bytes.starts_with(b"#!") {
        bail!(
            "{shown} line 1: a platform hook must start with `#!` (e.g. `#!/bin/bash`): the \
             instance runs it as a program"
        );
    }
    if let Some(at) = bytes.windows(2).position(|w| w == b"\r\n") {
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        bail!(
            "{shown} line {line}: CRLF line endings: the instance would read every line with a \
             \\r at its end (`bad interpreter: /bin/bash^M`); convert it to LF (`dos2unix \
             {shown}`, and `*.sh text eol=lf` in .gitattributes)"
        );
    }
    Ok(())
}

/// The number of the first line of `text` that starts (after indentation and `- `) with
/// `key:` or `"key"`, else of the first that holds `key`, else 1.
fn line_of(text: &str, key: &str) -> usize {
    let starts = |l: &&str| {
        let l = l.trim_start().trim_start_matches("- ").trim_start();
        l.starts_with(&format!("{key}:")) || l.starts_with(&format!("\"{key}\""))
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(starts)
        .or_else(|| lines.iter().position(|l| l.contains(key)))
        .map_or(1, |i| i + 1)
}

fn config_file(shown: &str, bytes: &[u8], secret_names: &[String]) -> anyhow::Result<()> {
    let text = String::from_utf8_lossy(bytes);
    let value: Value = match serde_norway::from_str(&text) {
        Ok(value) => value,
        Err(err) => {
            let line = err.location().map_or(1, |l| l.line());
            bail!("{shown} line {line}: not valid YAML or JSON: {err}");
        }
    };
    let Value::Mapping(top) = value else {
        bail!("{shown} line 1: a configuration file is a mapping of keys such as option_settings");
    };
    for (key, value) in &top {
        let key = key.as_str().unwrap_or_default();
        if !KEYS.contains(&key) {
            bail!(
                "{shown} line {}: unknown top-level key `{key}`: Elastic Beanstalk knows {}",
                line_of(&text, key),
                KEYS.join(", ")
            );
        }
        if key == "option_settings" {
            for (_, option, _) in option_settings(value).map_err(|why| {
                anyhow::anyhow!("{shown} line {}: option_settings: {why}", line_of(&text, key))
            })? {
                let secret = secret_names.contains(&option) || options::looks_secret(&option);
                if secret {
                    bail!(
                        "{shown} line {}: option {option} looks secret: a value in the bundle is \
                         in every copy of it (S3, the version list); set it in \
                         eb-options.json.template from an environment variable instead",
                        line_of(&text, &option)
                    );
                }
            }
        }
    }
    Ok(())
}

/// `option_settings` in either form: a list of `namespace` / `option_name` / `value`, or a
/// map `namespace: {option: value}`; each as (namespace, option, value).
fn option_settings(value: &Value) -> Result<Vec<(String, String, String)>, String> {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    };
    let mut found = Vec::new();
    match value {
        Value::Sequence(entries) => {
            for entry in entries {
                let (Some(namespace), Some(option)) =
                    (text(entry.get("namespace")), text(entry.get("option_name")))
                else {
                    return Err("every entry needs a namespace and an option_name".into());
                };
                found.push((namespace, option, text(entry.get("value")).unwrap_or_default()));
            }
        }
        Value::Mapping(namespaces) => {
            for (namespace, settings) in namespaces {
                let Some(namespace) = text(Some(namespace)) else {
                    return Err("a namespace must be a name".into());
                };
                let Value::Mapping(settings) = settings else {
                    return Err(format!("{namespace} must map option names to values"));
                };
                for (option, value) in settings {
                    let Some(option) = text(Some(option)) else {
                        return Err(format!("{namespace}: an option name must be a name"));
                    };
                    found.push((namespace.clone(), option, text(Some(value)).unwrap_or_default()));
                }
            }
        }
        _ => return Err("a list of namespace/option_name/value, or a map of namespaces".into()),
    }
    Ok(found)
}

/// The environment variables a configuration file sets (its `option_settings` of
/// `aws:elasticbeanstalk:application:environment`); none for another file.
pub fn environment(path: &str, bytes: &[u8]) -> Vec<(String, String)> {
    if !is_config(path) {
        return Vec::new();
    }
    let Ok(value) = serde_norway::from_slice::<Value>(bytes) else { return Vec::new() };
    let Some(settings) = value.get("option_settings") else { return Vec::new() };
    option_settings(settings)
        .unwrap_or_default()
        .into_iter()
        .filter(|(namespace, _, _)| namespace == ENVIRONMENT)
        .map(|(_, option, value)| (option, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> anyhow::Result<()> {
        check(
            "deploy/.ebextensions/01.config",
            ".ebextensions/01.config",
            text.as_bytes(),
            &["SECRET_KEY".to_owned()],
        )
    }

    fn message(result: anyhow::Result<()>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn configuration_files_in_both_forms_pass_and_give_their_environment() {
        let list = "option_settings:\n  - namespace: aws:elasticbeanstalk:application:environment\n    option_name: LOG_LEVEL\n    value: debug\n";
        let map = "{\"option_settings\": {\"aws:elasticbeanstalk:application:environment\": {\"APP_ENV\": \"staging\"}}, \"packages\": {}}";
        config(list).unwrap();
        config(map).unwrap();
        let path = ".ebextensions/01.config";
        assert_eq!(environment(path, list.as_bytes()), [("LOG_LEVEL".into(), "debug".into())]);
        assert_eq!(environment(path, map.as_bytes()), [("APP_ENV".into(), "staging".into())]);
    }

    #[test]
    fn mistakes_name_the_file_and_the_line() {
        let yaml = message(config("option_settings:\n  - namespace: a\n   bad: [\n"));
        assert!(yaml.starts_with("deploy/.ebextensions/01.config line "), "{yaml}");
        assert!(yaml.contains("not valid YAML or JSON"), "{yaml}");
        let key = message(config("packages: {}\n\ncommmands:\n  a: {command: ls}\n"));
        assert!(
            key.starts_with(
                "deploy/.ebextensions/01.config line 3: unknown top-level key `commmands`"
            ),
            "{key}"
        );
        let entry = message(config("option_settings:\n  - value: x\n"));
        assert!(
            entry.contains("line 1: option_settings: every entry needs a namespace"),
            "{entry}"
        );
        let secret = "option_settings:\n  aws:elasticbeanstalk:application:environment:\n    SECRET_KEY: hunter2\n";
        let secret = message(config(secret));
        assert!(secret.contains("line 3: option SECRET_KEY looks secret"), "{secret}");
        assert!(!secret.contains("hunter2"), "{secret}");
    }

    #[test]
    fn hooks_need_a_shebang_and_lf_endings() {
        let hook = |text: &str| {
            check(
                "deploy/.platform/hooks/predeploy/01.sh",
                ".platform/hooks/predeploy/01.sh",
                text.as_bytes(),
                &[],
            )
        };
        hook("#!/bin/bash\necho ok\n").unwrap();
        assert!(
            message(hook("echo ok\n")).contains("line 1: a platform hook must start with `#!`")
        );
        let crlf = message(hook("#!/bin/bash\r\necho ok\r\n"));
        assert!(crlf.contains("line 1: CRLF line endings"), "{crlf}");
    }
}
