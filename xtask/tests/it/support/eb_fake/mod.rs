//! An in-process stand-in for Elastic Beanstalk, speaking its AWS Query protocol
//! (form-encoded POST, XML answers with the element names of the service model that ships
//! with botocore, `elasticbeanstalk/2010-12-01/service-2.json`), so that the real SDK client
//! of the xtask, and the EB CLI, talk to it unchanged.
//!
//! It imports nothing of the xtask: each rule comes from AWS's documentation, the service
//! model, or a reported real-world case, named where it is implemented. It keeps
//! applications, their versions, environments (with their instances and their health) and
//! events, on a service clock of its own (`Config::clock_skew`). An UpdateEnvironment does
//! what the Docker platform does on an instance (`platform`), then reports the outcome in
//! events, status, health and each instance's deployment, as Elastic Beanstalk does
//! (`update`); environments are created and terminated (`lifecycle`). Faults and
//! real-world quirks are injected with [`Faults`]: throttling, stale reads, lost answers,
//! failed or silently kept deployments, lingering Red or Yellow health.
//!
//! Layout: `http` (the wire), `xml` (answers), `query` (the form and shared shapes),
//! `state`, `answers` (routing, versions, environments, events), `health`, `update`,
//! `platform` (the Docker platform on an instance), `platforms`, `lifecycle`, `swap`, `logs`
//! (the instances' logs, the option settings).

mod answers;
mod health;
mod http;
mod lifecycle;
mod logs;
mod platform;
mod platforms;
mod query;
mod state;
mod swap;
mod update;
mod xml;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use self::state::{Environment, Event, Faults, Request};
use self::state::{State, World};
pub use self::xml::Loss;

/// Containers the fake starts carry this label, with the environment's port as value.
const CONTAINER_LABEL: &str = "dev.xtask.eb-fake";

/// The fake's settings.
pub struct Config {
    pub application: String,
    pub region: String,
    /// What CreateStorageLocation answers.
    pub bucket: String,
    /// moto's S3, `127.0.0.1:5100`.
    pub s3: String,
    /// How long an update stays `Updating` at least.
    pub update_takes: Duration,
    /// Items per page of a listing when the caller gives no MaxRecords.
    pub page_size: usize,
    /// The ECR registry the instance profile may pull from: its host, and the user and
    /// password its token carries. For an image of that registry the Docker platform logs in
    /// with the instance profile and needs no auth file ("Using images from an Amazon ECR
    /// repository", EB developer guide: the instance profile needs
    /// AmazonEC2ContainerRegistryReadOnly).
    pub instance_profile_ecr: Option<(String, String, String)>,
    /// Whether the application exists from the start (else `CreateApplication` makes it).
    pub application_exists: bool,
    /// The service's clock minus the client's, in seconds.
    pub clock_skew: i64,
    /// How often enhanced health refreshes its per-instance report (the service: about
    /// every 10 s).
    pub health_refresh: Duration,
}

/// How a seeded environment reports health, and how many instances it has.
#[derive(Clone, Copy, Debug)]
pub struct Seed {
    pub enhanced: bool,
    pub instances: usize,
}

impl Default for Seed {
    fn default() -> Seed {
        Seed { enhanced: true, instances: 1 }
    }
}

pub struct EbFake {
    pub endpoint: String,
    pub config: Arc<Config>,
    world: World,
}

