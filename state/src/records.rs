//! The framed record format of plan files and manifests.
//!
//! A file is a zstd stream of JSON lines: one header line (`{"format":…,"version":…,…}`), the
//! records, and a trailer line `{"end":true,"records":N,"xxh3":"…"}` whose checksum covers every
//! byte before it. A reader refuses a file of another format or version, a truncated file
//! (no trailer) and a file whose checksum does not match — a damaged plan or manifest is an
//! error, never a silent skip.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::Xxh3;

use crate::{Error, Result};

const TRAILER_PREFIX: &str = "{\"end\":true,";

#[derive(serde::Serialize, serde::Deserialize)]
struct Trailer {
    end: bool,
    records: u64,
    xxh3: String,
}

#[derive(serde::Deserialize)]
struct FormatProbe {
    format: String,
    version: u32,
}

/// Writes a framed record file.
pub struct RecordWriter<W: Write> {
    enc: zstd::Encoder<'static, W>,
    hasher: Xxh3,
    records: u64,
    display: String,
    line: Vec<u8>,
}

impl RecordWriter<BufWriter<File>> {
    /// Create `path` and write the header.
    pub fn create(path: &Path, header: &impl Serialize) -> Result<Self> {
        Self::create_at(path, header, 3)
    }

    /// [`RecordWriter::create`] at zstd level 1, for scratch files (sort runs) read back soon.
    pub fn create_fast(path: &Path, header: &impl Serialize) -> Result<Self> {
        Self::create_at(path, header, 1)
    }

    fn create_at(path: &Path, header: &impl Serialize, level: i32) -> Result<Self> {
        let display = path.display().to_string();
        let f = File::create(path).map_err(|source| Error::Io {
            path: display.clone(),
            source,
        })?;
        RecordWriter::with_level(BufWriter::new(f), &display, header, level)
    }
}

impl<W: Write> RecordWriter<W> {
    /// Start a record stream on `w`; `header` must serialize to an object with `format` and
    /// `version` fields.
    pub fn new(w: W, display: &str, header: &impl Serialize) -> Result<Self> {
        Self::with_level(w, display, header, 3)
    }

    /// [`RecordWriter::new`] at a given zstd level.
    pub fn with_level(w: W, display: &str, header: &impl Serialize, level: i32) -> Result<Self> {
        let enc = zstd::Encoder::new(w, level).map_err(|source| Error::Io {
            path: display.to_string(),
            source,
        })?;
        let mut me = RecordWriter {
            enc,
            hasher: Xxh3::new(),
            records: 0,
            display: display.to_string(),
            line: Vec::with_capacity(256),
        };
        me.write_line(header)?;
        Ok(me)
    }

    fn write_line(&mut self, v: &impl Serialize) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, v).map_err(|e| Error::BadFile {
            path: self.display.clone(),
            why: format!("cannot encode record: {e}"),
        })?;
        self.line.push(b'\n');
        self.hasher.update(&self.line);
        self.enc.write_all(&self.line).map_err(|source| Error::Io {
            path: self.display.clone(),
            source,
        })
    }

    /// Append one record.
    pub fn write(&mut self, rec: &impl Serialize) -> Result<()> {
        self.records += 1;
        self.write_line(rec)
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Write the trailer and finish the stream; returns the inner writer (flushed).
    pub fn finish(mut self) -> Result<W> {
        let t = Trailer {
            end: true,
            records: self.records,
            xxh3: format!("{:016x}", self.hasher.digest()),
        };
        let mut line = serde_json::to_vec(&t).expect("trailer encodes");
        line.push(b'\n');
        let io = |source| Error::Io {
            path: self.display.clone(),
            source,
        };
        self.enc.write_all(&line).map_err(io)?;
        let mut w = self.enc.finish().map_err(io)?;
        w.flush().map_err(io)?;
        Ok(w)
    }
}

/// Reads a framed record file, checking format, version, trailer and checksum.
pub struct RecordReader<R: Read> {
    lines: BufReader<zstd::Decoder<'static, BufReader<R>>>,
    hasher: Xxh3,
    records: u64,
    display: String,
    buf: String,
    done: bool,
}

impl RecordReader<File> {
    /// Open `path`, check that it is `format` at `version`, and return the header.
    pub fn open<H: DeserializeOwned>(path: &Path, format: &str, version: u32) -> Result<(H, Self)> {
        let display = path.display().to_string();
        let f = File::open(path).map_err(|source| Error::Io {
            path: display.clone(),
            source,
        })?;
        RecordReader::new(f, &display, format, version)
    }
}

