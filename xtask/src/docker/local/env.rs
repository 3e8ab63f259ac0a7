//! The local environment on one port: its names (network, proxy, labels), and taking it
//! down: every release stopped (SIGTERM, drain, removed), the proxy and the network removed.

use anyhow::Context as _;

use crate::docker::docker;
use crate::run::Context;

/// Where `deploy --local` marks its containers: `LABEL=PORT`, `LABEL.role=…`.
pub const LABEL: &str = "dev.xtask.local";
/// How long a stopped release may drain before Docker kills it (EB allows about as long).
pub const STOP_GRACE_SECS: &str = "30";

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

    pub fn label(&self) -> String {
        format!("{LABEL}={}", self.port)
    }
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

pub fn releases(ctx: &Context, names: &Names) -> anyhow::Result<Vec<String>> {
    let listed = docker()
        .args(["ps", "--all", "--filter"])
        .arg(format!("label={}", names.label()))
        .args(["--filter", &format!("label={LABEL}.role=release"), "--format", "{{.Names}}"])
        .read(ctx)?;
    Ok(listed.lines().map(str::to_owned).collect())
}

pub fn stop_and_remove(ctx: &Context, container: &str) -> anyhow::Result<()> {
    docker().args(["stop", "--time", STOP_GRACE_SECS, container]).run_quiet(ctx)?;
    docker().args(["rm", "--force", container]).run_quiet(ctx)?;
    Ok(())
}

pub fn ensure_network(ctx: &Context, names: &Names) -> anyhow::Result<()> {
    let exists = docker().args(["network", "inspect", &names.network]).read_output(ctx)?;
    if !exists.status.success() {
        docker()
            .args(["network", "create", "--label", &names.label(), &names.network])
            .read(ctx)
            .with_context(|| format!("create the network {}", names.network))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_belong_to_the_port() {
        let names = Names::new(18080);
        assert_eq!(names.network, "xtask-local-18080");
        assert_eq!(names.front, "xtask-local-front-18080");
        assert_eq!(names.label(), "dev.xtask.local=18080");
    }
}
