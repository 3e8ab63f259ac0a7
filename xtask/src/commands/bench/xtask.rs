//! `bench xtask`: a cold debug build of the xtask (wall and CPU time), and a warm
//! `cargo xtask --help`.

use std::fs::{self, File};
use std::time::Instant;

use anyhow::Context as _;

use super::{children_cpu, median, remove_dir};
use crate::flags;
use crate::run::Context;
use crate::run::cmd::Cmd;

pub fn xtask(ctx: &Context, flags: &flags::BenchXtask) -> anyhow::Result<()> {
    let dir = ctx.root.join("target").join("bench");
    let cold = dir.join("cold-xtask-target");
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log_path = dir.join("xtask.log");
    File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;
    let cargo = ctx.env.get("CARGO").unwrap_or("cargo").to_owned();

    ctx.ui.step("cold debug build of xtask in a fresh target directory");
    remove_dir(&cold)?;
    let build = Cmd::new(&cargo).args(["build", "--package", "xtask", "--target-dir"]).arg(&cold);
    let cpu_before = children_cpu();
    let started = Instant::now();
    build
        .dir(&ctx.root)
        .log_to(&log_path)
        .run(ctx)
        .with_context(|| format!("see {}", log_path.display()))?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = (children_cpu() - cpu_before).as_secs_f64();
    remove_dir(&cold)?;

    ctx.ui.step(format_args!("warm `cargo xtask --help`, {} runs", flags.help_rounds));
    let help = Cmd::new(&cargo).args(["xtask", "--help"]).dir(&ctx.root).log_to(&log_path);
    help.run(ctx)?;
    let mut runs = Vec::new();
    for _ in 0..flags.help_rounds {
        let started = Instant::now();
        help.run(ctx)?;
        runs.push(started.elapsed().as_secs_f64());
    }
    ctx.ui.out("");
    ctx.ui.out(format_args!("cold debug build of xtask: {wall:.1} s wall, {cpu:.1} s CPU"));
    ctx.ui.out(format_args!(
        "warm `cargo xtask --help`: {:.0} ms median of {}",
        median(&runs) * 1000.0,
        runs.len()
    ));
    Ok(())
}
