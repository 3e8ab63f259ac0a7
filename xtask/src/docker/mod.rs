//! Docker: the daemon check and image queries (here), the builds of the web Dockerfile, the
//! test image's cache tarball, the registries (ECR among them), and the local runner of
//! `deploy --local`.

pub mod cache;
pub mod credentials;
pub mod dockerfile;
pub mod ecr;
pub mod image;
pub mod local;
pub mod reference;
pub mod registry;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};

use crate::run::Context;
use crate::run::cmd::{Cmd, CommandFailed, last_lines};
use crate::run::interrupt::Interrupted;

/// The Dockerfile of the web application, relative to the project root.
pub const DOCKERFILE: &str = "web/Dockerfile";
/// The label `web/Dockerfile` puts on every image of its build chain (keep the two equal);
/// `bench` removes this project's build cache by it ([`forget_build_cache`]).
pub const BUILD_CACHE_LABEL: &str = "dev.xtask.build-cache=web";
/// The `build` stage (compiled release binaries), tagged so later deploy builds reuse it.
pub const BUILD_STAGE_IMAGE: &str = "web-build-stage:latest";

/// The workspace to work on: `dir` (`--project-dir`), else the one this xtask was built in.
/// It must hold the web Dockerfile: everything else is found from there.
pub fn workspace_root(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = match dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf()
        }
    };
    if !root.join(DOCKERFILE).is_file() {
        bail!(
            "{} is not this project's workspace (no {DOCKERFILE}): pass --project-dir DIR",
            root.display()
        );
    }
    Ok(root)
}

/// Which builder `docker build` goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builder {
    /// BuildKit, through the buildx plugin: what Docker >= 23 and CircleCI use.
    BuildKit,
    /// The legacy builder: `DOCKER_BUILDKIT=0`, or a docker CLI without buildx.
    Legacy,
}

impl Builder {
    /// The builder the docker CLI will pick: BuildKit when its buildx plugin answers, unless
    /// `DOCKER_BUILDKIT=0`. Asks the CLI only, never the daemon.
    pub fn detect(ctx: &Context) -> anyhow::Result<Builder> {
        if ctx.env.get("DOCKER_BUILDKIT") == Some("0") {
            return Ok(Builder::Legacy);
        }
        let buildx = docker().args(["buildx", "version"]).read_output(ctx);
        Ok(match buildx {
            Ok(output) if output.status.success() => Builder::BuildKit,
            Ok(_) => Builder::Legacy,
            Err(err) if err.is::<Interrupted>() => return Err(err),
            // No docker at all: the daemon check says so, with the fix.
            Err(_) => Builder::Legacy,
        })
    }
}

/// What we learned about the engine before using it.
#[derive(Clone, Debug)]
pub struct Engine {
    pub server_version: String,
    pub builder: Builder,
}

pub fn docker() -> Cmd {
    Cmd::new("docker")
}

/// Fails with the fix when the docker CLI is missing or its daemon does not answer.
pub fn preflight(ctx: &Context) -> anyhow::Result<Engine> {
    let version = docker().args(["version", "--format", "{{.Server.Version}}"]);
    let output = version.read_output(ctx)?;
    if !output.status.success() {
        let host = ctx.env.get("DOCKER_HOST").map(|h| format!(" at {h}")).unwrap_or_default();
        bail!(
            "Docker daemon not reachable{host}: is Docker running? (start it, or fix DOCKER_HOST) \
             [docker said: {}]",
            last_lines(&output.stderr, 1)
        );
    }
    let server_version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(Engine { server_version, builder: Builder::detect(ctx)? })
}

/// The full ID (`sha256:…`) of `image` in the daemon, or `None` when it has no such image.
pub fn image_id(ctx: &Context, image: &str) -> anyhow::Result<Option<String>> {
    let ids = docker()
        .args(["images", "--no-trunc", "--quiet", image])
        .read(ctx)
        .with_context(|| format!("look up image {image}"))?;
    Ok(ids.lines().next().map(str::to_owned))
}

