//! `--max-bandwidth`: one token bucket per run, shared by every worker and every stage that
//! moves bytes (the copy's writes, the checksums of files already at the target, the
//! verifier's read-back), so that the cap holds over the whole run, not only its copy.
//!
//! A worker asks for the bytes it is about to send; the bucket answers how long to wait. The
//! bucket holds at most a quarter second of tokens, so a burst after an idle spell stays short
//! and the rate over any 10 s window is within a few percent of the limit. Time is injected
//! ([`Bandwidth::reserve_at`]) so the arithmetic is tested exactly.

use std::ops::Range;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hbcp_store::{Caps, CopySource, Entry, ListSink, Md5Sink, PutIf, Store, Upload};

/// A shared bandwidth limit.
#[derive(Debug)]
pub struct Bandwidth {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
    /// Bytes reserved so far: every byte the run moved under the cap.
    taken: AtomicU64,
}

impl Bandwidth {
    /// A limit of `bytes_per_s`.
    pub fn new(bytes_per_s: u64) -> Self {
        let rate = bytes_per_s.max(1) as f64;
        Bandwidth {
            rate,
            burst: rate / 4.0,
            state: Mutex::new((rate / 4.0, Instant::now())),
            taken: AtomicU64::new(0),
        }
    }

    /// The limit, in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    /// Bytes reserved so far (every byte that went through the limit, whatever the stage).
    pub fn bytes(&self) -> u64 {
        self.taken.load(Relaxed)
    }

    /// Reserve `n` bytes at time `now`; returns how long the caller must wait before sending.
    pub fn reserve_at(&self, n: u64, now: Instant) -> Duration {
        self.taken.fetch_add(n, Relaxed);
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

/// The error of a read whose wait for the limit was ended by a stop (a signal): the bytes were
/// not read, the caller's work is abandoned as the copy's is.
fn stopped() -> hbcp_store::Error {
    hbcp_store::Error::Unsupported {
        what: "read".into(),
        hint: "job stopping".into(),
    }
}

/// A store whose reads wait for the run's [`Bandwidth`] (none: no limit): the checksums of
/// files already at the target and the verifier's read-back go through it, so that they are
/// capped with the copy. Writes are not charged here: the copy charges its own writes (the
/// bytes it read for them once), and the other writes are hbcp's small records. A range read
/// in one piece is charged before its request, a streamed one piece by piece as it arrives.
#[derive(Clone, Copy)]
pub struct Capped<'a> {
    inner: &'a dyn Store,
    limit: Option<&'a Bandwidth>,
    stop: &'a (dyn Fn() -> bool + Sync),
}

impl std::fmt::Debug for Capped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capped")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .finish()
    }
}

impl<'a> Capped<'a> {
    /// Reads of `inner` under `limit`; `stop` ends a wait (and fails the read) when it says so.
    pub fn new(
        inner: &'a dyn Store,
        limit: Option<&'a Bandwidth>,
        stop: &'a (dyn Fn() -> bool + Sync),
    ) -> Self {
        Capped { inner, limit, stop }
    }

    fn charge(&self, n: u64) -> hbcp_store::Result<()> {
        match self.limit {
            Some(l) if !l.take(n, self.stop) => Err(stopped()),
            _ => Ok(()),
        }
    }
}

