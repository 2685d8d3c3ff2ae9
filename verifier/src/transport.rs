//! The `transport` way (issue 19): a file written in parts whose every part the target service
//! checked on arrival against a checksum hbcp computed over the very bytes it sent (Azure's
//! `x-ms-content-crc64` on each Put Block), committed as exactly those parts in order, is
//! proven without reading it back, by one HEAD: the object must still carry the ETag that the
//! commit returned (any later write, by hbcp or anyone, changes it) and the source's size.
//!
//! Only a copy knows what it sent: the ETag comes from the copy's own entries
//! (`ManifestEntry::t`). `hbcp verify` later has no such entry, so such a file is proven the
//! way any other is (a service MD5 where the service keeps one, else reading it back), which is
//! how a byte flipped behind hbcp's back after the copy is found.

use hbcp_state::manifest::ManifestEntry;
use hbcp_store::{EntryKind, Store};

use crate::check::{Params, VerifyMode};

/// True when `e` is proven by the `transport` way: the default mode, a copy's entry with the
/// commit's ETag, and a target object that still has that ETag and the source's size. A
/// failed HEAD proves nothing (the caller reads the file back, which names what is wrong).
pub(crate) fn proven(dst: &dyn Store, e: &ManifestEntry, p: &Params) -> bool {
    let Some(etag) = e.t.as_deref() else {
        return false;
    };
    if p.mode != VerifyMode::Checksum || e.d || e.c {
        return false;
    }
    matches!(
        dst.head(&e.k),
        Ok(Some(got)) if got.kind == EntryKind::File
            && got.size == e.s
            && got.version.as_deref() == Some(etag)
    )
}

#[cfg(test)]
mod tests {
    use std::fs;

    use hbcp_store::local::LocalStore;

    use super::*;

    fn params(mode: VerifyMode) -> Params {
        Params {
            mode,
            workers: 1,
            range_size: 8,
            chunk: 8,
            hbase: None,
        }
    }

    #[test]
    fn only_the_commits_etag_and_the_sources_size_under_checksum_prove_a_file() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), b"twelve bytes").unwrap();
        let dst = LocalStore::new(d.path().into());
        let now = dst.head("f").unwrap().unwrap();
        let tag = now.version.clone();
        let e = ManifestEntry::file(&now, 0).with_transport(tag.clone());
        let checksum = params(VerifyMode::Checksum);
        assert!(proven(&dst, &e, &checksum));
        // Not under reread (always read back) nor deep; not without the commit's ETag.
        assert!(!proven(&dst, &e, &params(VerifyMode::Reread)));
        assert!(!proven(&dst, &e, &params(VerifyMode::Deep)));
        assert!(!proven(&dst, &e.clone().with_transport(None), &checksum));
        // Another ETag (the object was written since), another size, no object.
        assert!(!proven(
            &dst,
            &e.clone().with_transport(Some("other".into())),
            &checksum
        ));
        let mut short = e.clone();
        short.s += 1;
        assert!(!proven(&dst, &short, &checksum));
        fs::remove_file(d.path().join("f")).unwrap();
        assert!(!proven(&dst, &e, &checksum));
    }
}
