//! The deploy image (the `runtime` stage of `web/Dockerfile`), tagged by commit, with that
//! commit baked in, and pushed to its registry unless it is already there: what `build`,
//! `deploy` and `deploy --local` start with.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::aws::Aws;
use crate::config::git;
use crate::config::settings::Settings;
use crate::docker::ecr::Ecr;
use crate::docker::reference::ImageRef;
use crate::docker::registry::{Auth, Session};
use crate::docker::{self, Build, Builder, cache};
use crate::run::Context;

/// What to build, and whether to push it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The tag [default: `$CIRCLE_SHA1`, else the commit checked out].
    pub tag: Option<String>,
    pub push: bool,
    /// A commit tag may be pushed from a work tree with uncommitted changes.
    pub allow_dirty: bool,
    /// The test image's cache tarball, whose compiled dependencies the build reuses.
    pub cache_file: Option<PathBuf>,
    pub test_image: String,
    /// Also build the local proxy image (`deploy --local`), under this name.
    pub proxy: Option<String>,
}

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
    pub fn new(ctx: &Context, settings: &Settings, options: &Options) -> anyhow::Result<Plan> {
        let repository = settings.image()?;
        let (tag, tag_source) = match (&options.tag, ctx.env.get("CIRCLE_SHA1")) {
            (Some(tag), _) => (tag.clone(), TagSource::Flag),
            (None, Some(sha)) => (sha.to_owned(), TagSource::CircleSha1),
            (None, None) => (
                git::head(ctx).context("cannot choose the image tag: pass --tag TAG")?,
                TagSource::GitHead,
            ),
        };
        let image = ImageRef::new(repository, &tag)?;
        let session = if options.push {
            let auth = Auth::for_image(&ctx.env, settings, &image)?;
            if let Auth::Basic(credentials) = &auth {
                ctx.ui.hide(&credentials.password);
            }
            if !options.allow_dirty {
                refuse_dirty_commit_tag(ctx, &image.tag, tag_source)?;
            }
            Some(Session::planned(image.registry(), auth))
        } else {
            None
        };
        Ok(Plan {
            image,
            tag_source,
            session,
            cache_file: options.cache_file.clone(),
            test_image: docker::with_default_tag(&options.test_image),
            proxy: options.proxy.clone(),
        })
    }

    /// The ECR registry `--push` goes to, if it is one: [`Plan::execute`] then needs AWS.
    pub fn ecr(&self) -> Option<&Ecr> {
        self.session.as_ref().and_then(Session::ecr)
    }

    /// The builds of the deploy image (and, for `deploy --local`, of the proxy), given which
    /// images the daemon holds (`holds`).
    ///
    /// BuildKit builds the `runtime` (and `front`) stage straight away: the test image's
    /// inline cache covers the release dependencies, and its own cache shares the `build`
    /// stage between the two. The legacy builder first builds the `build` stage under a tag of
    /// its own, then `runtime` (and `front`) from that image's steps and those of the image
    /// the tag names already: the app is compiled once, and an unchanged tree builds nothing.
    fn builds(&self, builder: Builder, holds: &dyn Fn(&str) -> bool) -> Vec<Build> {
        let cached = |images: Vec<String>| -> Vec<String> {
            images.into_iter().filter(|image| holds(image)).collect()
        };
        let mut builds = Vec::new();
        let mut targets = vec![("runtime", self.image.to_string())];
        targets.extend(self.proxy.iter().map(|tag| ("front", tag.clone())));
        for (target, tag) in targets {
            let cache_from = match builder {
                Builder::BuildKit => cached(docker::cache_images(builder, &self.test_image)),
                Builder::Legacy => {
                    if builds.is_empty() {
                        builds.push(Build {
                            target: "build",
                            tag: docker::BUILD_STAGE_IMAGE.to_owned(),
                            cache_from: cached(docker::cache_images(builder, &self.test_image)),
                            build_args: Vec::new(),
                        });
                    }
                    // The build stage was made just now: always there.
                    let mut from = vec![docker::BUILD_STAGE_IMAGE.to_owned()];
                    from.extend(cached(vec![tag.clone()]));
                    from
                }
            };
            let build_args = match target {
                "runtime" => vec![("APP_VERSION".to_owned(), self.image.tag.clone())],
                _ => Vec::new(),
            };
            builds.push(Build { target, tag, cache_from, build_args });
        }
        builds
    }

    /// The plan as a reader checks it: every command, secrets masked. Runs nothing.
    pub fn print(&self, ctx: &Context) -> anyhow::Result<()> {
        ctx.ui.step(format_args!("plan for {} (dry run: nothing is run)", self.image));
        self.print_steps(ctx)
    }

    /// The plan's steps without a heading, for the commands whose plan starts with a build.
    pub fn print_steps(&self, ctx: &Context) -> anyhow::Result<()> {
        let ui = &ctx.ui;
        let source = match self.tag_source {
            TagSource::Flag => "--tag",
            TagSource::CircleSha1 => "$CIRCLE_SHA1",
            TagSource::GitHead => "the commit checked out",
        };
        ui.info(format_args!("tag {} from {source}", self.image.tag));
        if let Some(session) = &self.session {
            for line in session.ecr().map(Ecr::plan).unwrap_or_default() {
                ui.info(line);
            }
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
        let builder = Builder::detect(ctx)?;
        ui.info(format_args!(
            "build the deploy image ({builder:?} builder), reusing the test image's compiled \
             dependencies:"
        ));
        // A dry run asks the daemon nothing: shown as if it held every cache image.
        for build in self.builds(builder, &|_| true) {
            ui.echo(build.cmd(&ctx.root, builder)?);
        }
        match &self.session {
            Some(session) => ui.echo(session.push_cmd(&self.image)),
            None => ui.info("no push (pass --push)"),
        }
        Ok(())
    }

    /// Runs the plan; `aws` is needed to push to ECR ([`Plan::ecr`]).
    pub fn execute(&mut self, ctx: &Context, aws: Option<&Aws>) -> anyhow::Result<Outcome> {
        let engine = docker::preflight(ctx)?;
        let session = match self.session.take() {
            Some(planned) => {
                ctx.ui.step(format_args!("log in to {}", planned.registry));
                let session = planned.login(ctx, aws)?;
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
        let mut candidates = docker::cache_images(engine.builder, &self.test_image);
        candidates.push(self.image.to_string());
        candidates.extend(self.proxy.clone());
        let held = docker::present(ctx, candidates)?;
        for build in self.builds(engine.builder, &|image| held.iter().any(|h| h == image)) {
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
