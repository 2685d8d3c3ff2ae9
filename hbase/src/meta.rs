//! The small metadata files of a root: `hbase.version`, `hbase.id`, `.regioninfo`,
//! `.tableinfo.*` and split/merge Reference files. They are not write-once, so a copier
//! compares them by content and reads them to map tables, regions and key ranges.

use prost::Message;

use crate::error::{Error, Result, strip_pbuf, take, varint};
use crate::path::TableRef;
use crate::pb;

/// Content of `hbase.version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HbaseVersion {
    /// The file-system layout version ("8" for 0.96+, "7" for 0.94).
    pub version: String,
    /// Written in the pre-protobuf `writeUTF` form (0.94 and older).
    pub legacy: bool,
}

/// Parses `hbase.version`: `PBUF` + HBaseVersionFileContent, or Java `writeUTF`.
pub fn parse_hbase_version(bytes: &[u8]) -> Result<HbaseVersion> {
    if let Ok(rest) = strip_pbuf("hbase.version", bytes) {
        let m = pb::VersionPb::decode(rest).map_err(Error::pb("hbase.version"))?;
        let version = m
            .version
            .ok_or_else(|| Error::malformed("hbase.version", "field 1 version", "no version"))?;
        return Ok(HbaseVersion {
            version,
            legacy: false,
        });
    }
    let version = read_utf("hbase.version", bytes)?;
    Ok(HbaseVersion {
        version,
        legacy: true,
    })
}

/// Parses `hbase.id`: `PBUF` + ClusterId, or the legacy `writeUTF(uuid)`; returns the cluster id.
pub fn parse_cluster_id(bytes: &[u8]) -> Result<String> {
    if let Ok(rest) = strip_pbuf("hbase.id", bytes) {
        let m = pb::ClusterIdPb::decode(rest).map_err(Error::pb("hbase.id"))?;
        return m
            .cluster_id
            .ok_or_else(|| Error::malformed("hbase.id", "field 1 cluster_id", "no cluster id"));
    }
    read_utf("hbase.id", bytes)
}

/// Java `DataOutput.writeUTF`: u16 length + (modified) UTF-8; the whole input must be used.
fn read_utf(what: &'static str, bytes: &[u8]) -> Result<String> {
    let len = take(what, bytes, 0, 2)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let body = take(what, bytes, 2, len)?;
    if bytes.len() != len + 2 {
        return Err(Error::malformed(
            what,
            "PBUF magic or a writeUTF string filling the file",
            crate::error::hex_prefix(bytes),
        ));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| Error::malformed(what, "UTF-8 text", crate::error::hex_prefix(body)))
}

fn table_from_pb(what: &'static str, t: Option<pb::TableNamePb>) -> Result<TableRef> {
    let t = t.ok_or_else(|| Error::malformed(what, "a table_name field", "none"))?;
    if t.qualifier.is_empty() {
        return Err(Error::malformed(
            what,
            "a non-empty table qualifier",
            "an empty one",
        ));
    }
    Ok(TableRef::new(
        String::from_utf8_lossy(&t.namespace).into_owned(),
        String::from_utf8_lossy(&t.qualifier).into_owned(),
    ))
}

/// A region as `.regioninfo` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Table the region belongs to.
    pub table: TableRef,
    /// Inclusive start row (empty = table start).
    pub start_key: Vec<u8>,
    /// Exclusive end row (empty = table end).
    pub end_key: Vec<u8>,
    /// Region id (creation time in ms for normal regions).
    pub region_id: u64,
    /// Region was taken offline (a split parent).
    pub offline: bool,
    /// Region was split.
    pub split: bool,
    /// Replica id (0 = primary).
    pub replica_id: i32,
}

impl RegionInfo {
    pub(crate) fn from_pb(what: &'static str, m: pb::RegionInfoPb) -> Result<Self> {
        Ok(RegionInfo {
            table: table_from_pb(what, m.table_name)?,
            start_key: m.start_key.unwrap_or_default(),
            end_key: m.end_key.unwrap_or_default(),
            region_id: m
                .region_id
                .ok_or_else(|| Error::malformed(what, "field 1 region_id", "none"))?,
            offline: m.offline.unwrap_or(false),
            split: m.split.unwrap_or(false),
            replica_id: m.replica_id.unwrap_or(0),
        })
    }

