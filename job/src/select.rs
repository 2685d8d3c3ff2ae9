//! From the selection flags to what a job reads: the checked [`SelectSpec`], the HBase rules of
//! a whole-root copy, and for a table or snapshot the resolved view, seen through a
//! [`ViewStore`]. Also `hbcp snapshots` and the publishing step of a snapshot export.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Result;
use hbcp_planner::view::{Publish, ViewError, list_snapshots, parse_row_key, parse_time};
use hbcp_planner::{HbaseRules, Layout, SelectSpec, Selection, View, ViewStore, build_view};
use hbcp_store::{Entry, EntryKind, Store};

use crate::commands::{End, open_source};
use crate::report::bytes;
use crate::spec::{HbaseSelectSpec, LayoutChoice, SnapshotsSpec};
use crate::{Exit, usage};

/// Check the selection flags (exit 2 on a bad key, time or combination).
pub(crate) fn spec(a: &HbaseSelectSpec) -> Result<SelectSpec> {
    let mut s = SelectSpec::default();
    for t in &a.table {
        let (ns, q) = match t.split_once(':') {
            Some((ns, q)) => (ns, q),
            None => ("default", t.as_str()),
        };
        let ok = |x: &str| {
            !x.is_empty()
                && !x.starts_with('.')
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !ok(ns) || !ok(q) {
            return usage(format!(
                "--table {t:?}: expected NS:NAME or NAME (letters, digits, _ - .), e.g. default:usertable"
            ));
        }
        let pair = (ns.to_string(), q.to_string());
        if !s.tables.contains(&pair) {
            s.tables.push(pair);
        }
    }
    s.snapshot = a.snapshot.clone();
    if let Some(n) = &s.snapshot {
        if n.is_empty() || n.contains('/') || n == ".tmp" {
            return usage(format!("--snapshot {n:?}: not a snapshot name"));
        }
    }
    let key = |flag: &str, v: &Option<String>| -> Result<Option<Vec<u8>>> {
        match v {
            None => Ok(None),
            Some(k) => match parse_row_key(k) {
                Ok(b) => Ok(Some(b)),
                Err(e) => usage(format!("{flag} {e}")),
            },
        }
    };
    s.start_row = key("--start-row", &a.start_row)?;
    s.end_row = key("--end-row", &a.end_row)?;
    let time = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(t) => match parse_time(t) {
                Ok(ms) => Ok(Some(ms)),
                Err(e) => usage(format!("{flag} {e}")),
            },
        }
    };
    s.since = time("--since", &a.since)?;
    s.until = time("--until", &a.until)?;
    s.layout = match a.layout {
        LayoutChoice::Root => Layout::Root,
        LayoutChoice::Bulkload => Layout::Bulkload,
    };
    if let Err(m) = s.check() {
        return usage(m);
    }
    Ok(s)
}

/// An HBase root has `hbase.version` at its top.
pub(crate) fn is_hbase_root(src: &dyn Store) -> Result<bool> {
    Ok(src
        .head("hbase.version")?
        .is_some_and(|e| e.kind == EntryKind::File))
}

/// What a job reads.
pub(crate) struct Prepared {
    /// The selection of keys (with the HBase rules of a whole root). For a view, the keys are
    /// the view's, and [`View::scope`] narrows the target side of a verification.
    pub(crate) sel: Selection,
    /// The view, for a table or snapshot selection.
    pub(crate) view: Option<View>,
}

/// What a whole-root `copy` copies, for `copy`, `sync` and `backup` alike: an HBase root without
/// its transient folders, and without its WALs unless `include_wals`; any other folder whole.
pub(crate) fn copy_rules(src: &End, sel: Selection, include_wals: bool) -> Result<Selection> {
    Ok(if is_hbase_root(src.store.as_ref())? {
        sel.with_hbase_rules(HbaseRules { include_wals })
    } else {
        sel
    })
}

