//! The job journal: what is durable at the target, so that a rerun skips it.
//!
//! An append-only text file, one record per line: 16 hex digits of xxh3 over the JSON, a space,
//! the JSON. The first record names the format, version and job. A record is appended only
//! after what it claims is durable (a file: the target was flushed, `Store::flush`; a range:
//! its staged parts were synced, `Upload::sync_parts`), and the journal is fdatasync'd after
//! each append, so a record never claims more than is durable. On open, a torn or damaged tail (a crash in
//! the middle of an append) is cut off and its work redone; a journal of another job, format or
//! version is refused — never a wrong skip.
//!
//! What a journal says ([`Resume`]) is not held in memory: on open the records go through an
//! external sort by a 128-bit hash of the key ([`crate::extsort`]), are folded per key
//! (a later record wins, a `Forget` clears), and land in an unlinked index file of fixed
//! 56-byte entries sorted by key hash. Memory keeps one 16-byte key hash per 64 entries
//! (0.25 bytes per journaled file); a lookup reads one or two 3.5 KiB blocks (page cache).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::extsort::{DEFAULT_BATCH, ExternalSort};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::{Error, Result};

/// Journal format name.
pub const JOURNAL_FORMAT: &str = "hbcp-journal";
/// Journal version.
pub const JOURNAL_VERSION: u32 = 1;

/// One journal record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "t")]
pub enum Record {
    /// First record.
    #[serde(rename = "job")]
    Job {
        /// [`JOURNAL_FORMAT`].
        format: String,
        /// [`JOURNAL_VERSION`].
        version: u32,
        /// Job identity.
        job: String,
    },
    /// A whole file is durable at the target.
    #[serde(rename = "f")]
    File {
        /// Key.
        k: String,
        /// Size.
        s: u64,
        /// Source version it was copied from.
        v: Option<String>,
        /// Checksum.
        h: u64,
        /// Version of the target file right after it was written (local targets), so that a
        /// target file changed since is not trusted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tv: Option<String>,
    },
    /// One range of a large file is durable in the target's staging area.
    #[serde(rename = "r")]
    Range {
        /// Key.
        k: String,
        /// Size of the file.
        s: u64,
        /// Source version.
        v: Option<String>,
        /// Range index.
        i: u32,
        /// Range hash.
        h: u64,
    },
    /// A whole file copied by the target's service (`--s2s`) is durable at the target: no
    /// checksum was taken (no byte passed through hbcp), so a resume trusts it only by size,
    /// source version and the target version it was given, and the verifier reads it.
    #[serde(rename = "cf")]
    CopiedFile {
        /// Key.
        k: String,
        /// Size.
        s: u64,
        /// Source version it was copied from.
        v: Option<String>,
        /// Version of the target file right after the copy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tv: Option<String>,
    },
    /// One range of a large file copied by the target's service (`--s2s`: S3 UploadPartCopy,
    /// Azure Put Block From URL) is durable in the target's staging area.
    #[serde(rename = "cr")]
    CopiedRange {
        /// Key.
        k: String,
        /// Size of the file.
        s: u64,
        /// Source version.
        v: Option<String>,
        /// Range index.
        i: u32,
    },
    /// Whatever was journaled for this key is no longer true (the verifier found the target
    /// file different): copy it again next time.
    #[serde(rename = "x")]
    Forget {
        /// Key.
        k: String,
    },
}

/// A version token as compared by a resume: a hash, 0 for none.
pub fn version_hash(v: Option<&str>) -> u64 {
    match v {
        None => 0,
        Some(v) => xxh3_64(v.as_bytes()) | 1,
    }
}

fn key_hash(key: &str) -> u128 {
    xxh3_128(key.as_bytes())
}

/// Index entries per block of the sparse in-memory index.
const BLOCK: usize = 64;
/// Bytes of one index entry.
const ENTRY: usize = 56;
const TAG_FILE: u32 = 1;
const TAG_RANGE: u32 = 2;
/// A file, and a range, copied by the target's service: no checksum.
const TAG_COPIED_FILE: u32 = 3;
const TAG_COPIED_RANGE: u32 = 4;

/// One folded fact of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fact {
    key: u128,
    tag: u32,
    /// Range index (ranges).
    idx: u32,
    size: u64,
    version: u64,
    hash: u64,
    /// Target version hash (files).
    tv: u64,
}

