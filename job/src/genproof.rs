//! Which files of a new generation need a check at the backup target, and which are proven
//! already by the generations before it — so that an incremental backup verifies what it wrote,
//! not the whole root again.
//!
//! A generation shares most of its files with the one before (HFiles are written once; metadata
//! rarely changes). Every visible generation was verified when it was written, so a shared file
//! whose record in the previous generation names the same stored bytes (same key, size,
//! checksum and stored key) is proven by that record: the two manifests, both sorted by key, are
//! merged as streams, with no request per file. An HFile that moved (a compaction puts it under
//! `archive/`) is proven by the pool's record of its name (same checksum and size, from a
//! visible generation). Anything else — a file this run stored, a shared file whose earlier
//! record is missing or differs — is checked at the target as before: fail closed.

use std::path::{Path, PathBuf};

use anyhow::Result;
use hbcp_store::Store;
use hbcp_verifier::generation::{self as g, GenerationEntry, GenerationHeader};

use crate::genstore::{GenStore, check_read, each_entry};

/// The split of a generation's files for its verification.
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// Local manifest of the files whose bytes this generation stored (verified against the
    /// source).
    pub(crate) fresh: PathBuf,
    /// Local manifest of the shared files no earlier record proves (checked at the target).
    pub(crate) unproven: PathBuf,
    /// Shared files proven by the previous generation's record of the same key.
    pub(crate) by_previous: u64,
    /// Shared HFiles proven by the pool's record of their name (moved since).
    pub(crate) by_pool: u64,
    /// Bytes of the proven files.
    pub(crate) proven_bytes: u64,
}

impl Split {
    /// Files proven without a request.
    pub(crate) fn proven(&self) -> u64 {
        self.by_previous + self.by_pool
    }
}

/// Where a file of the new generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Fresh,
    Proven { by_pool: bool },
    Unproven,
}

/// Judge `cur` (a file of the new generation) given `prev`, the previous generation's record
/// of the same key if it has one. `is_new` says whether a stored key holds bytes this
/// generation stored; `pooled` gives the pool's record (checksum, size) of an HFile name.
fn classify(
    cur: &GenerationEntry,
    prev: Option<&GenerationEntry>,
    is_new: impl Fn(&str) -> bool,
    pooled: impl Fn(&str) -> Option<(String, u64)>,
) -> Class {
    let Some(at) = cur.at.as_deref() else {
        return Class::Unproven;
    };
    // The previous generation names these very bytes: not new, and proven (checked first: it
    // needs no lookup).
    if let Some(p) = prev {
        if cur.h.is_some() && !p.d && p.at.as_deref() == Some(at) && p.s == cur.s && p.h == cur.h {
            return Class::Proven { by_pool: false };
        }
    }
    if is_new(at) {
        return Class::Fresh;
    }
    if cur.h.is_none() {
        return Class::Unproven;
    }
    if let Some(name) = at.strip_prefix(g::POOL_PREFIX) {
        if pooled(name).is_some_and(|(h, s)| s == cur.s && Some(h) == cur.h) {
            return Class::Proven { by_pool: true };
        }
    }
    Class::Unproven
}

/// Merge the sorted entries of `cur` with the previous generation's `prev` (a stream fed by
/// the caller), calling `f` with each entry of `cur` and the record of the same key in `prev`.
/// An unsorted side only costs matches (an entry without its record), never a wrong match.
struct Merge<I: Iterator<Item = GenerationEntry>> {
    cur: std::iter::Peekable<I>,
}

impl<I: Iterator<Item = GenerationEntry>> Merge<I> {
    /// Feed one record of the previous generation.
    fn feed(
        &mut self,
        p: &GenerationEntry,
        f: &mut impl FnMut(GenerationEntry, Option<&GenerationEntry>) -> Result<()>,
    ) -> Result<()> {
        while let Some(c) = self.cur.next_if(|c| c.k < p.k) {
            f(c, None)?;
        }
        if let Some(c) = self.cur.next_if(|c| c.k == p.k) {
            f(c, Some(p))?;
        }
        Ok(())
    }

    /// The entries of `cur` after the last record of the previous generation.
    fn rest(
        self,
        f: &mut impl FnMut(GenerationEntry, Option<&GenerationEntry>) -> Result<()>,
    ) -> Result<()> {
        for c in self.cur {
            f(c, None)?;
        }
        Ok(())
    }
}

