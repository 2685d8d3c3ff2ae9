//! A read-only store of synthetic files: `count` files of `size` bytes whose content is a
//! fast deterministic function of (file, offset). `hbcp bench` copies from it, so measuring an
//! endpoint needs no local data set, and every byte read back can be checked.

use std::ops::Range;
use std::sync::Arc;

use crate::{Caps, Entry, EntryKind, Error, ListSink, Result, Store, Upload};

/// Synthetic files `bench/f000000` … under no root.
#[derive(Debug, Clone)]
pub struct SyntheticStore {
    count: u64,
    size: u64,
    seed: u64,
}

impl SyntheticStore {
    /// `count` files of `size` bytes.
    pub fn new(count: u64, size: u64, seed: u64) -> Self {
        SyntheticStore { count, size, seed }
    }

    /// The key of file `i`.
    pub fn key(i: u64) -> String {
        format!("f{i:07}")
    }

    fn index(&self, key: &str) -> Option<u64> {
        let i: u64 = key.strip_prefix('f')?.parse().ok()?;
        (i < self.count).then_some(i)
    }

    /// Fill `buf` with the bytes of file `i` starting at `offset`.
    pub fn fill(&self, i: u64, offset: u64, buf: &mut [u8]) {
        // 8-byte words of splitmix64 over (seed, file, word index): fast and offset-addressable.
        let mut word = offset / 8;
        let mut skip = (offset % 8) as usize;
        let mut at = 0;
        while at < buf.len() {
            let mut z = self.seed
                ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ word.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let bytes = z.to_le_bytes();
            let n = (8 - skip).min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&bytes[skip..skip + n]);
            at += n;
            skip = 0;
            word += 1;
        }
    }
}

fn read_only(what: &str) -> Error {
    Error::Unsupported {
        what: format!("{what} on the synthetic bench source"),
        hint: "it is read-only".into(),
    }
}

impl Store for SyntheticStore {
    fn describe(&self) -> String {
        format!("synthetic:{}x{}", self.count, self.size)
    }

    fn caps(&self) -> Caps {
        Caps {
            is_local: true,
            positional_writes: false,
            max_part_size: u64::MAX,
            max_parts: u32::MAX,
            min_part_size: 1,
            default_concurrency: 8,
        }
    }

    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> Result<()> {
        for i in 0..self.count {
            let key = Self::key(i);
            if key.starts_with(prefix) {
                sink(Entry {
                    key,
                    size: self.size,
                    version: Some("synthetic".into()),
                    modified: None,
                    kind: EntryKind::File,
                })?;
            }
        }
        Ok(())
    }

    fn head(&self, key: &str) -> Result<Option<Entry>> {
        Ok(self.index(key).map(|_| Entry {
            key: key.into(),
            size: self.size,
            version: Some("synthetic".into()),
            modified: None,
            kind: EntryKind::File,
        }))
    }

    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        _version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let i = self
            .index(key)
            .ok_or_else(|| Error::NotFound { key: key.into() })?;
        if range.end > self.size {
            return Err(Error::ShortRead {
                key: key.into(),
                offset: self.size,
                wanted: range.end - self.size,
            });
        }
        buf.clear();
        buf.resize((range.end - range.start) as usize, 0);
        self.fill(i, range.start, buf);
        Ok(())
    }

    fn put(&self, _key: &str, _data: &[u8]) -> Result<()> {
        Err(read_only("put"))
    }

    fn begin_upload(
        &self,
        _key: &str,
        _size: u64,
        _part: u64,
        _job: &str,
    ) -> Result<Arc<dyn Upload>> {
        Err(read_only("upload"))
    }

    fn make_dir(&self, _key: &str) -> Result<()> {
        Err(read_only("make_dir"))
    }

    fn delete(&self, _key: &str) -> Result<()> {
        Err(read_only("delete"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_agree_with_the_whole() {
        let s = SyntheticStore::new(3, 1000, 7);
        let mut whole = Vec::new();
        s.read_range("f0000001", 0..1000, None, &mut whole).unwrap();
        let mut part = Vec::new();
        s.read_range("f0000001", 13..517, None, &mut part).unwrap();
        assert_eq!(&whole[13..517], &part[..]);
        let mut other = Vec::new();
        s.read_range("f0000002", 0..1000, None, &mut other).unwrap();
        assert_ne!(whole, other);
        assert!(s.read_range("f0000003", 0..1, None, &mut other).is_err());
        assert!(
            s.read_range("f0000001", 990..1001, None, &mut other)
                .is_err()
        );
    }
}
