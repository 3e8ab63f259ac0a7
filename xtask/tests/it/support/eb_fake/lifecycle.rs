//! Applications, platforms, and environments created and terminated. Sources: the API
//! reference and service model (parameters, answers, `Launching`/`Ready`,
//! `Terminating`/`Terminated`, names unique per account and region), the EB developer
//! guide ("Events": the order of a launch's events), the EB CLI (`ebcli/resources/
//! strings.py`, `commonops.py`: the messages it waits for, and that a launch's events
//! carry the CreateEnvironment RequestId), and the issue threads named below.

use std::net::TcpListener;
use std::thread;
use std::time::Instant;

use super::health::{asks_enhanced, colour_instances, instances};
use super::http::load_balancer;
use super::platforms::platform_of;
use super::query::{self, Form, iso8601, members, option_settings};
use super::state::{Environment, State, World};
use super::update::Deploy;
use super::xml::{Answer, Xml, answer, error, ok, request_id};
use crate::support::iam::Iam;

fn application_xml(xml: &mut Xml, name: &str, now: &str) {
    xml.el("ApplicationName", name).el("DateCreated", now).el("DateUpdated", now);
}

impl World {
    pub fn create_application(&self, s: &mut State, form: &Form) -> Answer {
        let name = form.get("ApplicationName").cloned().unwrap_or_default();
        if !s.applications.insert(name.clone()) {
            // EB CLI strings: "Application {name} already exists."
            return error("InvalidParameterValue", &format!("Application {name} already exists."));
        }
        let now = iso8601(self.now());
        ok("CreateApplication", |xml| {
            xml.node("Application", |xml| application_xml(xml, &name, &now));
        })
    }

    pub fn describe_applications(&self, s: &State, form: &Form) -> Answer {
        // Unknown names are left out, not errors.
        let wanted = members(form, "ApplicationNames");
        let listed: Vec<&String> =
            s.applications.iter().filter(|n| wanted.is_empty() || wanted.contains(n)).collect();
        let now = iso8601(self.now());
        ok("DescribeApplications", |xml| {
            xml.list("Applications", &listed, |xml, name| application_xml(xml, name, &now));
        })
    }

