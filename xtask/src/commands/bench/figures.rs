//! The figures of `bench test-cache`, one builder each, and their table.

use super::median;
use crate::docker::Builder;
use crate::run::ui::{Ui, human_bytes};

/// The figures of one builder.
#[derive(Default)]
pub struct Figures {
    pub seed_fresh: Vec<f64>,
    pub ours_fresh: Vec<f64>,
    pub ours_fresh_compiled: Vec<usize>,
    pub build_after: Vec<f64>,
    pub build_after_compiled: Vec<usize>,
    pub seed_warm: Vec<f64>,
    pub ours_warm: Vec<f64>,
    pub bare_warm: Vec<f64>,
    pub tarball: u64,
}

impl Figures {
    /// The table: per builder, each scenario's medians, ratio and target.
    pub fn print(ui: &Ui, results: &[(Builder, Figures)]) {
        ui.out("");
        ui.out(format_args!(
            "{:<9} {:<40} {:>9} {:>9} {:>7} {:>8}",
            "builder", "scenario (median seconds)", "baseline", "ours", "ratio", "target"
        ));
        for (builder, f) in results {
            let row = |scenario: &str, baseline: f64, ours: f64, target: &str| {
                ui.out(format_args!(
                    "{:<9} {scenario:<40} {baseline:>9.2} {ours:>9.2} {:>7.2} {target:>8}",
                    format!("{builder:?}"),
                    ours / baseline
                ));
            };
            let (seed_a, ours_a) = (median(&f.seed_fresh), median(&f.ours_fresh));
            let (seed_b, ours_b, bare_b) =
                (median(&f.seed_warm), median(&f.ours_warm), median(&f.bare_warm));
            row("(a) fresh daemon + tarball vs seed", seed_a, ours_a, "<= 0.35");
            row("(b) daemon holds image vs seed", seed_b, ours_b, "");
            row("(b) vs bare `docker run --rm`", bare_b, ours_b, "<= 1.30");
            ui.out(format_args!(
                "{:<9} (a) crates compiled by test: {:?} (target 0); by build after it: {:?} in \
                 {:.1}s (target 1); tarball {}",
                format!("{builder:?}"),
                f.ours_fresh_compiled,
                f.build_after_compiled,
                median(&f.build_after),
                human_bytes(f.tarball),
            ));
        }
    }
}
