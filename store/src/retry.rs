//! The retry policy, in one place (issue #17 item 16): which failures are tried again, how many
//! times, how long to wait between tries, and what was seen doing so.
//!
//! Every request a cloud store sends goes through [`Tries`] (`hbcp-store-cloud`'s `retried`):
//! the copy's reads and writes, the verifier's read-back, the planner's HEADs, every LIST page,
//! the server-side copy requests, the lock's requests. The HTTP client (object_store) retries
//! nothing on its own ([`CLIENT_RETRIES`] is 0), so attempts never multiply: a call the service
//! fails every time costs [`ATTEMPTS`] requests, and every throttle answer (429, 503) is counted
//! in the store's [`Tally`] as it arrives, where the engine's adaptive concurrency sees it.
//!
//! A failure the policy gave up on comes back as [`crate::Error::Exhausted`], so that no loop
//! above (the engine's, around compound steps such as a streamed read written part by part)
//! tries it again; what such a loop still retries (a body cut off after its answer began, a
//! local I/O error) it retries with the same [`Tries`].
//!
//! A throttle answer's `Retry-After` (seconds or an HTTP date) is honoured: the wait before the
//! next try is the one the service asked for when that is longer than the backoff, capped at
//! 30 s ([`asked_to_wait`], read by hbcp's own senders: Azure's blocks, listings and copies,
//! S3's multipart and copy requests, the GCS JSON API; object_store does not show the answer's
//! headers, so its requests wait the backoff).
//!
//! What is retried is decided by [`crate::Error::is_retryable`], what is a throttle by
//! [`crate::Error::is_throttle`]: by status, not by the words of a message.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::{Error, Result};

/// Tries of one request (the first and the retries).
pub const ATTEMPTS: u32 = 5;

/// Retries the HTTP client (object_store) makes on its own: none, every try is this policy's.
pub const CLIENT_RETRIES: usize = 0;

/// The first wait, in milliseconds: 1 s unless `HBCP_RETRY_BASE_MS` says otherwise (the test
/// suite sets 50 so that its injected failures cost little time; an operator has no reason to).
fn base_ms() -> f64 {
    static BASE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        std::env::var("HBCP_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .map_or(1000.0, |ms| f64::from(ms.max(1)))
    })
}

/// The longest wait between two tries.
const CAP_MS: f64 = 30_000.0;

/// The wait before try `attempt + 1` (`attempt` from 1): exponential from 1 s (1, 2, 4, 8 s:
/// a throttling burst of some 15 s is ridden out before a call is given up), capped at 30 s,
/// times a jitter factor in [0.5, 1.5) drawn from `noise` (any number; a caller passes a clock
/// reading, a test a fixed one).
pub fn backoff(attempt: u32, noise: u64) -> Duration {
    backoff_from(base_ms(), attempt, noise)
}

fn backoff_from(base_ms: f64, attempt: u32, noise: u64) -> Duration {
    let base = base_ms * 2f64.powi(attempt.clamp(1, 16) as i32 - 1);
    let factor = 0.5 + (xxhash_rust::xxh3::xxh3_64(&noise.to_le_bytes()) % 1000) as f64 / 1000.0;
    Duration::from_millis((base.min(CAP_MS) * factor) as u64)
}

/// Whether an HTTP answer with `status` may pass if the request is sent again: a timeout
/// (408), a throttle (429) and the server failures that are passing (500, 502, 503, 504). A 501
/// (not implemented) or 505 says the same every time. Every sender classifies by this one list.
pub fn status_may_pass(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The wait a service asked for in a `Retry-After` header of a throttle answer (429, 503): a
/// number of seconds, or an HTTP date (then the time from `now` until it; a date passed is no
/// wait). `None` when the value is neither.
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `e`, carrying the wait the service asked for in its `Retry-After` header (`header`, the
/// value as received) when `e` is a throttle and the header says one; else `e` as it is.
/// Every sender that reads an answer's headers passes its failures through this, and the
/// policy ([`Tries::judge`]) takes the wait off again.
pub fn asked_to_wait(e: Error, header: Option<&str>) -> Error {
    match header.and_then(|h| retry_after(h, std::time::SystemTime::now())) {
        Some(wait) if e.is_throttle() => Error::RetryAfter {
            wait,
            last: Box::new(e),
        },
        _ => e,
    }
}

/// The wait before try `attempt + 1` when the service asked for `asked` (its `Retry-After`):
/// that, capped at 30 s, when it is longer than the backoff; else the backoff.
fn wait_before(backoff: Duration, asked: Option<Duration>) -> Duration {
    let cap = Duration::from_millis(CAP_MS as u64);
    match asked {
        Some(a) if a > backoff => a.min(cap),
        _ => backoff,
    }
}

/// A jitter seed from the clock.
pub fn clock_noise() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What the policy saw on one endpoint: throttle answers and retries, counted as they happen.
/// A store owns one and shows it through [`crate::Store::retry_tally`]; the engine reads it to
/// cut its concurrency at once and to count the retries of its report.
#[derive(Debug, Default)]
pub struct Tally {
    throttles: AtomicU64,
    retries: AtomicU64,
}

impl Tally {
    /// Throttle answers (429, 503) received so far, retried or not.
    pub fn throttles(&self) -> u64 {
        self.throttles.load(Relaxed)
    }

    /// Requests sent again so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Relaxed)
    }
}

/// What to do with the outcome of one try.
#[derive(Debug)]
pub enum Verdict<T> {
    /// The call's result: a success, a failure not worth another try, or the last failure
    /// wrapped in [`Error::Exhausted`].
    Return(Result<T>),
    /// Try again after `wait`; `error` is what this try got (for a log line).
    Retry {
        /// The failure of this try.
        error: Error,
        /// The wait before the next try.
        wait: Duration,
    },
}

/// The tries of one call: feed it each outcome, it says whether to try again.
#[derive(Debug)]
pub struct Tries<'a> {
    tally: Option<&'a Tally>,
    attempt: u32,
    attempts: u32,
}

