//! Server-side copies (`--s2s auto`): when source and target are the same kind of store, the
//! target's service copies a file from the source itself and its bytes never pass through
//! hbcp. A large file (more than one range) goes range by range where the target's uploads
//! take copied parts (S3 UploadPartCopy, Azure Put Block From URL): each range is a task like
//! a streamed one, with the same retries, adaptive concurrency and journal (a `cr` record once
//! it is staged), so a rerun after a crash copies only the ranges not yet journaled. Other
//! files are one request (S3 CopyObject, GCS rewrite, Azure Copy Blob From URL), journaled
//! whole (`cf`). What a pair cannot copy by ranges is copied whole; what it cannot copy at all
//! (another endpoint, no SAS on an Azure source, too large for one request, a service that
//! answers "not implemented") is streamed as usual; each fallback is named once.
//!
//! Every copy request names the source version planned (the ETag listed; GCS: its
//! generation), which the service checks itself; and before a file copied by ranges is
//! committed, its source is asked for its version once more ([`source_unchanged`]), for a
//! service that ignores the condition (moto). A source changed during the copy fails the file
//! named, nothing of it is committed, and the rerun copies the new version.
//!
//! No checksum is taken on the way (no byte is read): the manifest marks the file, and the
//! verification hashes the source and the target both, so it never trusts the service's copy.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use hbcp_state::journal::Resume;
use hbcp_state::{range_at, range_count};
use hbcp_store::{CopySource, Entry, Error as StoreError, Upload};

use super::{Big, Done, Shared, copy_inline, fail};

/// A large file the target's service copies range by range.
pub(super) struct Ranged {
    /// Where the service reads it.
    src: CopySource,
    /// A range was refused as unsupported: the file is copied another way.
    refused: AtomicBool,
    /// Bytes this run counted as copied server-side for the file (taken back on a fallback).
    bytes: AtomicU64,
}

/// The large file `e` as ranges the target's service copies, with the ranges still to copy
/// (those a journal says are staged, and the store still holds, are not); `None` when the
/// pair cannot copy it by ranges (then it is copied whole, or streamed).
pub(super) fn ranged(sh: &Shared<'_>, e: &Entry, resume: &Resume) -> Option<(Arc<Big>, Vec<u32>)> {
    let rs = sh.cfg.range_size;
    if e.size <= rs || !sh.dst.copies_ranges() || sh.s2s_ranges_off.load(Relaxed) {
        return None;
    }
    // A source that cannot be handed out is said by the whole-file path.
    let src = sh.src.copy_source(&e.key, e.version.as_deref()).ok()?;
    let n = range_count(e.size, rs) as u32;
    let mut hashes = vec![None; n as usize];
    let mut upload = None;
    if let Some(staged) = resume.copied_ranges_of(&e.key, e.size, e.version.as_deref()) {
        if let Ok(up) = sh.retry(|| sh.dst.begin_upload(&e.key, e.size, rs, &sh.cfg.job)) {
            for i in staged {
                let r = range_at(e.size, rs, i as u64);
                if let Some(slot) = hashes.get_mut(i as usize)
                    && up.has_part(i, r.end - r.start)
                {
                    // No checksum: the file is marked copied, and its verification reads it.
                    *slot = Some(0);
                    sh.stats.bytes_skipped.fetch_add(r.end - r.start, Relaxed);
                }
            }
            upload = Some(up);
        }
    }
    let todo: Vec<u32> = (0..n).filter(|i| hashes[*i as usize].is_none()).collect();
    let big = Arc::new(Big {
        entry: e.clone(),
        ranges: n,
        upload: Mutex::new(upload),
        hashes: Mutex::new(hashes),
        remaining: AtomicU32::new(todo.len() as u32),
        failed: Mutex::new(None),
        copy: Some(Ranged {
            src,
            refused: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
        }),
        md5: Default::default(),
    });
    Some((big, todo))
}

/// Range `idx` (`r`) of a file copied by the target's service into part `idx` of `up`.
/// Returns the range's "hash", which a copied range has not (0, never combined).
pub(super) fn range(
    sh: &Shared<'_>,
    copy: &Ranged,
    up: &dyn Upload,
    idx: u32,
    r: std::ops::Range<u64>,
) -> hbcp_store::Result<u64> {
    sh.retry(|| up.put_part_from(idx, &copy.src, r.clone()))?;
    let n = r.end - r.start;
    sh.stats.bytes_copied.fetch_add(n, Relaxed);
    sh.stats.bytes_server_side.fetch_add(n, Relaxed);
    copy.bytes.fetch_add(n, Relaxed);
    Ok(0)
}