impl<R: Read> RecordReader<R> {
    /// Read the header of a record stream from `r`.
    pub fn new<H: DeserializeOwned>(
        r: R,
        display: &str,
        format: &str,
        version: u32,
    ) -> Result<(H, Self)> {
        let bad = |why: String| Error::BadFile {
            path: display.to_string(),
            why,
        };
        let dec = zstd::Decoder::new(r).map_err(|e| bad(format!("not a zstd stream: {e}")))?;
        let mut me = RecordReader {
            lines: BufReader::new(dec),
            hasher: Xxh3::new(),
            records: 0,
            display: display.to_string(),
            buf: String::new(),
            done: false,
        };
        if !me.read_line()? {
            return Err(bad(format!("empty file; expected a {format} header")));
        }
        let probe: FormatProbe = serde_json::from_str(me.buf.trim_end())
            .map_err(|e| bad(format!("expected a {format} header line: {e}")))?;
        if probe.format != format {
            return Err(bad(format!(
                "this is a {:?} file, expected {format:?}",
                probe.format
            )));
        }
        if probe.version != version {
            return Err(bad(format!(
                "{format} version {} is not supported (this hbcp reads version {version})",
                probe.version
            )));
        }
        let header: H = serde_json::from_str(me.buf.trim_end())
            .map_err(|e| bad(format!("bad {format} header: {e}")))?;
        me.hasher.update(me.buf.as_bytes());
        Ok((header, me))
    }

    fn read_line(&mut self) -> Result<bool> {
        self.buf.clear();
        let n = self
            .lines
            .read_line(&mut self.buf)
            .map_err(|e| Error::BadFile {
                path: self.display.clone(),
                why: format!("damaged or truncated: {e}"),
            })?;
        Ok(n > 0)
    }

    /// The next record, `None` after the trailer (which is then checked).
    pub fn next_record<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        if self.done {
            return Ok(None);
        }
        let display = self.display.clone();
        let bad = |why: String| Error::BadFile {
            path: display.clone(),
            why,
        };
        if !self.read_line()? {
            return Err(bad(format!(
                "truncated after {} records (no trailer)",
                self.records
            )));
        }
        if self.buf.starts_with(TRAILER_PREFIX) {
            let t: Trailer = serde_json::from_str(self.buf.trim_end())
                .map_err(|e| bad(format!("bad trailer: {e}")))?;
            let digest = format!("{:016x}", self.hasher.digest());
            if t.records != self.records || t.xxh3 != digest {
                return Err(bad(format!(
                    "checksum mismatch: trailer says {} records / {}, read {} / {digest}",
                    t.records, t.xxh3, self.records
                )));
            }
            self.done = true;
            return Ok(None);
        }
        if !self.buf.ends_with('\n') {
            return Err(bad(format!(
                "truncated in record {} (no trailer)",
                self.records + 1
            )));
        }
        self.hasher.update(self.buf.as_bytes());
        self.records += 1;
        serde_json::from_str(self.buf.trim_end())
            .map(Some)
            .map_err(|e| bad(format!("record {}: {e}", self.records)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct H {
        format: String,
        version: u32,
        note: String,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct R {
        k: String,
        s: u64,
    }

    fn sample(n: u64) -> Vec<u8> {
        let h = H {
            format: "t".into(),
            version: 1,
            note: "x".into(),
        };
        let mut w = RecordWriter::new(Vec::new(), "mem", &h).unwrap();
        for i in 0..n {
            w.write(&R {
                k: format!("k{i}"),
                s: i,
            })
            .unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8], format: &str, version: u32) -> Result<Vec<R>> {
        let (_h, mut r): (H, _) = RecordReader::new(bytes, "mem", format, version)?;
        let mut v = Vec::new();
        while let Some(x) = r.next_record::<R>()? {
            v.push(x);
        }
        Ok(v)
    }

    #[test]
    fn round_trip() {
        let b = sample(1000);
        let v = read_all(&b, "t", 1).unwrap();
        assert_eq!(v.len(), 1000);
        assert_eq!(
            v[999],
            R {
                k: "k999".into(),
                s: 999
            }
        );
    }

    #[test]
    fn other_format_or_version_is_refused() {
        let b = sample(3);
        assert!(
            read_all(&b, "plan", 1)
                .unwrap_err()
                .to_string()
                .contains("expected \"plan\"")
        );
        assert!(
            read_all(&b, "t", 2)
                .unwrap_err()
                .to_string()
                .contains("version 1")
        );
    }

    #[test]
    fn truncated_or_flipped_files_are_errors() {
        // Uncompressed content, re-compressed with damage, so the zstd layer is intact.
        let b = sample(50);
        let mut plain = zstd::decode_all(&b[..]).unwrap();
        let cut = zstd::encode_all(&plain[..plain.len() - 60], 3).unwrap();
        assert!(read_all(&cut, "t", 1).is_err());
        let pos = plain.len() / 2;
        plain[pos] ^= 0x01;
        let flipped = zstd::encode_all(&plain[..], 3).unwrap();
        assert!(read_all(&flipped, "t", 1).is_err());
        // Raw truncation of the zstd stream.
        assert!(read_all(&b[..b.len() / 2], "t", 1).is_err());
    }
}
