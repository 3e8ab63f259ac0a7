//! UpdateEnvironment, and the deployment Elastic Beanstalk then carries out: its events (the
//! developer guide's "Events" page, in order), status, health and each instance's
//! `Deployment`, and the real-world endings injected by `Faults`.

use std::thread;
use std::time::Instant;

use super::health::{asks_enhanced, colour_instances};
use super::platform::{self, docker};
use super::query::{self, Form, option_settings};
use super::state::{Faults, World};
use super::xml::{Answer, answer, error, request_id};

/// The work Elastic Beanstalk does after UpdateEnvironment (or CreateEnvironment).
pub struct Deploy {
    pub world: World,
    pub environment: String,
    pub label: Option<String>,
    pub previous: Option<String>,
    pub previous_serving: Option<(String, u16)>,
    pub bundle: Option<(String, String)>,
    pub options: Vec<(String, String, String)>,
    pub request: String,
    pub port: u16,
    pub faults: Faults,
}

/// Elastic Beanstalk's words for an option value it refuses; they carry the value (as
/// reported with real option errors, e.g. on an InstanceType).
pub fn invalid_option((namespace, name, value): &(String, String, String)) -> String {
    format!(
        "Invalid option value: '{value}' (Namespace: '{namespace}', OptionName: '{name}'): Value \
         does not satisfy the option's constraints."
    )
}

impl World {
    pub fn update_environment(&self, form: &Form) -> Answer {
        let name = form.get("EnvironmentName").cloned().unwrap_or_default();
        let busy_at_update = self.lock().faults.busy_at_update.take();
        if let Some(time) = busy_at_update {
            self.someone_elses_update(&name, time);
        }
        let mut s = self.lock();
        let Some(env) = s.environments.get(&name).cloned() else {
            return error(
                "InvalidParameterValue",
                &format!("No Environment found for EnvironmentName = '{name}'."),
            );
        };
        if env.status != "Ready" {
            // The API reference and real logs: an update of a busy environment is refused.
            return error(
                "InvalidParameterValue",
                &format!(
                    "Environment named {name} is in an invalid state for this operation. Must be Ready."
                ),
            );
        }
        let label = form.get("VersionLabel").cloned();
        let bundle = match s.bundle(&env.application, label.as_deref()) {
            Ok(bundle) => bundle,
            Err(refused) => return error("InvalidParameterValue", &refused),
        };
        let options = option_settings(form);
        if let Some(name) = s.faults.refuse_option_next_update.take()
            && let Some(refused) = options.iter().find(|(_, o, _)| *o == name)
        {
            return error("InvalidParameterValue", &invalid_option(refused));
        }
        let faults = s.faults.take_for_deploy(&name);
        drop(s);
        let request = request_id();
        self.set(&name, |env| {
            env.status = "Updating".into();
            env.health = "Grey".into();
            // The environment shows the requested label from the start of the update.
            if label.is_some() {
                env.label = label.clone();
            }
            // Given options are merged into the environment's existing ones.
            for (namespace, option, value) in &options {
                env.options.retain(|(n, o, _)| (n, o) != (namespace, option));
                env.options.push((namespace.clone(), option.clone(), value.clone()));
            }
            env.enhanced |= asks_enhanced(&options);
            env.verified_at = None;
            for instance in &mut env.instances {
                if let Some(label) = &label {
                    instance.label = Some(label.clone());
                    instance.deployment = "In Progress".into();
                    instance.deployment_id += 1;
                }
                // During a deployment enhanced health is Info, whose colour is Green.
                instance.color = "Green".into();
                instance.health_status = "Info".into();
            }
        });
        self.event(&name, "INFO", "Environment update is starting.", Some(&request));
        let updated = self.lock().environments[&name].clone();
        let job = Deploy {
            world: self.clone(),
            environment: name,
            label,
            previous: env.label.clone(),
            previous_serving: env.serving.clone(),
            bundle,
            options: updated.options.clone(),
            request: request.clone(),
            port: updated.port,
            faults,
        };
        if !job.faults.hang_next_deploy {
            thread::spawn(move || job.run());
        }
        answer("UpdateEnvironment", &request, |xml| query::environment(xml, &self.config, &updated))
    }
}

