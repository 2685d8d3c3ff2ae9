//! A string → (string, number) map kept on disk, so that a backup, a restore or a prune can look
//! up what a generation names at ten million files with flat memory: where a key's bytes are
//! stored and its size, which HFile names the pool holds, which stored keys a kept generation
//! needs. Built like the target index ([`crate::index`]): entries in any order, the last of a key
//! winning, sorted externally and written as blocks of sorted records in a scratch folder removed
//! with the map; memory holds the first key of each block and a few cached blocks.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hbcp_state::extsort::ExternalSort;

use crate::Result;
use crate::index::{
    Iter, Rec, SORT_BATCH, ScratchDir, Table, get_str, get_varint, io_err, put_str, put_varint,
};

/// Bytes of records in a block.
const BLOCK: usize = 32 << 10;

/// key, value, number.
type PairRec = (String, String, u64);

impl Rec for PairRec {
    fn key(&self) -> &str {
        &self.0
    }
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.0);
        put_str(out, &self.1);
        put_varint(out, self.2);
    }
    fn decode(mut b: &[u8]) -> Option<Self> {
        let k = get_str(&mut b)?.to_string();
        let v = get_str(&mut b)?.to_string();
        Some((k, v, get_varint(&mut b)?))
    }
}

/// A sorted map on disk. Built by [`KeyMapBuilder`].
pub struct KeyMap {
    table: Table,
    _dir: ScratchDir,
}

impl std::fmt::Debug for KeyMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMap")
            .field("dir", &self._dir.0)
            .field("records", &self.table.records)
            .finish()
    }
}

/// Collects the entries of a [`KeyMap`] (in sorted runs on disk).
pub struct KeyMapBuilder {
    sort: ExternalSort<PairRec>,
    dir: ScratchDir,
    block: usize,
}

impl KeyMap {
    /// A map whose files go in a new folder under `scratch`.
    pub fn builder(scratch: &Path) -> Result<KeyMapBuilder> {
        Self::builder_sized(scratch, SORT_BATCH, BLOCK)
    }

    /// [`KeyMap::builder`] with the records per sort run and the bytes per block given.
    pub fn builder_sized(scratch: &Path, batch: usize, block: usize) -> Result<KeyMapBuilder> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let path = scratch.join(format!(
            "key-map-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Relaxed)
        ));
        fs::create_dir_all(&path).map_err(|e| io_err(&path, e))?;
        let by_key: fn(&PairRec, &PairRec) -> std::cmp::Ordering = |a, b| a.0.cmp(&b.0);
        Ok(KeyMapBuilder {
            sort: ExternalSort::new(&path, batch, by_key),
            dir: ScratchDir(path),
            block: block.max(1),
        })
    }

    /// The value and number of `key`.
    pub fn get(&self, key: &str) -> Result<Option<(String, u64)>> {
        Ok(self.table.find::<PairRec>(key)?.map(|(_, v, n)| (v, n)))
    }

    /// Distinct keys.
    pub fn len(&self) -> u64 {
        self.table.records
    }

    /// True when the map is empty.
    pub fn is_empty(&self) -> bool {
        self.table.records == 0
    }

    /// Every entry (key, value, number), in key (byte) order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(String, String, u64)>> + '_ {
        Iter::<PairRec>::new(&self.table)
    }

    /// The entries whose key starts with `prefix`, in key order; the blocks before the first
    /// of them are not read (a listing of one folder of a generation costs that folder).
    pub fn iter_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = Result<(String, String, u64)>> + 'a {
        let mut it = Iter::<PairRec>::new(&self.table);
        it.next = self
            .table
            .blocks
            .partition_point(|b| &*b.first <= prefix)
            .saturating_sub(1);
        it.skip_while(move |r| matches!(r, Ok((k, _, _)) if k.as_str() < prefix))
            .take_while(move |r| !matches!(r, Ok((k, _, _)) if !k.starts_with(prefix)))
    }
}

impl KeyMapBuilder {
    /// Record `key`; a later record of the same key replaces it.
    pub fn add(&mut self, key: &str, value: &str, n: u64) -> Result<()> {
        self.sort.push((key.to_string(), value.to_string(), n))?;
        Ok(())
    }

    /// Sort what was added and write the table.
    pub fn finish(self) -> Result<KeyMap> {
        let table = Table::write(self.dir.0.join("map.blk"), self.sort.finish()?, self.block)?;
        Ok(KeyMap {
            table,
            _dir: self.dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn lookups_and_iteration_match_a_map_across_runs_and_blocks() {
        let d = tempfile::tempdir().unwrap();
        let mut b = KeyMap::builder_sized(d.path(), 37, 150).unwrap();
        let mut want = BTreeMap::new();
        for round in 0..2u64 {
            for i in (0..900u64).rev() {
                let k = format!("data/default/t/r{}/cf/{:08x}", i % 11, i * 7919);
                let v = if i % 4 == 0 {
                    String::new()
                } else {
                    format!("pool/{i}-{round}")
                };
                b.add(&k, &v, i + round).unwrap();
                want.insert(k, (v, i + round));
            }
        }
        let m = b.finish().unwrap();
        assert_eq!(m.len(), want.len() as u64);
        for (k, v) in &want {
            assert_eq!(m.get(k).unwrap().as_ref(), Some(v), "{k}");
        }
        for k in ["", "data/default/t/r1/cf/", "zzz"] {
            assert_eq!(m.get(k).unwrap(), None, "{k}");
        }
        let got: Vec<_> = m.iter().map(|r| r.unwrap()).collect();
        let exp: Vec<_> = want.into_iter().map(|(k, (v, n))| (k, v, n)).collect();
        assert_eq!(got, exp);
        // A prefix listing is the map's entries under it, whatever block it starts in.
        for p in [
            "",
            "data/",
            "data/default/t/r1/",
            "data/default/t/r10/",
            "data/default/t/r7/cf/0",
            "data/default/t/r9/cf/ffff",
            "a",
            "zzz",
        ] {
            let got: Vec<_> = m.iter_prefix(p).map(|r| r.unwrap()).collect();
            let want: Vec<_> = exp.iter().filter(|e| e.0.starts_with(p)).cloned().collect();
            assert_eq!(got, want, "{p:?}");
        }
        let dir = m._dir.0.clone();
        drop(m);
        assert!(!dir.exists(), "the scratch folder goes with the map");
    }

    #[test]
    fn an_empty_map_finds_nothing() {
        let d = tempfile::tempdir().unwrap();
        let m = KeyMap::builder(d.path()).unwrap().finish().unwrap();
        assert!(m.is_empty());
        assert_eq!(m.get("x").unwrap(), None);
        assert_eq!(m.iter().count(), 0);
    }
}
