//! Selections that know HBase: a table's closure (`--table`), a snapshot in ExportSnapshot's
//! layout (`--snapshot`), regions by row-key range (`--start-row`/`--end-row`), HFiles by cell
//! time range (`--since`/`--until`), and the completebulkload layout (`--layout bulkload`).
//!
//! A selection is resolved once against the source into a [`View`]: every file of the job under
//! the key it gets at the target, with the source key(s) it is read from. The engine and the
//! verifier then see the source through a [`ViewStore`], which lists the view and reads each
//! target key from its source — so copy, resume, verification and the manifest work unchanged
//! when keys differ between the two sides (a snapshot's HFiles land in `archive/`, a bulkload
//! layout drops the region level).
//!
//! What is read: `.regioninfo` files (for row ranges and split parents), the snapshot's
//! `.snapshotinfo` and manifest, and for a time range the trailer and FileInfo of each HFile (a
//! 4 KiB tail read and the load-on-open section), with bounded parallelism.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use hbcp_hbase::{
    HFileLinkName, HFileTrailer, PathKind, ReferencedHFile, RegionInfo, TableRef, classify,
    parse_hfile_link_name, parse_region_info, parse_region_manifest, parse_snapshot_info,
    parse_snapshot_manifest, read_file_info, resolve_store_file, v1_referenced_hfiles,
};
use hbcp_store::{Caps, Entry, EntryKind, ListSink, Store, Upload};
use serde::{Deserialize, Serialize};

pub use crate::items::Item;
use crate::items::{Items, SealError};
use crate::select::{Scope, hbase_leaves_out};

/// Target layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The same relative paths as the source (ExportSnapshot's layout for snapshots).
    #[default]
    Root,
    /// `<table>/<family>/<hfile>`, for HBase's completebulkload.
    Bulkload,
}

/// An HBase selection, as given on the command line (checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectSpec {
    /// `--table` (namespace, qualifier).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<(String, String)>,
    /// `--snapshot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// `--start-row` (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_row: Option<Vec<u8>>,
    /// `--end-row` (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_row: Option<Vec<u8>>,
    /// `--since`, ms since the epoch (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// `--until`, ms since the epoch (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// `--layout`.
    #[serde(default)]
    pub layout: Layout,
}

impl SelectSpec {
    /// True when the selection needs a [`View`] (a table, a snapshot or the bulkload layout).
    pub fn is_view(&self) -> bool {
        !self.tables.is_empty() || self.snapshot.is_some()
    }

    /// One string per option, for the job identity.
    pub fn describe(&self) -> Vec<String> {
        if *self == SelectSpec::default() {
            return Vec::new();
        }
        vec![format!(
            "\0select {}",
            serde_json::to_string(self).unwrap_or_default()
        )]
    }

    /// Check combinations that need no source; the message is one line for exit 2.
    pub fn check(&self) -> Result<(), String> {
        if self.snapshot.is_some() && !self.tables.is_empty() {
            return Err(
                "--snapshot and --table cannot be combined: a snapshot is of one table already"
                    .into(),
            );
        }
        let rows = self.start_row.is_some() || self.end_row.is_some();
        let times = self.since.is_some() || self.until.is_some();
        if (rows || times) && !self.is_view() {
            return Err(format!(
                "{} needs --table NS:NAME (or --snapshot NAME with --layout bulkload): ranges select regions and HFiles of a table",
                if rows {
                    "--start-row/--end-row"
                } else {
                    "--since/--until"
                }
            ));
        }
        if self.snapshot.is_some() && self.layout == Layout::Root && (rows || times) {
            return Err("--start-row/--end-row/--since/--until with --snapshot would leave a snapshot whose manifest names files that were not copied; add --layout bulkload, or copy the whole snapshot".into());
        }
        if self.layout == Layout::Bulkload && !self.is_view() {
            return Err("--layout bulkload needs --table NS:NAME or --snapshot NAME (it writes <table>/<family>/<hfile>)".into());
        }
        if let (Some(s), Some(e)) = (&self.start_row, &self.end_row) {
            if !e.is_empty() && s >= e {
                return Err(format!(
                    "--start-row {} is not before --end-row {}; the range is [start, end)",
                    show_key(s),
                    show_key(e)
                ));
            }
        }
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if s >= u {
                return Err(format!(
                    "--since {s} is not before --until {u}; the range is [since, until) in ms"
                ));
            }
        }
        Ok(())
    }

    fn row_overlaps(&self, r: &RegionInfo) -> bool {
        let (s, e) = (
            self.start_row.as_deref().unwrap_or(b""),
            self.end_row.as_deref().unwrap_or(b""),
        );
        (r.end_key.is_empty() || s < r.end_key.as_slice())
            && (e.is_empty() || r.start_key.as_slice() < e)
    }

    fn has_rows(&self) -> bool {
        self.start_row.is_some() || self.end_row.is_some()
    }

    fn has_times(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    fn time_overlaps(&self, (min, max): (i64, i64)) -> bool {
        self.since.is_none_or(|s| max >= s) && self.until.is_none_or(|u| min < u)
    }
}

/// A row key as the HBase shell prints it: printable ASCII as is, other bytes as `\xNN`.
pub fn show_key(k: &[u8]) -> String {
    let mut s = String::new();
    for &b in k {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02X}"));
        }
    }
    s
}

