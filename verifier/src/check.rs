//! The checks. Every copy fault is a [`Mismatch`] naming the key; nothing stops at the first
//! one. On an HBase target the files proven equal to the source also get the HBase checks of
//! [`crate::hbase`], whose findings are the source's ([`SourceFinding`]), not the copy's.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hbcp_state::extsort::{DEFAULT_BATCH, ExternalSort};
use hbcp_store::{Entry, EntryKind, Store};
use rayon::prelude::*;
use serde::Serialize;

use crate::Result;
use crate::hbase::{self, HbaseLayout, SourceFinding};
use hbcp_state::checksum::{hash_file, hex, md5_file};
use hbcp_state::manifest::ManifestEntry;

/// How hard to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// No verification (the copy is not called verified).
    None,
    /// Sizes only.
    Size,
    /// Sizes and checksums of every byte (the default), by the strongest way the target
    /// offers without a second transfer ([`Way::Service`]), else by reading it back.
    #[default]
    Checksum,
    /// Sizes and checksums, every target byte read back and hashed ([`Way::Reread`]).
    Reread,
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

/// How one file was proven equal to its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Not a file, or not proven (a finding).
    NotProven,
    /// Sizes only ([`VerifyMode::Size`]).
    Size,
    /// Bytes read back from the target and hashed.
    Reread,
    /// A checksum the target service computed over the stored object (its MD5), equal to
    /// the one hbcp computed from the source bytes: no read of the target.
    Service,
    /// Every part checked by the service on arrival (a transactional checksum), the commit
    /// naming exactly those parts, and the target unchanged since (see [`crate::transport`]).
    Transport,
}

/// How many files each [`Way`] proved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ways {
    /// Bytes read back and hashed.
    pub reread: u64,
    /// A checksum the service computed over the stored object.
    pub service: u64,
    /// Every part checked by the service on arrival, the commit checked.
    pub transport: u64,
    /// Sizes only.
    pub size: u64,
}

impl Ways {
    fn add(&mut self, o: &Ways) {
        self.reread += o.reread;
        self.service += o.service;
        self.transport += o.transport;
        self.size += o.size;
    }

