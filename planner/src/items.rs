//! The files of an HBase selection, in target-key order, with memory that does not grow with
//! their number.
//!
//! A `--table` or `--snapshot` selection of a big table has millions of files. They are pushed
//! while the selection is resolved and sorted on disk past one batch ([`ExternalSort`]);
//! [`Items::seal`] then merges them once into a file of one record per target key, checking
//! HBase's rule that two ways to the same key lead to the same file, and every later pass (the
//! plan, the copy's feed, the verifier's listing) streams that file. The files live in a
//! folder of their own under the system's temporary folder, removed when the items are dropped.

use std::path::PathBuf;

use hbcp_store::Entry;
use serde::{Deserialize, Serialize};

use crate::plan::PlanEntry;
use crate::{Error, Result};
use hbcp_state::extsort::{DEFAULT_BATCH, ExternalSort};
use hbcp_state::records::{RecordReader, RecordWriter};

/// Format name of a sealed items file.
const FORMAT: &str = "hbcp-view-items";
/// Version of a sealed items file.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// One file of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The entry, under its target key; size and version are the source's.
    pub entry: Entry,
    /// Source keys to read it from, in order (a snapshot's HFile may move from `data/` to
    /// `archive/` while it is copied). Empty: the same key as the target.
    pub sources: Vec<String>,
}

/// Two different files would be written to one target key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("two different files would be written to {key}: {first} and {second}")]
pub struct Conflict {
    /// The target key.
    pub key: String,
    /// Where the first came from.
    pub first: String,
    /// Where the second came from.
    pub second: String,
}

/// Why items could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Two different files for one key (bad input: exit 2).
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The spill files could not be written or read.
    #[error(transparent)]
    Spill(#[from] Error),
}

impl From<hbcp_state::Error> for SealError {
    fn from(e: hbcp_state::Error) -> Self {
        SealError::Spill(e.into())
    }
}

/// The files of a view: pushed in any order, then sealed, then read in key order any number
/// of times.
pub struct Items {
    dir: tempfile::TempDir,
    batch: usize,
    sort: Option<ExternalSort<PlanEntry>>,
    sealed: Option<PathBuf>,
    len: u64,
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items")
            .field("dir", &self.dir.path())
            .field("sealed", &self.sealed.is_some())
            .field("len", &self.len)
            .finish()
    }
}

fn io_err(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn by_key(a: &PlanEntry, b: &PlanEntry) -> std::cmp::Ordering {
    a.k.cmp(&b.k)
}

impl Items {
    /// Empty items, holding at most the default batch in memory.
    pub fn new() -> Result<Self> {
        Self::with_batch(DEFAULT_BATCH)
    }

    /// Empty items holding at most `batch` records in memory before a sorted run is written.
    pub fn with_batch(batch: usize) -> Result<Self> {
        let parent = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("hbcp-view-")
            .tempdir_in(&parent)
            .map_err(|e| io_err(&parent, e))?;
        Ok(Items {
            dir,
            batch,
            sort: None,
            sealed: None,
            len: 0,
        })
    }

    /// Add the file `e` under the target key `key`, read from `sources` (empty: `key`).
    /// A key pushed twice keeps its first push.
    pub fn push(&mut self, key: String, e: &Entry, sources: Vec<String>) -> Result<()> {
        if self.sealed.is_some() {
            return Err(Error::BadFile {
                path: self.dir.path().display().to_string(),
                why: "items pushed after they were sealed".into(),
            });
        }
        let (dir, batch) = (self.dir.path().to_path_buf(), self.batch);
        let sort = self
            .sort
            .get_or_insert_with(|| ExternalSort::new(&dir, batch, by_key));
        let mut p = PlanEntry::from(e);
        p.k = key;
        p.o = sources;
        Ok(sort.push(p)?)
    }

    /// Merge what was pushed into one record per key. Fails on two different files (sizes
    /// differ) for one key; the same write-once HFile reached two ways is kept once.
    pub fn seal(&mut self) -> Result<(), SealError> {
        if self.sealed.is_some() {
            return Ok(());
        }
        let path = self.dir.path().join("items.zst");
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
        };
        let mut w = RecordWriter::create_fast(&path, &header)?;
        let mut n = 0u64;
        if let Some(sort) = self.sort.take() {
            let mut last: Option<PlanEntry> = None;
            for p in sort.finish()? {
                let p = p?;
                if let Some(l) = &last {
                    if l.k == p.k {
                        if l.s != p.s {
                            let from = |x: &PlanEntry| x.o.first().unwrap_or(&x.k).clone();
                            return Err(Conflict {
                                key: p.k.clone(),
                                first: from(l),
                                second: from(&p),
                            }
                            .into());
                        }
                        continue;
                    }
                }
                if let Some(l) = last.replace(p) {
                    w.write(&l)?;
                    n += 1;
                }
            }
            if let Some(l) = last {
                w.write(&l)?;
                n += 1;
            }
        }
        w.finish()?;
        self.sealed = Some(path);
        self.len = n;
        Ok(())
    }

    /// Distinct keys (after [`Items::seal`]).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when there is no item (after [`Items::seal`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The items in key order (after [`Items::seal`]).
    pub fn iter(&self) -> Result<ItemIter> {
        let Some(path) = &self.sealed else {
            return Err(Error::BadFile {
                path: self.dir.path().display().to_string(),
                why: "items read before they were sealed".into(),
            });
        };
        let (_, rd): (Header, _) = RecordReader::open(path, FORMAT, VERSION)?;
        Ok(ItemIter { rd })
    }
}

