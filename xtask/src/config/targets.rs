//! The environments a command acts on: named on the command line (a key of
//! `[workspace.metadata.deploy.environments]`, or an Elastic Beanstalk environment name), or
//! the ones mapped to the branch being deployed; the launch settings of each; and which are
//! production.

use anyhow::bail;

use crate::config::launch::Launch;
use crate::config::settings::Settings;

/// An environment a command acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The key under `environments`, when the environment is named there.
    pub key: Option<String>,
    /// The Elastic Beanstalk environment name.
    pub name: String,
}

impl Target {
    /// What `$DEPLOY_ENV` means in the options template: the key, else the EB name.
    pub fn deploy_env(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.name)
    }
}

impl Settings {
    /// The environments to act on: each of `args` (a key, else an EB environment name), or
    /// without any, every environment mapped to `branch` (asked only then).
    pub fn targets(
        &self,
        args: &[String],
        branch: impl FnOnce() -> anyhow::Result<Option<String>>,
    ) -> anyhow::Result<Vec<Target>> {
        if !args.is_empty() {
            let targets: Vec<Target> = args.iter().map(|arg| self.named(arg)).collect();
            for (i, target) in targets.iter().enumerate() {
                if let Some(twice) = targets[..i].iter().find(|t| t.name == target.name) {
                    bail!(
                        "environment {} is given twice (as {} and {}): name each environment once",
                        target.name,
                        args[targets.iter().position(|t| t == twice).unwrap_or(0)],
                        args[i]
                    );
                }
            }
            return Ok(targets);
        }
        let Some(branch) = branch()? else {
            bail!(
                "no environment given and no branch checked out (detached HEAD): pass ENV, e.g. `{}`",
                self.example()
            );
        };
        let mapped: Vec<Target> = self
            .environments
            .iter()
            .filter(|(_, env)| env.branch.as_deref() == Some(&branch))
            .map(|(key, env)| Target { key: Some(key.clone()), name: env.name.clone() })
            .collect();
        if !mapped.is_empty() {
            return Ok(mapped);
        }
        if let Some(name) = self.branch_defaults.get(&branch) {
            return Ok(vec![Target { key: None, name: name.clone() }]);
        }
        let mut mappings: Vec<String> = self
            .environments
            .iter()
            .filter_map(|(key, env)| {
                env.branch.as_ref().map(|b| format!("{b} -> {key} ({})", env.name))
            })
            .collect();
        mappings.extend(self.branch_defaults.iter().map(|(b, name)| format!("{b} -> {name}")));
        let known = if mappings.is_empty() { "none".to_owned() } else { mappings.join(", ") };
        bail!(
            "branch {branch:?} deploys nowhere: pass ENV, or map the branch in \
             [workspace.metadata.deploy.environments] (mapped branches: {known})"
        )
    }

    /// The one environment to act on: `arg`, else the one mapped to `branch`.
    pub fn target(
        &self,
        arg: Option<&str>,
        branch: impl FnOnce() -> anyhow::Result<Option<String>>,
    ) -> anyhow::Result<Target> {
        if let Some(arg) = arg {
            return Ok(self.named(arg));
        }
        let mut targets = self.targets(&[], branch)?;
        if targets.len() > 1 {
            let names: Vec<&str> = targets.iter().map(|t| t.deploy_env()).collect();
            bail!(
                "the branch deploys to {} environments ({}): pass ENV, the one to act on",
                names.len(),
                names.join(", ")
            );
        }
        Ok(targets.remove(0))
    }

    /// `arg` as a key of `environments`, else as an Elastic Beanstalk name.
    pub(crate) fn named(&self, arg: &str) -> Target {
        if let Some(env) = self.environments.get(arg) {
            return Target { key: Some(arg.to_owned()), name: env.name.clone() };
        }
        let by_name = self.environments.iter().find(|(_, env)| env.name == arg);
        Target { key: by_name.map(|(key, _)| key.clone()), name: arg.to_owned() }
    }

    fn example(&self) -> String {
        match self.environments.keys().next() {
            Some(key) => format!("cargo xtask deploy {key}"),
            None => "cargo xtask deploy my-eb-env".to_owned(),
        }
    }

    /// Every environment the settings name (the table's, then `branch-defaults`' others).
    pub fn mapped(&self) -> Vec<Target> {
        let mut all: Vec<Target> = self
            .environments
            .iter()
            .map(|(key, env)| Target { key: Some(key.clone()), name: env.name.clone() })
            .collect();
        for name in self.branch_defaults.values() {
            if !all.iter().any(|t| &t.name == name) {
                all.push(Target { key: None, name: name.clone() });
            }
        }
        all
    }

    /// How `env create` makes `target`: the settings, with its entry's own size.
    pub fn launch(&self, target: &Target) -> Launch {
        let entry = target.key.as_ref().and_then(|key| self.environments.get(key));
        Launch {
            instance_type: entry
                .and_then(|e| e.instance_type.clone())
                .or_else(|| self.launch.instance_type.clone()),
            single_instance: entry
                .and_then(|e| e.single_instance)
                .unwrap_or(self.launch.single_instance),
            cname: entry.and_then(|e| e.cname.clone()),
            ..self.launch.clone()
        }
    }

