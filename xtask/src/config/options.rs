//! The options template (`eb-options.json.template`): Elastic Beanstalk option settings,
//! `[{"Namespace", "OptionName", "Value"}]`, with `$VAR` / `${VAR}` in values.
//!
//! Rendering is strict where `envsubst` was silent: a variable that is unset (or empty) is
//! an error naming it and the option that uses it. Options marked `"Secret": true`, or
//! whose name says secret/password/token/key, are masked wherever they are shown.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;

use crate::run::secret::MASK;

/// The template, relative to the project root.
pub const TEMPLATE: &str = "eb-options.json.template";
/// The namespace whose options become the container's environment variables.
pub const ENVIRONMENT: &str = "aws:elasticbeanstalk:application:environment";
/// Where Elastic Beanstalk reads the health check path.
const APPLICATION: &str = "aws:elasticbeanstalk:application";
const HEALTHCHECK_URL: &str = "Application Healthcheck URL";

/// Words that make an option secret even when the template does not say so.
const SECRET_WORDS: [&str; 6] = ["SECRET", "PASSWORD", "TOKEN", "PRIVATE", "CREDENTIAL", "API_KEY"];

/// One entry of the template: an option setting as the EB API names its fields, and whether
/// its value is secret.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Entry {
    namespace: String,
    option_name: String,
    #[serde(default)]
    resource_name: Option<String>,
    value: String,
    #[serde(default)]
    secret: bool,
}

/// One rendered option setting.
#[derive(Clone, PartialEq, Eq)]
pub struct OptionSetting {
    pub namespace: String,
    pub option_name: String,
    pub resource_name: Option<String>,
    pub value: String,
    pub secret: bool,
}

impl OptionSetting {
    /// The value as it may be shown: `***` for a secret.
    pub fn shown_value(&self) -> &str {
        if self.secret { MASK } else { &self.value }
    }
}

impl fmt::Display for OptionSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} = {}", self.namespace, self.option_name, self.shown_value())
    }
}

impl fmt::Debug for OptionSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OptionSetting({self})")
    }
}

/// All option settings of a template, rendered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options(pub Vec<OptionSetting>);

impl Options {
    /// The container environment: the options in [`ENVIRONMENT`].
    pub fn environment(&self) -> impl Iterator<Item = &OptionSetting> {
        self.0.iter().filter(|o| o.namespace == ENVIRONMENT)
    }

    /// The health check path: the `Application Healthcheck URL` option (`/health` or
    /// `HTTP:80/health`), else `default`.
    pub fn health_path(&self, default: &str) -> String {
        let url =
            self.0.iter().find(|o| o.namespace == APPLICATION && o.option_name == HEALTHCHECK_URL);
        match url.map(|o| o.value.as_str()) {
            Some(value) => match value.find('/') {
                Some(slash) => value[slash..].to_owned(),
                None => "/".to_owned(),
            },
            None => default.to_owned(),
        }
    }

    /// The value of one option, when set.
    pub fn get(&self, namespace: &str, option_name: &str) -> Option<&str> {
        let found =
            self.0.iter().find(|o| o.namespace == namespace && o.option_name == option_name);
        found.map(|o| o.value.as_str())
    }

    /// `option`, unless an option of that namespace and name is set already.
    pub fn or_add(&mut self, namespace: &str, option_name: &str, value: &str) {
        if self.get(namespace, option_name).is_none() {
            self.0.push(OptionSetting {
                namespace: namespace.to_owned(),
                option_name: option_name.to_owned(),
                resource_name: None,
                value: value.to_owned(),
                secret: false,
            });
        }
    }

    /// Every secret value, for scrubbing text that might echo one.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter(|o| o.secret && !o.value.is_empty()).map(|o| o.value.as_str())
    }
}

/// The variables a template may use besides the environment's.
pub struct Builtins<'a> {
    /// `DEPLOY_ENV`: the environment's key in the settings (`staging`), or `local`.
    pub deploy_env: &'a str,
    /// `EB_ENVIRONMENT`: the Elastic Beanstalk environment name.
    pub eb_environment: &'a str,
    /// `IMAGE_TAG`: the tag being deployed.
    pub image_tag: &'a str,
}

impl Builtins<'_> {
    pub fn get(&self, name: &str) -> Option<String> {
        match name {
            "DEPLOY_ENV" => Some(self.deploy_env.to_owned()),
            "EB_ENVIRONMENT" => Some(self.eb_environment.to_owned()),
            "IMAGE_TAG" => Some(self.image_tag.to_owned()),
            _ => None,
        }
    }
}

