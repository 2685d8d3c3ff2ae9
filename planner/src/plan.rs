//! The plan file: every entry of a job, written once and executed by `hbcp run`.
//!
//! A plan is a framed record file ([`hbcp_state::records`], format `hbcp-plan`, version
//! [`PLAN_VERSION`]). Its header names source, target (both redacted: a plan never holds a
//! secret — each machine takes credentials from its own environment), range size and
//! selection; each record is one entry. Tasks are derived from the entries by the split
//! arithmetic, so the plan stays small and deterministic.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use hbcp_store::{Entry, EntryKind};
use serde::{Deserialize, Serialize};

use hbcp_state::range_count;
use hbcp_state::records::{RecordReader, RecordWriter};

use crate::Result;

/// The plan format name.
pub const PLAN_FORMAT: &str = "hbcp-plan";
/// The plan format version this build reads and writes.
pub const PLAN_VERSION: u32 = 1;

/// The smallest range size a plan may cut files at (`--range-size`'s lower bound).
pub const MIN_RANGE_SIZE: u64 = 4096;

/// Header of a plan file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanHeader {
    /// Always [`PLAN_FORMAT`].
    pub format: String,
    /// Always [`PLAN_VERSION`].
    pub version: u32,
    /// Source URL (redacted).
    pub source: String,
    /// Target URL (redacted).
    pub target: String,
    /// Range size used to cut files.
    pub range_size: u64,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// When the plan was made (RFC 3339).
    pub created: String,
    /// The HBase selection (`--table`, `--snapshot`, ranges, `--layout`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<crate::SelectSpec>,
    /// The HBase rules applied to a whole-root plan (`Some(true)`: WALs included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hbase_wals: Option<bool>,
}

impl PlanHeader {
    /// The selection as it enters the job identity.
    pub fn identity(&self) -> Vec<String> {
        let mut v = self.excludes.clone();
        if let Some(w) = self.hbase_wals {
            v.push(format!("\0hbase wals={w}"));
        }
        if let Some(s) = &self.select {
            v.extend(s.describe());
        }
        v
    }
}

/// One entry of a plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanEntry {
    /// Key.
    pub k: String,
    /// Size.
    pub s: u64,
    /// Version token seen at listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
    /// Modification time, nanoseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<u128>,
    /// A directory entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub d: bool,
    /// Source keys, when the entry is read from another key than the one it is written to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub o: Vec<String>,
}

impl From<&Entry> for PlanEntry {
    fn from(e: &Entry) -> Self {
        PlanEntry {
            k: e.key.clone(),
            s: e.size,
            v: e.version.clone(),
            m: e.modified
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos()),
            d: e.kind == EntryKind::Dir,
            o: Vec::new(),
        }
    }
}

impl From<PlanEntry> for Entry {
    fn from(p: PlanEntry) -> Self {
        Entry {
            key: p.k,
            size: p.s,
            version: p.v,
            modified: p
                .m
                .map(|n| UNIX_EPOCH + Duration::from_nanos(n.min(u64::MAX as u128) as u64)),
            kind: if p.d { EntryKind::Dir } else { EntryKind::File },
        }
    }
}

/// What a plan holds, for the printed summary.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Files.
    pub files: u64,
    /// Empty directories.
    pub dirs: u64,
    /// Bytes.
    pub bytes: u64,
    /// Copy tasks (ranges of large files plus whole small files).
    pub tasks: u64,
    /// Largest file.
    pub largest: u64,
    /// HBase tables seen (`data/NS/TABLE`), at most a few thousand kept for the count.
    pub tables: u64,
    #[serde(skip)]
    table_names: BTreeSet<String>,
}

impl Summary {
    /// Account for one entry.
    pub fn add(&mut self, e: &Entry, range_size: u64) {
        if e.kind == EntryKind::Dir {
            self.dirs += 1;
            return;
        }
        self.files += 1;
        self.bytes += e.size;
        self.tasks += range_count(e.size, range_size).max(1);
        self.largest = self.largest.max(e.size);
        if let Some(rest) = e.key.strip_prefix("data/") {
            let mut it = rest.splitn(3, '/');
            if let (Some(ns), Some(t), Some(_)) = (it.next(), it.next(), it.next()) {
                if self.table_names.len() < 100_000 && self.table_names.insert(format!("{ns}:{t}"))
                {
                    self.tables += 1;
                }
            }
        }
    }
}