/// Parse a row key as the HBase shell takes it: characters as UTF-8, `\xNN` as one byte,
/// `\\` as a backslash.
pub fn parse_row_key(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1) {
                Some(b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                Some(b'x') | Some(b'X') => {
                    let hex = s.get(i + 2..i + 4).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(v) if hex.len() == 2 && hex.bytes().all(|c| c.is_ascii_hexdigit()) => {
                            out.push(v);
                            i += 4;
                        }
                        _ => {
                            return Err(format!(
                                "{s:?}: \\x at byte {i} must be followed by two hex digits (e.g. \\x00)"
                            ));
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "{s:?}: unknown escape at byte {i}; use \\xNN for a byte or \\\\ for a backslash"
                    ));
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Parse a cell time: milliseconds since the epoch, or an RFC 3339 date/time
/// (`2024-05-01`, `2024-05-01T12:00:00Z`), UTC.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map_err(|_| format!("{s:?}: out of range for a time in ms"));
    }
    let full = if t.len() == 10 && t.as_bytes().get(4) == Some(&b'-') {
        format!("{t}T00:00:00Z")
    } else {
        t.to_string()
    };
    match humantime::parse_rfc3339_weak(&full) {
        Ok(st) => st
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .map_err(|_| format!("{s:?}: before 1970")),
        Err(_) => Err(format!(
            "{s:?} is not a time; expected milliseconds since the epoch (as HBase stores cell timestamps) or a UTC date/time such as 2024-05-01 or 2024-05-01T12:00:00Z"
        )),
    }
}

/// A snapshot copied in ExportSnapshot's order: its files are written under `tmp` first and
/// become visible under `visible` only after everything verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// `.hbase-snapshot/.tmp/<name>/`.
    pub tmp: String,
    /// `.hbase-snapshot/<name>/`.
    pub visible: String,
}

impl Publish {
    /// The key a visible snapshot file is written to first.
    pub fn tmp_key(&self, visible_key: &str) -> Option<String> {
        visible_key
            .strip_prefix(&self.visible)
            .map(|rest| format!("{}{rest}", self.tmp))
    }
    /// The visible key of a file written under `tmp`.
    pub fn visible_key(&self, tmp_key: &str) -> Option<String> {
        tmp_key
            .strip_prefix(&self.tmp)
            .map(|rest| format!("{}{rest}", self.visible))
    }
}

/// A resolved selection.
#[derive(Debug)]
pub struct View {
    /// The files, in target-key order (on disk past a batch; sealed once resolved).
    pub items: Items,
    /// Folders the selection owns at the target (for the verifier's "extra" findings).
    pub prefixes: Vec<String>,
    /// Root identity files (`hbase.version`, `hbase.id`): copied only when the target has none.
    pub identity: Vec<String>,
    /// A snapshot's publishing order.
    pub publish: Option<Publish>,
    /// Source findings met while resolving (dangling links, missing parents, unreadable
    /// time ranges), one line each.
    pub warnings: Vec<String>,
    /// What was selected, one line each, for the summary.
    pub notes: Vec<String>,
}

impl View {
    fn new() -> Result<View, ViewError> {
        Ok(View {
            items: Items::new()?,
            prefixes: Vec::new(),
            identity: Vec::new(),
            publish: None,
            warnings: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// The scope of the view at the target, for a [`crate::Selection`]: the folders it owns.
    /// (A file outside them is always a file of the view itself, so it is never "extra".)
    pub fn scope(&self) -> Scope {
        Scope {
            prefixes: self.prefixes.clone(),
        }
    }

    fn add(&mut self, key: String, e: &Entry, sources: Vec<String>) -> Result<(), ViewError> {
        let sources = if sources.len() == 1 && sources[0] == key {
            Vec::new()
        } else {
            sources
        };
        Ok(self.items.push(key, e, sources)?)
    }
}

/// Where HBase looks for an HFile of `archive/data/…` (a snapshot's HFile is copied to its
/// archive key and read from the first of these that has it).
pub fn archive_candidates(key: &str) -> Option<[String; 4]> {
    let tail = key.strip_prefix("archive/data/")?;
    Some([
        format!("data/{tail}"),
        key.to_string(),
        format!(".tmp/data/{tail}"),
        format!("mobdir/data/{tail}"),
    ])
}

/// Why a selection could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// Bad input: an unknown table or snapshot, an impossible combination (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The source could not be read.
    #[error(transparent)]
    Store(#[from] hbcp_store::Error),
    /// The selection's spill files could not be written or read.
    #[error("the selection's file list: {0}")]
    Spill(#[from] crate::Error),
}

impl From<SealError> for ViewError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Conflict(c) => ViewError::Usage(c.to_string()),
            SealError::Spill(e) => ViewError::Spill(e),
        }
    }
}

fn list(src: &dyn Store, prefix: &str) -> hbcp_store::Result<Vec<Entry>> {
    let out = Mutex::new(Vec::new());
    src.list(prefix, &|e: Entry| {
        if e.kind != EntryKind::Skipped {
            out.lock().unwrap().push(e);
        }
        Ok(())
    })?;
    let mut v = out.into_inner().unwrap();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(v)
}

fn read_all(src: &dyn Store, e: &Entry) -> hbcp_store::Result<Vec<u8>> {
    let mut buf = Vec::new();
    src.read_range(&e.key, 0..e.size, None, &mut buf)?;
    Ok(buf)
}

/// Run `f` over `items` on at most `workers` threads; results in input order.
fn parallel<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    *out[i].lock().unwrap() = Some(f(&items[i]));
                }
            });
        }
    });
    out.into_iter()
        .map(|m| m.into_inner().unwrap().expect("every item done"))
        .collect()
}

/// The cell time range of an HBase HFile, from its trailer and FileInfo (two ranged reads).
pub fn hfile_time_range(src: &dyn Store, e: &Entry) -> Result<(i64, i64), String> {
    let mut tail = Vec::new();
    src.read_range(&e.key, HFileTrailer::tail_range(e.size), None, &mut tail)
        .map_err(|x| x.to_string())?;
    let trailer = HFileTrailer::parse(&tail, e.size).map_err(|x| x.to_string())?;
    let r = trailer.load_on_open_range(e.size);
    let mut section = Vec::new();
    src.read_range(&e.key, r.clone(), None, &mut section)
        .map_err(|x| x.to_string())?;
    let info = read_file_info(&section, r.start, &trailer).map_err(|x| x.to_string())?;
    info.time_range
        .ok_or_else(|| "no TIMERANGE in its FileInfo".to_string())
}

