//! A blue/green pair on Elastic Beanstalk: which of its two environments is live (holds the
//! pair's public CNAME) and which is idle, read from the service at every run: a swap made
//! in the console or with `eb swap` counts as much as ours.

use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;

use crate::config::pairs::Pair;
use crate::eb::{Eb, environments};
use crate::run::Context;

/// The pair's two environments as Elastic Beanstalk describes them now.
#[derive(Clone, Debug)]
pub struct Sides {
    pub live: EnvironmentDescription,
    pub idle: EnvironmentDescription,
}

impl Sides {
    pub fn live_name(&self) -> &str {
        self.live.environment_name().unwrap_or_default()
    }

    pub fn idle_name(&self) -> &str {
        self.idle.environment_name().unwrap_or_default()
    }

    pub fn live_version(&self) -> &str {
        self.live.version_label().unwrap_or("no version")
    }

    pub fn idle_version(&self) -> &str {
        self.idle.version_label().unwrap_or("no version")
    }
}

/// One side as `status PAIR` and a plan show it: role, name, version, status, health, URL.
pub fn line(role: &str, env: &EnvironmentDescription) -> String {
    let or_dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let health = match (env.health(), env.health_status()) {
        (Some(colour), Some(word)) => format!("{} ({})", colour.as_str(), word.as_str()),
        (Some(colour), None) => colour.as_str().to_owned(),
        _ => "-".to_owned(),
    };
    format!(
        "{role:<4}  {}  {}  {}  {health}  {}",
        or_dash(env.environment_name()),
        or_dash(env.version_label()),
        or_dash(env.status().map(|s| s.as_str())),
        env.cname().map_or_else(|| "-".to_owned(), |c| format!("http://{c}/")),
    )
}

/// Whether an environment's `CNAME` has the public prefix. Elastic Beanstalk gives it as
/// `PREFIX.REGION.elasticbeanstalk.com`, or `PREFIX.elasticbeanstalk.com` for environments
/// made before regional names (the EB developer guide's `eb swap` example shows one).
pub fn holds(env: &EnvironmentDescription, prefix: &str) -> bool {
    env.cname()
        .and_then(|cname| cname.split('.').next())
        .is_some_and(|first| first.eq_ignore_ascii_case(prefix))
}

/// Both environments, and which is live: the one whose CNAME has `prefix`. An error names
/// a missing environment, or says which CNAMEs they have when neither (or, read during a
/// swap, both) holds it.
pub async fn sides(ctx: &Context, eb: &Eb, pair: &Pair) -> anyhow::Result<Sides> {
    let (names, prefix) = (pair.names(), pair.cname.as_str());
    let pair = pair.key.as_str();
    let mut found = Vec::with_capacity(2);
    for name in names {
        match environments::find(ctx, eb, name).await? {
            Some(env) => found.push(env),
            None => anyhow::bail!(
                "environment {name} of blue/green pair {pair} not found in application {}: \
                 create the pair with `cargo xtask env create {pair}`, or fix \
                 [workspace.metadata.deploy.blue_green.{pair}]",
                eb.application
            ),
        }
    }
    let [a, b]: [EnvironmentDescription; 2] =
        found.try_into().map_err(|_| anyhow::anyhow!("internal error: two environments"))?;
    match (holds(&a, prefix), holds(&b, prefix)) {
        (true, false) => Ok(Sides { live: a, idle: b }),
        (false, true) => Ok(Sides { live: b, idle: a }),
        (both, _) => {
            let cname = |e: &EnvironmentDescription| e.cname().unwrap_or("none").to_owned();
            let [x, y] = names;
            let (which, fix) = if both {
                ("both", "a swap is under way: try again when it is over")
            } else {
                (
                    "neither",
                    "set `cname` of the pair to the prefix your users reach, or swap it onto one \
                     of them in the console",
                )
            };
            anyhow::bail!(
                "{which} of {x} (CNAME {}) and {y} (CNAME {}) holds {prefix}, the public CNAME \
                 of pair {pair}: {fix}",
                cname(&a),
                cname(&b)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cname: &str) -> EnvironmentDescription {
        EnvironmentDescription::builder().cname(cname).build()
    }

    #[test]
    fn the_public_prefix_is_the_first_label_of_the_cname() {
        assert!(holds(&env("acme-prod.eu-west-1.elasticbeanstalk.com"), "acme-prod"));
        assert!(holds(&env("Acme-Prod.elasticbeanstalk.com"), "acme-prod"));
        assert!(!holds(&env("acme-prod-b.eu-west-1.elasticbeanstalk.com"), "acme-prod"));
        assert!(!holds(&EnvironmentDescription::builder().build(), "acme-prod"));
    }
}
