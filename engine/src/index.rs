//! What a sync or a backup target holds, kept on disk so that memory stays flat at any file
//! count: key → size and checksum, and HFile name → key (to find an HFile that moved from
//! `data/` to `archive/` and copy it inside the target instead of sending it again).
//!
//! Files are added in any order, the last record of a key winning (an external sort orders
//! them, [`hbcp_state::extsort`], stable, so equal keys keep their order). Each table is then
//! written as blocks of sorted records (zstd when it saves room) to a file in a scratch folder
//! of its own, removed when the index is dropped. Memory holds the first key and place of each
//! block (with 90-byte keys, under 1 MiB for a million files, about 8 MiB for ten million) and
//! a few recently read blocks; a lookup binary-searches the block list, reads one block (a positioned
//! read, from the page cache mostly) unless it is cached, and binary-searches the block. A
//! listing goes folder by folder, so the keys looked up one after the other are mostly in the
//! same block. Keys are stored whole: a lookup is exact.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use hbcp_state::extsort::ExternalSort;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, WriteOnce};

/// Bytes of records in a block of the key table (before compression).
pub const KEY_BLOCK: usize = 64 << 10;
/// Bytes of records in a block of the name table: smaller, as HFile names are random, so that
/// looking up a new HFile (found in no cached block) reads and searches little.
pub const NAME_BLOCK: usize = 16 << 10;
/// Records an index's sorts hold in memory before writing a run.
pub const SORT_BATCH: usize = 64 * 1024;
/// Decoded blocks kept per table.
const CACHED_BLOCKS: usize = 16;

/// A file the target holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// Size.
    pub size: u64,
    /// Checksum, when known (from a manifest; a listing has none).
    pub hash: Option<u64>,
}

/// An HFile of the target, found by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Where it is.
    pub key: String,
    /// Size.
    pub size: u64,
    /// Checksum, when known.
    pub hash: Option<u64>,
}

/// key, size, checksum.
type KeyRec = (String, u64, Option<u64>);
/// HFile name, key, size, checksum.
type NameRec = (String, String, u64, Option<u64>);

/// A record of a table: sorted by its first string, encoded compactly in a block.
pub(crate) trait Rec: Serialize + DeserializeOwned {
    fn key(&self) -> &str;
    fn encode(&self, out: &mut Vec<u8>);
    /// Decode the record at the start of `b`; `None` on damage.
    fn decode(b: &[u8]) -> Option<Self>;
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&x, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(x & 0x7f) << shift;
        if x < 0x80 {
            return Some(v);
        }
    }
    None
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn get_str<'a>(b: &mut &'a [u8]) -> Option<&'a str> {
    let n = usize::try_from(get_varint(b)?).ok()?;
    if n > b.len() {
        return None;
    }
    let (s, rest) = b.split_at(n);
    *b = rest;
    std::str::from_utf8(s).ok()
}

fn put_hash(out: &mut Vec<u8>, h: Option<u64>) {
    match h {
        None => out.push(0),
        Some(h) => {
            out.push(1);
            out.extend_from_slice(&h.to_le_bytes());
        }
    }
}

fn get_hash(b: &mut &[u8]) -> Option<Option<u64>> {
    let (&flag, rest) = b.split_first()?;
    *b = rest;
    match flag {
        0 => Some(None),
        1 if b.len() >= 8 => {
            let (h, rest) = b.split_at(8);
            *b = rest;
            Some(Some(u64::from_le_bytes(h.try_into().ok()?)))
        }
        _ => None,
    }
}

impl Rec for KeyRec {
    fn key(&self) -> &str {
        &self.0
    }
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.0);
        put_varint(out, self.1);
        put_hash(out, self.2);
    }
    fn decode(mut b: &[u8]) -> Option<Self> {
        let k = get_str(&mut b)?.to_string();
        Some((k, get_varint(&mut b)?, get_hash(&mut b)?))
    }
}