/// The layers (`RootFS.Layers`, bottom first) of `image` in the daemon, or `None` when it
/// has no such image.
pub fn image_layers(ctx: &Context, image: &str) -> anyhow::Result<Option<Vec<String>>> {
    let inspect = docker().args(["image", "inspect", "--format", "{{json .RootFS.Layers}}", image]);
    let output = inspect.read_output(ctx)?;
    if !output.status.success() {
        return Ok(None);
    }
    let layers = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("docker reported no layer list for {image}"))?;
    Ok(Some(layers))
}

/// The first 12 hex digits of an image ID, as `docker images` shows it.
pub fn short_id(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// The images a build can take cached steps from, by builder: the test image (its chain
/// holds the dependencies of both profiles), and for the legacy builder the `build` stage
/// image too. Under BuildKit only images built with inline cache metadata can serve, and
/// every project image is.
///
/// Docker's legacy builder, once given `--cache-from`, takes a step from its local cache
/// only when that step is an ancestor of a named image; without it, it cannot use a loaded
/// image at all. Hence naming every image whose layers a build can reuse.
pub fn cache_images(builder: Builder, test_image: &str) -> Vec<String> {
    match builder {
        Builder::BuildKit => vec![test_image.to_owned()],
        Builder::Legacy => vec![BUILD_STAGE_IMAGE.to_owned(), test_image.to_owned()],
    }
}

/// Those of `images` the daemon holds (a build names none it lacks: the legacy builder's
/// local cache then applies in full, and BuildKit would look for it in a registry).
pub fn present(ctx: &Context, images: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut present = Vec::new();
    for image in images {
        if image_id(ctx, &image)?.is_some() {
            present.push(image);
        }
    }
    Ok(present)
}

/// The size of `image` in bytes, as the daemon reports it (close to its `docker save` size).
pub fn image_size(ctx: &Context, image: &str) -> anyhow::Result<u64> {
    let size = docker().args(["image", "inspect", "--format", "{{.Size}}", image]).read(ctx)?;
    size.parse().with_context(|| format!("docker reported size {size:?} for {image}"))
}

/// `image` with `:latest` added when it names no tag, as docker itself reads it.
pub fn with_default_tag(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    if name.contains(':') || name.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// A `docker build` of one stage of the web Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Build {
    pub target: &'static str,
    pub tag: String,
    pub cache_from: Vec<String>,
    pub build_args: Vec<(String, String)>,
}

impl Build {
    /// The command line. For the legacy builder, the Dockerfile comes through stdin, cut to
    /// the target's stages (see `dockerfile`): it would build every stage above the target.
    pub fn cmd(&self, root: &Path, builder: Builder) -> anyhow::Result<Cmd> {
        let mut cmd = docker().arg("build");
        if builder == Builder::Legacy {
            // A failed or interrupted step leaves no stopped container behind.
            cmd = cmd.arg("--force-rm").args(["--file", "-"]);
        } else {
            cmd = cmd.args(["--file", DOCKERFILE]);
        }
        cmd = cmd.args(["--target", self.target]).args(["--tag", &self.tag]);
        for image in &self.cache_from {
            cmd = cmd.args(["--cache-from", image]);
        }
        for (name, value) in &self.build_args {
            cmd = cmd.arg("--build-arg").arg(format!("{name}={value}"));
        }
        if builder == Builder::BuildKit {
            // Records cache metadata in the image so a later `--cache-from` can use it.
            cmd = cmd.args(["--build-arg", "BUILDKIT_INLINE_CACHE=1"]);
        }
        cmd = cmd.arg(".").dir(root);
        if builder == Builder::Legacy {
            let path = root.join(DOCKERFILE);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let (cut, stages) = dockerfile::for_target(&text, self.target)
                .with_context(|| DOCKERFILE.to_owned())?;
            let shown = format!("{DOCKERFILE}, stages {}", stages.join(" "));
            cmd = cmd.stdin_text(shown, cut);
        }
        Ok(cmd)
    }

    /// Runs the build, its output shown (or, `quiet`, only when it fails), then removes the
    /// image the tag named before when the build replaced it: that image is no build cache
    /// any more (see [`cache_sources`]), and would otherwise stay behind, untagged, after
    /// every source change.
    pub fn run(&self, ctx: &Context, engine: &Engine, quiet: bool) -> anyhow::Result<()> {
        let before = image_id(ctx, &self.tag)?;
        let cmd = self.cmd(&ctx.root, engine.builder)?;
        if quiet {
            cmd.run_quiet(ctx)?
        } else {
            cmd.run(ctx)?
        }
        let built = image_id(ctx, &self.tag)?
            .ok_or_else(|| anyhow!("docker build succeeded but {} is missing", self.tag))?;
        if let Some(old) = before
            && old != built
        {
            // Not forced: an image that a container or another tag still uses stays.
            let removed = docker().args(["image", "rm", &old]).read_output(ctx)?;
            if removed.status.success() {
                ctx.ui.info(format_args!("removed the previous {} ({})", self.tag, short_id(&old)));
            }
        }
        Ok(())
    }
}

/// Removes every image of this project's build chain (the label `web/Dockerfile` sets) and
/// BuildKit's build cache, and so leaves the daemon as a fresh CI machine finds it: base
/// images only.
pub fn forget_build_cache(ctx: &Context) -> anyhow::Result<()> {
    let filter = format!("label={BUILD_CACHE_LABEL}");
    docker().args(["image", "prune", "--all", "--force", "--filter", &filter]).read(ctx)?;
    docker().args(["builder", "prune", "--all", "--force"]).read(ctx)?;
    Ok(())
}

/// A container name unique to this process and moment, so runs never collide.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos:08x}", std::process::id())
}

