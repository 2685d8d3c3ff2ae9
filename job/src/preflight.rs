//! `hbcp preflight SRC`: what an HBase root holds and whether copying it without its WALs would
//! lose edits. The cheap signs (open WALs without their `LAWP` trailer, recovered edits not yet
//! replayed) are reported; the verdict comes from the precise check: a WAL cell of a region and
//! family whose sequence id is above the highest `MAX_SEQ_ID_KEY` of that family's HFiles lives
//! only in the WAL. Exit 1 when such edits exist (naming table, region and family), 0 otherwise,
//! 2 for a legacy or unreadable root.
//!
//! The guard fails closed: a WAL that cannot be read (encrypted, corrupt, unreadable) holds like
//! a WAL-only edit, and so does a root without any WAL unless the WALs were read elsewhere
//! (`--wal-dir`, HBase's `hbase.wal.dir`, e.g. HDInsight Accelerated Writes) or the operator says
//! there are none (`--no-wals-expected`), or the root is a verified hbcp copy (its completion
//! manifest says the guard passed when it was made). A folder without `hbase.version` gets no
//! guard.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use anyhow::Result;
use hbcp_hbase::{
    HFileTrailer, PathKind, WalSummary, classify, parse_hbase_version, read_file_info,
};
use hbcp_store::{Entry, EntryKind, Store};
use serde::Serialize;

use crate::commands::{End, open_source};
use crate::report::bytes;
use crate::spec::{PreflightSpec, WalSpec};
use crate::{Exit, usage};

#[derive(Debug, Default, Serialize)]
struct TableStats {
    regions: BTreeSet<String>,
    families: BTreeSet<String>,
    hfiles: u64,
    bytes: u64,
    /// HFileLinks (a cloned or restored table's files, 0 bytes, pointing at another table's)
    /// and split/merge References, counted apart from the HFiles they stand for.
    links: u64,
    references: u64,
}

/// The stats of the table a store file sits in, its region and family recorded.
fn in_store<'a>(
    tables: &'a mut BTreeMap<String, TableStats>,
    at: &hbcp_hbase::StoreLocation,
) -> &'a mut TableStats {
    let t = tables.entry(at.table.to_string()).or_default();
    t.regions.insert(at.region.clone());
    t.families.insert(at.family.clone());
    t
}

/// Edits that exist only in a WAL.
#[derive(Debug, Serialize)]
struct Unflushed {
    table: String,
    region: String,
    family: String,
    wal_max_seq_id: u64,
    hfile_max_seq_id: Option<i64>,
    wal: String,
}

fn read_all(s: &dyn Store, e: &Entry) -> hbcp_store::Result<Vec<u8>> {
    let mut buf = Vec::new();
    s.read_range(&e.key, 0..e.size, None, &mut buf)?;
    Ok(buf)
}

/// Highest MAX_SEQ_ID_KEY of an HFile, from a tail read and the load-on-open section.
fn hfile_max_seq_id(s: &dyn Store, e: &Entry) -> Option<i64> {
    let mut tail = Vec::new();
    s.read_range(&e.key, HFileTrailer::tail_range(e.size), None, &mut tail)
        .ok()?;
    let trailer = HFileTrailer::parse(&tail, e.size).ok()?;
    let r = trailer.load_on_open_range(e.size);
    let mut section = Vec::new();
    s.read_range(&e.key, r.clone(), None, &mut section).ok()?;
    read_file_info(&section, r.start, &trailer).ok()?.max_seq_id
}

/// WASB's journal of a folder rename in flight (`fs.azure.atomic.rename.dir`, `/hbase` by
/// default): `<folder>-RenamePending.json`.
fn is_rename_pending(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("-renamepending.json")
}

