//! Amazon ECR on this machine: moto's ECR API (`.ci/moto`), reached with the real SDK client
//! as any ECR client reaches it, and the registry standing in for ECR's (`.ci/registry`,
//! 127.0.0.1:5001), which takes user `AWS` with the password in moto's token.

use super::{Registry, docker, moto, registry_file, unique};

/// The registry standing in for ECR's.
pub fn registry() -> Registry {
    Registry {
        addr: "127.0.0.1:5001".to_owned(),
        username: "AWS".to_owned(),
        password: registry_file("ecr-password"),
    }
}

/// The token moto's `GetAuthorizationToken` answers: base64 of `AWS:PASSWORD`.
pub fn token() -> String {
    use base64::Engine as _;
    let registry = registry();
    let pair = format!("{}:{}", registry.username, registry.password);
    base64::engine::general_purpose::STANDARD.encode(pair)
}

/// A repository of a unique name: in moto's ECR (created now, or left for the xtask to
/// create), and the image `127.0.0.1:5001/NAME`. When the test ends, the repository is
/// deleted from moto, and every tag the daemon holds of the image from the registry and
/// the daemon.
pub struct Repository {
    pub name: String,
    pub image: String,
    client: aws_sdk_ecr::Client,
    runtime: tokio::runtime::Runtime,
}

impl Repository {
    pub fn new(create: bool) -> Repository {
        use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
        let moto = moto();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_ecr::Config::builder()
            .http_client(http)
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{moto}"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let name = format!("xtask-it/{}", unique("ecr"));
        let repository = Repository {
            image: format!("{}/{name}", registry().addr),
            name,
            client: aws_sdk_ecr::Client::from_conf(config),
            runtime,
        };
        if create {
            let created = repository.client.create_repository().repository_name(&repository.name);
            repository.runtime.block_on(created.send()).unwrap();
        }
        repository
    }

    /// Whether moto's ECR has the repository.
    pub fn exists(&self) -> bool {
        let described = self.client.describe_repositories().repository_names(&self.name);
        self.runtime.block_on(described.send()).is_ok()
    }

    /// What a deploy or a push to this repository needs: the image, ECR forced (the host is
    /// not an ECR host), moto as ECR's API, and no registry password at all.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("DEPLOY_IMAGE", self.image.clone()),
            ("DEPLOY_REGISTRY", "ecr".to_owned()),
            ("AWS_ENDPOINT_URL_ECR", format!("http://{}", moto())),
            ("REGISTRY_USERNAME", String::new()),
            ("REGISTRY_PASSWORD", String::new()),
            ("CIRCLE_SHA1", String::new()),
        ];
        env.extend(super::aws_test_credentials());
        env
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        let deleted = self.client.delete_repository().repository_name(&self.name).force(true);
        let _ = self.runtime.block_on(deleted.send());
        let registry = registry();
        let out = docker(&["images", "--format", "{{.Tag}}", &self.image]);
        for tag in String::from_utf8_lossy(&out.stdout).lines() {
            registry.delete(&self.name, tag);
            docker(&["rmi", "--force", &format!("{}:{tag}", self.image)]);
        }
    }
}
