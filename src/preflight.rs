//! `hbcp preflight SRC`: what an HBase root holds and whether copying it without its WALs would
//! lose edits. The cheap signs (open WALs without their `LAWP` trailer, recovered edits not yet
//! replayed) are reported; the verdict comes from the precise check: a WAL cell of a region and
//! family whose sequence id is above the highest `MAX_SEQ_ID_KEY` of that family's HFiles lives
//! only in the WAL. Exit 1 when such edits exist (naming table, region and family), 0 otherwise,
//! 2 for a legacy or unreadable root.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use anyhow::Result;
use hbcp_hbase::{
    HFileTrailer, PathKind, WalSummary, classify, parse_hbase_version, read_file_info,
};
use hbcp_store::{Entry, EntryKind, Store};
use serde::Serialize;

use crate::cli::PreflightArgs;
use crate::commands::open_source;
use crate::progress::bytes;
use crate::{Exit, usage};

#[derive(Debug, Default, Serialize)]
struct TableStats {
    regions: BTreeSet<String>,
    families: BTreeSet<String>,
    hfiles: u64,
    bytes: u64,
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

/// What `copy` needs to know before it starts: `Ok(None)` when the root is safe to copy
/// without WALs (or is not an HBase root), `Ok(Some(message))` when edits live only in WALs.
/// With `tables` (namespace, name), only edits of those tables count. A legacy root is a usage
/// error.
pub fn unflushed_guard(
    src: &crate::commands::End,
    tables: &[(String, String)],
) -> Result<Option<String>> {
    let Some(mut f) = inspect(src)? else {
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
    if !f.loses() {
        return Ok(None);
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
    msg.push_str(&format!(
        " stop writes and flush first ({}), or pass --allow-unflushed to copy the WALs with the data",
        f.flush_commands()
    ));
    Ok(Some(msg))
}

struct Findings {
    version: String,
    tables: BTreeMap<String, TableStats>,
    snapshots: BTreeSet<String>,
    wals: usize,
    open_wals: Vec<String>,
    unflushed: Vec<Unflushed>,
    recovered: Vec<String>,
    unreadable: Vec<String>,
}

impl Findings {
    fn loses(&self) -> bool {
        !self.unflushed.is_empty() || !self.recovered.is_empty()
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
pub fn preflight(a: PreflightArgs) -> Result<Exit> {
    let src = open_source(&a.src, a.allow_http)?;
    let Some(f) = inspect(&src)? else {
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
            "open_wals": f.open_wals,
            "recovered_edits": f.recovered,
            "unflushed": f.unflushed,
            "not_checked": f.unreadable,
            "loses_edits_without_wals": f.loses(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&j)?)?;
    }
    Ok(if f.loses() { Exit::Failed } else { Exit::Ok })
}

fn inspect(src: &crate::commands::End) -> Result<Option<Findings>> {
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
        wals: Vec<Entry>,
        recovered: Vec<String>,
    }
    let pass = Mutex::new(Pass::default());
    if let Err(e) = store.list("", &|e: Entry| {
        if e.kind != EntryKind::File {
            return Ok(());
        }
        let mut p = pass.lock().unwrap();
        match classify(&e.key) {
            PathKind::HFile {
                at,
                archived: false,
                ..
            } => {
                let t = p.tables.entry(at.table.to_string()).or_default();
                t.regions.insert(at.region.clone());
                t.families.insert(at.family.clone());
                t.hfiles += 1;
                t.bytes += e.size;
                if let Some((dir, _)) = e.key.rsplit_once('/') {
                    p.family_dirs
                        .entry((at.region, at.family))
                        .or_insert_with(|| dir.to_string());
                }
            }
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
            PathKind::Wal { .. } => p.wals.push(e),
            PathKind::RecoveredEdits { name, .. } if !name.ends_with(".seqid") && e.size > 0 => {
                p.recovered.push(e.key.clone())
            }
            _ => {}
        }
        Ok(())
    }) {
        // A refusal (403) is bad input, exit 2; a service failure (500) is not: exit::of_error.
        return Err(anyhow::Error::new(e).context(format!("cannot list {}", src.url)));
    }
    let Pass {
        tables,
        snapshots,
        family_dirs,
        wals,
        recovered,
    } = pass.into_inner().unwrap();
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
    for w in &wals {
        let summary = match read_all(store, w)
            .map_err(|e| e.to_string())
            .and_then(|b| WalSummary::parse(&b).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                unreadable.push(format!("{}: {e}", w.key));
                continue;
            }
        };
        if !summary.closed {
            open_wals.push(w.key.clone());
        }
        if summary.compressed || summary.encrypted {
            unreadable.push(format!(
                "{}: compressed or encrypted WAL entries are not read",
                w.key
            ));
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
                    wal: w.key.clone(),
                });
            }
        }
    }
    Ok(Some(Findings {
        version: v.version,
        tables,
        snapshots,
        wals: wals.len(),
        open_wals,
        unflushed,
        recovered,
        unreadable,
    }))
}

fn print_findings(src: &crate::commands::End, f: &Findings) {
    let (tables, snapshots) = (&f.tables, &f.snapshots);
    outln!("root: {} (HBase layout version {})", src.url, f.version);
    outln!("tables: {}", tables.len());
    for (name, t) in tables {
        outln!(
            "  {name}: {} regions, {} families, {} HFiles, {}",
            t.regions.len(),
            t.families.len(),
            t.hfiles,
            bytes(t.bytes)
        );
    }
    outln!("snapshots: {}", snapshots.len());
    for s in snapshots {
        outln!("  {s}");
    }
    outln!(
        "WALs: {} ({} still open: no closing trailer)",
        f.wals,
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
    if f.loses() {
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
    } else {
        outln!(
            "verdict: every edit in the WALs is also in HFiles; a copy without the WALs loses nothing"
        );
    }
}