impl Fact {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.tag.to_le_bytes());
        out.extend_from_slice(&self.idx.to_le_bytes());
        for v in [self.size, self.version, self.hash, self.tv] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn decode(b: &[u8]) -> Fact {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Fact {
            key: u128::from_le_bytes(b[0..16].try_into().expect("16 bytes")),
            tag: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
            idx: u32::from_le_bytes(b[20..24].try_into().expect("4 bytes")),
            size: u64_at(24),
            version: u64_at(32),
            hash: u64_at(40),
            tv: u64_at(48),
        }
    }
}

/// A journal record as sorted on open: key hash, then journal order.
#[derive(Debug, Serialize, Deserialize)]
struct Sortable {
    /// Key hash, high and low halves.
    a: u64,
    b: u64,
    /// Position in the journal.
    q: u64,
    /// 0 file, 1 range, 2 forget, 3 copied file, 4 copied range.
    t: u8,
    s: u64,
    v: u64,
    h: u64,
    /// Target version hash (file) or range index (range).
    x: u64,
}

impl Sortable {
    fn key(&self) -> u128 {
        ((self.a as u128) << 64) | self.b as u128
    }
}

/// The index of what a journal says, in an unlinked file.
#[derive(Debug)]
struct Index {
    file: File,
    entries: u64,
    /// First key hash of every block.
    firsts: Vec<u128>,
}

impl Index {
    /// Every fact about `key`.
    fn facts(&self, key: u128) -> Vec<Fact> {
        let mut out = Vec::new();
        // The last block that starts below the key: a key's facts may begin in it.
        let mut block = self.firsts.partition_point(|f| *f < key).saturating_sub(1);
        let mut buf = vec![0u8; BLOCK * ENTRY];
        while block < self.firsts.len() {
            let start = block as u64 * BLOCK as u64;
            let n = (self.entries - start).min(BLOCK as u64) as usize;
            if self
                .file
                .read_exact_at(&mut buf[..n * ENTRY], start * ENTRY as u64)
                .is_err()
            {
                // An unreadable index trusts nothing: the work is redone.
                return Vec::new();
            }
            for c in buf[..n * ENTRY].chunks_exact(ENTRY) {
                let f = Fact::decode(c);
                if f.key > key {
                    return out;
                }
                if f.key == key {
                    out.push(f);
                }
            }
            block += 1;
        }
        out
    }
}

/// What an earlier run made durable.
#[derive(Debug, Default)]
pub struct Resume {
    index: Option<Index>,
    /// Files journaled as durable.
    pub files: u64,
    /// Their bytes.
    pub file_bytes: u64,
    /// Records read.
    pub records: u64,
    /// Bytes of a damaged tail that were dropped.
    pub dropped_tail: u64,
}

impl Resume {
    fn facts(&self, key: &str) -> Vec<Fact> {
        match &self.index {
            Some(ix) => ix.facts(key_hash(key)),
            None => Vec::new(),
        }
    }

    /// The journaled file, if it matches size and source version: (checksum, hash of the
    /// target version, see [`version_hash`]).
    pub fn file(&self, key: &str, size: u64, version: Option<&str>) -> Option<(u64, Option<u64>)> {
        let v = version_hash(version);
        self.facts(key)
            .into_iter()
            .find(|f| f.tag == TAG_FILE && f.size == size && f.version == v)
            .map(|f| (f.hash, (f.tv != 0).then_some(f.tv)))
    }

    /// Durable ranges of a file, if size and version match: (index, hash).
    pub fn ranges_of(
        &self,
        key: &str,
        size: u64,
        version: Option<&str>,
    ) -> Option<Vec<(u32, u64)>> {
        let v = version_hash(version);
        let r: Vec<(u32, u64)> = self
            .facts(key)
            .into_iter()
            .filter(|f| f.tag == TAG_RANGE && f.size == size && f.version == v)
            .map(|f| (f.idx, f.hash))
            .collect();
        (!r.is_empty()).then_some(r)
    }

    /// The file journaled as copied by the target's service (`--s2s`), if it matches size and
    /// source version: the hash of the target version it was given (see [`version_hash`]),
    /// `None` when the target gave none.
    pub fn copied_file(&self, key: &str, size: u64, version: Option<&str>) -> Option<Option<u64>> {
        let v = version_hash(version);
        self.facts(key)
            .into_iter()
            .find(|f| f.tag == TAG_COPIED_FILE && f.size == size && f.version == v)
            .map(|f| (f.tv != 0).then_some(f.tv))
    }

