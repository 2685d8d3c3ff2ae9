//! The recovery point a continuous sync can promise, measured as DR planners mean it.
//!
//! The first cycle of a `sync --watch` copies what the target lacks — often the whole root —
//! and is the baseline: reported apart, never counted in the lag figures. After it, a file's
//! lag runs from the moment the sync could first know of it — the start of the first listing
//! that saw it at the source, or its modification time if later (a file written while the
//! listing ran) — to the moment it was verified at the target. A file that failed keeps the
//! time it was first seen until a later cycle verifies it. The RPO a run can promise is its worst
//! lag after the baseline plus the interval (a file written just after a listing waits one
//! interval before the next one sees it).
//!
//! Time comes from a [`Clock`], so that a test can run cycles at moments it chooses.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Where the time comes from: seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now.
    fn now_s(&self) -> f64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_s(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// Replication lag of the files a cycle wrote, from when they could first be known at the
/// source to their verified presence at the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Lag {
    /// Files measured.
    pub files: u64,
    /// Median, seconds.
    pub p50_s: f64,
    /// 99th percentile, seconds.
    pub p99_s: f64,
    /// Maximum, seconds.
    pub max_s: f64,
}

/// The lags of a cycle's files, in a few KiB at any file count: a histogram of milliseconds
/// (3 significant digits: percentiles within 0.1%) and the exact maximum.
pub(crate) struct LagMeter {
    ms: hdrhistogram::Histogram<u64>,
    max_s: f64,
}

impl Default for LagMeter {
    fn default() -> Self {
        LagMeter {
            // Up to ten years of lag; fixed bounds (no resizing while recording).
            ms: hdrhistogram::Histogram::new_with_bounds(1, 10 * 365 * 86_400_000, 3)
                .expect("bounds and 3 significant digits are valid"),
            max_s: 0.0,
        }
    }
}

impl LagMeter {
    pub(crate) fn record(&mut self, s: f64) {
        let s = s.max(0.0);
        self.ms.saturating_record((s * 1000.0).round() as u64);
        self.max_s = self.max_s.max(s);
    }

    pub(crate) fn lag(&self) -> Lag {
        if self.ms.is_empty() {
            return Lag::default();
        }
        let q = |p: f64| {
            let v = self.ms.median_equivalent(self.ms.value_at_quantile(p));
            (v as f64 / 1000.0).min(self.max_s)
        };
        Lag {
            files: self.ms.len(),
            p50_s: q(0.5),
            p99_s: q(0.99),
            max_s: self.max_s,
        }
    }
}

/// One cycle being measured: opened when its listing starts ([`Rpo::listing_starts`]).
pub(crate) struct CycleLag {
    /// The baseline (first) cycle.
    pub(crate) baseline: bool,
    seen_at: f64,
    verified_at: f64,
    meter: LagMeter,
    failed: HashMap<String, f64>,
}

/// The lags of a sync run's cycles, and the recovery point it can promise.
pub(crate) struct Rpo<C: Clock> {
    clock: C,
    cycles: u64,
    /// Files seen but not yet verified at the target: when first seen.
    pending: HashMap<String, f64>,
    /// The worst lag after the baseline, and the cycles it covers.
    worst_s: f64,
    measured: u64,
}

impl<C: Clock> Rpo<C> {
    pub(crate) fn new(clock: C) -> Self {
        Rpo {
            clock,
            cycles: 0,
            pending: HashMap::new(),
            worst_s: 0.0,
            measured: 0,
        }
    }

    /// A cycle starts listing the source: what it finds is known from now.
    pub(crate) fn listing_starts(&mut self) -> CycleLag {
        self.cycles += 1;
        CycleLag {
            baseline: self.cycles == 1,
            seen_at: self.clock.now_s(),
            verified_at: f64::NAN,
            meter: LagMeter::default(),
            failed: HashMap::new(),
        }
    }

    /// The cycle's files are verified (or found not to be): the moment the written ones are
    /// proven at the target.
    pub(crate) fn verified(&self, c: &mut CycleLag) {
        c.verified_at = self.clock.now_s();
    }

    /// `key` was written by the cycle but failed (or did not verify): still at risk since it
    /// was first seen.
    pub(crate) fn failed(&self, c: &mut CycleLag, key: &str) {
        let first = self.pending.get(key).copied().unwrap_or(c.seen_at);
        c.failed.insert(key.to_string(), first);
    }

    /// Whether `key` failed in the cycle (its lag is not measured yet).
    pub(crate) fn has_failed(&self, c: &CycleLag, key: &str) -> bool {
        c.failed.contains_key(key)
    }

    /// `key`, modified at `mtime` at the source, was written by the cycle and verified.
    pub(crate) fn written(&self, c: &mut CycleLag, key: &str, mtime: Option<f64>) {
        let seen = self.pending.get(key).copied().unwrap_or(c.seen_at);
        let from = mtime.map_or(seen, |m| m.max(seen));
        c.meter.record(c.verified_at - from);
    }

    /// The cycle is over: its lag figures (of the baseline: measured, not counted).
    pub(crate) fn finish(&mut self, c: CycleLag) -> Lag {
        let lag = c.meter.lag();
        if !c.baseline {
            self.worst_s = self.worst_s.max(lag.max_s);
            self.measured += 1;
        }
        // What failed now waits for a later cycle, with the time it was first seen; the rest
        // is verified, or gone from the source.
        self.pending = c.failed;
        lag
    }