    /// The encoded region name (directory name): md5 hex of [`RegionInfo::region_name_bytes`],
    /// except hbase:meta's legacy `1588230740`.
    pub fn encoded_name(&self) -> String {
        use md5::Digest;
        if self.table.namespace == "hbase" && self.table.qualifier == "meta" && self.replica_id == 0
        {
            return "1588230740".to_owned();
        }
        md5::Md5::digest(self.region_name_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The string HBase hashes (md5) into the encoded region name: `<table>,<start>,<id>`,
    /// with `_<replica as %04X>` for replicas. Returned as bytes because start keys are binary.
    pub fn region_name_bytes(&self) -> Vec<u8> {
        let mut v = self.table.to_string().into_bytes();
        v.push(b',');
        v.extend_from_slice(&self.start_key);
        v.extend_from_slice(format!(",{}", self.region_id).as_bytes());
        if self.replica_id > 0 {
            v.extend_from_slice(format!("_{:04X}", self.replica_id).as_bytes());
        }
        v
    }
}

/// Parses `.regioninfo`: `PBUF` + varint length + RegionInfo.
pub fn parse_region_info(bytes: &[u8]) -> Result<RegionInfo> {
    const WHAT: &str = ".regioninfo";
    let rest = strip_pbuf(WHAT, bytes)?;
    let (len, used) = varint(WHAT, rest, 0)?;
    let len = usize::try_from(len)
        .map_err(|_| Error::malformed(WHAT, "a message length", len.to_string()))?;
    let body = take(WHAT, rest, used, len)?;
    let m = pb::RegionInfoPb::decode(body).map_err(Error::pb(WHAT))?;
    RegionInfo::from_pb(WHAT, m)
}

/// A column family of a table descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnFamily {
    /// Family name.
    pub name: String,
    /// Attributes such as `VERSIONS`, `COMPRESSION`, `IS_MOB`, as raw bytes.
    pub attributes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ColumnFamily {
    /// Value of an attribute, as raw bytes.
    pub fn attribute(&self, key: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// `IS_MOB` is `true`: the family keeps values under `mobdir/`.
    pub fn is_mob(&self) -> bool {
        self.attribute("IS_MOB")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"true"))
    }
}

/// A table descriptor (`.tableinfo.*` or the schema inside a snapshot manifest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDescriptor {
    /// Table.
    pub table: TableRef,
    /// Column families in descriptor order.
    pub families: Vec<ColumnFamily>,
    /// Table attributes as raw bytes.
    pub attributes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl TableDescriptor {
    pub(crate) fn from_pb(what: &'static str, m: pb::TableSchemaPb) -> Result<Self> {
        Ok(TableDescriptor {
            table: table_from_pb(what, m.table_name)?,
            families: m
                .column_families
                .into_iter()
                .map(|f| ColumnFamily {
                    name: String::from_utf8_lossy(&f.name).into_owned(),
                    attributes: f
                        .attributes
                        .into_iter()
                        .map(|p| (p.first, p.second))
                        .collect(),
                })
                .collect(),
            attributes: m
                .attributes
                .into_iter()
                .map(|p| (p.first, p.second))
                .collect(),
        })
    }
}

/// Parses `.tableinfo.*`: `PBUF` + TableSchema (not length-delimited).
pub fn parse_table_descriptor(bytes: &[u8]) -> Result<TableDescriptor> {
    const WHAT: &str = ".tableinfo";
    let rest = strip_pbuf(WHAT, bytes)?;
    let m = pb::TableSchemaPb::decode(rest).map_err(Error::pb(WHAT))?;
    TableDescriptor::from_pb(WHAT, m)
}

/// Which half of the parent's HFile a Reference selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefHalf {
    /// Rows from the split key to the end.
    Top,
    /// Rows before the split key.
    Bottom,
}

/// Content of a split/merge Reference file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Split key (a serialized KeyValue key).
    pub split_key: Vec<u8>,
    /// Half of the parent file.
    pub half: RefHalf,
    /// Written in the pre-0.96 Writable form.
    pub legacy: bool,
}

impl Reference {
    pub(crate) fn from_pb(what: &'static str, m: pb::ReferencePb) -> Result<Self> {
        let half = match m.range.unwrap_or(0) {
            0 => RefHalf::Top,
            1 => RefHalf::Bottom,
            n => {
                return Err(Error::malformed(
                    what,
                    "range TOP(0) or BOTTOM(1)",
                    n.to_string(),
                ));
            }
        };
        let split_key = m
            .splitkey
            .ok_or_else(|| Error::malformed(what, "field 1 splitkey", "none"))?;
        Ok(Reference {
            split_key,
            half,
            legacy: false,
        })
    }
}