impl Rec for NameRec {
    fn key(&self) -> &str {
        &self.0
    }
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.0);
        put_str(out, &self.1);
        put_varint(out, self.2);
        put_hash(out, self.3);
    }
    fn decode(mut b: &[u8]) -> Option<Self> {
        let name = get_str(&mut b)?.to_string();
        let key = get_str(&mut b)?.to_string();
        Some((name, key, get_varint(&mut b)?, get_hash(&mut b)?))
    }
}

/// The scratch folder of an index, removed on drop.
#[derive(Debug)]
pub(crate) struct ScratchDir(pub(crate) PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::IndexIo {
        path: path.display().to_string(),
        source,
    }
}

fn damaged(path: &Path, why: impl Into<String>) -> Error {
    Error::Index {
        path: path.display().to_string(),
        why: why.into(),
    }
}

/// Where a block is and what it starts with.
#[derive(Debug)]
pub(crate) struct BlockRef {
    pub(crate) first: Box<str>,
    at: u64,
    len: u32,
    zstd: bool,
}

/// A block read back: the records' bytes and where each starts.
pub(crate) struct Block {
    data: Vec<u8>,
    starts: Vec<u32>,
}

impl Block {
    fn parse(path: &Path, data: Vec<u8>) -> Result<Block> {
        // A block is a sequence of (varint record length, record).
        let mut starts = Vec::new();
        let mut b = &data[..];
        while !b.is_empty() {
            let n = get_varint(&mut b).ok_or_else(|| damaged(path, "bad record length"))?;
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= b.len())
                .ok_or_else(|| damaged(path, "record longer than its block"))?;
            starts.push((data.len() - b.len()) as u32);
            b = &b[n..];
        }
        Ok(Block { data, starts })
    }

    fn record(&self, i: usize) -> &[u8] {
        &self.data[self.starts[i] as usize..]
    }

    /// The first string of record `i` (the sort key).
    fn key(&self, i: usize) -> Option<&str> {
        get_str(&mut self.record(i))
    }
}

/// One sorted table in a block file.
pub(crate) struct Table {
    path: PathBuf,
    file: File,
    pub(crate) blocks: Vec<BlockRef>,
    pub(crate) records: u64,
    cache: Mutex<VecDeque<(usize, Arc<Block>)>>,
}

impl Table {
    /// Write the records of `sorted` (in key order, equal keys in push order: the last wins).
    pub(crate) fn write<R: Rec>(
        path: PathBuf,
        sorted: impl Iterator<Item = hbcp_state::Result<R>>,
        block_bytes: usize,
    ) -> Result<Table> {
        // Read back by lookups through the same handle.
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let mut w = BufWriter::new(f);
        let mut blocks = Vec::new();
        let mut at = 0u64;
        let mut records = 0u64;
        let mut block = Vec::with_capacity(block_bytes + 1024);
        let mut first: Option<Box<str>> = None;
        let mut rec = Vec::new();
        let mut flush = |block: &mut Vec<u8>, first: &mut Option<Box<str>>| -> Result<()> {
            let Some(first) = first.take() else {
                return Ok(());
            };
            let packed = zstd::bulk::compress(block, 1).map_err(|e| io_err(&path, e))?;
            let zstd = packed.len() < block.len();
            let bytes = if zstd { &packed[..] } else { &block[..] };
            w.write_all(bytes).map_err(|e| io_err(&path, e))?;
            blocks.push(BlockRef {
                first,
                at,
                len: bytes.len() as u32,
                zstd,
            });
            at += bytes.len() as u64;
            block.clear();
            Ok(())
        };
        let mut pending: Option<R> = None;
        let mut put = |r: &R, block: &mut Vec<u8>, first: &mut Option<Box<str>>| -> Result<()> {
            if block.len() >= block_bytes {
                flush(block, first)?;
            }
            rec.clear();
            r.encode(&mut rec);
            put_varint(block, rec.len() as u64);
            block.extend_from_slice(&rec);
            if first.is_none() {
                *first = Some(r.key().into());
            }
            records += 1;
            Ok(())
        };
        for r in sorted {
            let r = r?;
            if let Some(p) = pending.take() {
                if p.key() != r.key() {
                    put(&p, &mut block, &mut first)?;
                }
            }
            pending = Some(r);
        }
        if let Some(p) = pending.take() {
            put(&p, &mut block, &mut first)?;
        }
        flush(&mut block, &mut first)?;
        let f = w.into_inner().map_err(|e| io_err(&path, e.into_error()))?;
        Ok(Table {
            path,
            file: f,
            blocks,
            records,
            cache: Mutex::new(VecDeque::new()),
        })
    }

