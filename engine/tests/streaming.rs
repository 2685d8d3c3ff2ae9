//! Ranges stream from the source to a local target through one small buffer per worker. A
//! read that breaks half way (a connection reset mid-body) is retried from the first byte not
//! yet written: the target is byte-exact and no byte is written twice. A wrapper store breaks
//! the first streamed read of every range after half of its bytes, so the test is exact.

use std::collections::HashSet;
use std::fs;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hbcp_engine::{Config, Stats};
use hbcp_store::local::LocalStore;
use hbcp_store::{Caps, Entry, Error, ListSink, Result, Store, Upload};

/// Breaks the first streamed read of each range (known by its end: the retry starts later)
/// after half of it.
#[derive(Debug)]
struct BreaksMidBody {
    inner: LocalStore,
    broken: Mutex<HashSet<(String, u64)>>,
    breaks: AtomicU64,
    /// The largest piece a sink was handed.
    largest_piece: AtomicU64,
}

impl Store for BreaksMidBody {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> Result<()> {
        self.inner.list(prefix, sink)
    }
    fn head(&self, key: &str) -> Result<Option<Entry>> {
        self.inner.head(key)
    }
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.inner.read_range(key, range, version, buf)
    }
    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let first = self
            .broken
            .lock()
            .unwrap()
            .insert((key.to_string(), range.end));
        let half = range.start + (range.end - range.start) / 2;
        let mut at = range.start;

        self.inner
            .read_range_to(key, range.clone(), version, &mut |piece| {
                self.largest_piece
                    .fetch_max(piece.len() as u64, Ordering::Relaxed);
                if first && at + piece.len() as u64 > half {
                    // Hand over the bytes up to the middle, then the connection "resets".
                    sink(&piece[..(half - at) as usize])?;
                    self.breaks.fetch_add(1, Ordering::Relaxed);
                    return Err(Error::Remote {
                        what: format!("read {key}"),
                        message: "connection reset by peer".into(),
                        status: None,
                        retryable: true,
                    });
                }
                at += piece.len() as u64;
                sink(piece)
            })
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.inner.put(key, data)
    }
    fn begin_upload(&self, key: &str, size: u64, part: u64, job: &str) -> Result<Arc<dyn Upload>> {
        self.inner.begin_upload(key, size, part, job)
    }
    fn make_dir(&self, key: &str) -> Result<()> {
        self.inner.make_dir(key)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }
}

fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2654435761).wrapping_add(seed).to_le_bytes()[2])
        .collect()
}

#[test]
fn a_read_broken_mid_body_resumes_after_the_written_bytes_and_writes_nothing_twice() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    // A file of five 300 KiB ranges (the last one short), and one whole file above a chunk.
    let big = pattern(1_400_000, 1);
    let whole = pattern(200_000, 2);
    fs::write(src.join("big"), &big).unwrap();
    fs::write(src.join("whole"), &whole).unwrap();
    let store = BreaksMidBody {
        inner: LocalStore::new(src.clone()),
        broken: Mutex::new(HashSet::new()),
        breaks: AtomicU64::new(0),
        largest_piece: AtomicU64::new(0),
    };
    let cfg = Config {
        workers: 3,
        range_size: 300 * 1024,
        chunk: 64 * 1024,
        state_dir: t.path().join("state"),
        ..Config::default()
    };
    let stats = Stats::default();
    let out = hbcp_engine::copy(
        &store,
        &LocalStore::new(dst.clone()),
        &|src: &dyn Store, sink| src.list("", sink),
        &cfg,
        &stats,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(out.stop.is_none() && out.failures.is_empty(), "{out:?}");
    assert_eq!(fs::read(dst.join("big")).unwrap(), big);
    assert_eq!(fs::read(dst.join("whole")).unwrap(), whole);
    // Five ranges of `big` and the whole file each broke once and were retried.
    assert_eq!(store.breaks.load(Ordering::Relaxed), 6);
    assert!(stats.retries.load(Ordering::Relaxed) >= 6);
    assert_eq!(
        stats.bytes_copied.load(Ordering::Relaxed),
        (big.len() + whole.len()) as u64,
        "a byte written before the break is not written again"
    );
    // The checksums hashed on the way (each byte once) are those of the source files.
    let mut sums = Vec::new();
    hbcp_state::manifest::read(fs::File::open(&out.spill).unwrap(), "spill", |e| {
        sums.push((e.k.clone(), e.checksum()));
        Ok(())
    })
    .unwrap();
    sums.sort();
    let local = LocalStore::new(src.clone());
    for (key, sum) in sums {
        let size = fs::metadata(src.join(&key)).unwrap().len();
        let want =
            hbcp_state::checksum::hash_file(&local, &key, size, cfg.range_size, None).unwrap();
        assert_eq!(sum, Some(want), "{key}");
    }
    // Each streaming worker held two 64 KiB chunks, never a whole 300 KiB range.
    let peak = stats.buffer_peak.load(Ordering::Relaxed);
    assert!((128 << 10..=3 * (128 << 10)).contains(&peak), "peak {peak}");
}
