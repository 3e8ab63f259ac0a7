//! The local runner of `deploy --local`: a rendered Dockerrun run on this machine the way
//! Elastic Beanstalk's Docker platform runs it.
//!
//! Layout per port: a private network `xtask-local-PORT`; a `front` proxy container
//! published on `127.0.0.1:PORT` (EB's nginx); release containers on the network under the
//! alias `release`. A new release starts beside the old one, and the old one is stopped
//! (SIGTERM, drain, remove) only once the new one answers its health path.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use crate::config::dockerrun::Dockerrun;
use crate::config::options::Options;
use crate::docker::docker;
use crate::run::Context;
use crate::run::cmd::Cmd;
use crate::run::http;
use crate::run::interrupt::Interrupted;

mod env;
use env::{LABEL, STOP_GRACE_SECS, ensure_network, releases, stop_and_remove};
pub use env::{Names, stop};

/// Default for `--timeout` of `deploy --local`: how long a new release may take to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The port the front listens on inside its container.
const FRONT_PORT: u16 = 8080;
/// The local proxy's image, built from the `front` stage.
pub const FRONT_IMAGE: &str = "xtask-local-front:latest";

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

impl Release {
    /// What starting this release runs, as a reader checks it (secrets masked).
    pub fn print_plan(&self, ctx: &Context) {
        let ui = &ctx.ui;
        ui.info("the proxy on the published port (started once, kept across releases):");
        ui.echo(self.front_cmd());
        ui.info(format_args!(
            "the release, beside the running one until it answers {}:",
            self.health_path
        ));
        ui.echo(self.release_cmd());
        ui.info(format_args!(
            "then the previous release: docker stop --time {STOP_GRACE_SECS}, docker rm"
        ));
    }

    /// Fails, before anything is built, when the port is taken by something else than our
    /// own proxy.
    pub fn check_port(&self, ctx: &Context) -> anyhow::Result<()> {
        if self.front_state(ctx)? == FrontState::Absent {
            self.check_port_free()?;
        }
        Ok(())
    }

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
        for volume in self.dockerrun.volumes() {
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
        cmd = cmd.arg(self.dockerrun.image_name());
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
        let image = self.dockerrun.image_name();
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
        let image = self.dockerrun.image_name();
        self.release_cmd()
            .run_quiet(ctx)
            .with_context(|| format!("start the release container of {image}"))?;
        self.wait_healthy(ctx)
    }

    fn prepare_dirs(&self) -> anyhow::Result<()> {
        let mut dirs = vec![self.logs_dir()];
        dirs.extend(self.dockerrun.volumes().iter().map(|v| self.volume_dir(&v.host_directory)));
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
    /// until it answers 200; fails early when the container exits. Ctrl-C is the health
    /// check's, even when it lands on the `docker inspect` of a poll.
    fn wait_healthy(&self, ctx: &Context) -> anyhow::Result<String> {
        const DURING: &str = "the health check of the new release";
        self.poll_healthy(ctx, DURING).map_err(|err| {
            if crate::run::exit::code(&err) == crate::run::exit::INTERRUPTED {
                Interrupted { during: DURING.to_owned() }.into()
            } else {
                err
            }
        })
    }

    fn poll_healthy(&self, ctx: &Context, during: &str) -> anyhow::Result<String> {
        let started = Instant::now();
        let mut polls = 0u32;
        let mut published = None;
        loop {
            ctx.interrupt.check(during)?;
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
                        self.dockerrun.image_name(),
                        self.health_path
                    );
                }
            }
            if started.elapsed() > self.timeout {
                self.show_last_logs(ctx);
                bail!(
                    "{} did not answer {} with 200 within {}s (raise --timeout if it needs longer)",
                    self.dockerrun.image_name(),
                    self.health_path,
                    self.timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn show_last_logs(&self, ctx: &Context) {
        // As a failed deploy to Elastic Beanstalk shows its application's output.
        let logs = docker().args(["logs", "--tail", "30", &self.container]).read_output(ctx);
        if let Ok(output) = logs {
            ctx.ui.info(format_args!("== why: {}, its last 30 log lines:", self.container));
            let text = [output.stdout, output.stderr].concat();
            for line in String::from_utf8_lossy(&text).lines() {
                ctx.ui.info(format_args!("  | {line}"));
            }
        }
    }

    /// Streams the release's logs until Ctrl-C (the way this command ends, hence a
    /// success), then stops everything cleanly and says what it stopped.
    pub fn follow_logs(&self, ctx: &Context) -> anyhow::Result<()> {
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
pub fn container_env(options: &Options) -> Vec<EnvVar> {
    options
        .environment()
        .map(|o| EnvVar { name: o.option_name.clone(), value: o.value.clone(), secret: o.secret })
        .collect()
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
