//! What the stores' retry policy saw, brought into the copy: every throttle answer a store
//! received (retried or not) cuts the adaptive concurrency as it is noticed, and the stores'
//! retries count in the report's `retries`. The stores retry their own requests
//! (`hbcp_store::retry`); the engine only reads their [`Tally`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use hbcp_store::Store;
use hbcp_store::retry::Tally;

use crate::adaptive::Gate;
use crate::stats::Stats;

/// The tallies of a copy's source and target, and how much of them was already taken in.
pub(super) struct Seen<'a> {
    tallies: Vec<&'a Tally>,
    throttles: AtomicU64,
    retries: AtomicU64,
}

impl<'a> Seen<'a> {
    /// From now on: what the stores saw before (a planner's listing) is not this copy's.
    pub(super) fn new(src: &'a dyn Store, dst: &'a dyn Store) -> Self {
        let mut tallies: Vec<&Tally> = Vec::new();
        for t in [src.retry_tally(), dst.retry_tally()].into_iter().flatten() {
            if !tallies.iter().any(|s| std::ptr::eq(*s, t)) {
                tallies.push(t);
            }
        }
        let (throttles, retries) = sums(&tallies);
        Seen {
            tallies,
            throttles: AtomicU64::new(throttles),
            retries: AtomicU64::new(retries),
        }
    }

    /// Whether the stores keep a tally (then a throttle is counted there, not by the caller).
    pub(super) fn tallied(&self) -> bool {
        !self.tallies.is_empty()
    }

    /// Take in what the stores saw since the last call: one cut-worthy signal to the gate per
    /// throttle answer (the gate cuts at most once per half second), the retries into `stats`.
    pub(super) fn absorb(&self, gate: &Gate, stats: &Stats) {
        if self.tallies.is_empty() {
            return;
        }
        let (throttles, retries) = sums(&self.tallies);
        let before = self.throttles.fetch_max(throttles, Relaxed);
        if throttles > before {
            let now = Instant::now();
            for _ in before..throttles {
                gate.throttled_at(now);
            }
        }
        let before = self.retries.fetch_max(retries, Relaxed);
        if retries > before {
            stats.retries.fetch_add(retries - before, Relaxed);
        }
    }
}

fn sums(tallies: &[&Tally]) -> (u64, u64) {
    tallies
        .iter()
        .fold((0, 0), |(t, r), x| (t + x.throttles(), r + x.retries()))
}