    fn read_block(&self, i: usize) -> Result<Block> {
        let b = &self.blocks[i];
        let mut buf = vec![0u8; b.len as usize];
        self.file
            .read_exact_at(&mut buf, b.at)
            .map_err(|e| io_err(&self.path, e))?;
        let data = if b.zstd {
            zstd::stream::decode_all(&buf[..])
                .map_err(|e| damaged(&self.path, format!("block {i}: {e}")))?
        } else {
            buf
        };
        Block::parse(&self.path, data)
    }

    fn cached_block(&self, i: usize) -> Result<Arc<Block>> {
        let mut cache = self.cache.lock().unwrap();
        if let Some(pos) = cache.iter().position(|(j, _)| *j == i) {
            let hit = cache.remove(pos).expect("position is in the cache");
            let block = hit.1.clone();
            cache.push_front(hit);
            return Ok(block);
        }
        let block = Arc::new(self.read_block(i)?);
        if cache.len() >= CACHED_BLOCKS {
            cache.pop_back();
        }
        cache.push_front((i, block.clone()));
        Ok(block)
    }

    pub(crate) fn find<R: Rec>(&self, key: &str) -> Result<Option<R>> {
        let i = self.blocks.partition_point(|b| &*b.first <= key);
        if i == 0 {
            return Ok(None);
        }
        let block = self.cached_block(i - 1)?;
        let (mut lo, mut hi) = (0, block.starts.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let k = block
                .key(mid)
                .ok_or_else(|| damaged(&self.path, "bad record"))?;
            match k.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return R::decode(block.record(mid))
                        .map(Some)
                        .ok_or_else(|| damaged(&self.path, "bad record"));
                }
            }
        }
        Ok(None)
    }
}

/// What the target holds, on disk. Built by [`TargetIndexBuilder`].
pub struct TargetIndex {
    keys: Table,
    names: Table,
    _dir: ScratchDir,
}

impl std::fmt::Debug for TargetIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetIndex")
            .field("dir", &self._dir.0)
            .field("files", &self.keys.records)
            .field("key_blocks", &self.keys.blocks.len())
            .field("hfiles", &self.names.records)
            .field("name_blocks", &self.names.blocks.len())
            .finish()
    }
}

/// Collects the files of a target index (on disk, in sorted runs); [`TargetIndexBuilder::finish`]
/// makes the index.
pub struct TargetIndexBuilder {
    keys: ExternalSort<KeyRec>,
    names: ExternalSort<NameRec>,
    key_block: usize,
    name_block: usize,
    dir: ScratchDir,
    write_once: WriteOnce,
}

impl TargetIndex {
    /// An index whose files go in a new folder under `scratch`; the files whose names
    /// `write_once` takes are also found by name ([`TargetIndex::by_name`]).
    pub fn builder(scratch: &Path, write_once: WriteOnce) -> Result<TargetIndexBuilder> {
        Self::builder_sized(scratch, write_once, SORT_BATCH, KEY_BLOCK, NAME_BLOCK)
    }

