//! Registry credentials: a user and a password, as `docker login` takes them and as the
//! docker config that Elastic Beanstalk's instances pull with carries them. The instances
//! get their own: `REGISTRY_PULL_USERNAME` and `REGISTRY_PULL_PASSWORD`, a read-only robot
//! account (quay.io and Docker Hub both have them), so that an instance started later (a
//! scale-out, a replacement) never pulls with the short-lived token of whoever deployed
//! last.

use anyhow::bail;

use crate::run::Env;
use crate::run::secret::Secret;

/// `REGISTRY_USERNAME` and `REGISTRY_PASSWORD`, both required to push.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    /// `REGISTRY_PULL_USERNAME` and `REGISTRY_PULL_PASSWORD`, the instances' own; `None`
    /// when neither is set, an error naming the other when one is.
    pub fn pull_from_env(env: &Env) -> anyhow::Result<Option<Credentials>> {
        let (user, password) =
            (env.get("REGISTRY_PULL_USERNAME"), env.get("REGISTRY_PULL_PASSWORD"));
        match (user, password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => Ok(Some(Credentials {
                username: username.to_owned(),
                password: Secret::new(password),
            })),
            (Some(_), None) => bail!(
                "REGISTRY_PULL_USERNAME is set but REGISTRY_PULL_PASSWORD is not: the instances' \
                 pull credentials need both (or neither)"
            ),
            (None, Some(_)) => bail!(
                "REGISTRY_PULL_PASSWORD is set but REGISTRY_PULL_USERNAME is not: the instances' \
                 pull credentials need both (or neither)"
            ),
        }
    }

    pub fn from_env(env: &Env, registry: &str) -> anyhow::Result<Credentials> {
        let missing: Vec<&str> = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
            .into_iter()
            .filter(|name| env.get(name).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} not set: pushing to {registry} needs REGISTRY_USERNAME and REGISTRY_PASSWORD \
                 (in CI, from a context; never in a file)",
                missing.join(" and ")
            );
        }
        Ok(Credentials {
            username: env.get("REGISTRY_USERNAME").unwrap_or_default().to_owned(),
            password: Secret::new(env.get("REGISTRY_PASSWORD").unwrap_or_default()),
        })
    }
}

impl Credentials {
    /// `base64(user:password)`, as a docker config carries it: as secret as the password.
    pub fn token(&self) -> Secret {
        use base64::Engine as _;
        let pair = format!("{}:{}", self.username, self.password.expose());
        Secret::new(base64::engine::general_purpose::STANDARD.encode(pair))
    }

    /// The docker config (`{"auths": …}`, what `docker login` writes) with these
    /// credentials for `registry`: what Elastic Beanstalk reads to pull from it.
    pub fn docker_config(&self, registry: &str) -> Secret {
        let auths = serde_json::json!({ "auths": { server_key(registry): { "auth": self.token().expose() } } });
        Secret::new(auths.to_string())
    }
}

/// The key docker's config uses for `registry` (Docker Hub keeps its historical URL).
pub fn server_key(registry: &str) -> &str {
    if registry == "docker.io" { "https://index.docker.io/v1/" } else { registry }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docker_config_for_elastic_beanstalk_carries_the_token() {
        let credentials =
            Credentials { username: "acme+deployer".into(), password: Secret::new("pw") };
        let file = credentials.docker_config("quay.io");
        let json: serde_json::Value = serde_json::from_str(file.expose()).unwrap();
        assert_eq!(json["auths"]["quay.io"]["auth"], "YWNtZStkZXBsb3llcjpwdw==");
        assert!(
            credentials.docker_config("docker.io").expose().contains("https://index.docker.io/v1/")
        );
        assert_eq!(format!("{file:?} {:?}", credentials.token()), "*** ***");
    }

    #[test]
    fn missing_credentials_are_named() {
        let env = Env::default().with("REGISTRY_USERNAME", "robot");
        let err = Credentials::from_env(&env, "quay.io").unwrap_err().to_string();
        assert!(err.starts_with("REGISTRY_PASSWORD not set"), "{err}");
    }
}
