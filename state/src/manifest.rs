//! The manifest: one record per file (key, size, checksum) plus a header that says what the
//! job was. The engine appends to a local spill while it copies (memory stays flat); the
//! completion manifest is written to the target at [`COMPLETION_KEY`] last, and only when
//! verification passed. HBase ignores the `.hbcp/` folder.
//!
//! Memory stays flat at any file count: the spill is in completion order, so the completion
//! manifest is the spill through an external sort ([`write_sorted`]), written to a local file
//! and sent in parts ([`upload_file`]); manifests at a store are read as a stream
//! ([`read_store`]).

use std::io::{BufWriter, Read};
use std::path::Path;

use crate::extsort::{DEFAULT_BATCH, ExternalSort};
use crate::records::{RecordReader, RecordWriter};
use hbcp_store::{Entry, EntryKind, Store};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Format name of manifests.
pub const MANIFEST_FORMAT: &str = "hbcp-manifest";
/// Format version.
pub const MANIFEST_VERSION: u32 = 1;
/// Where the completion manifest lives at the target root.
pub const COMPLETION_KEY: &str = ".hbcp/manifest.json.zst";

/// Header of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ManifestHeader {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// Source URL (redacted).
    pub source: String,
    /// Target URL (redacted).
    pub target: String,
    /// Range size of the checksums.
    pub range_size: u64,
    /// When the job started.
    pub started: String,
    /// When it was verified (completion manifests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Files (completion manifests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Bytes (completion manifests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl ManifestHeader {
    /// A header for a job.
    pub fn new(source: &str, target: &str, range_size: u64, started: &str) -> Self {
        ManifestHeader {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            source: source.into(),
            target: target.into(),
            range_size,
            started: started.into(),
            ..Default::default()
        }
    }
}

/// One file (or empty directory) of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestEntry {
    /// Key.
    pub k: String,
    /// Size.
    pub s: u64,
    /// Checksum (16 hex digits), absent for directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<String>,
    /// Source version token at copy time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
    /// An empty directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub d: bool,
    /// Written to the target by this run (as opposed to found there already).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub n: bool,
    /// Copied by the target's service (`--s2s`): no checksum was taken on the way, so the
    /// verification hashes the source as well as the target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub c: bool,
    /// Source modification time, seconds since the epoch (for replication lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<f64>,
    /// The whole file's MD5 (32 hex digits), computed as the source was read, when the target
    /// service computes one too ([`hbcp_store::Store::service_md5`]): the verifier's `service`
    /// way compares the two instead of reading the target back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// The target's ETag as the commit of a staged upload returned it, when the service checked
    /// every part on arrival (a transactional checksum) and the commit named exactly those parts
    /// (the store's `Upload::transport_checked`): the verifier's `transport` way proves the file
    /// by a HEAD showing this ETag and the source's size, instead of reading it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
}

impl ManifestEntry {
    /// A file entry.
    pub fn file(e: &Entry, checksum: u64) -> Self {
        ManifestEntry {
            k: e.key.clone(),
            s: e.size,
            h: Some(crate::checksum::hex(checksum)),
            v: e.version.clone(),
            d: false,
            n: false,
            c: false,
            m: e.modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
            md5: None,
            t: None,
        }
    }

    /// With the MD5 of the source bytes, as read for the copy.
    pub fn with_md5(mut self, md5: Option<[u8; 16]>) -> Self {
        self.md5 = md5.map(|m| m.iter().map(|b| format!("{b:02x}")).collect());
        self
    }

