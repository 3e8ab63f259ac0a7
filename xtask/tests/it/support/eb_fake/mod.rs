//! An in-process stand-in for Elastic Beanstalk, speaking its AWS Query protocol
//! (form-encoded POST, XML answers with the element names of the service model that ships
//! with botocore, `elasticbeanstalk/2010-12-01/service-2.json`), so that the real SDK client
//! of the xtask talks to it unchanged.
//!
//! It imports nothing of the xtask: each rule below comes from AWS's documentation, the
//! service model, or a reported real-world case, named where it is implemented. It keeps an
//! application's versions, environments and events. An UpdateEnvironment does what the
//! Docker platform does on an instance: fetch the Dockerrun from S3 (moto), check it by the
//! documented v1 rules, `docker pull` the image with the uploaded registry auth file (or,
//! for an ECR image, the instance profile's access), run
//! it, and route the environment's port to it (the load balancer: a TCP proxy of its own);
//! then it reports the outcome in events, status and health, as Elastic Beanstalk does.
//! Environments are also created (launched as an update deploys, after checking the
//! instance profile in moto's IAM, as EC2 would) and terminated (`lifecycle`), on the
//! platforms `ListPlatformVersions` lists.
//! Faults and real-world quirks can be injected (see [`Faults`]).

mod lifecycle;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_elasticbeanstalk::primitives::{DateTime, DateTimeFormat};
use serde_json::Value;

const NAMESPACE: &str = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/";
/// The one instance of every environment (a single-instance environment).
const INSTANCE: &str = "i-0fa4e1b2c3d4e5f60";
/// Containers the fake starts carry this label, with the environment's port as value.
const CONTAINER_LABEL: &str = "dev.xtask.eb-fake";

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub action: String,
    /// It asked for a page after the first (`NextToken`).
    pub next_page: bool,
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub id: String,
    pub status: String,
    pub health: String,
    pub label: Option<String>,
    /// The load balancer's port on 127.0.0.1 (the environment's CNAME).
    pub port: u16,
    pub options: Vec<(String, String, String)>,
    /// The platform ARN it runs on.
    pub platform: String,
    pub updated: SystemTime,
    /// When the last update finished (Ready again).
    pub ready_at: Option<Instant>,
    /// The container the load balancer routes to, and its loopback port.
    pub serving: Option<(String, u16)>,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub date: SystemTime,
    pub severity: String,
    pub message: String,
    pub request_id: Option<String>,
    pub environment: String,
    pub version_label: Option<String>,
}

#[derive(Clone, Debug)]
struct Version {
    bucket: String,
    key: String,
    created: SystemTime,
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
    /// The next deploy ends back on the previous version, without an ERROR event.
    pub roll_back_next_deploy: bool,
    pub hang_next_deploy: bool,
    /// After the next successful update, enhanced health is Red (Severe) for this long,
    /// then Green, as instances warm up (seen in beanstalk-deploy's users' logs).
    pub red_after_next_deploy: Option<Duration>,
    /// The next UpdateEnvironment is refused for the value of this environment option,
    /// echoing the value as Elastic Beanstalk's "Invalid option value" errors do.
    pub refuse_option_next_update: Option<String>,
    /// The next update fails its configuration validation on this environment option: an
    /// ERROR event of the update echoing the value, then the configuration reverted.
    pub reject_option_next_deploy: Option<String>,
    /// The next N requests, whatever their action, are throttled.
    pub throttle_next: u32,
    pub version_quota: bool,
}

impl Faults {
    /// The faults of the next deploy (an update or a launch) on `environment`, taken.
    fn take_for_deploy(&mut self, environment: &str) -> Faults {
        let on_this = self.fail_next_deploy_on.take_if(|name| name == environment).is_some();
        Faults {
            fail_next_deploy: std::mem::take(&mut self.fail_next_deploy) || on_this,
            fail_instances_next_deploy: std::mem::take(&mut self.fail_instances_next_deploy),
            roll_back_next_deploy: std::mem::take(&mut self.roll_back_next_deploy),
            hang_next_deploy: std::mem::take(&mut self.hang_next_deploy),
            red_after_next_deploy: self.red_after_next_deploy.take(),
            reject_option_next_deploy: self.reject_option_next_deploy.take(),
            ..Faults::default()
        }
    }
}

impl State {
    /// The bundle of the version an update or a launch names, or the service's refusal
    /// (beanstalk-deploy #58: "No Application Version named '…' found.").
    fn bundle(
        &self,
        label: Option<&str>,
    ) -> Result<Option<(String, String)>, (&'static str, String)> {
        let Some(label) = label else { return Ok(None) };
        match self.versions.get(label) {
            Some(v) => Ok(Some((v.bucket.clone(), v.key.clone()))),
            None => Err(error(
                "InvalidParameterValue",
                &format!("No Application Version named '{label}' found."),
            )),
        }
    }
}

