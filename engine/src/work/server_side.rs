//! Server-side copies (`--s2s auto`): when source and target are the same kind of store, the
//! target's service copies a file from the source itself (S3 CopyObject, GCS rewrite, Azure
//! Copy Blob From URL) and its bytes never pass through hbcp. A file the pair cannot copy that
//! way (another endpoint, no SAS on an Azure source, too large for one request, a service that
//! answers "not implemented") is streamed as usual, and the first such file is named once.
//!
//! No checksum is taken on the way (no byte is read): the manifest marks the file, and the
//! verification hashes the source and the target both, so it never trusts the service's copy.

use std::sync::atomic::Ordering::Relaxed;

use crossbeam_channel::Sender;
use hbcp_store::{Entry, Error as StoreError};

use super::{Done, Shared, copy_inline, fail};

/// Copy `e` server-side, or stream it when the pair cannot.
pub(super) fn copy(sh: &Shared<'_>, e: &Entry, done: &Sender<Done>, buf: &mut Vec<u8>) {
    let r = sh
        .src
        .copy_source(&e.key)
        .and_then(|src| sh.retry(|| sh.dst.copy_from(&e.key, &src, e.size)));
    match r {
        Ok(()) => {
            sh.stats.files_copied.fetch_add(1, Relaxed);
            sh.stats.bytes_copied.fetch_add(e.size, Relaxed);
            sh.stats.bytes_server_side.fetch_add(e.size, Relaxed);
            let _ = done.send(Done::ServerSide(e.clone()));
        }
        Err(StoreError::Unsupported { what, hint }) => {
            if !sh.s2s_said.swap(true, Relaxed) {
                let _ = done.send(Done::Warning(format!(
                    "{what}: no server-side copy ({hint}); such files are streamed through hbcp"
                )));
            }
            copy_inline(sh, e, done, buf);
        }
        Err(err) => fail(sh, done, &e.key, err),
    }
}
