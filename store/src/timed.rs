//! Per-request latency by operation: a wrapper around any [`Store`] (and the [`Upload`]s it
//! begins) that times every call and records it in one histogram per [`Op`].
//!
//! The engine and the verifier both run their stores through [`Timed`], so the report's
//! latencies are those of single requests (one LIST page, one HEAD, one ranged GET, one PUT,
//! one staged part, one commit…), not of the retried, compound steps the engine takes. A
//! streamed read ([`Store::read_range_to`]) is timed without the time its sink spends (the
//! write of what was read), so a ranged read's latency is the read's alone.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::{Caps, Entry, ListSink, Result, Store, Upload};

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// One page of a listing (object stores: one LIST request; local disk: one whole walk).
    List,
    /// Metadata of one key.
    Head,
    /// A ranged read (the copy's reads and the verifier's read-back).
    Get,
    /// A whole small file written in one request.
    Put,
    /// The start of a staged upload (S3: CreateMultipartUpload).
    Begin,
    /// One part / block of a staged upload.
    Stage,
    /// The commit of a staged upload (block list, CompleteMultipartUpload, rename).
    Commit,
    /// The abort of a staged upload.
    Abort,
    /// Delete of one key.
    Delete,
    /// A server-side copy inside the target.
    Copy,
    /// An empty directory or directory marker.
    MakeDir,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 11] = [
        Op::List,
        Op::Head,
        Op::Get,
        Op::Put,
        Op::Begin,
        Op::Stage,
        Op::Commit,
        Op::Abort,
        Op::Delete,
        Op::Copy,
        Op::MakeDir,
    ];

    /// The operation's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Head => "head",
            Op::Get => "get",
            Op::Put => "put",
            Op::Begin => "begin",
            Op::Stage => "stage",
            Op::Commit => "commit",
            Op::Abort => "abort",
            Op::Delete => "delete",
            Op::Copy => "copy",
            Op::MakeDir => "mkdir",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A histogram of microseconds from 1 µs to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

/// One latency histogram (microseconds) per operation, shared by every thread that times.
pub struct OpLatencies {
    hists: [Mutex<Histogram<u64>>; Op::ALL.len()],
}

impl fmt::Debug for OpLatencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OpLatencies");
        for op in Op::ALL {
            d.field(op.name(), &self.hists[op as usize].lock().unwrap().len());
        }
        d.finish()
    }
}

impl Default for OpLatencies {
    fn default() -> Self {
        OpLatencies {
            hists: std::array::from_fn(|_| Mutex::new(new_histogram())),
        }
    }
}

impl OpLatencies {
    /// Record one request of `op` that took `d`.
    pub fn record(&self, op: Op, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        // Saturating: a value past the bounds is clamped above, never lost.
        let _ = self.hists[op as usize].lock().unwrap().record(us);
    }

    /// A copy of the histogram of `op`.
    pub fn get(&self, op: Op) -> Histogram<u64> {
        self.hists[op as usize].lock().unwrap().clone()
    }

    /// Every request of every operation in one histogram.
    pub fn all(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for m in &self.hists {
            let _ = h.add(&*m.lock().unwrap());
        }
        h
    }

    /// Time `f` as one request of `op`.
    fn time<T>(&self, op: Op, f: impl FnOnce() -> T) -> T {
        let t0 = Instant::now();
        let r = f();
        self.record(op, t0.elapsed());
        r
    }
}

/// A store whose every request is timed into an [`OpLatencies`].
#[derive(Debug)]
pub struct Timed<'a> {
    inner: &'a dyn Store,
    lat: Arc<OpLatencies>,
}

impl<'a> Timed<'a> {
    /// Time the requests made to `inner` into `lat`.
    pub fn new(inner: &'a dyn Store, lat: Arc<OpLatencies>) -> Self {
        Timed { inner, lat }
    }
}