fn mid_rename(src: &End, key: &str) -> String {
    let folder = &key[..key.len() - "-renamepending.json".len()];
    format!(
        "{}: {key}: WASB was renaming the folder {folder} (a table create, split or compaction in flight), so the root is not consistent; list that folder once on the cluster (hadoop fs -ls .../{folder}) so that WASB finishes the rename, then run hbcp again",
        src.url.display.trim_end_matches('/')
    )
}

/// `copy --allow-unflushed` skips the WAL guard but not this: a root in the middle of a WASB
/// folder rename is refused (exit 2). Not an HBase root: nothing to check.
pub fn refuse_mid_rename(src: &End) -> Result<()> {
    if !crate::select::is_hbase_root(src.store.as_ref())? {
        return Ok(());
    }
    let found = Mutex::new(None);
    if let Err(e) = src.store.list("", &|e: Entry| {
        if is_rename_pending(&e.key) {
            found.lock().unwrap().get_or_insert(e.key);
        }
        Ok(())
    }) {
        return usage(format!("cannot list {}: {e}", src.url));
    }
    match found.into_inner().unwrap() {
        Some(k) => usage(mid_rename(src, &k)),
        None => Ok(()),
    }
}

/// Where the WALs of a root are read: under the root, and under `--wal-dir` when given.
pub struct WalPlaces {
    dir: Option<End>,
    no_wals_expected: bool,
}

impl WalPlaces {
    /// Opens `--wal-dir` (any store hbcp reads); a bad URL or a missing folder is exit 2.
    pub fn open(a: &WalSpec, allow_http: bool) -> Result<WalPlaces> {
        let dir = match &a.wal_dir {
            None => None,
            Some(u) => Some(open_source(u, allow_http).map_err(|e| {
                match e.downcast_ref::<crate::exit::UsageError>() {
                    Some(u) => crate::exit::UsageError(format!("--wal-dir: {}", u.0)).into(),
                    None => e.context("--wal-dir"),
                }
            })?),
        };
        Ok(WalPlaces {
            dir,
            no_wals_expected: a.no_wals_expected,
        })
    }
}

/// What `copy` needs to know before it starts: `Ok(None)` when the root is safe to copy
/// without WALs (or is not an HBase root), `Ok(Some(message))` when edits live only in WALs,
/// a WAL could not be read, or no WAL was found to read. With `tables` (namespace, name), only
/// edits of those tables count. A legacy root is a usage error.
pub fn unflushed_guard(
    src: &End,
    tables: &[(String, String)],
    places: &WalPlaces,
) -> Result<Option<String>> {
    let Some(mut f) = inspect(src, places)? else {
        return Ok(None);
    };
    if !tables.is_empty() {
        let names: Vec<String> = tables
            .iter()
            .map(|(ns, q)| hbcp_hbase::TableRef::new(ns, q).to_string())
            .collect();
        let dirs: Vec<String> = tables
            .iter()
            .map(|(ns, q)| format!("data/{ns}/{q}/"))
            .collect();
        // An edit whose table is unknown ("?") may be of a selected table: it still counts.
        f.unflushed
            .retain(|u| u.table == "?" || names.contains(&u.table));
        f.recovered
            .retain(|r| dirs.iter().any(|d| r.contains(d.as_str())));
    }
    if !f.holds() {
        return Ok(None);
    }
    if let Some(why) = f.no_wals(&src.url.display) {
        return Ok(Some(format!(
            "{why}; pass --wal-dir URL to read them there, or --no-wals-expected if this root has none, or --allow-unflushed to copy without this check"
        )));
    }
    if !f.unreadable.is_empty() && f.unflushed.is_empty() && f.recovered.is_empty() {
        return Ok(Some(format!(
            "cannot tell whether a copy without the WALs loses edits: {}; stop writes and flush first ({}), or pass --allow-unflushed to copy the WALs with the data",
            f.unreadable.join("; "),
            f.flush_commands()
        )));
    }
    let mut msg =
        String::from("copying without the WALs would lose edits that are not yet in HFiles:");
    for u in &f.unflushed {
        msg.push_str(&format!(
            " table {} region {} family {} (WAL sequence id {});",
            u.table, u.region, u.family, u.wal_max_seq_id
        ));
    }
    for r in &f.recovered {
        msg.push_str(&format!(" recovered edits not replayed: {r};"));
    }
    for u in &f.unreadable {
        msg.push_str(&format!(" WAL not read: {u};"));
    }
    msg.push_str(&format!(
        " stop writes and flush first ({}), or pass --allow-unflushed to copy the WALs with the data",
        f.flush_commands()
    ));
    Ok(Some(msg))
}

