//! Amazon ECR as the registry: no static password, and no auth file for Elastic Beanstalk
//! (the instance profile pulls from ECR itself). `docker login` gets a token from
//! `GetAuthorizationToken` through the standard AWS credential chain (valid 12 hours, for
//! every ECR registry the identity may use); then the repository is checked, or created
//! when a setting says so. All of it before anything is built.

use anyhow::{Context as _, bail};
use aws_sdk_ecr::types::ImageTagMutability;

use crate::aws::{AwsError, Clients, Deadline, Service};
use crate::docker::credentials::Credentials;
use crate::run::Context;
use crate::run::secret::Secret;

/// What the image's host says of an ECR registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub account: String,
    pub region: String,
}

/// Recognises the hosts of ECR's private registries as the Amazon ECR credential helper
/// does (`ecr-login/api/client.go`, `ecrPattern`, v0.11): `ACCOUNT.dkr.ecr.REGION.amazonaws.com`,
/// its FIPS form (`dkr.ecr-fips`), the dual-stack form (`ACCOUNT.dkr-ecr.REGION.on.aws`),
/// and the other partitions (`amazonaws.com.cn`, the European sovereign cloud, the isolated
/// ones).
pub fn parse_host(host: &str) -> Option<Host> {
    const SUFFIXES: [&str; 9] = [
        "amazonaws.com",
        "amazonaws.com.cn",
        "amazonaws.eu",
        "on.amazonwebservices.com.cn",
        "sc2s.sgov.gov",
        "c2s.ic.gov",
        "cloud.adc-e.uk",
        "csp.hci.ic.gov",
        "on.aws",
    ];
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = ["dkr.ecr.", "dkr.ecr-fips.", "dkr-ecr.", "dkr-ecr-fips."]
        .iter()
        .find_map(|service| rest.strip_prefix(service))?;
    let (region, suffix) = rest.split_once('.')?;
    let region_ok = region.starts_with(|c: char| c.is_ascii_alphanumeric())
        && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (region_ok && SUFFIXES.contains(&suffix))
        .then(|| Host { account: account.to_owned(), region: region.to_owned() })
}

/// An ECR registry and the repository the image goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ecr {
    /// The registry as docker addresses it.
    pub registry: String,
    /// Its account and region, when the host is an ECR host (not when `registry = "ecr"`
    /// points at another one, as the tests do).
    pub host: Option<Host>,
    /// The repository: the image's path after the host (`acme/web`).
    pub repository: String,
    /// Create the repository when it is missing (`create_repository`).
    pub create_repository: bool,
}

impl Ecr {
    pub fn new(registry: &str, repository: &str, create_repository: bool) -> Ecr {
        let name = repository.strip_prefix(registry).unwrap_or(repository);
        Ecr {
            registry: registry.to_owned(),
            host: parse_host(registry),
            repository: name.trim_start_matches('/').to_owned(),
            create_repository,
        }
    }

    /// The region of the ECR calls: the host's, else the clients' own.
    pub fn region(&self) -> Option<&str> {
        self.host.as_ref().map(|h| h.region.as_str())
    }

    fn account(&self) -> Option<&str> {
        self.host.as_ref().map(|h| h.account.as_str())
    }

    /// The plan's lines for what [`Ecr::authorize`] does.
    pub fn plan(&self) -> Vec<String> {
        let region = self.region().map_or_else(String::new, |r| format!(" in {r}"));
        let missing = if self.create_repository {
            "create it when missing (create_repository)"
        } else {
            "an error when missing (create_repository is off)"
        };
        vec![
            format!(
                "get an ECR authorization token (GetAuthorizationToken{region}): the password of \
                 user AWS"
            ),
            format!(
                "check the ECR repository {} (DescribeRepositories{region}): {missing}",
                self.repository
            ),
        ]
    }

    /// A token, then the repository checked (or created): the credentials `docker login`
    /// takes. The token comes first: it shows whether the AWS credentials work at all.
    pub async fn authorize(
        &self,
        ctx: &Context,
        clients: &Clients,
        deadline: Deadline,
    ) -> anyhow::Result<Credentials> {
        let doing = "get an ECR authorization token (GetAuthorizationToken)";
        let answer = clients
            .call(ctx, Service::Ecr, doing, deadline, || {
                clients.ecr.get_authorization_token().send()
            })
            .await?;
        let token = answer
            .authorization_data()
            .first()
            .and_then(|data| data.authorization_token())
            .with_context(|| format!("{doing}: ECR answered without a token"))?;
        let credentials = decode(token).with_context(|| {
            format!("{doing}: ECR answered a token that is not base64 of USER:PASSWORD")
        })?;
        ctx.ui.hide(&Secret::new(token));
        ctx.ui.hide(&credentials.password);
        let repository = self.repository(ctx, clients, deadline).await?;
        ctx.ui.info(format_args!(
            "ECR token from GetAuthorizationToken; repository {} {repository}",
            self.repository
        ));
        Ok(credentials)
    }