    /// The production branch `target` is deployed from, if it is (by the table's `branch`
    /// or `.elasticbeanstalk/config.yml`'s `branch-defaults`).
    pub fn production_branch(&self, target: &Target) -> Option<&str> {
        let from_table = self
            .environments
            .values()
            .filter(|env| env.name == target.name)
            .filter_map(|env| env.branch.as_deref());
        let from_eb_cli = self
            .branch_defaults
            .iter()
            .filter(|(_, name)| **name == target.name)
            .map(|(branch, _)| branch.as_str());
        from_table.chain(from_eb_cli).find(|b| self.production_branches.iter().any(|p| p == b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Env;

    const MANIFEST: &str = r#"
[workspace.metadata.deploy]
application = "acme-web"
instance_type = "t3.small"
production_branches = ["release/prd"]

[workspace.metadata.deploy.environments]
staging = { name = "acme-web-stg", branch = "release/stg", single_instance = true }
production-eu = { name = "acme-web-prd-eu", branch = "release/prd" }
production-us = { name = "acme-web-prd-us", branch = "release/prd", instance_type = "t3.large" }
"#;

    fn settings() -> Settings {
        Settings::parse(MANIFEST, &Env::default()).unwrap()
    }

    fn names(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn environments_resolve_by_key_name_or_branch() {
        let settings = settings();
        let by_key = settings.target(Some("staging"), || unreachable!()).unwrap();
        assert_eq!(
            (by_key.key.as_deref(), by_key.name.as_str()),
            (Some("staging"), "acme-web-stg")
        );
        let by_name = settings.target(Some("acme-web-stg"), || unreachable!()).unwrap();
        assert_eq!(by_name.deploy_env(), "staging");
        let raw = settings.target(Some("other-env"), || unreachable!()).unwrap();
        assert_eq!((raw.key, raw.name.as_str()), (None, "other-env"));
        let by_branch = settings.target(None, || Ok(Some("release/stg".into()))).unwrap();
        assert_eq!(by_branch.name, "acme-web-stg");
    }

    #[test]
    fn a_branch_may_deploy_to_several_environments() {
        let settings = settings();
        let both = settings.targets(&[], || Ok(Some("release/prd".into()))).unwrap();
        assert_eq!(names(&both), ["acme-web-prd-eu", "acme-web-prd-us"]);
        let args = ["staging".to_owned(), "acme-web-prd-us".to_owned()];
        let given = settings.targets(&args, || unreachable!()).unwrap();
        assert_eq!(names(&given), ["acme-web-stg", "acme-web-prd-us"]);
        let err = settings.target(None, || Ok(Some("release/prd".into()))).unwrap_err();
        assert!(err.to_string().contains("2 environments (production-eu, production-us)"));
        let twice = ["staging".to_owned(), "acme-web-stg".to_owned()];
        let err = settings.targets(&twice, || unreachable!()).unwrap_err().to_string();
        assert_eq!(
            err,
            "environment acme-web-stg is given twice (as staging and acme-web-stg): name each \
             environment once"
        );
    }

    #[test]
    fn an_unmapped_branch_lists_the_mappings() {
        let settings = settings();
        let err = settings.target(None, || Ok(Some("feature/x".into()))).unwrap_err().to_string();
        assert!(err.starts_with("branch \"feature/x\" deploys nowhere: pass ENV"), "{err}");
        assert!(err.contains("release/stg -> staging (acme-web-stg)"), "{err}");
        let err = settings.target(None, || Ok(None)).unwrap_err().to_string();
        assert!(err.contains("cargo xtask deploy production-eu"), "{err}");
    }

    #[test]
    fn an_environment_may_size_itself_and_the_roles_default_to_eb_own() {
        let settings = settings();
        let launch = |arg: &str| settings.launch(&settings.target(Some(arg), || Ok(None)).unwrap());
        let staging = launch("staging");
        assert_eq!(staging.instance_type.as_deref(), Some("t3.small"));
        assert!(staging.single_instance);
        assert_eq!(staging.instance_profile, "aws-elasticbeanstalk-ec2-role");
        assert_eq!(staging.service_role, "aws-elasticbeanstalk-service-role");
        let us = launch("production-us");
        assert_eq!((us.instance_type.as_deref(), us.single_instance), (Some("t3.large"), false));
        let env =
            Env::default().with("EB_INSTANCE_PROFILE", "acme-ec2").with("EB_PLATFORM", "arn:x");
        let overridden = Settings::parse(MANIFEST, &env).unwrap().launch;
        assert_eq!(overridden.instance_profile, "acme-ec2");
        assert_eq!(overridden.platform.as_deref(), Some("arn:x"));
    }

    #[test]
    fn production_is_what_a_production_branch_deploys() {
        let settings = settings();
        let target = |arg: &str| settings.target(Some(arg), || Ok(None)).unwrap();
        assert_eq!(settings.production_branch(&target("production-eu")), Some("release/prd"));
        assert_eq!(settings.production_branch(&target("acme-web-prd-us")), Some("release/prd"));
        assert_eq!(settings.production_branch(&target("staging")), None);
        let mut eb_cli = Settings::parse("", &Env::default()).unwrap();
        assert_eq!(eb_cli.production_branches, ["main", "master"]);
        eb_cli.branch_defaults.insert("main".into(), "web-prod".into());
        let prod = Target { key: None, name: "web-prod".into() };
        assert_eq!(eb_cli.production_branch(&prod), Some("main"));
        let env = Env::default().with("DEPLOY_PRODUCTION_BRANCHES", "trunk, live");
        let listed = Settings::parse("", &env).unwrap().production_branches;
        assert_eq!(listed, ["trunk", "live"]);
    }
}
