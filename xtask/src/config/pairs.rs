//! Blue/green pairs: `[workspace.metadata.deploy.blue_green.PAIR]`, two environments of the
//! application and the public CNAME prefix that one of them holds at a time. Which one holds
//! it is never stored: Elastic Beanstalk says, at every run (`eb::pair`).

use anyhow::bail;
use serde::Deserialize;

use crate::config::settings::Settings;
use crate::config::targets::Target;

/// One pair as the settings write it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairEntry {
    /// Two environments: keys of `environments`, or Elastic Beanstalk names.
    pub environments: Vec<String>,
    /// The public CNAME prefix: `CNAME.REGION.elasticbeanstalk.com`.
    pub cname: String,
}

/// A pair, its environments resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// Its key under `blue_green`.
    pub key: String,
    pub environments: [Target; 2],
    pub cname: String,
}

impl Pair {
    /// The two environments' names.
    pub fn names(&self) -> [&str; 2] {
        [&self.environments[0].name, &self.environments[1].name]
    }

    /// The environment of that name.
    pub fn target(&self, name: &str) -> &Target {
        self.environments.iter().find(|t| t.name == name).unwrap_or(&self.environments[0])
    }
}

impl Settings {
    /// The pair `arg` names, if it names one.
    pub fn pair(&self, arg: &str) -> Option<Pair> {
        let entry = self.blue_green.get(arg)?;
        let [a, b] = [&entry.environments[0], &entry.environments[1]].map(|e| self.named(e));
        Some(Pair { key: arg.to_owned(), environments: [a, b], cname: entry.cname.clone() })
    }

    /// The pair the environment named `name` is in, if any.
    pub fn pair_of(&self, name: &str) -> Option<Pair> {
        self.blue_green.keys().filter_map(|key| self.pair(key)).find(|p| p.names().contains(&name))
    }

    /// The pair `arg` names, or an error listing the pairs.
    pub fn require_pair(&self, arg: &str) -> anyhow::Result<Pair> {
        if let Some(pair) = self.pair(arg) {
            return Ok(pair);
        }
        let known: Vec<&str> = self.blue_green.keys().map(String::as_str).collect();
        let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
        bail!(
            "{arg} is not a blue/green pair (pairs: {known}): add \
             [workspace.metadata.deploy.blue_green.{arg}] with `environments` and `cname` to \
             Cargo.toml"
        )
    }

    /// The pair's rules, checked when the settings are read: two distinct environments,
    /// each in one pair; a CNAME prefix Elastic Beanstalk takes; a key that names nothing
    /// else.
    pub(crate) fn check_pairs(&self) -> anyhow::Result<()> {
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (key, entry) in &self.blue_green {
            let at = format!("[workspace.metadata.deploy.blue_green.{key}]");
            if self.environments.contains_key(key) {
                bail!(
                    "{at}: {key} also names an environment of [workspace.metadata.deploy.\
                     environments]: give the pair another name"
                );
            }
            let names: Vec<String> =
                entry.environments.iter().map(|e| self.named(e).name).collect();
            if names.len() != 2 || names[0] == names[1] {
                bail!(
                    "{at}: `environments` must name two different environments, e.g. \
                     [\"acme-prod-a\", \"acme-prod-b\"] (it has {:?})",
                    entry.environments
                );
            }
            for name in names {
                if let Some((_, other)) = seen.iter().find(|(n, _)| *n == name) {
                    bail!("{at}: {name} is already in pair {other}: an environment is in one pair");
                }
                seen.push((name, key));
            }
            let cname = &entry.cname;
            // The API reference: CNAMEPrefix, 4 to 63 characters; a DNS label.
            let label = cname.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !cname.starts_with('-')
                && !cname.ends_with('-');
            if !(4..=63).contains(&cname.len()) || !label {
                bail!(
                    "{at}: cname {cname:?} is not a CNAME prefix: 4 to 63 letters, digits and \
                     hyphens, e.g. \"acme-prod\" for acme-prod.REGION.elasticbeanstalk.com"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::settings::Settings;
    use crate::run::Env;

    const MANIFEST: &str = r#"
[workspace.metadata.deploy]
application = "acme-web"

[workspace.metadata.deploy.environments]
prod-a = { name = "acme-prod-a" }

[workspace.metadata.deploy.blue_green.production]
environments = ["prod-a", "acme-prod-b"]
cname = "acme-prod"
"#;

    fn parse(manifest: &str) -> anyhow::Result<Settings> {
        Settings::parse(manifest, &Env::default())
    }

    #[test]
    fn a_pair_resolves_its_environments_by_key_or_name() {
        let settings = parse(MANIFEST).unwrap();
        let pair = settings.pair("production").unwrap();
        assert_eq!(pair.names(), ["acme-prod-a", "acme-prod-b"]);
        assert_eq!(pair.environments[0].key.as_deref(), Some("prod-a"));
        assert_eq!(pair.cname, "acme-prod");
        assert!(settings.pair("prod-a").is_none());
        let err = settings.require_pair("prod").unwrap_err().to_string();
        assert!(err.starts_with("prod is not a blue/green pair (pairs: production)"), "{err}");
    }

    #[test]
    fn a_pair_of_one_or_a_bad_cname_or_a_shared_name_is_refused() {
        let one =
            MANIFEST.replace("[\"prod-a\", \"acme-prod-b\"]", "[\"prod-a\", \"acme-prod-a\"]");
        let err = format!("{:#}", parse(&one).unwrap_err());
        assert!(err.contains("must name two different environments"), "{err}");
        let dotted = MANIFEST.replace("\"acme-prod\"", "\"acme.prod\"");
        let err = format!("{:#}", parse(&dotted).unwrap_err());
        assert!(err.contains("cname \"acme.prod\" is not a CNAME prefix"), "{err}");
        let shared =
            MANIFEST.replace("prod-a = {", "production = {").replace("\"prod-a\"", "\"x-1\"");
        let err = format!("{:#}", parse(&shared).unwrap_err());
        assert!(err.contains("production also names an environment"), "{err}");
        let twice = format!(
            "{MANIFEST}\n[workspace.metadata.deploy.blue_green.other]\nenvironments = \
             [\"acme-prod-b\", \"acme-x\"]\ncname = \"acme-other\"\n"
        );
        let err = format!("{:#}", parse(&twice).unwrap_err());
        assert!(err.contains("acme-prod-b is already in pair"), "{err}");
    }
}