#[derive(Default)]
struct State {
    applications: BTreeSet<String>,
    versions: BTreeMap<String, Version>,
    /// The environments that are not terminated, by name.
    environments: BTreeMap<String, Environment>,
    /// Terminated ones: listed for a while, their names free again.
    terminated: Vec<Environment>,
    events: Vec<Event>,
    requests: Vec<Request>,
    faults: Faults,
}

/// The fake's settings.
pub struct Config {
    pub application: String,
    /// What CreateStorageLocation answers.
    pub bucket: String,
    /// moto's S3, `127.0.0.1:5100`.
    pub s3: String,
    /// How long an update stays `Updating` at least.
    pub update_takes: Duration,
    /// Events per DescribeEvents page when the caller gives no MaxRecords.
    pub events_per_page: usize,
    /// The ECR registry the instance profile may pull from: its host, and the user and
    /// password its token carries. For an image of that registry the Docker platform logs in
    /// with the instance profile and needs no auth file ("Using images from an Amazon ECR
    /// repository", EB developer guide: the instance profile needs
    /// AmazonEC2ContainerRegistryReadOnly).
    pub instance_profile_ecr: Option<(String, String, String)>,
    /// Whether the application exists from the start (else `CreateApplication` makes it).
    pub application_exists: bool,
}

pub struct EbFake {
    pub endpoint: String,
    pub config: Arc<Config>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// A request ID in the form AWS uses (a UUID).
fn request_id() -> String {
    let n = REQUEST_IDS.fetch_add(1, Ordering::SeqCst);
    format!("5f3c1b2a-0000-4000-8000-{:012x}", (u64::from(std::process::id()) << 20) + n)
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
        let fake = EbFake {
            endpoint,
            config: Arc::new(config),
            state: Arc::new(Mutex::new(state)),
            stop: Arc::default(),
            dir,
        };
        let world = World {
            state: Arc::clone(&fake.state),
            config: Arc::clone(&fake.config),
            dir: fake.dir.clone(),
            stop: Arc::clone(&fake.stop),
        };
        accept_loop(listener, Arc::clone(&fake.stop), move |stream| {
            let world = world.clone();
            thread::spawn(move || world.serve(stream));
        });
        fake
    }

    /// An environment, Ready, served on `port` (its load balancer) once a version runs.
    pub fn add_environment(&self, name: &str, port: u16) {
        let env = Environment {
            name: name.to_owned(),
            id: format!("e-{}", &request_id()[24..]),
            status: "Ready".into(),
            health: "Grey".into(),
            label: None,
            port,
            options: Vec::new(),
            platform: lifecycle::platform_arn(lifecycle::PLATFORMS[0]),
            updated: SystemTime::now(),
            ready_at: None,
            serving: None,
        };
        self.state.lock().unwrap().environments.insert(name.to_owned(), env);
        load_balancer(port, name.to_owned(), Arc::clone(&self.state), Arc::clone(&self.stop));
    }

    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.state.lock().unwrap().faults);
    }

    pub fn faults_snapshot(&self) -> Faults {
        self.state.lock().unwrap().faults.clone()
    }

    pub fn environment(&self, name: &str) -> Environment {
        self.state.lock().unwrap().environments[name].clone()
    }

    /// The environment of that name, terminated ones included (the newest first).
    pub fn find_environment(&self, name: &str) -> Option<Environment> {
        let s = self.state.lock().unwrap();
        let terminated = s.terminated.iter().rev().find(|e| e.name == name);
        s.environments.get(name).or(terminated).cloned()
    }

    pub fn applications(&self) -> Vec<String> {
        self.state.lock().unwrap().applications.iter().cloned().collect()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap().events.clone()
    }

    pub fn versions(&self) -> Vec<String> {
        self.state.lock().unwrap().versions.keys().cloned().collect()
    }

    /// A version made by someone else, `age` ago (its bundle is never read).
    pub fn add_version(&self, label: &str, age: Duration) {
        let version = Version {
            bucket: "elsewhere".to_owned(),
            key: format!("{label}.json"),
            created: SystemTime::now() - age,
        };
        self.state.lock().unwrap().versions.insert(label.to_owned(), version);
    }

    /// The environment variables the SDK clients need to talk to this fake and to moto
    /// (S3, IAM).
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", self.endpoint.clone()),
            ("AWS_ENDPOINT_URL_S3", format!("http://{}", self.config.s3)),
            // moto's IAM, where the fake's launches look for the instance profile.
            ("AWS_ENDPOINT_URL_IAM", format!("http://{}", self.config.s3)),
        ];
        env.extend(super::aws_test_credentials());
        env
    }
}

