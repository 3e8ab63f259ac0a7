//! `cargo xtask deploy --local`: the release on this machine, run the way Elastic Beanstalk's
//! Docker platform runs it, from the very descriptor `deploy` would upload.
//!
//! Layout per port: a private network `xtask-local-PORT`; a `front` proxy container
//! published on `127.0.0.1:PORT` (EB's nginx); release containers on the network under the
//! alias `release`. A new release starts beside the old one, and the old one is stopped
//! (SIGTERM, drain, remove) only once the new one answers its health path.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use crate::cmd::Cmd;
use crate::docker::{self, docker};
use crate::dockerrun::{self, Dockerrun};
use crate::interrupt::Interrupted;
use crate::options::{self, Options};
use crate::settings::Settings;
use crate::{Context, build, flags, http};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The port the front listens on inside its container.
const FRONT_PORT: u16 = 8080;
const FRONT_IMAGE: &str = "xtask-local-front:latest";
/// How long a stopped release may drain before Docker kills it (EB allows about as long).
const STOP_GRACE_SECS: &str = "30";
const LABEL: &str = "dev.xtask.local";

/// Names of everything that belongs to the local environment on one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub port: u16,
    pub network: String,
    pub front: String,
}

impl Names {
    pub fn new(port: u16) -> Names {
        Names {
            port,
            network: format!("xtask-local-{port}"),
            front: format!("xtask-local-front-{port}"),
        }
    }

