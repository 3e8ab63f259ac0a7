//! `bench test-cache`: the seed's `docker load/build/save/run` against `cargo xtask test`,
//! under each builder, on a fresh daemon with the tarball (then `cargo xtask build`) and on a
//! daemon that holds the image.

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::figures::Figures;
use super::{Timed, report};
use crate::docker::{self, Builder, docker};
use crate::flags;
use crate::run::Context;
use crate::run::cmd::Cmd;

const SEED_IMAGE: &str = "xtask-bench-seed:latest";
const OURS_IMAGE: &str = "xtask-bench-ours:latest";
const DEPLOY_IMAGE: &str = "xtask-bench-deploy";

/// The seed's literal sequence, and ours, each with its own cache tarball, under one
/// builder.
struct Sides<'a> {
    builder: Builder,
    /// A copy of this binary, so that a rebuild during the benchmark cannot swap it.
    xtask: &'a Path,
    seed_tar: PathBuf,
    ours_tar: PathBuf,
    log: &'a File,
    log_path: &'a Path,
}

impl Sides<'_> {
    /// The seed: `docker load` if the tar exists; `docker build -t …`; `docker save`;
    /// `docker run`: no `--cache-from`, a save on every run.
    fn seed(&self, ctx: &Context) -> anyhow::Result<Timed> {
        let started = Instant::now();
        let mut compiled = 0;
        if self.seed_tar.exists() {
            compiled += self.logged(ctx, docker().args(["load", "-i"]).arg(&self.seed_tar))?;
        }
        let build = docker().args(["build", "-f", docker::DOCKERFILE, "--target", "test"]);
        compiled += self.logged(ctx, build.args(["-t", SEED_IMAGE, "."]).dir(&ctx.root))?;
        compiled +=
            self.logged(ctx, docker().args(["save", SEED_IMAGE, "-o"]).arg(&self.seed_tar))?;
        compiled +=
            self.logged(ctx, docker().args(["run", "--rm", "--network", "none", SEED_IMAGE]))?;
        Ok(Timed { seconds: started.elapsed().as_secs_f64(), compiled })
    }

    fn xtask(&self, ctx: &Context) -> Cmd {
        Cmd::new(self.xtask).arg("--project-dir").arg(&ctx.root)
    }

    fn ours(&self, ctx: &Context) -> anyhow::Result<Timed> {
        let test = self
            .xtask(ctx)
            .args(["test", "--image", OURS_IMAGE, "--cache-file"])
            .arg(&self.ours_tar);
        let started = Instant::now();
        let compiled = self.logged(ctx, test)?;
        Ok(Timed { seconds: started.elapsed().as_secs_f64(), compiled })
    }

    /// `cargo xtask build` after `ours` on a fresh daemon, as CI's build job runs it.
    fn build_after(&self, ctx: &Context) -> anyhow::Result<Timed> {
        let build = self
            .xtask(ctx)
            .args(["build", "--tag", "bench", "--test-image", OURS_IMAGE, "--cache-file"])
            .arg(&self.ours_tar)
            .env("DEPLOY_IMAGE", DEPLOY_IMAGE);
        let started = Instant::now();
        let compiled = self.logged(ctx, build)?;
        Ok(Timed { seconds: started.elapsed().as_secs_f64(), compiled })
    }

    fn bare_run(&self, ctx: &Context) -> anyhow::Result<Timed> {
        let started = Instant::now();
        self.logged(ctx, docker().args(["run", "--rm", "--network", "none", OURS_IMAGE]))?;
        Ok(Timed { seconds: started.elapsed().as_secs_f64(), compiled: 0 })
    }

    /// Runs `cmd` under this builder, its output streamed into the log (so that it can be
    /// followed); returns how many crates it compiled.
    fn logged(&self, ctx: &Context, cmd: Cmd) -> anyhow::Result<usize> {
        let cmd =
            cmd.env("DOCKER_BUILDKIT", if self.builder == Builder::Legacy { "0" } else { "1" });
        let from = self.log.metadata().map(|m| m.len()).unwrap_or(0);
        let see = || format!("see {}", self.log_path.display());
        cmd.log_to(self.log_path).run(ctx).with_context(see)?;
        let mut written = Vec::new();
        let mut log = File::open(self.log_path)?;
        log.seek(SeekFrom::Start(from))?;
        log.read_to_end(&mut written)?;
        let written = String::from_utf8_lossy(&written);
        // Not "Compiling ": the legacy builder paints stderr chunks, codes can split words.
        Ok(written.lines().filter(|l| l.contains("Compiling")).count())
    }

    /// The whole sequence under this builder: each side once to make its tarball, then
    /// fresh and warm rounds, the two sides alternating which goes first (so that neither
    /// always finds the page cache warmed, or cooled, by the other).
    fn measure(&self, ctx: &Context, flags: &flags::BenchTestCache) -> anyhow::Result<Figures> {
        let builder = self.builder;
        ctx.ui.step(format_args!("{builder:?}: prepare: each side runs once, for its tarball"));
        docker::forget_build_cache(ctx)?;
        self.seed(ctx)?;
        self.ours(ctx)?;
        let mut figures = Figures::default();
        for round in 1..=flags.fresh_rounds {
            ctx.ui
                .step(format_args!("{builder:?}: (a) fresh daemon + cache tarball, round {round}"));
            for seed_first in [round % 2 == 0, round % 2 == 1] {
                docker::forget_build_cache(ctx)?;
                if seed_first {
                    figures.seed_fresh.push(report(ctx, "seed", self.seed(ctx)?));
                } else {
                    let ours = self.ours(ctx)?;
                    figures.ours_fresh_compiled.push(ours.compiled);
                    figures.ours_fresh.push(report(ctx, "ours", ours));
                    let build = self.build_after(ctx)?;
                    figures.build_after_compiled.push(build.compiled);
                    figures.build_after.push(report(ctx, "then cargo xtask build", build));
                }
            }
        }
        ctx.ui.step(format_args!("{builder:?}: (b) the daemon already holds the image"));
        self.ours(ctx)?;
        for round in 1..=flags.warm_rounds {
            ctx.ui.info(format_args!("round {round}"));
            for seed_first in [round % 2 == 0, round % 2 == 1] {
                if seed_first {
                    figures.seed_warm.push(report(ctx, "seed", self.seed(ctx)?));
                } else {
                    figures.ours_warm.push(report(ctx, "ours", self.ours(ctx)?));
                }
            }
            figures.bare_warm.push(report(ctx, "bare docker run --rm", self.bare_run(ctx)?));
        }
        figures.tarball = fs::metadata(&self.ours_tar).map(|m| m.len()).unwrap_or(0);
        Ok(figures)
    }

    /// Removes what the benchmark made of this builder: images and the tarballs of
    /// gigabytes. A failure is a warning: the figures are printed by then.
    fn clean_up(&self, ctx: &Context) {
        for image in [SEED_IMAGE, OURS_IMAGE, &format!("{DEPLOY_IMAGE}:bench")] {
            if let Err(err) = docker().args(["image", "rm", image]).read(ctx) {
                ctx.ui.warn(format_args!("cannot remove {image}: {err:#}"));
            }
        }
        for file in [&self.seed_tar, &self.ours_tar] {
            if let Err(err) = fs::remove_file(file) {
                ctx.ui.warn(format_args!("cannot remove {}: {err}", file.display()));
            }
        }
    }
}