/// Writes a plan.
pub struct PlanWriter {
    inner: RecordWriter<std::io::BufWriter<std::fs::File>>,
    summary: Summary,
    range_size: u64,
}

impl PlanWriter {
    /// Create a plan file with `header`.
    pub fn create(path: &Path, header: &PlanHeader) -> Result<Self> {
        Ok(PlanWriter {
            inner: RecordWriter::create(path, header)?,
            summary: Summary::default(),
            range_size: header.range_size,
        })
    }

    /// Add an entry.
    pub fn add(&mut self, e: &Entry) -> Result<()> {
        self.add_mapped(e, &[])
    }

    /// Add an entry read from other source keys (`sources`, in order).
    pub fn add_mapped(&mut self, e: &Entry, sources: &[String]) -> Result<()> {
        self.summary.add(e, self.range_size);
        let mut p = PlanEntry::from(e);
        p.o = sources.to_vec();
        Ok(self.inner.write(&p)?)
    }

    /// Finish the file; returns what it holds.
    pub fn finish(self) -> Result<Summary> {
        self.inner.finish()?;
        Ok(self.summary)
    }
}

/// Reads a plan, entry by entry (streaming: memory does not grow with the plan).
pub struct PlanReader {
    inner: RecordReader<std::fs::File>,
}

impl PlanReader {
    /// Open a plan file and return its header, checked: a header out of bounds (a range size
    /// under [`MIN_RANGE_SIZE`], no source or target) is a bad file, before any entry is read.
    pub fn open(path: &Path) -> Result<(PlanHeader, PlanReader)> {
        let (h, inner): (PlanHeader, _) = RecordReader::open(path, PLAN_FORMAT, PLAN_VERSION)?;
        let bad = |why: String| {
            Err(crate::Error::BadFile {
                path: path.display().to_string(),
                why,
            })
        };
        if h.range_size < MIN_RANGE_SIZE {
            return bad(format!(
                "range_size {} in the plan header: expected at least {MIN_RANGE_SIZE}; write the plan again with hbcp plan",
                h.range_size
            ));
        }
        if h.source.is_empty() || h.target.is_empty() {
            return bad(
                "the plan header names no source or no target; write the plan again with hbcp plan"
                    .into(),
            );
        }
        Ok((h, PlanReader { inner }))
    }

    /// The next entry; `None` at the end (after the checksum was verified).
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        Ok(self.next_mapped()?.map(|(e, _)| e))
    }

    /// The next entry with the source keys it is read from (empty: its own key).
    pub fn next_mapped(&mut self) -> Result<Option<(Entry, Vec<String>)>> {
        Ok(self.inner.next_record::<PlanEntry>()?.map(|mut p| {
            let o = std::mem::take(&mut p.o);
            (Entry::from(p), o)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trip_and_summary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("plan");
        let h = PlanHeader {
            format: PLAN_FORMAT.into(),
            version: PLAN_VERSION,
            source: "/a".into(),
            target: "/b".into(),
            range_size: MIN_RANGE_SIZE,
            excludes: vec![],
            created: hbcp_state::time::now_rfc3339(),
            select: None,
            hbase_wals: None,
        };
        let mut w = PlanWriter::create(&p, &h).unwrap();
        let es = vec![
            Entry {
                key: "data/default/t/r/f/x".into(),
                size: 2 * MIN_RANGE_SIZE + 1,
                version: Some("v1".into()),
                modified: Some(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789)),
                kind: EntryKind::File,
            },
            Entry {
                key: "e".into(),
                size: 0,
                version: None,
                modified: None,
                kind: EntryKind::Dir,
            },
        ];
        for e in &es {
            w.add(e).unwrap();
        }
        let s = w.finish().unwrap();
        assert_eq!(
            (s.files, s.dirs, s.bytes, s.tasks, s.tables),
            (1, 1, 2 * MIN_RANGE_SIZE + 1, 3, 1)
        );
        let (h2, mut r) = PlanReader::open(&p).unwrap();
        assert_eq!(h2, h);
        let mut back = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            back.push(e);
        }
        assert_eq!(back, es);
    }
}
