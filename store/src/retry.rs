//! The retry policy, in one place (issue #17 item 16): how many times a request is tried and
//! how long to wait between tries. The engine's retry loop (which also tells the adaptive
//! concurrency of every throttle answer it sees) and the cloud stores' own LIST page loop use
//! it, and object_store's internal retries are cut to [`CLIENT_RETRIES`] so that the attempts
//! barely multiply: before, object_store retried 8 times (up to 180 s) inside each of the
//! engine's 5 attempts, ~45 requests for one failing call, and a 503 reached the adaptive
//! concurrency only after object_store gave up (now after at most 2 quick retries).
//!
//! What is retried is decided by [`crate::Error::is_retryable`], what is a throttle by
//! [`crate::Error::is_throttle`] (429, 503): by status, not by the words of a message.

use std::time::Duration;

/// Tries of one request (the first and the retries).
pub const ATTEMPTS: u32 = 5;

/// Retries the HTTP client (object_store) makes on its own inside one try, within
/// [`CLIENT_RETRY_TIMEOUT`]. Not none: the requests that no engine loop wraps (the verifier's
/// read-back, a HEAD while planning, an S3/GCS listing page) keep a little protection from a
/// transient fault; few, so that one failing call costs at most `ATTEMPTS × (1 + 2)` requests.
pub const CLIENT_RETRIES: usize = 2;

/// How long object_store may spend retrying one request on its own.
pub const CLIENT_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// The wait before try `attempt + 1` (`attempt` from 1): exponential from 50 ms, capped at 5 s,
/// times a jitter factor in [0.5, 1.5) drawn from `noise` (any number; a caller passes a clock
/// reading, a test a fixed one).
pub fn backoff(attempt: u32, noise: u64) -> Duration {
    let base = 50f64 * 2f64.powi(attempt.clamp(1, 11) as i32 - 1);
    let factor = 0.5 + (xxhash_rust::xxh3::xxh3_64(&noise.to_le_bytes()) % 1000) as f64 / 1000.0;
    Duration::from_millis((base.min(5000.0) * factor) as u64)
}

/// A jitter seed from the clock.
pub fn clock_noise() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_is_capped() {
        for noise in [0u64, 1, 42, u64::MAX] {
            let w: Vec<u64> = (1..=12)
                .map(|a| backoff(a, noise).as_millis() as u64)
                .collect();
            for (i, ms) in w.iter().enumerate() {
                let base = (50u64 << i.min(10)).min(5000);
                assert!(
                    *ms >= base / 2 && *ms < base * 3 / 2,
                    "attempt {}: {ms} ms",
                    i + 1
                );
            }
        }
        // The whole policy waits at most ~1.5 × (50+100+200+400) ms between its 5 tries.
        let total: Duration = (1..ATTEMPTS).map(|a| backoff(a, 7)).sum();
        assert!(total < Duration::from_millis(1200), "{total:?}");
    }
}
