//! `hbcp backup SRC DST [--keep N]`, `hbcp generations DST`, `hbcp restore DST --generation ID
//! TARGET`: point-in-time generations for disaster recovery.
//!
//! A backup is a sync into a target laid out by generation (see
//! [`hbcp_verifier::generation`]): the engine runs in sync mode over a store wrapper
//! ([`GenStore`]) that maps each key of the root to where its bytes are kept — an HFile (written
//! once, uniquely named) to the shared pool, any other file to the folder of the generation
//! being written. The index of what earlier generations stored is the engine's `TargetIndex`,
//! so an HFile already stored is not read again, one that moved (compaction → archive/) costs
//! nothing, and a metadata file unchanged since the last generation is compared by checksum and
//! not stored again. The generation manifest is written last, in one put, after every file it
//! names is durable and verified; an interrupted backup resumes under the same id (a marker in
//! `.hbcp/`) with the engine's journal. Pruning writes tombstones first, then deletes the stored
//! keys no kept generation names, then the manifests — an interrupted prune is finished by the
//! next backup.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use hbcp_engine::{Overwrite, Stats, Stop, TargetIndex};
use hbcp_hbase::is_unique_hfile_name as is_hfile_name;
use hbcp_state::manifest::{COMPLETION_KEY, ManifestEntry};
use hbcp_store::timed::Timed;
use hbcp_store::{Caps, Entry, EntryKind, ListSink, Store, Upload};
use hbcp_verifier::check::{Params, SourceCheck, verify_entries};
use hbcp_verifier::generation::{
    self as g, GENERATION_FORMAT, GENERATION_VERSION, GenerationEntry, GenerationHeader,
    GenerationKey, LAYOUT_FORMAT, LAYOUT_KEY, Layout,
};
use hbcp_verifier::{VerifyMode, VerifyOutcome};

use crate::cli::{BackupArgs, GenerationsArgs, ProgressArg, RestoreArgs, VerifyArg};
use crate::commands::{
    End, build_job, cleanup_staging, finish, forget, install_signals, open_source, open_target,
    selection, validate_tuning, verify_mode, write_completion,
};
use crate::progress::{Reporter, bytes};
use crate::{Exit, usage};

/// The id of the generation a backup is writing, kept until its manifest is written so that a
/// rerun after a crash finishes the same generation.
const PENDING_KEY: &str = ".hbcp/backup-pending.json";

fn read_small(store: &dyn Store, key: &str) -> Result<Option<Vec<u8>>> {
    let Some(e) = store.head(key)? else {
        return Ok(None);
    };
    if e.kind != EntryKind::File {
        return Ok(None);
    }
    let mut buf = Vec::new();
    store
        .read_range(key, 0..e.size, None, &mut buf)
        .with_context(|| format!("reading {key}"))?;
    Ok(Some(buf))
}

fn read_layout(store: &dyn Store, display: &str) -> Result<Option<Layout>> {
    let Some(b) = read_small(store, LAYOUT_KEY)? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Layout>(&b) {
        Ok(l) if l.format == LAYOUT_FORMAT && l.version == 1 && l.range_size >= 4096 => Ok(Some(l)),
        Ok(l) => usage(format!(
            "{display}/{LAYOUT_KEY}: {} version {} is not a backup layout this hbcp reads (expected {LAYOUT_FORMAT} version 1)",
            l.format, l.version
        )),
        Err(e) => usage(format!(
            "{display}/{LAYOUT_KEY}: not an hbcp backup layout marker: {e}"
        )),
    }
}

/// The generations of a backup target: visible ones and tombstoned ones (a prune under way).
#[derive(Debug, Default)]
struct Listing {
    manifests: BTreeSet<u64>,
    tombstones: BTreeSet<u64>,
}

impl Listing {
    fn visible(&self) -> Vec<u64> {
        self.manifests
            .iter()
            .copied()
            .filter(|id| !self.tombstones.contains(id))
            .collect()
    }
    fn max_id(&self) -> u64 {
        self.manifests
            .iter()
            .chain(self.tombstones.iter())
            .copied()
            .max()
            .unwrap_or(0)
    }
}

fn list_generations(store: &dyn Store) -> Result<Listing> {
    let found = Mutex::new(Listing::default());
    store.list(g::GENERATIONS_PREFIX, &|e: Entry| {
        let mut l = found.lock().unwrap();
        match g::parse_key(&e.key) {
            Some(GenerationKey::Manifest(id)) => {
                l.manifests.insert(id);
            }
            Some(GenerationKey::Tombstone(id)) => {
                l.tombstones.insert(id);
            }
            None => {}
        }
        Ok(())
    })?;
    Ok(found.into_inner().unwrap())
}

fn read_generation(store: &dyn Store, id: u64) -> Result<(GenerationHeader, Vec<GenerationEntry>)> {
    let key = g::manifest_key(id);
    let b = read_small(store, &key)?.with_context(|| format!("{key}: not found"))?;
    Ok(g::decode(&b, &key)?)
}

