//! A backup target's generations read and written as streams, so that `backup`, `restore`,
//! `generations` and pruning hold flat memory at ten million files: what earlier generations
//! stored is looked up in maps on disk ([`hbcp_engine::KeyMap`], the engine's `TargetIndex`),
//! a generation manifest is built from the engine's spill by an external sort and sent in parts,
//! and a generation is read back entry by entry.
//!
//! [`GenStore`] is the target as the engine sees it during a backup (keys of the root mapped to
//! where their bytes are kept), [`GenView`] a generation as a read-only tree (the source of a
//! restore). The on-target format is the one of [`hbcp_verifier::generation`], unchanged.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use hbcp_engine::{KeyMap, TargetIndex};
use hbcp_hbase::is_unique_hfile_name as is_hfile_name;
use hbcp_state::manifest::ManifestEntry;
use hbcp_store::{Caps, Entry, EntryKind, ListSink, Store, Upload};
use hbcp_verifier::generation::{self as g, GenerationEntry, GenerationHeader, GenerationKey};

use crate::poolclaim::{ClaimedUpload, Claims, PoolClaim};

/// The generations of a backup target: visible ones and tombstoned ones (a prune under way).
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) manifests: BTreeSet<u64>,
    pub(crate) tombstones: BTreeSet<u64>,
}

impl Listing {
    pub(crate) fn visible(&self) -> Vec<u64> {
        self.manifests
            .iter()
            .copied()
            .filter(|id| !self.tombstones.contains(id))
            .collect()
    }
    pub(crate) fn max_id(&self) -> u64 {
        self.manifests
            .iter()
            .chain(self.tombstones.iter())
            .copied()
            .max()
            .unwrap_or(0)
    }
}

