//! Claims on the names of the backup pool while a run writes them, so that two HFiles of one
//! name (in two regions or tables, different bytes) copied at the same time do not both go to
//! `pool/NAME`: the second one that asks while the first is still being written is sent to
//! the generation's own folder instead (a name clash, as when the pool already holds another
//! file of that name). A claim lives as long as the write (the put, or the upload until it is
//! committed or dropped), so only the files in flight are held in memory.
//!
//! Must never import the engine: it is a detail of [`crate::genstore::GenStore`].

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use hbcp_store::{CopySource, Result, Upload};

/// Pool name → (the key of the root writing it, how many writes of that key are open).
pub(crate) type Claims = Arc<Mutex<HashMap<String, (String, u32)>>>;

/// An open claim on a pool name; released when dropped.
#[derive(Debug)]
pub(crate) struct PoolClaim {
    claims: Claims,
    name: String,
}

impl PoolClaim {
    /// Claim `name` for a write of `key`: `None` when another key is writing that name now.
    pub(crate) fn take(claims: &Claims, name: &str, key: &str) -> Option<PoolClaim> {
        let mut m = claims.lock().unwrap();
        match m.get_mut(name) {
            Some((k, n)) if k == key => *n += 1,
            Some(_) => return None,
            None => {
                m.insert(name.to_string(), (key.to_string(), 1));
            }
        }
        Some(PoolClaim {
            claims: claims.clone(),
            name: name.to_string(),
        })
    }
}

impl Drop for PoolClaim {
    fn drop(&mut self) {
        let mut m = self.claims.lock().unwrap();
        if let Some((_, n)) = m.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.name);
            }
        }
    }
}

/// The inner store's upload, holding its claim until it is dropped. Forwards every method of
/// [`Upload`] (the MD5 of `--put-md5` and the staged parts of a resumed run included).
#[derive(Debug)]
pub(crate) struct ClaimedUpload {
    pub(crate) inner: Arc<dyn Upload>,
    pub(crate) _claim: PoolClaim,
}

impl Upload for ClaimedUpload {
    fn put_part(&self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.inner.put_part(index, offset, data)
    }
    fn put_part_bytes(&self, index: u32, offset: u64, data: bytes::Bytes) -> Result<()> {
        self.inner.put_part_bytes(index, offset, data)
    }
    fn put_part_from(&self, index: u32, src: &CopySource, range: Range<u64>) -> Result<()> {
        self.inner.put_part_from(index, src, range)
    }
    fn sync_parts(&self) -> Result<()> {
        self.inner.sync_parts()
    }
    fn commit(&self) -> Result<Option<String>> {
        self.inner.commit()
    }
    fn abort(&self) -> Result<()> {
        self.inner.abort()
    }
    fn is_resumed(&self) -> bool {
        self.inner.is_resumed()
    }
    fn has_part(&self, index: u32, len: u64) -> bool {
        self.inner.has_part(index, len)
    }
    fn wants_md5(&self) -> bool {
        self.inner.wants_md5()
    }
    fn set_md5(&self, md5: [u8; 16]) {
        self.inner.set_md5(md5)
    }
    fn transport_checked(&self) -> bool {
        self.inner.transport_checked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_by_one_key_until_its_writes_end() {
        let claims = Claims::default();
        let a1 = PoolClaim::take(&claims, "n", "t1/n").expect("free");
        assert!(PoolClaim::take(&claims, "n", "t2/n").is_none());
        // The same key again (a retry) shares the claim.
        let a2 = PoolClaim::take(&claims, "n", "t1/n").expect("same key");
        drop(a1);
        assert!(PoolClaim::take(&claims, "n", "t2/n").is_none());
        drop(a2);
        assert!(claims.lock().unwrap().is_empty());
        assert!(PoolClaim::take(&claims, "n", "t2/n").is_some());
    }
}
