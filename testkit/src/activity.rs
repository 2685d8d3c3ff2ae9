//! HBase activity on a root made by [`crate::generate`], for the incremental tests (sync,
//! backup): what a running cluster does to `/hbase` between two copies. Flushes add HFiles,
//! a compaction moves a family's HFiles to `archive/` and writes one compacted HFile, a schema
//! change writes the next `.tableinfo` and removes the old one, the procedure WAL grows in
//! place, an operator's file is rewritten in place with the same size, and a table drop moves
//! the table's HFiles to `archive/` and removes its folder — as HBase does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::hbase_tree::{Rng, hfile_trailer};

/// What [`activity`] did.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Files written with new content (key, final size): new HFiles and rewritten files.
    pub written: Vec<(String, u64)>,
    /// HFiles moved into `archive/` (from, to).
    pub archived: Vec<(String, String)>,
    /// Files removed without a trace in `archive/` (old `.tableinfo`, dropped metadata).
    pub removed: Vec<String>,
    /// The table dropped, as `ns:name`.
    pub dropped: Option<String>,
}

impl Activity {
    /// Bytes of new content (what an incremental copy must send, and all it must send).
    pub fn new_bytes(&self) -> u64 {
        self.written.iter().map(|w| w.1).sum()
    }
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .expect("under root")
        .to_string_lossy()
        .into_owned()
}

fn sorted_dirs(p: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(p)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn sorted_files(p: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(p)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// User tables (`data/<ns>/<table>`, namespace `hbase` left out), sorted.
fn user_tables(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for ns in sorted_dirs(&root.join("data"))? {
        if ns.file_name().is_some_and(|n| n == "hbase") {
            continue;
        }
        out.extend(sorted_dirs(&ns)?);
    }
    Ok(out)
}

/// Family folders of a table's regions that hold real HFiles (32 hex digits), sorted.
fn families(table: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for region in sorted_dirs(table)? {
        if region.file_name().is_some_and(|n| n == ".tabledesc") {
            continue;
        }
        for fam in sorted_dirs(&region)? {
            if !hfiles(&fam)?.is_empty() {
                out.push(fam);
            }
        }
    }
    Ok(out)
}

fn is_hfile(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn hfiles(fam: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(sorted_files(fam)?
        .into_iter()
        .filter(|p| is_hfile(p))
        .collect())
}

fn write_hfile(p: &Path, size: u64, rng: &mut Rng) -> io::Result<()> {
    let mut b = vec![0u8; size as usize];
    rng.fill(&mut b);
    if size > 4096 {
        b[..8].copy_from_slice(b"DATABLK*");
        let t = hfile_trailer(size, size / 100);
        let at = b.len() - t.len();
        b[at..].copy_from_slice(&t);
    }
    fs::write(p, b)
}

fn archive(root: &Path, p: &Path, a: &mut Activity) -> io::Result<()> {
    let r = rel(root, p);
    let to = root.join("archive").join(&r);
    fs::create_dir_all(to.parent().expect("parent"))?;
    fs::rename(p, &to)?;
    a.archived.push((r, rel(root, &to)));
    Ok(())
}

/// One round of activity (deterministic for a `seed`): a flush in every user table's first
/// family; a compaction of the second family found; the next `.tableinfo` of the first table;
/// the procedure WAL grown; the operator's note rewritten in place; and with `drop_table` the
/// last user table dropped.
pub fn activity(root: &Path, seed: u64, drop_table: bool) -> io::Result<Activity> {
    let mut rng = Rng::new(seed);
    let mut a = Activity::default();
    let tables = user_tables(root)?;
    // Flushes.
    for t in &tables {
        if let Some(fam) = families(t)?.first() {
            let p = fam.join(rng.hex32());
            let size = rng.range(5_000, 90_000);
            write_hfile(&p, size, &mut rng)?;
            a.written.push((rel(root, &p), size));
        }
    }
    // A compaction: the family's HFiles go to archive/, one compacted HFile replaces them.
    let all: Vec<PathBuf> = tables
        .iter()
        .map(|t| families(t))
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    if let Some(fam) = all.get(1).or(all.first()) {
        let olds = hfiles(fam)?;
        let mut total = 0;
        for p in &olds {
            total += fs::metadata(p)?.len();
            archive(root, p, &mut a)?;
        }
        let p = fam.join(rng.hex32());
        let size = (total * 9 / 10).max(5_000);
        write_hfile(&p, size, &mut rng)?;
        a.written.push((rel(root, &p), size));
    }
    // A schema change: the next .tableinfo, the old one removed.
    if let Some(t) = tables.first() {
        let desc = t.join(".tabledesc");
        if let Some(old) = sorted_files(&desc)?.last().cloned() {
            let name = old.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix(".tableinfo.")
                .and_then(|n| n.parse::<u64>().ok())
            {
                let mut data = fs::read(&old)?;
                data.extend_from_slice(b"\x00");
                let new = desc.join(format!(".tableinfo.{:010}", n + 1));
                fs::write(&new, &data)?;
                fs::remove_file(&old)?;
                a.written.push((rel(root, &new), data.len() as u64));
                a.removed.push(rel(root, &old));
            }
        }
    }
    // The procedure WAL grows in place.
    let pv2 = root.join("MasterProcWALs/pv2-00000000000000000001.log");
    if pv2.is_file() {
        let mut data = fs::read(&pv2)?;
        let mut more = vec![0u8; rng.range(100, 2_000) as usize];
        rng.fill(&mut more);
        data.extend_from_slice(&more);
        fs::write(&pv2, &data)?;
        a.written.push((rel(root, &pv2), data.len() as u64));
    }
    // An operator's file rewritten in place with the same size.
    let notes = root.join("notes");
    if notes.is_dir() {
        if let Some(p) = sorted_files(&notes)?.first() {
            let mut data = fs::read(p)?;
            for b in data.iter_mut() {
                *b = b.wrapping_add(1 + (seed % 7) as u8);
            }
            fs::write(p, &data)?;
            a.written.push((rel(root, p), data.len() as u64));
        }
    }
    // A table dropped: its HFiles archived, its folder removed.
    if drop_table && tables.len() > 1 {
        let t = tables.last().expect("a table");
        for fam in families(t)? {
            for p in hfiles(&fam)? {
                archive(root, &p, &mut a)?;
            }
        }
        fn walk(root: &Path, d: &Path, a: &mut Activity) -> io::Result<()> {
            for e in fs::read_dir(d)? {
                let p = e?.path();
                if p.is_dir() {
                    walk(root, &p, a)?;
                } else {
                    a.removed.push(rel(root, &p));
                }
            }
            Ok(())
        }
        walk(root, t, &mut a)?;
        fs::remove_dir_all(t)?;
        let ns = t.parent().unwrap().file_name().unwrap().to_string_lossy();
        let name = t.file_name().unwrap().to_string_lossy();
        a.dropped = Some(format!("{ns}:{name}"));
    }
    Ok(a)
}
