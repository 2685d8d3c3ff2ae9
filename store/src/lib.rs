//! Storage endpoints for hbcp.
//!
//! Every endpoint (local disk, Azure Blob, ADLS Gen2, S3, GCS) is reached through one small,
//! range-first, blocking trait: [`Store`]. The engine runs plain OS threads, so the trait is
//! synchronous; cloud backends drive their async clients on a private runtime.
//!
//! Keys are relative, `/`-separated and byte-exact (`rs%2C16020%2C1` stays exactly that). A key
//! never starts with `/` and never contains a `.` or `..` component: [`check_key`] enforces it, so
//! nothing read from a listing or a plan can escape a local target root.
//!
//! It must never import another hbcp crate: every stage reaches storage through it.
#![warn(missing_docs, unreachable_pub)]

mod direct;
mod error;
pub mod local;
mod pool;
mod prealloc;
pub mod redact;
pub mod retry;
pub mod synthetic;
pub mod timed;
pub mod url;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use direct::AlignedBuf;
pub use error::{Error, Problem, Result};
pub use pool::Pooled;
pub use url::{Endpoint, Sas, StoreUrl};

/// What a listing entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A file / blob with bytes.
    File,
    /// An empty directory (local) or a directory marker blob (WASB `hdi_isfolder`).
    Dir,
    /// Something that is not copied (a symlink leading out of the root, a fifo, a socket);
    /// the entry's `version` field says why.
    Skipped,
}

/// One entry of a listing, or the answer of [`Store::head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative key under the store root.
    pub key: String,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Version token: the ETag on object stores; on local disk a token made of
    /// modification time, inode and size. A read conditional on it fails if the file changed.
    pub version: Option<String>,
    /// Last modification time, when the store knows it.
    pub modified: Option<SystemTime>,
    /// File or directory.
    pub kind: EntryKind,
}

impl Entry {
    /// True for directory entries.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

/// What a store can do; the engine adapts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Local disk: positional reads/writes, rename; cheap `head`.
    pub is_local: bool,
    /// Parts may be written in several calls at any offsets (`put_part` with sub-slices).
    pub positional_writes: bool,
    /// Largest part a staged upload accepts.
    pub max_part_size: u64,
    /// Most parts a staged upload accepts.
    pub max_parts: u32,
    /// Smallest part size (except the last part).
    pub min_part_size: u64,
    /// A good default number of requests in flight against this store.
    pub default_concurrency: usize,
}

/// Where a server-side copy reads an object from: what a target's service needs to fetch it
/// itself, so that the bytes never pass through hbcp (`--s2s`). Given by the source store
/// ([`Store::copy_source`]), taken by a target of the same kind ([`Store::copy_from`]).
#[derive(Clone, PartialEq, Eq)]
pub struct CopySource {
    /// The service and endpoint (`s3 http://127.0.0.1:5000 us-east-1`, `gcs https://…`,
    /// `azure`): a target copies only from its own kind, and S3 and GCS only from their own
    /// endpoint (the copy is authorised by the target's credential).
    pub service: String,
    /// The bucket or container.
    pub bucket: String,
    /// The object's full name in the bucket.
    pub object: String,
    /// Azure: the blob's URL with the source's SAS, which the target service reads it with.
    /// A secret: never printed (the `Debug` output leaves it out).
    pub url: Option<String>,
    /// Azure: the `x-ms-copy-source-authorization` value (a bearer token) when the source is
    /// read with Entra ID. A secret, like `url`.
    pub auth: Option<String>,
    /// The version of the object the copy must read, checked by the target's service in the
    /// copy request itself (S3 `x-amz-copy-source-if-match`, Azure `x-ms-source-if-match`: the
    /// ETag listed at plan time; GCS `sourceGeneration` and `ifSourceGenerationMatch`: the
    /// generation that ETag had). `None`: whatever version the source has then.
    pub version: Option<String>,
}

impl fmt::Debug for CopySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopySource")
            .field("service", &self.service)
            .field("bucket", &self.bucket)
            .field("object", &self.object)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A staged write of one file: parts written in any order by any thread, then one commit makes