impl Deploy {
    fn run(self) {
        let started = Instant::now();
        let (world, env, request) =
            (&self.world, self.environment.as_str(), Some(self.request.as_str()));
        if let Some(name) = &self.faults.reject_option_next_deploy
            && let Some(rejected) = self.options.iter().find(|(_, o, _)| o == name)
        {
            thread::sleep(world.config.update_takes);
            let why = format!("Configuration validation exception: {}", invalid_option(rejected));
            world.event(env, "ERROR", &why, request);
            let reverted = "The environment was reverted to the previous configuration setting.";
            world.event(env, "INFO", reverted, request);
            let previous = self.previous.clone();
            world.set(env, |e| {
                e.status = "Ready".into();
                e.health = "Green".into();
                e.label = previous.clone();
                for instance in &mut e.instances {
                    instance.label = previous.clone();
                    instance.deployment = "Deployed".into();
                }
            });
            return;
        }
        world.event(env, "INFO", "Deploying new version to instance(s).", request);
        world.engine(env, "INFO", "Starting EBPlatform-PlatformEngine");
        world.engine(env, "INFO", "Executing instruction: StageApplication");
        world.engine(env, "INFO", "Executing instruction: Docker Specific Build Application");
        world.engine(env, "INFO", "Executing instruction: Run Docker Container");
        let kept = self.faults.fail_instances_next_deploy
            || self.faults.instances_keep_old_version_next_deploy;
        let deployed = if self.faults.fail_next_deploy {
            Err(self.faults.why_it_fails())
        } else if self.faults.fail_instances_next_deploy {
            Err("Engine execution has encountered an error.".to_owned())
        } else if kept {
            self.previous_serving.clone().ok_or_else(|| "nothing was running".to_owned())
        } else {
            platform::deploy(self.deployment())
        };
        thread::sleep(world.config.update_takes.saturating_sub(started.elapsed()));
        if self.faults.roll_back_next_deploy {
            let (previous, serving) = (self.previous.clone(), self.previous_serving.clone());
            self.retire_new(&deployed);
            world.set(env, |e| {
                e.status = "Ready".into();
                e.health = "Green".into();
                e.label = previous.clone();
                e.serving = serving;
                for instance in &mut e.instances {
                    instance.label = previous.clone();
                    instance.deployment = "Deployed".into();
                }
            });
            return;
        }
        match deployed {
            Ok(container) if kept => {
                // EB roadmap #162: the instance kept the old version, yet the update
                // "completed successfully", Ready, on the new label, Green. With
                // `fail_instances_next_deploy` its ERROR events tell; else only the
                // instances' own report does.
                if self.faults.fail_instances_next_deploy {
                    self.instance_failed("Engine execution has encountered an error.");
                }
                let previous = self.previous.clone();
                world.set(env, |e| {
                    e.serving = Some(container);
                    e.status = "Ready".into();
                    e.health = "Green".into();
                    for instance in &mut e.instances {
                        instance.label = previous.clone();
                        instance.deployment = "Deployed".into();
                    }
                    colour_instances(e, "Green", "");
                });
                self.completed();
            }
            Ok(container) => self.succeeded(container),
            Err(why) if self.faults.fail_instances_next_deploy => {
                self.instance_failed(&why);
                world.set(env, |e| {
                    e.status = "Ready".into();
                    e.health = "Green".into();
                });
                self.completed();
            }
            Err(why) => {
                // An application that does not start: the instance's deployment fails, the
                // update completes with errors, health turns Severe (beanstalk-deploy #86,
                // eb_deployer #59 and #69). The environment keeps the requested label.
                self.retire_new(&Err(why.clone()));
                self.instance_failed(&why);
                world.event(env, "ERROR", "Failed to deploy application.", request);
                let done = "Update environment operation is complete, but with errors. For more \
                            information, see troubleshooting documentation.";
                world.event(env, "ERROR", done, request);
                world.set(env, |e| {
                    e.status = "Ready".into();
                    e.health = "Red".into();
                    for instance in &mut e.instances {
                        instance.deployment = "Failed".into();
                    }
                    colour_instances(e, "Red", "Command failed on all instances.");
                });
                let health = "Environment health has transitioned from Ok to Severe. Command \
                              failed on all instances.";
                world.event(env, "WARN", health, None);
            }
        }
    }

