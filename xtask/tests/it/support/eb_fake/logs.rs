//! The instances' logs and the environment's option settings. Sources: the API reference
//! (RequestEnvironmentInfo and RetrieveEnvironmentInfo, `InfoType` tail or bundle;
//! `EnvironmentInfoDescription`: `InfoType`, `Ec2InstanceId`, `SampleTimestamp`, and
//! `Message`, "the retrieved information", a presigned Amazon S3 URL valid 15 minutes);
//! DESIGN's "Logs" (the events of the request's RequestId, "requestEnvironmentInfo is
//! starting." then "Pulled logs for environment instances." or "Failed to pull logs for
//! environment instances."; several samples of one instance are normal; a tail is sections
//! of dashes, path, dashes, lines); the Docker platform's log paths (EB developer guide,
//! "Docker platform logs"). DescribeConfigurationSettings answers the option settings the
//! environment was created or last updated with.

use std::io::Write as _;
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use super::platform::docker;
use super::query::{Form, iso8601};
use super::state::{Environment, LogSample, World};
use super::xml::{Answer, answer, error, ok, request_id};
use crate::support::s3::S3;

/// The presigned URLs' lifetime.
const VALID: Duration = Duration::from_secs(15 * 60);
const ENGINE: &str = "/var/log/eb-engine.log";
const APP: &str = "/var/log/eb-docker/containers/eb-current-app/eb-current-app-stdouterr.log";

impl World {
    pub fn request_environment_info(&self, form: &Form) -> Answer {
        let Some(env) = self.named(form) else {
            return error("InvalidParameterValue", "No Environment found.");
        };
        let info = form.get("InfoType").cloned().unwrap_or_default();
        if info != "tail" && info != "bundle" {
            return error("InvalidParameterValue", &format!("Invalid InfoType: {info}"));
        }
        let (fail, earlier, lose) = {
            let mut s = self.lock();
            (
                std::mem::take(&mut s.faults.fail_next_logs),
                std::mem::take(&mut s.faults.earlier_log_samples),
                std::mem::take(&mut s.faults.logs_lose_an_instance),
            )
        };
        let request = request_id();
        self.event(&env.name, "INFO", "requestEnvironmentInfo is starting.", Some(&request));
        let world = self.clone();
        let id = request.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            if fail {
                let failed = "Failed to pull logs for environment instances.";
                world.event(&env.name, "ERROR", failed, Some(&id));
                return;
            }
            let s3 = S3::new(&world.config.s3);
            let now = world.now();
            let pulled =
                if lose { env.instances.len().saturating_sub(1) } else { env.instances.len() };
            for instance in &env.instances[..pulled] {
                let mut samples = Vec::new();
                if earlier {
                    let text = format!("an earlier sample of {}\n", instance.id);
                    samples.push((now - Duration::from_secs(1), text.into_bytes()));
                }
                samples.push((now, contents(&env, &info)));
                for (at, bytes) in samples {
                    let millis = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
                    let key = format!(
                        "resources/environments/logs/{info}/{}/{}/{millis}",
                        env.id, instance.id
                    );
                    s3.put(&world.config.bucket, &key, bytes);
                    let url = s3.presign_get(&world.config.bucket, &key, VALID);
                    world.lock().log_samples.push(LogSample {
                        environment: env.name.clone(),
                        info: info.clone(),
                        instance: instance.id.clone(),
                        at,
                        url,
                    });
                }
            }
            let pulled = "Pulled logs for environment instances.";
            world.event(&env.name, "INFO", pulled, Some(&id));
        });
        answer("RequestEnvironmentInfo", &request, |_| {})
    }

    pub fn retrieve_environment_info(&self, form: &Form) -> Answer {
        let Some(env) = self.named(form) else {
            return error("InvalidParameterValue", "No Environment found.");
        };
        let info = form.get("InfoType").cloned().unwrap_or_default();
        let s = self.lock();
        let samples: Vec<&LogSample> =
            s.log_samples.iter().filter(|l| l.environment == env.name && l.info == info).collect();
        ok("RetrieveEnvironmentInfo", |xml| {
            xml.list("EnvironmentInfo", &samples, |xml, l| {
                xml.el("InfoType", &l.info)
                    .el("Ec2InstanceId", &l.instance)
                    .el("SampleTimestamp", &iso8601(l.at))
                    .el("Message", &l.url);
            });
        })
    }

    pub fn describe_configuration_settings(&self, form: &Form) -> Answer {
        let Some(env) = self.named(form) else {
            return error("InvalidParameterValue", "No Environment found.");
        };
        ok("DescribeConfigurationSettings", |xml| {
            xml.node("ConfigurationSettings", |xml| {
                xml.node("member", |xml| {
                    xml.el("ApplicationName", &env.application)
                        .el("EnvironmentName", &env.name)
                        .el("PlatformArn", &env.platform);
                    xml.list("OptionSettings", &env.options, |xml, (namespace, name, value)| {
                        xml.el("Namespace", namespace).el("OptionName", name).el("Value", value);
                    });
                });
            });
        })
    }

    /// The live environment a request names (`EnvironmentName`, else `EnvironmentId`).
    fn named(&self, form: &Form) -> Option<Environment> {
        let s = self.lock();
        match (form.get("EnvironmentName"), form.get("EnvironmentId")) {
            (Some(name), _) => s.environments.get(name).cloned(),
            (None, Some(id)) => s.environments.values().find(|e| &e.id == id).cloned(),
            (None, None) => None,
        }
    }
}

/// An instance's logs: a tail (each file's last 100 lines in a section), or a zip of the
/// files. The application's output is its container's (`docker logs`).
fn contents(env: &Environment, info: &str) -> Vec<u8> {
    let engine = last(&env.engine_log.join("\n"), 100);
    let app = match &env.serving {
        Some((container, _)) => {
            let out = docker(&["logs", "--tail", "100", container]);
            let both = [out.stdout, out.stderr].concat();
            String::from_utf8_lossy(&both).into_owned()
        }
        None => String::new(),
    };
    let files = [(ENGINE, engine), (APP, app)];
    if info == "tail" {
        let dashes = "-".repeat(60);
        let mut text = String::new();
        for (path, lines) in &files {
            text.push_str(&format!("{dashes}\n{path}\n{dashes}\n{lines}\n\n"));
        }
        return text.into_bytes();
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, lines) in &files {
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file(path.trim_start_matches('/'), options).unwrap();
        zip.write_all(lines.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn last(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