/// the whole file visible at its final key. Until then nothing is visible under that key.
pub trait Upload: Send + Sync + fmt::Debug {
    /// Write part `index` (0-based), which starts at byte `offset` of the final file.
    /// Parts of one upload may be written concurrently.
    fn put_part(&self, index: u32, offset: u64, data: &[u8]) -> Result<()>;
    /// Like [`Upload::put_part`], taking shared ownership of the bytes (no copy where the
    /// store sends them as they are).
    fn put_part_bytes(&self, index: u32, offset: u64, data: bytes::Bytes) -> Result<()> {
        self.put_part(index, offset, &data)
    }
    /// Write part `index` by a server-side copy of `range` of `src` (S3 UploadPartCopy, Azure
    /// Put Block From URL): the target's service reads those bytes itself, none pass through
    /// hbcp. [`Error::Unsupported`] when this upload cannot (another kind or endpoint, or a
    /// service that answers "not implemented"): the caller copies the file another way.
    fn put_part_from(&self, index: u32, src: &CopySource, range: Range<u64>) -> Result<()> {
        let _ = (src, range);
        Err(Error::Unsupported {
            what: format!("server-side copy of part {index}"),
            hint: "this store copies whole objects only".into(),
        })
    }
    /// Make the parts written so far durable, so that a journal record may claim them before
    /// the file is committed (local disk: `fdatasync` of the staging file). Object stores hold
    /// a part durably once it is put, so the default does nothing.
    fn sync_parts(&self) -> Result<()> {
        Ok(())
    }
    /// Make the file visible, whole. Every part must have been written. Returns the version
    /// token of the file just made (the ETag of Put Block List / CompleteMultipartUpload, as
    /// [`Store::head`] will show it) when the commit's answer carries one, else `None`.
    fn commit(&self) -> Result<Option<String>>;
    /// Drop the staged data. Safe to call after a failed commit.
    fn abort(&self) -> Result<()>;
    /// True when this upload found staged data of an earlier run of the same job (so parts a
    /// journal says are durable are really there).
    fn is_resumed(&self) -> bool {
        false
    }
    /// True when part `index` of `len` bytes is known to be staged already by an earlier run of
    /// the same job, so that a journaled range may be trusted without sending it again.
    fn has_part(&self, index: u32, len: u64) -> bool {
        let _ = (index, len);
        self.is_resumed()
    }
    /// True when the store wants the whole file's MD5 before the commit (`--put-md5`).
    fn wants_md5(&self) -> bool {
        false
    }
    /// The whole file's MD5, stored with the commit (only asked for when [`Upload::wants_md5`]).
    fn set_md5(&self, md5: [u8; 16]) {
        let _ = md5;
    }
    /// After a successful [`Upload::commit`]: true when every part of the file was sent by this
    /// upload with a transactional checksum the service checked on arrival, and the commit
    /// named exactly those parts in order (the verifier's `transport` way). False for parts
    /// staged by an earlier run or copied by the service, and for stores that check nothing.
    fn transport_checked(&self) -> bool {
        false
    }
}

/// The condition of [`Store::put_if`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutIf<'a> {
    /// Only if no object has the key: a create.
    Absent,
    /// Only if the object still has this version token (one that [`Store::put_if`] or
    /// [`Store::get_versioned`] returned).
    Version(&'a str),
}

/// Callback that receives listing entries; it may be called from several threads at once.
pub type ListSink<'a> = dyn Fn(Entry) -> Result<()> + Sync + 'a;

/// Callback of [`Store::list_service_md5`]: a key, its size and the service's MD5 of it; it
/// may be called from several threads at once.
pub type Md5Sink<'a> = dyn Fn(&str, u64, [u8; 16]) -> Result<()> + Sync + 'a;

/// A storage endpoint rooted at a prefix. All keys are relative to that root.
pub trait Store: Send + Sync + fmt::Debug {
    /// The endpoint, printable: secrets are never part of it.
    fn describe(&self) -> String;

    /// Capabilities of the endpoint.
    fn caps(&self) -> Caps;