/// Reads `root/eb-options.json.template`; a missing file means no option settings.
pub fn render_file(root: &Path, vars: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Options> {
    let path = root.join(TEMPLATE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Options::default()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    render(&text, vars).with_context(|| TEMPLATE.to_owned())
}

/// Whether an option of this name is secret by its name alone (`SECRET_KEY`, `DB_PASSWORD`).
pub fn looks_secret(option_name: &str) -> bool {
    let upper = option_name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// The option names the template marks secret (`"Secret": true`) or whose names say so.
pub fn secret_names(root: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(root.join(TEMPLATE)) else { return Vec::new() };
    let Ok(entries) = serde_json::from_str::<Vec<Entry>>(&text) else { return Vec::new() };
    entries
        .into_iter()
        .filter(|e| e.secret || looks_secret(&e.option_name))
        .map(|e| e.option_name)
        .collect()
}

/// The secret values the template renders to with what `vars` has: an entry with an unset
/// variable is skipped, not an error. For the commands that only show what Elastic
/// Beanstalk says (`status`): its events may echo an option's value.
pub fn secret_values_in(root: &Path, vars: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let Ok(text) = fs::read_to_string(root.join(TEMPLATE)) else { return Vec::new() };
    let Ok((options, _)) = render_entries(&text, vars) else { return Vec::new() };
    options.secret_values().map(str::to_owned).collect()
}

pub fn render(template: &str, vars: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Options> {
    let (options, unset) = render_entries(template, vars)?;
    if !unset.is_empty() {
        let names: Vec<String> =
            unset.iter().map(|(var, option)| format!("{var} (for {option})")).collect();
        bail!(
            "{} not set: export {}, or set it in your CI context (an unset variable is never \
             rendered as empty)",
            names.join(", "),
            if unset.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(options)
}

/// The entries rendered, those with an unset variable left out; and each unset variable
/// with the option that uses it.
fn render_entries(
    template: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<(Options, Vec<(String, String)>)> {
    let entries: Vec<Entry> = serde_json::from_str(template).map_err(|err| {
        anyhow!("not a valid options list at line {}, column {}: {err}", err.line(), err.column())
    })?;
    let mut seen = BTreeSet::new();
    let mut unset: Vec<(String, String)> = Vec::new();
    let mut options = Vec::new();
    for entry in entries {
        let key = (entry.namespace.clone(), entry.option_name.clone(), entry.resource_name.clone());
        if !seen.insert(key) {
            bail!("{}:{} is set twice", entry.namespace, entry.option_name);
        }
        let before = unset.len();
        let value = expand(&entry.value, vars, &mut |var| {
            unset.push((var.to_owned(), format!("{}:{}", entry.namespace, entry.option_name)));
        });
        if unset.len() > before {
            continue;
        }
        let secret = entry.secret || looks_secret(&entry.option_name);
        options.push(OptionSetting {
            namespace: entry.namespace,
            option_name: entry.option_name,
            resource_name: entry.resource_name,
            value,
            secret,
        });
    }
    Ok((Options(options), unset))
}

/// Expands `$NAME`, `${NAME}` and `$$` (a literal `$`); reports each unset name.
fn expand(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else if let Some(after_escape) = after.strip_prefix('$') {
            out.push('$');
            rest = after_escape;
            continue;
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if !is_name(name) {
            out.push('$');
            rest = after;
            continue;
        }
        match vars(name).filter(|v| !v.is_empty()) {
            Some(value) => out.push_str(&value),
            None => unset(name),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "APP_ENV" => Some("staging".into()),
            "SECRET_KEY" => Some("s3cr3t|&".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    const TEMPLATE_TEXT: &str = r#"[
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "APP_ENV", "Value": "$APP_ENV" },
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "SECRET_KEY", "Value": "${SECRET_KEY}" },
  { "Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "GREETING", "Value": "costs $$5, env ${APP_ENV}-x, $1" },
  { "Namespace": "aws:elasticbeanstalk:application", "OptionName": "Application Healthcheck URL", "Value": "HTTP:80/health" }
]"#;

    #[test]
    fn renders_both_syntaxes_and_keeps_special_characters() {
        let options = render(TEMPLATE_TEXT, &vars).unwrap();
        let env: Vec<(&str, &str)> =
            options.environment().map(|o| (o.option_name.as_str(), o.value.as_str())).collect();
        assert_eq!(
            env,
            [
                ("APP_ENV", "staging"),
                ("SECRET_KEY", "s3cr3t|&"),
                ("GREETING", "costs $5, env staging-x, $1")
            ]
        );
        assert_eq!(options.health_path("/"), "/health");
    }

    #[test]
    fn secrets_are_masked_when_shown() {
        let options = render(TEMPLATE_TEXT, &vars).unwrap();
        let shown = format!("{:?} {}", options, options.0[1]);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("SECRET_KEY = ***"), "{shown}");
        assert_eq!(options.secret_values().collect::<Vec<_>>(), ["s3cr3t|&"]);
    }

    #[test]
    fn the_secret_flag_masks_any_option() {
        let template = r#"[{"Namespace": "n", "OptionName": "DATABASE_URL", "Value": "pg://u:p@h", "Secret": true}]"#;
        assert_eq!(render(template, &vars).unwrap().0[0].to_string(), "n:DATABASE_URL = ***");
    }

    #[test]
    fn unset_and_empty_variables_are_errors_naming_them() {
        let template =
            TEMPLATE_TEXT.replace("$APP_ENV\"", "$MISSING\"").replace("${SECRET_KEY}", "${EMPTY}");
        let err = render(&template, &vars).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "MISSING (for aws:elasticbeanstalk:application:environment:APP_ENV), \
                 EMPTY (for aws:elasticbeanstalk:application:environment:SECRET_KEY) not set"
            ),
            "{err}"
        );
    }

    #[test]
    fn malformed_templates_are_errors_with_position() {
        let err = render("[{\"Namespace\": \"n\"", &vars).unwrap_err().to_string();
        assert!(err.starts_with("not a valid options list at line 1"), "{err}");
        let err = render(r#"[{"Namespace": "n", "OptionName": "A", "Valu": "x"}]"#, &vars)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Valu"), "{err}");
    }

    #[test]
    fn the_repository_template_renders_with_its_variables() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let options = render_file(root, &|name| Some(format!("value-of-{name}"))).unwrap();
        assert!(options.environment().any(|o| o.option_name == "SECRET_KEY" && o.secret));
    }
}
