//! `cargo xtask bench`: the figures behind the performance targets, measured side by side
//! in one run and printed as a table. Benchmarks, not tests: nothing here asserts a time.

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::docker::{self, Builder, docker};
use crate::run::cmd::Cmd;
use crate::{Context, flags};

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

/// What one timed run took, and how many crates it compiled.
struct Timed {
    seconds: f64,
    compiled: usize,
}

/// The figures of one builder.
#[derive(Default)]
struct Figures {
    seed_fresh: Vec<f64>,
    ours_fresh: Vec<f64>,
    ours_fresh_compiled: Vec<usize>,
    build_after: Vec<f64>,
    build_after_compiled: Vec<usize>,
    seed_warm: Vec<f64>,
    ours_warm: Vec<f64>,
    bare_warm: Vec<f64>,
    tarball: u64,
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
        cmd.run_logged(ctx, self.log)
            .with_context(|| format!("see {}", self.log_path.display()))?;
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
        forget_build_cache(ctx)?;
        self.seed(ctx)?;
        self.ours(ctx)?;
        let mut figures = Figures::default();
        for round in 1..=flags.fresh_rounds {
            ctx.ui
                .step(format_args!("{builder:?}: (a) fresh daemon + cache tarball, round {round}"));
            for seed_first in [round % 2 == 0, round % 2 == 1] {
                forget_build_cache(ctx)?;
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

/// Removes every image of this project's build chain (the label `web/Dockerfile` sets) and
/// BuildKit's build cache, and so leaves the daemon as a fresh CI machine finds it: base
/// images only.
pub fn forget_build_cache(ctx: &Context) -> anyhow::Result<()> {
    let filter = format!("label={}", docker::BUILD_CACHE_LABEL);
    docker().args(["image", "prune", "--all", "--force", "--filter", &filter]).read(ctx)?;
    docker().args(["builder", "prune", "--all", "--force"]).read(ctx)?;
    Ok(())
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

    println!();
    println!(
        "{:<9} {:<40} {:>9} {:>9} {:>7} {:>8}",
        "builder", "scenario (median seconds)", "baseline", "ours", "ratio", "target"
    );
    for (builder, f) in &results {
        let row = |scenario: &str, baseline: f64, ours: f64, target: &str| {
            println!(
                "{:<9} {scenario:<40} {baseline:>9.2} {ours:>9.2} {:>7.2} {target:>8}",
                format!("{builder:?}"),
                ours / baseline
            );
        };
        let (seed_a, ours_a) = (median(&f.seed_fresh), median(&f.ours_fresh));
        let (seed_b, ours_b, bare_b) =
            (median(&f.seed_warm), median(&f.ours_warm), median(&f.bare_warm));
        row("(a) fresh daemon + tarball vs seed", seed_a, ours_a, "<= 0.35");
        row("(b) daemon holds image vs seed", seed_b, ours_b, "");
        row("(b) vs bare `docker run --rm`", bare_b, ours_b, "<= 1.30");
        println!(
            "{:<9} (a) crates compiled by test: {:?} (target 0); by build after it: {:?} in \
             {:.1}s (target 1); tarball {}",
            format!("{builder:?}"),
            f.ours_fresh_compiled,
            f.build_after_compiled,
            median(&f.build_after),
            crate::run::ui::human_bytes(f.tarball),
        );
    }
    println!("rounds: {} fresh, {} warm", flags.fresh_rounds, flags.warm_rounds);
    Ok(())
}

pub fn xtask(ctx: &Context, flags: &flags::BenchXtask) -> anyhow::Result<()> {
    let dir = ctx.root.join("target").join("bench");
    let cold = dir.join("cold-xtask-target");
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log_path = dir.join("xtask.log");
    let log = File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;
    let cargo = ctx.env.get("CARGO").unwrap_or("cargo").to_owned();

    ctx.ui.step("cold debug build of xtask in a fresh target directory");
    remove_dir(&cold)?;
    let build = Cmd::new(&cargo).args(["build", "--package", "xtask", "--target-dir"]).arg(&cold);
    let cpu_before = children_cpu();
    let started = Instant::now();
    build
        .dir(&ctx.root)
        .run_logged(ctx, &log)
        .with_context(|| format!("see {}", log_path.display()))?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = (children_cpu() - cpu_before).as_secs_f64();
    remove_dir(&cold)?;

    ctx.ui.step(format_args!("warm `cargo xtask --help`, {} runs", flags.help_rounds));
    let help = Cmd::new(&cargo).args(["xtask", "--help"]).dir(&ctx.root);
    help.run_logged(ctx, &log)?;
    let mut runs = Vec::new();
    for _ in 0..flags.help_rounds {
        let started = Instant::now();
        help.run_logged(ctx, &log)?;
        runs.push(started.elapsed().as_secs_f64());
    }
    println!();
    println!("cold debug build of xtask: {wall:.1} s wall, {cpu:.1} s CPU");
    println!(
        "warm `cargo xtask --help`: {:.0} ms median of {}",
        median(&runs) * 1000.0,
        runs.len()
    );
    Ok(())
}

/// The deploy image: its size, and how long from `docker run` to the first 200 on /health.
pub fn image(ctx: &Context, flags: &flags::BenchImage) -> anyhow::Result<()> {
    let engine = docker::preflight(ctx)?;
    let image = "xtask-bench-web:latest";
    ctx.ui.step(format_args!("build the deploy image as {image}"));
    let build = docker::Build {
        target: "runtime",
        tag: image.to_owned(),
        cache_from: docker::present(ctx, docker::cache_images(engine.builder, "web-test:latest"))?,
        build_args: vec![("APP_VERSION".to_owned(), "bench".to_owned())],
    };
    build.run(ctx, &engine, false)?;
    let size = docker::image_size(ctx, image)?;

    ctx.ui.step(format_args!(
        "{} starts, port published on 127.0.0.1 as on Elastic Beanstalk",
        flags.starts
    ));
    let (mut returned, mut answered) = (Vec::new(), Vec::new());
    for _ in 0..flags.starts {
        let (run_ms, first_ms) = start_until_healthy(ctx, image)?;
        returned.push(run_ms);
        answered.push(first_ms);
    }
    let _ = docker().args(["rmi", image]).read(ctx);
    let (run_ms, first_ms) = (median(&returned), median(&answered));
    println!();
    println!("deploy image size: {:.2} MB (target <= 25 MB)", size as f64 / 1e6);
    println!(
        "start -> first 200 on /health: {first_ms:.0} ms median of {} (target <= 200 ms); \
         of which `docker run -d` itself: {run_ms:.0} ms, the app after it: {:.0} ms",
        answered.len(),
        first_ms - run_ms
    );
    Ok(())
}

/// Milliseconds until `docker run -d` returned and until /health first answered 200.
fn start_until_healthy(ctx: &Context, image: &str) -> anyhow::Result<(f64, f64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let name = docker::unique_name("xtask-bench-start");
    let run = docker()
        .args(["run", "--detach", "--name", &name, "--env", "APP_ENV=local", "--publish"])
        .arg(format!("127.0.0.1:{port}:80"))
        .arg(image);
    let started = Instant::now();
    run.read(ctx)?;
    let returned = started.elapsed();
    let addr = format!("127.0.0.1:{port}");
    let answered = loop {
        if crate::run::http::get(&addr, "/health", Duration::from_secs(1))
            .is_ok_and(|r| r.status == 200)
        {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = docker().args(["rm", "--force", &name]).read(ctx);
            anyhow::bail!("{image} did not answer on {addr}/health within 10 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    docker().args(["rm", "--force", &name]).read(ctx)?;
    Ok((returned.as_secs_f64() * 1000.0, answered.as_secs_f64() * 1000.0))
}

fn report(ctx: &Context, side: &str, took: Timed) -> f64 {
    ctx.ui.info(format_args!("{side}: {:.2}s, {} crates compiled", took.seconds, took.compiled));
    took.seconds
}

fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// User + system CPU time of all waited-for child processes (and theirs) so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
