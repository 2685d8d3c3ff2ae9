//! The one error type of this crate: every parser names what it expected and where.

/// Why a path, file or byte range could not be understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a field that must be there.
    #[error(
        "{what}: truncated, expected {needed} bytes at offset {offset} but the input has {len}"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset of the field.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Length of the input.
        len: u64,
    },
    /// The bytes are there but do not have the expected shape.
    #[error("{what}: expected {expected}, found {found}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What the format requires.
        expected: &'static str,
        /// What the input holds instead.
        found: String,
    },
    /// A protobuf message did not decode.
    #[error("{what}: invalid protobuf message")]
    Protobuf {
        /// Which message.
        what: &'static str,
        /// The decoder's reason.
        #[source]
        source: prost::DecodeError,
    },
    /// The input is a valid file of a kind or version this crate does not read.
    #[error("{what}: unsupported {detail}")]
    Unsupported {
        /// What was being read.
        what: &'static str,
        /// The unsupported feature or version.
        detail: String,
    },
    /// An HFile block checksum does not match its data.
    #[error(
        "HFile block at offset {block_offset}: checksum chunk {chunk} stored {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        /// File offset of the block header.
        block_offset: u64,
        /// Index of the failing chunk inside the block.
        chunk: u64,
        /// Checksum stored in the file.
        stored: u32,
        /// Checksum computed from the bytes.
        computed: u32,
    },
    /// Decompressing a block payload failed.
    #[error("{what}: decompression failed")]
    Decompress {
        /// What was being decompressed.
        what: &'static str,
        /// The decoder's reason.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn malformed(
        what: &'static str,
        expected: &'static str,
        found: impl Into<String>,
    ) -> Self {
        Error::Malformed {
            what,
            expected,
            found: found.into(),
        }
    }

    pub(crate) fn pb(what: &'static str) -> impl FnOnce(prost::DecodeError) -> Self {
        move |source| Error::Protobuf { what, source }
    }

    /// True when the input is well-formed but of a kind or version this crate does not read
    /// (HFile v1, an encrypted or value-compressed WAL, a codec other than GZ/NONE).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }

    /// True when the bytes contradict their own checksum: the file is corrupt.
    pub fn is_checksum_mismatch(&self) -> bool {
        matches!(self, Error::ChecksumMismatch { .. })
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bounds-checked slice of `len` bytes at `offset`; never panics.
pub(crate) fn take<'a>(
    what: &'static str,
    buf: &'a [u8],
    offset: usize,
    len: usize,
) -> Result<&'a [u8]> {
    offset
        .checked_add(len)
        .and_then(|end| buf.get(offset..end))
        .ok_or(Error::Truncated {
            what,
            offset: offset as u64,
            needed: len as u64,
            len: buf.len() as u64,
        })
}

pub(crate) fn be_u32(what: &'static str, buf: &[u8], offset: usize) -> Result<u32> {
    let b = take(what, buf, offset, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn be_u64(what: &'static str, buf: &[u8], offset: usize) -> Result<u64> {
    let b = take(what, buf, offset, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_be_bytes(a))
}

/// Reads a protobuf base-128 varint at `offset`; returns (value, bytes used).
pub(crate) fn varint(what: &'static str, buf: &[u8], offset: usize) -> Result<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *buf.get(offset + i).ok_or(Error::Truncated {
            what,
            offset: (offset + i) as u64,
            needed: 1,
            len: buf.len() as u64,
        })?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(Error::malformed(
        what,
        "a varint of at most 10 bytes",
        "a longer varint",
    ))
}

/// The 4-byte magic HBase puts in front of protobuf files on disk.
pub(crate) const PB_MAGIC: &[u8; 4] = b"PBUF";

/// Strips the `PBUF` magic or fails naming `what`.
pub(crate) fn strip_pbuf<'a>(what: &'static str, buf: &'a [u8]) -> Result<&'a [u8]> {
    match buf.strip_prefix(PB_MAGIC) {
        Some(rest) => Ok(rest),
        None => Err(Error::malformed(what, "the PBUF magic", hex_prefix(buf))),
    }
}

pub(crate) fn hex_prefix(buf: &[u8]) -> String {
    let mut s: String = buf.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if buf.is_empty() {
        s.push_str("an empty input");
    } else if buf.len() > 8 {
        s.push('…');
    }
    s
}
