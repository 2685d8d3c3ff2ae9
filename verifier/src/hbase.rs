//! The HBase checks of a verified target. They run only where the bytes were proven equal to
//! the source's, so what they find was already wrong at the source and was copied faithfully:
//! a *source finding*, kept apart from the copy faults ([`crate::Mismatch`]).
//!
//! - every HFile (under `data/`, `archive/`, `mobdir/`, or `<table>/<family>/` of a bulkload
//!   layout) gets its trailer parsed from one tail read of at most 4 KiB;
//! - `--verify deep` also walks every block and checks its CRC32C/CRC32 chunks, from reads of
//!   at most `chunk` bytes plus one block ([`hbcp_hbase::BlockWalk`]), never the whole file;
//! - an HFileLink must resolve at the source (data/, archive/, .tmp/, mobdir/, HBase's order)
//!   and a Reference must find its parent file.

use std::fmt;

use hbcp_hbase::{
    BlockWalk, HFileTrailer, MAX_TRAILER_SIZE, PathKind, classify, is_hfile_name,
    parse_hfile_link_name,
};
use hbcp_store::Store;
use serde::Serialize;

/// How the target's keys are laid out, when the source is an HBase root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaseLayout {
    /// The root's own relative paths (a whole root, a table, a snapshot export).
    Root,
    /// `<table>/<family>/<hfile>` for completebulkload: every file named like an HFile is one.
    Bulkload,
}

/// What kind of source finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A file named like an HFile whose trailer does not parse (empty, cut short, not an HFile,
    /// or a format HBase 2 cannot read).
    InvalidHfile,
    /// `--verify deep`: a block whose stored checksum does not match its bytes.
    CorruptHfileBlock,
    /// `--verify deep`: the blocks do not parse up to the trailer.
    InvalidHfileBlocks,
    /// An HFileLink whose file is in none of data/, archive/, .tmp/, mobdir/ at the source.
    DanglingHfileLink,
    /// A Reference whose parent file is not at the source.
    ReferenceWithoutParent,
    /// Met while resolving a table or snapshot selection (see the detail).
    Selection,
}

impl FindingKind {
    fn words(self) -> &'static str {
        match self {
            FindingKind::InvalidHfile => "not a valid HFile",
            FindingKind::CorruptHfileBlock => "corrupt HFile block",
            FindingKind::InvalidHfileBlocks => "HFile blocks do not parse",
            FindingKind::DanglingHfileLink => "dangling HFileLink",
            FindingKind::ReferenceWithoutParent => "Reference without its parent",
            FindingKind::Selection => "selection",
        }
    }
}

/// Something already wrong at the source, copied as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFinding {
    /// The key (at the target).
    pub key: String,
    /// What kind.
    pub kind: FindingKind,
    /// What exactly, with offsets where known.
    pub detail: String,
}

impl fmt::Display for SourceFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source finding: {}: {} ({})",
            self.key,
            self.kind.words(),
            self.detail
        )
    }
}

/// What a key is to the HBase checks.
enum Role {
    HFile,
    Link(Vec<String>, String),
    Reference(String),
    Other,
}

fn role(key: &str, layout: HbaseLayout) -> Role {
    if layout == HbaseLayout::Bulkload {
        let segs: Vec<&str> = key.split('/').collect();
        return match segs.as_slice() {
            [_, _, name] if is_hfile_name(name) => Role::HFile,
            _ => Role::Other,
        };
    }
    match classify(key) {
        PathKind::HFile { .. } | PathKind::MobFile { .. } => Role::HFile,
        PathKind::HFileLink { at, target, .. } => {
            Role::Link(target.candidate_keys(&at.family).to_vec(), target.hfile)
        }
        PathKind::Reference {
            parent_region,
            hfile,
            ..
        } => {
            // The parent sits beside the reference's region: same table dir, same family.
            let mut segs: Vec<&str> = key.split('/').collect();
            let n = segs.len();
            if n < 3 {
                return Role::Other;
            }
            segs[n - 3] = &parent_region;
            segs[n - 1] = &hfile;
            Role::Reference(segs.join("/"))
        }
        _ => Role::Other,
    }
}

/// A store error met while checking: the caller reports it as an unreadable key.
pub(crate) type CheckError = String;

