//! Adaptive concurrency: how many requests may be in flight against the endpoints right now.
//!
//! A fixed concurrency either underuses a link or gets throttled. The [`Gate`] starts below the
//! number of workers and is steered by [`Controller::tick`], called about once a second with
//! the bytes moved so far: while all permits are busy and throughput still grows, it lets one
//! more batch of requests in; when a step up brought nothing, it steps back and settles, and
//! probes again later; a throttling answer (HTTP 503 ServerBusy / 429 / SlowDown) cuts it by a
//! quarter at once (at most once per half second, so one burst of 503s is one cut). Time is
//! passed in, so the arithmetic is tested exactly.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Permits for requests in flight, with a limit that moves.
#[derive(Debug)]
pub struct Gate {
    max: usize,
    min: usize,
    limit: AtomicUsize,
    in_use: Mutex<usize>,
    freed: Condvar,
    /// Throttling answers seen.
    throttled: AtomicU64,
    /// Acquires that had to wait for a permit (the limit was what held the copy back).
    waited: AtomicU64,
    last_cut: Mutex<Option<Instant>>,
    /// The highest limit used so far.
    peak: AtomicUsize,
}

/// A permit; given back when dropped.
#[derive(Debug)]
pub struct Permit<'a>(&'a Gate);

impl Gate {
    /// A gate for `max` workers, starting at `start` permits (at least `min`).
    pub fn new(max: usize, start: usize) -> Self {
        let max = max.max(1);
        let min = max.min(2);
        let start = start.clamp(min, max);
        Gate {
            max,
            min,
            limit: AtomicUsize::new(start),
            in_use: Mutex::new(0),
            freed: Condvar::new(),
            throttled: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            last_cut: Mutex::new(None),
            peak: AtomicUsize::new(start),
        }
    }

    /// Wait for a permit.
    pub fn acquire(&self) -> Permit<'_> {
        let mut n = self.in_use.lock().unwrap();
        if *n >= self.limit.load(Relaxed) {
            self.waited.fetch_add(1, Relaxed);
        }
        while *n >= self.limit.load(Relaxed) {
            n = self.freed.wait(n).unwrap();
        }
        *n += 1;
        Permit(self)
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit.load(Relaxed)
    }

    /// The highest limit used so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Relaxed)
    }

    /// Acquires that had to wait so far.
    pub fn waits(&self) -> u64 {
        self.waited.load(Relaxed)
    }

    /// Throttling answers seen so far.
    pub fn throttle_count(&self) -> u64 {
        self.throttled.load(Relaxed)
    }

    /// Permits in use.
    pub fn in_use(&self) -> usize {
        *self.in_use.lock().unwrap()
    }

    /// A request was answered "slow down" at `now`: cut the limit by a quarter (once per
    /// half second).
    pub fn throttled_at(&self, now: Instant) {
        self.throttled.fetch_add(1, Relaxed);
        let mut last = self.last_cut.lock().unwrap();
        if last.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_millis(500)) {
            return;
        }
        *last = Some(now);
        let cur = self.limit.load(Relaxed);
        self.set((cur * 3 / 4).max(self.min));
    }

    fn set(&self, n: usize) {
        let n = n.clamp(self.min, self.max);
        self.limit.store(n, Relaxed);
        self.peak.fetch_max(n, Relaxed);
        self.freed.notify_all();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut n = self.0.in_use.lock().unwrap();
        *n -= 1;
        drop(n);
        self.0.freed.notify_one();
    }
}

/// Steers a [`Gate`] from throughput samples.
#[derive(Debug)]
pub struct Controller {
    last: Option<(Instant, u64)>,
    /// Throughput before the last step up, and the size of that step.
    probe: Option<(f64, usize)>,
    throttles_seen: u64,
    /// Ticks to wait before probing again after settling.
    hold: u32,
}

/// Ticks between probes once settled.
const SETTLE_TICKS: u32 = 10;

impl Default for Controller {
    fn default() -> Self {
        Self::new()
    }
}

impl Controller {
    /// A controller with no history.
    pub fn new() -> Self {
        Controller {
            last: None,
            probe: None,
            throttles_seen: 0,
            hold: 0,
        }
    }

