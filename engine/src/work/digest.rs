//! `--put-md5` in the one read of the source (issue 19): the whole file's MD5, which the target
//! keeps with the commit (Azure's `x-ms-blob-content-md5` on Put Block List, GCS's md5Hash),
//! hashed from the very bytes each range sends, never from a second read of the file.
//!
//! MD5 cannot be combined from per-range values, so it must see the bytes in order. A file
//! whose upload wants its MD5 is therefore copied by ONE worker, range after range in order
//! ([`in_order`]), rather than by many workers in any order: each range is read once, hashed
//! (xxh3 and MD5), sent, journaled, under the same memory budget (one range held at a time),
//! bandwidth cap and retries as any range. Other files keep the other workers busy. Holding
//! out-of-order ranges instead would hold memory outside the budget, and waiting for earlier
//! ranges while holding a budget grant can deadlock two such files against each other.
//!
//! A resumed file's ranges journaled by an earlier run are not sent again: their bytes are
//! read from the source and hashed only ([`rehash`]), and their xxh3 must equal the journaled
//! one, so the MD5 stored is the MD5 of exactly the bytes staged at the target (a source that
//! changed since fails the range as changed, and the file is copied again whole).

use md5::{Digest, Md5};

use super::*;

/// The MD5 of a large file's ranges hashed so far, in order.
#[derive(Default)]
pub(super) struct InOrder {
    state: Mutex<State>,
    /// One worker has taken the file's ranges (the other range tasks of it do nothing).
    claimed: AtomicBool,
}

#[derive(Default)]
struct State {
    md5: Md5,
    /// The first range not hashed yet.
    next: u32,
}

/// True when this file's upload stores the whole file's MD5 with its commit (`--put-md5` on a
/// target that keeps one) and the bytes pass through hbcp (not a server-side copy).
pub(super) fn wanted(sh: &Shared<'_>, big: &Big) -> bool {
    big.copy.is_none() && upload_of(sh, big).is_ok_and(|u| u.wants_md5())
}

/// Hash range `idx`'s bytes, just read, when it is the next one in order. A range out of
/// order (not expected: such a file's ranges are read in order) leaves the MD5 where it is,
/// and [`whole`] reads the rest again rather than store a wrong MD5.
pub(super) fn feed(big: &Big, idx: u32, data: &[u8]) {
    if !big.md5.claimed.load(Relaxed) {
        return;
    }
    let mut st = big.md5.state.lock().unwrap();
    if st.next == idx {
        st.md5.update(data);
        st.next += 1;
    }
}

/// Mark a file whose ranges are about to be copied in order by one caller (a file copied
/// inline), so that its MD5 is hashed on the way when wanted.
pub(super) fn claim(sh: &Shared<'_>, big: &Big) {
    if wanted(sh, big) {
        big.md5.claimed.store(true, Relaxed);
    }
}

/// Run a range task of a file whose MD5 is wanted: the first of its range tasks taken copies
/// every range of the file in order, then commits it; the others do nothing.
pub(super) fn in_order(sh: &Shared<'_>, big: &Big, done: &Sender<Done>) {
    if big.md5.claimed.swap(true, Relaxed) {
        return;
    }
    // (The other range tasks of this file return at once, so `remaining` is not counted.)
    for i in 0..big.ranges {
        if sh.halted() {
            // Leave what is staged for the resume.
            return;
        }
        let journaled = big.hashes.lock().unwrap()[i as usize];
        let r = match journaled {
            Some(h) => rehash(sh, big, i, h),
            None => copy_range(sh, big, i)
                .and_then(|h| sync_parts(sh, big).map(|()| h))
                .map(|h| {
                    big.hashes.lock().unwrap()[i as usize] = Some(h);
                    journal_range(big, i, h, done);
                }),
        };
        if let Err(e) = r {
            if e.is_fatal() {
                sh.set_stop(Stop::Fatal(e.to_string()));
            }
            let changed = matches!(
                e,
                StoreError::Changed { .. }
                    | StoreError::NotFound { .. }
                    | StoreError::ShortRead { .. }
            );
            *big.failed.lock().unwrap() = Some((e.to_string(), changed));
            break;
        }
    }
    finish_big(sh, big, done);
}

/// The whole file's MD5 for the commit: the ranges not hashed on their way (a resume whose
/// ranges were all journaled, or a range hashed out of order) are read from the source and
/// hashed now, each checked against its journaled xxh3.
pub(super) fn whole(sh: &Shared<'_>, big: &Big) -> hbcp_store::Result<[u8; 16]> {
    let from = big.md5.state.lock().unwrap().next;
    for i in from..big.ranges {
        let h = big.hashes.lock().unwrap()[i as usize].unwrap_or(0);
        rehash(sh, big, i, h)?;
    }
    let st = big.md5.state.lock().unwrap();
    Ok(st.md5.clone().finalize().into())
}

/// Read range `idx` of the source (streamed, one chunk at a time) and hash it into the MD5,
/// without sending it: its bytes are staged at the target already, with xxh3 `want`.
fn rehash(sh: &Shared<'_>, big: &Big, idx: u32, want: u64) -> hbcp_store::Result<()> {
    let e = &big.entry;
    let r = range_at(e.size, sh.cfg.range_size, idx as u64);
    let base = {
        let st = big.md5.state.lock().unwrap();
        if st.next != idx {
            // Hashed already (or an earlier range is not): nothing to add here.
            return Ok(());
        }
        st.md5.clone()
    };
    let _held = sh.budget.take(sh.cfg.chunk.min(r.end - r.start));
    // Each attempt hashes from the range's first byte, on a copy of the MD5 so far.
    let (md5, xxh) = sh.retry(|| {
        let (mut m, mut x) = (base.clone(), Xxh3::new());
        sh.src
            .read_range_to(&e.key, r.clone(), e.version.as_deref(), &mut |piece| {
                if sh.halted() {
                    return Err(stopping());
                }
                throttle(sh, piece.len())?;
                m.update(piece);
                x.update(piece);
                Ok(())
            })?;
        Ok((m, x.digest()))
    })?;
    if xxh != want {
        return Err(StoreError::Changed {
            key: e.key.clone(),
            why: format!("range {idx} differs from the one an earlier run staged"),
        });
    }
    let mut st = big.md5.state.lock().unwrap();
    st.md5 = md5;
    st.next = idx + 1;
    Ok(())
}
