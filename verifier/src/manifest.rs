//! The manifest: one record per file (key, size, checksum) plus a header that says what the
//! job was. The engine appends to a local spill while it copies (memory stays flat); the
//! completion manifest is written to the target at [`COMPLETION_KEY`] last, and only when
//! verification passed. HBase ignores the `.hbcp/` folder.

use std::io::BufWriter;
use std::path::Path;

use hbcp_planner::records::{RecordReader, RecordWriter};
use hbcp_store::{Entry, EntryKind};
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
    /// Source modification time, seconds since the epoch (for replication lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<f64>,
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
            m: e.modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
        }
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
            m: None,
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
    Ok(RecordWriter::create(path, header)?)
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
    Ok(w.finish()?)
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
