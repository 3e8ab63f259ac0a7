//! `cargo xtask bench`: the figures behind the performance targets, measured side by side
//! in one run and printed as a table. Benchmarks, not tests: nothing here asserts a time.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::cmd::Cmd;
use crate::docker::{self, docker};
use crate::{Context, flags};

const SEED_IMAGE: &str = "xtask-bench-seed:latest";
const OURS_IMAGE: &str = "xtask-bench-ours:latest";

/// The seed's literal sequence, and ours, each with its own cache tarball.
struct Sides {
    /// A copy of this binary, so that a rebuild during the benchmark cannot swap it.
    xtask: PathBuf,
    seed_tar: PathBuf,
    ours_tar: PathBuf,
    log: File,
    log_path: PathBuf,
}

impl Sides {
    /// Removes what the benchmark made but its log: two images, two tarballs of gigabytes
    /// and the copy of the binary. A failure is a warning: the figures are printed by then.
    fn clean_up(&self, ctx: &Context) {
        ctx.ui.step("remove the benchmark's images and tarballs (the log stays)");
        for image in [SEED_IMAGE, OURS_IMAGE] {
            if let Err(err) = docker().args(["image", "rm", image]).read(ctx) {
                ctx.ui.warn(format_args!("cannot remove {image}: {err:#}"));
            }
        }
        for file in [&self.seed_tar, &self.ours_tar, &self.xtask] {
            if let Err(err) = fs::remove_file(file) {
                ctx.ui.warn(format_args!("cannot remove {}: {err}", file.display()));
            }
        }
    }

    /// The seed: `docker load` if the tar exists; `docker build -t …`; `docker save`;
    /// `docker run`: no `--cache-from`, a save on every run.
    fn seed(&self, ctx: &Context) -> anyhow::Result<Duration> {
        let started = Instant::now();
        if self.seed_tar.exists() {
            self.logged(ctx, docker().args(["load", "-i"]).arg(&self.seed_tar))?;
        }
        let build = docker().args(["build", "-f", docker::DOCKERFILE, "--target", "test"]);
        self.logged(ctx, build.args(["-t", SEED_IMAGE, "."]).dir(&ctx.root))?;
        self.logged(ctx, docker().args(["save", SEED_IMAGE, "-o"]).arg(&self.seed_tar))?;
        self.logged(ctx, docker().args(["run", "--rm", "--network", "none", SEED_IMAGE]))?;
        Ok(started.elapsed())
    }

    fn ours(&self, ctx: &Context) -> anyhow::Result<Duration> {
        let test = Cmd::new(&self.xtask)
            .arg("--project-dir")
            .arg(&ctx.root)
            .args(["test", "--image", OURS_IMAGE, "--cache-file"])
            .arg(&self.ours_tar);
        let started = Instant::now();
        self.logged(ctx, test)?;
        Ok(started.elapsed())
    }

    fn bare_run(&self, ctx: &Context) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.logged(ctx, docker().args(["run", "--rm", "--network", "none", OURS_IMAGE]))?;
        Ok(started.elapsed())
    }

    fn logged(&self, ctx: &Context, cmd: Cmd) -> anyhow::Result<()> {
        cmd.run_logged(ctx, &self.log).with_context(|| format!("see {}", self.log_path.display()))
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
    docker::preflight(ctx)?;
    let dir = ctx.root.join("target").join("bench");
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log_path = dir.join("test-cache.log");
    let xtask = dir.join("xtask-under-test");
    fs::copy(std::env::current_exe().context("find the xtask binary")?, &xtask)
        .with_context(|| format!("copy the xtask binary to {}", xtask.display()))?;
    let sides = Sides {
        xtask,
        seed_tar: dir.join("seed-image.tar"),
        ours_tar: dir.join("ours-image.tar"),
        log: File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?,
        log_path,
    };
    ctx.ui.step(format_args!(
        "benchmark: seed sequence vs cargo xtask test (commands' output: {})",
        sides.log_path.display()
    ));
    ctx.ui.info("prepare: each side runs once, so each has its cache tarball of this tree");
    sides.seed(ctx)?;
    sides.ours(ctx)?;

    let (mut seed_fresh, mut ours_fresh) = (Vec::new(), Vec::new());
    // The sides alternate which goes first, so that neither always finds the machine's
    // page cache warmed (or cooled) by the other.
    for round in 1..=flags.fresh_rounds {
        ctx.ui.step(format_args!("(a) fresh daemon + cache tarball, round {round}"));
        for seed_first in [round % 2 == 0, round % 2 == 1] {
            forget_build_cache(ctx)?;
            if seed_first {
                seed_fresh.push(report(ctx, "seed", sides.seed(ctx)?));
            } else {
                ours_fresh.push(report(ctx, "ours", sides.ours(ctx)?));
            }
        }
    }

    ctx.ui.step("(b) the daemon already holds the image");
    sides.ours(ctx)?;
    let (mut seed_warm, mut ours_warm, mut bare_warm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=flags.warm_rounds {
        ctx.ui.info(format_args!("round {round}"));
        for seed_first in [round % 2 == 0, round % 2 == 1] {
            if seed_first {
                seed_warm.push(report(ctx, "seed", sides.seed(ctx)?));
            } else {
                ours_warm.push(report(ctx, "ours", sides.ours(ctx)?));
            }
        }
        bare_warm.push(report(ctx, "bare docker run --rm", sides.bare_run(ctx)?));
    }

    let (seed_a, ours_a) = (median(&seed_fresh), median(&ours_fresh));
    let (seed_b, ours_b, bare_b) = (median(&seed_warm), median(&ours_warm), median(&bare_warm));
    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>8} {:>8}",
        "scenario (median seconds)", "baseline", "ours", "ratio", "target"
    );
    println!(
        "{:<40} {:>10.2} {:>10.2} {:>8.2} {:>8}",
        "(a) fresh daemon + tarball vs seed",
        seed_a,
        ours_a,
        ours_a / seed_a,
        "<= 0.35"
    );
    println!(
        "{:<40} {:>10.2} {:>10.2} {:>8.2} {:>8}",
        "(b) daemon holds image vs seed",
        seed_b,
        ours_b,
        ours_b / seed_b,
        ""
    );
    println!(
        "{:<40} {:>10.2} {:>10.2} {:>8.2} {:>8}",
        "(b) vs bare `docker run --rm`",
        bare_b,
        ours_b,
        ours_b / bare_b,
        "<= 1.30"
    );
    println!(
        "cache tarball: {} (rounds: {} fresh, {} warm)",
        fs::metadata(&sides.ours_tar).map(|m| crate::ui::human_bytes(m.len())).unwrap_or_default(),
        flags.fresh_rounds,
        flags.warm_rounds
    );
    sides.clean_up(ctx);
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
        if crate::http::get(&addr, "/health", Duration::from_secs(1)).is_ok_and(|r| r.status == 200)
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

fn report(ctx: &Context, side: &str, took: Duration) -> f64 {
    ctx.ui.info(format_args!("{side}: {:.2}s", took.as_secs_f64()));
    took.as_secs_f64()
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
