//! Commands whose bytes we carry: a file fed to a command's stdin, or its stdout written to
//! a file, through a pipe, so that progress can be shown (`docker load`, `docker save`).
//! Either way the command echoes itself, Ctrl-C ends it (as an interruption, whatever it
//! exited with), and its captured output comes back for the caller to judge.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::Output;

use anyhow::{Context as _, anyhow};

use crate::run::Context;
use crate::run::cmd::Cmd;
use crate::run::interrupt::Interrupted;
use crate::run::ui::Progress;

const CHUNK: usize = 1 << 20;

/// Runs `cmd` with the file at `path` on its stdin, `label` naming the progress line.
pub fn feed(ctx: &Context, cmd: &Cmd, path: &Path, label: &str) -> anyhow::Result<Output> {
    ctx.ui.echo(format_args!("{cmd} < {}", path.display()));
    let total = path.metadata().map(|m| m.len()).ok();
    let mut source = BufReader::with_capacity(CHUNK, File::open(path)?);
    let (reader, mut writer) = os_pipe::pipe().context("create a pipe")?;
    let handle = cmd
        .expression()
        .stdin_file(reader)
        .stdout_capture()
        .stderr_capture()
        .start()
        .map_err(|err| cmd.spawn_error(err))?;
    let mut progress = ctx.ui.progress(label, total);
    let mut buf = vec![0; CHUNK];
    let fed: anyhow::Result<()> = loop {
        ctx.interrupt.check(label)?;
        let n = match source.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(err) => break Err(anyhow!(err).context(format!("read {}", path.display()))),
        };
        // A write error means the command stopped reading: its own message says why.
        if writer.write_all(&buf[..n]).is_err() {
            break Ok(());
        }
        progress.add(n as u64);
    };
    drop(writer);
    if let Err(err) = fed {
        let _ = handle.kill();
        return Err(ended(ctx, progress, err, label));
    }
    let output = handle.wait().with_context(|| format!("wait for {label}"))?.clone();
    finish(ctx, progress, output, label)
}

/// Runs `cmd` with its stdout written to `into` (shown as `shown`), with progress towards
/// `size_hint` bytes.
pub fn drain(
    ctx: &Context,
    cmd: &Cmd,
    into: &mut File,
    shown: &Path,
    label: &str,
    size_hint: Option<u64>,
) -> anyhow::Result<Output> {
    ctx.ui.echo(format_args!("{cmd} > {}", shown.display()));
    let mut reader = cmd
        .expression()
        .stderr_capture()
        .unchecked()
        .reader()
        .map_err(|err| cmd.spawn_error(err))?;
    let mut progress = ctx.ui.progress(label, size_hint);
    let mut buf = vec![0; CHUNK];
    let copied: anyhow::Result<()> = loop {
        match reader.read(&mut buf) {
            _ if ctx.interrupt.is_set() => break Err(Interrupted { during: label.into() }.into()),
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(err) = into.write_all(&buf[..n]) {
                    break Err(anyhow!(err).context(format!("write {}", shown.display())));
                }
                progress.add(n as u64);
            }
            Err(err) => break Err(anyhow!(err).context(format!("read from {label}"))),
        }
    };
    if let Err(err) = copied {
        let _ = reader.kill();
        return Err(ended(ctx, progress, err, label));
    }
    // At the end of its output the reader has already waited for the command.
    let output = reader.try_wait().with_context(|| format!("wait for {label}"))?.cloned();
    let output =
        output.with_context(|| format!("{label} had not exited at the end of its output"))?;
    finish(ctx, progress, output, label)
}

/// A transfer that stopped: an interruption when Ctrl-C came, else its own error.
fn ended(ctx: &Context, progress: Progress, err: anyhow::Error, label: &str) -> anyhow::Error {
    progress.abandon();
    if ctx.interrupt.is_set() { Interrupted { during: label.into() }.into() } else { err }
}

/// The command's output once its bytes are through: an interruption when Ctrl-C stopped
/// it; the progress line ends with a summary only when it succeeded.
fn finish(
    ctx: &Context,
    progress: Progress,
    output: Output,
    label: &str,
) -> anyhow::Result<Output> {
    if ctx.interrupt.explains(&output.status) {
        progress.abandon();
        return Err(Interrupted { during: label.into() }.into());
    }
    if output.status.success() {
        progress.finish()
    } else {
        progress.abandon()
    }
    Ok(output)
}