    /// [`TargetIndex::builder`] with the records held per sort run and the bytes per block of
    /// each table given (small ones let a test cross every boundary with few files).
    pub fn builder_sized(
        scratch: &Path,
        write_once: WriteOnce,
        batch: usize,
        key_block: usize,
        name_block: usize,
    ) -> Result<TargetIndexBuilder> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let path = scratch.join(format!(
            "target-index-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Relaxed)
        ));
        fs::create_dir_all(&path).map_err(|e| io_err(&path, e))?;
        let by_key: fn(&KeyRec, &KeyRec) -> std::cmp::Ordering = |a, b| a.0.cmp(&b.0);
        let by_name: fn(&NameRec, &NameRec) -> std::cmp::Ordering = |a, b| a.0.cmp(&b.0);
        Ok(TargetIndexBuilder {
            keys: ExternalSort::new(&path, batch, by_key),
            names: ExternalSort::new(&path, batch, by_name),
            dir: ScratchDir(path),
            key_block: key_block.max(1),
            name_block: name_block.max(1),
            write_once,
        })
    }

    /// The file at `key`.
    pub fn get(&self, key: &str) -> Result<Option<Known>> {
        Ok(self
            .keys
            .find::<KeyRec>(key)?
            .map(|(_, size, hash)| Known { size, hash }))
    }

    /// The HFile called `name` (the last one added under that name).
    pub fn by_name(&self, name: &str) -> Result<Option<Named>> {
        Ok(self
            .names
            .find::<NameRec>(name)?
            .map(|(_, key, size, hash)| Named { key, size, hash }))
    }

    /// Files in the index.
    pub fn len(&self) -> u64 {
        self.keys.records
    }

    /// True when the index holds no file.
    pub fn is_empty(&self) -> bool {
        self.keys.records == 0
    }

    /// Every file, in key (byte) order (read block by block, past the cache).
    pub fn iter(&self) -> impl Iterator<Item = Result<(String, Known)>> + '_ {
        Iter::<KeyRec>::new(&self.keys).map(|r| r.map(|(k, size, hash)| (k, Known { size, hash })))
    }
}

/// The records of a [`Table`] in key order.
pub(crate) struct Iter<'a, R> {
    pub(crate) t: &'a Table,
    pub(crate) next: usize,
    pub(crate) block: Option<Block>,
    pub(crate) pos: usize,
    pub(crate) failed: bool,
    pub(crate) rec: std::marker::PhantomData<R>,
}

impl<'a, R> Iter<'a, R> {
    /// From the first record of `t`.
    pub(crate) fn new(t: &'a Table) -> Self {
        Iter {
            t,
            next: 0,
            block: None,
            pos: 0,
            failed: false,
            rec: std::marker::PhantomData,
        }
    }
}

