//! One `Stats` of atomics, updated by the workers and read by whoever reports progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hbcp_store::timed::{Op, OpLatencies};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Live counters of a job.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// Files found by the listing (selected).
    pub files_listed: AtomicU64,
    /// Bytes found by the listing (selected).
    pub bytes_listed: AtomicU64,
    /// True once the listing has ended.
    pub listing_done: AtomicBool,
    /// Files copied (committed at the target) in this run.
    pub files_copied: AtomicU64,
    /// Bytes written to the target in this run.
    pub bytes_copied: AtomicU64,
    /// Of those, bytes the target's service copied from the source itself (`--s2s`): they did
    /// not pass through hbcp. `bytes_copied - bytes_server_side` went through the client.
    pub bytes_server_side: AtomicU64,
    /// Files already at the target (resume or identical), not sent again.
    pub files_skipped: AtomicU64,
    /// Bytes of those files, plus ranges already durable from an earlier run.
    pub bytes_skipped: AtomicU64,
    /// Bytes checked by the verifier.
    pub bytes_verified: AtomicU64,
    /// Files checked by the verifier.
    pub files_verified: AtomicU64,
    /// Requests in flight.
    pub in_flight: AtomicU64,
    /// Retried requests.
    pub retries: AtomicU64,
    /// Files that failed.
    pub files_failed: AtomicU64,
    /// Tasks executed.
    pub tasks: AtomicU64,
    /// The most bytes of range buffers held at once (the `--max-memory` budget's peak).
    pub buffer_peak: AtomicU64,
    /// Throttle answers (HTTP 429, 503) the stores received during the copy, every one of
    /// which the adaptive concurrency saw.
    pub throttles: AtomicU64,
    /// Adaptive concurrency: the limit of requests in flight it settled on.
    pub concurrency_final: AtomicU64,
    /// Adaptive concurrency: the highest limit it reached.
    pub concurrency_peak: AtomicU64,
    /// Request latencies by operation (every store call of the run, timed by `Timed`).
    ops: Arc<OpLatencies>,
    timeline: Mutex<Vec<Sample>>,
}

/// One point of the throughput timeline (taken once a second by the reporter).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the start.
    pub t: f64,
    /// Bytes copied so far.
    pub bytes: u64,
    /// Bytes verified so far.
    pub verified: u64,
    /// Requests in flight at that moment.
    pub in_flight: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Latency {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// Latencies of one operation, in milliseconds, and their distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct OpLatency {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
    /// The distribution: requests per bucket of doubling width, from the first bucket with a
    /// request to the last (empty buckets in between kept, so they draw as a histogram).
    #[serde(default)]
    pub buckets: Vec<Bucket>,
}

/// Requests whose latency is at most `le_ms` (and above the previous bucket's bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Bucket {
    /// Upper bound, milliseconds.
    pub le_ms: f64,
    /// Requests in the bucket.
    pub count: u64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl OpLatency {
    /// Percentiles and buckets of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let mut buckets = Vec::new();
        for v in h.iter_log(1, 2.0) {
            buckets.push(Bucket {
                le_ms: ms(v.value_iterated_to()),
                count: v.count_since_last_iteration(),
            });
        }
        // Trim the empty buckets before the first request.
        let first = buckets.iter().position(|b| b.count > 0).unwrap_or(0);
        buckets.drain(..first);
        OpLatency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            buckets,
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            files_listed: AtomicU64::new(0),
            bytes_listed: AtomicU64::new(0),
            listing_done: AtomicBool::new(false),
            files_copied: AtomicU64::new(0),
            bytes_copied: AtomicU64::new(0),
            bytes_server_side: AtomicU64::new(0),
            files_skipped: AtomicU64::new(0),
            bytes_skipped: AtomicU64::new(0),
            bytes_verified: AtomicU64::new(0),
            files_verified: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            files_failed: AtomicU64::new(0),
            tasks: AtomicU64::new(0),
            buffer_peak: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            concurrency_final: AtomicU64::new(0),
            concurrency_peak: AtomicU64::new(0),
            ops: Arc::new(OpLatencies::default()),
            timeline: Mutex::new(Vec::new()),
        }
    }
}

impl Stats {
    /// Time since the job started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The latency histograms the run's stores are timed into
    /// (`hbcp_store::timed::Timed::new(store, stats.ops())`).
    pub fn ops(&self) -> Arc<OpLatencies> {
        self.ops.clone()
    }

    /// Latency percentiles of every request so far.
    pub fn latency(&self) -> Latency {
        let h = self.ops.all();
        Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// Latencies of each operation that was requested at least once, by name.
    pub fn latency_by_op(&self) -> BTreeMap<String, OpLatency> {
        Op::ALL
            .iter()
            .filter_map(|op| {
                let h = self.ops.get(*op);
                (!h.is_empty()).then(|| (op.name().to_string(), OpLatency::of(&h)))
            })
            .collect()
    }

    /// Record a point of the timeline.
    pub fn sample(&self) -> Sample {
        let s = Sample {
            t: self.elapsed().as_secs_f64(),
            bytes: self.bytes_copied.load(Relaxed),
            verified: self.bytes_verified.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
        };
        let mut tl = self.timeline.lock().unwrap();
        // Keep the timeline bounded: past 3600 points, keep every other one.
        if tl.len() >= 3600 {
            let kept: Vec<Sample> = tl.iter().step_by(2).copied().collect();
            *tl = kept;
        }
        tl.push(s);
        s
    }

    /// The timeline so far.
    pub fn timeline(&self) -> Vec<Sample> {
        self.timeline.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operations_percentiles_are_ordered_and_its_buckets_hold_every_request() {
        let lat = OpLatencies::default();
        for _ in 0..90 {
            lat.record(Op::Get, Duration::from_millis(1));
        }
        for _ in 0..10 {
            lat.record(Op::Get, Duration::from_millis(40));
        }
        lat.record(Op::Put, Duration::from_micros(300));
        let s = Stats {
            ops: Arc::new(lat),
            ..Stats::default()
        };
        let by = s.latency_by_op();
        assert_eq!(by.keys().collect::<Vec<_>>(), ["get", "put"]);
        let g = &by["get"];
        assert_eq!(g.count, 100);
        assert!((g.p50 - 1.0).abs() < 0.01, "{g:?}");
        assert!((g.p99 - 40.0).abs() < 0.1, "{g:?}");
        assert!(g.p50 <= g.p90 && g.p90 <= g.p99 && g.p99 <= g.p999 && g.p999 <= g.max);
        assert_eq!(g.buckets.iter().map(|b| b.count).sum::<u64>(), 100);
        assert!(g.buckets.windows(2).all(|w| w[0].le_ms < w[1].le_ms));
        assert!(g.buckets[0].count > 0 && g.buckets.last().unwrap().count > 0);
        // Every request of every operation, in the compatible all-requests block.
        assert_eq!(s.latency().count, 101);
    }
}
