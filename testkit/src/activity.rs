//! HBase activity on a root made by [`crate::generate`], for the incremental tests (sync,
//! backup): what a running cluster does to `/hbase` between two copies. Flushes add HFiles,
//! a compaction moves a family's HFiles to `archive/` and writes one compacted HFile, a schema
//! change writes the next `.tableinfo` and removes the old one, a region split leaves the
//! parent's HFiles in place and gives two daughters Reference files `<hfile>.<parent>`, the
//! procedure WAL grows in place, an operator's file is rewritten in place with the same size, a
//! table drop moves the table's HFiles to `archive/` and removes its folder, and a new table
//! is created with its first HFiles — as HBase does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::hbase_tree::{Rng, add_table, hfile_trailer, split_region, table};

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
    /// The region split (its folder), and the two daughters' folders.
    pub split: Option<(String, Vec<String>)>,
    /// The table created, as `ns:name`.
    pub created: Option<String>,
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

/// Every file under `d`, sorted.
fn files_under(d: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = sorted_files(d)?;
    for sub in sorted_dirs(d)? {
        out.extend(files_under(&sub)?);
    }
    Ok(out)
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
/// a split of the first table's last region that holds HFiles; the procedure WAL grown; the
/// operator's note rewritten in place; with `drop_table` the last user table dropped; and a
/// new table `default:created_<seed>` with two regions of HFiles.
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
        // A bare layout (bench-scale's `--preset scale`) has no table descriptor: no change.
        let descs = if desc.is_dir() {
            sorted_files(&desc)?
        } else {
            Vec::new()
        };
        if let Some(old) = descs.last().cloned() {
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
    // A region split: the parent keeps its HFiles, the daughters reference them.
    if let Some(t) = tables.first() {
        // The last region with HFiles that is not a split parent already.
        let mut candidate = None;
        for fam in families(t)?.iter().rev() {
            let region = fam.parent().expect("a family is in a region");
            if !region.join(".regioninfo").is_file() {
                // A bare layout (`--preset scale`) has no region descriptors: no split.
                continue;
            }
            let info = hbcp_hbase::parse_region_info(&fs::read(region.join(".regioninfo"))?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if !info.split {
                candidate = Some((region.to_path_buf(), info));
                break;
            }
        }
        if let Some((region, info)) = candidate {
            let dir = rel(root, &region);
            if let Some(key) = split_key(&info.start_key, &info.end_key) {
                let w = split_region(root, &dir, &key, 1_800_000_000_000 + seed)?;
                let mut daughters: Vec<String> = w
                    .iter()
                    .filter(|(k, _)| k.ends_with("/.regioninfo") && !k.starts_with(&dir))
                    .map(|(k, _)| k.trim_end_matches("/.regioninfo").to_string())
                    .collect();
                daughters.sort();
                a.written.extend(w);
                a.split = Some((dir, daughters));
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
        for p in files_under(t)? {
            a.removed.push(rel(root, &p));
        }
        fs::remove_dir_all(t)?;
        let ns = t.parent().unwrap().file_name().unwrap().to_string_lossy();
        let name = t.file_name().unwrap().to_string_lossy();
        a.dropped = Some(format!("{ns}:{name}"));
    }
    // A new table with its first flushes.
    let name = format!("created_{seed}");
    let t = root.join("data/default").join(&name);
    if !t.exists() {
        add_table(
            root,
            &table("default", &name, 2, &["cf"], 2),
            &[6_000, 40_000],
            seed,
        )?;
        for p in files_under(&t)? {
            let size = fs::metadata(&p)?.len();
            a.written.push((rel(root, &p), size));
        }
        a.created = Some(format!("default:{name}"));
    }
    Ok(a)
}

/// A row strictly inside `[start, end)` (empty = the table's edge), or `None` when the region
/// is too narrow to split.
fn split_key(start: &[u8], end: &[u8]) -> Option<Vec<u8>> {
    let key = if !start.is_empty() {
        let mut k = start.to_vec();
        k.push(b'8');
        k
    } else if end.is_empty() {
        b"8000".to_vec()
    } else if end[0] > 1 {
        vec![end[0] / 2]
    } else {
        return None;
    };
    (key.as_slice() > start && (end.is_empty() || key.as_slice() < end)).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hbase_tree::{Spec, generate};
    use hbcp_hbase::{RefHalf, parse_reference, parse_region_info};

    #[test]
    fn a_split_leaves_the_parent_hfiles_and_daughters_hbase_can_read() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        generate(root, &Spec::sample(), 3).unwrap();
        let a = activity(root, 4, true).unwrap();
        let (parent, daughters) = a.split.clone().expect("a region was split");
        assert_eq!(daughters.len(), 2, "{a:?}");
        let info = |dir: &str| {
            parse_region_info(&fs::read(root.join(dir).join(".regioninfo")).unwrap()).unwrap()
        };
        let p = info(&parent);
        assert!(p.split && p.offline, "{p:?}");
        let penc = parent.rsplit('/').next().unwrap();
        let mut parent_hfiles = Vec::new();
        for fam in sorted_dirs(&root.join(&parent)).unwrap() {
            for h in hfiles(&fam).unwrap() {
                parent_hfiles.push(h.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        assert!(!parent_hfiles.is_empty(), "the parent keeps its HFiles");
        let mut halves = Vec::new();
        for dd in &daughters {
            let di = info(dd);
            assert_eq!(
                di.encoded_name(),
                dd.rsplit('/').next().unwrap(),
                "named as HBase names it"
            );
            let refs: Vec<PathBuf> = files_under(&root.join(dd))
                .unwrap()
                .into_iter()
                .filter(|p| !p.ends_with(".regioninfo"))
                .collect();
            assert_eq!(
                refs.len(),
                parent_hfiles.len(),
                "one Reference per parent HFile"
            );
            for r in &refs {
                let name = r.file_name().unwrap().to_string_lossy().into_owned();
                let (h, of) = name.split_once('.').unwrap();
                assert_eq!(of, penc);
                assert!(parent_hfiles.iter().any(|x| x == h), "{name}");
                let reference = parse_reference(&fs::read(r).unwrap()).unwrap();
                assert_eq!(
                    reference.half,
                    if di.start_key == p.start_key {
                        RefHalf::Bottom
                    } else {
                        RefHalf::Top
                    }
                );
                assert_eq!(
                    reference.split_key,
                    if di.start_key == p.start_key {
                        di.end_key.clone()
                    } else {
                        di.start_key.clone()
                    }
                );
            }
            halves.push((di.start_key, di.end_key));
        }
        // The daughters cover the parent's rows, split at one key.
        halves.sort();
        assert_eq!(halves[0].0, p.start_key);
        assert_eq!(halves[0].1, halves[1].0);
        assert_eq!(halves[1].1, p.end_key);
        assert_eq!(a.created.as_deref(), Some("default:created_4"));
        // Every written file is there with its size.
        for (k, size) in &a.written {
            assert_eq!(fs::metadata(root.join(k)).unwrap().len(), *size, "{k}");
        }
        assert!(
            a.written
                .iter()
                .any(|w| w.0.starts_with("data/default/created_4/"))
        );
    }
}
