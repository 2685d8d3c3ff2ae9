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
    mut entries: impl Iterator<Item = ManifestEntry>,
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
        let pushed = entries.try_for_each(|e| sorted.push(e));
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::ops::Range;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use hbcp_state::checksum::{hash_file, md5_file};
    use hbcp_store::local::LocalStore;
    use hbcp_store::{Caps, Entry, ListSink, Md5Sink, Upload};

    use super::*;
    use crate::check::{Params, SourceCheck, VerifyMode, verify_entries_listing};

    /// A local target whose listing carries the MD5s given, counting every per-file request.
    #[derive(Debug)]
    struct Listing {
        inner: LocalStore,
        md5s: Vec<(String, u64, [u8; 16])>,
        per_file: AtomicU64,
    }

    impl Store for Listing {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn caps(&self) -> Caps {
            self.inner.caps()
        }
        fn list(&self, prefix: &str, sink: &ListSink<'_>) -> hbcp_store::Result<()> {
            self.inner.list(prefix, sink)
        }
        fn head(&self, key: &str) -> hbcp_store::Result<Option<Entry>> {
            self.per_file.fetch_add(1, Ordering::Relaxed);
            self.inner.head(key)
        }
        fn read_range(
            &self,
            key: &str,
            range: Range<u64>,
            version: Option<&str>,
            buf: &mut Vec<u8>,
        ) -> hbcp_store::Result<()> {
            self.per_file.fetch_add(1, Ordering::Relaxed);
            self.inner.read_range(key, range, version, buf)
        }
        fn put(&self, key: &str, data: &[u8]) -> hbcp_store::Result<()> {
            self.inner.put(key, data)
        }
        fn begin_upload(
            &self,
            key: &str,
            size: u64,
            part_size: u64,
            job: &str,
        ) -> hbcp_store::Result<Arc<dyn Upload>> {
            self.inner.begin_upload(key, size, part_size, job)
        }
        fn make_dir(&self, key: &str) -> hbcp_store::Result<()> {
            self.inner.make_dir(key)
        }
        fn delete(&self, key: &str) -> hbcp_store::Result<()> {
            self.inner.delete(key)
        }
        fn list_service_md5(&self, prefix: &str, sink: &Md5Sink<'_>) -> hbcp_store::Result<bool> {
            for (k, size, md5) in self.md5s.iter().filter(|m| m.0.starts_with(prefix)) {
                sink(k, *size, *md5)?;
            }
            Ok(true)
        }
    }

    #[test]
    fn only_a_listed_md5_and_size_equal_to_the_sources_prove_a_file_without_a_request() {
        let (a, b, scratch) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        fs::create_dir_all(a.path().join("d")).unwrap();
        fs::create_dir_all(b.path().join("d")).unwrap();
        let src = LocalStore::new(a.path().into());
        // same: listed right; flipped: a byte differs, and the listing says so (the service's
        // MD5 is of what it stores); unlisted: no MD5 in the listing; short: listed with
        // the source's MD5 but another size.
        let files = [
            ("d/same", "the same bytes", "the same bytes"),
            ("d/flipped", "one byte flips", "one byte flipS"),
            ("d/unlisted", "never listed", "never listed"),
            ("d/short", "a short one", "a short on"),
        ];
        let mut entries = Vec::new();
        let mut md5s = Vec::new();
        for (k, at_src, at_dst) in files {
            fs::write(a.path().join(k), at_src).unwrap();
            fs::write(b.path().join(k), at_dst).unwrap();
            let e = src.head(k).unwrap().unwrap();
            let h = hash_file(&src, k, e.size, 8, None).unwrap();
            let m = md5_file(&src, k, e.size, None).unwrap();
            entries.push(ManifestEntry::file(&e, h).with_md5(Some(m)));
            let stored = LocalStore::new(b.path().into());
            let size = at_dst.len() as u64;
            match k {
                "d/unlisted" => {}
                "d/short" => md5s.push((k.to_string(), size, m)),
                _ => md5s.push((
                    k.to_string(),
                    size,
                    md5_file(&stored, k, size, None).unwrap(),
                )),
            }
        }
        let dst = Listing {
            inner: LocalStore::new(b.path().into()),
            md5s,
            per_file: AtomicU64::new(0),
        };
        let p = Params {
            mode: VerifyMode::Checksum,
            workers: 2,
            range_size: 8,
            chunk: 3,
            hbase: None,
        };
        let prefixes = ["d/".to_string()];
        let target = TargetListing {
            prefixes: &prefixes,
            scratch: scratch.path(),
        };
        let out = verify_entries_listing(
            &dst,
            SourceCheck::None,
            Some(target),
            entries.clone().into_iter(),
            &p,
            &|_| {},
        )
        .unwrap();
        let mut found: Vec<String> = out.mismatches.iter().map(|m| m.to_string()).collect();
        found.sort();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("differs: d/flipped"), "{found:?}");
        assert!(found[1].starts_with("short: d/short"), "{found:?}");
        // `same` by the listing; `unlisted` read back; the two faults proven by nothing.
        assert_eq!(
            (out.ways.service, out.ways.reread),
            (1, 1),
            "{:?}",
            out.ways
        );
        let with_listing = dst.per_file.swap(0, Ordering::Relaxed);

        // Without the listing every file costs requests of its own: `same` is the difference.
        let out = verify_entries_listing(
            &dst,
            SourceCheck::None,
            None,
            entries.into_iter(),
            &p,
            &|_| {},
        )
        .unwrap();
        assert_eq!(out.mismatches.len(), 2);
        assert_eq!(
            (out.ways.service, out.ways.reread),
            (0, 2),
            "{:?}",
            out.ways
        );
        let without = dst.per_file.load(Ordering::Relaxed);
        let same_alone = 1 + 2; // a HEAD and its two ranges of 8 bytes, read back
        assert_eq!(
            without - with_listing,
            same_alone,
            "{without} vs {with_listing}"
        );
    }
}
