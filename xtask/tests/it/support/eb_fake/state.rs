//! What the fake keeps: applications, their versions, environments (with their instances)
//! and events, the requests it answered, and the faults a test switched on. Every time it
//! stamps is the service's clock ([`World::now`]), which a test may set off the client's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::Config;
use super::xml::Loss;

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub action: String,
    /// The environment it names (`EnvironmentName`), if it names one so.
    pub environment: Option<String>,
    /// It asked for a page after the first (`NextToken`).
    pub next_page: bool,
}

/// One EC2 instance of an environment, as enhanced health reports it.
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    /// `Deployment`: the version label it runs, its deployment's ID, status (`In
    /// Progress`, `Deployed`, `Failed`) and time.
    pub label: Option<String>,
    pub deployment_id: u64,
    pub deployment: String,
    pub deployed_at: SystemTime,
    /// Green, Yellow, Red, Grey; enhanced health's word; its causes.
    pub color: String,
    pub health_status: String,
    pub causes: Vec<String>,
    pub launched_at: SystemTime,
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub id: String,
    pub application: String,
    pub status: String,
    pub health: String,
    pub label: Option<String>,
    /// The load balancer's port on 127.0.0.1 (the environment's CNAME).
    pub port: u16,
    /// The CNAME prefix it was created with.
    pub cname_prefix: String,
    pub options: Vec<(String, String, String)>,
    /// The platform ARN it runs on.
    pub platform: String,
    pub created: SystemTime,
    pub updated: SystemTime,
    /// The container the load balancer routes to, and its loopback port.
    pub serving: Option<(String, u16)>,
    /// Enhanced health reporting: per-instance health can be asked.
    pub enhanced: bool,
    pub instances: Vec<Instance>,
    /// What enhanced health last reported of the instances, and when (refreshed every
    /// `Config::health_refresh`, as the service does about every 10 s).
    pub reported: Vec<Instance>,
    pub refreshed_at: SystemTime,
    /// The first refresh (our clock) that reported every instance on the environment's
    /// version, deployed and Green, since its last update started.
    pub verified_at: Option<Instant>,
    /// A description from before the last change, answered instead of the current one
    /// until the instant passes (eventual consistency).
    pub stale: Option<(Box<Environment>, Instant)>,
    /// Its instances' `/var/log/eb-engine.log`: what the platform did, line by line.
    pub engine_log: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub date: SystemTime,
    pub severity: String,
    pub message: String,
    pub request_id: Option<String>,
    pub application: String,
    pub environment: String,
    /// The version the event concerns, for DescribeEvents' `VersionLabel` filter only:
    /// environment events never carry it in answers (AWS's DescribeEvents examples).
    pub version_label: Option<String>,
}

/// One instance's logs of one request: where they are (a presigned URL).
#[derive(Clone, Debug)]
pub struct LogSample {
    pub environment: String,
    /// `tail` or `bundle`.
    pub info: String,
    pub instance: String,
    pub at: SystemTime,
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct Version {
    pub bucket: String,
    pub key: String,
    pub created: SystemTime,
    pub description: Option<String>,
}

/// Behaviours switched on by a test, each consumed by the next request it applies to.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// When the next application version is created, another deploy (another request)
    /// makes every environment busy for this long.
    pub busy_for: Option<Duration>,
    /// Another deploy starts just before our next UpdateEnvironment, which is refused as
    /// Elastic Beanstalk refuses an update of a busy environment; it lasts this long.
    pub busy_at_update: Option<Duration>,
    /// The next deploy's instance deployment fails (the application does not start).
    pub fail_next_deploy: bool,
    /// The next deploy on this environment fails, as `fail_next_deploy`.
    pub fail_next_deploy_on: Option<String>,
    /// The next deploy's instance command fails, yet Elastic Beanstalk ends the update
    /// with "completed successfully", Ready, the new label and Green, the instance still
    /// running the old version (EB roadmap issue #162).
    pub fail_instances_next_deploy: bool,
    /// As `fail_instances_next_deploy`, without any ERROR event: only the instances'
    /// own report (their Deployment's version label) tells.
    pub instances_keep_old_version_next_deploy: bool,
    /// The next deploy ends back on the previous version, without an ERROR event.
    pub roll_back_next_deploy: bool,
    /// The next deploy never ends: the environment stays Updating.
    pub hang_next_deploy: bool,
    /// The next deploy on this environment never ends.
    pub hang_next_deploy_on: Option<String>,
    /// After the next successful update, enhanced health is Red (Severe) for this long,
    /// then Green, as instances warm up (seen in beanstalk-deploy's users' logs).
    pub red_after_next_deploy: Option<Duration>,
    /// After the next successful update, health is Yellow (Warning) for this long.
    pub yellow_after_next_deploy: Option<Duration>,
    /// The next UpdateEnvironment is refused for the value of this environment option,
    /// echoing the value as Elastic Beanstalk's "Invalid option value" errors do.
    pub refuse_option_next_update: Option<String>,
    /// The next update fails its configuration validation on this environment option: an
    /// ERROR event of the update echoing the value, then the configuration reverted.
    pub reject_option_next_deploy: Option<String>,
    /// The next N requests, whatever their action, are throttled.
    pub throttle_next: u32,
    pub version_quota: bool,
    /// The next request of this action is carried out, and its answer lost so.
    pub lose_answer: Option<(String, Loss)>,
    /// For this long after every change of an environment, DescribeEnvironments answers
    /// the state from before it (the API reference: Describe calls are eventually
    /// consistent).
    pub stale_reads_for: Option<Duration>,
    /// Swaps take this long (1 s otherwise).
    pub slow_swap: Option<Duration>,
    /// Why the next failing deploy fails, in eb-engine.log (a default otherwise).
    pub fail_next_deploy_why: Option<String>,
    /// The next logs request fails: "Failed to pull logs for environment instances.".
    pub fail_next_logs: bool,
    /// The next logs request gives two samples of each instance, one a second older
    /// (several samples of one instance are normal: DESIGN, "Logs").
    pub earlier_log_samples: bool,
    /// The next logs request gets nothing from the last instance (its upload failed).
    pub logs_lose_an_instance: bool,
}

