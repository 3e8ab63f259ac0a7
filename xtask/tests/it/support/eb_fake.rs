//! An in-process stand-in for Elastic Beanstalk, speaking its AWS Query protocol
//! (form-encoded POST, XML answers with the element names of the service model that ships
//! with botocore), so the real SDK client of the xtask talks to it unchanged.
//!
//! It keeps an application's versions, environments and events; an UpdateEnvironment moves
//! the environment to `Updating`, fetches the Dockerrun from S3 (moto), checks it, pulls the
//! image with the uploaded registry auth file and runs it with `xtask::local::Release` on the
//! environment's port, then turns `Ready` + Green, or Red with an ERROR event and a rollback.
//! Faults can be injected: busy environment, failed deploy, throttling bursts, a hang, the
//! application version quota.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xtask::dockerrun::Dockerrun;
use xtask::local::{EnvVar, Names, Release};
use xtask::{Context, Env};

const NAMESPACE: &str = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/";

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub action: String,
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub id: String,
    pub status: String,
    pub health: String,
    pub label: Option<String>,
    pub port: u16,
    pub options: Vec<(String, String, String)>,
    pub updated: SystemTime,
    /// When the last update finished (Ready again).
    pub ready_at: Option<Instant>,
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

#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// When the next application version is created (someone else's update starts just
    /// then), the environments turn busy for this long.
    pub busy_for: Option<Duration>,
    pub fail_next_deploy: bool,
    /// The next deploy is rolled back without an ERROR event.
    pub roll_back_next_deploy: bool,
    pub hang_next_deploy: bool,
    pub throttle_next: u32,
    pub version_quota: bool,
}

#[derive(Default)]
struct State {
    versions: BTreeMap<String, (String, String, SystemTime)>,
    environments: BTreeMap<String, Environment>,
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
}

pub struct EbFake {
    pub endpoint: String,
    pub config: Arc<Config>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

fn request_id() -> String {
    let n = REQUEST_IDS.fetch_add(1, Ordering::SeqCst);
    format!("5f3c1b2a-0000-4000-8000-{:012x}", (u64::from(std::process::id()) << 20) + n)
}

impl EbFake {
    pub fn start(config: Config) -> EbFake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let dir = super::root().join("target").join("xtask-tests").join(super::unique("eb-fake"));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = EbFake {
            endpoint,
            config: Arc::new(config),
            state: Arc::default(),
            stop: Arc::default(),
            dir,
        };
        let (state, stop, config) =
            (Arc::clone(&fake.state), Arc::clone(&fake.stop), Arc::clone(&fake.config));
        let dir = fake.dir.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (state, config, dir) =
                            (Arc::clone(&state), Arc::clone(&config), dir.clone());
                        thread::spawn(move || serve(stream, &state, &config, &dir));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        fake
    }

    /// An environment, Ready and Green, served on `port` once a version is deployed.
    pub fn add_environment(&self, name: &str, port: u16) {
        let env = Environment {
            name: name.to_owned(),
            id: format!("e-{}", &request_id()[24..]),
            status: "Ready".into(),
            health: "Grey".into(),
            label: None,
            port,
            options: Vec::new(),
            updated: SystemTime::now(),
            ready_at: None,
        };
        self.state.lock().unwrap().environments.insert(name.to_owned(), env);
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
        let created = SystemTime::now() - age;
        let bundle = ("elsewhere".to_owned(), format!("{label}.json"), created);
        self.state.lock().unwrap().versions.insert(label.to_owned(), bundle);
    }

    /// The environment variables the SDK client needs to talk to this fake and to moto.
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", self.endpoint.clone()),
            ("AWS_ENDPOINT_URL_S3", format!("http://{}", self.config.s3)),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/xtask-test-aws-config".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/xtask-test-aws-credentials".into()),
        ]
    }
}