/// Resolve the selection against the source. Nothing is written.
pub(crate) fn prepare(
    src: &End,
    spec: &SelectSpec,
    sel: Selection,
    include_wals: bool,
) -> Result<Prepared> {
    if !spec.is_view() {
        let sel = copy_rules(src, sel, include_wals)?;
        return Ok(Prepared { sel, view: None });
    }
    if include_wals && !spec.tables.is_empty() {
        errln!(
            "hbcp: note: a --table copy carries no WALs (a WAL mixes the edits of every table): edits that are only in WALs are not copied"
        );
    }
    let workers = if src.store.caps().is_local { 8 } else { 32 };
    let view = match build_view(src.store.as_ref(), spec, workers) {
        Ok(v) => v,
        Err(ViewError::Usage(m)) => return usage(m),
        Err(ViewError::Store(e)) => return usage(format!("cannot read the source: {e}")),
        Err(e @ ViewError::Spill(_)) => return Err(e.into()),
    };
    for n in &view.notes {
        errln!("hbcp: {n}");
    }
    // The count the summary's "copied N files" is made of, said before the copy: the HFiles
    // above are only part of it (links' targets, descriptors, a snapshot's manifest, the root's
    // identity files).
    let n = view.items.len();
    errln!(
        "hbcp: selection: {} in all, the HFiles above with the files that go with them",
        crate::report::count(n as u64, "file")
    );
    for w in &view.warnings {
        errln!("hbcp: warning: {w}");
    }
    Ok(Prepared {
        sel,
        view: Some(view),
    })
}

/// The root identity files of `view` that the target already has: they are kept as they are.
pub(crate) fn identity_at_target(view: &View, dst: &dyn Store) -> Result<HashSet<String>> {
    let mut have = HashSet::new();
    for k in &view.identity {
        if dst.head(k)?.is_some() {
            have.insert(k.clone());
        }
    }
    Ok(have)
}

/// A failure to read the view's file list, as a store error (it stops a listing or a feed).
pub(crate) fn items_err(e: hbcp_planner::Error) -> hbcp_store::Error {
    hbcp_store::Error::Unsupported {
        what: "reading the selection's file list".into(),
        hint: e.to_string(),
    }
}

/// Feed `f` the entries a copy of `view` writes (snapshot files under their `.tmp` keys) with
/// their source keys, in key order, streamed from the view's sealed file; those `sel` leaves
/// out and the identity files in `skip` are not fed.
pub(crate) fn copy_entries(
    view: &View,
    sel: &Selection,
    skip: &HashSet<String>,
    f: &mut dyn FnMut(Entry, Vec<String>) -> hbcp_store::Result<()>,
) -> hbcp_store::Result<()> {
    for item in view.items.iter().map_err(items_err)? {
        let item = item.map_err(items_err)?;
        let k = &item.entry.key;
        if !sel.accepts(&item.entry) || skip.contains(k) {
            continue;
        }
        let mut e = item.entry.clone();
        let mut sources = item.sources;
        if let Some(tmp) = view.publish.as_ref().and_then(|p| p.tmp_key(k)) {
            if sources.is_empty() {
                sources = vec![k.clone()];
            }
            e.key = tmp;
        }
        f(e, sources)?;
    }
    Ok(())
}

/// Whether a view's HFiles under `archive/data/` are read from where HBase looks for them (a
/// snapshot in the root layout).
pub(crate) fn derives_archive(spec: &SelectSpec) -> bool {
    spec.snapshot.is_some() && spec.layout == Layout::Root
}

/// A source seen through a view: reads each target key from its source keys (filled with
/// [`ViewStore::map_key`]), lists what `listing` gives.
pub(crate) fn view_store(
    src: &End,
    spec: &SelectSpec,
    listing: Option<hbcp_planner::ViewListing>,
) -> Arc<ViewStore> {
    Arc::new(ViewStore::new(
        src.store.clone(),
        listing,
        derives_archive(spec),
    ))
}

/// The publish step of a snapshot whose files were written under `.tmp`, from a plan's keys.
pub(crate) fn publish_of_plan(spec: &SelectSpec, keys: &[String]) -> Option<Publish> {
    spec.snapshot.as_ref()?;
    if spec.layout != Layout::Root {
        return None;
    }
    let k = keys
        .iter()
        .find(|k| k.starts_with(".hbase-snapshot/.tmp/"))?;
    let dir = k[".hbase-snapshot/.tmp/".len()..].split('/').next()?;
    Some(Publish {
        tmp: format!(".hbase-snapshot/.tmp/{dir}/"),
        visible: format!(".hbase-snapshot/{dir}/"),
    })
}

