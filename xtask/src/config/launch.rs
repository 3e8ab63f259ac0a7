//! How `env create` makes an environment, and the entries of
//! `[workspace.metadata.deploy.environments]` that name each one (and may size it).

use serde::Deserialize;

use crate::config::options::Options;

/// The namespaces of the options a launch sets (EB developer guide, "General options for
/// all environments").
pub const EB_ENVIRONMENT: &str = "aws:elasticbeanstalk:environment";
pub const LAUNCH_CONFIGURATION: &str = "aws:autoscaling:launchconfiguration";
pub const EC2_INSTANCES: &str = "aws:ec2:instances";
pub const HEALTH_REPORTING: &str = "aws:elasticbeanstalk:healthreporting:system";

/// An entry of `[workspace.metadata.deploy.environments]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The Elastic Beanstalk environment name.
    pub name: String,
    /// The git branch that deploys to it when `deploy` is given no environment. Several
    /// environments may name the same branch: a deploy of it releases to all of them.
    pub branch: Option<String>,
    /// `env create`: the EC2 instance type, instead of the `instance_type` setting.
    pub instance_type: Option<String>,
    /// `env create`: one instance without a load balancer, instead of `single_instance`.
    pub single_instance: Option<bool>,
    /// `env create`: the CNAME prefix (`PREFIX.REGION.elasticbeanstalk.com`); else the
    /// environment's name.
    pub cname: Option<String>,
}

/// How an environment reports health (`health`, env `EB_HEALTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Per instance: what each runs and how it is. What the verdict of a deploy rests on.
    Enhanced,
    /// The environment's colour only (what the API gives unless told otherwise).
    Basic,
}

/// The load balancer of a load-balanced environment (`load_balancer`, env
/// `EB_LOAD_BALANCER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancer {
    Application,
    Network,
    Classic,
}

impl LoadBalancer {
    /// As the `LoadBalancerType` option names it.
    pub fn option_value(self) -> &'static str {
        match self {
            LoadBalancer::Application => "application",
            LoadBalancer::Network => "network",
            LoadBalancer::Classic => "classic",
        }
    }
}

/// How `env create` makes an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// A platform ARN that pins the platform; else the newest Docker on Amazon Linux 2023.
    pub platform: Option<String>,
    /// The EC2 instance type; else Elastic Beanstalk's default.
    pub instance_type: Option<String>,
    /// The instance profile the instances run with (it pulls from ECR, reads S3).
    pub instance_profile: String,
    /// The role Elastic Beanstalk manages the environment with.
    pub service_role: String,
    /// One instance with an Elastic IP, no load balancer; else load balanced.
    pub single_instance: bool,
    /// Enhanced unless set: through the API an environment gets basic health otherwise (AWS
    /// docs, "Enabling enhanced health reporting using the Elastic Beanstalk API").
    pub health: Health,
    /// Application unless set: through the API a load-balanced environment gets a Classic
    /// Load Balancer otherwise, which the console no longer offers.
    pub load_balancer: LoadBalancer,
    /// The CNAME prefix; else the environment's name (set per environment).
    pub cname: Option<String>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            platform: None,
            instance_type: None,
            instance_profile: Launch::DEFAULT_INSTANCE_PROFILE.to_owned(),
            service_role: Launch::DEFAULT_SERVICE_ROLE.to_owned(),
            single_instance: false,
            health: Health::Enhanced,
            load_balancer: LoadBalancer::Application,
            cname: None,
        }
    }
}

impl Launch {
    /// The names the EB console and the EB CLI give the roles they create.
    pub const DEFAULT_INSTANCE_PROFILE: &str = "aws-elasticbeanstalk-ec2-role";
    pub const DEFAULT_SERVICE_ROLE: &str = "aws-elasticbeanstalk-service-role";

    /// A new environment's option settings: the template's, then the launch's where the
    /// template does not set them (the template wins: it is the more specific).
    pub fn options(&self, template: &Options) -> Options {
        let mut options = template.clone();
        let kind = if self.single_instance { "SingleInstance" } else { "LoadBalanced" };
        options.or_add(EB_ENVIRONMENT, "EnvironmentType", kind);
        options.or_add(EB_ENVIRONMENT, "ServiceRole", &self.service_role);
        options.or_add(LAUNCH_CONFIGURATION, "IamInstanceProfile", &self.instance_profile);
        if let Some(instance_type) = &self.instance_type {
            // `InstanceType` of the launch configuration is obsolete; the first listed wins.
            options.or_add(EC2_INSTANCES, "InstanceTypes", instance_type);
        }
        if self.health == Health::Enhanced {
            options.or_add(HEALTH_REPORTING, "SystemType", "enhanced");
        }
        if !self.single_instance {
            options.or_add(EB_ENVIRONMENT, "LoadBalancerType", self.load_balancer.option_value());
        }
        options
    }

    /// The CNAME prefix of `environment`: the setting, else its name.
    pub fn cname_prefix<'a>(&'a self, environment: &'a str) -> &'a str {
        self.cname.as_deref().unwrap_or(environment)
    }
}