    /// The ranges of the file journaled as copied by the target's service, by index, if it
    /// matches size and source version.
    pub fn copied_ranges_of(
        &self,
        key: &str,
        size: u64,
        version: Option<&str>,
    ) -> Option<Vec<u32>> {
        let v = version_hash(version);
        let r: Vec<u32> = self
            .facts(key)
            .into_iter()
            .filter(|f| f.tag == TAG_COPIED_RANGE && f.size == size && f.version == v)
            .map(|f| f.idx)
            .collect();
        (!r.is_empty()).then_some(r)
    }
}

/// Folds the sorted records of one key into facts (the last word wins, as on replay).
#[derive(Default)]
struct Fold {
    key: Option<u128>,
    file: Option<Fact>,
    ranges: Vec<Fact>,
}

impl Fold {
    fn apply(&mut self, r: &Sortable) {
        let key = r.key();
        match r.t {
            0 | 3 => {
                self.ranges.clear();
                self.file = Some(Fact {
                    key,
                    tag: if r.t == 0 { TAG_FILE } else { TAG_COPIED_FILE },
                    idx: 0,
                    size: r.s,
                    version: r.v,
                    hash: r.h,
                    tv: r.x,
                });
            }
            1 | 4 => {
                if let Some(first) = self.ranges.first() {
                    if first.size != r.s || first.version != r.v {
                        self.ranges.clear();
                    }
                }
                self.ranges.push(Fact {
                    key,
                    tag: if r.t == 1 {
                        TAG_RANGE
                    } else {
                        TAG_COPIED_RANGE
                    },
                    idx: r.x as u32,
                    size: r.s,
                    version: r.v,
                    hash: r.h,
                    tv: 0,
                });
            }
            _ => {
                self.file = None;
                self.ranges.clear();
            }
        }
    }

    /// Hand out the facts of the finished key, in index order.
    fn drain(
        &mut self,
        out: &mut impl FnMut(Fact) -> std::io::Result<()>,
        resume: &mut Resume,
    ) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            resume.files += 1;
            resume.file_bytes += f.size;
            out(f)?;
        }
        self.ranges.sort_by_key(|f| f.idx);
        for f in self.ranges.drain(..) {
            out(f)?;
        }
        Ok(())
    }
}

fn build_index(
    dir: &Path,
    sorted: impl Iterator<Item = crate::Result<Sortable>>,
    resume: &mut Resume,
) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        "journal.index.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| bad(&path, format!("cannot create the resume index: {e}")))?;
    // Unlinked at once: it lives as long as this run, and a crash leaves nothing behind.
    let _ = fs::remove_file(&path);
    let mut w = BufWriter::new(&file);
    let mut entries = 0u64;
    let mut firsts = Vec::new();
    let mut enc = Vec::with_capacity(ENTRY);
    let mut write = |f: Fact| -> std::io::Result<()> {
        if entries % BLOCK as u64 == 0 {
            firsts.push(f.key);
        }
        entries += 1;
        enc.clear();
        f.encode(&mut enc);
        w.write_all(&enc)
    };
    let mut fold = Fold::default();
    let io = |e: std::io::Error| bad(&path, format!("resume index: {e}"));
    for r in sorted {
        let r = r.map_err(|e| bad(&path, format!("sorting the journal: {e}")))?;
        if fold.key != Some(r.key()) {
            fold.drain(&mut write, resume).map_err(io)?;
            fold.key = Some(r.key());
        }
        fold.apply(&r);
    }
    fold.drain(&mut write, resume).map_err(io)?;
    w.flush().map_err(io)?;
    drop(w);
    if entries > 0 {
        resume.index = Some(Index {
            file,
            entries,
            firsts,
        });
    }
    Ok(())
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    line: Vec<u8>,
}

fn bad(path: &Path, why: impl Into<String>) -> Error {
    Error::Journal {
        path: path.display().to_string(),
        why: why.into(),
    }
}

fn encode(rec: &Record, out: &mut Vec<u8>) {
    let json = serde_json::to_vec(rec).expect("journal record encodes");
    out.extend_from_slice(format!("{:016x} ", xxh3_64(&json)).as_bytes());
    out.extend_from_slice(&json);
    out.push(b'\n');
}

