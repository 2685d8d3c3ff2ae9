//! The checks. Every copy fault is a [`Mismatch`] naming the key; nothing stops at the first
//! one. On an HBase target the files proven equal to the source also get the HBase checks of
//! [`crate::hbase`], whose findings are the source's ([`SourceFinding`]), not the copy's.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hbcp_planner::Selection;
use hbcp_planner::extsort::{DEFAULT_BATCH, ExternalSort};
use hbcp_store::{Entry, EntryKind, Store};
use rayon::prelude::*;
use serde::Serialize;

use crate::Result;
use crate::checksum::{hash_file, hex};
use crate::hbase::{self, HbaseLayout, SourceFinding};
use crate::manifest::ManifestEntry;

/// How hard to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// No verification (the copy is not called verified).
    None,
    /// Sizes only.
    Size,
    /// Sizes and checksums of every byte (the default).
    #[default]
    Checksum,
    /// Checksums plus a walk of every HFile block with its CRC32C checksums.
    Deep,
}

/// What is wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MismatchKind {
    /// At the source, not at the target.
    Missing,
    /// At the target, not at the source.
    Extra,
    /// The target is shorter than the source.
    Short {
        /// Source size.
        expected: u64,
        /// Target size.
        actual: u64,
    },
    /// The target is longer than the source.
    Long {
        /// Source size.
        expected: u64,
        /// Target size.
        actual: u64,
    },
    /// Same size, different bytes.
    Differs {
        /// Source checksum.
        expected: String,
        /// Target checksum.
        actual: String,
    },
    /// A file at one side, a directory at the other.
    WrongKind,
    /// The source changed while it was being copied.
    SourceChanged {
        /// What changed.
        detail: String,
    },
    /// The key could not be read.
    Unreadable {
        /// The error.
        error: String,
    },
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The key.
    pub key: String,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: MismatchKind,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        match &self.kind {
            MismatchKind::Missing => write!(f, "missing: {k}"),
            MismatchKind::Extra => write!(f, "extra: {k}"),
            MismatchKind::Short { expected, actual } => {
                write!(f, "short: {k} ({actual} of {expected} bytes)")
            }
            MismatchKind::Long { expected, actual } => {
                write!(
                    f,
                    "size differs: {k} ({actual} bytes, source has {expected})"
                )
            }
            MismatchKind::Differs { expected, actual } => {
                write!(f, "differs: {k} (checksum {actual}, source {expected})")
            }
            MismatchKind::WrongKind => {
                write!(f, "differs: {k} (file at one side, directory at the other)")
            }
            MismatchKind::SourceChanged { detail } => {
                write!(f, "source changed during the copy: {k} ({detail})")
            }
            MismatchKind::Unreadable { error } => write!(f, "unreadable: {k}: {error}"),
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyOutcome {
    /// Files (and directories) checked.
    pub files: u64,
    /// Bytes checked.
    pub bytes: u64,
    /// Copy faults (the target differs from the source), sorted by key where listed.
    pub mismatches: Vec<Mismatch>,
    /// Source findings (what the HBase checks found wrong at the source, copied as it is),
    /// sorted by key.
    pub source_findings: Vec<SourceFinding>,
}

impl VerifyOutcome {
    /// True when the target matches the source (source findings do not count).
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// Add another outcome's counts and findings.
    pub fn merge(&mut self, other: VerifyOutcome) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.mismatches.extend(other.mismatches);
        self.source_findings.extend(other.source_findings);
    }
}

/// Parameters of a verification.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Mode.
    pub mode: VerifyMode,
    /// Threads.
    pub workers: usize,
    /// Range size of the checksums.
    pub range_size: u64,
    /// Read chunk.
    pub chunk: u64,
    /// The source is an HBase root laid out so at the target: run the HBase checks (with
    /// [`VerifyMode::Checksum`] or [`VerifyMode::Deep`]) on the files proven equal.
    pub hbase: Option<HbaseLayout>,
}