/// The target as the engine sees it during a backup: keys of the root, mapped to where the
/// bytes are kept. Reads go where the bytes of that key are (this generation's copy if it
/// wrote one, else the earlier generation's); writes go to the pool (HFiles) or to this
/// generation's folder.
#[derive(Debug)]
struct GenStore {
    inner: Arc<dyn Store>,
    id: u64,
    /// key → stored key, from the visible generations (newest wins).
    prev: HashMap<String, String>,
    /// HFile name → size, for the HFiles the pool holds for visible generations.
    pooled: HashMap<String, u64>,
    /// HFile name → size, pooled by this run.
    pooled_now: Mutex<HashMap<String, u64>>,
    /// key → stored key, as decided by this run.
    resolved: Mutex<HashMap<String, String>>,
}

fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

impl GenStore {
    /// Where a write of `key` goes. An HFile goes to the pool unless the pool already holds a
    /// different file of that name (then, like any other file, to this generation's folder).
    fn write_loc(&self, key: &str, size: Option<u64>) -> String {
        let name = name_of(key);
        if is_hfile_name(name) {
            let mut now = self.pooled_now.lock().unwrap();
            let known = self.pooled.get(name).or(now.get(name)).copied();
            let clash = matches!((known, size), (Some(k), Some(s)) if k != s);
            if !clash {
                if let Some(s) = size {
                    now.insert(name.to_string(), s);
                }
                return g::pool_key(name);
            }
        }
        g::file_key(self.id, key)
    }

    fn wrote(&self, key: &str, loc: &str) {
        self.resolved
            .lock()
            .unwrap()
            .insert(key.to_string(), loc.to_string());
    }

    /// Where the bytes of `key` are now.
    fn read_loc(&self, key: &str) -> hbcp_store::Result<String> {
        if let Some(l) = self.resolved.lock().unwrap().get(key) {
            return Ok(l.clone());
        }
        let name = name_of(key);
        let loc = if is_hfile_name(name) {
            self.prev
                .get(key)
                .cloned()
                .unwrap_or_else(|| g::pool_key(name))
        } else {
            let fresh = g::file_key(self.id, key);
            if self.inner.head(&fresh)?.is_some() {
                fresh
            } else {
                self.prev.get(key).cloned().unwrap_or(fresh)
            }
        };
        self.wrote(key, &loc);
        Ok(loc)
    }
}

fn renamed(e: Option<Entry>, key: &str) -> Option<Entry> {
    e.map(|mut e| {
        e.key = key.to_string();
        e
    })
}

impl Store for GenStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> hbcp_store::Result<()> {
        self.inner.list(prefix, sink)
    }
    fn list_paged(
        &self,
        prefix: &str,
        sink: &ListSink<'_>,
        page: &(dyn Fn(std::time::Duration) + Sync),
    ) -> hbcp_store::Result<()> {
        self.inner.list_paged(prefix, sink, page)
    }
    fn head(&self, key: &str) -> hbcp_store::Result<Option<Entry>> {
        let loc = self.read_loc(key)?;
        Ok(renamed(self.inner.head(&loc)?, key))
    }
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> hbcp_store::Result<()> {
        let loc = self.read_loc(key)?;
        self.inner.read_range(&loc, range, version, buf)
    }
    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> hbcp_store::Result<bytes::Bytes> {
        let loc = self.read_loc(key)?;
        self.inner.read_range_bytes(&loc, range, version)
    }
    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> hbcp_store::Result<()>,
    ) -> hbcp_store::Result<()> {
        let loc = self.read_loc(key)?;
        self.inner.read_range_to(&loc, range, version, sink)
    }
    fn put(&self, key: &str, data: &[u8]) -> hbcp_store::Result<()> {
        let loc = self.write_loc(key, Some(data.len() as u64));
        self.inner.put(&loc, data)?;
        self.wrote(key, &loc);
        Ok(())
    }
    fn put_bytes(&self, key: &str, data: bytes::Bytes) -> hbcp_store::Result<()> {
        let loc = self.write_loc(key, Some(data.len() as u64));
        self.inner.put_bytes(&loc, data)?;
        self.wrote(key, &loc);
        Ok(())
    }
    fn begin_upload(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> hbcp_store::Result<Arc<dyn Upload>> {
        let loc = self.write_loc(key, Some(size));
        // The inner store's own upload, unwrapped: its MD5 (`--put-md5`) and its knowledge of
        // parts staged by an interrupted run are the backup's too.
        let up = self.inner.begin_upload(&loc, size, part_size, job)?;
        self.wrote(key, &loc);
        Ok(up)
    }
    fn copy_within(&self, from: &str, to: &str) -> hbcp_store::Result<()> {
        let from_loc = self.read_loc(from)?;
        let Some(src) = self.inner.head(&from_loc)? else {
            return Err(hbcp_store::Error::NotFound {
                key: from_loc.clone(),
            });
        };
        let to_loc = self.write_loc(to, Some(src.size));
        if to_loc != from_loc {
            self.inner.copy_within(&from_loc, &to_loc)?;
        }
        // An HFile that moved (data/ → archive/) is the same pooled file: nothing to copy.
        self.wrote(to, &to_loc);
        Ok(())
    }
    fn make_dir(&self, _key: &str) -> hbcp_store::Result<()> {
        // Empty directories live in the generation manifest only.
        Ok(())
    }
    fn delete(&self, key: &str) -> hbcp_store::Result<()> {
        Err(hbcp_store::Error::Unsupported {
            what: format!("delete {key} during a backup"),
            hint: "stored files are removed only by pruning".into(),
        })
    }
    fn flush(&self) -> hbcp_store::Result<()> {
        self.inner.flush()
    }
}

