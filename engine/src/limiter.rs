//! `--max-bandwidth`: one token bucket shared by every worker.
//!
//! A worker asks for the bytes it is about to send; the bucket answers how long to wait. The
//! bucket holds at most a quarter second of tokens, so a burst after an idle spell stays short
//! and the rate over any 10 s window is within a few percent of the limit. Time is injected
//! ([`Bandwidth::reserve_at`]) so the arithmetic is tested exactly.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A shared bandwidth limit.
#[derive(Debug)]
pub struct Bandwidth {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bandwidth {
    /// A limit of `bytes_per_s`.
    pub fn new(bytes_per_s: u64) -> Self {
        let rate = bytes_per_s.max(1) as f64;
        Bandwidth {
            rate,
            burst: rate / 4.0,
            state: Mutex::new((rate / 4.0, Instant::now())),
        }
    }

    /// Reserve `n` bytes at time `now`; returns how long the caller must wait before sending.
    pub fn reserve_at(&self, n: u64, now: Instant) -> Duration {
        let mut st = self.state.lock().unwrap();
        let (tokens, last) = *st;
        let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
        let available = (tokens + refill).min(self.burst) - n as f64;
        *st = (available, now.max(last));
        if available >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-available / self.rate)
        }
    }

    /// Reserve `n` bytes and wait as long as needed, in slices of at most 100 ms; `stop` is
    /// asked between slices, and when it says so the wait ends at once (returns `false`): a
    /// signal during a slow, throttled copy is not held up by the reservation (at 1 MB/s one
    /// 8 MiB range waits 8 s).
    pub fn take(&self, n: u64, stop: &dyn Fn() -> bool) -> bool {
        let until = Instant::now() + self.reserve_at(n, Instant::now());
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            if stop() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_add_up_to_the_rate() {
        let b = Bandwidth::new(1000);
        let t0 = Instant::now();
        // 250 bytes of burst are free; then every 100 bytes costs 0.1 s.
        assert_eq!(b.reserve_at(250, t0), Duration::ZERO);
        let w = b.reserve_at(100, t0);
        assert!((w.as_secs_f64() - 0.1).abs() < 1e-9, "{w:?}");
        let w = b.reserve_at(100, t0);
        assert!((w.as_secs_f64() - 0.2).abs() < 1e-9, "{w:?}");
        // After 10 s idle the bucket holds only the burst again.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.reserve_at(250, t1), Duration::ZERO);
        assert!(b.reserve_at(1, t1) > Duration::ZERO);
    }

    #[test]
    fn a_long_wait_ends_when_asked_to_stop() {
        let b = Bandwidth::new(1000);
        // 10 s of bytes; stop is asked between slices and ends the wait.
        let t0 = Instant::now();
        let asked = std::sync::atomic::AtomicU32::new(0);
        let stop = || asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 2;
        assert!(!b.take(10_250, &stop));
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        // A bucket with tokens to spare does not wait, so it is not stopped.
        assert!(Bandwidth::new(1000).take(100, &|| true));
    }
}