impl Store for Capped<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn retry_tally(&self) -> Option<&hbcp_store::retry::Tally> {
        self.inner.retry_tally()
    }
    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> hbcp_store::Result<()> {
        self.inner.list(prefix, sink)
    }
    fn list_paged(
        &self,
        prefix: &str,
        sink: &ListSink<'_>,
        page: &(dyn Fn(Duration) + Sync),
    ) -> hbcp_store::Result<()> {
        self.inner.list_paged(prefix, sink, page)
    }
    fn head(&self, key: &str) -> hbcp_store::Result<Option<Entry>> {
        self.inner.head(key)
    }
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> hbcp_store::Result<()> {
        self.charge(range.end.saturating_sub(range.start))?;
        self.inner.read_range(key, range, version, buf)
    }
    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> hbcp_store::Result<()>,
    ) -> hbcp_store::Result<()> {
        self.inner.read_range_to(key, range, version, &mut |piece| {
            self.charge(piece.len() as u64)?;
            sink(piece)
        })
    }
    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> hbcp_store::Result<bytes::Bytes> {
        self.charge(range.end.saturating_sub(range.start))?;
        self.inner.read_range_bytes(key, range, version)
    }
    fn put(&self, key: &str, data: &[u8]) -> hbcp_store::Result<()> {
        self.inner.put(key, data)
    }
    fn put_bytes(&self, key: &str, data: bytes::Bytes) -> hbcp_store::Result<Option<String>> {
        self.inner.put_bytes(key, data)
    }
    fn begin_upload(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> hbcp_store::Result<Arc<dyn Upload>> {
        self.inner.begin_upload(key, size, part_size, job)
    }
    fn copy_within(&self, from: &str, to: &str) -> hbcp_store::Result<()> {
        self.inner.copy_within(from, to)
    }
    fn copy_source(&self, key: &str, version: Option<&str>) -> hbcp_store::Result<CopySource> {
        self.inner.copy_source(key, version)
    }
    fn copy_from(
        &self,
        key: &str,
        src: &CopySource,
        size: u64,
    ) -> hbcp_store::Result<Option<String>> {
        self.inner.copy_from(key, src, size)
    }
    fn copies_ranges(&self) -> bool {
        self.inner.copies_ranges()
    }
    fn put_if(
        &self,
        key: &str,
        data: &[u8],
        cond: PutIf<'_>,
    ) -> hbcp_store::Result<Option<String>> {
        self.inner.put_if(key, data, cond)
    }
    fn get_versioned(&self, key: &str) -> hbcp_store::Result<Option<(Vec<u8>, String)>> {
        self.inner.get_versioned(key)
    }
    fn make_dir(&self, key: &str) -> hbcp_store::Result<()> {
        self.inner.make_dir(key)
    }
    fn delete(&self, key: &str) -> hbcp_store::Result<()> {
        self.inner.delete(key)
    }
    fn content_md5(&self, key: &str) -> hbcp_store::Result<Option<[u8; 16]>> {
        self.inner.content_md5(key)
    }
    fn service_md5(&self, key: &str) -> hbcp_store::Result<Option<[u8; 16]>> {
        self.inner.service_md5(key)
    }
    fn list_service_md5(&self, prefix: &str, sink: &Md5Sink<'_>) -> hbcp_store::Result<bool> {
        self.inner.list_service_md5(prefix, sink)
    }
    fn puts_have_service_md5(&self) -> bool {
        self.inner.puts_have_service_md5()
    }
    fn flush(&self) -> hbcp_store::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_store_charges_every_byte_it_reads_and_none_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let local = hbcp_store::local::LocalStore::new(dir.path().to_path_buf());
        // A limit too high to wait on: only the count is judged.
        let b = Bandwidth::new(1 << 40);
        let s = Capped::new(&local, Some(&b), &|| false);
        s.put("a", &[7u8; 3000]).unwrap();
        assert_eq!(b.bytes(), 0, "a write is not charged by the wrapper");
        let mut buf = Vec::new();
        s.read_range("a", 0..1000, None, &mut buf).unwrap();
        assert_eq!(
            s.read_range_bytes("a", 1000..1500, None).unwrap().len(),
            500
        );
        let mut seen = 0;
        s.read_range_to("a", 0..3000, None, &mut |p| {
            seen += p.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 3000);
        assert_eq!(b.bytes(), 1000 + 500 + 3000);
        // A stop during a wait fails the read, and the sink never sees the bytes.
        let slow = Bandwidth::new(1);
        let s = Capped::new(&local, Some(&slow), &|| true);
        assert!(s.read_range("a", 0..3000, None, &mut buf).is_err());
    }

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