/// The tables under `data/`, as `ns:name`, for error messages.
pub fn list_tables(src: &dyn Store) -> hbcp_store::Result<Vec<String>> {
    let names = Mutex::new(BTreeSet::new());
    src.list("data/", &|e: Entry| {
        let mut it = e.key.split('/');
        if let (Some("data"), Some(ns), Some(t), Some(_)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            if !t.starts_with('.') {
                names.lock().unwrap().insert(format!("{ns}:{t}"));
            }
        }
        Ok(())
    })?;
    Ok(names.into_inner().unwrap().into_iter().collect())
}

/// A physical HFile the view needs, with the items that exist only for it.
struct Unit {
    /// Where the HFile is at the source (first found) and its entry.
    file: Entry,
    /// Where HBase would look for it, in order.
    candidates: Vec<String>,
    /// Target key of the HFile.
    target: String,
    /// Link and reference files (root layout) that lead to it: (target key, entry).
    leading: Vec<Entry>,
}

/// HFiles whose cell time range is read together (in parallel) before they are kept or left.
const TIME_BATCH: usize = 4096;

/// Takes the units of a view as they are found: adds them at once, or with a time range in
/// batches of [`TIME_BATCH`] after reading each distinct HFile's FileInfo once.
struct Units<'a> {
    src: &'a dyn Store,
    spec: &'a SelectSpec,
    workers: usize,
    batch: Vec<Unit>,
    kept: u64,
    unknown: u64,
}

impl<'a> Units<'a> {
    fn new(src: &'a dyn Store, spec: &'a SelectSpec, workers: usize) -> Self {
        Units {
            src,
            spec,
            workers,
            batch: Vec::new(),
            kept: 0,
            unknown: 0,
        }
    }

    fn push(&mut self, u: Unit, v: &mut View) -> Result<(), ViewError> {
        if !self.spec.has_times() {
            return self.keep(u, v);
        }
        self.batch.push(u);
        if self.batch.len() >= TIME_BATCH {
            self.flush(v)?;
        }
        Ok(())
    }

    fn keep(&mut self, u: Unit, v: &mut View) -> Result<(), ViewError> {
        self.kept += 1;
        for l in &u.leading {
            v.add(l.key.clone(), l, Vec::new())?;
        }
        v.add(u.target, &u.file, u.candidates)
    }

    fn flush(&mut self, v: &mut View) -> Result<(), ViewError> {
        let units = std::mem::take(&mut self.batch);
        let mut distinct: Vec<Entry> = units.iter().map(|u| u.file.clone()).collect();
        distinct.sort_by(|a, b| a.key.cmp(&b.key));
        distinct.dedup_by(|a, b| a.key == b.key);
        let ranges = parallel(&distinct, self.workers, |e| hfile_time_range(self.src, e));
        let mut by_key = HashMap::new();
        for (e, r) in distinct.iter().zip(ranges) {
            let keep = match r {
                Ok(tr) => self.spec.time_overlaps(tr),
                Err(why) => {
                    self.unknown += 1;
                    if self.unknown <= 20 {
                        v.warnings.push(format!(
                            "{}: cell time range unknown ({why}); copied, as it may hold cells in the range",
                            e.key
                        ));
                    }
                    true
                }
            };
            by_key.insert(e.key.clone(), keep);
        }
        for u in units {
            if by_key[&u.file.key] {
                self.keep(u, v)?;
            }
        }
        Ok(())
    }

    /// The last batch; the count of HFiles kept goes to the notes, and is returned.
    fn finish(mut self, v: &mut View) -> Result<u64, ViewError> {
        self.flush(v)?;
        if self.unknown > 20 {
            v.warnings.push(format!(
                "{} more HFiles with an unknown time range were copied",
                self.unknown - 20
            ));
        }
        v.notes.push(format!("HFiles selected: {}", self.kept));
        Ok(self.kept)
    }
}

/// Stream the listing of `prefix` to `f` on this thread (the listing runs on another), HBase's
/// transient files and entries that are not copied left out. An error of `f` stops the listing.
fn for_each_listed(
    src: &dyn Store,
    prefix: &str,
    mut f: impl FnMut(Entry) -> Result<(), ViewError>,
) -> Result<(), ViewError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Entry>(1024);
    std::thread::scope(|s| {
        let lister = s.spawn(move || {
            src.list(prefix, &|e: Entry| {
                if e.kind == EntryKind::Skipped || hbase_leaves_out(&e.key, e.is_dir(), false) {
                    return Ok(());
                }
                tx.send(e).map_err(|_| hbcp_store::Error::Unsupported {
                    what: "listing".into(),
                    hint: "stopped: the selection could not be resolved".into(),
                })
            })
        });
        let mut out = Ok(());
        for e in rx.iter() {
            if let Err(x) = f(e) {
                out = Err(x);
                break;
            }
        }
        drop(rx);
        let listed = lister
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        out?;
        Ok(listed?)
    })
}

/// Resolve `spec` against `src` (which must not be written meanwhile for the result to hold).
/// `workers` bounds the parallel reads of small files and HFile trailers. The files stream from
/// the listing into the view's [`Items`]: memory holds the regions of a table, not its files.
pub fn build_view(src: &dyn Store, spec: &SelectSpec, workers: usize) -> Result<View, ViewError> {
    if let Err(m) = spec.check() {
        return Err(ViewError::Usage(m));
    }
    let mut v = View::new()?;
    let mut units = Units::new(src, spec, workers);
    if let Some(name) = &spec.snapshot {
        snapshot_units(src, spec, name, &mut v, &mut units)?;
    } else {
        for (ns, q) in &spec.tables {
            table_units(
                src,
                spec,
                &TableRef::new(ns, q),
                workers,
                &mut v,
                &mut units,
            )?;
        }
        if spec.layout == Layout::Root {
            for k in ["hbase.version", "hbase.id"] {
                if let Some(e) = src.head(k)? {
                    v.identity.push(k.to_string());
                    v.add(k.to_string(), &e, Vec::new())?;
                }
            }
        }
    }
    let kept = units.finish(&mut v)?;
    if spec.has_times() {
        // Files left out inside the selected folders are not "extra" at the target.
        v.prefixes.clear();
    }
    v.items.seal()?;
    bulkload_note(&mut v, spec, kept);
    Ok(v)
}