fn decode(line: &str) -> Option<Record> {
    let (sum, json) = line.split_once(' ')?;
    let sum = u64::from_str_radix(sum, 16).ok()?;
    if sum != xxh3_64(json.as_bytes()) {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Read what the journal at `path` says is durable, without changing it; also returns the
/// length of its undamaged part. A journal that does not exist says nothing. The resume index
/// and the sort runs go next to the journal.
pub fn load(path: &Path, job: &str) -> Result<(Resume, u64)> {
    load_batched(path, job, DEFAULT_BATCH)
}

/// [`load`] sorting `batch` records in memory at a time.
fn load_batched(path: &Path, job: &str, batch: usize) -> Result<(Resume, u64)> {
    let path = path.to_path_buf();
    let mut resume = Resume::default();
    let mut good_len = 0u64;
    if !path.exists() {
        return Ok((resume, 0));
    }
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut sort: ExternalSort<Sortable> =
        ExternalSort::new(&dir, batch, |x, y| (x.a, x.b, x.q).cmp(&(y.a, y.b, y.q)));
    let f = File::open(&path).map_err(|e| bad(&path, e.to_string()))?;
    let mut rd = BufReader::new(f);
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        let n = match rd.read_line(&mut line) {
            Ok(n) => n,
            Err(_) => break, // not UTF-8: a damaged tail
        };
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        let Some(rec) = decode(line.trim_end_matches('\n')) else {
            break;
        };
        if first {
            match &rec {
                Record::Job {
                    format,
                    version,
                    job: j,
                } => {
                    if format != JOURNAL_FORMAT {
                        return Err(bad(&path, format!("not an hbcp journal ({format})")));
                    }
                    if *version != JOURNAL_VERSION {
                        return Err(bad(
                            &path,
                            format!(
                                "journal version {version} is not supported (this hbcp writes {JOURNAL_VERSION}); \
                                 remove the state folder to start over"
                            ),
                        ));
                    }
                    if j != job {
                        return Err(bad(
                            &path,
                            format!("journal of another job ({j}, this is {job})"),
                        ));
                    }
                }
                _ => return Err(bad(&path, "first record is not a job header")),
            }
            first = false;
        } else {
            let (k, t, s, v, h, x) = match &rec {
                Record::File { k, s, v, h, tv } => (
                    k,
                    0,
                    *s,
                    version_hash(v.as_deref()),
                    *h,
                    version_hash(tv.as_deref()),
                ),
                Record::Range { k, s, v, i, h } => {
                    (k, 1, *s, version_hash(v.as_deref()), *h, *i as u64)
                }
                Record::Forget { k } => (k, 2, 0, 0, 0, 0),
                Record::CopiedFile { k, s, v, tv } => (
                    k,
                    3,
                    *s,
                    version_hash(v.as_deref()),
                    0,
                    version_hash(tv.as_deref()),
                ),
                Record::CopiedRange { k, s, v, i } => {
                    (k, 4, *s, version_hash(v.as_deref()), 0, *i as u64)
                }
                Record::Job { .. } => return Err(bad(&path, "second job header")),
            };
            let kh = key_hash(k);
            sort.push(Sortable {
                a: (kh >> 64) as u64,
                b: kh as u64,
                q: resume.records,
                t,
                s,
                v,
                h,
                x,
            })
            .map_err(|e| bad(&path, format!("sorting the journal: {e}")))?;
        }
        resume.records += 1;
        good_len += n as u64;
    }
    let total = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    resume.dropped_tail = total - good_len;
    if first && total > 0 {
        return Err(bad(
            &path,
            "damaged journal header; remove the state folder to start over",
        ));
    }
    if !sort.is_empty() {
        let sorted = sort
            .finish()
            .map_err(|e| bad(&path, format!("sorting the journal: {e}")))?;
        build_index(&dir, sorted, &mut resume)?;
    }
    Ok((resume, good_len))
}

/// The journal's file in a state folder.
pub const JOURNAL_FILE: &str = "journal.log";
/// The journal of a job that completed, packed (zstd): a fifth of its size; the next
/// [`Journal::open`] unpacks it, so that a rerun still trusts what it says.
pub const PACKED_FILE: &str = "journal.log.zst";

/// Whether `dir` holds a journal (plain or packed): a run there resumes (or is refused as
/// another job's). A folder without one, even an existing one, holds no run to resume.
pub fn exists_in(dir: &Path) -> bool {
    dir.join(JOURNAL_FILE).exists() || dir.join(PACKED_FILE).exists()
}

/// Pack the journal in `dir` into [`PACKED_FILE`] (written whole, synced, then renamed; the
/// plain journal removed after): its sizes before and after. A crash in between leaves the
/// plain journal, which [`Journal::open`] prefers.
pub fn pack(dir: &Path) -> Result<(u64, u64)> {
    let (plain, packed) = (dir.join(JOURNAL_FILE), dir.join(PACKED_FILE));
    let tmp = dir.join(format!("{PACKED_FILE}.tmp"));
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| Error::Io { path: p, source }
    };
    let mut rd = File::open(&plain).map_err(io(&plain))?;
    let mut enc = zstd::Encoder::new(File::create(&tmp).map_err(io(&tmp))?, 3).map_err(io(&tmp))?;
    let before = std::io::copy(&mut rd, &mut enc).map_err(io(&plain))?;
    let f = enc.finish().map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    let after = f.metadata().map_err(io(&tmp))?.len();
    fs::rename(&tmp, &packed).map_err(io(&packed))?;
    fs::remove_file(&plain).map_err(io(&plain))?;
    Ok((before, after))
}

