//! moto's IAM: the instance profile and service role that `env create` checks and the
//! Elastic Beanstalk fake's launch needs, made for one test and removed when it ends.

use super::{moto, unique};

/// A signed IAM client for moto, with a runtime of its own for synchronous test code.
pub struct Iam {
    client: aws_sdk_iam::Client,
    runtime: tokio::runtime::Runtime,
}

impl Iam {
    pub fn new() -> Iam {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", moto()))
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .http_client(http)
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Iam { client: aws_sdk_iam::Client::from_conf(config), runtime }
    }

    /// Whether the instance profile exists and has a role (what an instance needs).
    pub fn instance_profile_has_role(&self, name: &str) -> bool {
        let got = self
            .runtime
            .block_on(self.client.get_instance_profile().instance_profile_name(name).send());
        got.is_ok_and(|g| g.instance_profile().is_some_and(|p| !p.roles().is_empty()))
    }

    fn create_role(&self, name: &str, service: &str) {
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        self.runtime
            .block_on(
                self.client.create_role().role_name(name).assume_role_policy_document(trust).send(),
            )
            .unwrap();
    }

    fn delete_role(&self, name: &str) {
        let _ = self.runtime.block_on(self.client.delete_role().role_name(name).send());
    }
}

/// An instance profile (with its role) and a service role of unique names, as the EB
/// console makes them; removed when dropped.
pub struct Roles {
    pub instance_profile: String,
    pub service_role: String,
    iam: Iam,
}

impl Roles {
    pub fn new() -> Roles {
        Roles::make(true)
    }

    /// The instance profile holds no role (a launch's instances would get no credentials).
    pub fn with_an_empty_instance_profile() -> Roles {
        Roles::make(false)
    }

    fn make(role_in_profile: bool) -> Roles {
        let iam = Iam::new();
        let instance_profile = unique("xtask-ec2-role");
        let service_role = unique("xtask-service-role");
        iam.create_role(&instance_profile, "ec2.amazonaws.com");
        iam.runtime
            .block_on(
                iam.client
                    .create_instance_profile()
                    .instance_profile_name(&instance_profile)
                    .send(),
            )
            .unwrap();
        if role_in_profile {
            iam.runtime
                .block_on(
                    iam.client
                        .add_role_to_instance_profile()
                        .instance_profile_name(&instance_profile)
                        .role_name(&instance_profile)
                        .send(),
                )
                .unwrap();
        }
        iam.create_role(&service_role, "elasticbeanstalk.amazonaws.com");
        Roles { instance_profile, service_role, iam }
    }

    /// The settings that name them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("EB_INSTANCE_PROFILE", self.instance_profile.clone()),
            ("EB_SERVICE_ROLE", self.service_role.clone()),
        ]
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let (iam, profile) = (&self.iam, &self.instance_profile);
        let _ = iam.runtime.block_on(
            iam.client
                .remove_role_from_instance_profile()
                .instance_profile_name(profile)
                .role_name(profile)
                .send(),
        );
        let _ = iam
            .runtime
            .block_on(iam.client.delete_instance_profile().instance_profile_name(profile).send());
        iam.delete_role(profile);
        iam.delete_role(&self.service_role);
    }
}