/// Split the local generation manifest `local` (sorted by key) for its verification: the
/// previous generation `prev_id` of `store` is streamed beside it. The two manifests written
/// go next to `local`.
pub(crate) fn split(
    store: &dyn Store,
    gs: &GenStore,
    local: &Path,
    prev_id: Option<u64>,
) -> Result<Split> {
    let (_, entries) = g::FileEntries::open(local)?;
    let read_err = entries.error();
    let blank = GenerationHeader {
        format: g::GENERATION_FORMAT.into(),
        version: g::GENERATION_VERSION,
        ..Default::default()
    };
    let mut out = Split {
        fresh: local.with_extension("fresh.zst"),
        unproven: local.with_extension("unproven.zst"),
        ..Default::default()
    };
    let mut fresh = g::create(&out.fresh, &blank)?;
    let mut unproven = g::create(&out.unproven, &blank)?;
    let (mut by_previous, mut by_pool, mut proven_bytes) = (0, 0, 0);
    let mut judge = |c: GenerationEntry, p: Option<&GenerationEntry>| -> Result<()> {
        if c.d {
            return Ok(()); // an empty directory lives in the manifest only
        }
        let class = classify(
            &c,
            p,
            // A lookup that fails counts as new: verified against the source.
            |at| gs.is_new(at).unwrap_or(true),
            |name| gs.pooled.get(name).ok().flatten(),
        );
        match class {
            Class::Fresh => fresh.write(&c)?,
            Class::Unproven => unproven.write(&c)?,
            Class::Proven { by_pool: pool } => {
                if pool {
                    by_pool += 1;
                } else {
                    by_previous += 1;
                }
                proven_bytes += c.s;
            }
        }
        Ok(())
    };
    let mut merge = Merge {
        cur: entries.peekable(),
    };
    if let Some(id) = prev_id {
        each_entry(store, id, |p| merge.feed(&p, &mut judge))?;
    }
    merge.rest(&mut judge)?;
    check_read(&read_err)?;
    fresh.finish()?;
    unproven.finish()?;
    out.by_previous = by_previous;
    out.by_pool = by_pool;
    out.proven_bytes = proven_bytes;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(k: &str, s: u64, h: &str, at: &str) -> GenerationEntry {
        GenerationEntry {
            k: k.into(),
            s,
            h: Some(h.into()),
            d: false,
            at: Some(at.into()),
        }
    }

    const POOLED: &str = "pool/aaaa";

    fn judge(c: &GenerationEntry, p: Option<&GenerationEntry>) -> Class {
        classify(
            c,
            p,
            |at| at.starts_with("files/2/") || at == "pool/new",
            |name| (name == "aaaa").then(|| ("00000000000000aa".to_string(), 7)),
        )
    }

    #[test]
    fn a_file_this_generation_stored_is_fresh() {
        let c = e("data/x", 3, "0000000000000001", "files/2/data/x");
        assert_eq!(judge(&c, None), Class::Fresh);
        let mut p = c.clone();
        p.h = Some("0000000000000002".into());
        assert_eq!(judge(&c, Some(&p)), Class::Fresh);
        let c = e("data/t/r/f/new", 3, "0000000000000001", "pool/new");
        assert_eq!(judge(&c, None), Class::Fresh);
    }

    #[test]
    fn a_shared_file_is_proven_only_by_an_identical_previous_record() {
        let c = e(
            "data/t/.tabledesc/x",
            3,
            "0000000000000001",
            "files/1/data/t/x",
        );
        assert_eq!(
            judge(&c, Some(&c.clone())),
            Class::Proven { by_pool: false }
        );
        // Missing, or differing in size, checksum, stored key, or a directory: checked.
        assert_eq!(judge(&c, None), Class::Unproven);
        let mut p = c.clone();
        p.s = 4;
        assert_eq!(judge(&c, Some(&p)), Class::Unproven);
        let mut p = c.clone();
        p.h = Some("0000000000000002".into());
        assert_eq!(judge(&c, Some(&p)), Class::Unproven);
        let mut p = c.clone();
        p.at = Some("files/0/data/t/x".into());
        assert_eq!(judge(&c, Some(&p)), Class::Unproven);
        let mut p = c.clone();
        p.d = true;
        assert_eq!(judge(&c, Some(&p)), Class::Unproven);
        let mut no_sum = c.clone();
        no_sum.h = None;
        assert_eq!(judge(&no_sum, Some(&no_sum.clone())), Class::Unproven);
        let mut nowhere = c.clone();
        nowhere.at = None;
        assert_eq!(judge(&nowhere, Some(&c)), Class::Unproven);
    }

    #[test]
    fn a_moved_hfile_is_proven_by_the_pool_record_of_its_name() {
        let c = e("archive/data/t/r/f/aaaa", 7, "00000000000000aa", POOLED);
        assert_eq!(judge(&c, None), Class::Proven { by_pool: true });
        let mut other = c.clone();
        other.h = Some("00000000000000ab".into());
        assert_eq!(judge(&other, None), Class::Unproven);
        let mut other = c.clone();
        other.s = 8;
        assert_eq!(judge(&other, None), Class::Unproven);
        let mut other = c.clone();
        other.at = Some("pool/bbbb".into());
        assert_eq!(judge(&other, None), Class::Unproven);
    }

    #[test]
    fn the_merge_pairs_equal_keys_and_never_a_wrong_one() {
        let run = |cur: &[&str], prev: &[&str]| {
            let cur: Vec<_> = cur.iter().map(|k| e(k, 1, "01", "x")).collect();
            let mut m = Merge {
                cur: cur.into_iter().peekable(),
            };
            let mut got = Vec::new();
            let mut f = |c: GenerationEntry, p: Option<&GenerationEntry>| {
                got.push((c.k, p.map(|p| p.k.clone())));
                Ok(())
            };
            for k in prev {
                m.feed(&e(k, 1, "01", "x"), &mut f).unwrap();
            }
            m.rest(&mut f).unwrap();
            got
        };
        let some = |k: &str| (k.to_string(), Some(k.to_string()));
        let none = |k: &str| (k.to_string(), None);
        assert_eq!(
            run(&["a", "b", "d", "e"], &["b", "c", "d", "f"]),
            vec![none("a"), some("b"), some("d"), none("e")]
        );
        assert_eq!(run(&["a"], &[]), vec![none("a")]);
        assert_eq!(run(&[], &["a"]), vec![]);
        // An unsorted previous manifest loses matches, and pairs nothing wrongly.
        let got = run(&["a", "b", "c"], &["c", "a", "b"]);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|(k, p)| p.as_ref().is_none_or(|p| p == k)));
    }
}