    fn label(&self) -> String {
        format!("{LABEL}={}", self.port)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrontState {
    Absent,
    /// Running, forwarding to the port the new release serves on.
    Current,
    /// Stopped, or forwarding elsewhere: replaced.
    Stale,
}

/// One environment variable of the release container.
#[derive(Clone, Debug)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// Everything `deploy --local` will do, decided before anything runs.
#[derive(Debug)]
pub struct Plan {
    pub build: build::Plan,
    pub release: Release,
    pub detach: bool,
}

/// A rendered Dockerrun run on one port the way Elastic Beanstalk's Docker platform runs
/// it.
#[derive(Clone, Debug)]
pub struct Release {
    pub dockerrun: Dockerrun,
    /// The version label, shown and put on the container.
    pub tag: String,
    pub env: Vec<EnvVar>,
    pub health_path: String,
    pub names: Names,
    pub timeout: Duration,
    /// The logging directory and volumes live here.
    pub dir: PathBuf,
    /// The new release container's name.
    pub container: String,
}

impl Plan {
    pub fn new(ctx: &Context, settings: &Settings, flags: &flags::Deploy) -> anyhow::Result<Plan> {
        let mut build = build::Plan::new(ctx, settings, &flags.build(false))?;
        build.proxy = Some(FRONT_IMAGE.to_owned());
        let values = dockerrun::Values {
            bucket: "local".to_owned(),
            image: build.image.repository.clone(),
            tag: build.image.tag.clone(),
            auth_key: "local".to_owned(),
        };
        let dockerrun = dockerrun::render_file(&ctx.root, &values)?;
        let env_file = match &flags.env_file {
            Some(path) => read_env_file(path)?,
            None => Vec::new(),
        };
        let local_secret = random_hex();
        let builtins = options::Builtins {
            deploy_env: "local",
            eb_environment: "local",
            image_tag: &build.image.tag,
        };
        let vars = |name: &str| -> Option<String> {
            let from_file = env_file.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            from_file
                .or_else(|| builtins.get(name))
                .or_else(|| ctx.env.get(name).map(str::to_owned))
                .or_else(|| match name {
                    // What the app needs that a laptop does not have: a throwaway key.
                    "SECRET_KEY" => Some(format!("local-{local_secret}")),
                    _ => None,
                })
        };
        let options = options::render_file(&ctx.root, &vars)?;
        let port = flags.port;
        let release = Release {
            dockerrun,
            tag: build.image.tag.clone(),
            env: container_env(&options),
            health_path: options.health_path("/health"),
            names: Names::new(port),
            timeout: flags.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            dir: ctx.root.join("target").join("deploy-local").join(port.to_string()),
            container: docker::unique_name(&format!("xtask-local-{port}-release")),
        };
        Ok(Plan { build, release, detach: flags.detach })
    }

    /// The plan as a reader checks it. Runs nothing; secret values are masked.
    pub fn print(&self, ctx: &Context) -> anyhow::Result<()> {
        let ui = &ctx.ui;
        let release = &self.release;
        ui.step(format_args!(
            "plan: {} on http://127.0.0.1:{}/ (dry run: nothing is run)",
            self.build.image, release.names.port
        ));
        self.build.print_steps(ctx)?;
        ui.info(format_args!("the rendered {}:", dockerrun::TEMPLATE));
        for line in String::from_utf8_lossy(&release.dockerrun.to_bytes()).lines() {
            ui.info(format_args!("  {line}"));
        }
        ui.info("the proxy on the published port (started once, kept across releases):");
        ui.echo(release.front_cmd());
        ui.info(format_args!(
            "the release, beside the running one until it answers {}:",
            release.health_path
        ));
        ui.echo(release.release_cmd());
        ui.info(format_args!(
            "then the previous release: docker stop --time {STOP_GRACE_SECS}, docker rm"
        ));
        Ok(())
    }

    pub fn execute(mut self, ctx: &Context) -> anyhow::Result<()> {
        let release = &self.release;
        docker::preflight(ctx)?;
        if release.front_state(ctx)? == FrontState::Absent {
            release.check_port_free()?;
        }
        self.build.execute(ctx)?;
        release.start(ctx)?;
        let port = release.names.port;
        if self.detach {
            ctx.ui.info(format_args!(
                "detached: stop it with `cargo xtask deploy --local --stop --port {port}`"
            ));
            return Ok(());
        }
        release.follow_logs(ctx)
    }
}

impl Release {
    fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    fn volume_dir(&self, host_directory: &str) -> PathBuf {
        self.dir.join("volumes").join(host_directory.trim_start_matches('/'))
    }

    pub fn release_cmd(&self) -> Cmd {
        let port = self.dockerrun.container_port();
        let mut cmd = docker()
            .args(["run", "--detach", "--name", &self.container])
            .arg("--label")
            .arg(self.names.label())
            .args(["--label", &format!("{LABEL}.role=release")])
            .args(["--label", &format!("{LABEL}.tag={}", self.tag)])
            .args(["--network", &self.names.network, "--network-alias", "release"])
            .args(["--publish", &format!("127.0.0.1::{port}")]);
        if let Some(logging) = &self.dockerrun.logging {
            cmd = cmd.arg("--volume").arg(format!("{}:{logging}", self.logs_dir().display()));
        }
        for volume in &self.dockerrun.volumes {
            let host = self.volume_dir(&volume.host_directory);
            cmd = cmd.arg("--volume").arg(format!(
                "{}:{}",
                host.display(),
                volume.container_directory
            ));
        }
        for var in &self.env {
            cmd = if var.secret {
                // The value reaches docker through its environment, never its argv.
                cmd.args(["--env", &var.name]).env_secret(&var.name, &var.value)
            } else {
                cmd.arg("--env").arg(format!("{}={}", var.name, var.value))
            };
        }
        cmd = cmd.opt("--entrypoint", self.dockerrun.entrypoint.as_deref());
        cmd = cmd.arg(&self.dockerrun.image);
        if let Some(command) = &self.dockerrun.command {
            cmd = cmd.args(command.split_whitespace());
        }
        cmd
    }

    pub fn front_cmd(&self) -> Cmd {
        docker()
            .args(["run", "--detach", "--name", &self.names.front])
            .arg("--label")
            .arg(self.names.label())
            .args(["--label", &format!("{LABEL}.role=front")])
            .args(["--label", &format!("{LABEL}.upstream={}", self.upstream())])
            .args(["--network", &self.names.network])
            .args(["--publish", &format!("127.0.0.1:{}:{FRONT_PORT}", self.names.port)])
            .args(["--env", &format!("FRONT_UPSTREAM={}", self.upstream())])
            .arg(FRONT_IMAGE)
    }

    fn upstream(&self) -> String {
        format!("release:{}", self.dockerrun.container_port())
    }

    /// Runs this release beside the current one on its port, and stops the current one
    /// once this one answers its health path. On failure (or Ctrl-C) this one is removed and
    /// the current one keeps serving; with none, the proxy and the network go too. Returns
    /// the version `/health` reports.
    pub fn start(&self, ctx: &Context) -> anyhow::Result<String> {
        let port = self.names.port;
        let image = &self.dockerrun.image;
        ctx.ui.step(format_args!("start {image} on 127.0.0.1:{port}"));
        self.prepare_dirs()?;
        let previous = releases(ctx, &self.names)?;
        let version = match self.start_beside(ctx) {
            Ok(version) => version,
            Err(err) => {
                let cleanup = ctx.without_interrupt();
                let _ = docker().args(["rm", "--force", &self.container]).read(&cleanup);
                let kept = if previous.is_empty() {
                    // Nothing to keep serving: the proxy and the network go too.
                    stop(&cleanup, &self.names)?;
                    String::new()
                } else {
                    format!("; the previous release keeps answering on port {port}")
                };
                return Err(err.context(format!("release {image} removed{kept}")));
            }
        };
        for old in &previous {
            ctx.ui.info(format_args!("replace the previous release {old}"));
            stop_and_remove(ctx, old)?;
        }
        ctx.ui.success(format_args!(
            "{image} answers on http://127.0.0.1:{port}/ (version {version})"
        ));
        Ok(version)
    }

    /// The network, the proxy (unless it already forwards to this release's port), this
    /// release's container, and its health check.
    fn start_beside(&self, ctx: &Context) -> anyhow::Result<String> {
        ensure_network(ctx, &self.names)?;
        if self.front_state(ctx)? != FrontState::Current {
            let _ = docker().args(["rm", "--force", &self.names.front]).read_output(ctx)?;
            self.check_port_free()?;
            self.front_cmd().run_quiet(ctx).context("start the local proxy")?;
        }
        let image = &self.dockerrun.image;
        self.release_cmd()
            .run_quiet(ctx)
            .with_context(|| format!("start the release container of {image}"))?;
        self.wait_healthy(ctx)
    }

    fn prepare_dirs(&self) -> anyhow::Result<()> {
        let mut dirs = vec![self.logs_dir()];
        dirs.extend(self.dockerrun.volumes.iter().map(|v| self.volume_dir(&v.host_directory)));
        for dir in dirs {
            fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            // The app runs as an unprivileged user: it must be able to write its logs.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
                .with_context(|| format!("make {} writable", dir.display()))?;
        }
        Ok(())
    }

    /// Whether the proxy on this port exists, and runs forwarding to this release's port.
    fn front_state(&self, ctx: &Context) -> anyhow::Result<FrontState> {
        let state = docker()
            .args(["inspect", "--format"])
            .arg(format!(
                "{{{{.State.Running}}}} {{{{index .Config.Labels \"{LABEL}.upstream\"}}}}"
            ))
            .arg(&self.names.front)
            .read_output(ctx)?;
        let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
        Ok(if state.is_empty() {
            FrontState::Absent
        } else if state == format!("true {}", self.upstream()) {
            FrontState::Current
        } else {
            FrontState::Stale
        })
    }

    fn check_port_free(&self) -> anyhow::Result<()> {
        match TcpListener::bind(("127.0.0.1", self.names.port)) {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::AddrInUse => bail!(
                "port {} is in use by another program: pass --port N to choose another",
                self.names.port
            ),
            Err(err) => bail!(
                "cannot use port {}: {err} (pass --port N to choose another)",
                self.names.port
            ),
        }
    }

    /// Polls the release's health path (on its own loopback port, not through the proxy)
    /// until it answers 200; fails early when the container exits.
    fn wait_healthy(&self, ctx: &Context) -> anyhow::Result<String> {
        let started = Instant::now();
        let mut polls = 0u32;
        let mut published = None;
        loop {
            ctx.interrupt.check("the health check of the new release")?;
            if published.is_none() {
                published =
                    published_port(ctx, &self.container, self.dockerrun.container_port()).ok();
            }
            if let Some(addr) = &published
                && let Ok(response) = http::get(addr, &self.health_path, Duration::from_secs(2))
                && response.status == 200
            {
                let version = serde_json::from_str::<serde_json::Value>(&response.body)
                    .ok()
                    .and_then(|json| json["version"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".to_owned());
                return Ok(version);
            }
            polls += 1;
            if published.is_none() || polls.is_multiple_of(10) {
                let state = container_state(ctx, &self.container)?;
                if let Some(code) = state.strip_prefix("exited ") {
                    self.show_last_logs(ctx);
                    bail!(
                        "{} exited with status {code} instead of answering {}",
                        self.dockerrun.image,
                        self.health_path
                    );
                }
            }
            if started.elapsed() > self.timeout {
                self.show_last_logs(ctx);
                bail!(
                    "{} did not answer {} with 200 within {}s (raise --timeout if it needs longer)",
                    self.dockerrun.image,
                    self.health_path,
                    self.timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn show_last_logs(&self, ctx: &Context) {
        let logs = docker().args(["logs", "--tail", "20", &self.container]).read_output(ctx);
        if let Ok(output) = logs {
            ctx.ui.info(format_args!("last log lines of {}:", self.container));
            let text = [output.stdout, output.stderr].concat();
            for line in String::from_utf8_lossy(&text).lines() {
                ctx.ui.info(format_args!("  | {line}"));
            }
        }
    }

    /// Streams the release's logs until Ctrl-C (the way this command ends, hence a
    /// success), then stops everything cleanly and says what it stopped.
    fn follow_logs(&self, ctx: &Context) -> anyhow::Result<()> {
        ctx.ui.info("following its logs; Ctrl-C stops it");
        let follow = docker().args(["logs", "--follow", "--tail", "0", &self.container]);
        match follow.run(ctx) {
            Err(err) if err.is::<Interrupted>() => {
                let cleanup = ctx.without_interrupt();
                ctx.ui.step(format_args!("stop the local release on port {}", self.names.port));
                let stopped = stop(&cleanup, &self.names)?;
                ctx.ui.success(format_args!(
                    "stopped the local release on port {}: {}",
                    self.names.port,
                    stopped.join(", ")
                ));
                Ok(())
            }
            Err(err) => Err(err),
            Ok(()) => {
                let state = container_state(ctx, &self.container).unwrap_or_default();
                bail!("the local release stopped on its own ({state}); see its logs above")
            }
        }
    }
}

/// `running 0`, `exited 2`…: the container's state and exit status.
fn container_state(ctx: &Context, container: &str) -> anyhow::Result<String> {
    docker()
        .args(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container])
        .read(ctx)
}

/// The container environment from the options template's environment namespace.
fn container_env(options: &Options) -> Vec<EnvVar> {
    options
        .environment()
        .map(|o| EnvVar { name: o.option_name.clone(), value: o.value.clone(), secret: o.secret })
        .collect()
}

/// Stops and removes everything of the local environment on `names.port`; returns what it
/// stopped, as a reader would name it.
pub fn stop(ctx: &Context, names: &Names) -> anyhow::Result<Vec<String>> {
    let mut stopped = Vec::new();
    for release in releases(ctx, names)? {
        stop_and_remove(ctx, &release)?;
        stopped.push(format!("release {release}"));
    }
    if docker().args(["rm", "--force", &names.front]).read_output(ctx)?.status.success() {
        stopped.push(format!("proxy {}", names.front));
    }
    if docker().args(["network", "rm", &names.network]).read_output(ctx)?.status.success() {
        stopped.push(format!("network {}", names.network));
    }
    Ok(stopped)
}

pub fn run(ctx: &Context, flags: &flags::Deploy) -> anyhow::Result<()> {
    let port = flags.port;
    if flags.stop {
        return run_stop(ctx, port);
    }
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let plan = Plan::new(ctx, &settings, flags)?;
    if flags.dry_run {
        return plan.print(ctx);
    }
    plan.execute(ctx)
}

fn run_stop(ctx: &Context, port: u16) -> anyhow::Result<()> {
    docker::preflight(ctx)?;
    let names = Names::new(port);
    ctx.ui.step(format_args!("stop the local release on port {port}"));
    let stopped = stop(ctx, &names)?;
    if !stopped.is_empty() {
        ctx.ui.info(format_args!("stopped {}", stopped.join(", ")));
    }
    ctx.ui.success(format_args!("nothing runs on port {port} any more"));
    Ok(())
}

fn releases(ctx: &Context, names: &Names) -> anyhow::Result<Vec<String>> {
    let listed = docker()
        .args(["ps", "--all", "--filter"])
        .arg(format!("label={}", names.label()))
        .args(["--filter", &format!("label={LABEL}.role=release"), "--format", "{{.Names}}"])
        .read(ctx)?;
    Ok(listed.lines().map(str::to_owned).collect())
}

fn stop_and_remove(ctx: &Context, container: &str) -> anyhow::Result<()> {
    docker().args(["stop", "--time", STOP_GRACE_SECS, container]).run_quiet(ctx)?;
    docker().args(["rm", "--force", container]).run_quiet(ctx)?;
    Ok(())
}

fn ensure_network(ctx: &Context, names: &Names) -> anyhow::Result<()> {
    let exists = docker().args(["network", "inspect", &names.network]).read_output(ctx)?;
    if !exists.status.success() {
        docker()
            .args(["network", "create", "--label", &names.label(), &names.network])
            .read(ctx)
            .with_context(|| format!("create the network {}", names.network))?;
    }
    Ok(())
}

/// `127.0.0.1:PORT` on which `container`'s `port` is published.
fn published_port(ctx: &Context, container: &str, port: u16) -> anyhow::Result<String> {
    let mapping = docker().args(["port", container, &format!("{port}/tcp")]).read(ctx)?;
    mapping
        .lines()
        .find(|line| line.starts_with("127.0.0.1:"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("docker published no loopback port for {container}: {mapping}"))
}

/// `KEY=VALUE` lines (`#` comments, blank lines, optional `export ` and quotes).
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read --env-file {}", path.display()))?;
    let mut vars = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}:{}: expected KEY=VALUE", path.display(), number + 1);
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.push((key.trim().to_owned(), unquoted.to_owned()));
    }
    Ok(vars)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut urandom) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = urandom.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_like_dotenv() {
        let path = std::env::temp_dir().join(format!("xtask-env-{}", std::process::id()));
        fs::write(&path, "# comment\n\nexport A=1\nB = \"two words\"\nC='x=y'\n").unwrap();
        let vars = read_env_file(&path).unwrap();
        assert_eq!(
            vars,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x=y".into())
            ]
        );
        fs::write(&path, "A=1\nnot a pair\n").unwrap();
        let err = read_env_file(&path).unwrap_err().to_string();
        assert!(err.ends_with(":2: expected KEY=VALUE"), "{err}");
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn names_belong_to_the_port() {
        let names = Names::new(18080);
        assert_eq!(names.network, "xtask-local-18080");
        assert_eq!(names.front, "xtask-local-front-18080");
        assert_eq!(names.label(), "dev.xtask.local=18080");
    }
}
