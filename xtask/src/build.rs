//! `cargo xtask build`: the deploy image (the `runtime` stage of `web/Dockerfile`), tagged
//! by commit, with that commit baked in, and pushed to its registry unless it is already
//! there.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::docker::{self, Build, Engine};
use crate::registry::{Credentials, ImageRef, Session};
use crate::settings::Settings;
use crate::{Context, cache, flags, git};

/// Where the tag came from, which decides whether a dirty tree matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagSource {
    Flag,
    CircleSha1,
    GitHead,
}

/// Everything `build` will do, decided before anything runs.
#[derive(Debug)]
pub struct Plan {
    pub image: ImageRef,
    pub tag_source: TagSource,
    /// `Some` with `--push`: the registry login to use.
    pub session: Option<Session>,
    pub cache_file: Option<PathBuf>,
    pub test_image: String,
    /// `deploy --local`: also build the local proxy image, under this name.
    pub proxy: Option<String>,
}

/// What `execute` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `IMAGE:TAG` was already in the registry: nothing built or pushed.
    AlreadyPushed,
    Built,
    Pushed,
}

impl Plan {
    pub fn new(ctx: &Context, settings: &Settings, flags: &flags::Build) -> anyhow::Result<Plan> {
        let repository = settings.image()?;
        let (tag, tag_source) = match (&flags.tag, ctx.env.get("CIRCLE_SHA1")) {
            (Some(tag), _) => (tag.clone(), TagSource::Flag),
            (None, Some(sha)) => (sha.to_owned(), TagSource::CircleSha1),
            (None, None) => (
                git::head(ctx).context("cannot choose the image tag: pass --tag TAG")?,
                TagSource::GitHead,
            ),
        };
        let image = ImageRef::new(repository, &tag)?;
        let session = if flags.push {
            let credentials = Credentials::from_env(&ctx.env, image.registry())?;
            if !flags.allow_dirty {
                refuse_dirty_commit_tag(ctx, &image.tag, tag_source)?;
            }
            Some(Session::planned(image.registry(), credentials))
        } else {
            None
        };
        Ok(Plan {
            image,
            tag_source,
            session,
            cache_file: flags.cache.path(&ctx.env)?,
            test_image: docker::with_default_tag(&flags.test_image),
            proxy: None,
        })
    }

    /// The builds: the `build` stage (compiled binaries) under a tag of its own, so the next
    /// build reuses it, then the `runtime` stage as `IMAGE:TAG`. Docker's legacy builder
    /// builds every stage before the target, the test stage too: there it is built first
    /// under the test image's name, so that it is current and the next build reuses it. The
    /// proxy's build (the last stage) gets the deploy image's version and the deploy image
    /// as cache, so that the runtime stage it passes through is that image, not a new one.
    fn builds(&self, engine: &Engine, mut cache_from: Vec<String>) -> Vec<Build> {
        let test = Build {
            target: "test",
            tag: self.test_image.clone(),
            cache_from: cache_from.clone(),
            build_args: Vec::new(),
        };
        let stage = Build {
            target: "build",
            tag: docker::BUILD_STAGE_IMAGE.to_owned(),
            cache_from: cache_from.clone(),
            build_args: Vec::new(),
        };
        if !cache_from.iter().any(|c| c == docker::BUILD_STAGE_IMAGE) {
            cache_from.push(docker::BUILD_STAGE_IMAGE.to_owned());
        }
        let runtime = Build {
            target: "runtime",
            tag: self.image.to_string(),
            cache_from,
            build_args: vec![("APP_VERSION".to_owned(), self.image.tag.clone())],
        };
        let proxy = self.proxy.as_ref().map(|tag| {
            let mut cache_from = runtime.cache_from.clone();
            cache_from.extend([runtime.tag.clone(), tag.clone()]);
            Build { target: "front", tag: tag.clone(), cache_from, ..runtime.clone() }
        });
        let mut builds = Vec::new();
        if !engine.buildkit {
            builds.push(test);
        }
        builds.extend([stage, runtime]);
        builds.extend(proxy);
        builds
    }

    /// The plan as a reader checks it: every command, secrets masked. Runs nothing.
    pub fn print(&self, ctx: &Context) {
        ctx.ui.step(format_args!("plan for {} (dry run: nothing is run)", self.image));
        self.print_steps(ctx);
    }