/// Parses a Reference file: `PBUF` + FSProtos.Reference, or the 0.94 Writable form
/// (boolean top + vint length + split key).
pub fn parse_reference(bytes: &[u8]) -> Result<Reference> {
    const WHAT: &str = "Reference file";
    if let Ok(rest) = strip_pbuf(WHAT, bytes) {
        let m = pb::ReferencePb::decode(rest).map_err(Error::pb(WHAT))?;
        return Reference::from_pb(WHAT, m);
    }
    let top = match take(WHAT, bytes, 0, 1)?[0] {
        0 => false,
        1 => true,
        b => {
            return Err(Error::malformed(
                WHAT,
                "PBUF magic or a Writable boolean (0/1)",
                format!("{b:#04x}"),
            ));
        }
    };
    let (len, used) = hadoop_vint(WHAT, bytes, 1)?;
    let len = usize::try_from(len)
        .map_err(|_| Error::malformed(WHAT, "a non-negative key length", len.to_string()))?;
    let key = take(WHAT, bytes, 1 + used, len)?;
    if bytes.len() != 1 + used + len {
        return Err(Error::malformed(
            WHAT,
            "nothing after the split key",
            format!("{} extra bytes", bytes.len() - 1 - used - len),
        ));
    }
    Ok(Reference {
        split_key: key.to_vec(),
        half: if top { RefHalf::Top } else { RefHalf::Bottom },
        legacy: true,
    })
}

/// Hadoop `WritableUtils.readVLong`.
fn hadoop_vint(what: &'static str, buf: &[u8], offset: usize) -> Result<(i64, usize)> {
    let first = take(what, buf, offset, 1)?[0] as i8;
    if first >= -112 {
        return Ok((i64::from(first), 1));
    }
    let negative = first < -120;
    let n = if negative {
        -(i32::from(first) + 120)
    } else {
        -(i32::from(first) + 112)
    } as usize;
    let bytes = take(what, buf, offset + 1, n)?;
    let mut v: i64 = 0;
    for b in bytes {
        v = (v << 8) | i64::from(*b);
    }
    Ok((if negative { !v } else { v }, 1 + n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_id_forms() {
        assert_eq!(
            parse_hbase_version(b"PBUF\x0a\x018").unwrap(),
            HbaseVersion {
                version: "8".into(),
                legacy: false
            }
        );
        assert_eq!(
            parse_hbase_version(b"\x00\x017").unwrap(),
            HbaseVersion {
                version: "7".into(),
                legacy: true
            }
        );
        assert!(parse_hbase_version(b"").is_err());
        assert_eq!(parse_cluster_id(b"PBUF\x0a\x03abc").unwrap(), "abc");
    }

    #[test]
    fn regioninfo_from_research_bytes() {
        // The 43-byte .regioninfo quoted in HBASE-LAYOUT.md §4.
        let mut b =
            b"PBUF\x26\x08\xc5\x9d\xa1\xcc\xb8\x32\x12\x13\x0a\x07default\x12\x08my_table".to_vec();
        b.extend_from_slice(b"\x1a\x00\x22\x00\x28\x00\x30\x00\x38\x00");
        let r = parse_region_info(&b).unwrap();
        assert_eq!(r.table, TableRef::new("default", "my_table"));
        assert_eq!(r.region_id, 1733179231941);
        assert_eq!(r.region_name_bytes(), b"my_table,,1733179231941");
        let e = parse_region_info(&b[..20]).unwrap_err();
        assert!(matches!(e, Error::Truncated { .. }), "{e}");
    }

    #[test]
    fn writable_reference_fixture() {
        let b = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/hbase-real/apache-hbase/reference-writable-0.94/a6a6562b777440fd9c34885428f5cb61.21e75333ada3d5bafb34bb918f29576c"
        ))
        .unwrap();
        let r = parse_reference(&b).unwrap();
        assert!(r.legacy);
        assert_eq!(r.half, RefHalf::Bottom);
        assert_eq!(r.split_key.len(), 22);
        // The split key is a KeyValue key whose row is "0001049952".
        assert_eq!(&r.split_key[2..12], b"0001049952");
        let name = "a6a6562b777440fd9c34885428f5cb61.21e75333ada3d5bafb34bb918f29576c";
        assert_eq!(
            crate::path::parse_reference_name(name),
            Some((
                "a6a6562b777440fd9c34885428f5cb61",
                "21e75333ada3d5bafb34bb918f29576c"
            ))
        );
    }

    #[test]
    fn pb_reference_round_trip() {
        let m = pb::ReferencePb {
            splitkey: Some(b"k".to_vec()),
            range: Some(1),
        };
        let mut b = b"PBUF".to_vec();
        b.extend(m.encode_to_vec());
        let r = parse_reference(&b).unwrap();
        assert_eq!(
            (r.split_key.as_slice(), r.half, r.legacy),
            (&b"k"[..], RefHalf::Bottom, false)
        );
    }
}