/// A packed journal in `dir` and no plain one: unpack it (written whole, synced, renamed).
fn unpack(dir: &Path) -> Result<()> {
    let (plain, packed) = (dir.join(JOURNAL_FILE), dir.join(PACKED_FILE));
    if plain.exists() || !packed.exists() {
        return Ok(());
    }
    let tmp = dir.join(format!("{JOURNAL_FILE}.tmp"));
    let unpacked = (|| {
        let mut dec = zstd::Decoder::new(File::open(&packed)?)?;
        let mut out = File::create(&tmp)?;
        std::io::copy(&mut dec, &mut out)?;
        out.sync_all()?;
        fs::rename(&tmp, &plain)
    })();
    unpacked.map_err(|e| bad(&packed, format!("cannot unpack: {e}")))?;
    let _ = fs::remove_file(&packed);
    Ok(())
}

impl Journal {
    /// Open (or create) the journal of `job` in `dir`, and read what it says is durable (a
    /// packed journal, [`pack`], is unpacked first).
    pub fn open(dir: &Path, job: &str) -> Result<(Journal, Resume)> {
        fs::create_dir_all(dir).map_err(|e| bad(dir, format!("cannot create state dir: {e}")))?;
        unpack(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let (resume, good_len) = load(&path, job)?;
        let file = OpenOptions::new()
            .create(true)
            .append(false)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| bad(&path, e.to_string()))?;
        file.set_len(good_len)
            .map_err(|e| bad(&path, e.to_string()))?;
        let mut j = Journal {
            file,
            path,
            line: Vec::new(),
        };
        if good_len == 0 {
            j.append(&[Record::Job {
                format: JOURNAL_FORMAT.into(),
                version: JOURNAL_VERSION,
                job: job.into(),
            }])?;
        }
        Ok((j, resume))
    }