/// The items of a sealed [`Items`], in key order.
pub struct ItemIter {
    rd: RecordReader<std::fs::File>,
}

impl Iterator for ItemIter {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Result<Item>> {
        match self.rd.next_record::<PlanEntry>() {
            Ok(Some(mut p)) => {
                let sources = std::mem::take(&mut p.o);
                Some(Ok(Item {
                    entry: Entry::from(p),
                    sources,
                }))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hbcp_store::EntryKind;

    fn file(key: &str, size: u64) -> Entry {
        Entry {
            key: key.into(),
            size,
            version: Some(format!("v{size}")),
            modified: None,
            kind: EntryKind::File,
        }
    }

    fn keys(items: &Items) -> Vec<(String, u64, Vec<String>)> {
        items
            .iter()
            .unwrap()
            .map(|i| {
                let i = i.unwrap();
                (i.entry.key, i.entry.size, i.sources)
            })
            .collect()
    }

    #[test]
    fn items_come_back_sorted_once_each_across_spilled_runs() {
        let mut items = Items::with_batch(3).unwrap();
        // 10 keys pushed in reverse, some twice (a second way to the same HFile).
        for i in (0..10u64).rev() {
            let k = format!("data/default/t/r/cf/{i:02}");
            items
                .push(k.clone(), &file(&k, i), vec![format!("archive/{k}")])
                .unwrap();
            if i % 3 == 0 {
                items.push(k.clone(), &file(&k, i), Vec::new()).unwrap();
            }
        }
        items.seal().unwrap();
        assert_eq!(items.len(), 10);
        let got = keys(&items);
        let want: Vec<_> = (0..10u64)
            .map(|i| {
                let k = format!("data/default/t/r/cf/{i:02}");
                (k.clone(), i, vec![format!("archive/{k}")])
            })
            .collect();
        assert_eq!(got, want, "first push kept, in key order");
        // A second pass reads the same.
        assert_eq!(keys(&items), want);
        let one = items.iter().unwrap().next().unwrap().unwrap();
        assert_eq!(one.entry.version.as_deref(), Some("v0"));
    }

    #[test]
    fn two_sizes_for_one_key_are_a_conflict_naming_both_sources() {
        let mut items = Items::with_batch(2).unwrap();
        items
            .push("a/x".into(), &file("data/a/x", 5), vec!["data/a/x".into()])
            .unwrap();
        for i in 0..5 {
            items
                .push(format!("b/{i}"), &file("b", 1), Vec::new())
                .unwrap();
        }
        items
            .push(
                "a/x".into(),
                &file("archive/a/x", 6),
                vec!["archive/a/x".into()],
            )
            .unwrap();
        match items.seal() {
            Err(SealError::Conflict(c)) => {
                assert_eq!(c.key, "a/x");
                assert_eq!(
                    (c.first.as_str(), c.second.as_str()),
                    ("data/a/x", "archive/a/x")
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn the_spill_folder_is_removed_with_the_items() {
        let mut items = Items::with_batch(1).unwrap();
        for i in 0..4 {
            items
                .push(format!("k{i}"), &file("k", 1), Vec::new())
                .unwrap();
        }
        items.seal().unwrap();
        let dir = items.dir.path().to_path_buf();
        assert!(dir.join("items.zst").is_file());
        drop(items);
        assert!(!dir.exists());
    }

    #[test]
    fn reading_before_sealing_and_pushing_after_are_errors() {
        let mut items = Items::with_batch(4).unwrap();
        assert!(items.iter().is_err());
        items.seal().unwrap();
        assert!(items.is_empty());
        assert_eq!(items.iter().unwrap().count(), 0);
        assert!(items.push("k".into(), &file("k", 1), Vec::new()).is_err());
    }
}