impl Drop for EbFake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let s = self.state.lock().unwrap();
        let ports: Vec<u16> =
            s.environments.values().chain(&s.terminated).map(|e| e.port).collect();
        drop(s);
        for port in ports {
            let listed = docker(&[
                "ps",
                "--all",
                "--quiet",
                "--filter",
                &format!("label={CONTAINER_LABEL}={port}"),
            ]);
            for id in String::from_utf8_lossy(&listed.stdout).lines() {
                docker(&["rm", "--force", id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accepts connections until `stop`, handing each to `handle`.
fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handle: impl Fn(TcpStream) + Send + 'static,
) {
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    handle(stream);
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
}

/// The environment's load balancer: forwards each connection on `port` to the container
/// the environment serves from, or answers 503 while there is none.
fn load_balancer(port: u16, name: String, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    accept_loop(listener, stop, move |mut client| {
        let upstream =
            state.lock().unwrap().environments.get(&name).and_then(|e| e.serving.clone());
        thread::spawn(move || {
            let Some(mut server) =
                upstream.and_then(|(_, p)| TcpStream::connect(("127.0.0.1", p)).ok())
            else {
                let _ = client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let forward = thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(Shutdown::Write);
            });
            let _ = std::io::copy(&mut server, &mut client);
            let _ = client.shutdown(Shutdown::Both);
            let _ = forward.join();
        });
    });
}

/// What a request handler and a deploy job share.
#[derive(Clone)]
struct World {
    state: Arc<Mutex<State>>,
    config: Arc<Config>,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

type Form = BTreeMap<String, String>;

impl World {
    fn serve(&self, mut stream: TcpStream) {
        let Some(body) = read_request(&mut stream) else { return };
        let form: Form = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        let action = form.get("Action").cloned().unwrap_or_default();
        let (status, xml) = self.answer(&action, &form);
        // Like the real service, the request ID is also a header: the SDK reads it there.
        let request = xml
            .split("<RequestId>")
            .nth(1)
            .and_then(|r| r.split_once('<'))
            .map(|(id, _)| id)
            .unwrap_or("");
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nx-amzn-RequestId: {request}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        );
        let _ = stream.write_all(response.as_bytes());
    }

    fn answer(&self, action: &str, form: &Form) -> (&'static str, String) {
        let mut s = self.state.lock().unwrap();
        s.requests.push(Request {
            at: Instant::now(),
            action: action.to_owned(),
            next_page: form.contains_key("NextToken"),
        });
        // Any action may be throttled: HTTP 400, code Throttling, "Rate exceeded" (AWS's
        // error reference for the Query APIs; no published rate, comes in bursts).
        if s.faults.throttle_next > 0 {
            s.faults.throttle_next -= 1;
            return error("Throttling", "Rate exceeded");
        }
        match action {
            "CreateStorageLocation" => ok(action, &el("S3Bucket", &self.config.bucket)),
            "DescribeApplicationVersions" => {
                let wanted = members(form, "VersionLabels");
                let listed: String = s
                    .versions
                    .iter()
                    .filter(|(label, _)| wanted.is_empty() || wanted.contains(label))
                    .map(|(label, v)| format!("<member>{}</member>", self.version_xml(label, v)))
                    .collect();
                ok(action, &format!("<ApplicationVersions>{listed}</ApplicationVersions>"))
            }
            "CreateApplicationVersion" => {
                let label = form.get("VersionLabel").cloned().unwrap_or_default();
                // The model: VersionLabel is 1 to 100 characters; the service also refuses
                // a '/' (its pattern `[^/]+`, enforced though the model omits it).
                if label.is_empty() || label.chars().count() > 100 {
                    return error(
                        "ValidationError",
                        &format!(
                            "1 validation error detected: Value '{label}' at 'versionLabel' failed to \
                             satisfy constraint: Member must have length less than or equal to 100"
                        ),
                    );
                }
                if label.contains('/') {
                    return error(
                        "ValidationError",
                        &format!(
                            "1 validation error detected: Value '{label}' at 'versionLabel' failed to \
                             satisfy constraint: Member must satisfy regular expression pattern: [^/]+"
                        ),
                    );
                }
                // The version's application must exist (without AutoCreateApplication):
                // "No Application named '…' found." (EB CLI strings, beanstalk-deploy #63).
                let application = form.get("ApplicationName").cloned().unwrap_or_default();
                if !s.applications.contains(&application) {
                    return error(
                        "InvalidParameterValue",
                        &format!("No Application named '{application}' found."),
                    );
                }
                if s.faults.version_quota {
                    return error(
                        "TooManyApplicationVersionsException",
                        "You cannot have more than 1000 Application Versions.",
                    );
                }
                if s.versions.contains_key(&label) {
                    return error(
                        "InvalidParameterValue",
                        &format!("Application Version {label} already exists."),
                    );
                }
                let version = Version {
                    bucket: form.get("SourceBundle.S3Bucket").cloned().unwrap_or_default(),
                    key: form.get("SourceBundle.S3Key").cloned().unwrap_or_default(),
                    created: SystemTime::now(),
                };
                let xml = self.version_xml(&label, &version);
                s.versions.insert(label, version);
                if let Some(time) = s.faults.busy_for.take() {
                    let names: Vec<String> = s.environments.keys().cloned().collect();
                    drop(s);
                    for name in names {
                        self.someone_elses_update(&name, time);
                    }
                }
                ok(action, &format!("<ApplicationVersion>{xml}</ApplicationVersion>"))
            }
            "DeleteApplicationVersion" => {
                let label = form.get("VersionLabel").cloned().unwrap_or_default();
                s.versions.remove(&label);
                ok(action, "")
            }
            "DescribeEnvironments" => {
                // The API reference: EnvironmentNames and EnvironmentIds filter; deleted
                // (Terminated) environments are listed for a while unless IncludeDeleted
                // is false.
                let names = members(form, "EnvironmentNames");
                let ids = members(form, "EnvironmentIds");
                let deleted = form.get("IncludeDeleted").is_none_or(|d| d != "false");
                let terminated = s.terminated.iter().filter(|_| deleted);
                let listed: String = s
                    .environments
                    .values()
                    .chain(terminated)
                    .filter(|e| names.is_empty() || names.contains(&e.name))
                    .filter(|e| ids.is_empty() || ids.contains(&e.id))
                    .map(|e| format!("<member>{}</member>", self.environment_xml(e)))
                    .collect();
                ok(action, &format!("<Environments>{listed}</Environments>"))
            }
            "DescribeEvents" => self.describe_events(&s, form),
            "DescribeEnvironmentHealth" => {
                let name = form.get("EnvironmentName").cloned().unwrap_or_default();
                let Some(env) = s.environments.get(&name) else {
                    return error(
                        "InvalidRequestException",
                        &format!("No Environment found for EnvironmentName = '{name}'."),
                    );
                };
                // Enhanced health's causes for a Severe environment (the EB developer
                // guide's "Health colors and statuses").
                let causes = if env.health == "Red" {
                    "<member>ELB processes are not healthy on all instances.</member>\
                     <member>ELB health is failing or not available for all instances.</member>"
                } else {
                    ""
                };
                let body = format!(
                    "{}{}{}{}<Causes>{causes}</Causes>",
                    el("EnvironmentName", &name),
                    el("HealthStatus", health_status(&env.health)),
                    el("Status", &env.status),
                    el("Color", &env.health),
                );
                ok(action, &body)
            }
            "DescribeAccountAttributes" => ok(
                action,
                "<ResourceQuotas><ApplicationVersionQuota><Maximum>1000</Maximum></ApplicationVersionQuota></ResourceQuotas>",
            ),
            "UpdateEnvironment" => {
                drop(s);
                self.update_environment(form)
            }
            "CreateApplication" => self.create_application(&mut s, form),
            "DescribeApplications" => self.describe_applications(&s, form),
            "ListPlatformVersions" => self.list_platform_versions(form),
            "CreateEnvironment" => {
                drop(s);
                self.create_environment(form)
            }
            "TerminateEnvironment" => {
                drop(s);
                self.terminate_environment(form)
            }
            other => error(
                "InvalidAction",
                &format!("The action {other} is not valid for this web service."),
            ),
        }
    }

    /// DescribeEvents as the API reference has it: newest first, `StartTime` inclusive,
    /// `EndTime` exclusive, `Severity` a floor, `MaxRecords` per page and `NextToken`.
    fn describe_events(&self, s: &State, form: &Form) -> (&'static str, String) {
        let environment = form.get("EnvironmentName");
        let request = form.get("RequestId");
        let time = |name: &str| form.get(name).and_then(|t| parse_time(t));
        let (start, end) = (time("StartTime"), time("EndTime"));
        const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        let level = |s: &str| LEVELS.iter().position(|l| *l == s).unwrap_or(0);
        let floor = form.get("Severity").map_or(0, |s| level(s));
        let matching: Vec<&Event> = s
            .events
            .iter()
            .rev()
            .filter(|e| environment.is_none_or(|n| *n == e.environment))
            .filter(|e| request.is_none_or(|r| e.request_id.as_ref() == Some(r)))
            .filter(|e| start.is_none_or(|t| e.date >= t) && end.is_none_or(|t| e.date < t))
            .filter(|e| level(&e.severity) >= floor)
            .collect();
        let (listed, next) = self.page(form, &matching, |e| {
            format!(
                "{}{}{}{}{}{}{}",
                el("EventDate", &iso8601(e.date)),
                el("Message", &e.message),
                el("ApplicationName", &self.config.application),
                el("EnvironmentName", &e.environment),
                e.version_label.as_deref().map(|l| el("VersionLabel", l)).unwrap_or_default(),
                e.request_id.as_deref().map(|r| el("RequestId", r)).unwrap_or_default(),
                el("Severity", &e.severity),
            )
        });
        ok("DescribeEvents", &format!("<Events>{listed}</Events>{next}"))
    }

    /// One page of `items`, each rendered by `member`, as the Query APIs page: `MaxRecords`
    /// (else the fake's page size) from `NextToken` (an offset here); the `NextToken`
    /// element follows when more remain.
    fn page<T>(&self, form: &Form, items: &[T], member: impl Fn(&T) -> String) -> (String, String) {
        let size = form
            .get("MaxRecords")
            .and_then(|m| m.parse().ok())
            .unwrap_or(self.config.events_per_page);
        let from: usize = form.get("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
        let listed = items
            .iter()
            .skip(from)
            .take(size)
            .map(|item| format!("<member>{}</member>", member(item)))
            .collect();
        let next = if from + size < items.len() {
            el("NextToken", &(from + size).to_string())
        } else {
            String::new()
        };
        (listed, next)
    }

    fn update_environment(&self, form: &Form) -> (&'static str, String) {
        let name = form.get("EnvironmentName").cloned().unwrap_or_default();
        let busy_at_update = self.state.lock().unwrap().faults.busy_at_update.take();
        if let Some(time) = busy_at_update {
            self.someone_elses_update(&name, time);
        }
        let mut s = self.state.lock().unwrap();
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
        let bundle = match s.bundle(label.as_deref()) {
            Ok(bundle) => bundle,
            Err(refused) => return refused,
        };
        let options = option_settings(form);
        if let Some(name) = s.faults.refuse_option_next_update.take()
            && let Some(refused) = options.iter().find(|(_, o, _)| *o == name)
        {
            return error("InvalidParameterValue", &invalid_option(refused));
        }
        let request = request_id();
        let faults = s.faults.take_for_deploy(&name);
        let updated = {
            let env = s.environments.get_mut(&name).unwrap();
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
            env.updated = SystemTime::now();
            env.clone()
        };
        drop(s);
        self.event(&name, "INFO", "Environment update is starting.", Some(&request), None);
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
        let xml = format!(
            "<UpdateEnvironmentResponse xmlns=\"{NAMESPACE}\"><UpdateEnvironmentResult>{}</UpdateEnvironmentResult>\
             <ResponseMetadata><RequestId>{request}</RequestId></ResponseMetadata></UpdateEnvironmentResponse>",
            self.environment_xml(&updated)
        );
        ("200 OK", xml)
    }

    /// Another deploy (another request) keeps the environment `Updating` for `time`.
    fn someone_elses_update(&self, name: &str, time: Duration) {
        let theirs = request_id();
        self.set(name, |e| e.status = "Updating".into());
        self.event(name, "INFO", "Environment update is starting.", Some(&theirs), None);
        let world = self.clone();
        let name = name.to_owned();
        thread::spawn(move || {
            thread::sleep(time);
            world.set(&name, |e| e.status = "Ready".into());
            let done = "Environment update completed successfully.";
            world.event(&name, "INFO", done, Some(&theirs), None);
        });
    }

    fn set(&self, name: &str, change: impl FnOnce(&mut Environment)) {
        if let Some(env) = self.state.lock().unwrap().environments.get_mut(name) {
            change(env);
        }
    }

    fn event(
        &self,
        environment: &str,
        severity: &str,
        message: &str,
        request: Option<&str>,
        label: Option<&str>,
    ) {
        self.state.lock().unwrap().events.push(Event {
            date: SystemTime::now(),
            severity: severity.into(),
            message: message.into(),
            request_id: request.map(str::to_owned),
            environment: environment.into(),
            version_label: label.map(str::to_owned),
        });
    }

    fn version_xml(&self, label: &str, version: &Version) -> String {
        format!(
            "{}{}<SourceBundle>{}{}</SourceBundle>{}{}{}",
            el("ApplicationName", &self.config.application),
            el("VersionLabel", label),
            el("S3Bucket", &version.bucket),
            el("S3Key", &version.key),
            el("DateCreated", &iso8601(version.created)),
            el("DateUpdated", &iso8601(version.created)),
            el("Status", "Unprocessed"),
        )
    }

    fn environment_xml(&self, env: &Environment) -> String {
        // A launching environment may have no CNAME yet (aws-cli #1891; the EB CLI then
        // prints "CNAME: UNKNOWN").
        let cname = format!("127.0.0.1:{}", env.port);
        let cname = if env.status == "Launching" { String::new() } else { cname };
        let address = |name: &str| if cname.is_empty() { String::new() } else { el(name, &cname) };
        format!(
            "{}{}{}{}{}{}{}{}{}{}{}{}{}<Tier><Name>WebServer</Name><Type>Standard</Type><Version>1.0</Version></Tier>",
            el("EnvironmentName", &env.name),
            el("EnvironmentId", &env.id),
            el("ApplicationName", &self.config.application),
            env.label.as_deref().map(|l| el("VersionLabel", l)).unwrap_or_default(),
            el("PlatformArn", &env.platform),
            address("EndpointURL"),
            address("CNAME"),
            el("DateCreated", &iso8601(env.updated)),
            el("DateUpdated", &iso8601(env.updated)),
            el("Status", &env.status),
            el("AbortableOperationInProgress", "false"),
            el("Health", &env.health),
            el("HealthStatus", health_status(&env.health)),
        )
    }
}

/// The work Elastic Beanstalk does after UpdateEnvironment.
struct Deploy {
    world: World,
    environment: String,
    label: Option<String>,
    previous: Option<String>,
    previous_serving: Option<(String, u16)>,
    bundle: Option<(String, String)>,
    options: Vec<(String, String, String)>,
    request: String,
    port: u16,
    faults: Faults,
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
            world.event(env, "ERROR", &why, request, None);
            let reverted = "The environment was reverted to the previous configuration setting.";
            world.event(env, "INFO", reverted, request, None);
            let previous = self.previous.clone();
            world.set(env, |e| {
                e.status = "Ready".into();
                e.health = "Green".into();
                e.label = previous;
            });
            return;
        }
        world.event(env, "INFO", "Deploying new version to instance(s).", request, None);
        let deployed = if self.faults.fail_next_deploy {
            Err("the application did not start (injected fault)".to_owned())
        } else if self.faults.fail_instances_next_deploy {
            Err("Engine execution has encountered an error.".to_owned())
        } else {
            self.deploy()
        };
        thread::sleep(world.config.update_takes.saturating_sub(started.elapsed()));
        if self.faults.roll_back_next_deploy {
            let previous = self.previous.clone();
            let serving = self.previous_serving.clone();
            self.retire_new(&deployed);
            world.set(env, |e| {
                e.status = "Ready".into();
                e.health = "Green".into();
                e.label = previous;
                e.serving = serving;
            });
            return;
        }
        match deployed {
            Ok(container) => {
                let old = self.previous_serving.clone();
                let red_for = self.faults.red_after_next_deploy;
                world.set(env, |e| {
                    e.serving = Some(container.clone());
                    e.status = "Ready".into();
                    e.health = if red_for.is_some() { "Red" } else { "Green" }.into();
                    e.ready_at = Some(Instant::now());
                });
                if let Some((old, _)) = old.filter(|(old, _)| *old != container.0) {
                    docker(&["rm", "--force", &old]);
                }
                world.event(
                    env,
                    "INFO",
                    "Instance deployment completed successfully.",
                    request,
                    None,
                );
                let done = "New application version was deployed to running EC2 instances.";
                world.event(env, "INFO", done, request, None);
                let done = "Environment update completed successfully.";
                world.event(env, "INFO", done, request, self.label.as_deref());
                if let Some(red_for) = red_for {
                    self.red_then_green(red_for);
                }
            }
            Err(why) if self.faults.fail_instances_next_deploy => {
                // EB roadmap #162: the instance failed, yet the update "completed
                // successfully", Ready, on the new label, Green: only the ERROR events of
                // the update's request tell. The instance keeps the old container.
                self.instance_failed(&why);
                world.set(env, |e| {
                    e.status = "Ready".into();
                    e.health = "Green".into();
                    e.ready_at = Some(Instant::now());
                });
                let done = "Environment update completed successfully.";
                world.event(env, "INFO", done, request, self.label.as_deref());
            }
            Err(why) => {
                // An application that does not start: the instance's deployment fails, the
                // update completes with errors, health turns Severe (beanstalk-deploy #86,
                // eb_deployer #59 and #69). The environment keeps the requested label.
                self.retire_new(&Err(why.clone()));
                self.instance_failed(&why);
                world.event(env, "ERROR", "Failed to deploy application.", request, None);
                let done = "Update environment operation is complete, but with errors. For more \
                            information, see troubleshooting documentation.";
                world.event(env, "ERROR", done, request, None);
                world.set(env, |e| {
                    e.status = "Ready".into();
                    e.health = "Red".into();
                    e.ready_at = Some(Instant::now());
                });
                let health = "Environment health has transitioned from Ok to Severe. Command \
                              failed on all instances.";
                world.event(env, "WARN", health, None, None);
            }
        }
    }

    /// The instance's events of a failed deployment, in the order of beanstalk-deploy #86.
    fn instance_failed(&self, why: &str) {
        let (world, env, request) =
            (&self.world, self.environment.as_str(), Some(self.request.as_str()));
        let failed = "Instance deployment failed. For details, see 'eb-engine.log'.";
        world.event(env, "ERROR", failed, request, None);
        let command = format!(
            "[Instance: {INSTANCE}] Command failed on instance. Return code: 1 Output: {why}."
        );
        world.event(env, "ERROR", &command, request, None);
        let summary =
            "Command execution completed on all instances. Summary: [Successful: 0, Failed: 1].";
        world.event(env, "INFO", summary, request, None);
    }

    /// Enhanced health after the update: Severe while the instance warms up, then Ok; the
    /// transitions are events without a RequestId.
    fn red_then_green(&self, red_for: Duration) {
        let (world, env) = (&self.world, self.environment.as_str());
        let severe = "Environment health has transitioned from Ok to Severe. ELB processes are \
                      not healthy on all instances.";
        world.event(env, "WARN", severe, None, None);
        let (world, env) = (world.clone(), env.to_owned());
        thread::spawn(move || {
            thread::sleep(red_for);
            world.set(&env, |e| e.health = "Green".into());
            let ok = "Environment health has transitioned from Severe to Ok.";
            world.event(&env, "INFO", ok, None, None);
        });
    }

    /// Removes a container this deploy started but does not keep.
    fn retire_new(&self, deployed: &Result<(String, u16), String>) {
        let serving = self.previous_serving.as_ref().map(|(c, _)| c);
        if let Ok((container, _)) = deployed
            && Some(container) != serving
        {
            docker(&["rm", "--force", container]);
        }
    }

    /// What the Docker platform does on the instance: read the bundle, check it, pull the
    /// image with the auth file, run it, and see it answer. Returns the container and the
    /// loopback port it answers on.
    fn deploy(&self) -> Result<(String, u16), String> {
        let Some((bucket, key)) = &self.bundle else {
            return self.previous_serving.clone().ok_or_else(|| "no application version".into());
        };
        let s3 = super::S3::new(&self.world.config.s3);
        let text =
            s3.get(bucket, key).ok_or_else(|| format!("cannot read s3://{bucket}/{key}"))?.body;
        let dockerrun = Dockerrun::check(&text)?;
        let config_dir = self.world.dir.join(format!("docker-config-{}", self.request));
        std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
        let ecr = self.world.config.instance_profile_ecr.as_ref();
        if let Some((host, user, password)) =
            ecr.filter(|(host, _, _)| dockerrun.image.starts_with(&format!("{host}/")))
        {
            let login = duct::cmd!(
                "docker",
                "--config",
                &config_dir,
                "login",
                "--username",
                user,
                "--password-stdin",
                host
            )
            .stdin_bytes(password.as_bytes())
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|e| e.to_string())?;
            if !login.status.success() {
                return Err(format!(
                    "instance profile cannot log in to ECR: {}",
                    String::from_utf8_lossy(&login.stderr).trim()
                ));
            }
        } else if let Some((bucket, key)) = &dockerrun.authentication {
            let auth =
                s3.get(bucket, key).ok_or_else(|| format!("cannot read s3://{bucket}/{key}"))?;
            std::fs::write(config_dir.join("config.json"), auth.body).map_err(|e| e.to_string())?;
        }
        let config = config_dir.to_string_lossy().into_owned();
        let pull = docker(&["--config", &config, "pull", "--quiet", &dockerrun.image]);
        let _ = std::fs::remove_dir_all(&config_dir);
        if !pull.status.success() {
            return Err(format!(
                "cannot pull {}: {}",
                dockerrun.image,
                String::from_utf8_lossy(&pull.stderr).trim()
            ));
        }
        let container = super::unique("xtask-fake-eb");
        let logs = self.world.dir.join(format!("logs-{}", self.request));
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777));
        let mut args: Vec<String> =
            ["run", "--detach", "--name", &container, "--label"].map(str::to_owned).to_vec();
        args.push(format!("{CONTAINER_LABEL}={}", self.port));
        args.extend(["--publish".to_owned(), format!("127.0.0.1::{}", dockerrun.port)]);
        if let Some(dir) = &dockerrun.logging {
            args.extend(["--volume".to_owned(), format!("{}:{dir}", logs.display())]);
        }
        // Option values reach the container as its environment; through docker's own
        // environment, so that none is in a command line.
        let env: Vec<(String, String)> = self
            .options
            .iter()
            .filter(|(ns, _, _)| ns == "aws:elasticbeanstalk:application:environment")
            .map(|(_, name, value)| (name.clone(), value.clone()))
            .collect();
        for (name, _) in &env {
            args.extend(["--env".to_owned(), name.clone()]);
        }
        if let Some(entrypoint) = &dockerrun.entrypoint {
            args.extend(["--entrypoint".to_owned(), entrypoint.clone()]);
        }
        args.push(dockerrun.image.clone());
        args.extend(dockerrun.command.iter().flat_map(|c| c.split_whitespace().map(str::to_owned)));
        let mut run = duct::cmd("docker", &args);
        for (name, value) in &env {
            run = run.env(name, value);
        }
        let started =
            run.stdout_capture().stderr_capture().unchecked().run().map_err(|e| e.to_string())?;
        if !started.status.success() {
            return Err(String::from_utf8_lossy(&started.stderr).trim().to_owned());
        }
        let published = docker(&["port", &container, &format!("{}/tcp", dockerrun.port)]);
        let port = String::from_utf8_lossy(&published.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:").and_then(|p| p.trim().parse::<u16>().ok()));
        let answered =
            port.is_some_and(|port| answers(port, &self.health_path(), Duration::from_secs(30)));
        match port {
            Some(port) if answered => Ok((container, port)),
            _ => {
                docker(&["rm", "--force", &container]);
                Err("the application did not answer its health check".to_owned())
            }
        }
    }

    /// The health check path: the `Application Healthcheck URL` option, else `/`.
    fn health_path(&self) -> String {
        self.options
            .iter()
            .find(|(ns, name, _)| {
                ns == "aws:elasticbeanstalk:application" && name == "Application Healthcheck URL"
            })
            .and_then(|(_, _, value)| value.find('/').map(|i| value[i..].to_owned()))
            .unwrap_or_else(|| "/".to_owned())
    }
}