impl Faults {
    /// Why an injected failing deploy fails.
    pub fn why_it_fails(&self) -> String {
        let why = "the application did not start (injected fault)";
        self.fail_next_deploy_why.clone().unwrap_or_else(|| why.to_owned())
    }

    /// The faults of the next deploy (an update or a launch) on `environment`, taken.
    pub fn take_for_deploy(&mut self, environment: &str) -> Faults {
        let on_this = self.fail_next_deploy_on.take_if(|name| name == environment).is_some();
        Faults {
            fail_next_deploy: std::mem::take(&mut self.fail_next_deploy) || on_this,
            fail_instances_next_deploy: std::mem::take(&mut self.fail_instances_next_deploy),
            instances_keep_old_version_next_deploy: std::mem::take(
                &mut self.instances_keep_old_version_next_deploy,
            ),
            roll_back_next_deploy: std::mem::take(&mut self.roll_back_next_deploy),
            hang_next_deploy: std::mem::take(&mut self.hang_next_deploy)
                || self.hang_next_deploy_on.take_if(|name| name == environment).is_some(),
            red_after_next_deploy: self.red_after_next_deploy.take(),
            yellow_after_next_deploy: self.yellow_after_next_deploy.take(),
            reject_option_next_deploy: self.reject_option_next_deploy.take(),
            fail_next_deploy_why: self.fail_next_deploy_why.take(),
            ..Faults::default()
        }
    }
}

#[derive(Default)]
pub struct State {
    pub applications: BTreeSet<String>,
    /// By application, then label.
    pub versions: BTreeMap<(String, String), Version>,
    /// The environments that are not terminated, by name (unique in the region).
    pub environments: BTreeMap<String, Environment>,
    /// Terminated ones: listed for a while, their names free again.
    pub terminated: Vec<Environment>,
    pub events: Vec<Event>,
    pub requests: Vec<Request>,
    pub faults: Faults,
    /// CNAME prefixes someone else holds (CheckDNSAvailability answers false).
    pub taken_cnames: BTreeSet<String>,
    /// The instances' logs pulled so far (RetrieveEnvironmentInfo lists them all).
    pub log_samples: Vec<LogSample>,
}

impl State {
    /// The bundle of the version an update or a launch names, or the service's refusal
    /// (beanstalk-deploy #58: "No Application Version named '…' found.").
    pub fn bundle(
        &self,
        application: &str,
        label: Option<&str>,
    ) -> Result<Option<(String, String)>, String> {
        let Some(label) = label else { return Ok(None) };
        match self.versions.get(&(application.to_owned(), label.to_owned())) {
            Some(v) => Ok(Some((v.bucket.clone(), v.key.clone()))),
            None => Err(format!("No Application Version named '{label}' found.")),
        }
    }
}

/// What a request handler and a deploy job share.
#[derive(Clone)]
pub struct World {
    pub state: Arc<Mutex<State>>,
    pub config: Arc<Config>,
    pub dir: PathBuf,
    pub stop: Arc<AtomicBool>,
}

impl World {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The service's clock: ours, off by the configured skew.
    pub fn now(&self) -> SystemTime {
        let skew = Duration::from_secs(self.config.clock_skew.unsigned_abs());
        if self.config.clock_skew >= 0 {
            SystemTime::now() + skew
        } else {
            SystemTime::now() - skew
        }
    }

    /// Changes a live environment (and stamps it, keeping the description from before
    /// for the stale-read window when one is set).
    pub fn set(&self, name: &str, change: impl FnOnce(&mut Environment)) {
        let now = self.now();
        let mut s = self.lock();
        let stale_for = s.faults.stale_reads_for;
        if let Some(env) = s.environments.get_mut(name) {
            // Within a stale window, reads keep showing the state from before its start.
            let before = match env.stale.take() {
                Some((before, until)) if until > Instant::now() => before,
                _ => Box::new(env.clone()),
            };
            change(env);
            env.updated = now;
            if let Some(stale_for) = stale_for {
                env.stale = Some((before, Instant::now() + stale_for));
            }
        }
    }

    /// A line of the environment's `eb-engine.log`, as the platform writes it:
    /// `2026/12/07 09:12:03.512 [INFO] message`.
    pub fn engine(&self, environment: &str, level: &str, message: &str) {
        let stamp = super::query::iso8601(self.now()).replace('-', "/").replace('T', " ");
        let stamp = stamp.trim_end_matches('Z').to_owned();
        if let Some(env) = self.lock().environments.get_mut(environment) {
            env.engine_log.push(format!("{stamp} [{level}] {message}"));
        }
    }

    pub fn event(&self, environment: &str, severity: &str, message: &str, request: Option<&str>) {
        self.event_of(environment, severity, message, request, None);
    }

    /// An event concerning `label` (for the `VersionLabel` filter only).
    pub fn event_of(
        &self,
        environment: &str,
        severity: &str,
        message: &str,
        request: Option<&str>,
        label: Option<&str>,
    ) {
        let date = self.now();
        let mut s = self.lock();
        let application = s
            .environments
            .get(environment)
            .map_or_else(|| self.config.application.clone(), |e| e.application.clone());
        s.events.push(Event {
            date,
            severity: severity.into(),
            message: message.into(),
            request_id: request.map(str::to_owned),
            application,
            environment: environment.into(),
            version_label: label.map(str::to_owned),
        });
    }
}
