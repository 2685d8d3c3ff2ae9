//! Write-ahead-log summary: open or cleanly closed, and which region/table/family/sequence
//! ids the entries carry — the evidence for "are there edits that are not yet in HFiles?".
//!
//! Plain WALs and WALs written with `hbase.regionserver.wal.enablecompression` are read. The
//! compressed form (HBase 0.96 through 2.4, and 2.5+ without value compression; layout of
//! `WALCellCodec.CompressedKvDecoder`, `CompressionContext`, `LRUDictionary`,
//! `TagCompressionContext` and `WALKeyImpl.readFieldsFromPb`): the WALKey's region and table
//! names, its scope families and its extended-attribute values, and each cell's row, family and
//! qualifier are either `0xFF`, a varint length and the bytes (then added to that field's LRU
//! dictionary) or a 2-byte big-endian index into it; a cell is three varints (key, value and tags
//! lengths), those three names, the timestamp, the type, the value and the tags (each tag through
//! the tag dictionary when the header says so). Encrypted WALs and 2.5's value compression are
//! not read: [`WalSummary::parse`] says so, and a caller must treat the WAL as unreadable.

use prost::Message;

use crate::error::{Error, Result, be_u32, take, varint};
use crate::pb;

const WAL_MAGIC: &[u8; 4] = b"PWAL";
const WAL_TRAILER_MAGIC: &[u8; 4] = b"LAWP";
/// Family name of WAL marker cells (flush, region event, compaction, bulk load).
pub const META_FAMILY: &str = "METAFAMILY";

/// One WAL entry (a WALKey and its cells).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalEntry {
    /// Encoded region name.
    pub encoded_region: String,
    /// Table name (`ns:qualifier` or bare qualifier).
    pub table: String,
    /// Log sequence number.
    pub sequence_id: u64,
    /// Write time in ms.
    pub write_time: u64,
    /// Number of cells.
    pub cell_count: u32,
    /// Distinct families of the cells, in order of appearance.
    pub families: Vec<String>,
}

impl WalEntry {
    /// True when every cell is a marker (`METAFAMILY`) rather than table data.
    pub fn is_marker_only(&self) -> bool {
        self.families.iter().all(|f| f == META_FAMILY)
    }
}

/// What a WAL file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalSummary {
    /// Ends with the `LAWP` trailer: the writer closed it.
    pub closed: bool,
    /// Writer class from the header.
    pub writer: Option<String>,
    /// Cell codec class from the header.
    pub cell_codec: Option<String>,
    /// WAL compression (dictionaries) is on; the entries were read through the dictionaries.
    pub compressed: bool,
    /// Entries read.
    pub entries: Vec<WalEntry>,
    /// The last entry was cut off (normal for an open WAL whose writer died).
    pub truncated_tail: bool,
}