impl<R: Rec> Iterator for Iter<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(b) = &self.block {
                if self.pos < b.starts.len() {
                    let r = R::decode(b.record(self.pos));
                    self.pos += 1;
                    let Some(r) = r else {
                        self.failed = true;
                        return Some(Err(damaged(&self.t.path, "bad record")));
                    };
                    return Some(Ok(r));
                }
            }
            if self.next >= self.t.blocks.len() {
                return None;
            }
            match self.t.read_block(self.next) {
                Ok(b) => {
                    self.block = Some(b);
                    self.pos = 0;
                    self.next += 1;
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl TargetIndexBuilder {
    /// Record a target file; a later record of the same key replaces it.
    pub fn add(&mut self, key: &str, size: u64, hash: Option<u64>) -> Result<()> {
        let name = key.rsplit('/').next().unwrap_or(key);
        if (self.write_once)(name) {
            self.names
                .push((name.to_string(), key.to_string(), size, hash))?;
        }
        self.keys.push((key.to_string(), size, hash))?;
        Ok(())
    }

    /// Files added so far (with repeats).
    pub fn added(&self) -> u64 {
        self.keys.len()
    }

    /// Sort what was added and write the tables.
    pub fn finish(self) -> Result<TargetIndex> {
        let keys = Table::write(
            self.dir.0.join("keys.blk"),
            self.keys.finish()?,
            self.key_block,
        )?;
        let names = Table::write(
            self.dir.0.join("names.blk"),
            self.names.finish()?,
            self.name_block,
        )?;
        Ok(TargetIndex {
            keys,
            names,
            _dir: self.dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hfile(i: u64) -> String {
        format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// The names `hfile` makes (the caller's rule in a real job comes from hbcp-hbase).
    fn is_hfile(name: &str) -> bool {
        name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
    }

    #[test]
    fn lookups_across_blocks_and_sort_runs_match_a_map() {
        let d = tempfile::tempdir().unwrap();
        // Runs of 50 records and blocks of ~200 bytes: 2,000 files make dozens of each.
        let mut b = TargetIndex::builder_sized(d.path(), is_hfile, 50, 200, 100).unwrap();
        let mut want_key = HashMap::new();
        let mut want_name = HashMap::new();
        // Out of order, with repeats: the last record wins.
        for round in 0..2u64 {
            for i in (0..1000u64).rev() {
                let (region, name) = (i % 7, hfile(i));
                let key = if i % 3 == 0 && round == 1 {
                    format!("archive/data/default/t/r{region}/cf/{name}")
                } else {
                    format!("data/default/t/r{region}/cf/{name}")
                };
                let hash = (i % 5 != 0).then_some(i * 31 + round);
                let size = i + round;
                b.add(&key, size, hash).unwrap();
                want_key.insert(key.clone(), Known { size, hash });
                want_name.insert(name, Named { key, size, hash });
            }
        }
        // A file that is not an HFile is in the key table only.
        b.add(
            "data/default/t/.tabledesc/.tableinfo.0000000001",
            42,
            Some(7),
        )
        .unwrap();
        want_key.insert(
            "data/default/t/.tabledesc/.tableinfo.0000000001".into(),
            Known {
                size: 42,
                hash: Some(7),
            },
        );
        assert_eq!(b.added(), 2001);
        let idx = b.finish().unwrap();
        assert!(idx.keys.blocks.len() > 20, "{idx:?}");
        assert!(idx.names.blocks.len() > 20, "{idx:?}");
        assert_eq!(idx.len(), want_key.len() as u64);
        for (k, v) in &want_key {
            assert_eq!(idx.get(k).unwrap().as_ref(), Some(v), "{k}");
        }
        for (n, v) in &want_name {
            assert_eq!(idx.by_name(n).unwrap().as_ref(), Some(v), "{n}");
        }
        // Missing: before the first key, between keys, after the last, and a prefix of a key.
        for k in [
            "",
            "a",
            "data/default/t/r0/cf/",
            "data/default/t/r3/cf/0",
            "zzz",
            "data/default/t/r6/cf/ffffffffffffffffffffffffffffffff",
        ] {
            assert_eq!(idx.get(k).unwrap(), None, "{k}");
        }
        assert_eq!(idx.by_name(&hfile(5000)).unwrap(), None);
        assert_eq!(idx.by_name(".tableinfo.0000000001").unwrap(), None);
        // Iteration: every key once, in byte order.
        let keys: Vec<String> = idx.iter().map(|r| r.unwrap().0).collect();
        let mut sorted: Vec<String> = want_key.keys().cloned().collect();
        sorted.sort();
        assert_eq!(keys, sorted);
        // The folder goes with the index.
        let dir = idx._dir.0.clone();
        assert!(dir.exists());
        drop(idx);
        assert!(!dir.exists());
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let d = tempfile::tempdir().unwrap();
        let idx = TargetIndex::builder(d.path(), is_hfile)
            .unwrap()
            .finish()
            .unwrap();
        assert!(idx.is_empty());
        assert_eq!(idx.get("x").unwrap(), None);
        assert_eq!(idx.by_name(&hfile(1)).unwrap(), None);
        assert_eq!(idx.iter().count(), 0);
    }

    #[test]
    fn a_damaged_block_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let mut b = TargetIndex::builder_sized(d.path(), is_hfile, 10, 64, 64).unwrap();
        for i in 0..100u64 {
            b.add(&format!("k{i:04}"), i, None).unwrap();
        }
        let idx = b.finish().unwrap();
        // Overwrite a block in the middle of the key table with bytes that are not records.
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&idx.keys.path)
            .unwrap();
        let mid = &idx.keys.blocks[idx.keys.blocks.len() / 2];
        f.write_all_at(&vec![0xff; mid.len as usize], mid.at)
            .unwrap();
        assert!(idx.get(&mid.first).is_err());
        assert!(idx.iter().collect::<Result<Vec<_>>>().is_err());
    }
}
