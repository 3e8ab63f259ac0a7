//! Applications, platforms, and environments created and terminated. Sources: the API
//! reference and service model (parameters, answers, `Launching`/`Ready`,
//! `Terminating`/`Terminated`), the EB developer guide ("Events": the order of a launch's
//! events), the EB CLI (`ebcli/resources/strings.py`, `commonops.py`: the messages it waits
//! for, and that a launch's events carry the CreateEnvironment RequestId), and the issue
//! threads named below.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Instant, SystemTime};

use super::{
    Deploy, Environment, Form, INSTANCE, NAMESPACE, State, World, el, error, iso8601, members, ok,
    option_settings, request_id,
};
use crate::support::iam::Iam;

/// The platform versions listed: (branch, version, lifecycle state). The newest Docker on
/// Amazon Linux 2023 is not the one marked recommended, as happens between releases; and
/// versions sort as numbers (4.10 after 4.9).
pub const PLATFORMS: [(&str, &str, &str); 5] = [
    ("Docker running on 64bit Amazon Linux 2023", "4.4.0", ""),
    ("Docker running on 64bit Amazon Linux 2023", "4.9.1", ""),
    ("Docker running on 64bit Amazon Linux 2023", "4.10.0", "Recommended"),
    ("Docker running on 64bit Amazon Linux 2023", "4.10.1", ""),
    ("Docker running on 64bit Amazon Linux 2", "3.9.9", "Recommended"),
];

/// `arn:aws:elasticbeanstalk:REGION::platform/NAME/VERSION`: AWS's platforms have no
/// account in their ARN.
pub fn platform_arn((branch, version, _): (&str, &str, &str)) -> String {
    format!("arn:aws:elasticbeanstalk:us-east-1::platform/{branch}/{version}")
}

impl World {
    pub(super) fn create_application(&self, s: &mut State, form: &Form) -> (&'static str, String) {
        let name = form.get("ApplicationName").cloned().unwrap_or_default();
        if !s.applications.insert(name.clone()) {
            // EB CLI strings: "Application {name} already exists."
            return error("InvalidParameterValue", &format!("Application {name} already exists."));
        }
        ok("CreateApplication", &format!("<Application>{}</Application>", application_xml(&name)))
    }

    pub(super) fn describe_applications(&self, s: &State, form: &Form) -> (&'static str, String) {
        // Unknown names are left out, not errors.
        let wanted = members(form, "ApplicationNames");
        let listed: String = s
            .applications
            .iter()
            .filter(|name| wanted.is_empty() || wanted.contains(name))
            .map(|name| format!("<member>{}</member>", application_xml(name)))
            .collect();
        ok("DescribeApplications", &format!("<Applications>{listed}</Applications>"))
    }

    /// ListPlatformVersions: `Filters` (Type, Operator, Values) all apply; `MaxRecords` and
    /// `NextToken` page.
    pub(super) fn list_platform_versions(&self, form: &Form) -> (&'static str, String) {
        let mut matching: Vec<(&str, &str, &str)> = PLATFORMS.to_vec();
        for n in 1.. {
            let field = |f: &str| form.get(&format!("Filters.member.{n}.{f}")).cloned();
            let Some(kind) = field("Type") else { break };
            let operator = field("Operator").unwrap_or_else(|| "=".into());
            let values = members(form, &format!("Filters.member.{n}.Values"));
            let value = |p: &(&str, &str, &str)| match kind.as_str() {
                "PlatformBranchName" | "PlatformName" => Some(p.0.to_owned()),
                "PlatformVersion" => Some(p.1.to_owned()),
                "PlatformLifecycleState" => Some(p.2.to_owned()),
                "PlatformStatus" => Some("Ready".to_owned()),
                _ => None,
            };
            if value(&PLATFORMS[0]).is_none() {
                return error("InvalidParameterValue", &format!("Invalid filter type: {kind}"));
            }
            let test = |v: &str, w: &str| match operator.as_str() {
                "=" => Some(v == w),
                "!=" => Some(v != w),
                "contains" => Some(v.contains(w)),
                "begins_with" => Some(v.starts_with(w)),
                "ends_with" => Some(v.ends_with(w)),
                _ => None,
            };
            if test("", "").is_none() {
                return error("InvalidParameterValue", &format!("Invalid operator: {operator}"));
            }
            matching.retain(|p| {
                let v = value(p).unwrap_or_default();
                values.iter().any(|w| test(&v, w) == Some(true))
            });
        }
        let (listed, next) = self.page(form, &matching, |p| {
            format!(
                "{}{}{}{}{}{}{}",
                el("PlatformArn", &platform_arn(*p)),
                el("PlatformOwner", "AWSElasticBeanstalk"),
                el("PlatformStatus", "Ready"),
                el("PlatformCategory", "Docker"),
                el("PlatformBranchName", p.0),
                el("PlatformVersion", p.1),
                if p.2.is_empty() { String::new() } else { el("PlatformLifecycleState", p.2) },
            )
        });
        ok(
            "ListPlatformVersions",
            &format!("<PlatformSummaryList>{listed}</PlatformSummaryList>{next}"),
        )
    }