    /// The plan's steps without a heading, for the commands whose plan starts with a build.
    pub fn print_steps(&self, ctx: &Context) {
        let ui = &ctx.ui;
        let source = match self.tag_source {
            TagSource::Flag => "--tag",
            TagSource::CircleSha1 => "$CIRCLE_SHA1",
            TagSource::GitHead => "the commit checked out",
        };
        ui.info(format_args!("tag {} from {source}", self.image.tag));
        if let Some(session) = &self.session {
            ui.info(format_args!("log in to {} in a private docker config:", session.registry));
            ui.echo(session.login_cmd());
            ui.info("skip build and push when the registry already has the image:");
            ui.echo(session.manifest_cmd(&self.image));
        }
        if let Some(path) = &self.cache_file {
            ui.info(format_args!(
                "load the test image cache when the daemon lacks {}:",
                self.test_image
            ));
            ui.echo(format_args!("docker load --quiet < {}", path.display()));
        }
        ui.info("build the deploy image, reusing the test image's compiled dependencies:");
        let engine = Engine { server_version: String::new(), buildkit: false };
        let cache_from = vec![self.test_image.clone(), docker::BUILD_STAGE_IMAGE.to_owned()];
        for build in self.builds(&engine, cache_from) {
            ui.echo(build.cmd(&ctx.root, &engine));
        }
        match &self.session {
            Some(session) => ui.echo(session.push_cmd(&self.image)),
            None => ui.info("no push (pass --push)"),
        }
    }

    pub fn execute(&mut self, ctx: &Context) -> anyhow::Result<Outcome> {
        let engine = docker::preflight(ctx)?;
        let session = match self.session.take() {
            Some(planned) => {
                ctx.ui.step(format_args!("log in to {}", planned.registry));
                let session = planned.login(ctx)?;
                if session.has(ctx, &self.image)? {
                    ctx.ui.success(format_args!(
                        "{} is already in {}: nothing to build or push",
                        self.image, session.registry
                    ));
                    return Ok(Outcome::AlreadyPushed);
                }
                Some(session)
            }
            None => None,
        };
        if let Some(path) = &self.cache_file {
            cache::restore(ctx, path, &self.test_image)?;
        }
        ctx.ui.step(format_args!("build the deploy image {}", self.image));
        let cache_from =
            docker::cache_sources(ctx, &[&self.test_image, docker::BUILD_STAGE_IMAGE])?;
        for build in self.builds(&engine, cache_from) {
            build.run(ctx, &engine, false)?;
        }
        let Some(session) = session else {
            ctx.ui.success(format_args!("built {} (not pushed: pass --push)", self.image));
            return Ok(Outcome::Built);
        };
        ctx.ui.step(format_args!("push {}", self.image));
        session.push(ctx, &self.image)?;
        ctx.ui.success(format_args!("pushed {}", self.image));
        Ok(Outcome::Pushed)
    }
}

pub fn run(ctx: &Context, flags: &flags::Build) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let mut plan = Plan::new(ctx, &settings, flags)?;
    if flags.dry_run {
        plan.print(ctx);
        return Ok(());
    }
    plan.execute(ctx).map(|_| ())
}

/// A commit tag names a commit: an image built from uncommitted changes must not carry it.
fn refuse_dirty_commit_tag(ctx: &Context, tag: &str, source: TagSource) -> anyhow::Result<()> {
    let is_commit_tag = match source {
        TagSource::GitHead | TagSource::CircleSha1 => true,
        TagSource::Flag => git::head(ctx).is_ok_and(|head| head == tag),
    };
    if !is_commit_tag {
        return Ok(());
    }
    let dirty = match git::dirty_paths(ctx) {
        Ok(dirty) => dirty,
        // Not a git checkout (a CI tarball with CIRCLE_SHA1): nothing to compare with.
        Err(_) if source == TagSource::CircleSha1 => return Ok(()),
        Err(err) => return Err(err),
    };
    if dirty.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = dirty.iter().take(3).map(String::as_str).collect();
    let more =
        if dirty.len() > 3 { format!(" and {} more", dirty.len() - 3) } else { String::new() };
    bail!(
        "the work tree has uncommitted changes ({}{more}): an image tagged {} would not be that \
         commit; commit or stash them, or pass --allow-dirty",
        shown.join(", "),
        &tag[..tag.len().min(12)]
    )
}
