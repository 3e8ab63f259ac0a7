//! `bench image`: the deploy image's size, and how long from `docker run` to the first 200 on
//! `/health`, split into the engine's share and the app's.

use std::time::{Duration, Instant};

use super::median;
use crate::docker::{self, docker};
use crate::flags;
use crate::run::Context;

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
    ctx.ui.out("");
    ctx.ui.out(format_args!("deploy image size: {:.2} MB (target <= 25 MB)", size as f64 / 1e6));
    ctx.ui.out(format_args!(
        "start -> first 200 on /health: {first_ms:.0} ms median of {} (target <= 200 ms); \
         of which `docker run -d` itself: {run_ms:.0} ms, the app after it: {:.0} ms",
        answered.len(),
        first_ms - run_ms
    ));
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