    pub fn create_environment(&self, form: &Form) -> Answer {
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
        let mut s = self.lock();
        if !s.applications.contains(&application) {
            return error(
                "InvalidParameterValue",
                &format!("No Application named '{application}' found."),
            );
        }
        // Names are unique per account and region, whatever the application.
        if s.environments.contains_key(&name) {
            return error("InvalidParameterValue", &format!("Environment {name} already exists."));
        }
        let cname_prefix = form.get("CNAMEPrefix").cloned().unwrap_or_else(|| name.clone());
        if s.taken_cnames.contains(&cname_prefix)
            || s.environments.values().any(|e| e.cname_prefix == cname_prefix)
        {
            return error(
                "InvalidParameterValue",
                &format!("DNS name ({cname_prefix}) is not available."),
            );
        }
        let label = form.get("VersionLabel").cloned();
        let bundle = match s.bundle(&application, label.as_deref()) {
            Ok(bundle) => bundle,
            Err(refused) => return error("InvalidParameterValue", &refused),
        };
        let platform = match form.get("PlatformArn") {
            Some(arn) if platform_of(arn).is_some() => arn.clone(),
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
        let now = self.now();
        let env = Environment {
            name: name.clone(),
            id: format!("e-{}", &request_id()[24..]),
            application,
            status: "Launching".into(),
            health: "Grey".into(),
            label: label.clone(),
            port,
            cname_prefix,
            options: options.clone(),
            platform,
            created: now,
            updated: now,
            serving: None,
            enhanced: asks_enhanced(&options),
            instances: instances(1, now),
            reported: Vec::new(),
            refreshed_at: now,
            verified_at: None,
            stale: None,
            engine_log: Vec::new(),
        };
        s.environments.insert(name.clone(), env.clone());
        let request = request_id();
        let faults = s.faults.take_for_deploy(&name);
        drop(s);
        load_balancer(port, name.clone(), self.clone());
        self.event(&name, "INFO", "createEnvironment is starting.", Some(&request));
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
        answer("CreateEnvironment", &request, |xml| query::environment(xml, &self.config, &env))
    }

    pub fn terminate_environment(&self, form: &Form) -> Answer {
        let s = self.lock();
        let by_id = form.get("EnvironmentId");
        let name = form.get("EnvironmentName").cloned().or_else(|| {
            let id = by_id?;
            s.environments.values().find(|e| &e.id == id).map(|e| e.name.clone())
        });
        let name = name.unwrap_or_default();
        let Some(env) = s.environments.get(&name) else {
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
        drop(s);
        self.set(&name, |env| {
            env.status = "Terminating".into();
            env.health = "Grey".into();
        });
        let terminating = self.lock().environments[&name].clone();
        let request = request_id();
        self.event(&name, "INFO", "terminateEnvironment is starting.", Some(&request));
        let world = self.clone();
        let id = request.clone();
        thread::spawn(move || {
            thread::sleep(world.config.update_takes);
            let serving = world.lock().environments.get(&name).and_then(|e| e.serving.clone());
            if let Some((container, _)) = serving {
                super::platform::docker(&["rm", "--force", &container]);
            }
            let sns = format!("Deleting SNS topic for environment {name}.");
            world.event(&name, "INFO", &sns, Some(&id));
            world.event(&name, "INFO", "terminateEnvironment completed successfully.", Some(&id));
            world.retire(&name);
        });
        answer("TerminateEnvironment", &request, |xml| {
            query::environment(xml, &self.config, &terminating)
        })
    }

    /// A terminated environment: listed for a while, its name free again.
    fn retire(&self, name: &str) {
        let now = self.now();
        let mut s = self.lock();
        if let Some(mut env) = s.environments.remove(name) {
            env.status = "Terminated".into();
            env.serving = None;
            env.stale = None;
            env.updated = now;
            s.terminated.push(env);
        }
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
    let id = world.lock().environments.get(env).map(|e| e.id.clone()).unwrap_or_default();
    let bucket =
        format!("Using {} as Amazon S3 storage bucket for environment data.", world.config.bucket);
    world.event(env, "INFO", &bucket, request);
    let group = format!("Created security group named: awseb-{id}-stack-AWSEBSecurityGroup-1X2Y3Z");
    world.event(env, "INFO", &group, request);
    let single = option("aws:elasticbeanstalk:environment", "EnvironmentType").as_deref()
        == Some("SingleInstance");
    let front = if single {
        "Created EIP: 127.0.0.1".to_owned()
    } else {
        format!("Created load balancer named: awseb-{id}-AWSEBLoa-1A2B3C4D")
    };
    world.event(env, "INFO", &front, request);
    let waiting = "Waiting for EC2 instances to launch. This may take a few minutes.";
    world.event(env, "INFO", waiting, request);
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
        world.event(env, "ERROR", &why, request);
        world.event(env, "ERROR", "Failed to launch environment.", request);
        let sns = format!("Deleting SNS topic for environment {env}.");
        world.event(env, "INFO", &sns, request);
        world.retire(env);
        return;
    }
    world.engine(env, "INFO", "Starting EBPlatform-PlatformEngine");
    world.engine(env, "INFO", "Executing instruction: Run Docker Container");
    let deployed = if job.faults.fail_next_deploy {
        Err(job.faults.why_it_fails())
    } else {
        super::platform::deploy(job.deployment())
    };
    thread::sleep(world.config.update_takes.saturating_sub(started.elapsed()));
    let label = job.label.clone();
    match deployed {
        Ok(container) => {
            world.event(env, "INFO", "Instance deployment completed successfully.", request);
            let now = world.now();
            world.set(env, |e| {
                e.serving = Some(container);
                e.status = "Ready".into();
                e.health = "Green".into();
                for instance in &mut e.instances {
                    instance.label = label.clone();
                    instance.deployment = "Deployed".into();
                    instance.deployment_id = 1;
                    instance.deployed_at = now;
                }
                colour_instances(e, "Green", "");
            });
            let available = format!("Application available at 127.0.0.1:{}.", job.port);
            world.event(env, "INFO", &available, request);
            let done = format!("Successfully launched environment: {env}");
            world.event_of(env, "INFO", &done, request, job.label.as_deref());
        }
        Err(why) => {
            // The instance runs, the application does not: the launch completes "with
            // errors", Ready and Severe (EB CLI strings; the same story as a failed update).
            job.instance_failed(&why);
            let done = "Create environment operation is complete, but with errors. For more \
                        information, see troubleshooting documentation.";
            world.event(env, "ERROR", done, request);
            world.set(env, |e| {
                e.status = "Ready".into();
                e.health = "Red".into();
                for instance in &mut e.instances {
                    instance.label = label.clone();
                    instance.deployment = "Failed".into();
                }
                colour_instances(e, "Red", "Command failed on all instances.");
            });
            let health = "Environment health has transitioned from Pending to Severe. Command \
                          failed on all instances.";
            world.event(env, "WARN", health, None);
        }
    }
}