impl EbFake {
    pub fn start(config: Config) -> EbFake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let dir = super::root().join("target").join("xtask-tests").join(super::unique("eb-fake"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut state = State::default();
        if config.application_exists {
            state.applications.insert(config.application.clone());
        }
        let refresh = config.health_refresh;
        let world = World {
            state: Arc::new(Mutex::new(state)),
            config: Arc::new(config),
            dir,
            stop: Arc::new(AtomicBool::new(false)),
        };
        http::serve(listener, world.clone());
        health::refresh_every(world.clone(), refresh);
        EbFake { endpoint, config: Arc::clone(&world.config), world }
    }

    /// An environment of the application, Ready, with enhanced health and one instance,
    /// served on `port` (its load balancer) once a version runs.
    pub fn add_environment(&self, name: &str, port: u16) {
        self.add_environment_with(name, port, Seed::default());
    }

    pub fn add_environment_with(&self, name: &str, port: u16, seed: Seed) {
        self.add_environment_in(&self.config.application.clone(), name, port, seed);
    }

    /// An environment of another application (whose name the region then holds).
    pub fn add_environment_in(&self, application: &str, name: &str, port: u16, seed: Seed) {
        let now = self.world.now();
        let env = Environment {
            name: name.to_owned(),
            id: format!("e-{}", &xml::request_id()[24..]),
            application: application.to_owned(),
            status: "Ready".into(),
            health: "Grey".into(),
            label: None,
            port,
            cname_prefix: name.to_owned(),
            options: Vec::new(),
            platform: platforms::platform_arn(platforms::PLATFORMS[2]),
            created: now,
            updated: now,
            serving: None,
            enhanced: seed.enhanced,
            instances: health::instances(seed.instances, now),
            reported: health::instances(seed.instances, now),
            refreshed_at: now,
            verified_at: None,
            stale: None,
            engine_log: Vec::new(),
        };
        let mut s = self.world.lock();
        s.applications.insert(application.to_owned());
        s.environments.insert(name.to_owned(), env);
        drop(s);
        http::load_balancer(port, name.to_owned(), self.world.clone());
    }

    /// The environment's CNAME prefix is `prefix` (the public one of a blue/green pair).
    pub fn set_cname_prefix(&self, name: &str, prefix: &str) {
        self.world.lock().environments.get_mut(name).unwrap().cname_prefix = prefix.to_owned();
    }

    /// The port of the load balancer the CNAME with `prefix` points to: what DNS would
    /// answer (the CNAME's TTL aside).
    pub fn port_of_cname(&self, prefix: &str) -> Option<u16> {
        let s = self.world.lock();
        s.environments.values().find(|e| e.cname_prefix == prefix).map(|e| e.port)
    }

    /// The environment's option `namespace:name` is `value` (as if created with it).
    pub fn set_option(&self, name: &str, (namespace, option, value): (&str, &str, &str)) {
        let mut s = self.world.lock();
        let env = s.environments.get_mut(name).unwrap();
        env.options.retain(|(n, o, _)| !(n == namespace && o == option));
        env.options.push((namespace.to_owned(), option.to_owned(), value.to_owned()));
    }

    /// Someone else holds this CNAME prefix.
    pub fn take_cname(&self, prefix: &str) {
        self.world.lock().taken_cnames.insert(prefix.to_owned());
    }

    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.world.lock().faults);
    }

    pub fn faults_snapshot(&self) -> Faults {
        self.world.lock().faults.clone()
    }

    pub fn environment(&self, name: &str) -> Environment {
        self.world.lock().environments[name].clone()
    }

    /// The environment of that name, terminated ones included (the newest first).
    pub fn find_environment(&self, name: &str) -> Option<Environment> {
        let s = self.world.lock();
        let terminated = s.terminated.iter().rev().find(|e| e.name == name);
        s.environments.get(name).or(terminated).cloned()
    }

    pub fn applications(&self) -> Vec<String> {
        self.world.lock().applications.iter().cloned().collect()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.world.lock().requests.clone()
    }

    /// How many requests of `action` naming `environment` it answered.
    pub fn count_on(&self, action: &str, environment: &str) -> usize {
        let s = self.world.lock();
        let on = |r: &&Request| r.action == action && r.environment.as_deref() == Some(environment);
        s.requests.iter().filter(on).count()
    }

    /// Another deploy (another request) keeps the environment `Updating` for `time`.
    pub fn make_busy(&self, name: &str, time: Duration) {
        self.world.someone_elses_update(name, time);
    }

    /// How many requests of `action` it answered.
    pub fn count(&self, action: &str) -> usize {
        self.world.lock().requests.iter().filter(|r| r.action == action).count()
    }

    pub fn events(&self) -> Vec<Event> {
        self.world.lock().events.clone()
    }

    /// The application's version labels.
    pub fn versions(&self) -> Vec<String> {
        let s = self.world.lock();
        let application = &self.config.application;
        s.versions.keys().filter(|(a, _)| a == application).map(|(_, l)| l.clone()).collect()
    }

    /// The description of version `label`, as created.
    pub fn version_description(&self, label: &str) -> Option<String> {
        let s = self.world.lock();
        let key = (self.config.application.clone(), label.to_owned());
        s.versions.get(&key).and_then(|v| v.description.clone())
    }

    /// A version of the application made by someone else, `age` ago (its bundle is never
    /// read).
    pub fn add_version(&self, label: &str, age: Duration) {
        let created = self.world.now() - age;
        self.world.add_version(&self.config.application, label, created);
    }

    /// The environment variables the SDK clients need to talk to this fake and to moto
    /// (S3, IAM).
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", self.endpoint.clone()),
            ("AWS_ENDPOINT_URL_S3", format!("http://{}", self.config.s3)),
            // moto's IAM, where the fake's launches look for the instance profile.
            ("AWS_ENDPOINT_URL_IAM", format!("http://{}", self.config.s3)),
            // moto's CloudWatch Logs, where streamed logs are.
            ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", format!("http://{}", self.config.s3)),
        ];
        env.extend(super::aws_test_credentials());
        env
    }

    /// The service's clock now.
    pub fn now(&self) -> SystemTime {
        self.world.now()
    }
}

impl Drop for EbFake {
    fn drop(&mut self) {
        self.world.stop.store(true, Ordering::SeqCst);
        let s = self.world.lock();
        let ports: Vec<u16> =
            s.environments.values().chain(&s.terminated).map(|e| e.port).collect();
        drop(s);
        for port in ports {
            let listed = platform::docker(&[
                "ps",
                "--all",
                "--quiet",
                "--filter",
                &format!("label={CONTAINER_LABEL}={port}"),
            ]);
            for id in String::from_utf8_lossy(&listed.stdout).lines() {
                platform::docker(&["rm", "--force", id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.world.dir);
    }
}
