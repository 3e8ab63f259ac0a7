//! `cargo xtask`: parses the command line and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::Parser;
use xtask::commands::release::{create, deploy};
use xtask::commands::{bench, build, local, rollback, status, terminate, test, versions};
use xtask::flags::{Bench, Command, EnvCommand, Xtask};
use xtask::run::interrupt::Interrupt;
use xtask::run::ui::Ui;
use xtask::{Context, exit};

fn main() -> ExitCode {
    let flags = Xtask::parse();
    let ui = Ui::from_env();
    match run(flags, ui.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if xtask::exit_code(&err) == exit::INTERRUPTED {
                // Children that got the same Ctrl-C (and theirs: docker's buildx plugin)
                // finish printing first, so that the last line of the log is ours.
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            ui.error(&err);
            ExitCode::from(u8::try_from(xtask::exit_code(&err)).unwrap_or(1))
        }
    }
}

fn run(flags: Xtask, ui: Ui) -> anyhow::Result<()> {
    let ctx = Context {
        root: xtask::project_root(flags.project_dir.as_deref())?,
        env: xtask::Env::from_process(),
        ui,
        interrupt: Interrupt::install()?,
    };
    match flags.command {
        Command::Test(flags) => test::run(&ctx, &flags),
        Command::Build(flags) => build::run(&ctx, &flags),
        Command::Deploy(flags) if flags.local => local::run(&ctx, &flags),
        Command::Deploy(flags) => deploy::run(&ctx, &flags),
        Command::Env(EnvCommand::Create(flags)) => create::run(&ctx, &flags),
        Command::Env(EnvCommand::Terminate(flags)) => terminate::run(&ctx, &flags),
        Command::Status(flags) => status::run(&ctx, &flags),
        Command::Rollback(flags) => rollback::run(&ctx, &flags),
        Command::Versions(flags) => versions::run(&ctx, &flags),
        Command::Bench(Bench::TestCache(flags)) => bench::test_cache(&ctx, &flags),
        Command::Bench(Bench::Image(flags)) => bench::image(&ctx, &flags),
        Command::Bench(Bench::Xtask(flags)) => bench::xtask(&ctx, &flags),
    }
}