    pub(super) fn create_environment(&self, form: &Form) -> (&'static str, String) {
        let name = form.get("EnvironmentName").cloned().unwrap_or_default();
        let application = form.get("ApplicationName").cloned().unwrap_or_default();
        // The service model: 4 to 40 characters; the API reference: letters, digits and
        // hyphens, not first or last.
        if name.len() < 4 || name.len() > 40 {
            let bound = if name.len() < 4 {
                "greater than or equal to 4"
            } else {
                "less than or equal to 40"
            };
            return error(
                "ValidationError",
                &format!(
                    "1 validation error detected: Value '{name}' at 'environmentName' failed to \
                     satisfy constraint: Member must have length {bound}"
                ),
            );
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || name.starts_with('-')
            || name.ends_with('-')
        {
            return error(
                "InvalidParameterValue",
                &format!(
                    "Value {name} at 'EnvironmentName' failed to satisfy constraint: Member must \
                     contain only letters, digits, and the dash character and may not start or end \
                     with a dash"
                ),
            );
        }
        let mut s = self.state.lock().unwrap();
        if !s.applications.contains(&application) {
            return error(
                "InvalidParameterValue",
                &format!("No Application named '{application}' found."),
            );
        }
        if s.environments.contains_key(&name) {
            return error("InvalidParameterValue", &format!("Environment {name} already exists."));
        }
        let label = form.get("VersionLabel").cloned();
        let bundle = match s.bundle(label.as_deref()) {
            Ok(bundle) => bundle,
            Err(refused) => return refused,
        };
        let platforms: Vec<String> = PLATFORMS.iter().map(|p| platform_arn(*p)).collect();
        let platform = match form.get("PlatformArn") {
            Some(arn) if platforms.contains(arn) => arn.clone(),
            // Inferred from the solution stack's: "No Solution Stack named '…'".
            Some(arn) => {
                return error(
                    "InvalidParameterValue",
                    &format!("No Platform named '{arn}' found."),
                );
            }
            // EB CLI strings, `create.noplatform`.
            None => {
                return error(
                    "InvalidParameterValue",
                    "Unable to determine base for template pack (no solution stack)",
                );
            }
        };
        let options = option_settings(form);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let env = Environment {
            name: name.clone(),
            id: format!("e-{}", &request_id()[24..]),
            status: "Launching".into(),
            health: "Grey".into(),
            label: label.clone(),
            port,
            options: options.clone(),
            platform,
            updated: SystemTime::now(),
            ready_at: None,
            serving: None,
        };
        s.environments.insert(name.clone(), env.clone());
        let request = request_id();
        let faults = s.faults.take_for_deploy(&name);
        drop(s);
        super::load_balancer(port, name.clone(), Arc::clone(&self.state), Arc::clone(&self.stop));
        self.event(&name, "INFO", "createEnvironment is starting.", Some(&request), None);
        let job = Deploy {
            world: self.clone(),
            environment: name,
            label,
            previous: None,
            previous_serving: None,
            bundle,
            options,
            request: request.clone(),
            port,
            faults,
        };
        thread::spawn(move || launch(job));
        answer("CreateEnvironment", &self.environment_xml(&env), &request)
    }

    pub(super) fn terminate_environment(&self, form: &Form) -> (&'static str, String) {
        let mut s = self.state.lock().unwrap();
        let by_id = form.get("EnvironmentId");
        let name = form.get("EnvironmentName").cloned().or_else(|| {
            let id = by_id?;
            s.environments.values().find(|e| &e.id == id).map(|e| e.name.clone())
        });
        let name = name.unwrap_or_default();
        let Some(env) = s.environments.get_mut(&name) else {
            return error(
                "InvalidParameterValue",
                &format!("No Environment found for EnvironmentName = '{name}'."),
            );
        };
        match env.status.as_str() {
            "Ready" => {}
            // hashicorp/terraform PR #13359.
            "Launching" => {
                return error(
                    "InvalidParameterValue",
                    &format!(
                        "Cannot terminate environment named {name}. It is currently pending creation."
                    ),
                );
            }
            _ => {
                return error(
                    "InvalidParameterValue",
                    &format!(
                        "Environment named {name} is in an invalid state for this operation. Must be Ready."
                    ),
                );
            }
        }
        env.status = "Terminating".into();
        env.health = "Grey".into();
        env.updated = SystemTime::now();
        let xml = self.environment_xml(env);
        drop(s);
        let request = request_id();
        self.event(&name, "INFO", "terminateEnvironment is starting.", Some(&request), None);
        let world = self.clone();
        let id = request.clone();
        thread::spawn(move || {
            thread::sleep(world.config.update_takes);
            let serving =
                world.state.lock().unwrap().environments.get(&name).and_then(|e| e.serving.clone());
            if let Some((container, _)) = serving {
                super::docker(&["rm", "--force", &container]);
            }
            let sns = format!("Deleting SNS topic for environment {name}.");
            world.event(&name, "INFO", &sns, Some(&id), None);
            let mut s = world.state.lock().unwrap();
            if let Some(mut env) = s.environments.remove(&name) {
                env.status = "Terminated".into();
                env.serving = None;
                env.updated = SystemTime::now();
                s.terminated.push(env);
            }
            drop(s);
            let done = "terminateEnvironment completed successfully.";
            world.event(&name, "INFO", done, Some(&id), None);
        });
        answer("TerminateEnvironment", &xml, &request)
    }
}

/// A launch, in the order of the developer guide's "Events" page: the bucket, the security
/// group, the instance (whose instance profile EC2 needs), then the application deployed
/// as an update deploys it. Each event carries the CreateEnvironment RequestId.
fn launch(job: Deploy) {
    let started = Instant::now();
    let (world, env, request) = (&job.world, job.environment.as_str(), Some(job.request.as_str()));
    let option = |namespace: &str, name: &str| {
        job.options.iter().find(|(n, o, _)| n == namespace && o == name).map(|(_, _, v)| v.clone())
    };
    let id = world.state.lock().unwrap().environments.get(env).map(|e| e.id.clone());
    let id = id.unwrap_or_default();
    let bucket =
        format!("Using {} as Amazon S3 storage bucket for environment data.", world.config.bucket);
    world.event(env, "INFO", &bucket, request, None);
    let group = format!("Created security group named: awseb-{id}-stack-AWSEBSecurityGroup-1X2Y3Z");
    world.event(env, "INFO", &group, request, None);
    let single = option("aws:elasticbeanstalk:environment", "EnvironmentType").as_deref()
        == Some("SingleInstance");
    let front = if single {
        "Created EIP: 127.0.0.1".to_owned()
    } else {
        format!("Created load balancer named: awseb-{id}-AWSEBLoa-1A2B3C4D")
    };
    world.event(env, "INFO", &front, request, None);
    let waiting = "Waiting for EC2 instances to launch. This may take a few minutes.";
    world.event(env, "INFO", waiting, request, None);
    // The instance profile must exist with a role, else the launch fails and the
    // environment ends Terminated (terraform-provider-aws #419, #15155; beiwe-backend #32).
    let profile = option("aws:autoscaling:launchconfiguration", "IamInstanceProfile");
    let missing = match &profile {
        None => Some("Environment must have instance profile associated with it.".to_owned()),
        Some(profile) if !Iam::new().instance_profile_has_role(profile) => Some(format!(
            "The instance profile {profile} associated with the environment does not exist."
        )),
        Some(_) => None,
    };
    if let Some(why) = missing {
        thread::sleep(world.config.update_takes);
        world.event(env, "ERROR", &why, request, None);
        world.event(env, "ERROR", "Failed to launch environment.", request, None);
        let sns = format!("Deleting SNS topic for environment {env}.");
        world.event(env, "INFO", &sns, request, None);
        let mut s = world.state.lock().unwrap();
        if let Some(mut gone) = s.environments.remove(env) {
            gone.status = "Terminated".into();
            s.terminated.push(gone);
        }
        return;
    }
    let deployed = if job.faults.fail_next_deploy {
        Err("the application did not start (injected fault)".to_owned())
    } else {
        job.deploy()
    };
    thread::sleep(world.config.update_takes.saturating_sub(started.elapsed()));
    match deployed {
        Ok(container) => {
            world.event(env, "INFO", "Instance deployment completed successfully.", request, None);
            world.set(env, |e| {
                e.serving = Some(container);
                e.status = "Ready".into();
                e.health = "Green".into();
                e.ready_at = Some(Instant::now());
            });
            let available = format!("Application available at 127.0.0.1:{}.", job.port);
            world.event(env, "INFO", &available, request, None);
            let done = format!("Successfully launched environment: {env}");
            world.event(env, "INFO", &done, request, job.label.as_deref());
        }
        Err(why) => {
            // The instance runs, the application does not: the launch completes "with
            // errors", Ready and Severe (EB CLI strings; the same story as a failed update).
            job.instance_failed(&why);
            let done = "Create environment operation is complete, but with errors. For more \
                        information, see troubleshooting documentation.";
            world.event(env, "ERROR", done, request, None);
            world.set(env, |e| {
                e.status = "Ready".into();
                e.health = "Red".into();
                e.ready_at = Some(Instant::now());
            });
            let health = format!(
                "Environment health has transitioned from Pending to Severe. Command failed on \
                 all instances ({INSTANCE})."
            );
            world.event(env, "WARN", &health, None, None);
        }
    }
}

fn application_xml(name: &str) -> String {
    let now = iso8601(SystemTime::now());
    format!("{}{}{}", el("ApplicationName", name), el("DateCreated", &now), el("DateUpdated", &now))
}

/// An answer carrying `request` as its RequestId, the one its events carry.
fn answer(action: &str, body: &str, request: &str) -> (&'static str, String) {
    (
        "200 OK",
        format!(
            "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{body}</{action}Result>\
             <ResponseMetadata><RequestId>{request}</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}