/// The HBase checks of one target file whose bytes equal the source's. `src` (the source,
/// for links and references) may be absent, then only the file itself is checked.
pub(crate) fn check(
    dst: &dyn Store,
    src: Option<&dyn Store>,
    key: &str,
    size: u64,
    layout: HbaseLayout,
    deep: bool,
    chunk: u64,
    buf: &mut Vec<u8>,
) -> Result<Option<SourceFinding>, CheckError> {
    let found = |kind, detail: String| {
        Ok(Some(SourceFinding {
            key: key.to_string(),
            kind,
            detail,
        }))
    };
    match role(key, layout) {
        Role::Other => Ok(None),
        Role::HFile => match check_hfile(dst, key, size, deep, chunk, buf)? {
            Some((kind, detail)) => found(kind, detail),
            None => Ok(None),
        },
        Role::Link(candidates, hfile) => {
            let Some(src) = src else { return Ok(None) };
            if resolve(src, &candidates)?.is_some() {
                return Ok(None);
            }
            found(
                FindingKind::DanglingHfileLink,
                format!("{hfile} is in none of data/, archive/, .tmp/, mobdir/ at the source"),
            )
        }
        Role::Reference(parent) => {
            let Some(src) = src else { return Ok(None) };
            let at_source = src
                .head(&parent)
                .map_err(|e| format!("source: {e}"))?
                .is_some();
            if !at_source {
                return found(
                    FindingKind::ReferenceWithoutParent,
                    format!("its parent {parent} is not at the source"),
                );
            }
            // A reference to a link in the parent region: the link must resolve too.
            let name = parent.rsplit('/').next().unwrap_or("");
            if let (Ok(target), Some(family)) =
                (parse_hfile_link_name(name), parent.rsplit('/').nth(1))
            {
                if resolve(src, &target.candidate_keys(family))?.is_none() {
                    return found(
                        FindingKind::ReferenceWithoutParent,
                        format!(
                            "its parent {parent} is an HFileLink to {}, which is in none of data/, archive/, .tmp/, mobdir/ at the source",
                            target.hfile
                        ),
                    );
                }
            }
            Ok(None)
        }
    }
}

fn resolve(src: &dyn Store, candidates: &[String]) -> Result<Option<String>, CheckError> {
    for c in candidates {
        if src.head(c).map_err(|e| format!("source: {e}"))?.is_some() {
            return Ok(Some(c.clone()));
        }
    }
    Ok(None)
}

