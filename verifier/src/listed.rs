//! The `service` way from the target's listing (issue 19): where the target's listing carries
//! the MD5 its service computed over each stored object ([`Store::list_service_md5`]: Azure's
//! List Blobs, S3's ListObjectsV2 ETags), a copied file whose listed size and MD5 equal what
//! hbcp computed from the source in the copy's own read is proven without any request of its
//! own: a LIST page per thousands of files instead of a HEAD each. The copied entries and the
//! listing are both sorted on disk and merged by key, so memory stays flat at any file count.
//! A file the listing does not prove goes the per-file way (a HEAD, then a read back), which
//! names the difference.

use std::path::Path;
use std::sync::Mutex;

use hbcp_state::extsort::{DEFAULT_BATCH, ExternalSort};
use hbcp_state::manifest::ManifestEntry;
use hbcp_store::Store;

use crate::Result;
use crate::check::push_sorted;

/// Where to list the target: the folders the copy wrote (`""` for the whole root), and where
/// the sorts spill.
#[derive(Debug, Clone, Copy)]
pub struct TargetListing<'a> {
    /// What to list (the prefixes the copy listed at the source).
    pub prefixes: &'a [String],
    /// Where the sorts spill.
    pub scratch: &'a Path,
}

/// A listed target file: key, size, the service's MD5.
type Listed = (String, u64, [u8; 16]);

/// Copied entries, each with `true` when the target's listing proves it.
pub(crate) type Joined<'a> = Box<dyn Iterator<Item = Result<(ManifestEntry, bool)>> + Send + 'a>;

/// Sort `entries` on disk while the target is listed under `t.prefixes`, and join them by key.
/// When the target's listing carries no MD5, or the listing fails (then with a note), no
/// entry is proven by it.
pub(crate) fn join(
    dst: &dyn Store,
    t: TargetListing<'_>,
    entries: impl Iterator<Item = ManifestEntry>,
    notes: &mut Vec<String>,
) -> Result<Joined<'static>> {
    let sort_failed = Mutex::new(None);
    let listed = Mutex::new(ExternalSort::<Listed>::new(
        t.scratch,
        DEFAULT_BATCH,
        |a, b| a.0.cmp(&b.0),
    ));
    let mut sorted = hbcp_state::manifest::sorter(t.scratch);
    let (pushed, list_result) = std::thread::scope(|s| {
        let (listed, sort_failed) = (&listed, &sort_failed);
        let lister = s.spawn(move || -> hbcp_store::Result<bool> {
            let mut carried = false;
            for prefix in t.prefixes {
                carried |= dst.list_service_md5(prefix, &|k, size, md5| {
                    push_sorted(listed, sort_failed, (k.to_string(), size, md5))
                })?;
            }
            Ok(carried)
        });
        let pushed = entries.map(|e| sorted.push(e)).collect::<Result<(), _>>();
        (pushed, lister.join().expect("target lister thread"))
    });
    pushed?;
    if let Some(e) = sort_failed.lock().unwrap().take() {
        return Err(e.into());
    }
    let sorted = sorted.finish()?;
    let listing = match list_result {
        Ok(true) => listed.into_inner().unwrap().finish()?,
        Ok(false) => return Ok(Box::new(sorted.map(|e| Ok((e?, false))))),
        Err(e) => {
            notes.push(format!(
                "the target could not be listed for the MD5s its service keeps ({e}); each \
                 file was checked on its own instead"
            ));
            return Ok(Box::new(sorted.map(|e| Ok((e?, false)))));
        }
    };
    let mut listing = listing.peekable();
    Ok(Box::new(sorted.map(move |e| {
        let e = e?;
        // Skip what sorts before this key (a key the spill holds twice is looked up twice).
        while let Some(l) = listing.next_if(|l| l.as_ref().map_or(true, |l| l.0 < e.k)) {
            l?;
        }
        let proven = !e.d
            && !e.c
            && e.md5().is_some()
            && matches!(listing.peek(), Some(Ok(l)) if l.0 == e.k && l.1 == e.s && Some(l.2) == e.md5());
        Ok((e, proven))
    })))
}