/// What only the WALs hold now, one line each (edits above the flushed sequence ids, recovered
/// edits not replayed, WALs not read, no WAL found): `sync` reports it as data at risk in each
/// cycle. Empty for a folder that is not an HBase root.
pub fn at_risk(src: &End, places: &WalPlaces) -> Result<Vec<String>> {
    let Some(f) = inspect(src, places)? else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = f
        .unflushed
        .iter()
        .map(|u| {
            format!(
                "table {} region {} family {}: WAL edits up to sequence id {} in {}",
                u.table, u.region, u.family, u.wal_max_seq_id, u.wal
            )
        })
        .collect();
    out.extend(
        f.recovered
            .iter()
            .map(|r| format!("recovered edits not replayed: {r}")),
    );
    out.extend(f.unreadable.iter().map(|u| format!("WAL not read: {u}")));
    out.extend(f.no_wals(&src.url.display));
    Ok(out)
}

struct Findings {
    version: String,
    tables: BTreeMap<String, TableStats>,
    snapshots: BTreeSet<String>,
    /// WALs read (under `WALs/`, of the root and of `--wal-dir`).
    wals: usize,
    /// WAL files seen (`WALs/` and `oldWALs/`): none means the WALs live elsewhere or not at all.
    wal_files: usize,
    /// `--wal-dir`, printable.
    wal_dir: Option<String>,
    /// The root is a verified hbcp copy (its completion manifest is there): its source's WALs
    /// were checked by the guard when it was made, or copied with it.
    hbcp_copy: bool,
    no_wals_expected: bool,
    open_wals: Vec<String>,
    unflushed: Vec<Unflushed>,
    recovered: Vec<String>,
    unreadable: Vec<String>,
}

impl Findings {
    /// Edits live only in WALs (or in recovered edits not replayed).
    fn loses(&self) -> bool {
        !self.unflushed.is_empty() || !self.recovered.is_empty()
    }
    /// Why no WAL was read, when none was and the operator did not say none exist.
    fn no_wals(&self, root: &str) -> Option<String> {
        if self.wal_files > 0 || self.no_wals_expected || self.hbcp_copy {
            return None;
        }
        Some(match &self.wal_dir {
            None => format!(
                "{root}: found no WALs under the root (WALs/, oldWALs/): they may live elsewhere (HBase's hbase.wal.dir, e.g. on HDInsight with Accelerated Writes), so a copy without them cannot be promised to lose nothing"
            ),
            Some(d) => format!(
                "found no WALs under the root nor under --wal-dir {d} (WALs/, oldWALs/; give the folder hbase.wal.dir names), so a copy without them cannot be promised to lose nothing"
            ),
        })
    }
    /// The guard holds: edits only in WALs, a WAL not read, or no WAL found to read.
    fn holds(&self) -> bool {
        self.loses() || !self.unreadable.is_empty() || self.no_wals("").is_some()
    }
    fn flush_commands(&self) -> String {
        let mut names: BTreeSet<&str> = self.unflushed.iter().map(|u| u.table.as_str()).collect();
        names.remove("?");
        let v: Vec<String> = names.iter().map(|t| format!("flush '{t}'")).collect();
        format!(
            "in the hbase shell: {}",
            if v.is_empty() {
                "flush each table".into()
            } else {
                v.join("; ")
            }
        )
    }
}