/// In the bulkload layout an HFile that several References or HFileLinks lead to (a split's
/// daughters share their parent's) is one file at the target: the note says how many files the
/// HFiles selected make, so that it and the copy's "copied N files" count the same set.
fn bulkload_note(v: &mut View, spec: &SelectSpec, kept: u64) {
    let stored = v.items.len();
    if spec.layout != Layout::Bulkload || stored >= kept {
        return;
    }
    if let Some(n) = v
        .notes
        .iter_mut()
        .rev()
        .find(|n| n.starts_with("HFiles selected: "))
    {
        *n = format!(
            "HFiles selected: {kept}, stored as {stored} files under <table>/<family>/<hfile> (an HFile that References or HFileLinks share is stored once)"
        );
    }
}

fn table_dir_name(t: &TableRef) -> String {
    if t.namespace == "default" {
        t.qualifier.clone()
    } else {
        format!("{}={}", t.namespace, t.qualifier)
    }
}

fn bulk_key(t: &TableRef, family: &str, hfile: &str) -> String {
    format!("{}/{family}/{hfile}", table_dir_name(t))
}

/// Find the first of `candidates` that exists.
fn find_first(src: &dyn Store, candidates: &[String]) -> hbcp_store::Result<Option<Entry>> {
    for c in candidates {
        if let Some(e) = src.head(c)? {
            if e.kind == EntryKind::File {
                return Ok(Some(e));
            }
        }
    }
    Ok(None)
}

fn table_units(
    src: &dyn Store,
    spec: &SelectSpec,
    t: &TableRef,
    workers: usize,
    v: &mut View,
    units: &mut Units<'_>,
) -> Result<(), ViewError> {
    let tdir = format!("data/{}/{}/", t.namespace, t.qualifier);
    let bulk = spec.layout == Layout::Bulkload;
    let region_of = |key: &str| -> Option<String> {
        let (first, _) = key[tdir.len()..].split_once('/')?;
        (!first.starts_with('.')).then(|| first.to_string())
    };
    // Regions and their .regioninfo, when the choice of regions depends on them: a first
    // listing that keeps only those (a table has thousands of regions, not millions).
    let mut regions: BTreeMap<String, Option<RegionInfo>> = BTreeMap::new();
    let mut listed_any = false;
    let decide = spec.has_rows() || bulk;
    if decide {
        let mut infos = Vec::new();
        for_each_listed(src, &tdir, |e| {
            listed_any = true;
            if let Some(r) = region_of(&e.key) {
                regions.entry(r).or_insert(None);
            }
            if matches!(classify(&e.key), PathKind::RegionInfo { .. }) {
                infos.push(e);
            }
            Ok(())
        })?;
        if !listed_any {
            return Err(no_such_table(src, t)?);
        }
        let parsed = parallel(&infos, workers, |e| {
            read_all(src, e).map(|b| parse_region_info(&b).map_err(|x| x.to_string()))
        });
        for (e, r) in infos.iter().zip(parsed) {
            let region = e.key[tdir.len()..]
                .split('/')
                .next()
                .unwrap_or("")
                .to_string();
            match r? {
                Ok(ri) => {
                    regions.insert(region, Some(ri));
                }
                Err(why) => v
                    .warnings
                    .push(format!("{}: unreadable ({why}); region kept", e.key)),
            }
        }
    }
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut split_parents = 0;
    for (r, ri) in &regions {
        let take = match ri {
            Some(ri) => {
                if bulk && ri.split && ri.offline {
                    // A split parent: its rows are served by the daughters' references.
                    split_parents += 1;
                    false
                } else {
                    !spec.has_rows() || spec.row_overlaps(ri)
                }
            }
            None => {
                if spec.has_rows() {
                    v.warnings.push(format!(
                        "{tdir}{r}: no readable .regioninfo, key range unknown; region kept"
                    ));
                }
                true
            }
        };
        if take {
            chosen.insert(r.clone());
        }
    }
    // The files, streamed from the listing. Without a row range every region is taken, and
    // the regions are counted as they come.
    let mut mob_families = BTreeSet::new();
    for_each_listed(src, &tdir, |e| {
        listed_any = true;
        let region = region_of(&e.key);
        let Some(region) = region else {
            // Table descriptor and any other table-level file (root layout).
            if let PathKind::TableDescriptor { .. } = classify(&e.key) {
                if let Ok(b) = read_all(src, &e) {
                    if let Ok(d) = hbcp_hbase::parse_table_descriptor(&b) {
                        for f in d.families.iter().filter(|f| f.is_mob()) {
                            mob_families.insert(f.name.clone());
                        }
                    }
                }
            }
            if !bulk {
                v.add(e.key.clone(), &e, Vec::new())?;
            }
            return Ok(());
        };
        if decide {
            if !chosen.contains(&region) {
                return Ok(());
            }
        } else if !chosen.contains(&region) {
            chosen.insert(region.clone());
            regions.insert(region, None);
        }
        region_file(src, t, &tdir, e, bulk, v, units)
    })?;
    if !listed_any {
        return Err(no_such_table(src, t)?);
    }
    v.notes.push(format!(
        "table {}: {} of {} regions{}",
        hbcp_name(t),
        chosen.len(),
        regions.len(),
        if split_parents > 0 {
            format!(" ({split_parents} split parents read through their daughters' references)")
        } else {
            String::new()
        }
    ));
    if !bulk {
        v.prefixes.push(format!("{tdir}.tabledesc/"));
        for r in &chosen {
            v.prefixes.push(format!("{tdir}{r}/"));
        }
    }
    // The table's MOB files.
    let mob = format!("mobdir/data/{}/{}/", t.namespace, t.qualifier);
    if bulk && !mob_families.is_empty() {
        return Err(no_mob_in_bulkload(t));
    }
    let mut mobs = 0u64;
    for_each_listed(src, &mob, |e| {
        if bulk {
            if e.kind == EntryKind::File {
                return Err(no_mob_in_bulkload(t));
            }
            return Ok(());
        }
        mobs += 1;
        v.add(e.key.clone(), &e, Vec::new())
    })?;
    if mobs > 0 {
        v.prefixes.push(mob.clone());
        v.notes.push(format!(
            "table {}: {mobs} MOB files (mobdir is copied whole)",
            hbcp_name(t),
        ));
    }
    Ok(())
}