    /// Stream every entry under `prefix` (a key prefix ending in `/`, or `""` for the whole
    /// root) into `sink`, in no particular order. Directory entries are reported only for
    /// empty directories / directory markers. Stops at the first error returned by `sink`.
    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> Result<()>;

    /// Like [`Store::list`], calling `page` with the duration of every listing request (one
    /// LIST page on object stores). Stores without pages report the whole listing as one.
    fn list_paged(
        &self,
        prefix: &str,
        sink: &ListSink<'_>,
        page: &(dyn Fn(Duration) + Sync),
    ) -> Result<()> {
        let t0 = Instant::now();
        let r = self.list(prefix, sink);
        page(t0.elapsed());
        r
    }

    /// Metadata of one key, `None` if it does not exist.
    fn head(&self, key: &str) -> Result<Option<Entry>>;

    /// Read `range` of `key` into `buf` (cleared first). If `version` is given and the object no
    /// longer has that version, fails with [`Error::Changed`]. A short read is an error.
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<()>;

    /// Write a whole small file in one go; visible only when whole.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;

    /// Stream `range` of `key` into `sink`, piece by piece as the bytes arrive, so that no
    /// buffer of the whole range is held (one request on object stores). Same checks as
    /// [`Store::read_range`]: the version, and a short read is an error. When it fails the
    /// sink may already have seen a prefix of the range; the caller resumes after that prefix.
    /// An error returned by the sink stops the read and is returned as it is.
    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let data = self.read_range_bytes(key, range, version)?;
        sink(&data)
    }

    /// Like [`Store::read_range`], returning shared bytes (no copy where the store receives
    /// them that way).
    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<bytes::Bytes> {
        let mut buf = Vec::new();
        self.read_range(key, range, version, &mut buf)?;
        Ok(bytes::Bytes::from(buf))
    }

    /// Like [`Store::put`], taking shared ownership of the bytes. Returns the version token
    /// of the object just written (the ETag of Put Blob / PutObject, as [`Store::head`] will
    /// show it) when the store's answer carries one, else `None`.
    fn put_bytes(&self, key: &str, data: bytes::Bytes) -> Result<Option<String>> {
        self.put(key, &data).map(|()| None)
    }

    /// Start a staged upload of a file of `size` bytes cut into parts of `part_size` bytes.
    /// `job` names the job so that a later resume finds the same staged data.
    fn begin_upload(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> Result<Arc<dyn Upload>>;

    /// Copy `from` to `to` inside this store without sending the bytes through hbcp (a
    /// server-side copy; on local disk a kernel copy). `to` becomes visible only when whole.
    fn copy_within(&self, from: &str, to: &str) -> Result<()> {
        Err(Error::Unsupported {
            what: format!("server-side copy {from} -> {to}"),
            hint: "the data is sent again instead".into(),
        })
    }

    /// Where the service of a target of the same kind can read `key` itself (a server-side
    /// copy, `--s2s`), pinned to `version` (the version token the listing gave) when given,
    /// so that a copy of a source changed since fails with [`Error::Changed`] rather than
    /// copying another version; [`Error::Unsupported`] when this store cannot hand out such a
    /// source (local disk, an Azure source without a SAS), the reason in its hint.
    fn copy_source(&self, key: &str, version: Option<&str>) -> Result<CopySource> {
        let _ = version;
        Err(Error::Unsupported {
            what: format!("server-side copy from {key}"),
            hint: "this store cannot be read by another service".into(),
        })
    }

    /// Write `key` (`size` bytes) by a server-side copy of `src`, without sending its bytes
    /// through hbcp; `key` becomes visible only when whole. [`Error::Unsupported`] when this
    /// store cannot copy from that source (another kind, another endpoint, too large, or a
    /// service that refuses the request as not implemented): the caller streams it instead.
    /// Returns the version token of the copy (as [`Store::head`] will show it) when the
    /// service's answer carries one, else `None`.
    fn copy_from(&self, key: &str, src: &CopySource, size: u64) -> Result<Option<String>> {
        let _ = (src, size);
        Err(Error::Unsupported {
            what: format!("server-side copy to {key}"),
            hint: "the data is streamed instead".into(),
        })
    }

    /// True when this store's uploads take parts copied by the service from a source of its
    /// kind ([`Upload::put_part_from`]), so that a large file is copied server-side range by
    /// range, each range journaled as streamed ones are.
    fn copies_ranges(&self) -> bool {
        false
    }

    /// Write a small object only if `cond` holds, checked by the service in the same request
    /// (a lock's create and lease renewal): `Ok(Some(token))` when written, with the token of
    /// the new version for a later [`PutIf::Version`]; `Ok(None)` when the condition did not
    /// hold. Stores that cannot do it say [`Error::Unsupported`].
    fn put_if(&self, key: &str, data: &[u8], cond: PutIf<'_>) -> Result<Option<String>> {
        let _ = (data, cond);
        Err(Error::Unsupported {
            what: format!("conditional write of {key}"),
            hint: "this store cannot hold a lock".into(),
        })
    }

    /// A whole small object and its version token for [`PutIf::Version`]; `None` if absent.
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        Err(Error::Unsupported {
            what: format!("versioned read of {key}"),
            hint: "this store cannot hold a lock".into(),
        })
    }

    /// Create an (empty) directory or directory marker at `key`.
    fn make_dir(&self, key: &str) -> Result<()>;

    /// Delete one key. Deleting a key that does not exist is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// The Content-MD5 the store keeps for `key` (Azure with `--put-md5`), if any.
    fn content_md5(&self, key: &str) -> Result<Option<[u8; 16]>> {
        let _ = key;
        Ok(None)
    }

    /// The MD5 the service itself computed over the bytes it stored at `key`, where it keeps
    /// one (Azure: the Content-MD5 of a blob written by one Put Blob; GCS: `md5Hash`), for
    /// the verifier's `service` way: proof without reading the object back. `None` when the
    /// store keeps none for this object (or there is no object): the verifier reads it back.
    fn service_md5(&self, key: &str) -> Result<Option<[u8; 16]>> {
        let _ = key;
        Ok(None)
    }

    /// The service MD5s of the files under `prefix` (as [`Store::service_md5`] gives each) from
    /// the listing itself, a LIST page per thousands of files instead of a HEAD each:
    /// `sink(key, size, md5)` for every file whose listing carries one. `Ok(false)` when this
    /// store's listing carries none (the default): the verifier then asks file by file.
    fn list_service_md5(&self, prefix: &str, sink: &Md5Sink<'_>) -> Result<bool> {
        let _ = (prefix, sink);
        Ok(false)
    }

    /// True when every object written whole by [`Store::put`] / [`Store::put_bytes`] gets a
    /// [`Store::service_md5`]: the engine then computes the MD5 of those files as it reads
    /// them (the same pass), and the verifier compares it with the service's.
    fn puts_have_service_md5(&self) -> bool {
        false
    }

    /// What the retry policy saw on this endpoint's requests (throttle answers, retries), for
    /// stores whose every request goes through [`retry::Tries`]; `None` for stores that send no
    /// requests (local disk). Wrappers show their inner store's.
    fn retry_tally(&self) -> Option<&retry::Tally> {
        None
    }

    /// Make everything committed so far durable (local: `syncfs`). Object stores are durable
    /// at commit, so the default does nothing.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// Check that a key is relative, normalised and cannot escape a root.
pub fn check_key(key: &str) -> Result<()> {
    let bad = |why: &str| Error::BadKey {
        key: key.to_string(),
        why: why.to_string(),
    };
    if key.is_empty() {
        return Err(bad("empty key"));
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(bad("absolute path"));
    }
    if key.contains('\0') {
        return Err(bad("NUL byte"));
    }
    for comp in key.split('/') {
        match comp {
            "" => return Err(bad("empty path component")),
            "." | ".." => return Err(bad("'.' or '..' component")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_are_refused() {
        for k in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            "a\0b",
        ] {
            assert!(check_key(k).is_err(), "{k:?} should be refused");
        }
        for k in [
            "a",
            "data/default/t/r/f/0123",
            "WALs/rs%2C16020%2C1",
            "a b/#1",
            "ü/=x",
        ] {
            check_key(k).unwrap();
        }
    }
}
