//! `cargo xtask`: parses the command line and dispatches; the work lives in the library.

use std::process::ExitCode;

use clap::Parser;
use xtask::commands::{
    bench, build, deploy, env, history, lock, logs, rollback, status, swap, test, versions,
};
use xtask::docker::workspace_root;
use xtask::flags::{Bench, Command, EnvCommand, Xtask};
use xtask::run::interrupt::Interrupt;
use xtask::run::ui::Ui;
use xtask::run::{Context, Env, exit};

fn main() -> ExitCode {
    let flags = Xtask::parse();
    let ui = Ui::from_env();
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(err) => {
            ui.error(&err);
            return ExitCode::FAILURE;
        }
    };
    let code = match run(flags, ui.clone(), interrupt.clone()) {
        Ok(()) => 0,
        Err(err) => {
            if interrupt.is_set() {
                // Descendants that got the same signal (docker's buildx plugin) finish
                // printing first, so that the last line of the log is ours.
                interrupt.let_descendants_finish();
            }
            ui.error(&err);
            exit::code(&err)
        }
    };
    ExitCode::from(u8::try_from(interrupt.exit_code(code)).unwrap_or(1))
}

fn run(flags: Xtask, ui: Ui, interrupt: Interrupt) -> anyhow::Result<()> {
    let ctx = Context {
        root: workspace_root(flags.project_dir.as_deref())?,
        env: Env::from_process(),
        ui,
        interrupt,
    };
    match flags.command {
        Command::Test(flags) => test::run(&ctx, &flags),
        Command::Build(flags) => build::run(&ctx, &flags),
        Command::Deploy(flags) if flags.local => deploy::local::run(&ctx, &flags),
        Command::Deploy(flags) if flags.blue_green => deploy::blue_green::run(&ctx, &flags),
        Command::Deploy(flags) => deploy::run(&ctx, &flags),
        Command::Env(EnvCommand::Create(flags)) => env::create::run(&ctx, &flags),
        Command::Env(EnvCommand::Terminate(flags)) => env::terminate::run(&ctx, &flags),
        Command::Swap(flags) => swap::run(&ctx, &flags),
        Command::Status(flags) => status::run(&ctx, &flags),
        Command::Rollback(flags) => rollback::run(&ctx, &flags),
        Command::Versions(flags) => versions::run(&ctx, &flags),
        Command::History(flags) => history::run(&ctx, &flags),
        Command::Logs(flags) => logs::run(&ctx, &flags),
        Command::Lock(command) => lock::run(&ctx, &command),
        Command::Bench(Bench::TestCache(flags)) => bench::test_cache(&ctx, &flags),
        Command::Bench(Bench::Image(flags)) => bench::image(&ctx, &flags),
        Command::Bench(Bench::Xtask(flags)) => bench::xtask(&ctx, &flags),
    }
}