    /// The MD5 of [`ManifestEntry::with_md5`], if any (and well formed).
    pub fn md5(&self) -> Option<[u8; 16]> {
        let h = self.md5.as_deref()?;
        let mut out = [0u8; 16];
        if h.len() != 32 || !h.is_ascii() {
            return None;
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(out)
    }

    /// With the ETag of a commit whose parts the service checked on arrival (see [`Self::t`]).
    pub fn with_transport(mut self, etag: Option<String>) -> Self {
        self.t = etag;
        self
    }

    /// Mark as written by this run.
    pub fn written(mut self, yes: bool) -> Self {
        self.n = yes;
        self
    }

    /// A directory entry.
    pub fn dir(key: &str) -> Self {
        ManifestEntry {
            k: key.into(),
            s: 0,
            h: None,
            v: None,
            d: true,
            n: true,
            c: false,
            m: None,
            md5: None,
            t: None,
        }
    }

    /// The checksum as a number.
    pub fn checksum(&self) -> Option<u64> {
        self.h
            .as_deref()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
    }

    /// The entry as a listing entry (kind and size).
    pub fn kind(&self) -> EntryKind {
        if self.d {
            EntryKind::Dir
        } else {
            EntryKind::File
        }
    }
}

/// A manifest being written to a local file.
pub type ManifestWriter = RecordWriter<BufWriter<std::fs::File>>;

/// Create a manifest file.
pub fn create(path: &Path, header: &ManifestHeader) -> Result<ManifestWriter> {
    RecordWriter::create(path, header)
}

/// Encode a manifest in memory (for the completion manifest at the target).
pub fn encode(
    header: &ManifestHeader,
    entries: impl IntoIterator<Item = ManifestEntry>,
) -> Result<Vec<u8>> {
    let mut w = RecordWriter::new(Vec::new(), COMPLETION_KEY, header)?;
    for e in entries {
        w.write(&e)?;
    }
    w.finish()
}

/// Read a manifest stream, calling `f` for every entry; returns the header.
pub fn read<R: std::io::Read>(
    r: R,
    display: &str,
    mut f: impl FnMut(ManifestEntry) -> Result<()>,
) -> Result<ManifestHeader> {
    let (h, mut rd): (ManifestHeader, _) =
        RecordReader::new(r, display, MANIFEST_FORMAT, MANIFEST_VERSION)?;
    while let Some(e) = rd.next_record::<ManifestEntry>()? {
        f(e)?;
    }
    Ok(h)
}

/// Manifest entries in key order, with a bounded amount of memory (runs spill under
/// `scratch`).
pub fn sorter(scratch: &Path) -> ExternalSort<ManifestEntry> {
    ExternalSort::new(scratch, DEFAULT_BATCH, |a, b| a.k.cmp(&b.k))
}

/// Write the entries of the manifest file `spill` to a new manifest file `out`, sorted by key,
/// with keys renamed by `rename` (snapshot publishing) and the header edited by `header`;
/// returns the number of entries.
pub fn write_sorted(
    spill: &Path,
    scratch: &Path,
    out: &Path,
    rename: &dyn Fn(&str) -> Option<String>,
    header: impl FnOnce(&mut ManifestHeader),
) -> Result<u64> {
    let mut sort = sorter(scratch);
    let file = std::fs::File::open(spill).map_err(|source| crate::Error::Io {
        path: spill.display().to_string(),
        source,
    })?;
    let mut h = read(file, &spill.display().to_string(), |mut e| {
        if let Some(v) = rename(&e.k) {
            e.k = v;
        }
        sort.push(e)
    })?;
    header(&mut h);
    let mut w = create(out, &h)?;
    for e in sort.finish()? {
        w.write(&e?)?;
    }
    let n = w.records();
    w.finish()?;
    Ok(n)
}

/// Take a completion manifest away, durably: a target about to be written, or one that did
/// not verify, must not carry a manifest that says it is complete. Done before the first
/// write of a run, so a crash at any later moment leaves no manifest behind; true when there
/// was one.
pub fn withdraw(dst: &dyn Store, key: &str) -> Result<bool> {
    if dst.head(key)?.is_none() {
        return Ok(false);
    }
    dst.delete(key)?;
    dst.flush()?;
    Ok(true)
}

/// Send the local file `path` to `key` of `dst`: in one put when small, else as a staged
/// upload in parts (so a manifest of millions of files is never held in memory), visible only
/// when whole.
pub fn upload_file(dst: &dyn Store, key: &str, path: &Path, job: &str) -> Result<()> {
    let io = |source| crate::Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let caps = dst.caps();
    let part = (8u64 << 20)
        .max(caps.min_part_size)
        .max(size.div_ceil(caps.max_parts.max(1) as u64))
        .min(caps.max_part_size.max(1));
    let mut buf = Vec::new();
    if size <= part {
        f.read_to_end(&mut buf).map_err(io)?;
        dst.put(key, &buf)?;
        return Ok(());
    }
    let up = dst.begin_upload(key, size, part, job)?;
    let sent = (|| -> Result<()> {
        let mut at = 0u64;
        let mut idx = 0u32;
        while at < size {
            let n = part.min(size - at);
            buf.resize(n as usize, 0);
            f.read_exact(&mut buf).map_err(io)?;
            up.put_part(idx, at, &buf)?;
            at += n;
            idx += 1;
        }
        up.commit()?;
        Ok(())
    })();
    if sent.is_err() {
        let _ = up.abort();
    }
    sent
}

/// Reads a key of a store as a stream, a few MiB at a time.
pub struct StoreReader<'a> {
    store: &'a dyn Store,
    key: &'a str,
    size: u64,
    at: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> StoreReader<'a> {
    /// A reader of the `size` bytes at `key`.
    pub fn new(store: &'a dyn Store, key: &'a str, size: u64) -> Self {
        StoreReader {
            store,
            key,
            size,
            at: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for StoreReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.at >= self.size {
                return Ok(0);
            }
            let end = (self.at + (4 << 20)).min(self.size);
            self.store
                .read_range(self.key, self.at..end, None, &mut self.buf)
                .map_err(std::io::Error::other)?;
            if self.buf.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{}: shorter than its listed size", self.key),
                ));
            }
            self.at += self.buf.len() as u64;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read the manifest at `key` of a store as a stream (`size` bytes), calling `f` for every