impl Store for Timed<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn retry_tally(&self) -> Option<&crate::retry::Tally> {
        self.inner.retry_tally()
    }

    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> Result<()> {
        let lat = &self.lat;
        self.inner
            .list_paged(prefix, sink, &|d| lat.record(Op::List, d))
    }

    fn list_paged(
        &self,
        prefix: &str,
        sink: &ListSink<'_>,
        page: &(dyn Fn(Duration) + Sync),
    ) -> Result<()> {
        let lat = &self.lat;
        self.inner.list_paged(prefix, sink, &|d| {
            lat.record(Op::List, d);
            page(d)
        })
    }

    fn head(&self, key: &str) -> Result<Option<Entry>> {
        self.lat.time(Op::Head, || self.inner.head(key))
    }

    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.lat
            .time(Op::Get, || self.inner.read_range(key, range, version, buf))
    }

    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let t0 = Instant::now();
        let mut in_sink = Duration::ZERO;
        let r = self.inner.read_range_to(key, range, version, &mut |piece| {
            let s = Instant::now();
            let r = sink(piece);
            in_sink += s.elapsed();
            r
        });
        self.lat
            .record(Op::Get, t0.elapsed().saturating_sub(in_sink));
        r
    }

    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<bytes::Bytes> {
        self.lat
            .time(Op::Get, || self.inner.read_range_bytes(key, range, version))
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.lat.time(Op::Put, || self.inner.put(key, data))
    }

    fn put_bytes(&self, key: &str, data: bytes::Bytes) -> Result<Option<String>> {
        self.lat.time(Op::Put, || self.inner.put_bytes(key, data))
    }

    fn begin_upload(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> Result<Arc<dyn Upload>> {
        let up = self.lat.time(Op::Begin, || {
            self.inner.begin_upload(key, size, part_size, job)
        })?;
        Ok(Arc::new(TimedUpload {
            inner: up,
            lat: self.lat.clone(),
        }))
    }

    fn copy_within(&self, from: &str, to: &str) -> Result<()> {
        self.lat.time(Op::Copy, || self.inner.copy_within(from, to))
    }

    fn copy_source(&self, key: &str, version: Option<&str>) -> Result<crate::CopySource> {
        self.inner.copy_source(key, version)
    }

    fn copy_from(&self, key: &str, src: &crate::CopySource, size: u64) -> Result<Option<String>> {
        self.lat
            .time(Op::Copy, || self.inner.copy_from(key, src, size))
    }

    fn make_dir(&self, key: &str) -> Result<()> {
        self.lat.time(Op::MakeDir, || self.inner.make_dir(key))
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.lat.time(Op::Delete, || self.inner.delete(key))
    }

    fn content_md5(&self, key: &str) -> Result<Option<[u8; 16]>> {
        self.lat.time(Op::Head, || self.inner.content_md5(key))
    }

    fn service_md5(&self, key: &str) -> Result<Option<[u8; 16]>> {
        self.lat.time(Op::Head, || self.inner.service_md5(key))
    }

    fn puts_have_service_md5(&self) -> bool {
        self.inner.puts_have_service_md5()
    }

    fn list_service_md5(&self, prefix: &str, sink: &crate::Md5Sink<'_>) -> Result<bool> {
        self.lat
            .time(Op::List, || self.inner.list_service_md5(prefix, sink))
    }

    fn copies_ranges(&self) -> bool {
        self.inner.copies_ranges()
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

/// An upload whose parts, commit and abort are timed.
#[derive(Debug)]
struct TimedUpload {
    inner: Arc<dyn Upload>,
    lat: Arc<OpLatencies>,
}

impl Upload for TimedUpload {
    fn put_part(&self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.lat
            .time(Op::Stage, || self.inner.put_part(index, offset, data))
    }

    fn put_part_bytes(&self, index: u32, offset: u64, data: bytes::Bytes) -> Result<()> {
        self.lat
            .time(Op::Stage, || self.inner.put_part_bytes(index, offset, data))
    }

    fn put_part_from(
        &self,
        index: u32,
        src: &crate::CopySource,
        range: std::ops::Range<u64>,
    ) -> Result<()> {
        self.lat
            .time(Op::Copy, || self.inner.put_part_from(index, src, range))
    }

    fn sync_parts(&self) -> Result<()> {
        self.inner.sync_parts()
    }

    fn commit(&self) -> Result<Option<String>> {
        self.lat.time(Op::Commit, || self.inner.commit())
    }

    fn abort(&self) -> Result<()> {
        self.lat.time(Op::Abort, || self.inner.abort())
    }

    fn is_resumed(&self) -> bool {
        self.inner.is_resumed()
    }

    fn has_part(&self, index: u32, len: u64) -> bool {
        self.inner.has_part(index, len)
    }

    fn wants_md5(&self) -> bool {
        self.inner.wants_md5()
    }

    fn set_md5(&self, md5: [u8; 16]) {
        self.inner.set_md5(md5)
    }

    fn transport_checked(&self) -> bool {
        self.inner.transport_checked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStore;

    #[test]
    fn every_request_is_counted_under_its_operation() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalStore::new(dir.path().to_path_buf());
        let lat = Arc::new(OpLatencies::default());
        let s = Timed::new(&local, lat.clone());
        s.put("a/small", b"hello").unwrap();
        let up = s.begin_upload("a/big", 8, 4, "job").unwrap();
        up.put_part(0, 0, b"0123").unwrap();
        up.put_part(1, 4, b"4567").unwrap();
        up.commit().unwrap();
        assert!(s.head("a/big").unwrap().is_some());
        let mut buf = Vec::new();
        s.read_range("a/big", 2..6, None, &mut buf).unwrap();
        assert_eq!(buf, b"2345");
        let mut got = Vec::new();
        s.read_range_to("a/small", 0..5, None, &mut |p| {
            got.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, b"hello");
        let n = std::sync::atomic::AtomicUsize::new(0);
        s.list("", &|_| {
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        s.delete("a/small").unwrap();
        let count = |op| lat.get(op).len();
        assert_eq!(count(Op::Put), 1);
        assert_eq!(count(Op::Begin), 1);
        assert_eq!(count(Op::Stage), 2);
        assert_eq!(count(Op::Commit), 1);
        assert_eq!(count(Op::Head), 1);
        assert_eq!(count(Op::Get), 2);
        assert!(count(Op::List) >= 1);
        assert_eq!(count(Op::Delete), 1);
        assert_eq!(count(Op::Copy) + count(Op::MakeDir) + count(Op::Abort), 0);
        assert_eq!(
            lat.all().len(),
            Op::ALL.iter().map(|o| count(*o)).sum::<u64>()
        );
    }
}