/// Elastic Beanstalk's words for an option value it refuses; they carry the value (as
/// reported with real option errors, e.g. on an InstanceType).
fn invalid_option((namespace, name, value): &(String, String, String)) -> String {
    format!(
        "Invalid option value: '{value}' (Namespace: '{namespace}', OptionName: '{name}'): Value \
         does not satisfy the option's constraints."
    )
}

/// What the Docker platform reads of a v1 Dockerrun.aws.json, by the rules of the EB
/// developer guide ("Docker configuration": v1 keys; `Ports` required with `Image`; only
/// the first port is routed; `Authentication` names the auth file's Bucket and Key).
struct Dockerrun {
    image: String,
    port: u16,
    authentication: Option<(String, String)>,
    logging: Option<String>,
    entrypoint: Option<String>,
    command: Option<String>,
}

impl Dockerrun {
    fn check(text: &str) -> Result<Dockerrun, String> {
        let invalid = |why: &str| format!("Invalid Dockerrun.aws.json: {why}, abort deployment");
        let json: Value = serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?;
        if json["AWSEBDockerrunVersion"] != "1" && json["AWSEBDockerrunVersion"] != 1 {
            return Err("Invalid Dockerrun.aws.json version, abort deployment".into());
        }
        let image = json["Image"]["Name"].as_str().filter(|n| !n.is_empty());
        let image = image.ok_or_else(|| invalid("no Image.Name"))?.to_owned();
        let port = &json["Ports"][0]["ContainerPort"];
        let port = port
            .as_str()
            .map(str::to_owned)
            .or_else(|| port.as_u64().map(|p| p.to_string()))
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| invalid("Ports is required with Image"))?;
        let authentication = match &json["Authentication"] {
            Value::Null => None,
            auth => Some((
                auth["Bucket"]
                    .as_str()
                    .ok_or_else(|| invalid("no Authentication.Bucket"))?
                    .to_owned(),
                auth["Key"].as_str().ok_or_else(|| invalid("no Authentication.Key"))?.to_owned(),
            )),
        };
        let text = |key: &str| json[key].as_str().map(str::to_owned);
        Ok(Dockerrun {
            image,
            port,
            authentication,
            logging: text("Logging"),
            entrypoint: text("Entrypoint"),
            command: text("Command"),
        })
    }
}

