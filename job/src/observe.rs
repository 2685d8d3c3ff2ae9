//! How a run shows its progress: the job calls an [`Observer`] (the binary's implementation
//! draws a bar, prints stats lines or JSON lines) and never draws anything itself.
//!
//! The observer pulls rather than being pushed to: [`Observer::watch`] hands it the run's live
//! counters ([`Stats`], atomics the listing, the copy and the verifier update), which it reads
//! at its own pace (a bar redraws 10 times a second, a log line every `--stats-interval`). The
//! workers never call out per file or per byte, so an observer cannot slow the copy.
//!
//! What the counters hold, by phase:
//! - listing: `files_listed`, `bytes_listed`, `listing_done` (the plan's totals once done);
//! - copy: `bytes_copied`, `files_copied`, `files_skipped`, `bytes_skipped`, `retries`,
//!   `files_failed`, the request latencies and the throughput timeline;
//! - verify: `files_verified`, `bytes_verified` (the verifier's progress);
//!   the run's end is the drop of the [`Watch`], after which the job prints its summary and
//!   writes the report.

use std::sync::Arc;

pub use hbcp_engine::Stats;

use crate::spec::ProgressMode;

/// The phase a run is in, as a display names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listing the source and copying (the listing's counts, then bytes and files).
    Copy,
    /// Verifying the target (files and bytes verified).
    Verify,
}

impl Phase {
    /// The phase's name as shown (`copy`, `verify`).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Copy => "copy",
            Phase::Verify => "verify",
        }
    }
}

/// Something that shows a run's progress.
pub trait Observer: Send + Sync {
    /// A run starts, in [`Phase::Copy`]: show `stats` in `mode` until the returned [`Watch`]
    /// is dropped (the display is cleared then, before the run prints its summary).
    fn watch(&self, stats: Arc<Stats>, mode: ProgressMode) -> Box<dyn Watch>;
}

/// A running display of one run's counters; dropping it stops and clears the display.
pub trait Watch: Send {
    /// The run moved on to `phase`.
    fn phase(&self, phase: Phase);
}

/// An observer that shows nothing (a library caller that wants no display).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

struct QuietWatch;

impl Watch for QuietWatch {
    fn phase(&self, _phase: Phase) {}
}

impl Observer for Quiet {
    fn watch(&self, _stats: Arc<Stats>, _mode: ProgressMode) -> Box<dyn Watch> {
        Box::new(QuietWatch)
    }
}
