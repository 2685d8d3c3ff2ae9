//! Just enough protobuf encoding to write the small messages HBase keeps on disk
//! (`.regioninfo`, `.tableinfo`, `hbase.version`, references, snapshot manifests, WAL headers,
//! HFile trailers). Field numbers follow HBase's .proto files, as cited in
//! shared/research/HBASE-LAYOUT.md §3–§6.

/// A message being encoded.
#[derive(Default, Clone)]
pub struct Msg(pub Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    /// An empty message.
    pub fn new() -> Self {
        Msg(Vec::new())
    }
    /// A varint field (uint64, int64 ≥ 0, bool, enum).
    pub fn uint(mut self, field: u32, v: u64) -> Self {
        varint(&mut self.0, (field as u64) << 3);
        varint(&mut self.0, v);
        self
    }
    /// A length-delimited field (bytes, string, sub-message).
    pub fn bytes(mut self, field: u32, v: &[u8]) -> Self {
        varint(&mut self.0, ((field as u64) << 3) | 2);
        varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }
    /// A sub-message field.
    pub fn msg(self, field: u32, m: &Msg) -> Self {
        self.bytes(field, &m.0)
    }
    /// The message prefixed with its varint length (`writeDelimitedTo`).
    pub fn delimited(&self) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, self.0.len() as u64);
        out.extend_from_slice(&self.0);
        out
    }
}

/// `PBUF` magic followed by `body`.
pub fn pbuf(body: &[u8]) -> Vec<u8> {
    let mut v = b"PBUF".to_vec();
    v.extend_from_slice(body);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_protobuf() {
        // hbase.version of every 0.96+ root: PBUF 0a 01 38.
        assert_eq!(pbuf(&Msg::new().bytes(1, b"8").0), b"PBUF\x0a\x018");
        // region_id 1733179231941 as in the research's real .regioninfo (08 c5 9d a1 cc b8 32).
        assert_eq!(
            Msg::new().uint(1, 1733179231941).0,
            [0x08, 0xc5, 0x9d, 0xa1, 0xcc, 0xb8, 0x32]
        );
        assert_eq!(Msg::new().uint(1, 5).delimited(), [2, 0x08, 5]);
    }
}
