//! `--max-memory`: one budget of buffer bytes shared by every worker.
//!
//! A worker that is about to hold a range in memory (a part for an object store is sent from
//! one buffer, so that a retry can send it again) first takes that many bytes from the budget,
//! and gives them back when the part is sent. When the budget is spent, workers wait: memory
//! stays under the cap whatever the number of workers and the range size, and the copy only
//! slows down. Streamed reads and writes (local targets) hold one small chunk per worker, which
//! the caller counts in the fixed part of the memory it plans for, not here.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};

/// A shared budget of buffer bytes.
#[derive(Debug)]
pub struct Budget {
    cap: u64,
    used: Mutex<u64>,
    freed: Condvar,
    peak: AtomicU64,
}

/// Bytes taken from a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub struct Grant<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    /// A budget of `cap` bytes.
    pub fn new(cap: u64) -> Self {
        Budget {
            cap: cap.max(1),
            used: Mutex::new(0),
            freed: Condvar::new(),
            peak: AtomicU64::new(0),
        }
    }

    /// The cap.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Take `bytes`, waiting until they fit. A request larger than the whole cap (refused up
    /// front by the command line) waits for the budget to be empty and then takes all of it.
    pub fn take(&self, bytes: u64) -> Grant<'_> {
        let bytes = bytes.min(self.cap);
        let mut used = self.used.lock().unwrap();
        while *used + bytes > self.cap {
            used = self.freed.wait(used).unwrap();
        }
        *used += bytes;
        self.peak.fetch_max(*used, Relaxed);
        Grant {
            budget: self,
            bytes,
        }
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap();
        *used -= self.bytes;
        drop(used);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn many_threads_never_hold_more_than_the_cap_and_all_finish() {
        let b = Budget::new(100);
        let held = AtomicU64::new(0);
        let worst = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..16u64 {
                let (b, held, worst) = (&b, &held, &worst);
                s.spawn(move || {
                    for i in 0..200u64 {
                        let n = 1 + (t * 7 + i * 13) % 60;
                        let g = b.take(n);
                        let now = held.fetch_add(n, Relaxed) + n;
                        worst.fetch_max(now, Relaxed);
                        std::thread::yield_now();
                        held.fetch_sub(n, Relaxed);
                        drop(g);
                    }
                });
            }
        });
        assert!(worst.load(Relaxed) <= 100, "held {}", worst.load(Relaxed));
        assert!(b.peak() <= 100 && b.peak() > 60, "peak {}", b.peak());
        assert_eq!(*b.used.lock().unwrap(), 0);
    }

    #[test]
    fn a_request_larger_than_the_cap_takes_the_whole_budget() {
        let b = Budget::new(10);
        let g = b.take(25);
        assert_eq!(g.bytes, 10);
        drop(g);
        let _a = b.take(4);
        let _c = b.take(6);
        assert_eq!(b.peak(), 10);
    }
}
