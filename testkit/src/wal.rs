//! WALs as a region server writes them, for the preflight's tests: plain WALs built from edits
//! ([`plain_wal`]), and any plain WAL re-encoded as HBase writes it with WAL compression on
//! (`hbase.regionserver.wal.enablecompression`, [`compress_wal`]).
//!
//! The compressed layout followed is HBase 1.x through 2.4's (and 2.5+'s without value
//! compression): `ProtobufLogWriter` sets `has_compression` (and `has_tag_compression`, on by
//! default) in the `WALHeader`; `WALKeyImpl.getBuilder` codes the region and table names, each
//! replication scope's family and each extended attribute's value through the region, table,
//! family and table dictionaries; `WALCellCodec.CompressedKvEncoder` writes a cell as varint key,
//! value and tags lengths, then row, family and qualifier through their dictionaries, then
//! timestamp, type and value as they are, then each tag through the tag dictionary. A coded
//! value is `0xFF`, a varint length and the bytes (added to the dictionary) when the dictionary
//! does not hold it, else its 2-byte big-endian index. The dictionaries are `LRUDictionary`s of
//! 32767 entries (127 for families and qualifiers) that evict the least recently used and never
//! store an empty value. Written from that description, independently of hbcp's reader.

/// One cell of a WAL edit.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Row key.
    pub row: Vec<u8>,
    /// Column family.
    pub family: Vec<u8>,
    /// Column qualifier.
    pub qualifier: Vec<u8>,
    /// Timestamp, ms.
    pub timestamp: u64,
    /// KeyValue type byte (4 = Put).
    pub kind: u8,
    /// Value.
    pub value: Vec<u8>,
    /// Tags, each as HBase serialises it (2-byte length, type byte, value); empty for none.
    pub tags: Vec<Vec<u8>>,
}

/// One WAL entry: a WALKey and its cells.
#[derive(Clone, Debug)]
pub struct Edit {
    /// Encoded region name.
    pub region: String,
    /// Table name.
    pub table: String,
    /// Log sequence number.
    pub seq: u64,
    /// Replication scopes (families).
    pub scopes: Vec<Vec<u8>>,
    /// Cells.
    pub cells: Vec<Cell>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], p: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*p).ok_or("varint past the end")?;
        *p += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn get<'a>(buf: &'a [u8], p: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let s = buf
        .get(*p..p.checked_add(n).ok_or("length overflow")?)
        .ok_or_else(|| format!("{n} bytes at {} past the end ({})", *p, buf.len()))?;
    *p += n;
    Ok(s)
}

/// A protobuf field as it was on the wire: its number and its value.
#[derive(Clone, Debug)]
enum Field {
    Varint(u32, u64),
    Fixed64(u32, [u8; 8]),
    Bytes(u32, Vec<u8>),
    Fixed32(u32, [u8; 4]),
}

fn fields(msg: &[u8]) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < msg.len() {
        let tag = get_varint(msg, &mut p)?;
        let no = (tag >> 3) as u32;
        out.push(match tag & 7 {
            0 => Field::Varint(no, get_varint(msg, &mut p)?),
            1 => Field::Fixed64(no, get(msg, &mut p, 8)?.try_into().unwrap()),
            2 => {
                let n = get_varint(msg, &mut p)? as usize;
                Field::Bytes(no, get(msg, &mut p, n)?.to_vec())
            }
            5 => Field::Fixed32(no, get(msg, &mut p, 4)?.try_into().unwrap()),
            w => return Err(format!("protobuf wire type {w}")),
        });
    }
    Ok(out)
}

fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Field::Varint(n, v) => {
                put_varint(&mut out, u64::from(*n) << 3);
                put_varint(&mut out, *v);
            }
            Field::Fixed64(n, b) => {
                put_varint(&mut out, (u64::from(*n) << 3) | 1);
                out.extend_from_slice(b);
            }
            Field::Bytes(n, b) => {
                put_varint(&mut out, (u64::from(*n) << 3) | 2);
                put_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Field::Fixed32(n, b) => {
                put_varint(&mut out, (u64::from(*n) << 3) | 5);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

fn delimited(out: &mut Vec<u8>, msg: &[u8]) {
    put_varint(out, msg.len() as u64);
    out.extend_from_slice(msg);
}

/// The writer's side of an `LRUDictionary`.
struct Dict {
    cap: usize,
    entries: Vec<(Vec<u8>, u64)>,
    clock: u64,
}

impl Dict {
    fn new(cap: usize) -> Self {
        Dict {
            cap,
            entries: Vec::new(),
            clock: 0,
        }
    }

    /// Writes `data` coded: its index when held (a use), else the literal (then added).
    fn write(&mut self, out: &mut Vec<u8>, data: &[u8]) {
        self.clock += 1;
        if let Some(i) = self.entries.iter().position(|(d, _)| d == data) {
            self.entries[i].1 = self.clock;
            out.extend_from_slice(&(i as u16).to_be_bytes());
            return;
        }
        out.push(0xFF);
        put_varint(out, data.len() as u64);
        out.extend_from_slice(data);
        if data.is_empty() {
            return;
        }
        if self.entries.len() < self.cap {
            self.entries.push((data.to_vec(), self.clock));
        } else {
            let lru = (0..self.entries.len())
                .min_by_key(|i| self.entries[*i].1)
                .unwrap();
            self.entries[lru] = (data.to_vec(), self.clock);
        }
    }

    fn coded(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out, data);
        out
    }
}

/// A plain (uncompressed) WAL of `edits`, closed with a trailer when `closed`.
pub fn plain_wal(edits: &[Edit], closed: bool) -> Vec<u8> {
    let mut w = b"PWAL".to_vec();
    let header = encode(&[
        Field::Varint(1, 0),
        Field::Bytes(4, b"ProtobufLogWriter".to_vec()),
        Field::Bytes(
            5,
            b"org.apache.hadoop.hbase.regionserver.wal.WALCellCodec".to_vec(),
        ),
    ]);
    delimited(&mut w, &header);
    for e in edits {
        let mut key = vec![
            Field::Bytes(1, e.region.as_bytes().to_vec()),
            Field::Bytes(2, e.table.as_bytes().to_vec()),
            Field::Varint(3, e.seq),
            Field::Varint(4, 1_700_000_000_000 + e.seq),
        ];
        for s in &e.scopes {
            key.push(Field::Bytes(
                6,
                encode(&[Field::Bytes(1, s.clone()), Field::Varint(2, 1)]),
            ));
        }
        key.push(Field::Varint(7, e.cells.len() as u64));
        delimited(&mut w, &encode(&key));
        for c in &e.cells {
            let key_len = 2 + c.row.len() + 1 + c.family.len() + c.qualifier.len() + 9;
            let tags: Vec<u8> = c.tags.concat();
            let mut kv = Vec::new();
            kv.extend_from_slice(&(key_len as u32).to_be_bytes());
            kv.extend_from_slice(&(c.value.len() as u32).to_be_bytes());
            kv.extend_from_slice(&(c.row.len() as u16).to_be_bytes());
            kv.extend_from_slice(&c.row);
            kv.push(c.family.len() as u8);
            kv.extend_from_slice(&c.family);
            kv.extend_from_slice(&c.qualifier);
            kv.extend_from_slice(&c.timestamp.to_be_bytes());
            kv.push(c.kind);
            kv.extend_from_slice(&c.value);
            if !tags.is_empty() {
                kv.extend_from_slice(&(tags.len() as u16).to_be_bytes());
                kv.extend_from_slice(&tags);
            }
            w.extend_from_slice(&(kv.len() as u32).to_be_bytes());
            w.extend_from_slice(&kv);
        }
    }
    if closed {
        w.extend_from_slice(&0u32.to_be_bytes());
        w.extend_from_slice(b"LAWP");
    }
    w
}

/// `plain`, a WAL without compression (a real one or [`plain_wal`]'s), written again as a
/// region server with WAL compression (and tag compression) would have written the same
/// entries. An entry cut off at the end of an open WAL is left out; the trailer of a closed WAL
/// is kept as it is.
pub fn compress_wal(plain: &[u8]) -> Result<Vec<u8>, String> {
    if !plain.starts_with(b"PWAL") {
        return Err("not a protobuf WAL (no PWAL magic)".into());
    }
    let mut p = 4;
    let hlen = get_varint(plain, &mut p)? as usize;
    let mut header = fields(get(plain, &mut p, hlen)?)?;
    if header
        .iter()
        .any(|f| matches!(f, Field::Varint(1, 1) | Field::Bytes(2, _)))
    {
        return Err("already compressed or encrypted".into());
    }
    header.retain(|f| !matches!(f, Field::Varint(1 | 3, _)));
    header.insert(0, Field::Varint(1, 1));
    header.insert(1, Field::Varint(3, 1));
    // A closed WAL ends with WALTrailer, its int32 size and "LAWP".
    let mut end = plain.len();
    if plain.len() >= p + 8 && plain.ends_with(b"LAWP") {
        let n = plain.len() - 8;
        let size = u32::from_be_bytes(plain[n..n + 4].try_into().unwrap()) as usize;
        if let Some(start) = n.checked_sub(size).filter(|s| *s >= p) {
            end = start;
        }
    }
    let trailer = &plain[end..];
    let body = &plain[..end];
    let mut out = b"PWAL".to_vec();
    delimited(&mut out, &encode(&header));
    let short = i16::MAX as usize;
    let (mut region, mut table, mut family, mut qualifier, mut row, mut tag) = (
        Dict::new(short),
        Dict::new(short),
        Dict::new(127),
        Dict::new(127),
        Dict::new(short),
        Dict::new(short),
    );
    while p < body.len() {
        let mut entry = Vec::new();
        let one = (|| -> Result<(), String> {
            let klen = get_varint(body, &mut p)? as usize;
            let mut key = fields(get(body, &mut p, klen)?)?;
            // The writer's order: region, table, scope families, attribute values.
            for no in [1, 2] {
                for f in key.iter_mut() {
                    if let Field::Bytes(n, v) = f {
                        if *n == no {
                            *v = if no == 1 {
                                region.coded(v)
                            } else {
                                table.coded(v)
                            };
                        }
                    }
                }
            }
            for (no, inner, dict) in [(6, 1, &mut family), (12, 2, &mut table)] {
                for f in key.iter_mut() {
                    if let Field::Bytes(n, v) = f {
                        if *n == no {
                            let mut sub = fields(v)?;
                            for g in sub.iter_mut() {
                                if let Field::Bytes(m, w) = g {
                                    if *m == inner {
                                        *w = dict.coded(w);
                                    }
                                }
                            }
                            *v = encode(&sub);
                        }
                    }
                }
            }
            let cells = key
                .iter()
                .find_map(|f| match f {
                    Field::Varint(7, n) => Some(*n),
                    _ => None,
                })
                .unwrap_or(0);
            delimited(&mut entry, &encode(&key));
            for _ in 0..cells {
                let total = u32::from_be_bytes(get(body, &mut p, 4)?.try_into().unwrap()) as usize;
                let kv = get(body, &mut p, total)?;
                let mut q = 0;
                let be32 = |q: &mut usize| -> Result<usize, String> {
                    Ok(u32::from_be_bytes(get(kv, q, 4)?.try_into().unwrap()) as usize)
                };
                let key_len = be32(&mut q)?;
                let value_len = be32(&mut q)?;
                let row_len = u16::from_be_bytes(get(kv, &mut q, 2)?.try_into().unwrap()) as usize;
                let r = get(kv, &mut q, row_len)?;
                let fam_len = get(kv, &mut q, 1)?[0] as usize;
                let fam = get(kv, &mut q, fam_len)?;
                let qual_len = key_len
                    .checked_sub(2 + row_len + 1 + fam_len + 9)
                    .ok_or("key shorter than its parts")?;
                let qual = get(kv, &mut q, qual_len)?;
                let ts_type = get(kv, &mut q, 9)?;
                let value = get(kv, &mut q, value_len)?;
                let tags = if q < kv.len() {
                    let n = u16::from_be_bytes(get(kv, &mut q, 2)?.try_into().unwrap()) as usize;
                    get(kv, &mut q, n)?
                } else {
                    &[]
                };
                put_varint(&mut entry, key_len as u64);
                put_varint(&mut entry, value_len as u64);
                put_varint(&mut entry, tags.len() as u64);
                row.write(&mut entry, r);
                family.write(&mut entry, fam);
                qualifier.write(&mut entry, qual);
                entry.extend_from_slice(ts_type);
                entry.extend_from_slice(value);
                let mut t = 0;
                while t < tags.len() {
                    let n = u16::from_be_bytes(get(tags, &mut t, 2)?.try_into().unwrap()) as usize;
                    tag.write(&mut entry, get(tags, &mut t, n)?);
                }
            }
            Ok(())
        })();
        match one {
            Ok(()) => out.extend_from_slice(&entry),
            Err(_) if trailer.is_empty() => break, // the cut-off last entry of an open WAL
            Err(e) => return Err(e),
        }
    }
    out.extend_from_slice(trailer);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hbcp_hbase::WalSummary;

    fn cell(row: String, family: String, qualifier: String, tags: Vec<Vec<u8>>) -> Cell {
        Cell {
            row: row.into_bytes(),
            family: family.into_bytes(),
            qualifier: qualifier.into_bytes(),
            timestamp: 1_700_000_000_000,
            kind: 4,
            value: b"v".to_vec(),
            tags,
        }
    }

    #[test]
    fn compressed_and_plain_wals_hold_the_same_entries_even_when_the_dictionaries_evict() {
        // 300 entries over 200 families and 150 qualifiers (dictionaries of 127: evictions and
        // re-reads of evicted names), repeated rows, empty qualifiers, tags, scopes.
        let edits: Vec<Edit> = (0..300u64)
            .map(|i| Edit {
                region: format!("{:032x}", i % 7),
                table: format!("ns:t{}", i % 3),
                seq: i + 1,
                scopes: vec![format!("f{}", i % 200).into_bytes()],
                cells: vec![
                    cell(
                        format!("row{}", i % 40),
                        format!("f{}", i % 200),
                        format!("q{}", i % 150),
                        if i % 5 == 0 {
                            vec![vec![0, 2, 8, i as u8]]
                        } else {
                            vec![]
                        },
                    ),
                    cell(
                        format!("row{i}"),
                        format!("g{}", i % 2),
                        String::new(),
                        vec![],
                    ),
                ],
            })
            .collect();
        for closed in [true, false] {
            let plain = plain_wal(&edits, closed);
            let z = compress_wal(&plain).unwrap();
            assert!(z.len() < plain.len(), "{} vs {}", z.len(), plain.len());
            let a = WalSummary::parse(&plain).unwrap();
            let b = WalSummary::parse(&z).unwrap();
            assert!(!a.compressed && b.compressed);
            assert_eq!(a.closed, b.closed);
            assert_eq!(a.entries.len(), 300);
            assert_eq!(a.entries, b.entries);
            assert_eq!(a.max_data_seq_ids(), b.max_data_seq_ids());
        }
    }
}