    /// The worst lag after the baseline, if a cycle after it ran.
    pub(crate) fn worst_s(&self) -> Option<f64> {
        (self.measured > 0).then_some(self.worst_s)
    }

    /// The recovery point the run can promise at `interval_s` between cycles.
    pub(crate) fn promise_s(&self, interval_s: f64) -> Option<f64> {
        self.worst_s().map(|w| w + interval_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock the test sets.
    #[derive(Default)]
    struct Manual(Mutex<f64>);

    impl Manual {
        fn set(&self, t: f64) {
            *self.0.lock().unwrap() = t;
        }
    }

    impl Clock for &Manual {
        fn now_s(&self) -> f64 {
            *self.0.lock().unwrap()
        }
    }

    #[test]
    fn the_baseline_is_apart_and_lag_runs_from_first_seen_or_mtime_to_verified() {
        let clock = Manual::default();
        let mut rpo = Rpo::new(&clock);
        // Cycle 1, the baseline: a root whose oldest HFile is 30 days old, copied in 2 hours.
        clock.set(1_000_000.0);
        let mut c = rpo.listing_starts();
        assert!(c.baseline);
        clock.set(1_007_200.0);
        rpo.verified(&mut c);
        rpo.written(&mut c, "data/old", Some(1_000_000.0 - 30.0 * 86_400.0));
        rpo.written(&mut c, "data/new", Some(999_999.0));
        rpo.failed(&mut c, "data/flaky");
        let l1 = rpo.finish(c);
        // Measured from the listing (not the 30-day-old mtime), and not counted.
        assert_eq!((l1.files, l1.max_s), (2, 7_200.0));
        assert_eq!(rpo.worst_s(), None);
        assert_eq!(rpo.promise_s(60.0), None);

        // Cycle 2, 60 s later: a flush seen by this listing (mtime before it), one written
        // while the listing ran (mtime after its start), and the file that failed in cycle 1.
        clock.set(1_007_260.0);
        let mut c = rpo.listing_starts();
        assert!(!c.baseline);
        clock.set(1_007_261.5);
        rpo.verified(&mut c);
        rpo.written(&mut c, "data/flush1", Some(1_007_230.0));
        rpo.written(&mut c, "data/during", Some(1_007_260.5));
        rpo.written(&mut c, "data/flaky", Some(999_000.0));
        let l2 = rpo.finish(c);
        // 1.5 s, 1.0 s, and 7,261.5 s (seen by cycle 1's listing, verified now).
        assert_eq!(l2.files, 3);
        assert_eq!(l2.p50_s, 1.5);
        assert_eq!(l2.max_s, 7_261.5);
        assert_eq!(rpo.worst_s(), Some(7_261.5));

        // Cycle 3: one flush, 0.75 s; the failed file is no longer pending.
        clock.set(1_007_330.0);
        let mut c = rpo.listing_starts();
        clock.set(1_007_330.75);
        rpo.verified(&mut c);
        rpo.written(&mut c, "data/flush2", Some(1_007_300.0));
        rpo.written(&mut c, "data/flaky", Some(999_000.0));
        let l3 = rpo.finish(c);
        assert_eq!(
            l3,
            Lag {
                files: 2,
                p50_s: 0.75,
                p99_s: 0.75,
                max_s: 0.75
            }
        );
        assert_eq!(rpo.worst_s(), Some(7_261.5));
        assert_eq!(rpo.promise_s(60.0), Some(7_321.5));
    }

    #[test]
    fn after_a_clean_baseline_the_promise_is_the_worst_cycle_plus_the_interval() {
        let clock = Manual::default();
        let mut rpo = Rpo::new(&clock);
        for (start, took, files) in [(0.0, 500.0, 1000), (560.0, 2.0, 3), (622.0, 1.25, 2)] {
            clock.set(start);
            let mut c = rpo.listing_starts();
            clock.set(start + took);
            rpo.verified(&mut c);
            for i in 0..files {
                rpo.written(&mut c, &format!("f{i}"), Some(start - 10.0));
            }
            assert!(!rpo.has_failed(&c, "f0"));
            let baseline = c.baseline;
            let l = rpo.finish(c);
            assert_eq!((l.files, l.max_s), (files, took));
            if !baseline {
                assert_eq!((l.p50_s, l.p99_s), (took, took));
            }
        }
        assert_eq!(rpo.worst_s(), Some(2.0));
        assert_eq!(rpo.promise_s(60.0), Some(62.0));
    }

    #[test]
    fn percentiles_of_a_meter() {
        let mut m = LagMeter::default();
        for s in [3.0, 1.0, 2.0, -1.0] {
            m.record(s);
        }
        let l = m.lag();
        assert_eq!((l.files, l.max_s), (4, 3.0));
        assert!((l.p50_s - 1.0).abs() < 0.002, "{l:?}");
        assert!((l.p99_s - 3.0).abs() < 0.004, "{l:?}");
        // A day and a millisecond apart: both within 0.1%.
        let mut m = LagMeter::default();
        for _ in 0..99 {
            m.record(0.001);
        }
        m.record(86_400.0);
        let l = m.lag();
        assert!((l.p50_s - 0.001).abs() < 1e-6, "{l:?}");
        assert_eq!(l.max_s, 86_400.0);
        assert_eq!(LagMeter::default().lag().files, 0);
    }
}