fn no_mob_in_bulkload(t: &TableRef) -> ViewError {
    ViewError::Usage(format!(
        "--layout bulkload: table {} has MOB data (mobdir/ or IS_MOB families), which completebulkload cannot carry; copy it with the default --layout root",
        hbcp_name(t)
    ))
}

fn no_such_table(src: &dyn Store, t: &TableRef) -> Result<ViewError, ViewError> {
    let found = list_tables(src)?;
    Ok(ViewError::Usage(format!(
        "--table {}: no such table under data/ (tables found: {})",
        hbcp_name(t),
        if found.is_empty() {
            "none".to_string()
        } else {
            found.join(", ")
        }
    )))
}

/// One file inside a chosen region: an HFile, a link or reference (resolved to the HFile it
/// leads to), or another region file (root layout).
fn region_file(
    src: &dyn Store,
    t: &TableRef,
    tdir: &str,
    e: Entry,
    bulk: bool,
    v: &mut View,
    units: &mut Units<'_>,
) -> Result<(), ViewError> {
    match classify(&e.key) {
        PathKind::HFile { at, name, .. } => units.push(
            Unit {
                candidates: vec![e.key.clone()],
                target: if bulk {
                    bulk_key(t, &at.family, &name)
                } else {
                    e.key.clone()
                },
                file: e,
                leading: Vec::new(),
            },
            v,
        ),
        PathKind::HFileLink { at, target, .. } => {
            let lead = if bulk { Vec::new() } else { vec![e.clone()] };
            link_unit(src, t, &at.family, &target, lead, &e, bulk, v, units)
        }
        PathKind::Reference {
            at,
            parent_region,
            hfile,
            ..
        } => {
            let lead = if bulk { Vec::new() } else { vec![e.clone()] };
            let parent_key = format!("{tdir}{parent_region}/{}/{hfile}", at.family);
            match parse_hfile_link_name(&hfile) {
                Ok(target) => {
                    // A reference to a link in the parent region: the link file too.
                    let mut lead = lead;
                    match src.head(&parent_key)? {
                        Some(pl) if !bulk => lead.push(pl),
                        Some(_) => {}
                        None => v.warnings.push(format!(
                            "{}: Reference to {parent_key}, which is not at the source",
                            e.key
                        )),
                    }
                    link_unit(src, t, &at.family, &target, lead, &e, bulk, v, units)
                }
                Err(_) => match src.head(&parent_key)? {
                    Some(p) => units.push(
                        Unit {
                            target: if bulk {
                                bulk_key(t, &at.family, &hfile)
                            } else {
                                parent_key.clone()
                            },
                            candidates: vec![parent_key],
                            file: p,
                            leading: lead,
                        },
                        v,
                    ),
                    None => {
                        v.warnings.push(format!(
                            "{}: Reference without its parent HFile {parent_key} at the source",
                            e.key
                        ));
                        for l in lead {
                            v.add(l.key.clone(), &l, Vec::new())?;
                        }
                        Ok(())
                    }
                },
            }
        }
        _ if bulk => Ok(()),
        _ => v.add(e.key.clone(), &e, Vec::new()),
    }
}

#[allow(clippy::too_many_arguments)]
fn link_unit(
    src: &dyn Store,
    t: &TableRef,
    family: &str,
    target: &HFileLinkName,
    mut lead: Vec<Entry>,
    link: &Entry,
    bulk: bool,
    v: &mut View,
    units: &mut Units<'_>,
) -> Result<(), ViewError> {
    let candidates: Vec<String> = target.candidate_keys(family).to_vec();
    match find_first(src, &candidates)? {
        Some(f) => {
            if !bulk && f.key.starts_with("archive/") {
                // Back-references that keep the archived file alive for this table.
                let (dir, _) = f.key.rsplit_once('/').unwrap_or(("", ""));
                let backrefs = format!("{dir}/.links-{}/", target.hfile);
                let suffix = format!(".{}", table_dir_name(t));
                for b in list(src, &backrefs)? {
                    if b.key.ends_with(&suffix) {
                        lead.push(b);
                    }
                }
            }
            units.push(
                Unit {
                    target: if bulk {
                        bulk_key(t, family, &target.hfile)
                    } else {
                        f.key.clone()
                    },
                    candidates: if bulk {
                        candidates
                    } else {
                        vec![f.key.clone()]
                    },
                    file: f,
                    leading: lead,
                },
                v,
            )?;
        }
        None => {
            v.warnings.push(format!(
                "{}: dangling HFileLink, {} is in none of data/, archive/, .tmp/, mobdir/",
                link.key, target.hfile
            ));
            for l in lead {
                v.add(l.key.clone(), &l, Vec::new())?;
            }
        }
    }
    Ok(())
}

fn hbcp_name(t: &TableRef) -> String {
    format!("{}:{}", t.namespace, t.qualifier)
}

/// One snapshot of a root, as `hbcp snapshots` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSummary {
    /// Directory name under `.hbase-snapshot/`.
    pub dir: String,
    /// Name in `.snapshotinfo` (may differ from the directory).
    pub name: String,
    /// Table, `ns:name`.
    pub table: String,
    /// Creation time, ms since the epoch.
    pub creation_time: i64,
    /// Manifest layout version (0 = v1, 2 = v2).
    pub version: i32,
    /// Distinct HFiles the snapshot needs.
    pub hfiles: u64,
    /// Their bytes (from the manifest's sizes; v1: from the files found).
    pub bytes: u64,
    /// HFiles in none of data/, archive/, .tmp/, mobdir/.
    pub missing: u64,
}