/// entry; returns the header.
pub fn read_store(
    store: &dyn Store,
    key: &str,
    size: u64,
    f: impl FnMut(ManifestEntry) -> Result<()>,
) -> Result<ManifestHeader> {
    read(StoreReader::new(store, key, size), key, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hbcp_store::local::LocalStore;

    fn entry(k: &str, h: u64) -> ManifestEntry {
        ManifestEntry {
            k: k.into(),
            s: h,
            h: Some(crate::checksum::hex(h)),
            v: None,
            d: false,
            n: true,
            c: false,
            m: None,
            md5: None,
            t: None,
        }
    }

    #[test]
    fn a_spill_in_completion_order_becomes_a_sorted_renamed_manifest_at_the_target() {
        let d = tempfile::tempdir().unwrap();
        let spill = d.path().join("spill.zst");
        let header = ManifestHeader::new("src", "dst", 64, "t0");
        let mut w = create(&spill, &header).unwrap();
        let keys = ["b/2", ".tmp/s/m", "a/1", "c/3"];
        for (i, k) in keys.iter().enumerate() {
            w.write(&entry(k, i as u64)).unwrap();
        }
        w.finish().unwrap();
        let out = d.path().join("out.zst");
        let rename = |k: &str| k.strip_prefix(".tmp/").map(|r| format!("z/{r}"));
        let n = write_sorted(&spill, d.path(), &out, &rename, |h| h.files = Some(4)).unwrap();
        assert_eq!(n, 4);
        let root = d.path().join("target");
        let store = LocalStore::new(root.clone());
        upload_file(&store, COMPLETION_KEY, &out, "job").unwrap();
        let size = std::fs::metadata(root.join(COMPLETION_KEY)).unwrap().len();
        let mut got = Vec::new();
        let h = read_store(&store, COMPLETION_KEY, size, |e| {
            got.push((e.k, e.s));
            Ok(())
        })
        .unwrap();
        assert_eq!(h.files, Some(4));
        assert_eq!(
            got,
            [
                ("a/1".into(), 2),
                ("b/2".into(), 0),
                ("c/3".into(), 3),
                ("z/s/m".into(), 1)
            ]
        );
    }

    #[test]
    fn a_file_larger_than_a_part_is_sent_in_parts_and_arrives_whole() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("big");
        // 8 MiB parts: two and a bit.
        let data: Vec<u8> = (0..(17u32 << 20) + 5)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let root = d.path().join("target");
        let store = LocalStore::new(root.clone());
        upload_file(&store, ".hbcp/big", &path, "job").unwrap();
        assert!(std::fs::read(root.join(".hbcp/big")).unwrap() == data);
        // Nothing staged is left behind.
        let staging = root.join(".hbcp/staging");
        assert!(!staging.exists() || std::fs::read_dir(staging).unwrap().next().is_none());
    }
}