/// Whether `GET path` on the loopback port answers 200 within `within`.
fn answers(port: u16, path: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let mut status = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && BufReader::new(stream).read_line(&mut status).is_ok()
                && status.split_whitespace().nth(1) == Some("200")
            {
                return true;
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

fn docker(args: &[&str]) -> Output {
    duct::cmd("docker", args).stdout_capture().stderr_capture().unchecked().run().unwrap()
}

fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The `OptionSettings` of a request: (namespace, name, value).
fn option_settings(form: &Form) -> Vec<(String, String, String)> {
    (1..)
        .map_while(|n| {
            let field = |f: &str| form.get(&format!("OptionSettings.member.{n}.{f}")).cloned();
            Some((field("Namespace")?, field("OptionName")?, field("Value").unwrap_or_default()))
        })
        .collect()
}

/// `Prefix.member.N` values in order (the Query protocol's lists).
fn members(form: &Form, prefix: &str) -> Vec<String> {
    (1..).map_while(|n| form.get(&format!("{prefix}.member.{n}")).cloned()).collect()
}

/// Enhanced health's word for a colour.
fn health_status(health: &str) -> &'static str {
    match health {
        "Green" => "Ok",
        "Yellow" => "Warning",
        "Red" => "Severe",
        _ => "Unknown",
    }
}

fn ok(action: &str, body: &str) -> (&'static str, String) {
    (
        "200 OK",
        format!(
            "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{body}</{action}Result>\
             <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            request_id()
        ),
    )
}

/// A client error of the Query protocol (HTTP 400, `Type` Sender), as the awsQuery protocol
/// tests of Smithy shape it.
fn error(code: &str, message: &str) -> (&'static str, String) {
    (
        "400 Bad Request",
        format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            escape(message),
            request_id()
        ),
    )
}

fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `2026-11-29T00:12:33.120Z`: the service's timestamps carry three digits of milliseconds.
pub fn iso8601(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = DateTime::from_secs(since.as_secs() as i64).fmt(DateTimeFormat::DateTime);
    let whole = whole.unwrap_or_default();
    format!("{}.{:03}Z", whole.trim_end_matches('Z'), since.subsec_millis())
}

fn parse_time(text: &str) -> Option<SystemTime> {
    let time = DateTime::from_str(text, DateTimeFormat::DateTime).ok()?;
    SystemTime::try_from(time).ok()
}

#[test]
fn times_round_trip() {
    let now = SystemTime::now();
    let back = parse_time(&iso8601(now)).unwrap();
    let diff = now.duration_since(back).unwrap_or_else(|e| e.duration());
    assert!(diff < Duration::from_millis(2), "{}", iso8601(now));
    assert!(iso8601(SystemTime::UNIX_EPOCH).starts_with("1970-01-01T00:00:00"));
}