pub(crate) fn list_generations(store: &dyn Store) -> Result<Listing> {
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

/// Read generation `id` entry by entry.
pub(crate) fn each_entry(
    store: &dyn Store,
    id: u64,
    mut f: impl FnMut(GenerationEntry) -> Result<()>,
) -> Result<GenerationHeader> {
    let mut failed = None;
    let h = g::read_store(store, id, |e| {
        if let Err(err) = f(e) {
            failed = Some(err);
            return Err(hbcp_store::Error::Unsupported {
                what: "reading the generation".into(),
                hint: "stopped by an error".into(),
            }
            .into());
        }
        Ok(())
    });
    if let Some(err) = failed {
        return Err(err);
    }
    Ok(h?)
}

fn index_err(e: hbcp_engine::Error) -> hbcp_store::Error {
    hbcp_store::Error::Io {
        path: "backup scratch map".into(),
        op: "lookup",
        source: std::io::Error::other(e.to_string()),
    }
}

fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// What the visible generations stored: the engine's index (key → size, checksum), where each
/// key's bytes are (key → stored key, size) and the HFile names the pool holds (name →
/// checksum, size).
pub(crate) struct Known {
    pub(crate) index: TargetIndex,
    pub(crate) prev: KeyMap,
    pub(crate) pooled: KeyMap,
}

pub(crate) fn load_known(store: &dyn Store, listing: &Listing, scratch: &Path) -> Result<Known> {
    let mut index = TargetIndex::builder(scratch, is_hfile_name)?;
    let mut prev = KeyMap::builder(scratch)?;
    let mut pooled = KeyMap::builder(scratch)?;
    // Oldest first, so that the newest generation's entry wins.
    for id in listing.visible() {
        each_entry(store, id, |e| {
            if e.d {
                return Ok(());
            }
            index.add(&e.k, e.s, e.checksum())?;
            let Some(at) = e.at else { return Ok(()) };
            if let Some(name) = at.strip_prefix(g::POOL_PREFIX) {
                pooled.add(name, e.h.as_deref().unwrap_or(""), e.s)?;
            }
            prev.add(&e.k, &at, e.s)?;
            Ok(())
        })?;
    }
    Ok(Known {
        index: index.finish()?,
        prev: prev.finish()?,
        pooled: pooled.finish()?,
    })
}

/// The target as the engine sees it during a backup: keys of the root, mapped to where the
/// bytes are kept. Reads go where the bytes of that key are (this generation's copy if it
/// wrote one, else the earlier generation's); writes go to the pool (HFiles) or to this
/// generation's folder. Nothing per file is held in memory but the rare HFile whose name the
/// pool already holds for a different file (`clashed`).
#[derive(Debug)]
pub(crate) struct GenStore {
    pub(crate) inner: Arc<dyn Store>,
    pub(crate) id: u64,
    /// key → stored key, from the visible generations (newest wins).
    pub(crate) prev: KeyMap,
    /// HFile name → (checksum, size), for the HFiles the pool holds for visible generations.
    pub(crate) pooled: KeyMap,
    /// key → stored key, for HFiles this run could not pool (a name clash).
    pub(crate) clashed: Mutex<HashMap<String, String>>,
    /// The pool names this run is writing now, and which key writes each.
    pub(crate) claims: Claims,
}

impl GenStore {
    /// Where a write of `key` goes, with the claim on the pool's name that write holds. An
    /// HFile goes to the pool unless the pool already holds a different file of that name, or
    /// another key of this run is writing that name now (then, like any other file, to this
    /// generation's folder); a key sent there once stays there.
    fn write_loc(&self, key: &str, size: u64) -> hbcp_store::Result<(String, Option<PoolClaim>)> {
        if let Some(l) = self.clashed.lock().unwrap().get(key) {
            return Ok((l.clone(), None));
        }
        let name = name_of(key);
        if !is_hfile_name(name) {
            return Ok((g::file_key(self.id, key), None));
        }
        if let Some(claim) = PoolClaim::take(&self.claims, name, key) {
            let pool = g::pool_key(name);
            let known = match self.pooled.get(name).map_err(index_err)? {
                Some((_, s)) => Some(s),
                // Pooled by this run, or by an interrupted one: the pool itself says.
                None => self.inner.head(&pool)?.map(|e| e.size),
            };
            if known.is_none_or(|k| k == size) {
                return Ok((pool, Some(claim)));
            }
        }
        let loc = g::file_key(self.id, key);
        self.clashed
            .lock()
            .unwrap()
            .insert(key.to_string(), loc.clone());
        Ok((loc, None))
    }

    /// Where the bytes of `key` are now.
    pub(crate) fn read_loc(&self, key: &str) -> hbcp_store::Result<String> {
        Ok(self.locate(key)?.0)
    }

    /// Where the bytes of `key` are now, and whether that is where an earlier visible
    /// generation has them (then they are not new, known without a lookup in the pool's map).
    pub(crate) fn locate(&self, key: &str) -> hbcp_store::Result<(String, bool)> {
        if let Some(l) = self.clashed.lock().unwrap().get(key) {
            return Ok((l.clone(), false));
        }
        let name = name_of(key);
        let prev = || -> hbcp_store::Result<Option<String>> {
            Ok(self.prev.get(key).map_err(index_err)?.map(|(at, _)| at))
        };
        if is_hfile_name(name) {
            return Ok(match prev()? {
                Some(at) => (at, true),
                None => (g::pool_key(name), false),
            });
        }
        let fresh = g::file_key(self.id, key);
        if self.inner.head(&fresh)?.is_some() {
            return Ok((fresh, false));
        }
        Ok(match prev()? {
            Some(at) => (at, true),
            None => (fresh, false),
        })
    }

    /// Whether `at` holds bytes this generation stored (no earlier visible generation names it).
    pub(crate) fn is_new(&self, at: &str) -> Result<bool> {
        if let Some(name) = at.strip_prefix(g::POOL_PREFIX) {
            return Ok(self.pooled.get(name)?.is_none());
        }
        Ok(at.starts_with(&g::file_key(self.id, "")))
    }
}

pub(crate) fn renamed(e: Option<Entry>, key: &str) -> Option<Entry> {
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
        let (loc, _claim) = self.write_loc(key, data.len() as u64)?;
        self.inner.put(&loc, data)
    }
    fn put_bytes(&self, key: &str, data: bytes::Bytes) -> hbcp_store::Result<Option<String>> {
        let (loc, _claim) = self.write_loc(key, data.len() as u64)?;
        self.inner.put_bytes(&loc, data)
    }
    fn begin_upload(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> hbcp_store::Result<Arc<dyn Upload>> {
        let (loc, claim) = self.write_loc(key, size)?;
        // The inner store's own upload (held with its claim on the pool's name): its MD5
        // (`--put-md5`) and its knowledge of parts staged by an interrupted run are the
        // backup's too.
        let up = self.inner.begin_upload(&loc, size, part_size, job)?;
        Ok(match claim {
            Some(c) => Arc::new(ClaimedUpload {
                inner: up,
                _claim: c,
            }),
            None => up,
        })
    }
    fn copy_within(&self, from: &str, to: &str) -> hbcp_store::Result<()> {
        let from_loc = self.read_loc(from)?;
        let Some(src) = self.inner.head(&from_loc)? else {
            return Err(hbcp_store::Error::NotFound {
                key: from_loc.clone(),
            });
        };
        let (to_loc, _claim) = self.write_loc(to, src.size)?;
        // An HFile that moved (data/ → archive/) is the same pooled file: nothing to copy.
        if to_loc != from_loc {
            self.inner.copy_within(&from_loc, &to_loc)?;
        }
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

/// The entries the engine recorded in `spill` (completion order), sorted by key with an
/// external sort and located (where each file's bytes are), written to the local file `out` as
/// generation entries (under a blank header: [`g::rewrite`] gives the manifest its own); fills
/// the counts of `header`.
pub(crate) fn locate_spill(
    gs: &GenStore,
    spill: &Path,
    scratch: &Path,
    out: &Path,
    header: &mut GenerationHeader,
) -> Result<()> {
    let mut sort = hbcp_state::manifest::sorter(scratch);
    hbcp_state::manifest::read(
        std::fs::File::open(spill).with_context(|| format!("{}", spill.display()))?,
        &spill.display().to_string(),
        |e| sort.push(e),
    )?;
    // The distinct stored keys this generation added (an HFile listed twice is stored once).
    let mut new_at = KeyMap::builder(scratch)?;
    let blank = GenerationHeader {
        format: g::GENERATION_FORMAT.into(),
        version: g::GENERATION_VERSION,
        ..Default::default()
    };
    let mut lw = g::create(out, &blank)?;
    for e in sort.finish()? {
        let e: ManifestEntry = e?;
        let at = if e.d {
            header.dirs += 1;
            None
        } else {
            header.files += 1;
            header.bytes += e.s;
            let (at, earlier) = gs.locate(&e.k)?;
            if !earlier && gs.is_new(&at)? {
                new_at.add(&at, "", e.s)?;
            }
            Some(at)
        };
        lw.write(&GenerationEntry {
            k: e.k,
            s: e.s,
            h: e.h,
            d: e.d,
            at,
        })?;
    }
    lw.finish()?;
    let new_at = new_at.finish()?;
    header.new_files = new_at.len();
    for r in new_at.iter() {
        header.new_bytes += r?.2;
    }
    Ok(())
}

/// The entries of the local generation manifest `path` as manifest entries (for the verifier),
/// keeping those `keep` accepts; a read error is kept in the returned cell.
pub(crate) fn manifest_entries(
    path: &Path,
    keep: impl Fn(&GenerationEntry) -> bool + Send,
) -> Result<(
    impl Iterator<Item = ManifestEntry> + Send,
    Arc<Mutex<Option<hbcp_verifier::Error>>>,
)> {
    let (_, entries) = g::FileEntries::open(path)?;
    let err = entries.error();
    let it = entries.filter(keep).map(|e| ManifestEntry {
        k: e.k,
        s: e.s,
        h: e.h,
        v: None,
        d: e.d,
        n: false,
        c: false,
        m: None,
        md5: None,
        t: None,
    });
    Ok((it, err))
}

/// Fail with the error a manifest iteration kept, if any.
pub(crate) fn check_read(err: &Mutex<Option<hbcp_verifier::Error>>) -> Result<()> {
    match err.lock().unwrap().take() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// A generation as a read-only tree with the keys of the root (the source of a restore): key →
/// (stored key, size) in a map on disk; an empty directory has an empty stored key.
#[derive(Debug)]
pub(crate) struct GenView {
    pub(crate) inner: Arc<dyn Store>,
    pub(crate) at: KeyMap,
}

impl GenView {
    /// Fetch generation `id`'s manifest of `store` to the local file `local` (streamed), and
    /// make a view of it (its map under the folder of `local`).
    pub(crate) fn open(
        store: Arc<dyn Store>,
        id: u64,
        local: &Path,
    ) -> Result<(GenerationHeader, GenView)> {
        let key = g::manifest_key(id);
        let size = store
            .head(&key)?
            .with_context(|| format!("{key}: not found"))?
            .size;
        let dir = local.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = local.with_extension("part");
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
        std::io::copy(
            &mut hbcp_state::manifest::StoreReader::new(store.as_ref(), &key, size),
            &mut f,
        )
        .with_context(|| format!("reading {key}"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, local)?;
        let (h, entries) = g::FileEntries::open(local)?;
        let err = entries.error();
        let mut b = KeyMap::builder(dir)?;
        for e in entries {
            b.add(&e.k, e.at.as_deref().unwrap_or(""), e.s)?;
        }
        check_read(&err)?;
        Ok((
            h,
            GenView {
                inner: store,
                at: b.finish()?,
            },
        ))
    }

    fn loc(&self, key: &str) -> hbcp_store::Result<String> {
        match self.at.get(key).map_err(index_err)? {
            Some((l, _)) if !l.is_empty() => Ok(l),
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
    fn retry_tally(&self) -> Option<&hbcp_store::retry::Tally> {
        self.inner.retry_tally()
    }
    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> hbcp_store::Result<()> {
        for r in self.at.iter_prefix(prefix) {
            let (k, at, size) = r.map_err(index_err)?;
            sink(Entry {
                key: k,
                size,
                version: None,
                modified: None,
                kind: if at.is_empty() {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
            })?;
        }
        Ok(())
    }
    fn list_paged(
        &self,
        prefix: &str,
        sink: &ListSink<'_>,
        _page: &(dyn Fn(std::time::Duration) + Sync),
    ) -> hbcp_store::Result<()> {
        // Served from the map: no listing request is made.
        self.list(prefix, sink)
    }
    fn head(&self, key: &str) -> hbcp_store::Result<Option<Entry>> {
        match self.at.get(key).map_err(index_err)? {
            None => Ok(None),
            Some((l, _)) if l.is_empty() => Ok(Some(Entry {
                key: key.to_string(),
                size: 0,
                version: None,
                modified: None,
                kind: EntryKind::Dir,
            })),
            Some((l, _)) => Ok(renamed(self.inner.head(&l)?, key)),
        }
    }
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> hbcp_store::Result<()> {
        self.inner.read_range(&self.loc(key)?, range, version, buf)
    }
    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> hbcp_store::Result<bytes::Bytes> {
        self.inner.read_range_bytes(&self.loc(key)?, range, version)
    }
    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> hbcp_store::Result<()>,
    ) -> hbcp_store::Result<()> {
        self.inner
            .read_range_to(&self.loc(key)?, range, version, sink)
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

/// What a prune removes, computed with maps on disk: the stored keys named by a `pruned`
/// generation and by no `kept` one, in key order, with their sizes (a map under `scratch`),
/// and the bytes stored for all of them (kept and pruned). The same answer as
/// [`g::prune_plan`]'s `delete`, at any number of files.
pub(crate) fn prune_deletions(
    store: &dyn Store,
    kept: &[u64],
    pruned: &[u64],
    scratch: &Path,
) -> Result<(KeyMap, u64)> {
    let mut needed = KeyMap::builder(scratch)?;
    for id in kept {
        each_entry(store, *id, |e| {
            if let Some(at) = e.at {
                needed.add(&at, "", e.s)?;
            }
            Ok(())
        })?;
    }
    let needed = needed.finish()?;
    let mut stored = 0u64;
    for r in needed.iter() {
        stored += r?.2;
    }
    let mut cand = KeyMap::builder(scratch)?;
    for id in pruned {
        // A tombstoned generation whose manifest is already gone names nothing.
        if store.head(&g::manifest_key(*id))?.is_none() {
            continue;
        }
        each_entry(store, *id, |e| {
            if let Some(at) = e.at {
                if needed.get(&at)?.is_none() {
                    cand.add(&at, "", e.s)?;
                }
            }
            Ok(())
        })?;
    }
    let cand = cand.finish()?;
    for r in cand.iter() {
        stored += r?.2;
    }
    Ok((cand, stored))
}