/// Trailer (and with `deep` every block) of the HFile `key` of `size` bytes at `dst`.
fn check_hfile(
    dst: &dyn Store,
    key: &str,
    size: u64,
    deep: bool,
    chunk: u64,
    buf: &mut Vec<u8>,
) -> Result<Option<(FindingKind, String)>, CheckError> {
    if size == 0 {
        return Ok(Some((
            FindingKind::InvalidHfile,
            "empty (0 bytes); HBase skips it".into(),
        )));
    }
    let tail = HFileTrailer::tail_range(size);
    debug_assert!(tail.end - tail.start <= MAX_TRAILER_SIZE);
    dst.read_range(key, tail.clone(), None, buf)
        .map_err(|e| e.to_string())?;
    let trailer = match HFileTrailer::parse(buf, size) {
        Ok(t) => t,
        Err(e) => return Ok(Some((FindingKind::InvalidHfile, e.to_string()))),
    };
    if !deep {
        return Ok(None);
    }
    let mut walk = BlockWalk::new(trailer, size);
    let end = walk.end();
    let chunk = chunk.max(64 << 10);
    let mut held: Vec<u8> = Vec::new();
    let mut next = 0u64;
    let problem = loop {
        if walk.offset() >= end {
            break walk.finish().err();
        }
        // What is held, plus at least the rest of the next block (or one more chunk).
        let want = walk.need().unwrap_or(0).max(held.len() as u64 + 1);
        while (held.len() as u64) < want && next < end {
            let n = (want - held.len() as u64).max(chunk).min(end - next);
            dst.read_range(key, next..next + n, None, buf)
                .map_err(|e| e.to_string())?;
            held.extend_from_slice(buf);
            next += n;
        }
        match walk.feed(&held) {
            Ok(0) if next >= end => break walk.finish().err(),
            Ok(used) => {
                held.drain(..used as usize);
            }
            Err(e) => break Some(e),
        }
    };
    Ok(problem.map(|e| {
        let kind = if e.is_checksum_mismatch() {
            FindingKind::CorruptHfileBlock
        } else {
            FindingKind::InvalidHfileBlocks
        };
        (kind, e.to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hbcp_store::local::LocalStore;
    use std::fs;
    use std::io::Read;
    use std::path::Path;

    fn fixture(rel: &str) -> Vec<u8> {
        let p = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/hbase-real/"
        ))
        .join(rel);
        let raw = fs::read(&p).unwrap();
        if rel.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            raw
        }
    }

    const FAM: &str = "data/default/t/0123456789abcdef0123456789abcdef/cf";

    fn put(root: &Path, key: &str, bytes: &[u8]) {
        let p = root.join(key);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    fn run(store: &LocalStore, key: &str, deep: bool, chunk: u64) -> Option<SourceFinding> {
        let size = fs::metadata(Path::new(&store.describe()).join(key))
            .unwrap()
            .len();
        let mut buf = Vec::new();
        check(
            store,
            Some(store),
            key,
            size,
            HbaseLayout::Root,
            deep,
            chunk,
            &mut buf,
        )
        .unwrap()
    }

    #[test]
    fn a_real_hfile_passes_the_trailer_and_the_deep_walk_in_any_chunk_size() {
        let d = tempfile::tempdir().unwrap();
        let key = format!("{FAM}/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        put(
            d.path(),
            &key,
            &fixture("hfiles-hbase-2.4-via-hudi-rs/hudi_1_0_hbase_2_4_9_16KB_NONE_5000.hfile"),
        );
        let s = LocalStore::new(d.path().into());
        assert_eq!(run(&s, &key, false, 4 << 20), None);
        for chunk in [1, 70_000, 4 << 20] {
            assert_eq!(run(&s, &key, true, chunk), None, "chunk {chunk}");
        }
    }

    #[test]
    fn the_corrupt_block_fixture_passes_the_trailer_check_and_fails_the_deep_walk() {
        let d = tempfile::tempdir().unwrap();
        let key = format!("{FAM}/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
        put(
            d.path(),
            &key,
            &fixture("apache-hbase/TestCompaction_HFileWithCorruptBlock.branch-2.5.gz"),
        );
        let s = LocalStore::new(d.path().into());
        assert_eq!(run(&s, &key, false, 4 << 20), None);
        for chunk in [1000, 4 << 20] {
            let f = run(&s, &key, true, chunk).expect("a finding");
            assert_eq!(f.kind, FindingKind::CorruptHfileBlock, "{f}");
            assert!(f.detail.contains("checksum"), "{f}");
            assert!(f.to_string().contains(&key), "{f}");
        }
    }

    #[test]
    fn truncated_empty_and_foreign_files_named_like_hfiles_are_invalid() {
        let d = tempfile::tempdir().unwrap();
        let real = fixture(
            "hfiles-hbase-2.4-via-hudi-rs/hudi_1_0_hbase_2_4_9_16KB_GZ_200_20_non_unique.hfile",
        );
        let cut = format!("{FAM}/cccccccccccccccccccccccccccccccc");
        let empty = format!("{FAM}/dddddddddddddddddddddddddddddddd");
        let v1 = format!("{FAM}/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
        put(d.path(), &cut, &real[..real.len() / 2]);
        put(d.path(), &empty, b"");
        put(
            d.path(),
            &v1,
            &fixture("apache-hbase/hfile-v1/8e8ab58dcf39412da19833fcd8f687ac"),
        );
        let s = LocalStore::new(d.path().into());
        for (k, needle) in [(&cut, "trailer"), (&empty, "empty"), (&v1, "version 1")] {
            let f = run(&s, k, false, 4 << 20).expect("a finding");
            assert_eq!(f.kind, FindingKind::InvalidHfile, "{f}");
            assert!(f.detail.contains(needle), "{k}: {f}");
        }
        // Not HFiles by name: no check.
        put(d.path(), &format!("{FAM}/notes.txt"), b"x");
        assert_eq!(run(&s, &format!("{FAM}/notes.txt"), true, 4096), None);
    }

    #[test]
    fn dangling_links_and_references_without_parent_are_found_at_the_source() {
        let d = tempfile::tempdir().unwrap();
        let hf = "0123456789abcdef0123456789abcdef";
        let parent = "ffffffffffffffffffffffffffffffff";
        let region = "data/default/t2/11111111111111111111111111111111/cf";
        let good_link = format!("{region}/t=abcd-{hf}");
        let bad_link = format!("{region}/t=abcd-{}", "9".repeat(32));
        let good_ref = format!("{region}/{hf}.{parent}");
        let bad_ref = format!("{region}/{}.{parent}", "8".repeat(32));
        put(
            d.path(),
            &format!("archive/data/default/t/abcd/cf/{hf}"),
            b"h",
        );
        put(d.path(), &format!("data/default/t2/{parent}/cf/{hf}"), b"p");
        for k in [&good_link, &bad_link, &good_ref, &bad_ref] {
            put(d.path(), k, b"");
        }
        let s = LocalStore::new(d.path().into());
        assert_eq!(run(&s, &good_link, false, 4096), None);
        assert_eq!(run(&s, &good_ref, false, 4096), None);
        let f = run(&s, &bad_link, false, 4096).unwrap();
        assert_eq!(f.kind, FindingKind::DanglingHfileLink);
        let f = run(&s, &bad_ref, false, 4096).unwrap();
        assert_eq!(f.kind, FindingKind::ReferenceWithoutParent);
        assert!(f.detail.contains(parent), "{f}");
        // Without the source, links are not judged.
        let mut buf = Vec::new();
        let r = check(
            &s,
            None,
            &bad_link,
            0,
            HbaseLayout::Root,
            false,
            4096,
            &mut buf,
        );
        assert_eq!(r.unwrap(), None);
    }

    #[test]
    fn bulkload_keys_named_like_hfiles_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let key = "default_t/cf/cccccccccccccccccccccccccccccccc";
        put(d.path(), key, b"not an hfile at all");
        let s = LocalStore::new(d.path().into());
        let mut buf = Vec::new();
        let f = check(
            &s,
            Some(&s),
            key,
            19,
            HbaseLayout::Bulkload,
            false,
            4096,
            &mut buf,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.kind, FindingKind::InvalidHfile);
        // The same key in a root layout is no HBase path.
        let r = check(
            &s,
            Some(&s),
            key,
            19,
            HbaseLayout::Root,
            false,
            4096,
            &mut buf,
        );
        assert_eq!(r.unwrap(), None);
    }
}