/// Runs `run` (a `docker run --name NAME …` command) to completion and returns its exit code.
/// On Ctrl-C the container is removed, since killing the docker client does not stop it.
pub fn run_container(ctx: &Context, run: &Cmd, name: &str) -> anyhow::Result<Option<i32>> {
    let Err(err) = run.run(ctx) else { return Ok(Some(0)) };
    if err.is::<Interrupted>() {
        let _ = docker().args(["rm", "--force", name]).run_quiet(&ctx.without_interrupt());
        return Err(err.context(format!("container {name} stopped and removed")));
    }
    match err.downcast_ref::<CommandFailed>() {
        Some(failed) => Ok(failed.code),
        None => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dockerfile_carries_the_build_cache_label() {
        let dockerfile = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(DOCKERFILE),
        )
        .unwrap();
        let (key, value) = BUILD_CACHE_LABEL.split_once('=').unwrap();
        assert!(dockerfile.contains(&format!("LABEL {key}=\"{value}\"")));
    }

    #[test]
    fn default_tag_is_latest_as_docker_reads_it() {
        assert_eq!(with_default_tag("web-test"), "web-test:latest");
        assert_eq!(with_default_tag("localhost:5000/acme/web"), "localhost:5000/acme/web:latest");
        assert_eq!(with_default_tag("localhost:5000/acme/web:abc"), "localhost:5000/acme/web:abc");
    }

    #[test]
    fn build_command_lines_for_each_builder() {
        let build = Build {
            target: "test",
            tag: "web-test:latest".into(),
            cache_from: vec!["web-test:latest".into()],
            build_args: vec![("APP_VERSION".into(), "abc123".into())],
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(
            build.cmd(root, Builder::BuildKit).unwrap().to_string(),
            "docker build --file web/Dockerfile --target test --tag web-test:latest \
             --cache-from web-test:latest --build-arg APP_VERSION=abc123 \
             --build-arg BUILDKIT_INLINE_CACHE=1 ."
        );
        assert_eq!(
            build.cmd(root, Builder::Legacy).unwrap().to_string(),
            "docker build --force-rm --file - --target test --tag web-test:latest \
             --cache-from web-test:latest --build-arg APP_VERSION=abc123 . \
             # stdin: web/Dockerfile, stages release-deps test-deps test"
        );
    }
}