/// `hbcp preflight`.
pub fn preflight(a: PreflightSpec) -> Result<Exit> {
    let src = open_source(&a.src, a.allow_http)?;
    let places = WalPlaces::open(&a.wals, a.allow_http)?;
    let Some(f) = inspect(&src, &places)? else {
        outln!(
            "{}: no hbase.version — not an HBase root; hbcp copies it as plain files",
            src.url
        );
        return Ok(Exit::Ok);
    };
    print_findings(&src, &f);
    if let Some(path) = &a.report {
        let j = serde_json::json!({
            "source": src.url.display,
            "version": f.version,
            "tables": f.tables,
            "snapshots": f.snapshots,
            "wals": f.wals,
            "wal_files": f.wal_files,
            "wal_dir": f.wal_dir,
            "no_wals_expected": f.no_wals_expected,
            "no_wals_found": f.no_wals("").is_some(),
            "open_wals": f.open_wals,
            "recovered_edits": f.recovered,
            "unflushed": f.unflushed,
            "not_checked": f.unreadable,
            "loses_edits_without_wals": f.loses(),
            "safe_without_wals": !f.holds(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&j)?)?;
    }
    Ok(if f.holds() { Exit::Failed } else { Exit::Ok })
}

fn inspect(src: &End, places: &WalPlaces) -> Result<Option<Findings>> {
    let store = src.store.as_ref();
    // Not an HBase root: nothing to inspect, and no listing (a plain folder of millions of
    // files is not listed twice, nor held in memory).
    let ver = match store.head("hbase.version") {
        Ok(Some(e)) if e.kind == EntryKind::File => e,
        _ => return Ok(None),
    };
    let v = match read_all(store, &ver)
        .map_err(|e| e.to_string())
        .and_then(|b| parse_hbase_version(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return usage(format!("{}/hbase.version: {e}", src.url)),
    };
    if v.legacy || v.version != "8" {
        return usage(format!(
            "{}: HBase file-system layout version {} (HBase 0.94 or older) is not supported; upgrade the cluster to 0.96+ first",
            src.url, v.version
        ));
    }
    // One streamed pass over the root. What is kept grows with tables, regions, families and
    // WALs, never with the HFiles: a family's HFiles are listed again, folder by folder, only
    // for the families that a WAL has edits of.
    #[derive(Default)]
    struct Pass {
        tables: BTreeMap<String, TableStats>,
        snapshots: BTreeSet<String>,
        /// (region, family) → the family folder holding its HFiles.
        family_dirs: HashMap<(String, String), String>,
        /// WALs to read: (under --wal-dir, entry).
        wals: Vec<(bool, Entry)>,
        wal_files: usize,
        recovered: Vec<String>,
        rename_pending: Option<String>,
    }
    let pass = Mutex::new(Pass::default());
    if let Err(e) = store.list("", &|e: Entry| {
        if e.kind != EntryKind::File {
            return Ok(());
        }
        let mut p = pass.lock().unwrap();
        if is_rename_pending(&e.key) {
            p.rename_pending.get_or_insert(e.key.clone());
        }
        match classify(&e.key) {
            PathKind::HFile {
                at,
                archived: false,
                ..
            } => {
                let t = in_store(&mut p.tables, &at);
                t.hfiles += 1;
                t.bytes += e.size;
                if let Some((dir, _)) = e.key.rsplit_once('/') {
                    p.family_dirs
                        .entry((at.region, at.family))
                        .or_insert_with(|| dir.to_string());
                }
            }
            PathKind::HFileLink {
                at,
                archived: false,
                ..
            } => in_store(&mut p.tables, &at).links += 1,
            PathKind::Reference {
                at,
                archived: false,
                ..
            } => in_store(&mut p.tables, &at).references += 1,
            PathKind::RegionInfo { table, region } => {
                p.tables
                    .entry(table.to_string())
                    .or_default()
                    .regions
                    .insert(region);
            }
            PathKind::SnapshotInfo { name } => {
                p.snapshots.insert(name);
            }
            other => wal_kind(&mut p, other, e, false),
        }
        Ok(())
    }) {
        // A refusal (403) is bad input, exit 2; a service failure (500) is not: exit::of_error.
        return Err(anyhow::Error::new(e).context(format!("cannot list {}", src.url)));
    }
    /// WALs, archived WALs and recovered edits, under the root or under --wal-dir.
    fn wal_kind(p: &mut Pass, kind: PathKind, e: Entry, in_wal_dir: bool) {
        match kind {
            PathKind::Wal { .. } => {
                p.wal_files += 1;
                p.wals.push((in_wal_dir, e));
            }
            PathKind::OldWal { .. } => p.wal_files += 1,
            PathKind::RecoveredEdits { name, .. } if !name.ends_with(".seqid") && e.size > 0 => {
                p.recovered.push(if in_wal_dir {
                    format!("--wal-dir {}", e.key)
                } else {
                    e.key
                })
            }
            _ => {}
        }
    }
    if let Some(d) = &places.dir {
        if let Err(e) = d.store.list("", &|e: Entry| {
            if e.kind == EntryKind::File {
                wal_kind(&mut pass.lock().unwrap(), classify(&e.key), e, true);
            }
            Ok(())
        }) {
            return usage(format!("cannot list --wal-dir {}: {e}", d.url));
        }
    }
    let Pass {
        tables,
        snapshots,
        family_dirs,
        wals,
        wal_files,
        recovered,
        rename_pending,
    } = pass.into_inner().unwrap();
    if let Some(k) = rename_pending {
        return usage(mid_rename(src, &k));
    }
    // The highest sequence id flushed to the HFiles of a family, listed when first asked for.
    let mut flushed_of: HashMap<(String, String), Option<i64>> = HashMap::new();
    let mut max_flushed = |region: &str, family: &str| -> Option<i64> {
        let k = (region.to_string(), family.to_string());
        if let Some(m) = flushed_of.get(&k) {
            return *m;
        }
        let dir = family_dirs.get(&k)?;
        let hfiles = Mutex::new(Vec::new());
        let listed = store.list(&format!("{dir}/"), &|e: Entry| {
            let direct = e
                .key
                .strip_prefix(dir.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|name| !name.contains('/'));
            if e.kind == EntryKind::File
                && direct
                && matches!(
                    classify(&e.key),
                    PathKind::HFile {
                        archived: false,
                        ..
                    }
                )
            {
                hfiles.lock().unwrap().push(e);
            }
            Ok(())
        });
        let m = match listed {
            Ok(()) => hfiles
                .into_inner()
                .unwrap()
                .iter()
                .filter_map(|h| hfile_max_seq_id(store, h))
                .max(),
            Err(_) => None,
        };
        flushed_of.insert(k, m);
        m
    };
    let mut open_wals = Vec::new();
    let mut unflushed = Vec::new();
    let mut unreadable = Vec::new();
    for (in_wal_dir, w) in &wals {
        let (wal_store, name) = match (&places.dir, in_wal_dir) {
            (Some(d), true) => (
                d.store.as_ref(),
                format!("{}/{}", d.url.display.trim_end_matches('/'), w.key),
            ),
            _ => (store, w.key.clone()),
        };
        let summary = match read_all(wal_store, w)
            .map_err(|e| e.to_string())
            .and_then(|b| WalSummary::parse(&b).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                unreadable.push(format!("{name}: {e}"));
                continue;
            }
        };
        if !summary.closed {
            open_wals.push(name.clone());
        }
        let tables_of: HashMap<&str, &str> = summary
            .entries
            .iter()
            .map(|e| (e.encoded_region.as_str(), e.table.as_str()))
            .collect();
        for ((region, family), seq) in summary.max_data_seq_ids() {
            let flushed = max_flushed(&region, &family);
            if flushed.is_none_or(|m| (seq as i64) > m) {
                unflushed.push(Unflushed {
                    table: tables_of
                        .get(region.as_str())
                        .copied()
                        .unwrap_or("?")
                        .to_string(),
                    region,
                    family,
                    wal_max_seq_id: seq,
                    hfile_max_seq_id: flushed,
                    wal: name.clone(),
                });
            }
        }
    }
    Ok(Some(Findings {
        version: v.version,
        tables,
        snapshots,
        wals: wals.len(),
        wal_files,
        wal_dir: places.dir.as_ref().map(|d| d.url.display.clone()),
        hbcp_copy: wal_files == 0
            && matches!(
                store.head(hbcp_state::manifest::COMPLETION_KEY),
                Ok(Some(_))
            ),
        no_wals_expected: places.no_wals_expected,
        open_wals,
        unflushed,
        recovered,
        unreadable,
    }))
}

fn print_findings(src: &End, f: &Findings) {
    let (tables, snapshots) = (&f.tables, &f.snapshots);
    outln!("root: {} (HBase layout version {})", src.url, f.version);
    outln!("tables: {}", tables.len());
    for (name, t) in tables {
        let n = |n: usize, noun: &str| crate::report::count(n as u64, noun);
        let mut stands_for = String::new();
        if t.links > 0 {
            stands_for += &format!(", {}", n(t.links as usize, "HFileLink"));
        }
        if t.references > 0 {
            stands_for += &format!(", {}", n(t.references as usize, "Reference"));
        }
        outln!(
            "  {name}: {}, {}, {}{stands_for}, {}",
            n(t.regions.len(), "region"),
            n(t.families.len(), "family"),
            n(t.hfiles as usize, "HFile"),
            bytes(t.bytes)
        );
    }
    outln!("snapshots: {}", snapshots.len());
    for s in snapshots {
        outln!("  {s}");
    }
    outln!(
        "WALs: {} read{} ({} still open: no closing trailer)",
        f.wals,
        f.wal_dir
            .as_ref()
            .map(|d| format!(", with --wal-dir {d}"))
            .unwrap_or_default(),
        f.open_wals.len()
    );
    for w in &f.open_wals {
        outln!("  open: {w}");
    }
    for r in &f.recovered {
        outln!("  recovered edits not replayed: {r}");
    }
    for u in &f.unreadable {
        outln!("  not checked: {u}");
    }
    if let Some(why) = f.no_wals(&src.url.display) {
        outln!("verdict: cannot promise: {why}");
        outln!(
            "  read the WALs where they are with --wal-dir URL, or say --no-wals-expected if this root has none"
        );
    } else if f.loses() {
        outln!("verdict: a copy without the WALs would LOSE edits:");
        for u in &f.unflushed {
            outln!(
                "  table {} region {} family {}: WAL edits up to sequence id {} (flushed: {})",
                u.table,
                u.region,
                u.family,
                u.wal_max_seq_id,
                u.hfile_max_seq_id
                    .map_or("nothing".to_string(), |m| m.to_string())
            );
        }
        outln!("  stop writes and flush first, e.g. {}", f.flush_commands());
    } else if !f.unreadable.is_empty() {
        outln!(
            "verdict: cannot promise: {} WAL(s) could not be read (listed above as not checked); a copy without them may lose edits",
            f.unreadable.len()
        );
        outln!("  stop writes and flush first, e.g. {}", f.flush_commands());
    } else if f.wal_files == 0 && f.no_wals_expected {
        outln!(
            "verdict: no WALs found and --no-wals-expected: a copy without WALs loses nothing this root holds"
        );
    } else if f.wal_files == 0 {
        outln!(
            "verdict: no WALs: this root is a verified hbcp copy (the WALs of its source were checked when it was made); a copy of it loses nothing"
        );
    } else {
        outln!(
            "verdict: every edit in the WALs is also in HFiles; a copy without the WALs loses nothing"
        );
    }
}