/// A generation as a read-only tree with the keys of the root (the source of a restore).
#[derive(Debug)]
struct GenView {
    inner: Arc<dyn Store>,
    /// key → (stored key, size); `None` stored key for an empty directory.
    at: HashMap<String, (Option<String>, u64)>,
}

impl GenView {
    fn loc(&self, key: &str) -> hbcp_store::Result<&str> {
        match self.at.get(key) {
            Some((Some(l), _)) => Ok(l),
            _ => Err(hbcp_store::Error::NotFound {
                key: key.to_string(),
            }),
        }
    }
    fn read_only(&self, what: &str) -> hbcp_store::Error {
        hbcp_store::Error::Unsupported {
            what: format!("{what} in a backup generation"),
            hint: "a generation is read-only".into(),
        }
    }
}

impl Store for GenView {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> hbcp_store::Result<()> {
        for (k, (at, size)) in &self.at {
            if k.starts_with(prefix) {
                sink(Entry {
                    key: k.clone(),
                    size: *size,
                    version: None,
                    modified: None,
                    kind: if at.is_some() {
                        EntryKind::File
                    } else {
                        EntryKind::Dir
                    },
                })?;
            }
        }
        Ok(())
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
        match self.at.get(key) {
            None => Ok(None),
            Some((None, _)) => Ok(Some(Entry {
                key: key.to_string(),
                size: 0,
                version: None,
                modified: None,
                kind: EntryKind::Dir,
            })),
            Some((Some(l), _)) => Ok(renamed(self.inner.head(l)?, key)),
        }
    }
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> hbcp_store::Result<()> {
        self.inner.read_range(self.loc(key)?, range, version, buf)
    }
    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> hbcp_store::Result<bytes::Bytes> {
        self.inner.read_range_bytes(self.loc(key)?, range, version)
    }
    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> hbcp_store::Result<()>,
    ) -> hbcp_store::Result<()> {
        self.inner
            .read_range_to(self.loc(key)?, range, version, sink)
    }
    fn put(&self, key: &str, _data: &[u8]) -> hbcp_store::Result<()> {
        Err(self.read_only(&format!("write {key}")))
    }
    fn begin_upload(
        &self,
        key: &str,
        _size: u64,
        _part_size: u64,
        _job: &str,
    ) -> hbcp_store::Result<Arc<dyn Upload>> {
        Err(self.read_only(&format!("write {key}")))
    }
    fn make_dir(&self, key: &str) -> hbcp_store::Result<()> {
        Err(self.read_only(&format!("mkdir {key}")))
    }
    fn delete(&self, key: &str) -> hbcp_store::Result<()> {
        Err(self.read_only(&format!("delete {key}")))
    }
}