impl<'a> Tries<'a> {
    /// [`ATTEMPTS`] tries, counted in `tally` when given.
    pub fn new(tally: Option<&'a Tally>) -> Self {
        Self::with_attempts(tally, ATTEMPTS)
    }

    /// `attempts` tries (at least one).
    pub fn with_attempts(tally: Option<&'a Tally>, attempts: u32) -> Self {
        Tries {
            tally,
            attempt: 1,
            attempts: attempts.max(1),
        }
    }

    /// The try being judged (from 1).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Judge the outcome of the current try. A failure is tried again when it is retryable,
    /// not already given up on by a policy below, and tries remain; a retryable failure on the
    /// last try comes back as [`Error::Exhausted`].
    pub fn judge<T>(&mut self, r: Result<T>) -> Verdict<T> {
        let (e, asked) = match r {
            Ok(v) => return Verdict::Return(Ok(v)),
            // The wait the service asked for is this policy's to take: what goes on is the
            // answer itself.
            Err(Error::RetryAfter { wait, last }) => (*last, Some(wait)),
            Err(e) => (e, None),
        };
        if let Some(t) = self.tally {
            if e.is_throttle() {
                t.throttles.fetch_add(1, Relaxed);
            }
        }
        if !e.is_retryable() || e.is_exhausted() {
            return Verdict::Return(Err(e));
        }
        if self.attempt >= self.attempts {
            return Verdict::Return(Err(Error::Exhausted {
                tries: self.attempt,
                last: Box::new(e),
            }));
        }
        if let Some(t) = self.tally {
            t.retries.fetch_add(1, Relaxed);
        }
        let wait = wait_before(
            backoff(self.attempt, clock_noise() ^ u64::from(self.attempt)),
            asked,
        );
        self.attempt += 1;
        Verdict::Retry { error: e, wait }
    }
}