    /// Whether the repository exists; created when missing and the setting says so. Says
    /// which: `found` or `created (tags immutable)`.
    async fn repository(
        &self,
        ctx: &Context,
        clients: &Clients,
        deadline: Deadline,
    ) -> anyhow::Result<&'static str> {
        let name = &self.repository;
        let doing = format!("look up the ECR repository {name} (DescribeRepositories)");
        let found = clients
            .call(ctx, Service::Ecr, &doing, deadline, || {
                clients
                    .ecr
                    .describe_repositories()
                    .set_registry_id(self.account().map(str::to_owned))
                    .repository_names(name)
                    .send()
            })
            .await;
        match found {
            Ok(_) => return Ok("found"),
            Err(err) if AwsError::code_of(&err) == Some("RepositoryNotFoundException") => {}
            Err(err) => return Err(err),
        }
        let registry = &self.registry;
        if !self.create_repository {
            bail!(
                "ECR repository {name} does not exist in {registry}: create it (`aws ecr \
                 create-repository --repository-name {name}`), or set `create_repository = \
                 true` in [workspace.metadata.deploy] (or DEPLOY_CREATE_REPOSITORY=true) and \
                 allow ecr:CreateRepository"
            );
        }
        let doing = format!("create the ECR repository {name} (CreateRepository)");
        clients
            .call(ctx, Service::Ecr, &doing, deadline, || {
                clients
                    .ecr
                    .create_repository()
                    .set_registry_id(self.account().map(str::to_owned))
                    .repository_name(name)
                    .image_tag_mutability(ImageTagMutability::Immutable)
                    .send()
            })
            .await?;
        Ok("created (tags immutable)")
    }
}

/// `base64(USER:PASSWORD)`, as `GetAuthorizationToken` answers (the user is `AWS`).
fn decode(token: &str) -> anyhow::Result<Credentials> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(token.trim())?;
    let text = String::from_utf8(bytes)?;
    let (username, password) = text.split_once(':').context("no ':' in the token")?;
    Ok(Credentials { username: username.to_owned(), password: Secret::new(password) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_are_recognised_in_every_partition_and_form() {
        let host = |account: &str, region: &str| {
            Some(Host { account: account.to_owned(), region: region.to_owned() })
        };
        assert_eq!(
            parse_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            host("123456789012", "eu-west-1")
        );
        assert_eq!(
            parse_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            host("123456789012", "cn-north-1")
        );
        assert_eq!(
            parse_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"),
            host("123456789012", "us-gov-west-1")
        );
        assert_eq!(
            parse_host("123456789012.dkr-ecr.us-east-1.on.aws"),
            host("123456789012", "us-east-1")
        );
        for other in [
            "quay.io",
            "127.0.0.1:5000",
            "12345678901.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example",
            "public.ecr.aws",
            "123456789012.dkr.ecr.eu-west-1.example.com",
        ] {
            assert_eq!(parse_host(other), None, "{other}");
        }
    }

    #[test]
    fn the_repository_is_the_path_after_the_host() {
        let ecr = Ecr::new("127.0.0.1:5001", "127.0.0.1:5001/acme/web", false);
        assert_eq!((ecr.repository.as_str(), ecr.host.clone()), ("acme/web", None));
        let ecr = Ecr::new(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web",
            true,
        );
        assert_eq!((ecr.repository.as_str(), ecr.region()), ("web", Some("eu-west-1")));
    }

    #[test]
    fn a_token_is_the_base64_of_user_and_password() {
        let credentials = decode("QVdTOnNlY3JldDpwYXJ0").unwrap();
        assert_eq!(
            (credentials.username.as_str(), credentials.password.expose()),
            ("AWS", "secret:part")
        );
        assert!(decode("not base64!").is_err());
        assert!(decode("QVdT").is_err(), "no password");
    }
}