/// Write the snapshot's files under `.tmp` before anything else (ExportSnapshot's "manifest
/// first": a target cleaner then knows the HFiles that arrive are referenced). Returns the files
/// and bytes written.
pub(crate) fn put_manifest_first(
    src: &dyn Store,
    dst: &dyn Store,
    entries: &[(Entry, Vec<String>)],
    p: &Publish,
) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for (e, sources) in entries.iter() {
        if !e.key.starts_with(&p.tmp) || e.kind != EntryKind::File {
            continue;
        }
        let from = sources.first().cloned().unwrap_or_else(|| e.key.clone());
        let mut buf = Vec::new();
        src.read_range(&from, 0..e.size, e.version.as_deref(), &mut buf)?;
        dst.put(&e.key, &buf)?;
        files += 1;
        bytes += e.size;
    }
    dst.flush()?;
    Ok((files, bytes))
}

/// Make the snapshot visible: every file under `.tmp/NAME/` is copied to `NAME/` (a
/// server-side copy where the store has one), checked for size, then the `.tmp` files are
/// deleted. Called only after everything verified.
pub(crate) fn publish(dst: &dyn Store, p: &Publish, tmp_keys: &[(String, u64)]) -> Result<()> {
    for (k, size) in tmp_keys {
        let Some(vis) = p.visible_key(k) else {
            continue;
        };
        if dst.copy_within(k, &vis).is_err() {
            let mut buf = Vec::new();
            dst.read_range(k, 0..*size, None, &mut buf)?;
            dst.put(&vis, &buf)?;
        }
        match dst.head(&vis)? {
            Some(e) if e.size == *size => {}
            other => anyhow::bail!(
                "publishing the snapshot: {vis} has {} bytes, expected {size}",
                other.map_or("no".to_string(), |e| e.size.to_string())
            ),
        }
    }
    dst.flush()?;
    for (k, _) in tmp_keys {
        if p.visible_key(k).is_some() {
            dst.delete(k)?;
        }
    }
    // Empty folders left by the deletes on local disk.
    let _ = dst.delete(p.tmp.trim_end_matches('/'));
    let _ = dst.delete(".hbase-snapshot/.tmp");
    dst.flush()?;
    Ok(())
}

/// `hbcp snapshots SRC`.
pub(crate) fn snapshots(a: SnapshotsSpec) -> Result<Exit> {
    let src = open_source(&a.src, a.allow_http)?;
    let list = match list_snapshots(src.store.as_ref()) {
        Ok(l) => l,
        // A refusal (403) is bad input, exit 2; a service failure (500) is not: exit::of_error.
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot list {}", src.url))),
    };
    let mut bad = 0;
    let mut rows = Vec::new();
    for r in list {
        match r {
            Ok(s) => rows.push(s),
            Err(e) => {
                bad += 1;
                errln!("hbcp: warning: unreadable snapshot: {e}");
            }
        }
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        outln!("{}: no snapshots under .hbase-snapshot/", src.url);
    } else {
        // Columns as wide as their longest value, so a long name never shifts the others.
        let named: Vec<(String, String)> = rows
            .iter()
            .map(|s| {
                let created = if s.creation_time > 0 {
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::from_millis(s.creation_time as u64),
                    )
                    .to_string()
                } else {
                    "?".into()
                };
                let name = if s.name == s.dir {
                    s.name.clone()
                } else {
                    format!("{} (dir {})", s.name, s.dir)
                };
                (name, created)
            })
            .collect();
        let width = |it: &mut dyn Iterator<Item = usize>, title: &str| {
            it.max().unwrap_or(0).max(title.chars().count())
        };
        let nw = width(&mut named.iter().map(|(n, _)| n.chars().count()), "NAME");
        let tw = width(&mut rows.iter().map(|s| s.table.chars().count()), "TABLE");
        let cw = width(
            &mut named.iter().map(|(_, c)| c.chars().count()),
            "CREATED (UTC)",
        );
        outln!(
            "{:<nw$}  {:<tw$}  {:<cw$}  {:>7}  {:>12}",
            "NAME",
            "TABLE",
            "CREATED (UTC)",
            "HFILES",
            "BYTES"
        );
        for (s, (name, created)) in rows.iter().zip(&named) {
            outln!(
                "{:<nw$}  {:<tw$}  {:<cw$}  {:>7}  {:>12}{}",
                name,
                s.table,
                created,
                s.hfiles,
                s.bytes,
                if s.missing > 0 {
                    format!("  ({} HFiles missing at the source)", s.missing)
                } else {
                    String::new()
                }
            );
        }
        let total: u64 = rows.iter().map(|s| s.bytes).sum();
        let n = rows.len();
        outln!(
            "{}, {}",
            crate::report::count(n as u64, "snapshot"),
            bytes(total)
        );
    }
    Ok(if bad > 0 { Exit::Failed } else { Exit::Ok })
}