    /// One sample: `bytes` moved so far at `now`, and whether every permit was busy during the
    /// last interval (`saturated`; a limit that is not reached is not what slows the copy).
    pub fn tick(&mut self, gate: &Gate, now: Instant, bytes: u64, saturated: bool) {
        let Some((t0, b0)) = self.last.replace((now, bytes)) else {
            return;
        };
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let rate = bytes.saturating_sub(b0) as f64 / dt;
        let throttles = gate.throttle_count();
        if throttles != self.throttles_seen {
            // The gate already cut itself; wait before growing again.
            self.throttles_seen = throttles;
            self.probe = None;
            self.hold = SETTLE_TICKS;
            return;
        }
        let limit = gate.limit();
        if let Some((before, step)) = self.probe.take() {
            if rate < before * 1.05 {
                // The step brought less than 5%: step back and settle.
                gate.set(limit.saturating_sub(step));
                self.hold = SETTLE_TICKS;
                return;
            }
        }
        if self.hold > 0 {
            self.hold -= 1;
            return;
        }
        if saturated && limit < gate.max {
            let step = (limit / 4).max(1).min(gate.max - limit);
            gate.set(limit + step);
            self.probe = Some((rate, step));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive the controller with a link whose throughput is `cap(limit)` bytes per second.
    fn run(gate: &Gate, secs: u32, cap: impl Fn(usize) -> f64) -> Vec<usize> {
        let mut c = Controller::new();
        let t0 = Instant::now();
        let mut bytes = 0f64;
        let mut seen = Vec::new();
        c.tick(gate, t0, 0, true);
        for s in 1..=secs {
            bytes += cap(gate.limit());
            c.tick(gate, t0 + Duration::from_secs(s as u64), bytes as u64, true);
            seen.push(gate.limit());
        }
        seen
    }

    #[test]
    fn grows_while_throughput_grows_and_settles_where_it_stops() {
        // Each request moves 10 MB/s until the link's 200 MB/s are used up (20 requests).
        let gate = Gate::new(64, 8);
        let seen = run(&gate, 60, |l| (l as f64 * 10e6).min(200e6));
        let settled = seen[36..].iter().filter(|l| (20..=24).contains(*l)).count();
        assert!(settled >= 20, "not settled near 20: {seen:?}");
        assert!(gate.peak() < 40, "overshoot {}: {seen:?}", gate.peak());
    }

    #[test]
    fn stays_at_the_maximum_when_more_requests_always_help() {
        let gate = Gate::new(32, 8);
        let seen = run(&gate, 30, |l| l as f64 * 10e6);
        assert_eq!(*seen.last().unwrap(), 32, "{seen:?}");
    }

    #[test]
    fn a_throttling_answer_cuts_the_limit_once_per_burst_and_growth_waits() {
        let gate = Gate::new(64, 40);
        let t = Instant::now();
        gate.throttled_at(t);
        assert_eq!(gate.limit(), 30);
        gate.throttled_at(t + Duration::from_millis(100));
        assert_eq!(gate.limit(), 30, "one burst, one cut");
        gate.throttled_at(t + Duration::from_millis(700));
        assert_eq!(gate.limit(), 22);
        let mut c = Controller::new();
        c.tick(&gate, t, 0, true);
        c.tick(&gate, t + Duration::from_secs(1), 100, true);
        assert_eq!(gate.limit(), 22, "no growth right after throttling");
        for i in 0..12 {
            gate.throttled_at(t + Duration::from_secs(100 + i));
        }
        assert_eq!(gate.limit(), 2, "never below the floor");
    }

    #[test]
    fn permits_never_exceed_the_limit() {
        let gate = Gate::new(8, 3);
        let busy = AtomicUsize::new(0);
        let worst = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..300 {
                        let _p = gate.acquire();
                        let now = busy.fetch_add(1, Relaxed) + 1;
                        worst.fetch_max(now, Relaxed);
                        std::thread::yield_now();
                        busy.fetch_sub(1, Relaxed);
                    }
                });
            }
        });
        assert!(worst.load(Relaxed) <= 3, "{}", worst.load(Relaxed));
        assert!(worst.load(Relaxed) >= 2);
        assert_eq!(gate.in_use(), 0);
    }
}