impl WalSummary {
    /// Parses a whole WAL file. An encrypted WAL, or one with 2.5's value compression, is
    /// [`Error::Unsupported`] naming why.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "WAL";
        let magic = take(WHAT, bytes, 0, 4)?;
        if magic != WAL_MAGIC {
            return Err(Error::malformed(
                WHAT,
                "the PWAL magic",
                crate::error::hex_prefix(bytes),
            ));
        }
        let (hlen, used) = varint("WAL header", bytes, 4)?;
        let hlen = usize::try_from(hlen)
            .map_err(|_| Error::malformed(WHAT, "a header length", hlen.to_string()))?;
        let header = pb::WalHeaderPb::decode(take("WAL header", bytes, 4 + used, hlen)?)
            .map_err(Error::pb("WAL header"))?;
        let mut pos = 4 + used + hlen;
        // A closed WAL ends with WALTrailer + int32 trailer size + "LAWP".
        let mut end = bytes.len();
        let mut closed = false;
        if bytes.len() >= pos + 8 && bytes.ends_with(WAL_TRAILER_MAGIC) {
            let tsize = be_u32("WAL trailer", bytes, bytes.len() - 8)? as usize;
            if let Some(start) = (bytes.len() - 8).checked_sub(tsize).filter(|s| *s >= pos) {
                end = start;
                closed = true;
            }
        }
        if header
            .encryption_key
            .as_ref()
            .is_some_and(|k| !k.is_empty())
        {
            return Err(Error::Unsupported {
                what: WHAT,
                detail: "encryption (hbase.regionserver.wal.encryption): its cells cannot be read without the cluster's key".into(),
            });
        }
        if header.has_value_compression == Some(true) {
            return Err(Error::Unsupported {
                what: WHAT,
                detail:
                    "value compression (hbase.regionserver.wal.value.enablecompression, HBase 2.5+)"
                        .into(),
            });
        }
        let mut s = WalSummary {
            closed,
            writer: header.writer_cls_name,
            cell_codec: header.cell_codec_cls_name,
            compressed: header.has_compression.unwrap_or(false),
            entries: Vec::new(),
            truncated_tail: false,
        };
        let mut dicts = s
            .compressed
            .then(|| Dictionaries::new(header.has_tag_compression.unwrap_or(false)));
        let body = &bytes[..end];
        while pos < end {
            match read_entry(body, pos, dicts.as_mut()) {
                Ok((entry, next)) => {
                    s.entries.push(entry);
                    pos = next;
                }
                Err(Error::Truncated { .. }) if !closed => {
                    s.truncated_tail = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(s)
    }

    /// Highest sequence id of a data (non-marker) cell per (encoded region, family).
    pub fn max_data_seq_ids(&self) -> Vec<((String, String), u64)> {
        let mut m = std::collections::BTreeMap::new();
        for e in &self.entries {
            for f in e.families.iter().filter(|f| *f != META_FAMILY) {
                let v = m.entry((e.encoded_region.clone(), f.clone())).or_insert(0);
                *v = (*v).max(e.sequence_id);
            }
        }
        m.into_iter().collect()
    }
}

fn read_entry(
    buf: &[u8],
    pos: usize,
    mut dicts: Option<&mut Dictionaries>,
) -> Result<(WalEntry, usize)> {
    const WHAT: &str = "WAL entry";
    let (klen, used) = varint(WHAT, buf, pos)?;
    if klen == 0 {
        return Err(Error::malformed(WHAT, "a WALKey length > 0", "0"));
    }
    let klen = usize::try_from(klen)
        .map_err(|_| Error::malformed(WHAT, "a key length", klen.to_string()))?;
    let key =
        pb::WalKeyPb::decode(take(WHAT, buf, pos + used, klen)?).map_err(Error::pb("WALKey"))?;
    let mut p = pos + used + klen;
    let region = key.encoded_region_name.unwrap_or_default();
    let table = key.table_name.unwrap_or_default();
    let (region, table) = match dicts.as_deref_mut() {
        None => (region, table),
        Some(d) => {
            // The reader's order: region, table, scope families, attribute values.
            let region = d.region.read_whole("WALKey region", &region)?;
            let table = d.table.read_whole("WALKey table", &table)?;
            for sc in &key.scopes {
                d.family
                    .read_whole("WALKey scope", sc.family.as_deref().unwrap_or_default())?;
            }
            for a in &key.extended_attributes {
                d.table
                    .read_whole("WALKey attribute", a.value.as_deref().unwrap_or_default())?;
            }
            (region, table)
        }
    };
    let cells = key.following_kv_count.unwrap_or(0);
    let mut families: Vec<String> = Vec::new();
    for _ in 0..cells {
        let (fam, next) = match dicts.as_deref_mut() {
            None => plain_cell(buf, p)?,
            Some(d) => compressed_cell(buf, p, d)?,
        };
        let fam = String::from_utf8_lossy(&fam).into_owned();
        if !families.contains(&fam) {
            families.push(fam);
        }
        p = next;
    }
    let entry = WalEntry {
        encoded_region: String::from_utf8_lossy(&region).into_owned(),
        table: String::from_utf8_lossy(&table).into_owned(),
        sequence_id: key.log_sequence_number.unwrap_or(0),
        write_time: key.write_time.unwrap_or(0),
        cell_count: cells,
        families,
    };
    Ok((entry, p))
}

/// A plain cell (`KeyValueCodecWithTags`): its family and where the next cell starts.
fn plain_cell(buf: &[u8], p: usize) -> Result<(Vec<u8>, usize)> {
    // int32 serialized size, then keyLen, valueLen, key (rowLen:i16 row famLen:i8 fam …), value, [tags].
    let total = be_u32("WAL cell", buf, p)? as usize;
    let cell = take("WAL cell", buf, p + 4, total)?;
    let key_len = be_u32("WAL cell", cell, 0)? as usize;
    let row_len = take("WAL cell key", cell, 8, 2)?;
    let row_len = usize::from(u16::from_be_bytes([row_len[0], row_len[1]]));
    let fam_len = usize::from(take("WAL cell key", cell, 10 + row_len, 1)?[0]);
    let fam = take("WAL cell key", cell, 11 + row_len, fam_len)?;
    if 11 + row_len + fam_len + 9 > 8 + key_len {
        return Err(Error::malformed(
            "WAL cell",
            "a key holding row, family, timestamp and type",
            key_len.to_string(),
        ));
    }
    Ok((fam.to_vec(), p + 4 + total))
}

/// A dictionary-compressed cell (`CompressedKvDecoder`): its family and where the next starts.
fn compressed_cell(buf: &[u8], p: usize, d: &mut Dictionaries) -> Result<(Vec<u8>, usize)> {
    const WHAT: &str = "compressed WAL cell";
    let mut p = p;
    let v32 = |p: &mut usize| -> Result<usize> {
        let (v, used) = varint(WHAT, buf, *p)?;
        *p += used;
        u32::try_from(v)
            .map(|v| v as usize)
            .map_err(|_| Error::malformed(WHAT, "a 32-bit length", v.to_string()))
    };
    let key_len = v32(&mut p)?;
    let value_len = v32(&mut p)?;
    let tags_len = v32(&mut p)?;
    let row = d.row.read(WHAT, buf, &mut p)?;
    let fam = d.family.read(WHAT, buf, &mut p)?;
    let qual = d.qualifier.read(WHAT, buf, &mut p)?;
    if row.len() > i16::MAX as usize || fam.len() > i8::MAX as usize {
        return Err(Error::malformed(
            WHAT,
            "a row of at most 32767 and a family of at most 127 bytes",
            format!("{} and {}", row.len(), fam.len()),
        ));
    }
    // Timestamp, type and value follow as they are: what the key length leaves after the names.
    let ts_type_value = (key_len + value_len)
        .checked_sub(3 + row.len() + fam.len() + qual.len())
        .filter(|n| *n >= 9)
        .ok_or_else(|| {
            Error::malformed(
                WHAT,
                "a key holding timestamp and type",
                key_len.to_string(),
            )
        })?;
    take(WHAT, buf, p, ts_type_value)?;
    p += ts_type_value;
    if tags_len > 0 {
        match d.tags.as_mut() {
            None => {
                take(WHAT, buf, p, tags_len)?;
                p += tags_len;
            }
            Some(tags) => {
                // Each tag: through the dictionary; 2 length bytes plus the tag, up to tags_len.
                let mut produced = 0usize;
                while produced < tags_len {
                    produced += 2 + tags.read(WHAT, buf, &mut p)?.len();
                }
                if produced != tags_len {
                    return Err(Error::malformed(
                        WHAT,
                        "tags filling the tags length",
                        format!("{produced} bytes for {tags_len}"),
                    ));
                }
            }
        }
    }
    Ok((fam, p))
}

/// The reader's side of one of HBase's `LRUDictionary`s: entries by index, evicting the least
/// recently used (added or read) when full.
struct LruDict {
    cap: usize,
    entries: Vec<Vec<u8>>,
    /// Last use of each index, and the indexes by last use.
    used_at: Vec<u64>,
    by_use: std::collections::BTreeMap<u64, usize>,
    clock: u64,
}

/// `Dictionary.NOT_IN_DICTIONARY`: the bytes follow, with their varint length.
const NOT_IN_DICTIONARY: u8 = 0xFF;

impl LruDict {
    fn new(cap: usize) -> Self {
        LruDict {
            cap,
            entries: Vec::new(),
            used_at: Vec::new(),
            by_use: std::collections::BTreeMap::new(),
            clock: 0,
        }
    }

    fn touch(&mut self, idx: usize) {
        self.clock += 1;
        if let Some(old) = self.used_at.get(idx).copied() {
            self.by_use.remove(&old);
            self.used_at[idx] = self.clock;
        } else {
            self.used_at.push(self.clock);
        }
        self.by_use.insert(self.clock, idx);
    }

    fn add(&mut self, data: &[u8]) {
        if data.is_empty() {
            return; // LRUDictionary never stores an empty entry.
        }
        if self.entries.len() < self.cap {
            self.entries.push(data.to_vec());
            self.touch(self.entries.len() - 1);
        } else if let Some((_, idx)) = self.by_use.pop_first() {
            self.entries[idx] = data.to_vec();
            self.touch(idx);
        }
    }

    fn get(&mut self, what: &'static str, idx: usize) -> Result<Vec<u8>> {
        if idx >= self.entries.len() {
            return Err(Error::malformed(
                what,
                "a dictionary index below the entries read so far",
                format!("{idx} of {}", self.entries.len()),
            ));
        }
        self.touch(idx);
        Ok(self.entries[idx].clone())
    }

    /// One dictionary-coded field of a cell at `*p`.
    fn read(&mut self, what: &'static str, buf: &[u8], p: &mut usize) -> Result<Vec<u8>> {
        let status = take(what, buf, *p, 1)?[0];
        if status == NOT_IN_DICTIONARY {
            let (len, used) = varint(what, buf, *p + 1)?;
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= i32::MAX as usize)
                .ok_or_else(|| Error::malformed(what, "a 32-bit length", len.to_string()))?;
            let data = take(what, buf, *p + 1 + used, len)?.to_vec();
            *p += 1 + used + len;
            self.add(&data);
            Ok(data)
        } else {
            let lo = take(what, buf, *p + 1, 1)?[0];
            *p += 2;
            let idx = i16::from_be_bytes([status, lo]);
            let idx = usize::try_from(idx)
                .map_err(|_| Error::malformed(what, "a dictionary index", idx.to_string()))?;
            self.get(what, idx)
        }
    }

    /// A WALKey field: the whole protobuf bytes field is one dictionary-coded value.
    fn read_whole(&mut self, what: &'static str, field: &[u8]) -> Result<Vec<u8>> {
        let mut p = 0;
        let v = self.read(what, field, &mut p)?;
        if p != field.len() {
            return Err(Error::malformed(
                what,
                "one dictionary-coded value",
                format!("{} trailing bytes", field.len() - p),
            ));
        }
        Ok(v)
    }
}

/// `CompressionContext` of a WAL (not of recovered edits): one dictionary per field.
struct Dictionaries {
    region: LruDict,
    table: LruDict,
    family: LruDict,
    qualifier: LruDict,
    row: LruDict,
    tags: Option<LruDict>,
}

impl Dictionaries {
    fn new(tag_compression: bool) -> Self {
        let short = i16::MAX as usize;
        let byte = i8::MAX as usize;
        Dictionaries {
            region: LruDict::new(short),
            table: LruDict::new(short),
            family: LruDict::new(byte),
            qualifier: LruDict::new(byte),
            row: LruDict::new(short),
            tags: tag_compression.then(|| LruDict::new(short)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_dictionary_evicts_the_least_recently_used_and_skips_empty_entries() {
        let mut d = LruDict::new(2);
        d.add(b"a");
        d.add(b"b");
        d.add(b"");
        assert_eq!(d.entries.len(), 2, "an empty entry is never stored");
        // Reading "a" makes "b" the least recently used: "c" takes its index.
        assert_eq!(d.get("t", 0).unwrap(), b"a");
        d.add(b"c");
        assert_eq!(d.get("t", 1).unwrap(), b"c");
        assert_eq!(d.get("t", 0).unwrap(), b"a");
        assert!(d.get("t", 2).is_err());
        // Coded fields: literal, index, a negative index, a truncated literal.
        let mut p = 0;
        assert_eq!(d.read("t", &[0xFF, 1, b'z'], &mut p).unwrap(), b"z");
        assert_eq!(p, 3);
        let mut p = 0;
        assert_eq!(d.read("t", &[0, 0], &mut p).unwrap(), b"a");
        assert!(d.read("t", &[0x80, 0], &mut 0).is_err());
        assert!(d.read("t", &[0xFF, 5, b'z'], &mut 0).is_err());
    }
}
