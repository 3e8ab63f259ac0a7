//! `cargo xtask bench`: the figures behind the performance targets, measured side by side
//! in one run and printed as a table. Benchmarks, not tests: nothing here asserts a time.

mod figures;
mod image;
mod test_cache;
mod xtask;

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::run::Context;

pub use image::image;
pub use test_cache::test_cache;
pub use xtask::xtask;

/// What one timed run took, and how many crates it compiled.
struct Timed {
    seconds: f64,
    compiled: usize,
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