impl Params {
    /// The HBase checks of one file that compared equal: a source finding, or a copy fault
    /// when the target could not be read.
    fn hbase_check(
        &self,
        dst: &dyn Store,
        src: Option<&dyn Store>,
        key: &str,
        size: u64,
    ) -> Result<Option<SourceFinding>, MismatchKind> {
        let Some(layout) = self.hbase else {
            return Ok(None);
        };
        if !matches!(self.mode, VerifyMode::Checksum | VerifyMode::Deep) {
            return Ok(None);
        }
        let deep = self.mode == VerifyMode::Deep;
        with_buf(|b| hbase::check(dst, src, key, size, layout, deep, self.chunk, b))
            .map_err(|error| MismatchKind::Unreadable { error })
    }
}

/// Findings of a parallel check, gathered.
#[derive(Default)]
struct Found {
    mismatches: Mutex<Vec<Mismatch>>,
    source: Mutex<Vec<SourceFinding>>,
}

impl Found {
    fn add(&self, key: String, r: Result<Option<SourceFinding>, MismatchKind>) {
        match r {
            Ok(None) => {}
            Ok(Some(f)) => self.source.lock().unwrap().push(f),
            Err(kind) => self.mismatches.lock().unwrap().push(Mismatch { key, kind }),
        }
    }

    fn into_parts(self) -> (Vec<Mismatch>, Vec<SourceFinding>) {
        let mut src = self.source.into_inner().unwrap();
        src.sort_by(|a, b| a.key.cmp(&b.key));
        (self.mismatches.into_inner().unwrap(), src)
    }
}

fn pool(workers: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .thread_name(|i| format!("hbcp-verify-{i}"))
        .build()
        .expect("thread pool")
}

thread_local! {
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_buf<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    BUF.with(|b| f(&mut b.borrow_mut()))
}

/// Compare one target entry against what the source had (`expected`, with an optional known
/// checksum). Returns the finding, if any, and the bytes read.
fn compare_one(
    dst: &dyn Store,
    key: &str,
    expected_kind: EntryKind,
    expected_size: u64,
    expected_sum: Option<u64>,
    src_for_sum: Option<(&dyn Store, Option<&str>)>,
    p: &Params,
) -> Option<MismatchKind> {
    let got = match dst.head(key) {
        Ok(g) => g,
        Err(e) => {
            return Some(MismatchKind::Unreadable {
                error: e.to_string(),
            });
        }
    };
    let Some(got) = got else {
        return Some(MismatchKind::Missing);
    };
    if got.kind != expected_kind {
        return Some(MismatchKind::WrongKind);
    }
    if expected_kind == EntryKind::Dir {
        return None;
    }
    if got.size < expected_size {
        return Some(MismatchKind::Short {
            expected: expected_size,
            actual: got.size,
        });
    }
    if got.size > expected_size {
        return Some(MismatchKind::Long {
            expected: expected_size,
            actual: got.size,
        });
    }
    if matches!(p.mode, VerifyMode::Size | VerifyMode::None) {
        return None;
    }
    let want = match (expected_sum, src_for_sum) {
        (Some(h), _) => h,
        (None, Some((src, version))) => {
            match with_buf(|b| {
                hash_file(src, key, expected_size, p.range_size, version, p.chunk, b)
            }) {
                Ok(h) => h,
                Err(e) => {
                    return Some(MismatchKind::Unreadable {
                        error: format!("source: {e}"),
                    });
                }
            }
        }
        (None, None) => return None,
    };
    match with_buf(|b| {
        hash_file(
            dst,
            key,
            got.size,
            p.range_size,
            got.version.as_deref(),
            p.chunk,
            b,
        )
    }) {
        Ok(h) if h == want => None,
        Ok(h) => Some(MismatchKind::Differs {
            expected: hex(want),
            actual: hex(h),
        }),
        Err(e) => Some(MismatchKind::Unreadable {
            error: e.to_string(),
        }),
    }
}

