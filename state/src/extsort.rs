//! External merge sort: orders more records than fit in memory, so that a manifest, a journal
//! index or a listing of millions of files is sorted with a small, fixed amount of memory.
//!
//! Records are held in memory up to a count; then that batch is sorted (stably) and written to
//! a run file (the framed zstd record format of [`crate::records`], checksummed). Reading the
//! result merges the runs with a heap; with more runs than [`MAX_FAN`], groups of runs are
//! merged into bigger runs first, so the open files (one zstd decoder each) stay bounded.
//! Equal records come out in the order they were pushed. The run files live in a folder of
//! their own that is removed when the result is dropped.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::records::{RecordReader, RecordWriter};
use crate::{Error, Result};

/// Format name of a run file.
const RUN_FORMAT: &str = "hbcp-sort-run";
/// Version of a run file.
const RUN_VERSION: u32 = 1;
/// At most this many runs are merged at once.
pub const MAX_FAN: usize = 64;
/// Records held in memory by default before a run is written (about 40 MiB of manifest
/// entries of HBase-length keys).
pub const DEFAULT_BATCH: usize = 128 * 1024;

#[derive(Serialize, serde::Deserialize)]
struct RunHeader {
    format: String,
    version: u32,
}

/// A comparison of two records.
pub type Compare<T> = fn(&T, &T) -> Ordering;

/// The folder of a sort's run files, removed on drop.
#[derive(Debug)]
struct RunDir {
    path: PathBuf,
    made: bool,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.made {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Collects records, spilling sorted runs to disk; [`ExternalSort::finish`] yields them in order.
pub struct ExternalSort<T> {
    dir: RunDir,
    buf: Vec<T>,
    batch: usize,
    runs: Vec<PathBuf>,
    cmp: Compare<T>,
    pushed: u64,
    /// Number of the next run file.
    next_run: u64,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl<T: Serialize + DeserializeOwned> ExternalSort<T> {
    /// A sort whose runs go in a new folder under `parent`, holding at most `batch` records in
    /// memory, ordered by `cmp`.
    pub fn new(parent: &Path, batch: usize, cmp: Compare<T>) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!("sort-{}-{}", std::process::id(), SEQ.fetch_add(1, Relaxed));
        ExternalSort {
            dir: RunDir {
                path: parent.join(name),
                made: false,
            },
            buf: Vec::new(),
            batch: batch.max(1),
            runs: Vec::new(),
            cmp,
            pushed: 0,
            next_run: 0,
        }
    }

    /// Add a record.
    pub fn push(&mut self, t: T) -> Result<()> {
        self.buf.push(t);
        self.pushed += 1;
        if self.buf.len() >= self.batch {
            self.spill()?;
        }
        Ok(())
    }

    /// Records pushed so far.
    pub fn len(&self) -> u64 {
        self.pushed
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn new_run(&mut self) -> Result<(PathBuf, RecordWriter<BufWriter<File>>)> {
        if !self.dir.made {
            fs::create_dir_all(&self.dir.path).map_err(|e| io_err(&self.dir.path, e))?;
            self.dir.made = true;
        }
        let path = self.dir.path.join(format!("run-{:06}.zst", self.next_run));
        self.next_run += 1;
        let header = RunHeader {
            format: RUN_FORMAT.into(),
            version: RUN_VERSION,
        };
        let w = RecordWriter::create_fast(&path, &header)?;
        Ok((path, w))
    }

    fn spill(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let cmp = self.cmp;
        self.buf.sort_by(cmp);
        let (path, mut w) = self.new_run()?;
        for t in self.buf.drain(..) {
            w.write(&t)?;
        }
        w.finish()?;
        self.runs.push(path);
        Ok(())
    }

    /// Everything pushed, in order.
    pub fn finish(mut self) -> Result<Sorted<T>> {
        let cmp = self.cmp;
        if self.runs.is_empty() {
            // It all fit in memory: no file at all.
            self.buf.sort_by(cmp);
            let buf = std::mem::take(&mut self.buf);
            return Ok(Sorted {
                src: Source::Memory(buf.into_iter()),
                _dir: RunDir {
                    path: PathBuf::new(),
                    made: false,
                },
            });
        }
        self.spill()?;
        self.buf = Vec::new();
        // Merge neighbouring groups of runs (order kept, for stability) until one merge can
        // take them all.
        while self.runs.len() > MAX_FAN {
            let level = std::mem::take(&mut self.runs);
            for group in level.chunks(MAX_FAN) {
                if group.len() == 1 {
                    self.runs.push(group[0].clone());
                    continue;
                }
                let mut merged = Merge::open(group, cmp)?;
                let (path, mut w) = self.new_run()?;
                for t in merged.by_ref() {
                    w.write(&t?)?;
                }
                w.finish()?;
                drop(merged);
                for p in group {
                    let _ = fs::remove_file(p);
                }
                self.runs.push(path);
            }
        }
        let merge = Merge::open(&self.runs, cmp)?;
        let dir = std::mem::replace(
            &mut self.dir,
            RunDir {
                path: PathBuf::new(),
                made: false,
            },
        );
        Ok(Sorted {
            src: Source::Merge(merge),
            _dir: dir,
        })
    }
}

/// The sorted records of an [`ExternalSort`].
pub struct Sorted<T> {
    src: Source<T>,
    _dir: RunDir,
}

enum Source<T> {
    Memory(std::vec::IntoIter<T>),
    Merge(Merge<T>),
}

impl<T: DeserializeOwned> Iterator for Sorted<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match &mut self.src {
            Source::Memory(it) => it.next().map(Ok),
            Source::Merge(m) => m.next(),
        }
    }
}

struct Head<T> {
    item: T,
    run: usize,
    cmp: Compare<T>,
}

impl<T> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        Ord::cmp(self, other) == Ordering::Equal
    }
}
impl<T> Eq for Head<T> {}
impl<T> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse, and the earlier run wins a tie (stability).
        (self.cmp)(&other.item, &self.item).then(other.run.cmp(&self.run))
    }
}

