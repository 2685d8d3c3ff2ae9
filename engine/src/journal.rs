//! The job journal: what is durable at the target, so that a rerun skips it.
//!
//! An append-only text file, one record per line: 16 hex digits of xxh3 over the JSON, a space,
//! the JSON. The first record names the format, version and job. A record is appended only
//! after what it claims is durable (a file: the target was flushed, `Store::flush`; a range:
//! its staged parts were synced, `Upload::sync_parts`), and the journal is fdatasync'd after
//! each append, so a record never claims more than is durable. On open, a torn or damaged tail (a crash in
//! the middle of an append) is cut off and its work redone; a journal of another job, format or
//! version is refused — never a wrong skip.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

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
    /// Whatever was journaled for this key is no longer true (the verifier found the target
    /// file different): copy it again next time.
    #[serde(rename = "x")]
    Forget {
        /// Key.
        k: String,
    },
}

/// What an earlier run made durable.
#[derive(Debug, Default)]
pub struct Resume {
    /// Files: key → (size, version, checksum, target version).
    pub files: HashMap<String, (u64, Option<String>, u64, Option<String>)>,
    /// Ranges: key → (size, version, [(index, hash)]).
    pub ranges: HashMap<String, (u64, Option<String>, Vec<(u32, u64)>)>,
    /// Records read.
    pub records: u64,
    /// Bytes of a damaged tail that were dropped.
    pub dropped_tail: u64,
}

impl Resume {
    /// The journaled file, if it matches size and source version: (checksum, target version).
    pub fn file(&self, key: &str, size: u64, version: Option<&str>) -> Option<(u64, Option<&str>)> {
        match self.files.get(key) {
            Some((s, v, h, tv)) if *s == size && v.as_deref() == version => {
                Some((*h, tv.as_deref()))
            }
            _ => None,
        }
    }

    /// Durable ranges of a file, if size and version match.
    pub fn ranges_of(&self, key: &str, size: u64, version: Option<&str>) -> Option<&[(u32, u64)]> {
        match self.ranges.get(key) {
            Some((s, v, r)) if *s == size && v.as_deref() == version => Some(r),
            _ => None,
        }
    }
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
/// length of its undamaged part. A journal that does not exist says nothing.
pub fn load(path: &Path, job: &str) -> Result<(Resume, u64)> {
    let path = path.to_path_buf();
    let mut resume = Resume::default();
    let mut good_len = 0u64;
    let exists = path.exists();
    if exists {
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
                match rec {
                    Record::File { k, s, v, h, tv } => {
                        resume.ranges.remove(&k);
                        resume.files.insert(k, (s, v, h, tv));
                    }
                    Record::Range { k, s, v, i, h } => {
                        let e = resume
                            .ranges
                            .entry(k)
                            .or_insert_with(|| (s, v.clone(), Vec::new()));
                        if e.0 != s || e.1 != v {
                            *e = (s, v, Vec::new());
                        }
                        e.2.push((i, h));
                    }
                    Record::Forget { k } => {
                        resume.files.remove(&k);
                        resume.ranges.remove(&k);
                    }
                    Record::Job { .. } => return Err(bad(&path, "second job header")),
                }
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
    }
    Ok((resume, good_len))
}

impl Journal {
    /// Open (or create) the journal of `job` in `dir`, and read what it says is durable.
    pub fn open(dir: &Path, job: &str) -> Result<(Journal, Resume)> {
        fs::create_dir_all(dir).map_err(|e| bad(dir, format!("cannot create state dir: {e}")))?;
        let path = dir.join("journal.log");
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
        assert!(r.files.is_empty());
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
        assert_eq!(r.ranges_of("big", 100, None), Some(&[(3, 9)][..]));
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