/// Anything at `store` outside `.hbcp/`?
fn has_content(store: &dyn Store) -> Result<bool> {
    let found = std::sync::atomic::AtomicBool::new(false);
    let r = store.list("", &|e: Entry| {
        if e.key == ".hbcp" || e.key.starts_with(".hbcp/") {
            return Ok(());
        }
        found.store(true, Relaxed);
        Err(hbcp_store::Error::Unsupported {
            what: "listing".into(),
            hint: "stop at first entry".into(),
        })
    });
    match r {
        Ok(()) => Ok(false),
        Err(_) if found.load(Relaxed) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    id: u64,
}

/// What the visible generations stored, as the engine's index (on disk under `scratch`) and
/// the store's maps.
struct Known {
    index: TargetIndex,
    prev: HashMap<String, String>,
    pooled: HashMap<String, u64>,
    /// Every stored key a visible generation names.
    stored: HashSet<String>,
}

fn load_known(store: &dyn Store, listing: &Listing, scratch: &std::path::Path) -> Result<Known> {
    let mut index = TargetIndex::builder(scratch, is_hfile_name)?;
    let mut prev = HashMap::new();
    let mut pooled = HashMap::new();
    let mut stored = HashSet::new();
    // Oldest first, so that the newest generation's entry wins.
    for id in listing.visible() {
        let (_, entries) = read_generation(store, id)?;
        for e in entries {
            if e.d {
                continue;
            }
            index.add(&e.k, e.s, e.checksum())?;
            let Some(at) = e.at else { continue };
            if let Some(name) = at.strip_prefix(g::POOL_PREFIX) {
                pooled.insert(name.to_string(), e.s);
            }
            prev.insert(e.k, at.clone());
            stored.insert(at);
        }
    }
    Ok(Known {
        index: index.finish()?,
        prev,
        pooled,
        stored,
    })
}

fn read_spill(path: &std::path::Path) -> Result<Vec<ManifestEntry>> {
    let mut v = Vec::new();
    hbcp_state::manifest::read(
        std::fs::File::open(path)?,
        &path.display().to_string(),
        |e| {
            v.push(e);
            Ok(())
        },
    )?;
    Ok(v)
}

/// What a prune did.
#[derive(Debug, Default, serde::Serialize)]
struct Pruned {
    generations: Vec<u64>,
    deleted_files: u64,
    deleted_bytes: u64,
    problems: Vec<String>,
}

/// Remove `key`'s parent folders that are now empty, up to the top folder of the layout
/// (local targets keep folders).
fn prune_empty_parents(store: &dyn Store, key: &str) {
    if !store.caps().is_local {
        return;
    }
    let root = std::path::PathBuf::from(store.describe());
    let mut k = key;
    while let Some((parent, _)) = k.rsplit_once('/') {
        if !parent.contains('/') {
            break; // pool/, files/ stay
        }
        let p = root.join(parent);
        if std::fs::remove_dir(&p).is_err() {
            break; // not empty (or gone)
        }
        k = parent;
    }
}

/// Finish interrupted prunes, and with `keep` remove all but the newest `keep` generations.
fn prune(store: &dyn Store, keep: Option<usize>) -> Result<Pruned> {
    let listing = list_generations(store)?;
    let mut out = Pruned::default();
    if keep.is_none() && listing.tombstones.is_empty() {
        return Ok(out);
    }
    let mut sets = BTreeMap::new();
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for id in &listing.manifests {
        let (_, entries) = read_generation(store, *id)?;
        let mut set = BTreeSet::new();
        for e in entries {
            if let Some(at) = e.at {
                sizes.insert(at.clone(), e.s);
                set.insert(at);
            }
        }
        sets.insert(*id, set);
    }
    let plan = g::prune_plan(&sets, &listing.tombstones, keep.unwrap_or(usize::MAX));
    // 1. Tombstones: the pruned generations are no longer visible (nor restorable).
    for id in &plan.pruned {
        if !listing.tombstones.contains(id) {
            store.put(&g::tombstone_key(*id), b"")?;
        }
    }
    store.flush()?;
    // 2. The stored files no kept generation needs.
    for k in &plan.delete {
        match store.delete(k) {
            Ok(()) => {
                out.deleted_files += 1;
                out.deleted_bytes += sizes.get(k).copied().unwrap_or(0);
                prune_empty_parents(store, k);
            }
            Err(e) => out.problems.push(format!("delete {k}: {e}")),
        }
    }
    // 3. The manifests, then the tombstones — only when every deletion worked, so that a
    //    failed one is retried by the next prune.
    if out.problems.is_empty() {
        for id in &plan.pruned {
            for key in [g::manifest_key(*id), g::tombstone_key(*id)] {
                if let Err(e) = store.delete(&key) {
                    out.problems.push(format!("delete {key}: {e}"));
                }
            }
        }
        // Tombstones whose manifest was already gone.
        for id in listing.tombstones.difference(&listing.manifests) {
            let key = g::tombstone_key(*id);
            if let Err(e) = store.delete(&key) {
                out.problems.push(format!("delete {key}: {e}"));
            }
        }
        if store.caps().is_local {
            let root = std::path::PathBuf::from(store.describe());
            for id in &plan.pruned {
                let _ = std::fs::remove_dir(root.join(g::FILES_PREFIX).join(id.to_string()));
            }
        }
    }
    out.generations = plan.pruned;
    Ok(out)
}

/// `hbcp backup`.
pub fn backup(a: BackupArgs) -> Result<Exit> {
    validate_tuning(&a.tuning)?;
    if a.tuning.verify == VerifyArg::None {
        return usage(
            "--verify none: a generation is written only once verified; use size or checksum",
        );
    }
    if a.keep == Some(0) {
        return usage("--keep 0: expected at least 1 (the new generation is always kept)");
    }
    let sel = selection(&a.selection.exclude)?;
    let src = open_source(&a.ends.src, a.tuning.allow_http)?;
    // A generation holds what `hbcp copy` would copy of the root: an HBase root without its
    // transient folders, and without the WALs unless --allow-unflushed.
    let sel = crate::select::copy_rules(&src, sel, a.allow_unflushed)?;
    if !a.allow_unflushed {
        let places = crate::preflight::WalPlaces::open(&a.wals, a.tuning.allow_http)?;
        if let Some(msg) = crate::preflight::unflushed_guard(&src, &[], &places)? {
            return usage(msg);
        }
    }
    let dst = open_target(&a.ends.dst, &src, a.tuning.allow_http)?;
    let store = dst.store.clone();
    let display = dst.url.display.clone();
    let layout = match read_layout(store.as_ref(), &display)? {
        Some(l) => {
            if let Some(rs) = a.tuning.range_size {
                if rs != l.range_size {
                    return usage(format!(
                        "--range-size {rs}: this backup target's checksums use {} (set by its first backup); leave --range-size out",
                        l.range_size
                    ));
                }
            }
            l
        }
        None => {
            if has_content(store.as_ref())? {
                return usage(format!(
                    "target {display}: not empty and not an hbcp backup target (no {LAYOUT_KEY}); back up into an empty folder or an existing backup target"
                ));
            }
            let rs = a.tuning.range_size.unwrap_or(
                if src.store.caps().is_local && store.caps().is_local {
                    64 << 20
                } else {
                    8 << 20
                },
            );
            let l = Layout {
                format: LAYOUT_FORMAT.into(),
                version: 1,
                range_size: rs,
            };
            store.put(LAYOUT_KEY, &serde_json::to_vec_pretty(&l)?)?;
            l
        }
    };
    let listing = list_generations(store.as_ref())?;
    let pending = read_small(store.as_ref(), PENDING_KEY)?
        .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
        .filter(|p| p.id > listing.max_id());
    let resumed = pending.is_some();
    let id = match pending {
        Some(p) => p.id,
        None => {
            let id = listing.max_id() + 1;
            store.put(PENDING_KEY, &serde_json::to_vec(&Pending { id })?)?;
            id
        }
    };
    let mut excludes = a.selection.exclude.clone();
    excludes.push(if a.allow_unflushed {
        "\0backup+wals".into()
    } else {
        "\0backup".into()
    });
    // The index goes where the job's state will be (build_job picks the same folder).
    let job_id = hbcp_engine::job_id(&src.url.display, &display, &excludes, layout.range_size);
    let scratch = crate::commands::state_dir_of(&a.tuning, &dst, &job_id);
    let known = load_known(store.as_ref(), &listing, &scratch)?;
    let earlier = known.stored;
    let gen_store = Arc::new(GenStore {
        inner: store.clone(),
        id,
        prev: known.prev,
        pooled: known.pooled,
        pooled_now: Mutex::new(HashMap::new()),
        resolved: Mutex::new(HashMap::new()),
    });
    let mut tuning = a.tuning.clone();
    tuning.range_size = Some(layout.range_size);
    let gen_end = End {
        url: dst.url.clone(),
        store: gen_store.clone(),
    };
    let mut job = build_job("backup", src, gen_end, &excludes, tuning, None, None)?;
    job.hbase = crate::commands::hbase_layout(None, &sel);
    job.cfg.known_target = Some(Arc::new(known.index));
    job.cfg.overwrite = Overwrite::Sync;
    let cancel = install_signals()?;
    let stats = Arc::new(Stats::default());
    let quiet = matches!(job.tuning.progress, ProgressArg::Json);
    if !quiet {
        eprintln!(
            "hbcp: backup {} -> {} generation {id}{} (state in {})",
            job.src.url,
            job.dst.url,
            if resumed { ", resumed" } else { "" },
            job.cfg.state_dir.display()
        );
    }
    let reporter = Reporter::start(stats.clone(), job.tuning.progress);
    let feed = move |src: &dyn Store, sink: &ListSink<'_>| {
        src.list("", &|e: Entry| {
            if sel.accepts(&e) { sink(e) } else { Ok(()) }
        })
    };
    crate::exit::writing();
    let outcome = match hbcp_engine::copy(
        job.src.store.as_ref(),
        job.dst.store.as_ref(),
        &feed,
        &job.cfg,
        &stats,
        &cancel,
    ) {
        Ok(o) => o,
        Err(e) => {
            reporter.finish();
            return Err(crate::exit::engine_error(e, "cannot start the backup"));
        }
    };
    let hidden = format!("generation {id} is not visible");
    if let Some((exit, _)) = crate::exit::early_end(
        outcome.stop.as_ref(),
        cancel.load(Relaxed),
        crate::exit::wrote(&stats, &outcome),
        Some(&hidden),
    ) {
        reporter.finish();
        return Ok(exit);
    }
    // Verify: every byte stored by this generation; the files it shares with earlier ones by
    // size (they were verified when stored).
    reporter.phase("verify");
    let entries = read_spill(&outcome.spill)?;
    let mut located = Vec::with_capacity(entries.len());
    for e in entries {
        let at = if e.d {
            None
        } else {
            Some(gen_store.read_loc(&e.k)?)
        };
        located.push((e, at));
    }
    let is_new = |at: &Option<String>| at.as_ref().is_some_and(|a| !earlier.contains(a));
    let params = |mode| Params {
        mode,
        workers: job.cfg.workers,
        range_size: layout.range_size,
        chunk: job.cfg.chunk,
        hbase: job.hbase,
    };
    let progress = {
        let st = stats.clone();
        move |n: u64| {
            st.bytes_verified.fetch_add(n, Relaxed);
            st.files_verified.fetch_add(1, Relaxed);
        }
    };
    let fresh: Vec<ManifestEntry> = located
        .iter()
        .filter(|(e, at)| !e.d && is_new(at))
        .map(|(e, _)| e.clone())
        .collect();
    let shared: Vec<ManifestEntry> = located
        .iter()
        .filter(|(e, at)| !e.d && !is_new(at))
        .map(|(e, _)| e.clone())
        .collect();
    let gen_timed = &Timed::new(gen_store.as_ref(), stats.ops());
    let v1 = verify_entries(
        gen_timed,
        SourceCheck::Head(&Timed::new(job.src.store.as_ref(), stats.ops())),
        fresh.into_iter(),
        &params(verify_mode(job.tuning.verify)),
        &progress,
    )?;
    let v2 = verify_entries(
        gen_timed,
        SourceCheck::None,
        shared.into_iter(),
        &params(VerifyMode::Size),
        &progress,
    )?;
    reporter.finish();
    let mut verified = v1;
    verified.merge(v2);
    let mut problems: Vec<String> = outcome
        .failures
        .iter()
        .map(|f| format!("failed: {}: {}", f.key, f.error))
        .collect();
    problems.extend(verified.mismatches.iter().map(|m| m.to_string()));
    crate::commands::warn_findings(&verified.source_findings);
    let mode = verify_mode(job.tuning.verify);
    if crate::commands::findings_fail(mode, job.tuning.strict, &verified.source_findings) {
        problems.push(format!(
            "{} source findings fail the backup ({})",
            verified.source_findings.len(),
            if job.tuning.strict {
                "--strict"
            } else {
                "--verify deep"
            }
        ));
    }
    for w in &outcome.warnings {
        eprintln!("hbcp: warning: {w}");
    }
    let mut header = GenerationHeader {
        format: GENERATION_FORMAT.into(),
        version: GENERATION_VERSION,
        id,
        source: job.src.url.display.clone(),
        started: job.cfg.started.clone(),
        finished: String::new(),
        range_size: layout.range_size,
        ..Default::default()
    };
    let mut pruned = Pruned::default();
    let exit = if problems.is_empty() {
        let mut gen_entries: Vec<GenerationEntry> = Vec::with_capacity(located.len());
        let mut counted: HashSet<&str> = HashSet::new();
        for (e, at) in &located {
            if e.d {
                header.dirs += 1;
            } else {
                header.files += 1;
                header.bytes += e.s;
                if let Some(a) = at {
                    if is_new(at) && counted.insert(a.as_str()) {
                        header.new_files += 1;
                        header.new_bytes += e.s;
                    }
                }
            }
            gen_entries.push(GenerationEntry {
                k: e.k.clone(),
                s: e.s,
                h: e.h.clone(),
                d: e.d,
                at: at.clone(),
            });
        }
        gen_entries.sort_by(|a, b| a.k.cmp(&b.k));
        header.finished = hbcp_state::time::now_rfc3339();
        let bytes_ = g::encode(&header, gen_entries)?;
        // Everything it names is durable; then the manifest, in one put: now it is visible.
        store.flush()?;
        store
            .put(&g::manifest_key(id), &bytes_)
            .with_context(|| format!("writing {}", g::manifest_key(id)))?;
        store.flush()?;
        let _ = store.delete(PENDING_KEY);
        let _ = std::fs::remove_dir_all(&job.cfg.state_dir);
        cleanup_staging(&job);
        eprintln!(
            "hbcp: generation {id} written: {} files, {}; stored {} new files, {} (sent {})",
            header.files,
            bytes(header.bytes),
            header.new_files,
            bytes(header.new_bytes),
            bytes(stats.bytes_copied.load(Relaxed)),
        );
        // Prune only after the new generation is verified and visible.
        pruned = prune(store.as_ref(), a.keep)?;
        for p in &pruned.generations {
            eprintln!("hbcp: pruned generation {p}");
        }
        if !pruned.generations.is_empty() {
            eprintln!(
                "hbcp: deleted {} stored files ({}) no kept generation needs",
                pruned.deleted_files,
                bytes(pruned.deleted_bytes)
            );
        }
        for p in &pruned.problems {
            eprintln!("hbcp: prune: {p}");
        }
        if pruned.problems.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        }
    } else {
        let keys: Vec<String> = verified.mismatches.iter().map(|m| m.key.clone()).collect();
        forget(&job.cfg, &keys)?;
        for p in &problems {
            eprintln!("hbcp: {p}");
        }
        eprintln!(
            "hbcp: generation {id} not written (nothing of it is visible); run the same command again to retry"
        );
        Exit::Failed
    };
    let elapsed = stats.elapsed().as_secs_f64();
    let bytes_sent = stats.bytes_copied.load(Relaxed);
    if quiet {
        outln!(
            "{}",
            serde_json::json!({
                "event": "done", "exit_code": exit.code(), "generation": id,
                "files": header.files, "bytes": header.bytes, "new_files": header.new_files,
                "new_bytes": header.new_bytes, "bytes_sent": bytes_sent,
                "pruned": pruned.generations, "elapsed_s": elapsed,
            })
        );
    }
    if let Some(path) = &job.tuning.report {
        let report = serde_json::json!({
            "command": "backup",
            "source": job.src.url.display,
            "target": job.dst.url.display,
            "started": job.cfg.started,
            "finished": hbcp_state::time::now_rfc3339(),
            "exit_code": exit.code(),
            "generation": id,
            "resumed": resumed,
            "written": problems.is_empty(),
            "files": header.files,
            "bytes": header.bytes,
            "dirs": header.dirs,
            "new_files": header.new_files,
            "new_bytes": header.new_bytes,
            "files_sent": stats.files_copied.load(Relaxed),
            "bytes_sent": bytes_sent,
            "files_unchanged": stats.files_skipped.load(Relaxed),
            "tasks": stats.tasks.load(Relaxed),
            "retries": stats.retries.load(Relaxed),
            "verified": {
                "files": verified.files,
                "bytes": verified.bytes,
                "mismatches": verified.mismatches,
            },
            "source_findings": verified.source_findings,
            "failures": outcome.failures,
            "warnings": outcome.warnings,
            "pruned": pruned,
            "throughput_bytes_per_s": bytes_sent as f64 / elapsed.max(1e-6),
            "elapsed_s": elapsed,
            "latency_ms": stats.latency(),
            "latency_by_op_ms": stats.latency_by_op(),
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
        std::fs::rename(&tmp, path)?;
    }
    Ok(exit)
}

/// Open a backup target for reading and check its layout marker.
fn open_backup(dst: &str, allow_http: bool) -> Result<(End, Layout)> {
    let end = open_source(dst, allow_http)?;
    let display = end.url.display.clone();
    match read_layout(end.store.as_ref(), &display)? {
        Some(l) => Ok((end, l)),
        None => usage(format!(
            "{display}: not an hbcp backup target (no {LAYOUT_KEY}); expected a folder written by hbcp backup"
        )),
    }
}

/// `hbcp generations`.
pub fn generations(a: GenerationsArgs) -> Result<Exit> {
    let (end, _) = open_backup(&a.dst, a.allow_http)?;
    let store = end.store.as_ref();
    let listing = list_generations(store)?;
    let mut rows = Vec::new();
    for id in listing.visible() {
        let (h, _) = read_generation(store, id)?;
        rows.push(h);
    }
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|h| {
                serde_json::json!({
                    "id": h.id, "time": h.finished, "started": h.started, "source": h.source,
                    "files": h.files, "dirs": h.dirs, "bytes": h.bytes,
                    "new_files": h.new_files, "new_bytes": h.new_bytes,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        eprintln!("hbcp: {}: no generations yet", end.url.display);
        return Ok(Exit::Ok);
    }
    outln!(
        "{:>6}  {:<24}  {:>10}  {:>12}  {:>12}",
        "ID",
        "TIME",
        "FILES",
        "BYTES",
        "NEW BYTES"
    );
    for h in &rows {
        outln!(
            "{:>6}  {:<24}  {:>10}  {:>12}  {:>12}",
            h.id,
            h.finished,
            h.files,
            bytes(h.bytes),
            bytes(h.new_bytes)
        );
    }
    Ok(Exit::Ok)
}

/// `hbcp restore`.
pub fn restore(a: RestoreArgs) -> Result<Exit> {
    validate_tuning(&a.tuning)?;
    let (backup_end, layout) = open_backup(&a.dst, a.tuning.allow_http)?;
    let display = backup_end.url.display.clone();
    let listing = list_generations(backup_end.store.as_ref())?;
    let visible = listing.visible();
    let id = a
        .generation
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|id| visible.contains(id));
    let Some(id) = id else {
        let have = if visible.is_empty() {
            "it has none".to_string()
        } else {
            format!(
                "its generations are {}",
                visible
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return usage(format!(
            "--generation {:?}: no such generation in {display}; {have} (see hbcp generations {display})",
            a.generation
        ));
    };
    let (header, entries) = read_generation(backup_end.store.as_ref(), id)?;
    let view = GenView {
        inner: backup_end.store.clone(),
        at: entries
            .iter()
            .map(|e| (e.k.clone(), (e.at.clone(), e.s)))
            .collect(),
    };
    let src = End {
        url: backup_end.url.clone(),
        store: Arc::new(view),
    };
    let dst = open_target(&a.target, &backup_end, a.tuning.allow_http)?;
    let excludes = vec![format!("\0restore:{id}")];
    let mut job = build_job("restore", src, dst, &excludes, a.tuning.clone(), None, None)?;
    job.cfg.source_label = format!("{display} generation {id}");
    if !job.cfg.state_dir.exists() && has_content(job.dst.store.as_ref())? {
        return usage(format!(
            "target {}: not empty; restore into an empty folder (a restore that was interrupted resumes into its own target)",
            job.dst.url.display
        ));
    }
    let cancel = install_signals()?;
    let stats = Arc::new(Stats::default());
    let quiet = matches!(job.tuning.progress, ProgressArg::Json);
    if !quiet {
        eprintln!(
            "hbcp: restore {display} generation {id} ({}, {} files, {}) -> {} (state in {})",
            header.finished,
            header.files,
            bytes(header.bytes),
            job.dst.url,
            job.cfg.state_dir.display()
        );
    }
    let reporter = Reporter::start(stats.clone(), job.tuning.progress);
    let feed_entries = entries.clone();
    let feed = move |_: &dyn Store, sink: &ListSink<'_>| {
        for e in &feed_entries {
            sink(Entry {
                key: e.k.clone(),
                size: e.s,
                version: None,
                modified: None,
                kind: if e.d { EntryKind::Dir } else { EntryKind::File },
            })?;
        }
        Ok(())
    };
    crate::exit::writing();
    let outcome = match hbcp_engine::copy(
        job.src.store.as_ref(),
        job.dst.store.as_ref(),
        &feed,
        &job.cfg,
        &stats,
        &cancel,
    ) {
        Ok(o) => o,
        Err(e) => {
            reporter.finish();
            return Err(crate::exit::engine_error(e, "cannot start the restore"));
        }
    };
    let copy_secs = stats.elapsed().as_secs_f64();
    let interrupted = cancel.load(Relaxed) || matches!(outcome.stop, Some(Stop::Interrupted));
    let mode = verify_mode(job.tuning.verify);
    let mut verified = VerifyOutcome::default();
    if outcome.stop.is_none() && !interrupted && mode != VerifyMode::None {
        // Against the generation manifest: every file's checksum as it was backed up.
        reporter.phase("verify");
        let st = stats.clone();
        let progress = move |n: u64| {
            st.bytes_verified.fetch_add(n, Relaxed);
            st.files_verified.fetch_add(1, Relaxed);
        };
        let expected = entries.iter().map(|e| ManifestEntry {
            k: e.k.clone(),
            s: e.s,
            h: e.h.clone(),
            v: None,
            d: e.d,
            n: false,
            m: None,
        });
        verified = verify_entries(
            job.dst.store.as_ref(),
            SourceCheck::None,
            expected,
            &Params {
                mode,
                workers: job.cfg.workers,
                range_size: header.range_size,
                chunk: job.cfg.chunk,
                // The generation was checked when it was backed up; a restore proves the bytes.
                hbase: None,
            },
            &progress,
        )?;
        if !verified.ok() {
            let keys: Vec<String> = verified.mismatches.iter().map(|m| m.key.clone()).collect();
            forget(&job.cfg, &keys)?;
        }
    }
    reporter.finish();
    let failed = !outcome.failures.is_empty() || !verified.ok();
    let early = crate::exit::early_end(
        outcome.stop.as_ref(),
        interrupted,
        crate::exit::wrote(&stats, &outcome),
        None,
    );
    let (exit, status) = match early {
        Some(end) => end,
        _ if failed => (Exit::Failed, "failed".to_string()),
        _ if mode == VerifyMode::None => (
            Exit::Ok,
            format!("generation {id} restored, not verified (--verify none)"),
        ),
        _ => (Exit::Ok, format!("generation {id} restored and verified")),
    };
    for f in &outcome.failures {
        eprintln!("hbcp: failed: {}: {}", f.key, f.error);
    }
    for m in &verified.mismatches {
        eprintln!("hbcp: {m}");
    }
    let _ = layout;
    if exit == Exit::Ok && mode != VerifyMode::None {
        if let Err(e) = write_completion(&job, &outcome, &verified, COMPLETION_KEY) {
            eprintln!("hbcp: cannot write the completion manifest: {e:#}");
            return finish(
                &job,
                &stats,
                &outcome,
                &verified,
                mode,
                copy_secs,
                Exit::Failed,
                "verified, but the completion manifest could not be written".into(),
            );
        }
    }
    cleanup_staging(&job);
    finish(
        &job, &stats, &outcome, &verified, mode, copy_secs, exit, status,
    )
}