    /// Append records and fsync.
    pub fn append(&mut self, recs: &[Record]) -> Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        self.line.clear();
        for r in recs {
            encode(r, &mut self.line);
        }
        use std::io::Seek;
        self.file
            .seek(std::io::SeekFrom::End(0))
            .and_then(|_| self.file.write_all(&self.line))
            .and_then(|_| self.file.sync_data())
            .map_err(|e| bad(&self.path, format!("append: {e}")))
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_journal_is_smaller_and_the_next_open_reads_it_back() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(d.path(), "job").unwrap();
        let recs: Vec<Record> = (0..2000)
            .map(|i| f(&format!("data/t/r/f/{i:032x}"), i))
            .collect();
        j.append(&recs).unwrap();
        drop(j);
        let (before, after) = pack(d.path()).unwrap();
        assert!(!d.path().join(JOURNAL_FILE).exists());
        assert!(after > 0 && after * 3 < before, "{before} -> {after}");
        assert_eq!(
            fs::metadata(d.path().join(PACKED_FILE)).unwrap().len(),
            after
        );
        let (_, r) = Journal::open(d.path(), "job").unwrap();
        assert_eq!(r.files, 2000);
        assert_eq!(
            r.file(&format!("data/t/r/f/{:032x}", 7), 3, Some("v"))
                .map(|x| x.0),
            Some(7)
        );
        assert!(!d.path().join(PACKED_FILE).exists());
        assert_eq!(
            fs::metadata(d.path().join(JOURNAL_FILE)).unwrap().len(),
            before
        );
    }

    fn f(k: &str, h: u64) -> Record {
        Record::File {
            k: k.into(),
            s: 3,
            v: Some("v".into()),
            h,
            tv: None,
        }
    }

    #[test]
    fn reopen_sees_what_was_appended() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, r) = Journal::open(d.path(), "job1").unwrap();
        assert_eq!(r.files, 0);
        j.append(&[f("a", 1), f("b", 2)]).unwrap();
        j.append(&[Record::Range {
            k: "big".into(),
            s: 100,
            v: None,
            i: 3,
            h: 9,
        }])
        .unwrap();
        drop(j);
        let (mut j, r) = Journal::open(d.path(), "job1").unwrap();
        assert_eq!(r.file("a", 3, Some("v")), Some((1, None)));
        j.append(&[Record::Forget { k: "a".into() }]).unwrap();
        drop(j);
        let (_j, r) = Journal::open(d.path(), "job1").unwrap();
        assert_eq!(r.file("a", 3, Some("v")), None);
        assert_eq!(r.file("a", 3, Some("other")), None);
        assert_eq!(r.ranges_of("big", 100, None), Some(vec![(3, 9)]));
    }

    #[test]
    fn server_side_copies_are_told_apart_from_streamed_ones() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(d.path(), "job").unwrap();
        let cr = |i| Record::CopiedRange {
            k: "big".into(),
            s: 100,
            v: Some("v".into()),
            i,
        };
        j.append(&[cr(0), cr(2)]).unwrap();
        j.append(&[Record::CopiedFile {
            k: "small".into(),
            s: 3,
            v: None,
            tv: Some("t1".into()),
        }])
        .unwrap();
        drop(j);
        let (mut j, r) = Journal::open(d.path(), "job").unwrap();
        assert_eq!(r.copied_ranges_of("big", 100, Some("v")), Some(vec![0, 2]));
        // Neither a streamed range (no checksum to combine) nor another version.
        assert_eq!(r.ranges_of("big", 100, Some("v")), None);
        assert_eq!(r.copied_ranges_of("big", 100, Some("w")), None);
        assert_eq!(
            r.copied_file("small", 3, None),
            Some(Some(version_hash(Some("t1"))))
        );
        assert_eq!(r.file("small", 3, None), None, "no checksum to trust");
        assert_eq!(r.copied_file("small", 4, None), None);
        // The whole file copied clears its ranges; a Forget clears the file.
        j.append(&[
            Record::CopiedFile {
                k: "big".into(),
                s: 100,
                v: Some("v".into()),
                tv: None,
            },
            Record::Forget { k: "small".into() },
        ])
        .unwrap();
        drop(j);
        let (_j, r) = Journal::open(d.path(), "job").unwrap();
        assert_eq!(r.copied_ranges_of("big", 100, Some("v")), None);
        assert_eq!(r.copied_file("big", 100, Some("v")), Some(None));
        assert_eq!(r.copied_file("small", 3, None), None);
    }

    #[test]
    fn a_journal_sorted_on_disk_answers_as_a_replay_does() {
        use std::collections::HashMap;
        let d = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(d.path(), "job").unwrap();
        // The replay model: key -> file (size, version, hash, tv) and ranges.
        type Ranges = (u64, Option<String>, Vec<(u32, u64)>);
        let mut files: HashMap<String, (u64, Option<String>, u64, Option<String>)> = HashMap::new();
        let mut ranges: HashMap<String, Ranges> = HashMap::new();
        let mut recs = Vec::new();
        let mut x = 7u64;
        for n in 0..3000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = format!(
                "data/default/t/r{}/cf/{:032x}",
                (x >> 40) % 50,
                (x >> 20) % 300
            );
            let v = ((x >> 8) % 3 != 0).then(|| format!("v{}", (x >> 12) % 2));
            let s = (x >> 16) % 4;
            let rec = match (x >> 4) % 7 {
                0 => {
                    files.remove(&k);
                    ranges.remove(&k);
                    Record::Forget { k: k.clone() }
                }
                1..=3 => {
                    let i = ((x >> 24) % 5) as u32;
                    let e = ranges
                        .entry(k.clone())
                        .or_insert((s, v.clone(), Vec::new()));
                    if e.0 != s || e.1 != v {
                        *e = (s, v.clone(), Vec::new());
                    }
                    e.2.push((i, n));
                    Record::Range {
                        k: k.clone(),
                        s,
                        v: v.clone(),
                        i,
                        h: n,
                    }
                }
                _ => {
                    let tv = ((x >> 30) % 2 == 0).then(|| format!("tv{n}"));
                    ranges.remove(&k);
                    files.insert(k.clone(), (s, v.clone(), n, tv.clone()));
                    Record::File {
                        k: k.clone(),
                        s,
                        v: v.clone(),
                        h: n,
                        tv,
                    }
                }
            };
            recs.push(rec);
        }
        j.append(&recs).unwrap();
        drop(j);
        // Batches of 100 records: 30 sorted runs merged on disk.
        let (r, _) = load_batched(&d.path().join("journal.log"), "job", 100).unwrap();
        assert_eq!(r.records, 3001, "the header and 3000 records");
        assert_eq!(r.files, files.len() as u64);
        for (k, (s, v, h, tv)) in &files {
            let want_tv = tv.as_deref().map(|t| version_hash(Some(t)));
            assert_eq!(r.file(k, *s, v.as_deref()), Some((*h, want_tv)), "{k}");
            assert_eq!(r.file(k, *s + 1, v.as_deref()), None, "{k}");
        }
        for (k, (s, v, list)) in &ranges {
            let mut want = list.clone();
            want.sort_by_key(|p| p.0);
            assert_eq!(r.ranges_of(k, *s, v.as_deref()), Some(want), "{k}");
        }
        // Forgotten or never written keys say nothing.
        for k in recs.iter().filter_map(|r| match r {
            Record::Forget { k } => Some(k),
            _ => None,
        }) {
            if !files.contains_key(k) {
                assert!(r.file(k, 0, None).is_none() && r.file(k, 1, Some("v0")).is_none());
            }
            if !ranges.contains_key(k) {
                assert!((0..4).all(|s| r.ranges_of(k, s, Some("v1")).is_none()));
            }
        }
        assert_eq!(r.file("never", 0, None), None);
        // Nothing is left next to the journal: the index is unlinked, the runs removed.
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["journal.log"]);
    }

    #[test]
    fn torn_tail_is_dropped_and_damage_never_skips_wrongly() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(d.path(), "job").unwrap();
        j.append(&[f("a", 1), f("b", 2)]).unwrap();
        drop(j);
        let p = d.path().join("journal.log");
        let mut bytes = fs::read(&p).unwrap();
        // Flip a byte inside the record of "b": it must not be trusted.
        let pos = bytes.len() - 5;
        bytes[pos] ^= 0x20;
        bytes.extend_from_slice(b"0123 {\"t\":\"f\""); // and a torn append
        fs::write(&p, &bytes).unwrap();
        let (mut j, r) = Journal::open(d.path(), "job").unwrap();
        assert_eq!(r.file("a", 3, Some("v")), Some((1, None)));
        assert_eq!(r.file("b", 3, Some("v")), None);
        assert!(r.dropped_tail > 0);
        j.append(&[f("c", 3)]).unwrap();
        drop(j);
        let (_, r) = Journal::open(d.path(), "job").unwrap();
        assert_eq!(r.file("c", 3, Some("v")), Some((3, None)));
        assert_eq!(r.dropped_tail, 0);
    }

    #[test]
    fn foreign_journals_are_refused() {
        let d = tempfile::tempdir().unwrap();
        drop(Journal::open(d.path(), "job").unwrap());
        assert!(
            Journal::open(d.path(), "other")
                .unwrap_err()
                .to_string()
                .contains("another job")
        );
        let p = d.path().join("journal.log");
        let text = fs::read_to_string(&p)
            .unwrap()
            .replace("\"version\":1", "\"version\":9");
        let json = text.split_once(' ').unwrap().1.trim_end().to_string();
        fs::write(&p, format!("{:016x} {json}\n", xxh3_64(json.as_bytes()))).unwrap();
        assert!(
            Journal::open(d.path(), "job")
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
        fs::write(&p, b"garbage\n").unwrap();
        assert!(Journal::open(d.path(), "job").is_err());
    }
}
