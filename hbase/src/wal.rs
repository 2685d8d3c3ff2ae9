//! Write-ahead-log summary: open or cleanly closed, and which region/table/family/sequence
//! ids the entries carry — the evidence for "are there edits that are not yet in HFiles?".

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
    /// WAL compression is on; entries are not read.
    pub compressed: bool,
    /// The header carries an encryption key; entries are not read.
    pub encrypted: bool,
    /// Entries read.
    pub entries: Vec<WalEntry>,
    /// The last entry was cut off (normal for an open WAL whose writer died).
    pub truncated_tail: bool,
}

impl WalSummary {
    /// Parses a whole WAL file.
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
        let mut s = WalSummary {
            closed,
            writer: header.writer_cls_name,
            cell_codec: header.cell_codec_cls_name,
            compressed: header.has_compression.unwrap_or(false),
            encrypted: header.encryption_key.is_some_and(|k| !k.is_empty()),
            entries: Vec::new(),
            truncated_tail: false,
        };
        if s.compressed || s.encrypted {
            return Ok(s);
        }
        let body = &bytes[..end];
        while pos < end {
            match read_entry(body, pos) {
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

fn read_entry(buf: &[u8], pos: usize) -> Result<(WalEntry, usize)> {
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
    let cells = key.following_kv_count.unwrap_or(0);
    let mut families: Vec<String> = Vec::new();
    for _ in 0..cells {
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
        let fam = String::from_utf8_lossy(fam).into_owned();
        if !families.contains(&fam) {
            families.push(fam);
        }
        p += 4 + total;
    }
    let entry = WalEntry {
        encoded_region: String::from_utf8_lossy(&key.encoded_region_name.unwrap_or_default())
            .into_owned(),
        table: String::from_utf8_lossy(&key.table_name.unwrap_or_default()).into_owned(),
        sequence_id: key.log_sequence_number.unwrap_or(0),
        write_time: key.write_time.unwrap_or(0),
        cell_count: cells,
        families,
    };
    Ok((entry, p))
}