struct SnapshotDir {
    dir: String,
    files: Vec<Entry>,
}

fn snapshot_dirs(src: &dyn Store) -> hbcp_store::Result<Vec<SnapshotDir>> {
    let mut by: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in list(src, ".hbase-snapshot/")? {
        let rest = &e.key[".hbase-snapshot/".len()..];
        if let Some((d, _)) = rest.split_once('/') {
            if d != ".tmp" {
                by.entry(d.to_string()).or_default().push(e);
            }
        }
    }
    Ok(by
        .into_iter()
        .map(|(dir, files)| SnapshotDir { dir, files })
        .collect())
}

/// What a snapshot needs: its info and every referenced HFile with its manifest size.
struct Resolved {
    info: hbcp_hbase::SnapshotInfo,
    table: TableRef,
    /// (file, manifest size, region info when known).
    hfiles: Vec<(ReferencedHFile, Option<u64>, Option<RegionInfo>)>,
}

fn resolve_snapshot(src: &dyn Store, d: &SnapshotDir) -> Result<Resolved, String> {
    let find = |name: &str| {
        d.files
            .iter()
            .find(|e| e.key.ends_with(&format!("/{}/{name}", d.dir)))
    };
    let info_e = find(".snapshotinfo").ok_or_else(|| "no .snapshotinfo".to_string())?;
    let info = parse_snapshot_info(&read_all(src, info_e).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", info_e.key))?;
    let mut hfiles = Vec::new();
    let prefix = format!(".hbase-snapshot/{}/", d.dir);
    if let Some(m) = find("data.manifest") {
        let man = parse_snapshot_manifest(&read_all(src, m).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", m.key))?;
        push_regions(&man.table.table, &man.regions, &mut hfiles);
        let table = man.table.table.clone();
        return Ok(Resolved {
            info,
            table,
            hfiles,
        });
    }
    let region_manifests: Vec<&Entry> = d
        .files
        .iter()
        .filter(|e| e.key[prefix.len()..].starts_with("region-manifest."))
        .collect();
    let table = info
        .table
        .clone()
        .ok_or_else(|| ".snapshotinfo names no table".to_string())?;
    if !region_manifests.is_empty() {
        let mut regions = Vec::new();
        for e in region_manifests {
            regions.push(
                parse_region_manifest(&read_all(src, e).map_err(|x| x.to_string())?)
                    .map_err(|x| format!("{}: {x}", e.key))?,
            );
        }
        push_regions(&table, &regions, &mut hfiles);
    } else {
        // v1: the snapshot dir mirrors a table dir with marker files.
        let keys: Vec<&str> = d.files.iter().map(|e| &e.key[prefix.len()..]).collect();
        for h in v1_referenced_hfiles(&table, keys) {
            hfiles.push((h, None, None));
        }
    }
    Ok(Resolved {
        info,
        table,
        hfiles,
    })
}

fn push_regions(
    table: &TableRef,
    regions: &[hbcp_hbase::RegionManifest],
    out: &mut Vec<(ReferencedHFile, Option<u64>, Option<RegionInfo>)>,
) {
    let mut seen = BTreeSet::new();
    for r in regions {
        let enc = r
            .encoded_name
            .clone()
            .unwrap_or_else(|| r.region.encoded_name());
        for f in &r.families {
            for s in &f.files {
                if let Some(h) = resolve_store_file(table, &enc, &f.family, &s.name) {
                    if seen.insert(h.clone()) {
                        out.push((h, s.file_size, Some(r.region.clone())));
                    }
                }
            }
        }
    }
}

fn candidates_of(h: &ReferencedHFile) -> Vec<String> {
    HFileLinkName {
        table: h.table.clone(),
        region: h.region.clone(),
        hfile: h.hfile.clone(),
    }
    .candidate_keys(&h.family)
    .to_vec()
}

fn pick_snapshot<'a>(
    src: &dyn Store,
    dirs: &'a [SnapshotDir],
    name: &str,
) -> Result<&'a SnapshotDir, ViewError> {
    if let Some(d) = dirs.iter().find(|d| d.dir == name) {
        return Ok(d);
    }
    for d in dirs {
        if let Ok(r) = resolve_snapshot(src, d) {
            if r.info.name == name {
                return Ok(d);
            }
        }
    }
    let names: Vec<String> = dirs.iter().map(|d| d.dir.clone()).collect();
    Err(ViewError::Usage(format!(
        "--snapshot {name}: no such snapshot under .hbase-snapshot/ (snapshots found: {})",
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    )))
}

fn snapshot_units(
    src: &dyn Store,
    spec: &SelectSpec,
    name: &str,
    v: &mut View,
    units: &mut Units<'_>,
) -> Result<(), ViewError> {
    let dirs = snapshot_dirs(src)?;
    let d = pick_snapshot(src, &dirs, name)?;
    let r = resolve_snapshot(src, d)
        .map_err(|why| ViewError::Usage(format!("--snapshot {name}: {why}")))?;
    let bulk = spec.layout == Layout::Bulkload;
    let mut missing = 0;
    let mut regions = BTreeSet::new();
    for (h, _size, ri) in &r.hfiles {
        if let Some(ri) = ri {
            if spec.has_rows() && !spec.row_overlaps(ri) {
                continue;
            }
        }
        regions.insert(h.region.clone());
        let candidates = candidates_of(h);
        match find_first(src, &candidates)? {
            Some(f) => units.push(
                Unit {
                    target: if bulk {
                        bulk_key(&r.table, &h.family, &h.hfile)
                    } else {
                        h.archive_key()
                    },
                    candidates,
                    file: f,
                    leading: Vec::new(),
                },
                v,
            )?,
            None => {
                missing += 1;
                v.warnings.push(format!(
                    "snapshot {name} references {}, which is in none of data/, archive/, .tmp/, mobdir/ at the source",
                    h.archive_key()
                ));
            }
        }
    }
    v.notes.push(format!(
        "snapshot {} of table {} ({} HFiles referenced, {missing} missing at the source)",
        r.info.name,
        hbcp_name(&r.table),
        r.hfiles.len()
    ));
    if !bulk {
        let visible = format!(".hbase-snapshot/{}/", d.dir);
        for e in &d.files {
            v.add(e.key.clone(), e, Vec::new())?;
        }
        v.prefixes.push(visible.clone());
        v.publish = Some(Publish {
            tmp: format!(".hbase-snapshot/.tmp/{}/", d.dir),
            visible,
        });
    }
    Ok(())
}

