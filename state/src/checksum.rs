//! The checksum scheme.
//!
//! A file of `size` bytes is cut into ranges of `range_size` bytes (the planner's split). Each
//! range is hashed with xxh3-64 as it is read. A file of zero or one range has the checksum of
//! its bytes; a file of several ranges has the xxh3-64 of its range hashes (little-endian,
//! in order). Ranges can thus be hashed in parallel by different workers and still give one
//! checksum per file, and the verifier recomputes it with the same range size.

use hbcp_store::{Result, Store};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// Combine the range hashes of a file into its checksum.
pub fn combine(range_hashes: &[u64]) -> u64 {
    match range_hashes {
        [] => xxh3_64(&[]),
        [one] => *one,
        many => {
            let mut h = Xxh3::new();
            for r in many {
                h.update(&r.to_le_bytes());
            }
            h.digest()
        }
    }
}

/// Hash of one range, streamed as it is read: one request, and memory stays at the store's
/// streaming piece (a local store's is aligned and reused: no copy into a `Vec`, no zero fill)
/// whatever the range's size.
pub fn hash_range(
    store: &dyn Store,
    key: &str,
    range: std::ops::Range<u64>,
    version: Option<&str>,
) -> Result<u64> {
    let mut h = Xxh3::new();
    store.read_range_to(key, range, version, &mut |piece| {
        h.update(piece);
        Ok(())
    })?;
    Ok(h.digest())
}

/// Checksum of a whole file, read range by range.
pub fn hash_file(
    store: &dyn Store,
    key: &str,
    size: u64,
    range_size: u64,
    version: Option<&str>,
) -> Result<u64> {
    let mut hashes = Vec::with_capacity(crate::range_count(size, range_size) as usize);
    for r in crate::ranges(size, range_size) {
        hashes.push(hash_range(store, key, r, version)?);
    }
    Ok(combine(&hashes))
}

/// The MD5 of a whole file at `version`, streamed in one read (memory stays at the store's
/// streaming piece).
pub fn md5_file(
    store: &dyn Store,
    key: &str,
    size: u64,
    version: Option<&str>,
) -> Result<[u8; 16]> {
    use md5::Digest;
    let mut h = md5::Md5::new();
    store.read_range_to(key, 0..size, version, &mut |piece| {
        h.update(piece);
        Ok(())
    })?;
    Ok(h.finalize().into())
}

/// Checksum printed as 16 hex digits.
pub fn hex(h: u64) -> String {
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hbcp_store::local::LocalStore;

    #[test]
    fn a_file_of_several_ranges_hashes_its_range_hashes_and_one_range_its_bytes() {
        let d = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(d.path().join("f"), &data).unwrap();
        let s = LocalStore::new(d.path().to_path_buf());
        let a = hash_file(&s, "f", 100_000, 30_000, None).unwrap();
        let by_hand: Vec<u64> = data.chunks(30_000).map(xxh3_64).collect();
        assert_eq!(a, combine(&by_hand));
        let whole = hash_file(&s, "f", 100_000, 1 << 20, None).unwrap();
        assert_eq!(whole, xxh3_64(&data));
        assert_ne!(a, whole);
        assert_eq!(combine(&[]), xxh3_64(b""));
        assert_eq!(hash_file(&s, "f", 0, 30_000, None).unwrap(), xxh3_64(b""));
    }
}
