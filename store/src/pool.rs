//! Reused aligned buffers: large local reads handed on as shared bytes, and the pieces that
//! stream through a copy to local disk or through a verifier's read.
//!
//! An upload reads each range of a local file (64 MiB by default) into memory and hands it to
//! the HTTP client, which drops it once sent. A fresh buffer per range cost more client CPU
//! than anything else in a profiled upload to Azurite: the kernel zeroing new pages on first
//! touch, the allocator handing them back after, and a fill with zeros before the read (a third
//! of the CPU in all). Here a buffer goes back to a small pool when the last holder of its
//! bytes drops it, and the next read of that size takes it as it is: its old contents are
//! overwritten by the read, never seen.
//!
//! A download pays the same for its pieces: in a profiled download from Azurite a sixth of the
//! client's CPU went to page faults on fresh memory (the coalescing buffer of each range, the
//! verifier's piece of each file, both 1 MiB and new every time) and to filling them with zeros.
//! [`Pooled::take`] hands those out from the same pool.
//!
//! Buffers under [`MIN`] are not pooled (the allocator reuses small ones well), and the pool
//! keeps at most [`IDLE_BYTES`] idle, so memory stays within the budget's ranges in flight plus
//! that much.

use std::sync::Mutex;

use crate::direct::AlignedBuf;

/// Smallest read whose buffer is pooled.
pub(crate) const MIN: usize = 1 << 20;

/// Most bytes of idle buffers kept.
pub(crate) const IDLE_BYTES: usize = 256 << 20;

static IDLE: Mutex<Vec<AlignedBuf>> = Mutex::new(Vec::new());

/// An empty buffer for `want` bytes: an idle one that fits (at most twice as large), else a new
/// one without memory yet. Its memory holds stale bytes; the caller writes over them.
pub(crate) fn take(want: usize) -> AlignedBuf {
    if want >= MIN {
        let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = idle
            .iter()
            .position(|b| b.capacity() >= want && b.capacity() <= 2 * want)
        {
            let mut b = idle.swap_remove(i);
            b.clear();
            return b;
        }
    }
    AlignedBuf::new()
}

/// A buffer from the pool that goes back to it when dropped (bytes read into it and handed on
/// as shared bytes, or a piece a caller streams through).
pub struct Pooled(pub(crate) AlignedBuf);

impl Pooled {
    /// An empty buffer with room for `want` bytes, rounded up to [`MIN`] so that small files'
    /// pieces are reused too: hold it only while the bytes stream through.
    pub fn take(want: usize) -> Self {
        let want = want.max(MIN);
        let mut b = take(want);
        b.reserve(want);
        Pooled(b)
    }
}

impl std::ops::Deref for Pooled {
    type Target = AlignedBuf;
    fn deref(&self) -> &AlignedBuf {
        &self.0
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut AlignedBuf {
        &mut self.0
    }
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let b = std::mem::take(&mut self.0);
        if b.capacity() < MIN {
            return;
        }
        let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = idle.iter().map(AlignedBuf::capacity).sum();
        if held + b.capacity() <= IDLE_BYTES {
            idle.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_large_buffer_is_taken_again_and_a_small_one_is_not_kept() {
        // A size no other test in this binary asks for (the pool is shared by them).
        let n = 3 * MIN;
        let mut b = take(n);
        b.reserve(n);
        b.extend_from_slice(&vec![7u8; n]);
        let addr = b.as_slice().as_ptr() as usize;
        drop(Pooled(b));
        let again = take(n);
        assert!(again.capacity() >= n);
        assert_eq!(
            again.as_slice().as_ptr() as usize,
            addr,
            "the idle buffer was not reused"
        );
        let mut small = AlignedBuf::new();
        small.reserve(4096);
        drop(Pooled(small));
        assert!(IDLE.lock().unwrap().iter().all(|b| b.capacity() >= MIN));
    }

    #[test]
    fn a_piece_is_at_least_min_bytes_and_comes_back_empty() {
        let small = Pooled::take(10);
        assert!(small.capacity() >= MIN && small.is_empty());
        // A size no other test asks for, nor one within twice of theirs.
        let n = 7 * MIN;
        let mut b = Pooled::take(n);
        b.extend_from_slice(&vec![9u8; 4096]);
        let addr = b.as_slice().as_ptr() as usize;
        drop(b);
        let again = Pooled::take(n);
        assert_eq!(again.as_slice().as_ptr() as usize, addr, "not reused");
        assert!(again.is_empty(), "stale bytes handed out as content");
    }
}