/// Run a blocking call under the policy, sleeping between tries.
pub fn run<T>(tally: Option<&Tally>, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut tries = Tries::new(tally);
    loop {
        match tries.judge(f()) {
            Verdict::Return(r) => return r,
            Verdict::Retry { wait, .. } => std::thread::sleep(wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_is_capped() {
        for noise in [0u64, 1, 42, u64::MAX] {
            let w: Vec<u64> = (1..=12)
                .map(|a| backoff_from(1000.0, a, noise).as_millis() as u64)
                .collect();
            for (i, ms) in w.iter().enumerate() {
                let base = (1000u64 << i.min(10)).min(30_000);
                assert!(
                    *ms >= base / 2 && *ms < base * 3 / 2,
                    "attempt {}: {ms} ms",
                    i + 1
                );
            }
        }
        // Between its 5 tries the policy waits 1 + 2 + 4 + 8 s, each times [0.5, 1.5): a
        // throttling burst of at least 7.5 s is ridden out, and a dead service given up on
        // within 23 s.
        for noise in [0u64, 7, 99] {
            let total: Duration = (1..ATTEMPTS).map(|a| backoff_from(1000.0, a, noise)).sum();
            assert!(total >= Duration::from_millis(7_500), "{total:?}");
            assert!(total < Duration::from_millis(22_500), "{total:?}");
        }
    }

    fn remote(status: u16, retryable: bool) -> Error {
        Error::Remote {
            what: "read x".into(),
            message: format!("HTTP {status}"),
            status: Some(status),
            retryable,
        }
    }

    #[test]
    fn a_throttle_every_time_costs_exactly_the_attempts_and_is_counted_each_time() {
        let tally = Tally::default();
        let mut calls = 0;
        let mut tries = Tries::new(Some(&tally));
        let e = loop {
            calls += 1;
            match tries.judge::<()>(Err(remote(503, true))) {
                Verdict::Return(r) => break r.unwrap_err(),
                Verdict::Retry { wait, .. } => assert!(wait < Duration::from_millis(45_000)),
            }
        };
        assert_eq!(calls, ATTEMPTS);
        assert_eq!(tally.throttles(), u64::from(ATTEMPTS));
        assert_eq!(tally.retries(), u64::from(ATTEMPTS - 1));
        // Given up on: still the 503 it was (retryable for a resume, a throttle), but no loop
        // above tries it again.
        assert!(
            e.is_exhausted() && e.is_retryable() && e.is_throttle(),
            "{e}"
        );
        assert!(!e.is_bad_input());
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        assert!(matches!(
            Tries::new(None).judge::<()>(Err(e)),
            Verdict::Return(Err(Error::Exhausted { .. }))
        ));
    }

    #[test]
    fn a_refusal_is_returned_at_once_and_a_passing_fault_is_retried_until_it_passes() {
        let tally = Tally::default();
        let mut tries = Tries::new(Some(&tally));
        assert!(matches!(
            tries.judge::<()>(Err(remote(403, false))),
            Verdict::Return(Err(Error::Remote {
                status: Some(403),
                ..
            }))
        ));
        assert_eq!((tally.throttles(), tally.retries()), (0, 0));
        let mut n = 0;
        let r = run(Some(&tally), || {
            n += 1;
            if n <= 2 {
                Err(remote(429, true))
            } else {
                Ok(n)
            }
        });
        assert_eq!(r.unwrap(), 3);
        assert_eq!((tally.throttles(), tally.retries()), (2, 2));
        // A 500 is retried but is no throttle.
        let mut tries = Tries::new(Some(&tally));
        assert!(matches!(
            tries.judge::<()>(Err(remote(500, true))),
            Verdict::Retry { .. }
        ));
        assert_eq!(tally.throttles(), 2);
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_waited_capped_at_30_s_and_a_shorter_one_is_not() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // The three forms: seconds, and an HTTP date (IMF-fixdate, and RFC 850's form).
        assert_eq!(retry_after(" 12 ", now), Some(Duration::from_secs(12)));
        let at = httpdate::fmt_http_date(now + Duration::from_secs(20));
        assert_eq!(retry_after(&at, now), Some(Duration::from_secs(20)));
        assert_eq!(
            retry_after("Tuesday, 14-Nov-23 22:13:40 GMT", now),
            Some(Duration::from_secs(20))
        );
        // A date passed is no wait; a value that is neither is not a Retry-After.
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);

        // What the policy waits: the service's ask when longer than the backoff, capped.
        let b = Duration::from_millis(1_500);
        assert_eq!(wait_before(b, None), b);
        assert_eq!(wait_before(b, Some(Duration::from_secs(1))), b);
        assert_eq!(
            wait_before(b, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            wait_before(b, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );

        // Through the policy: a 503 asking for 20 s is waited 20 s (longer than any first
        // backoff), counted as the throttle it is, and what is retried is the answer itself.
        let tally = Tally::default();
        let mut tries = Tries::new(Some(&tally));
        let asked = asked_to_wait(remote(503, true), Some("20"));
        assert!(asked.is_throttle() && asked.is_retryable(), "{asked}");
        match tries.judge::<()>(Err(asked)) {
            Verdict::Retry { wait, error } => {
                assert_eq!(wait, Duration::from_secs(20));
                assert!(matches!(
                    error,
                    Error::Remote {
                        status: Some(503),
                        ..
                    }
                ));
            }
            v => panic!("{v:?}"),
        }
        assert_eq!((tally.throttles(), tally.retries()), (1, 1));
        // Given up on, the last answer is kept without the wait.
        let mut tries = Tries::with_attempts(None, 1);
        match tries.judge::<()>(Err(asked_to_wait(remote(429, true), Some("3")))) {
            Verdict::Return(Err(Error::Exhausted { last, .. })) => {
                assert!(matches!(
                    *last,
                    Error::Remote {
                        status: Some(429),
                        ..
                    }
                ));
            }
            v => panic!("{v:?}"),
        }
        // Only a throttle carries the ask: a 500 with a Retry-After waits the backoff.
        assert!(matches!(
            asked_to_wait(remote(500, true), Some("20")),
            Error::Remote { .. }
        ));
    }
}