/// Every snapshot of a root with what it needs (`hbcp snapshots`).
pub fn list_snapshots(src: &dyn Store) -> hbcp_store::Result<Vec<Result<SnapshotSummary, String>>> {
    let dirs = snapshot_dirs(src)?;
    let mut out = Vec::new();
    for d in &dirs {
        let r = match resolve_snapshot(src, d) {
            Ok(r) => r,
            Err(why) => {
                out.push(Err(format!(".hbase-snapshot/{}: {why}", d.dir)));
                continue;
            }
        };
        let mut bytes = 0;
        let mut missing = 0;
        for (h, size, _) in &r.hfiles {
            match size {
                Some(s) => bytes += s,
                None => match find_first(src, &candidates_of(h))? {
                    Some(f) => bytes += f.size,
                    None => missing += 1,
                },
            }
        }
        out.push(Ok(SnapshotSummary {
            dir: d.dir.clone(),
            name: r.info.name.clone(),
            table: hbcp_name(&r.table),
            creation_time: r.info.creation_time,
            version: r.info.version,
            hfiles: r.hfiles.len() as u64,
            bytes,
            missing,
        }));
    }
    Ok(out)
}

/// True when `sources` are what a [`ViewStore`] reads `key` from anyway (the key itself, or
/// for a snapshot in the root layout its [`archive_candidates`]), so they need not be held.
pub fn implied_sources(key: &str, sources: &[String], snapshot: bool) -> bool {
    sources.is_empty()
        || (sources.len() == 1 && sources[0] == key)
        || (snapshot && archive_candidates(key).is_some_and(|c| c[..] == sources[..]))
}

/// Where a [`ViewListing`] sends each entry (under its target key) with its source keys.
pub type ItemSink<'a> = dyn Fn(Entry, Vec<String>) -> hbcp_store::Result<()> + Sync + 'a;

/// What a [`ViewStore`] lists: it feeds every entry of the view to the sink.
pub type ViewListing = Box<dyn Fn(&ItemSink<'_>) -> hbcp_store::Result<()> + Send + Sync>;

/// The source seen through a [`View`]: lists the view's entries under their target keys and
/// reads each target key from its source key(s). Never written to.
pub struct ViewStore {
    inner: Arc<dyn Store>,
    map: RwLock<HashMap<String, Vec<String>>>,
    listing: Option<ViewListing>,
    derive: bool,
}

impl std::fmt::Debug for ViewStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewStore")
            .field("inner", &self.inner)
            .field("mapped", &self.map.read().unwrap().len())
            .finish()
    }
}

impl ViewStore {
    /// A view of `inner` that lists what `listing` gives (target keys; nothing without it).
    /// A key is read from the sources given to [`ViewStore::map_key`]; else, for a snapshot
    /// in the root layout (`snapshot`), an HFile under `archive/data/` from where HBase looks
    /// for it ([`archive_candidates`]); else under the same key.
    pub fn new(inner: Arc<dyn Store>, listing: Option<ViewListing>, snapshot: bool) -> Self {
        ViewStore {
            inner,
            map: RwLock::new(HashMap::new()),
            listing,
            derive: snapshot,
        }
    }

    /// Read `key` from `sources` (filled as a view or plan is fed). Sources that the key
    /// implies are not held, so a snapshot of millions of HFiles takes no memory here.
    pub fn map_key(&self, key: &str, sources: &[String]) {
        if implied_sources(key, sources, self.derive) {
            return;
        }
        self.map
            .write()
            .unwrap()
            .insert(key.to_string(), sources.to_vec());
    }

    fn sources(&self, key: &str) -> Vec<String> {
        if let Some(s) = self.map.read().unwrap().get(key) {
            return s.clone();
        }
        match archive_candidates(key).filter(|_| self.derive) {
            Some(c) => c.to_vec(),
            None => vec![key.to_string()],
        }
    }
}

fn read_only(what: &str) -> hbcp_store::Error {
    hbcp_store::Error::Unsupported {
        what: format!("{what} on the source"),
        hint: "the source is never written to".into(),
    }
}

