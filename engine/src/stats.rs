//! One `Stats` of atomics, updated by the workers and read by whoever reports progress.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

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
    /// Adaptive concurrency: the limit of requests in flight it settled on.
    pub concurrency_final: AtomicU64,
    /// Adaptive concurrency: the highest limit it reached.
    pub concurrency_peak: AtomicU64,
    latency: Mutex<Histogram<u64>>,
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

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            files_listed: AtomicU64::new(0),
            bytes_listed: AtomicU64::new(0),
            listing_done: AtomicBool::new(false),
            files_copied: AtomicU64::new(0),
            bytes_copied: AtomicU64::new(0),
            files_skipped: AtomicU64::new(0),
            bytes_skipped: AtomicU64::new(0),
            bytes_verified: AtomicU64::new(0),
            files_verified: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            files_failed: AtomicU64::new(0),
            tasks: AtomicU64::new(0),
            buffer_peak: AtomicU64::new(0),
            concurrency_final: AtomicU64::new(0),
            concurrency_peak: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
            timeline: Mutex::new(Vec::new()),
        }
    }
}

/// A histogram of microseconds from 1 µs to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

impl Stats {
    /// Time since the job started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Merge a worker's latency histogram.
    pub fn merge_latency(&self, h: &Histogram<u64>) {
        let _ = self.latency.lock().unwrap().add(h);
    }

    /// Latency percentiles so far.
    pub fn latency(&self) -> Latency {
        let h = self.latency.lock().unwrap();
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
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