/// A range copy failed with `e`: remember a refusal (the file is then copied another way).
/// A refusal is an "unsupported" answer or a service failure (5xx) the retry policy gave up
/// on: a range copy is an optimisation, and a service that fails it (Azurite answers 500 to a
/// Put Block From URL within one account) may still copy the file whole, or hbcp stream it.
/// After one, the run copies no further file by ranges, so the retries are paid once.
pub(super) fn note_refusal(sh: &Shared<'_>, big: &Big, e: &StoreError) {
    if let Some(c) = &big.copy
        && refuses(e)
    {
        c.refused.store(true, Relaxed);
        sh.s2s_ranges_off.store(true, Relaxed);
    }
}

/// True for an answer that says the service will not copy a range: "unsupported", or a
/// server failure (5xx), given up on or not. A refused credential or a changed source is not.
fn refuses(e: &StoreError) -> bool {
    match e.cause() {
        StoreError::Unsupported { .. } => true,
        StoreError::Remote {
            status: Some(s), ..
        } => *s >= 500,
        _ => false,
    }
}

/// True when the target refused to copy a range of this file.
pub(super) fn refused(big: &Big) -> bool {
    big.copy.as_ref().is_some_and(|c| c.refused.load(Relaxed))
}

/// The target would not copy `big` by ranges (`why`): copy it whole, or stream it (said once).
pub(super) fn instead_of_ranges(sh: &Shared<'_>, big: &Big, why: &str, done: &Sender<Done>) {
    if let Some(c) = &big.copy {
        let n = c.bytes.swap(0, Relaxed);
        sh.stats.bytes_copied.fetch_sub(n, Relaxed);
        sh.stats.bytes_server_side.fetch_sub(n, Relaxed);
    }
    if !sh.s2s_ranges_said.swap(true, Relaxed) {
        let _ = done.send(Done::Warning(format!(
            "{why}: the target refuses server-side copies by range; large files are copied \
             whole by the service where it can, else streamed"
        )));
    }
    copy(sh, &big.entry, done);
}

/// True when a journal says `e` was copied by the target's service in an earlier run of the
/// job and the target still has the file, with the version it was given then: it is not
/// copied again (and, as every server-side copy, verified by reading both sides).
pub(super) fn resumed(sh: &Shared<'_>, resume: &Resume, e: &Entry, done: &Sender<Done>) -> bool {
    let Some(Some(tv)) = resume.copied_file(&e.key, e.size, e.version.as_deref()) else {
        return false;
    };
    if !super::target_unchanged(sh, e, tv) {
        return false;
    }
    sh.stats.files_skipped.fetch_add(1, Relaxed);
    sh.stats.bytes_skipped.fetch_add(e.size, Relaxed);
    let _ = done.send(Done::ServerSide {
        entry: e.clone(),
        tv: None,
        journal: false,
    });
    true
}

/// Copy `e` server-side in one request, or stream it when the pair cannot.
pub(super) fn copy(sh: &Shared<'_>, e: &Entry, done: &Sender<Done>) {
    let r = sh
        .src
        .copy_source(&e.key, e.version.as_deref())
        .and_then(|src| sh.retry(|| sh.dst.copy_from(&e.key, &src, e.size)));
    match r {
        Ok(written) => {
            sh.stats.files_copied.fetch_add(1, Relaxed);
            sh.stats.bytes_copied.fetch_add(e.size, Relaxed);
            sh.stats.bytes_server_side.fetch_add(e.size, Relaxed);
            let _ = done.send(Done::ServerSide {
                entry: e.clone(),
                tv: super::target_version(sh, &e.key, written),
                journal: true,
            });
        }
        Err(StoreError::Unsupported { what, hint }) => {
            if !sh.s2s_said.swap(true, Relaxed) {
                let _ = done.send(Done::Warning(format!(
                    "{what}: no server-side copy ({hint}); such files are streamed through hbcp"
                )));
            }
            copy_inline(sh, e, done);
        }
        Err(err) => fail(sh, done, &e.key, err),
    }
}

/// Before a file copied by ranges is committed: [`StoreError::Changed`] when its source no
/// longer has the version planned (each range's request named it, but a service may ignore
/// that: moto does), so that no mix of two versions is made visible.
pub(super) fn source_unchanged(sh: &Shared<'_>, e: &Entry) -> hbcp_store::Result<()> {
    let Some(planned) = e.version.as_deref() else {
        return Ok(());
    };
    let now = sh.retry(|| sh.src.head(&e.key))?;
    match now {
        Some(n) if n.size == e.size && n.version.as_deref() == Some(planned) => Ok(()),
        _ => Err(StoreError::Changed {
            key: e.key.clone(),
            why: "its version before the commit of the ranges copied by the service is not \
                  the one listed; a rerun copies the new one"
                .into(),
        }),
    }
}