impl Drop for EbFake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let ports: Vec<u16> =
            self.state.lock().unwrap().environments.values().map(|e| e.port).collect();
        let ctx = context();
        for port in ports {
            let _ = xtask::local::stop(&ctx, &Names::new(port));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn context() -> Context {
    Context {
        root: super::root(),
        env: Env::from_process(),
        ui: xtask::ui::Ui::new(false, true),
        interrupt: Default::default(),
    }
}

fn set(state: &Mutex<State>, name: &str, change: impl FnOnce(&mut Environment)) {
    if let Some(env) = state.lock().unwrap().environments.get_mut(name) {
        change(env);
    }
}

fn event(
    state: &Mutex<State>,
    environment: &str,
    severity: &str,
    message: &str,
    request: Option<&str>,
    label: Option<&str>,
) {
    state.lock().unwrap().events.push(Event {
        date: SystemTime::now(),
        severity: severity.into(),
        message: message.into(),
        request_id: request.map(str::to_owned),
        environment: environment.into(),
        version_label: label.map(str::to_owned),
    });
}

fn serve(mut stream: TcpStream, state: &Arc<Mutex<State>>, config: &Arc<Config>, dir: &Path) {
    let _ = stream.set_nonblocking(false);
    let Some(body) = read_request(&mut stream) else { return };
    let form = parse_form(&body);
    let action = form.get("Action").cloned().unwrap_or_default();
    let (status, xml) = answer(&action, &form, state, config, dir);
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

fn parse_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Prefix.member.N` values in order.
fn members(form: &BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    (1..).map_while(|n| form.get(&format!("{prefix}.member.{n}")).cloned()).collect()
}

fn answer(
    action: &str,
    form: &BTreeMap<String, String>,
    state: &Arc<Mutex<State>>,
    config: &Arc<Config>,
    dir: &Path,
) -> (&'static str, String) {
    let mut s = state.lock().unwrap();
    s.requests.push(Request { at: Instant::now(), action: action.to_owned() });
    if action.starts_with("Describe") && s.faults.throttle_next > 0 {
        s.faults.throttle_next -= 1;
        return error("Sender", "Throttling", "Rate exceeded");
    }
    if action == "CreateApplicationVersion"
        && let Some(time) = s.faults.busy_for.take()
    {
        for env in s.environments.values_mut() {
            env.status = "Updating".into();
        }
        let state = Arc::clone(state);
        thread::spawn(move || {
            thread::sleep(time);
            for env in state.lock().unwrap().environments.values_mut() {
                env.status = "Ready".into();
            }
        });
    }
    match action {
        "CreateStorageLocation" => ok(action, &el("S3Bucket", &config.bucket)),
        "DescribeApplicationVersions" => {
            let wanted = members(form, "VersionLabels");
            let listed: String = s
                .versions
                .iter()
                .filter(|(label, _)| wanted.is_empty() || wanted.contains(label))
                .map(|(label, (bucket, key, created))| {
                    format!(
                        "<member>{}</member>",
                        version_xml(&config.application, label, bucket, key, *created)
                    )
                })
                .collect();
            ok(action, &format!("<ApplicationVersions>{listed}</ApplicationVersions>"))
        }
        "CreateApplicationVersion" => {
            if s.faults.version_quota {
                return error(
                    "Sender",
                    "TooManyApplicationVersionsException",
                    "You cannot have more than 1000 Application Versions.",
                );
            }
            let label = form.get("VersionLabel").cloned().unwrap_or_default();
            if s.versions.contains_key(&label) {
                return error(
                    "Sender",
                    "InvalidParameterValue",
                    &format!("Application Version {label} already exists."),
                );
            }
            let bucket = form.get("SourceBundle.S3Bucket").cloned().unwrap_or_default();
            let key = form.get("SourceBundle.S3Key").cloned().unwrap_or_default();
            let created = SystemTime::now();
            s.versions.insert(label.clone(), (bucket.clone(), key.clone(), created));
            let xml = version_xml(&config.application, &label, &bucket, &key, created);
            ok(action, &format!("<ApplicationVersion>{xml}</ApplicationVersion>"))
        }
        "DescribeEnvironments" => {
            let wanted = members(form, "EnvironmentNames");
            let listed: String = s
                .environments
                .values()
                .filter(|e| wanted.is_empty() || wanted.contains(&e.name))
                .map(|e| format!("<member>{}</member>", environment_xml(&config.application, e)))
                .collect();
            ok(action, &format!("<Environments>{listed}</Environments>"))
        }
        "DescribeEvents" => {
            let environment = form.get("EnvironmentName").cloned();
            let since = form.get("StartTime").and_then(|t| parse_time(t)).unwrap_or(UNIX_EPOCH);
            let listed: String = s
                .events
                .iter()
                .rev()
                .filter(|e| {
                    environment.as_ref().is_none_or(|n| *n == e.environment) && e.date >= since
                })
                .map(|e| {
                    format!(
                        "<member>{}{}{}{}{}{}{}</member>",
                        el("EventDate", &iso8601(e.date)),
                        el("Message", &e.message),
                        el("ApplicationName", &config.application),
                        el("EnvironmentName", &e.environment),
                        e.version_label
                            .as_deref()
                            .map(|l| el("VersionLabel", l))
                            .unwrap_or_default(),
                        e.request_id.as_deref().map(|r| el("RequestId", r)).unwrap_or_default(),
                        el("Severity", &e.severity),
                    )
                })
                .collect();
            ok(action, &format!("<Events>{listed}</Events>"))
        }
        "UpdateEnvironment" => {
            let name = form.get("EnvironmentName").cloned().unwrap_or_default();
            let Some(env) = s.environments.get(&name).cloned() else {
                return error(
                    "Sender",
                    "InvalidParameterValue",
                    &format!("No Environment found for EnvironmentName = '{name}'."),
                );
            };
            if env.status != "Ready" {
                return error(
                    "Sender",
                    "InvalidParameterValue",
                    &format!(
                        "Environment named {name} is in an invalid state for this operation. Must be Ready."
                    ),
                );
            }
            let label = form.get("VersionLabel").cloned();
            if let Some(label) = &label
                && !s.versions.contains_key(label)
            {
                return error(
                    "Sender",
                    "InvalidParameterValue",
                    &format!("No Application Version named '{label}' found."),
                );
            }
            let options: Vec<(String, String, String)> = (1..)
                .map_while(|n| {
                    let key = |field: &str| {
                        form.get(&format!("OptionSettings.member.{n}.{field}")).cloned()
                    };
                    Some((key("Namespace")?, key("OptionName")?, key("Value").unwrap_or_default()))
                })
                .collect();
            let request = request_id();
            let previous = env.label.clone();
            let bundle = label
                .as_ref()
                .and_then(|l| s.versions.get(l))
                .map(|(b, k, _)| (b.clone(), k.clone()));
            let hang = std::mem::take(&mut s.faults.hang_next_deploy);
            let fail = std::mem::take(&mut s.faults.fail_next_deploy);
            let roll_back = std::mem::take(&mut s.faults.roll_back_next_deploy);
            let updated = {
                let env = s.environments.get_mut(&name).unwrap();
                env.status = "Updating".into();
                env.health = "Grey".into();
                if label.is_some() {
                    env.label = label.clone();
                }
                // Like Elastic Beanstalk: given options are merged into the existing ones.
                for (namespace, option, value) in &options {
                    env.options.retain(|(n, o, _)| (n, o) != (namespace, option));
                    env.options.push((namespace.clone(), option.clone(), value.clone()));
                }
                env.updated = SystemTime::now();
                env.clone()
            };
            s.events.push(Event {
                date: SystemTime::now(),
                severity: "INFO".into(),
                message: "Environment update is starting.".into(),
                request_id: Some(request.clone()),
                environment: name.clone(),
                version_label: None,
            });
            drop(s);
            let job = Deploy {
                state: Arc::clone(state),
                config: Arc::clone(config),
                environment: name,
                label,
                previous,
                bundle,
                options: updated.options.clone(),
                request: request.clone(),
                dir: dir.to_path_buf(),
                port: updated.port,
            };
            if !hang {
                thread::spawn(move || job.run(fail, roll_back));
            }
            let xml = format!(
                "<UpdateEnvironmentResponse xmlns=\"{NAMESPACE}\"><UpdateEnvironmentResult>{}</UpdateEnvironmentResult>\
                 <ResponseMetadata><RequestId>{request}</RequestId></ResponseMetadata></UpdateEnvironmentResponse>",
                environment_xml(&config.application, &updated)
            );
            ("200 OK", xml)
        }
        "DescribeEnvironmentHealth" => {
            let name = form.get("EnvironmentName").cloned().unwrap_or_default();
            let Some(env) = s.environments.get(&name) else {
                return error(
                    "Sender",
                    "InvalidRequestException",
                    &format!("No Environment found for EnvironmentName = '{name}'."),
                );
            };
            let cause = match env.health.as_str() {
                "Red" => "<member>100.0 % of the requests are failing with HTTP 5xx.</member>",
                _ => "",
            };
            let body = format!(
                "{}{}{}{}<Causes>{cause}</Causes>",
                el("EnvironmentName", &name),
                el("HealthStatus", health_status(&env.health)),
                el("Status", &env.health),
                el("Color", &env.health),
            );
            ok(action, &body)
        }
        "DeleteApplicationVersion" => {
            let label = form.get("VersionLabel").cloned().unwrap_or_default();
            s.versions.remove(&label);
            ok(action, "")
        }
        "DescribeAccountAttributes" => ok(
            action,
            "<ResourceQuotas><ApplicationVersionQuota><Maximum>1000</Maximum></ApplicationVersionQuota></ResourceQuotas>",
        ),
        other => error(
            "Sender",
            "InvalidAction",
            &format!("The action {other} is not valid for this web service."),
        ),
    }
}

/// The work Elastic Beanstalk does after UpdateEnvironment.
struct Deploy {
    state: Arc<Mutex<State>>,
    config: Arc<Config>,
    environment: String,
    label: Option<String>,
    previous: Option<String>,
    bundle: Option<(String, String)>,
    options: Vec<(String, String, String)>,
    request: String,
    dir: PathBuf,
    port: u16,
}

impl Deploy {
    fn run(self, fail: bool, roll_back: bool) {
        let started = Instant::now();
        let result = if fail {
            Err("the application failed to start (injected fault)".to_owned())
        } else {
            self.deploy()
        };
        if roll_back {
            thread::sleep(self.config.update_takes);
            let previous = self.previous.clone();
            set(&self.state, &self.environment, |e| {
                e.status = "Ready".into();
                e.health = "Green".into();
                e.label = previous;
            });
            return;
        }
        thread::sleep(self.config.update_takes.saturating_sub(started.elapsed()));
        let (env, request) = (self.environment.as_str(), Some(self.request.as_str()));
        match result {
            Ok(()) => {
                set(&self.state, env, |e| {
                    e.status = "Ready".into();
                    e.health = "Green".into();
                    e.ready_at = Some(Instant::now());
                });
                let label = self.label.as_deref();
                let message = "Environment update completed successfully.";
                event(&self.state, env, "INFO", message, request, label);
            }
            Err(why) => {
                let message = format!("Failed to deploy application: {why}");
                event(&self.state, env, "ERROR", &message, request, None);
                let message = "Rolling back to the previous version.";
                event(&self.state, env, "INFO", message, request, None);
                let previous = self.previous.clone();
                set(&self.state, env, |e| {
                    e.status = "Ready".into();
                    e.health = "Red".into();
                    e.label = previous;
                    e.ready_at = Some(Instant::now());
                });
            }
        }
    }

    fn deploy(&self) -> Result<(), String> {
        let Some((bucket, key)) = &self.bundle else { return Ok(()) };
        let s3 = &self.config.s3;
        let text = s3_get(s3, bucket, key)?;
        let dockerrun: Dockerrun = check_dockerrun(&text)?;
        let ctx = context();
        let config_dir = self.dir.join(format!("docker-config-{}", self.request));
        std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
        if let Some(auth) = &dockerrun.authentication {
            let file = s3_get(s3, &auth.bucket, &auth.key)?;
            std::fs::write(config_dir.join("config.json"), file).map_err(|e| e.to_string())?;
        }
        let pull =
            duct::cmd!("docker", "--config", &config_dir, "pull", "--quiet", &dockerrun.image)
                .stdout_capture()
                .stderr_capture()
                .unchecked()
                .run()
                .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&config_dir);
        if !pull.status.success() {
            return Err(format!(
                "cannot pull {}: {}",
                dockerrun.image,
                String::from_utf8_lossy(&pull.stderr).trim()
            ));
        }
        let env = self
            .options
            .iter()
            .filter(|(ns, _, _)| ns == "aws:elasticbeanstalk:application:environment")
            .map(|(_, name, value)| EnvVar {
                name: name.clone(),
                value: value.clone(),
                secret: true,
            })
            .collect();
        let release = Release {
            dockerrun,
            tag: self.label.clone().unwrap_or_default(),
            env,
            health_path: "/health".into(),
            names: Names::new(self.port),
            timeout: Duration::from_secs(30),
            dir: self.dir.join(format!("env-{}", self.port)),
            container: xtask::docker::unique_name(&format!("xtask-fake-eb-{}", self.port)),
        };
        release.start(&ctx).map(|_| ()).map_err(|e| format!("{e:#}"))
    }
}

/// What Elastic Beanstalk checks of a v1 Dockerrun before deploying it, by the fake's own
/// rules (not the xtask's); then the descriptor is read into the form the runner takes.
fn check_dockerrun(text: &str) -> Result<Dockerrun, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid Dockerrun.aws.json: {e}"))?;
    if json["AWSEBDockerrunVersion"] != "1" && json["AWSEBDockerrunVersion"] != 1 {
        return Err("invalid Dockerrun.aws.json: AWSEBDockerrunVersion is not 1".into());
    }
    if json["Image"]["Name"].as_str().is_none_or(str::is_empty) {
        return Err("invalid Dockerrun.aws.json: no Image.Name".into());
    }
    if json["Ports"][0]["ContainerPort"].is_null() {
        return Err("invalid Dockerrun.aws.json: no ContainerPort".into());
    }
    let values = xtask::dockerrun::Values {
        bucket: String::new(),
        image: String::new(),
        tag: String::new(),
        auth_key: String::new(),
    };
    xtask::dockerrun::render(text, &values)
        .map_err(|e| format!("invalid Dockerrun.aws.json: {e:#}"))
}

fn s3_get(s3: &str, bucket: &str, key: &str) -> Result<String, String> {
    let object = super::S3::new(s3).get(bucket, key);
    object.map(|o| o.body).ok_or_else(|| format!("cannot read s3://{bucket}/{key}"))
}

fn version_xml(
    application: &str,
    label: &str,
    bucket: &str,
    key: &str,
    created: SystemTime,
) -> String {
    format!(
        "{}{}<SourceBundle>{}{}</SourceBundle>{}{}{}",
        el("ApplicationName", application),
        el("VersionLabel", label),
        el("S3Bucket", bucket),
        el("S3Key", key),
        el("DateCreated", &iso8601(created)),
        el("DateUpdated", &iso8601(created)),
        el("Status", "Unprocessed"),
    )
}

fn environment_xml(application: &str, env: &Environment) -> String {
    let cname = format!("127.0.0.1:{}", env.port);
    format!(
        "{}{}{}{}{}{}{}{}{}{}{}{}{}<Tier><Name>WebServer</Name><Type>Standard</Type><Version>1.0</Version></Tier>",
        el("EnvironmentName", &env.name),
        el("EnvironmentId", &env.id),
        el("ApplicationName", application),
        env.label.as_deref().map(|l| el("VersionLabel", l)).unwrap_or_default(),
        el("SolutionStackName", "64bit Amazon Linux 2023 v4.4.0 running Docker"),
        el("EndpointURL", &cname),
        el("CNAME", &cname),
        el("DateCreated", &iso8601(env.updated)),
        el("DateUpdated", &iso8601(env.updated)),
        el("Status", &env.status),
        el("AbortableOperationInProgress", "false"),
        el("Health", &env.health),
        el("HealthStatus", health_status(&env.health)),
    )
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

fn error(kind: &str, code: &str, message: &str) -> (&'static str, String) {
    (
        "400 Bad Request",
        format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{code}</Code>\
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

/// `2026-11-29T00:12:33.123Z`
pub fn iso8601(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, secs) = (since.as_secs() / 86_400, since.as_secs() % 86_400);
    let (year, month, day) = civil(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        since.subsec_millis()
    )
}

fn parse_time(text: &str) -> Option<SystemTime> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, dd) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<u64>());
    let (h, mi, s) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let days = days_from_civil(y, m, dd);
    let millis: u64 = format!("{frac:0<3}")[..3].parse().ok()?;
    Some(
        UNIX_EPOCH
            + Duration::from_secs(days as u64 * 86_400 + h * 3600 + mi * 60 + s)
            + Duration::from_millis(millis),
    )
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[test]
fn times_round_trip() {
    let now = SystemTime::now();
    let text = iso8601(now);
    let back = parse_time(&text).unwrap();
    let diff = now.duration_since(back).unwrap_or_else(|e| e.duration());
    assert!(diff < Duration::from_millis(2), "{text}");
    assert_eq!(iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
}