    /// What the Docker platform needs of this deployment.
    pub fn deployment(&self) -> platform::Deployment<'_> {
        platform::Deployment {
            world: &self.world,
            bundle: self.bundle.as_ref(),
            previous_serving: self.previous_serving.as_ref(),
            options: &self.options,
            request: &self.request,
            port: self.port,
        }
    }

    /// The new container serves; the instances report it, with the health the faults say.
    fn succeeded(&self, container: (String, u16)) {
        let (world, env) = (&self.world, self.environment.as_str());
        world.engine(env, "INFO", "Executing cleanup logic");
        world.engine(env, "INFO", "Platform Engine finished execution on command: app-deploy");
        let old = self.previous_serving.clone();
        let (red, yellow) =
            (self.faults.red_after_next_deploy, self.faults.yellow_after_next_deploy);
        let colour = if red.is_some() {
            "Red"
        } else if yellow.is_some() {
            "Yellow"
        } else {
            "Green"
        };
        let cause = if red.is_some() {
            "ELB health is failing or not available for all instances."
        } else {
            "Application has 5xx errors on some requests."
        };
        let now = world.now();
        world.set(env, |e| {
            e.serving = Some(container.clone());
            e.status = "Ready".into();
            e.health = colour.into();
            for instance in &mut e.instances {
                instance.deployment = "Deployed".into();
                instance.deployed_at = now;
            }
            colour_instances(e, colour, cause);
        });
        if let Some((old, _)) = old.filter(|(old, _)| *old != container.0) {
            docker(&["rm", "--force", &old]);
        }
        let request = Some(self.request.as_str());
        world.event(env, "INFO", "Instance deployment completed successfully.", request);
        let done = "New application version was deployed to running EC2 instances.";
        world.event(env, "INFO", done, request);
        self.completed();
        if let Some(lasting) = red.or(yellow) {
            let (from, word) =
                if red.is_some() { ("Severe", "Severe") } else { ("Warning", "Warning") };
            let text = format!("Environment health has transitioned from Ok to {word}. {cause}");
            world.event(env, "WARN", &text, None);
            let (world, env) = (world.clone(), env.to_owned());
            thread::spawn(move || {
                thread::sleep(lasting);
                world.set(&env, |e| {
                    e.health = "Green".into();
                    colour_instances(e, "Green", "");
                });
                let ok = format!("Environment health has transitioned from {from} to Ok.");
                world.event(&env, "INFO", &ok, None);
            });
        }
    }

    /// The update's last event (which real events carry with no version label; kept
    /// inside for the `VersionLabel` filter).
    fn completed(&self) {
        let (world, env) = (&self.world, self.environment.as_str());
        let done = "Environment update completed successfully.";
        world.event_of(env, "INFO", done, Some(&self.request), self.label.as_deref());
    }

    /// The instance's events of a failed deployment, in the order of beanstalk-deploy #86.
    pub fn instance_failed(&self, why: &str) {
        let (world, env, request) =
            (&self.world, self.environment.as_str(), Some(self.request.as_str()));
        // The platform's own words for a failed command (eb-engine.log as users post it).
        let error = format!(
            "An error occurred during execution of command [app-deploy] - [Run Docker \
             Container]. Stop running the command. Error: {why}"
        );
        world.engine(env, "ERROR", &error);
        let failed = "Instance deployment failed. For details, see 'eb-engine.log'.";
        world.event(env, "ERROR", failed, request);
        let instance = world
            .lock()
            .environments
            .get(env)
            .and_then(|e| e.instances.first().map(|i| i.id.clone()))
            .unwrap_or_default();
        let command = format!(
            "[Instance: {instance}] Command failed on instance. Return code: 1 Output: {why}."
        );
        world.event(env, "ERROR", &command, request);
        let summary =
            "Command execution completed on all instances. Summary: [Successful: 0, Failed: 1].";
        world.event(env, "INFO", summary, request);
    }

    /// Removes a container this deploy started but does not keep.
    pub fn retire_new(&self, deployed: &Result<(String, u16), String>) {
        let serving = self.previous_serving.as_ref().map(|(c, _)| c);
        if let Ok((container, _)) = deployed
            && Some(container) != serving
        {
            docker(&["rm", "--force", container]);
        }
    }
}