impl Store for ViewStore {
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
        let Some(listing) = &self.listing else {
            return Ok(());
        };
        // A listed key can be read at once: its sources are known before it is passed on.
        listing(&|e: Entry, sources: Vec<String>| {
            if !e.key.starts_with(prefix) {
                return Ok(());
            }
            self.map_key(&e.key, &sources);
            sink(e)
        })
    }
    fn list_paged(
        &self,
        prefix: &str,
        sink: &ListSink<'_>,
        _page: &(dyn Fn(std::time::Duration) + Sync),
    ) -> hbcp_store::Result<()> {
        // Served from memory: no listing request is made.
        self.list(prefix, sink)
    }
    fn head(&self, key: &str) -> hbcp_store::Result<Option<Entry>> {
        for s in self.sources(key) {
            if let Some(mut e) = self.inner.head(&s)? {
                e.key = key.to_string();
                return Ok(Some(e));
            }
        }
        Ok(None)
    }
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> hbcp_store::Result<()> {
        let srcs = self.sources(key);
        let mut last = None;
        for s in &srcs {
            match self.inner.read_range(s, range.clone(), version, buf) {
                Err(hbcp_store::Error::NotFound { .. }) => {
                    last = Some(hbcp_store::Error::NotFound { key: key.into() })
                }
                r => return r,
            }
        }
        Err(last.unwrap_or(hbcp_store::Error::NotFound { key: key.into() }))
    }
    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> hbcp_store::Result<bytes::Bytes> {
        let srcs = self.sources(key);
        for s in &srcs {
            match self.inner.read_range_bytes(s, range.clone(), version) {
                Err(hbcp_store::Error::NotFound { .. }) => continue,
                r => return r,
            }
        }
        Err(hbcp_store::Error::NotFound { key: key.into() })
    }
    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> hbcp_store::Result<()>,
    ) -> hbcp_store::Result<()> {
        // A missing key is known before any byte arrives, so the next source can be tried.
        for s in &self.sources(key) {
            match self.inner.read_range_to(s, range.clone(), version, sink) {
                Err(hbcp_store::Error::NotFound { .. }) => continue,
                r => return r,
            }
        }
        Err(hbcp_store::Error::NotFound { key: key.into() })
    }
    fn put(&self, _key: &str, _data: &[u8]) -> hbcp_store::Result<()> {
        Err(read_only("put"))
    }
    fn begin_upload(
        &self,
        _key: &str,
        _size: u64,
        _part_size: u64,
        _job: &str,
    ) -> hbcp_store::Result<Arc<dyn Upload>> {
        Err(read_only("upload"))
    }
    fn make_dir(&self, _key: &str) -> hbcp_store::Result<()> {
        Err(read_only("mkdir"))
    }
    fn delete(&self, _key: &str) -> hbcp_store::Result<()> {
        Err(read_only("delete"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_keys_parse_like_the_hbase_shell() {
        assert_eq!(parse_row_key("row-1").unwrap(), b"row-1");
        assert_eq!(parse_row_key("a\\x00\\xFFb").unwrap(), b"a\x00\xffb");
        assert_eq!(parse_row_key("\\\\").unwrap(), b"\\");
        assert_eq!(parse_row_key("").unwrap(), b"");
        assert!(parse_row_key("\\x1").is_err());
        assert!(parse_row_key("\\xZZ").is_err());
        assert!(parse_row_key("\\n").is_err());
        assert_eq!(show_key(b"a\x00\\"), "a\\x00\\x5C");
        assert_eq!(parse_row_key(&show_key(b"a\x00\\z")).unwrap(), b"a\x00\\z");
    }

    #[test]
    fn times_parse_as_ms_or_utc_dates() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
    }

    fn region(start: &[u8], end: &[u8]) -> RegionInfo {
        RegionInfo {
            table: TableRef::new("default", "t"),
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            region_id: 1,
            offline: false,
            split: false,
            replica_id: 0,
        }
    }

    #[test]
    fn regions_overlap_a_half_open_row_range() {
        let spec = |s: Option<&[u8]>, e: Option<&[u8]>| SelectSpec {
            tables: vec![("default".into(), "t".into())],
            start_row: s.map(|x| x.to_vec()),
            end_row: e.map(|x| x.to_vec()),
            ..Default::default()
        };
        let s = spec(Some(b"b"), Some(b"d"));
        assert!(
            !s.row_overlaps(&region(b"", b"b")),
            "ends where the range starts"
        );
        assert!(s.row_overlaps(&region(b"", b"c")));
        assert!(s.row_overlaps(&region(b"c", b"")));
        assert!(
            !s.row_overlaps(&region(b"d", b"")),
            "starts at the exclusive end"
        );
        assert!(s.row_overlaps(&region(b"", b"")));
        let open = spec(Some(b"x"), None);
        assert!(open.row_overlaps(&region(b"y", b"")));
        assert!(!open.row_overlaps(&region(b"a", b"x")));
    }

    #[test]
    fn time_ranges_overlap_half_open() {
        let s = SelectSpec {
            since: Some(100),
            until: Some(200),
            ..Default::default()
        };
        assert!(s.time_overlaps((50, 100)));
        assert!(!s.time_overlaps((50, 99)));
        assert!(s.time_overlaps((199, 300)));
        assert!(!s.time_overlaps((200, 300)));
    }

    #[test]
    fn bad_combinations_are_refused() {
        let t = vec![("default".to_string(), "t".to_string())];
        let bad = [
            SelectSpec {
                layout: Layout::Bulkload,
                ..Default::default()
            },
            SelectSpec {
                start_row: Some(b"a".to_vec()),
                ..Default::default()
            },
            SelectSpec {
                snapshot: Some("s".into()),
                tables: t.clone(),
                ..Default::default()
            },
            SelectSpec {
                snapshot: Some("s".into()),
                since: Some(1),
                ..Default::default()
            },
            SelectSpec {
                tables: t.clone(),
                start_row: Some(b"b".to_vec()),
                end_row: Some(b"a".to_vec()),
                ..Default::default()
            },
            SelectSpec {
                tables: t.clone(),
                since: Some(5),
                until: Some(5),
                ..Default::default()
            },
        ];
        for b in bad {
            assert!(b.check().is_err(), "{b:?}");
        }
        SelectSpec {
            snapshot: Some("s".into()),
            since: Some(1),
            layout: Layout::Bulkload,
            ..Default::default()
        }
        .check()
        .unwrap();
    }

    #[test]
    fn publish_maps_between_tmp_and_visible() {
        let p = Publish {
            tmp: ".hbase-snapshot/.tmp/s/".into(),
            visible: ".hbase-snapshot/s/".into(),
        };
        assert_eq!(
            p.tmp_key(".hbase-snapshot/s/data.manifest").unwrap(),
            ".hbase-snapshot/.tmp/s/data.manifest"
        );
        assert_eq!(
            p.visible_key(".hbase-snapshot/.tmp/s/.snapshotinfo")
                .unwrap(),
            ".hbase-snapshot/s/.snapshotinfo"
        );
        assert!(p.tmp_key("archive/data/x").is_none());
    }
}