pub fn test_cache(ctx: &Context, flags: &flags::BenchTestCache) -> anyhow::Result<()> {
    let engine = docker::preflight(ctx)?;
    let dir = ctx.root.join("target").join("bench");
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log_path = dir.join("test-cache.log");
    let log = File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;
    let xtask = dir.join("xtask-under-test");
    fs::copy(std::env::current_exe().context("find the xtask binary")?, &xtask)
        .with_context(|| format!("copy the xtask binary to {}", xtask.display()))?;
    ctx.ui.step(format_args!(
        "benchmark: seed sequence vs cargo xtask test (commands' output: {})",
        log_path.display()
    ));
    let mut builders = vec![Builder::Legacy];
    if engine.builder == Builder::BuildKit {
        builders.insert(0, Builder::BuildKit);
    } else {
        ctx.ui.warn("no buildx plugin: BuildKit is not measured (run .ci/setup)");
    }
    let mut results = Vec::new();
    for builder in builders {
        let name = format!("{builder:?}").to_lowercase();
        let sides = Sides {
            builder,
            xtask: &xtask,
            seed_tar: dir.join(format!("seed-{name}.tar")),
            ours_tar: dir.join(format!("ours-{name}.tar")),
            log: &log,
            log_path: &log_path,
        };
        let figures = sides.measure(ctx, flags);
        sides.clean_up(ctx);
        results.push((builder, figures?));
    }
    let _ = fs::remove_file(&xtask);
    Figures::print(&ctx.ui, &results);
    ctx.ui.out(format_args!("rounds: {} fresh, {} warm", flags.fresh_rounds, flags.warm_rounds));
    Ok(())
}