    /// `service 12, reread 3` (the ways that proved something), or `""`.
    pub fn summary(&self) -> String {
        [
            ("service", self.service),
            ("transport", self.transport),
            ("reread", self.reread),
            ("size", self.size),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(w, n)| format!("{w} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
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
    /// What the run should know about how it was checked (a fallback taken, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Files at a target that is not an HBase layout which the source lacks: reported, not
    /// judged (see [`Extras::others`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<String>,
    /// Files proven equal, by the way each was proven.
    pub ways: Ways,
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
        self.notes.extend(other.notes);
        self.extras.extend(other.extras);
        self.ways.add(&other.ways);
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
        if !matches!(
            self.mode,
            VerifyMode::Checksum | VerifyMode::Reread | VerifyMode::Deep
        ) {
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
    reread: AtomicU64,
    service: AtomicU64,
    transport: AtomicU64,
    size: AtomicU64,
}

impl Found {
    /// Count a file proven equal by `way`.
    fn proven(&self, way: Way) {
        let n = match way {
            Way::NotProven => return,
            Way::Size => &self.size,
            Way::Reread => &self.reread,
            Way::Service => &self.service,
            Way::Transport => &self.transport,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    fn ways(&self) -> Ways {
        Ways {
            reread: self.reread.load(Ordering::Relaxed),
            service: self.service.load(Ordering::Relaxed),
            transport: self.transport.load(Ordering::Relaxed),
            size: self.size.load(Ordering::Relaxed),
        }
    }

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
/// checksum and MD5). Returns the finding, if any, and how the file was proven equal.
///
/// Under [`VerifyMode::Checksum`] a file whose source MD5 is known (or, with the source at
/// hand, read) is proven by the MD5 the target service computed over the stored object, one
/// HEAD and no read of the target; when the service has none, or a different one, the file is
/// read back, which names the difference.
#[allow(clippy::too_many_arguments)]
fn compare_one(
    dst: &dyn Store,
    key: &str,
    expected_kind: EntryKind,
    expected_size: u64,
    expected_sum: Option<u64>,
    expected_md5: Option<[u8; 16]>,
    src_for_sum: Option<(&dyn Store, Option<&str>)>,
    p: &Params,
) -> (Option<MismatchKind>, Way) {
    if p.mode == VerifyMode::Checksum && expected_kind == EntryKind::File {
        if let Ok(Some(got)) = dst.service_md5(key) {
            let want = match (expected_md5, src_for_sum) {
                (Some(m), _) => Some(m),
                // `hbcp verify`: the source is read once, for its MD5.
                (None, Some((src, version))) => md5_file(src, key, expected_size, version).ok(),
                (None, None) => None,
            };
            if want == Some(got) {
                return (None, Way::Service);
            }
        }
    }
    let finding = compare_read(
        dst,
        key,
        expected_kind,
        expected_size,
        expected_sum,
        src_for_sum,
        p,
    );
    let way = match (&finding, expected_kind, p.mode) {
        (Some(_), _, _) | (None, EntryKind::Dir, _) => Way::NotProven,
        (None, _, VerifyMode::Size | VerifyMode::None) => Way::Size,
        (None, _, _) if expected_sum.is_none() && src_for_sum.is_none() => Way::Size,
        (None, _, _) => Way::Reread,
    };
    (finding, way)
}

/// [`compare_one`] by a HEAD and, for checksums, a read of the target.
fn compare_read(
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
            match hash_file(src, key, expected_size, p.range_size, version) {
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
    match hash_file(dst, key, got.size, p.range_size, got.version.as_deref()) {
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

/// How a verification proves that no source file changed since it was copied.
#[derive(Clone, Copy)]
pub enum SourceCheck<'a> {
    /// No source check (and no HBase checks that need the source).
    None,
    /// One HEAD of the source per copied file: cheap on local disk, and for a few files.
    Head(&'a dyn Store),
    /// One listing of the source under each of `prefixes` (those the copy listed), joined by
    /// key with the copied entries; both sides are sorted on disk under `scratch`, so memory
    /// stays flat at any file count. An object store answers a LIST page of 1,000 to 5,000
    /// entries in about the time of one HEAD: for many files this is the cheap way. If the
    /// listing fails, the files are checked with one HEAD each instead (the same findings),
    /// and [`VerifyOutcome::notes`] says so.
    Listing {
        /// The source.
        store: &'a dyn Store,
        /// What to list (`""` for the whole root).
        prefixes: &'a [String],
        /// Where the sorts spill.
        scratch: &'a Path,
    },
}

impl<'a> SourceCheck<'a> {
    fn store(&self) -> Option<&'a dyn Store> {
        match *self {
            SourceCheck::None => None,
            SourceCheck::Head(s) | SourceCheck::Listing { store: s, .. } => Some(s),
        }
    }
}

/// What the source's entry says now (`None`: it is gone; `Some(version)` otherwise) about a
/// file copied at version `v`.
fn source_finding(v: &str, now: Option<Option<&str>>) -> Option<MismatchKind> {
    match now {
        Some(Some(n)) if n == v => None,
        Some(n) => Some(MismatchKind::SourceChanged {
            detail: format!("copied version {v}, source now {}", n.unwrap_or("?")),
        }),
        None => Some(MismatchKind::SourceChanged {
            detail: "deleted at the source".into(),
        }),
    }
}

/// [`source_finding`] by one HEAD of the source.
fn head_finding(src: &dyn Store, key: &str, v: &str) -> Option<MismatchKind> {
    match src.head(key) {
        Ok(now) => source_finding(v, now.as_ref().map(|e| e.version.as_deref())),
        Err(err) => Some(MismatchKind::Unreadable {
            error: format!("source: {err}"),
        }),
    }
}

/// Check a target against manifest entries (what the engine copied, with the checksums it
/// computed while reading the source), and that no source file changed since it was copied
/// as `check` says.
pub fn verify_entries<I>(
    dst: &dyn Store,
    check: SourceCheck<'_>,
    entries: I,
    p: &Params,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome>
where
    I: Iterator<Item = ManifestEntry> + Send,
{
    verify_entries_listing(dst, check, None, entries, p, progress)
}

/// [`verify_entries`]; with `target` and [`VerifyMode::Checksum`], the target is listed under
/// the copied folders first and every file its listing proves ([`crate::listed`]) is proven
/// with no request of its own.
pub fn verify_entries_listing<I>(
    dst: &dyn Store,
    check: SourceCheck<'_>,
    target: Option<crate::listed::TargetListing<'_>>,
    entries: I,
    p: &Params,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome>
where
    I: Iterator<Item = ManifestEntry> + Send,
{
    let mut notes = Vec::new();
    let joined: crate::listed::Joined<'_> = match target {
        Some(t) if p.mode == VerifyMode::Checksum => {
            crate::listed::join(dst, t, entries, &mut notes)?
        }
        _ => Box::new(entries.map(|e| Ok((e, false)))),
    };
    // The first error of the join stops it, and is returned once the checks are done.
    let failed = Mutex::new(None);
    let entries = joined.map_while(|r| match r {
        Ok(x) => Some(x),
        Err(e) => {
            *failed.lock().unwrap() = Some(e);
            None
        }
    });
    let mut out = match check {
        SourceCheck::Listing {
            store,
            prefixes,
            scratch,
        } => verify_listed(dst, store, prefixes, scratch, entries, p, progress)?,
        _ => verify_each(dst, check, entries, p, progress)?,
    };
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    notes.append(&mut out.notes);
    out.notes = notes;
    Ok(out)
}

/// [`verify_entries`] with a HEAD of the source per file, or no source check.
fn verify_each<I>(
    dst: &dyn Store,
    check: SourceCheck<'_>,
    entries: I,
    p: &Params,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome>
where
    I: Iterator<Item = (ManifestEntry, bool)> + Send,
{
    let src = check.store();
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let found = Found::default();
    pool(p.workers).install(|| {
        entries.par_bridge().for_each(|(e, listed)| {
            // A server-side copy has no checksum of the source: hash it here.
            let src_sum = src.filter(|_| e.c).map(|s| (s, e.v.as_deref()));
            let (mut finding, way) = if listed {
                (None, Way::Service)
            } else if crate::transport::proven(dst, &e, p) {
                (None, Way::Transport)
            } else {
                compare_one(dst, &e.k, e.kind(), e.s, e.checksum(), e.md5(), src_sum, p)
            };
            if finding.is_none() {
                if let (Some(src), Some(v)) = (src, e.v.as_deref()) {
                    finding = head_finding(src, &e.k, v);
                }
            }
            let r = match finding {
                Some(kind) => Err(kind),
                None if e.kind() == EntryKind::File => p.hbase_check(dst, src, &e.k, e.s),
                None => Ok(None),
            };
            if r.is_ok() {
                found.proven(way);
            }
            files.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(e.s, Ordering::Relaxed);
            progress(e.s);
            found.add(e.k, r);
        })
    });
    let ways = found.ways();
    let (mismatches, source_findings) = found.into_parts();
    Ok(VerifyOutcome {
        files: files.into_inner(),
        bytes: bytes.into_inner(),
        mismatches,
        source_findings,
        notes: Vec::new(),
        extras: Vec::new(),
        ways,
    })
}

/// A listed source key and its version, ordered by key.
type Listed = (String, Option<String>);

/// [`SourceCheck::Listing`]: the target is checked while the source is listed again; the
/// entries that matched at the target and the listing are then merged by key (both sorted on
/// disk), and what the merge leaves unchanged gets the HBase checks. The findings are those of
/// [`SourceCheck::Head`], found with a LIST page per thousands of files instead of a HEAD each.
fn verify_listed<I>(
    dst: &dyn Store,
    src: &dyn Store,
    prefixes: &[String],
    scratch: &Path,
    entries: I,
    p: &Params,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome>
where
    I: Iterator<Item = (ManifestEntry, bool)> + Send,
{
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let found = Found::default();
    let sort_failed = Mutex::new(None);
    // Only what still needs the source: a version to check, or the HBase checks to run.
    let hbase = p.hbase.is_some()
        && matches!(
            p.mode,
            VerifyMode::Checksum | VerifyMode::Reread | VerifyMode::Deep
        );
    let matched = Mutex::new(hbcp_state::manifest::sorter(scratch));
    let listed = Mutex::new(ExternalSort::<Listed>::new(
        scratch,
        DEFAULT_BATCH,
        |a, b| a.0.cmp(&b.0),
    ));
    let list_result = std::thread::scope(|s| {
        let (listed, sort_failed) = (&listed, &sort_failed);
        let lister = s.spawn(move || -> hbcp_store::Result<()> {
            for prefix in prefixes {
                src.list(prefix, &|e: Entry| {
                    if e.kind == EntryKind::Skipped {
                        return Ok(());
                    }
                    push_sorted(listed, sort_failed, (e.key, e.version))
                })?;
            }
            Ok(())
        });
        pool(p.workers).install(|| {
            entries.par_bridge().for_each(|(e, listed)| {
                let src_sum = e.c.then_some((src, e.v.as_deref()));
                let (finding, way) = if listed {
                    (None, Way::Service)
                } else if crate::transport::proven(dst, &e, p) {
                    (None, Way::Transport)
                } else {
                    compare_one(dst, &e.k, e.kind(), e.s, e.checksum(), e.md5(), src_sum, p)
                };
                if finding.is_none() {
                    found.proven(way);
                }
                files.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(e.s, Ordering::Relaxed);
                progress(e.s);
                match finding {
                    Some(kind) => found.add(e.k, Err(kind)),
                    None if e.v.is_some() || hbase && e.kind() == EntryKind::File => {
                        // A failure is kept; the push is then refused quietly.
                        let _ = push_sorted(&matched, sort_failed, e);
                    }
                    None => {}
                }
            })
        });
        lister.join().expect("lister thread")
    });
    if let Some(e) = sort_failed.lock().unwrap().take() {
        return Err(e.into());
    }
    let mut notes = Vec::new();
    let mut listing = match list_result {
        Ok(()) => Some(listed.into_inner().unwrap().finish()?.peekable()),
        Err(e) => {
            notes.push(format!(
                "the source could not be listed again to check its versions ({e}); checked \
                 with one HEAD per file instead"
            ));
            None
        }
    };
    // The merge, in key order: each matched entry with what the listing says of it (or `None`
    // when there is no listing: a HEAD then). The checks that follow run in parallel.
    let (tx, rx) =
        crossbeam_channel::bounded::<(ManifestEntry, Option<Option<MismatchKind>>)>(4096);
    let merged = std::thread::scope(|s| {
        let merger = s.spawn(move || -> Result<()> {
            let mut last: Option<Listed> = None;
            for e in matched.into_inner().unwrap().finish()? {
                let e = e?;
                let Some(listing) = listing.as_mut() else {
                    let _ = tx.send((e, None));
                    continue;
                };
                // The last listed key at or before this one (kept: a key the spill holds twice
                // is looked up twice).
                while let Some(l) = listing.next_if(|l| l.as_ref().map_or(true, |l| l.0 <= e.k)) {
                    last = Some(l?);
                }
                let now = last.as_ref().filter(|l| l.0 == e.k).map(|l| l.1.as_deref());
                let finding = e.v.as_deref().and_then(|v| source_finding(v, now));
                let _ = tx.send((e, Some(finding)));
            }
            Ok(())
        });
        pool(p.workers).install(|| {
            rx.into_iter().par_bridge().for_each(|(e, listed)| {
                let finding = match (listed, e.v.as_deref()) {
                    (Some(f), _) => f,
                    (None, Some(v)) => head_finding(src, &e.k, v),
                    (None, None) => None,
                };
                let r = match finding {
                    Some(kind) => Err(kind),
                    None if e.kind() == EntryKind::File => p.hbase_check(dst, Some(src), &e.k, e.s),
                    None => Ok(None),
                };
                found.add(e.k, r);
            })
        });
        merger.join().expect("merge thread")
    });
    merged?;
    let ways = found.ways();
    let (mismatches, source_findings) = found.into_parts();
    Ok(VerifyOutcome {
        files: files.into_inner(),
        bytes: bytes.into_inner(),
        mismatches,
        source_findings,
        notes,
        extras: Vec::new(),
        ways,
    })
}

/// Keys in byte order, with bounded memory (runs spill under `scratch`).
fn key_sorter(scratch: &Path) -> ExternalSort<String> {
    ExternalSort::new(scratch, DEFAULT_BATCH * 2, |a, b| a.cmp(b))
}

/// Push into a shared sorter from a listing callback; a failure is kept and stops the listing.
pub(crate) fn push_sorted<T: serde::Serialize + serde::de::DeserializeOwned>(
    sort: &Mutex<ExternalSort<T>>,
    failed: &Mutex<Option<hbcp_state::Error>>,
    t: T,
) -> hbcp_store::Result<()> {
    match sort.lock().unwrap().push(t) {
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

/// Which entries belong to a job (the caller's selection: `--exclude`, hbcp's own folder, the
/// HBase rules); the verifier only asks.
pub type Accepts<'a> = dyn Fn(&Entry) -> bool + Sync + 'a;

/// Compare two trees (`hbcp verify SRC DST`): every source entry `selection` takes must be at
/// the target with the same size (and checksum, unless `mode` is `Size`); every target entry
/// `dst_selection` takes must be at the source. Memory stays flat at any file count: source entries stream to the checking
/// threads, and the extras come from a merge of the two key listings, each sorted on disk
/// under `scratch`.
pub fn compare_trees(
    src: &dyn Store,
    dst: &dyn Store,
    selection: &Accepts<'_>,
    dst_selection: &Accepts<'_>,
    p: &Params,
    scratch: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome> {
    let sort_failed = Mutex::new(None);
    let target = Mutex::new(key_sorter(scratch));
    let listed = dst.list("", &|e: Entry| {
        if e.kind != EntryKind::Skipped && dst_selection(&e) {
            push_sorted(&target, &sort_failed, e.key)?;
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
                if e.kind != EntryKind::Skipped && selection(&e) {
                    push_sorted(source, sort_failed, e.key.clone())?;
                    // A closed channel means the consumers are gone; stop quietly.
                    let _ = tx.send(e);
                }
                Ok(())
            })
        });
        pool(p.workers).install(|| {
            rx.into_iter().par_bridge().for_each(|e| {
                let (finding, way) = compare_one(
                    dst,
                    &e.key,
                    e.kind,
                    e.size,
                    None,
                    None,
                    Some((src, e.version.as_deref())),
                    p,
                );
                if finding.is_none() {
                    found.proven(way);
                }
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
    let ways = found.ways();
    let (mut mismatches, source_findings) = found.into_parts();
    // Extras: target keys that no source entry has. An empty directory at the target that
    // only holds other extras is reported with them.
    for t in unmatched(target.into_inner().unwrap(), source.into_inner().unwrap())? {
        mismatches.push(Mismatch {
            key: t,
            kind: MismatchKind::Extra,
        });
    }
    mismatches.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(VerifyOutcome {
        files: files.into_inner(),
        bytes: bytes.into_inner(),
        mismatches,
        source_findings,
        notes: Vec::new(),
        extras: Vec::new(),
        ways,
    })
}

/// The keys of `target` that `source` lacks, in key order: a merge of the two sorted lists.
fn unmatched(target: ExternalSort<String>, source: ExternalSort<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut src_keys = source.finish()?.peekable();
    for t in target.finish()? {
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
            out.push(t);
        }
    }
    Ok(out)
}

/// What [`find_extras`] found at a target besides what a copy wrote or found there.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// On an HBase target, files under a table, region or family folder the copy wrote into:
    /// HBase would load them (resurrected or duplicated cells), so each is a copy fault.
    pub faults: Vec<String>,
    /// On a target that is not an HBase layout, the files the source lacks: reported, not
    /// judged (a plain folder may well gather other files).
    pub others: Vec<String>,
    /// Target entries listed to find them.
    pub listed: u64,
}

/// `--delete-extra`: remove the extras that are copy faults, within the same cap as
/// `sync --delete`.
#[derive(Debug, Clone, Copy)]
pub struct DeleteExtra {
    /// The largest share of the listed target files that may be deleted without `force`.
    pub max_share: f64,
    /// Delete even more.
    pub force: bool,
}

impl Extras {
    /// Add what was found to a verification: the faults as [`MismatchKind::Extra`], the rest
    /// to [`VerifyOutcome::extras`]. With `delete`, the faults are removed from `dst` first
    /// (all of them, or none when they are more than the cap allows); each key removed is
    /// returned, and the line that says why none was, if so. A fault whose removal failed
    /// stays a fault, with a note saying why.
    pub fn settle(
        self,
        dst: &dyn Store,
        delete: Option<DeleteExtra>,
        out: &mut VerifyOutcome,
    ) -> (Vec<String>, Option<String>) {
        let mut deleted = Vec::new();
        let mut refused = None;
        let mut faults = self.faults;
        if let (Some(d), false) = (delete, faults.is_empty()) {
            let share = faults.len() as f64 / self.listed.max(1) as f64;
            if share > d.max_share && !d.force {
                refused = Some(format!(
                    "--delete-extra would delete {} of {} target files under the copied folders \
                     ({:.1}%), more than --max-delete {:.1}%; pass --force to delete them",
                    faults.len(),
                    self.listed,
                    share * 100.0,
                    d.max_share * 100.0
                ));
            } else {
                let mut kept = Vec::new();
                for k in faults {
                    match dst.delete(&k) {
                        Ok(()) => deleted.push(k),
                        Err(e) => {
                            out.notes
                                .push(format!("could not remove the extra {k}: {e}"));
                            kept.push(k);
                        }
                    }
                }
                faults = kept;
            }
        }
        out.mismatches
            .extend(faults.into_iter().map(|key| Mismatch {
                key,
                kind: MismatchKind::Extra,
            }));
        out.mismatches.sort_by(|a, b| a.key.cmp(&b.key));
        out.extras.extend(self.others);
        (deleted, refused)
    }
}

/// The folder whose every file HBase loads as part of the table that `key` belongs to: for
/// the root layout the table folder (`data/NS/TABLE/`, regions and families below it), for
/// the bulkload layout the family folder (`TABLE/FAMILY/`). `None` for keys outside them.
pub fn hbase_folder(key: &str, layout: HbaseLayout) -> Option<String> {
    let parts: Vec<&str> = key.split('/').collect();
    match layout {
        HbaseLayout::Root if parts.len() >= 4 && parts[0] == "data" => {
            Some(format!("data/{}/{}/", parts[1], parts[2]))
        }
        HbaseLayout::Bulkload if parts.len() >= 3 => Some(format!("{}/{}/", parts[0], parts[1])),
        _ => None,
    }
}

/// The target's extras after a copy: `spill` is the copy's manifest spill (every key the copy
/// put at the target or found there), `selection` the keys that belong to the job at all (hbcp's own
/// folder, HBase's transient folders and `--exclude` are never extras). On an HBase target
/// (`layout`) only the folders of [`hbase_folder`] that the copy wrote into are listed, and
/// what they hold beyond the copy are [`Extras::faults`]; otherwise the whole target is listed
/// and its extras are [`Extras::others`]. Memory stays flat: both key lists are sorted on
/// disk under `scratch`.
pub fn find_extras(
    dst: &dyn Store,
    spill: &Path,
    layout: Option<HbaseLayout>,
    selection: &Accepts<'_>,
    scratch: &Path,
) -> Result<Extras> {
    let mut source = key_sorter(scratch);
    let mut folders = std::collections::BTreeSet::new();
    let file = std::fs::File::open(spill)
        .map_err(|e| hbcp_store::Error::io(spill.display().to_string(), "open", e))?;
    hbcp_state::manifest::read(file, &spill.display().to_string(), |e| {
        if let Some(f) = layout.and_then(|l| hbase_folder(&e.k, l)) {
            folders.insert(f);
        }
        source.push(e.k)
    })?;
    let prefixes: Vec<String> = match layout {
        Some(_) => folders.into_iter().collect(),
        None => vec![String::new()],
    };
    let sort_failed = Mutex::new(None);
    let target = Mutex::new(key_sorter(scratch));
    let listed = AtomicU64::new(0);
    for prefix in &prefixes {
        let r = dst.list(prefix, &|e: Entry| {
            // A folder marker of the listed folder itself (`data/ns/t/`) is not under it.
            if e.kind != EntryKind::Skipped && e.key.starts_with(prefix) && selection(&e) {
                listed.fetch_add(1, Ordering::Relaxed);
                push_sorted(&target, &sort_failed, e.key)?;
            }
            Ok(())
        });
        if let Some(e) = sort_failed.lock().unwrap().take() {
            return Err(e.into());
        }
        match r {
            Ok(()) | Err(hbcp_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let extra = unmatched(target.into_inner().unwrap(), source)?;
    let listed = listed.into_inner();
    Ok(match layout {
        Some(_) => Extras {
            faults: extra,
            others: Vec::new(),
            listed,
        },
        None => Extras {
            faults: Vec::new(),
            others: extra,
            listed,
        },
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

    /// Source changes found by `check`, as (key, line) sorted by key.
    fn changes(
        dst: &LocalStore,
        check: SourceCheck<'_>,
        entries: &[ManifestEntry],
    ) -> (Vec<String>, Vec<String>) {
        let out = verify_entries(dst, check, entries.iter().cloned(), &params(), &|_| {}).unwrap();
        assert_eq!(out.files, entries.len() as u64);
        let mut got: Vec<String> = out.mismatches.iter().map(|m| m.to_string()).collect();
        got.sort();
        (got, out.notes)
    }

    #[test]
    fn a_listing_of_the_source_finds_what_a_head_per_file_finds() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (sa, sb) = (
            LocalStore::new(a.path().into()),
            LocalStore::new(b.path().into()),
        );
        let mut entries = Vec::new();
        for (k, v) in [
            ("d/same", "same"),
            ("d/edit", "edit"),
            ("gone", "gone"),
            ("empty", ""),
        ] {
            for root in [a.path(), b.path()] {
                fs::create_dir_all(root.join("d")).unwrap();
                fs::write(root.join(k), v).unwrap();
            }
            let e = sa.head(k).unwrap().unwrap();
            let h = hash_file(&sa, k, e.size, 8, None).unwrap();
            entries.push(ManifestEntry::file(&e, h));
        }
        fs::create_dir(a.path().join("dir")).unwrap();
        fs::create_dir(b.path().join("dir")).unwrap();
        entries.push(ManifestEntry::dir("dir"));
        // After the copy: one source file rewritten, one deleted; a target file differs too
        // (a copy fault, found before any source check).
        fs::write(a.path().join("d/edit"), "edited at the source").unwrap();
        fs::remove_file(a.path().join("gone")).unwrap();
        fs::write(b.path().join("d/same"), "SAME").unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let root = [String::new()];
        let (heads, notes) = changes(&sb, SourceCheck::Head(&sa), &entries);
        assert!(notes.is_empty());
        assert_eq!(heads.len(), 3, "{heads:?}");
        assert!(heads[0].starts_with("differs: d/same"), "{heads:?}");
        assert!(
            heads[1].starts_with("source changed during the copy: d/edit (copied version ")
                && heads[1].contains(", source now "),
            "{heads:?}"
        );
        assert_eq!(
            heads[2],
            "source changed during the copy: gone (deleted at the source)"
        );
        let listing = SourceCheck::Listing {
            store: &sa,
            prefixes: &root,
            scratch: scratch.path(),
        };
        let (listed, notes) = changes(&sb, listing, &entries);
        assert!(notes.is_empty());
        assert_eq!(listed, heads);
        // A key the manifest holds twice is found at the source twice.
        let mut twice = entries.clone();
        twice.push(entries[3].clone());
        let (got, _) = changes(&sb, listing, &twice);
        assert_eq!(got, heads);
        // Listed per folder, with a folder the copy did not list ("d/" only): what is outside
        // reads as deleted, so the prefixes must be the copy's own.
        let d = ["d/".to_string()];
        let (part, _) = changes(
            &sb,
            SourceCheck::Listing {
                store: &sa,
                prefixes: &d,
                scratch: scratch.path(),
            },
            &entries,
        );
        assert_eq!(part.len(), 4, "{part:?}");
        assert!(
            part.contains(&"source changed during the copy: empty (deleted at the source)".into()),
            "{part:?}"
        );
        // A listing that fails (a name that is not UTF-8 stops a local listing): one HEAD per
        // file instead, the same findings, and a note.
        use std::os::unix::ffi::OsStrExt;
        fs::write(a.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x").unwrap();
        let (fallback, notes) = changes(&sb, listing, &entries);
        assert_eq!(fallback, heads);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("one HEAD per file instead"), "{notes:?}");
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
            &|_| true,
            &|_| true,
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