struct Merge<T> {
    readers: Vec<RecordReader<File>>,
    heap: BinaryHeap<Head<T>>,
    cmp: Compare<T>,
    failed: bool,
}

impl<T: DeserializeOwned> Merge<T> {
    fn open(runs: &[PathBuf], cmp: Compare<T>) -> Result<Self> {
        let mut m = Merge {
            readers: Vec::with_capacity(runs.len()),
            heap: BinaryHeap::with_capacity(runs.len()),
            cmp,
            failed: false,
        };
        for (i, p) in runs.iter().enumerate() {
            let (_, mut rd): (RunHeader, _) = RecordReader::open(p, RUN_FORMAT, RUN_VERSION)?;
            if let Some(item) = rd.next_record::<T>()? {
                m.heap.push(Head { item, run: i, cmp });
            }
            m.readers.push(rd);
        }
        Ok(m)
    }
}

impl<T: DeserializeOwned> Iterator for Merge<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.failed {
            return None;
        }
        let top = self.heap.pop()?;
        match self.readers[top.run].next_record::<T>() {
            Ok(Some(item)) => self.heap.push(Head {
                item,
                run: top.run,
                cmp: self.cmp,
            }),
            Ok(None) => {}
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        }
        Some(Ok(top.item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_key(a: &(u32, u32), b: &(u32, u32)) -> Ordering {
        a.0.cmp(&b.0)
    }

    #[test]
    fn many_runs_merge_in_order_and_equal_keys_keep_their_push_order() {
        let d = tempfile::tempdir().unwrap();
        // 5,000 records in batches of 7: 715 runs, merged in two levels.
        let mut s = ExternalSort::new(d.path(), 7, by_key);
        let mut want = Vec::new();
        for i in 0..5000u32 {
            let k = (i.wrapping_mul(2_654_435_761)) % 997;
            s.push((k, i)).unwrap();
            want.push((k, i));
        }
        assert!(s.runs() > MAX_FAN);
        want.sort_by(by_key);
        let got: Vec<(u32, u32)> = s.finish().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(got, want);
        // The run folder is gone once the result is dropped.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_small_sort_writes_no_file() {
        let d = tempfile::tempdir().unwrap();
        let mut s = ExternalSort::new(d.path(), 100, by_key);
        for i in [3u32, 1, 2] {
            s.push((i, 0)).unwrap();
        }
        let got: Vec<u32> = s.finish().unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_damaged_run_is_an_error_not_a_short_result() {
        let d = tempfile::tempdir().unwrap();
        let mut s = ExternalSort::new(d.path(), 2, by_key);
        for i in 0..10u32 {
            s.push((i, i)).unwrap();
        }
        // Cut the first run short.
        let dir = fs::read_dir(d.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let run = dir.join("run-000000.zst");
        let bytes = fs::read(&run).unwrap();
        fs::write(&run, &bytes[..bytes.len() / 2]).unwrap();
        let r: Result<Vec<(u32, u32)>> = s.finish().and_then(|it| it.collect());
        assert!(r.is_err());
    }
}