/// Check a target against manifest entries (what the engine copied, with the checksums it
/// computed while reading the source). With `src`, also check that no source file changed
/// since it was copied.
pub fn verify_entries<I>(
    dst: &dyn Store,
    src: Option<&dyn Store>,
    entries: I,
    p: &Params,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome>
where
    I: Iterator<Item = ManifestEntry> + Send,
{
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let found = Found::default();
    pool(p.workers).install(|| {
        entries.par_bridge().for_each(|e| {
            let mut finding = compare_one(dst, &e.k, e.kind(), e.s, e.checksum(), None, p);
            if finding.is_none() {
                if let (Some(src), Some(v)) = (src, e.v.as_deref()) {
                    match src.head(&e.k) {
                        Ok(Some(now)) if now.version.as_deref() == Some(v) => {}
                        Ok(Some(now)) => {
                            finding = Some(MismatchKind::SourceChanged {
                                detail: format!(
                                    "copied version {v}, source now {}",
                                    now.version.as_deref().unwrap_or("?")
                                ),
                            })
                        }
                        Ok(None) => {
                            finding = Some(MismatchKind::SourceChanged {
                                detail: "deleted at the source".into(),
                            })
                        }
                        Err(err) => {
                            finding = Some(MismatchKind::Unreadable {
                                error: format!("source: {err}"),
                            })
                        }
                    }
                }
            }
            let r = match finding {
                Some(kind) => Err(kind),
                None if e.kind() == EntryKind::File => p.hbase_check(dst, src, &e.k, e.s),
                None => Ok(None),
            };
            files.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(e.s, Ordering::Relaxed);
            progress(e.s);
            found.add(e.k, r);
        })
    });
    let (mismatches, source_findings) = found.into_parts();
    Ok(VerifyOutcome {
        files: files.into_inner(),
        bytes: bytes.into_inner(),
        mismatches,
        source_findings,
    })
}

/// Keys in byte order, with bounded memory (runs spill under `scratch`).
fn key_sorter(scratch: &Path) -> ExternalSort<String> {
    ExternalSort::new(scratch, DEFAULT_BATCH * 2, |a, b| a.cmp(b))
}

/// Push into a shared sorter from a listing callback; a failure is kept and stops the listing.
fn push_key(
    sort: &Mutex<ExternalSort<String>>,
    failed: &Mutex<Option<hbcp_planner::Error>>,
    key: String,
) -> hbcp_store::Result<()> {
    match sort.lock().unwrap().push(key) {
        Ok(()) => Ok(()),
        Err(e) => {
            let hint = e.to_string();
            *failed.lock().unwrap() = Some(e);
            Err(hbcp_store::Error::Unsupported {
                what: "listing".into(),
                hint,
            })
        }
    }
}

/// Compare two trees (`hbcp verify SRC DST`): every source entry `selection` takes must be at
/// the target with the same size (and checksum, unless `mode` is `Size`); every target entry
/// `dst_selection` takes must be at the source. Memory stays flat at any file count: source entries stream to the checking
/// threads, and the extras come from a merge of the two key listings, each sorted on disk
/// under `scratch`.
pub fn compare_trees(
    src: &dyn Store,
    dst: &dyn Store,
    selection: &Selection,
    dst_selection: &Selection,
    p: &Params,
    scratch: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome> {
    let sort_failed = Mutex::new(None);
    let target = Mutex::new(key_sorter(scratch));
    let listed = dst.list("", &|e: Entry| {
        if e.kind != EntryKind::Skipped && dst_selection.accepts(&e) {
            push_key(&target, &sort_failed, e.key)?;
        }
        Ok(())
    });
    if let Some(e) = sort_failed.lock().unwrap().take() {
        return Err(e.into());
    }
    listed?;
    let source = Mutex::new(key_sorter(scratch));
    let (tx, rx) = crossbeam_channel::bounded::<Entry>(4096);
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let found = Found::default();
    let list_result = std::thread::scope(|s| {
        let (source, sort_failed) = (&source, &sort_failed);
        let lister = s.spawn(move || {
            src.list("", &|e: Entry| {
                if e.kind != EntryKind::Skipped && selection.accepts(&e) {
                    push_key(source, sort_failed, e.key.clone())?;
                    // A closed channel means the consumers are gone; stop quietly.
                    let _ = tx.send(e);
                }
                Ok(())
            })
        });
        pool(p.workers).install(|| {
            rx.into_iter().par_bridge().for_each(|e| {
                let finding = compare_one(
                    dst,
                    &e.key,
                    e.kind,
                    e.size,
                    None,
                    Some((src, e.version.as_deref())),
                    p,
                );
                let r = match finding {
                    Some(kind) => Err(kind),
                    None if e.kind == EntryKind::File => {
                        p.hbase_check(dst, Some(src), &e.key, e.size)
                    }
                    None => Ok(None),
                };
                files.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(e.size, Ordering::Relaxed);
                progress(e.size);
                found.add(e.key, r);
            })
        });
        lister.join().expect("lister thread")
    });
    if let Some(e) = sort_failed.lock().unwrap().take() {
        return Err(e.into());
    }
    list_result?;
    let (mut mismatches, source_findings) = found.into_parts();
    // Extras: target keys that no source entry has (a merge of the two sorted key lists). An
    // empty directory at the target that only holds other extras is reported with them.
    let mut src_keys = source.into_inner().unwrap().finish()?.peekable();
    for t in target.into_inner().unwrap().finish()? {
        let t = t?;
        let mut at_source = false;
        while let Some(s) = src_keys.peek() {
            match s {
                Ok(s) if s.as_str() < t.as_str() => {
                    src_keys.next();
                }
                Ok(s) => {
                    at_source = *s == t;
                    break;
                }
                Err(_) => {
                    return Err(src_keys
                        .next()
                        .expect("peeked")
                        .expect_err("an error")
                        .into());
                }
            }
        }
        if !at_source {
            mismatches.push(Mismatch {
                key: t,
                kind: MismatchKind::Extra,
            });
        }
    }
    mismatches.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(VerifyOutcome {
        files: files.into_inner(),
        bytes: bytes.into_inner(),
        mismatches,
        source_findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hbcp_store::local::LocalStore;
    use std::fs;

    fn params() -> Params {
        Params {
            mode: VerifyMode::Checksum,
            workers: 2,
            range_size: 8,
            chunk: 3,
            hbase: None,
        }
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for (k, v) in [
            ("same", "0123456789abcdef0"),
            ("flip", "0123456789"),
            ("short", "abcdef"),
            ("gone", "x"),
        ] {
            fs::write(a.path().join(k), v).unwrap();
        }
        fs::write(b.path().join("same"), "0123456789abcdef0").unwrap();
        fs::write(b.path().join("flip"), "0123456788").unwrap();
        fs::write(b.path().join("short"), "abc").unwrap();
        fs::write(b.path().join("more"), "z").unwrap();
        fs::create_dir(a.path().join("emptydir")).unwrap();
        let (sa, sb) = (
            LocalStore::new(a.path().into()),
            LocalStore::new(b.path().into()),
        );
        let scratch = tempfile::tempdir().unwrap();
        let out = compare_trees(
            &sa,
            &sb,
            &Selection::default(),
            &Selection::default(),
            &params(),
            scratch.path(),
            &|_| {},
        )
        .unwrap();
        let got: Vec<String> = out.mismatches.iter().map(|m| m.to_string()).collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[0].starts_with("missing: emptydir"), "{got:?}");
        assert!(got[1].starts_with("differs: flip"), "{got:?}");
        assert_eq!(got[2], "missing: gone");
        assert_eq!(got[3], "extra: more");
        assert_eq!(got[4], "short: short (3 of 6 bytes)");
        assert_eq!(out.files, 5);
    }
}
