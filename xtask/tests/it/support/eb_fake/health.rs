//! Health as Elastic Beanstalk reports it. Through the API an environment gets basic
//! health unless `aws:elasticbeanstalk:healthreporting:system` `SystemType=enhanced` is set
//! (AWS docs, "Enabling enhanced health reporting using the Elastic Beanstalk API"); with
//! basic health DescribeEnvironmentHealth and DescribeInstancesHealth are refused ("… is
//! not supported.", as users report it: log-just/t2.autoscaling-beanstalk#1). Enhanced
//! health refreshes its per-instance report about every 10 s (`RefreshedAt`); each
//! instance has its `Deployment` (version label, ID, status, time), colour and causes (the
//! API reference, `SingleInstanceHealth`).

use std::thread;
use std::time::{Duration, SystemTime};

use super::query::{Form, health_status, iso8601, page};
use super::state::{Environment, Instance, State, World};
use super::xml::{Answer, error, ok};

/// The option that turns enhanced health on.
pub const HEALTH_REPORTING: (&str, &str, &str) =
    ("aws:elasticbeanstalk:healthreporting:system", "SystemType", "enhanced");

/// `count` instances of a new environment, running nothing yet.
pub fn instances(count: usize, now: SystemTime) -> Vec<Instance> {
    (0..count)
        .map(|n| Instance {
            id: format!("i-0fa4e1b2c3d4e5f6{n}"),
            label: None,
            deployment_id: 0,
            deployment: "Deployed".into(),
            deployed_at: now,
            color: "Grey".into(),
            health_status: "Pending".into(),
            causes: Vec::new(),
            launched_at: now,
        })
        .collect()
}

/// Whether `options` turn enhanced health on.
pub fn asks_enhanced(options: &[(String, String, String)]) -> bool {
    let (namespace, name, value) = HEALTH_REPORTING;
    options.iter().any(|(n, o, v)| n == namespace && o == name && v.eq_ignore_ascii_case(value))
}

/// Sets every instance of `env` to a colour, with a cause unless Green.
pub fn colour_instances(env: &mut Environment, color: &str, cause: &str) {
    for instance in &mut env.instances {
        instance.color = color.into();
        instance.health_status = health_status(color).into();
        instance.causes = if color == "Green" { Vec::new() } else { vec![cause.to_owned()] };
    }
}

/// Enhanced health's report refreshes every `every`, as the service's does.
pub fn refresh_every(world: World, every: Duration) {
    thread::spawn(move || {
        while !world.stop.load(std::sync::atomic::Ordering::SeqCst) {
            thread::sleep(every);
            let now = world.now();
            let mut s = world.lock();
            for env in s.environments.values_mut().filter(|e| e.enhanced) {
                env.reported = env.instances.clone();
                env.refreshed_at = now;
                let verified = env.status == "Ready"
                    && env.reported.iter().all(|i| {
                        i.label == env.label && i.deployment == "Deployed" && i.color == "Green"
                    });
                if verified && env.verified_at.is_none() {
                    env.verified_at = Some(std::time::Instant::now());
                }
            }
        }
    });
}

fn not_supported(action: &str) -> Answer {
    error("InvalidRequestException", &format!("{action} is not supported."))
}

/// The environment a health action names, or the service's refusal: none of that name, or
/// basic health.
fn enhanced<'s>(s: &'s State, form: &Form, action: &str) -> Result<&'s Environment, Answer> {
    let name = form.get("EnvironmentName").cloned().unwrap_or_default();
    let Some(env) = s.environments.get(&name) else {
        return Err(error(
            "InvalidRequestException",
            &format!("No Environment found for EnvironmentName = '{name}'."),
        ));
    };
    if !env.enhanced {
        return Err(not_supported(action));
    }
    Ok(env)
}

impl World {
    pub fn environment_health(&self, s: &State, form: &Form) -> Answer {
        let env = match enhanced(s, form, "DescribeEnvironmentHealth") {
            Ok(env) => env,
            Err(refused) => return refused,
        };
        // The causes of a Severe or Warning environment (the developer guide's "Health
        // colors and statuses").
        let causes: Vec<&str> = match env.health.as_str() {
            "Red" => vec![
                "ELB processes are not healthy on all instances.",
                "ELB health is failing or not available for all instances.",
            ],
            "Yellow" => vec!["Application has 5xx errors on some requests."],
            _ => Vec::new(),
        };
        ok("DescribeEnvironmentHealth", |xml| {
            xml.el("EnvironmentName", &env.name)
                .el("HealthStatus", health_status(&env.health))
                .el("Status", &env.status)
                .el("Color", &env.health)
                .list("Causes", &causes, |xml, c| {
                    xml.write_text(c);
                })
                .el("RefreshedAt", &iso8601(env.refreshed_at));
        })
    }

    pub fn instances_health(&self, s: &State, form: &Form) -> Answer {
        let env = match enhanced(s, form, "DescribeInstancesHealth") {
            Ok(env) => env,
            Err(refused) => return refused,
        };
        let (listed, next) = page(form, &env.reported, self.config.page_size);
        ok("DescribeInstancesHealth", |xml| {
            xml.list("InstanceHealthList", listed, |xml, i| {
                xml.el("InstanceId", &i.id)
                    .el("HealthStatus", &i.health_status)
                    .el("Color", &i.color)
                    .list("Causes", &i.causes, |xml, c| {
                        xml.write_text(c);
                    })
                    .el("LaunchedAt", &iso8601(i.launched_at))
                    .node("Deployment", |xml| {
                        xml.opt("VersionLabel", i.label.as_deref())
                            .el("DeploymentId", &i.deployment_id.to_string())
                            .el("Status", &i.deployment)
                            .el("DeploymentTime", &iso8601(i.deployed_at));
                    })
                    .el("AvailabilityZone", "us-east-1a")
                    .el("InstanceType", "t3.micro");
            });
            xml.el("RefreshedAt", &iso8601(env.refreshed_at));
            xml.opt("NextToken", next.as_deref());
        })
    }
}
