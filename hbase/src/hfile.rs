//! HFile v2/v3 reading for validation: the fixed trailer from a tail read, the FileInfo
//! block from the load-on-open section, and a full block walk with per-chunk checksums.
//! A copier uses the cheap tail check on every HFile and the walk for deep verification.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;

use prost::Message;

use crate::error::{Error, Result, be_u32, be_u64, strip_pbuf, take, varint};
use crate::pb;

/// Bytes to read from the end of an HFile to parse its trailer (the largest trailer).
pub const MAX_TRAILER_SIZE: u64 = 4096;
const TRAILER_MAGIC: &[u8; 8] = b"TRABLK\"$";

/// HFile format version from the last 4 bytes: `minor << 24 | major`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HFileVersion {
    /// Major version (2 or 3 are readable).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl HFileVersion {
    /// Trailer size for this major version.
    pub fn trailer_size(self) -> Option<u64> {
        match self.major {
            2 => Some(212),
            3 => Some(4096),
            _ => None,
        }
    }

    /// Block headers carry HBase checksums (33-byte header) rather than the 24-byte v2.0 header.
    pub fn has_block_checksums(self) -> bool {
        self.major == 3 || self.minor >= 1
    }
}

/// Compression codec of the blocks (`Compression.Algorithm` ordinal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// LZO.
    Lzo,
    /// gzip.
    Gz,
    /// Uncompressed.
    None,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// bzip2.
    Bzip2,
    /// Zstandard.
    Zstd,
    /// LZMA.
    Lzma,
    /// Brotli.
    Brotli,
    /// An ordinal this crate does not know.
    Unknown(u32),
}

impl Compression {
    fn from_ordinal(n: u32) -> Self {
        match n {
            0 => Compression::Lzo,
            1 => Compression::Gz,
            2 => Compression::None,
            3 => Compression::Snappy,
            4 => Compression::Lz4,
            5 => Compression::Bzip2,
            6 => Compression::Zstd,
            7 => Compression::Lzma,
            8 => Compression::Brotli,
            n => Compression::Unknown(n),
        }
    }
}

/// The fixed file trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HFileTrailer {
    /// Format version.
    pub version: HFileVersion,
    /// Trailer size in bytes (212 or 4096); the trailer starts at `file_size - trailer_size`.
    pub trailer_size: u64,
    /// Offset of the FILEINF2 block.
    pub file_info_offset: u64,
    /// Offset of the load-on-open section (root index, meta index, file info, bloom meta).
    pub load_on_open_offset: u64,
    /// Uncompressed size of the whole data index.
    pub uncompressed_data_index_size: u64,
    /// Total uncompressed bytes of all blocks.
    pub total_uncompressed_bytes: u64,
    /// Entries in the root data index.
    pub data_index_count: u32,
    /// Entries in the meta index.
    pub meta_index_count: u32,
    /// Number of cells.
    pub entry_count: u64,
    /// Levels of the data index.
    pub num_data_index_levels: u32,
    /// Offset of the first data block (`u64::MAX` when there are no entries).
    pub first_data_block_offset: u64,
    /// Offset of the last data block (`u64::MAX` when there are no entries).
    pub last_data_block_offset: u64,
    /// Comparator class name.
    pub comparator: String,
    /// Block compression.
    pub compression: Compression,
    /// The file carries an encryption key (blocks are encrypted).
    pub encrypted: bool,
}

impl HFileTrailer {
    /// The byte range to read from a file of `file_size` bytes for [`HFileTrailer::parse`].
    pub fn tail_range(file_size: u64) -> Range<u64> {
        file_size.saturating_sub(MAX_TRAILER_SIZE)..file_size
    }

    /// Parses the trailer from the last bytes of the file (`tail`, at most [`MAX_TRAILER_SIZE`]
    /// is needed; more is fine) and the file size. Checks the magic, zero padding and offsets.
    pub fn parse(tail: &[u8], file_size: u64) -> Result<Self> {
        const WHAT: &str = "HFile trailer";
        if (tail.len() as u64) > file_size {
            return Err(Error::malformed(
                WHAT,
                "a tail no longer than the file",
                format!("{} > {file_size}", tail.len()),
            ));
        }
        if tail.len() < 4 {
            return Err(Error::Truncated {
                what: WHAT,
                offset: 0,
                needed: 4,
                len: tail.len() as u64,
            });
        }
        let word = be_u32(WHAT, tail, tail.len() - 4)?;
        let version = HFileVersion {
            major: word & 0x00ff_ffff,
            minor: word >> 24,
        };
        if version.major == 1 {
            return Err(Error::Unsupported {
                what: "HFile",
                detail: "format version 1 (HBase 0.90-0.94)".into(),
            });
        }
        let trailer_size = version.trailer_size().ok_or_else(|| {
            Error::malformed(
                WHAT,
                "major version 2 or 3 in the last 4 bytes",
                format!("{word:#010x}"),
            )
        })?;
        if version.minor > 3 {
            return Err(Error::Unsupported {
                what: "HFile",
                detail: format!("minor version {}", version.minor),
            });
        }
        let ts = trailer_size as usize;
        if (tail.len() as u64) < trailer_size {
            return Err(Error::Truncated {
                what: WHAT,
                offset: file_size.saturating_sub(trailer_size),
                needed: trailer_size,
                len: tail.len() as u64,
            });
        }
        let t = take(WHAT, tail, tail.len() - ts, ts)?;
        if &t[..8] != TRAILER_MAGIC {
            return Err(Error::malformed(
                WHAT,
                "the TRABLK\"$ magic",
                crate::error::hex_prefix(t),
            ));
        }
        let body = &t[8..ts - 4];
        let tr = if version.major == 3 || version.minor >= 2 {
            let (len, used) = varint(WHAT, body, 0)?;
            let len = usize::try_from(len)
                .map_err(|_| Error::malformed(WHAT, "a message length", len.to_string()))?;
            let msg = take(WHAT, body, used, len)?;
            if body[used + len..].iter().any(|&b| b != 0) {
                return Err(Error::malformed(
                    WHAT,
                    "zero padding after the trailer message",
                    "non-zero bytes",
                ));
            }
            let m = pb::FileTrailerPb::decode(msg).map_err(Error::pb(WHAT))?;
            HFileTrailer {
                version,
                trailer_size,
                file_info_offset: m.file_info_offset.unwrap_or(0),
                load_on_open_offset: m.load_on_open_data_offset.unwrap_or(0),
                uncompressed_data_index_size: m.uncompressed_data_index_size.unwrap_or(0),
                total_uncompressed_bytes: m.total_uncompressed_bytes.unwrap_or(0),
                data_index_count: m.data_index_count.unwrap_or(0),
                meta_index_count: m.meta_index_count.unwrap_or(0),
                entry_count: m.entry_count.unwrap_or(0),
                num_data_index_levels: m.num_data_index_levels.unwrap_or(0),
                first_data_block_offset: m.first_data_block_offset.unwrap_or(0),
                last_data_block_offset: m.last_data_block_offset.unwrap_or(0),
                comparator: m.comparator_class_name.unwrap_or_default(),
                compression: Compression::from_ordinal(m.compression_codec.unwrap_or(2)),
                encrypted: m.encryption_key.is_some_and(|k| !k.is_empty()),
            }
        } else {
            // Writable trailer of v2 minor 0/1.
            let i64_at = |o| be_u64(WHAT, body, o);
            let i32_at = |o| be_u32(WHAT, body, o);
            let cmp = take(WHAT, body, 80, 128)?;
            let cmp_end = cmp.iter().position(|&b| b == 0).unwrap_or(cmp.len());
            HFileTrailer {
                version,
                trailer_size,
                file_info_offset: i64_at(0)?,
                load_on_open_offset: i64_at(8)?,
                data_index_count: i32_at(16)?,
                uncompressed_data_index_size: i64_at(20)?,
                meta_index_count: i32_at(28)?,
                total_uncompressed_bytes: i64_at(32)?,
                entry_count: i64_at(40)?,
                compression: Compression::from_ordinal(i32_at(48)?),
                num_data_index_levels: i32_at(52)?,
                first_data_block_offset: i64_at(56)?,
                last_data_block_offset: i64_at(64)?,
                comparator: String::from_utf8_lossy(&cmp[..cmp_end]).into_owned(),
                encrypted: false,
            }
        };
        let end = file_size - trailer_size;
        if tr.load_on_open_offset >= end
            || tr.file_info_offset < tr.load_on_open_offset
            || tr.file_info_offset >= end
        {
            return Err(Error::malformed(
                WHAT,
                "load_on_open <= file_info < trailer start",
                format!(
                    "load_on_open {}, file_info {}, trailer at {end}",
                    tr.load_on_open_offset, tr.file_info_offset
                ),
            ));
        }
        if tr.entry_count > 0
            && (tr.first_data_block_offset > tr.last_data_block_offset
                || tr.last_data_block_offset >= tr.load_on_open_offset)
        {
            return Err(Error::malformed(
                WHAT,
                "first <= last data block < load_on_open",
                format!(
                    "first {}, last {}",
                    tr.first_data_block_offset, tr.last_data_block_offset
                ),
            ));
        }
        Ok(tr)
    }

    /// The load-on-open section (root index .. trailer): fetch it for [`read_file_info`].
    pub fn load_on_open_range(&self, file_size: u64) -> Range<u64> {
        self.load_on_open_offset..file_size.saturating_sub(self.trailer_size)
    }
}

/// Kind of an HFile block, from its 8-byte magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum BlockType {
    /// `DATABLK*`.
    Data,
    /// `DATABLKE` (data block encoding).
    EncodedData,
    /// `IDXLEAF2`.
    LeafIndex,
    /// `BLMFBLK2`.
    BloomChunk,
    /// `METABLKc`.
    Meta,
    /// `IDXINTE2`.
    IntermediateIndex,
    /// `IDXROOT2`.
    RootIndex,
    /// `FILEINF2`.
    FileInfo,
    /// `BLMFMET2`.
    GeneralBloomMeta,
    /// `DFBLMET2`.
    DeleteFamilyBloomMeta,
}

impl BlockType {
    fn from_magic(m: &[u8]) -> Option<Self> {
        Some(match m {
            b"DATABLK*" => BlockType::Data,
            b"DATABLKE" => BlockType::EncodedData,
            b"IDXLEAF2" => BlockType::LeafIndex,
            b"BLMFBLK2" => BlockType::BloomChunk,
            b"METABLKc" => BlockType::Meta,
            b"IDXINTE2" => BlockType::IntermediateIndex,
            b"IDXROOT2" => BlockType::RootIndex,
            b"FILEINF2" => BlockType::FileInfo,
            b"BLMFMET2" => BlockType::GeneralBloomMeta,
            b"DFBLMET2" => BlockType::DeleteFamilyBloomMeta,
            _ => return None,
        })
    }
}

/// Checksum algorithm of a block (`ChecksumType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChecksumType {
    /// No checksum (also v2.0 files, which have none).
    Null,
    /// CRC32 (zlib polynomial).
    Crc32,
    /// CRC32C (Castagnoli).
    Crc32c,
}

/// One block as found in the file.
struct Block<'a> {
    kind: BlockType,
    /// Header + payload + checksums.
    on_disk_len: usize,
    uncompressed_len: usize,
    checksum: ChecksumType,
    chunks: u64,
    /// Compressed (or plain) payload.
    payload: &'a [u8],
}

/// Parses and checksum-verifies the block starting at `buf[off..]`; `file_off` is its file offset.
fn read_block(buf: &[u8], off: usize, file_off: u64, version: HFileVersion) -> Result<Block<'_>> {
    const WHAT: &str = "HFile block header";
    let hlen = if version.has_block_checksums() {
        33
    } else {
        24
    };
    let h = take(WHAT, buf, off, hlen)?;
    let kind = BlockType::from_magic(&h[..8]).ok_or_else(|| {
        Error::malformed(
            WHAT,
            "a known block magic",
            format!("{} at offset {file_off}", crate::error::hex_prefix(h)),
        )
    })?;
    let on_disk = be_u32(WHAT, h, 8)? as usize;
    let uncompressed_len = be_u32(WHAT, h, 12)? as usize;
    let on_disk_len = hlen
        .checked_add(on_disk)
        .ok_or_else(|| Error::malformed(WHAT, "a block size", on_disk.to_string()))?;
    let block = take("HFile block", buf, off, on_disk_len)?;
    if hlen == 24 {
        return Ok(Block {
            kind,
            on_disk_len,
            uncompressed_len,
            checksum: ChecksumType::Null,
            chunks: 0,
            payload: &block[hlen..],
        });
    }
    let ctype = match h[24] {
        0 => ChecksumType::Null,
        1 => ChecksumType::Crc32,
        2 => ChecksumType::Crc32c,
        b => {
            return Err(Error::malformed(
                WHAT,
                "checksum type 0, 1 or 2",
                format!("{b} at offset {file_off}"),
            ));
        }
    };
    let bpc = be_u32(WHAT, h, 25)? as usize;
    let data_len = be_u32(WHAT, h, 29)? as usize;
    if data_len < hlen || data_len > on_disk_len {
        return Err(Error::malformed(
            WHAT,
            "header <= onDiskDataSizeWithHeader <= block size",
            format!("{data_len} (block {on_disk_len}) at offset {file_off}"),
        ));
    }
    let data = &block[..data_len];
    let sums = &block[data_len..];
    let mut chunks = 0u64;
    if ctype != ChecksumType::Null {
        if bpc == 0 {
            return Err(Error::malformed(
                WHAT,
                "bytesPerChecksum > 0",
                format!("0 at offset {file_off}"),
            ));
        }
        let n = data_len.div_ceil(bpc);
        if sums.len() != n * 4 {
            return Err(Error::malformed(
                "HFile block checksums",
                "4 bytes per bytesPerChecksum chunk after the data",
                format!("{} bytes for {n} chunks at offset {file_off}", sums.len()),
            ));
        }
        for (i, (chunk, stored)) in data.chunks(bpc).zip(sums.chunks_exact(4)).enumerate() {
            let stored = u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]);
            let alg = match ctype {
                ChecksumType::Crc32 => crc_fast::CrcAlgorithm::Crc32IsoHdlc,
                _ => crc_fast::CrcAlgorithm::Crc32Iscsi,
            };
            let computed = crc_fast::checksum(alg, chunk) as u32;
            if computed != stored {
                return Err(Error::ChecksumMismatch {
                    block_offset: file_off,
                    chunk: i as u64,
                    stored,
                    computed,
                });
            }
        }
        chunks = n as u64;
    }
    Ok(Block {
        kind,
        on_disk_len,
        uncompressed_len,
        checksum: ctype,
        chunks,
        payload: &data[hlen..],
    })
}

/// Decompresses a block payload to its uncompressed size.
fn unpack(
    what: &'static str,
    payload: &[u8],
    expected: usize,
    codec: Compression,
) -> Result<Vec<u8>> {
    match codec {
        Compression::None => {
            if payload.len() != expected {
                return Err(Error::malformed(
                    what,
                    "payload length equal to the uncompressed size",
                    payload.len().to_string(),
                ));
            }
            Ok(payload.to_vec())
        }
        Compression::Gz => {
            let mut out = Vec::with_capacity(expected.min(1 << 24));
            let limit = expected as u64 + 1;
            let r = if payload.starts_with(&[0x1f, 0x8b]) {
                flate2::read::MultiGzDecoder::new(payload)
                    .take(limit)
                    .read_to_end(&mut out)
            } else {
                flate2::read::ZlibDecoder::new(payload)
                    .take(limit)
                    .read_to_end(&mut out)
            };
            r.map_err(|source| Error::Decompress { what, source })?;
            if out.len() != expected {
                return Err(Error::malformed(
                    what,
                    "the uncompressed size from the block header",
                    out.len().to_string(),
                ));
            }
            Ok(out)
        }
        other => Err(Error::Unsupported {
            what,
            detail: format!("block compression {other:?}"),
        }),
    }
}

/// Key/value pairs of the FileInfo block, with the ones a copier uses decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// All entries as raw bytes, in file order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// `MAX_SEQ_ID_KEY`: the highest WAL sequence id persisted in the file.
    pub max_seq_id: Option<i64>,
    /// `TIMERANGE`: (min, max) cell timestamp, when in the PB (2.x) or two-long (1.x) form.
    pub time_range: Option<(i64, i64)>,
}

impl FileInfo {
    /// Raw value of a key.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// Parses a FILEINF2 payload (uncompressed): `PBUF` + varint-delimited FileInfoProto.
pub fn parse_file_info_payload(payload: &[u8]) -> Result<FileInfo> {
    const WHAT: &str = "HFile FileInfo";
    let rest = strip_pbuf(WHAT, payload).map_err(|_| Error::Unsupported {
        what: WHAT,
        detail: "pre-protobuf (Writable) FileInfo".into(),
    })?;
    let (len, used) = varint(WHAT, rest, 0)?;
    let len = usize::try_from(len)
        .map_err(|_| Error::malformed(WHAT, "a message length", len.to_string()))?;
    let m = pb::FileInfoPb::decode(take(WHAT, rest, used, len)?).map_err(Error::pb(WHAT))?;
    let entries: Vec<(Vec<u8>, Vec<u8>)> = m
        .map_entry
        .into_iter()
        .map(|p| (p.first, p.second))
        .collect();
    let mut info = FileInfo {
        entries,
        ..FileInfo::default()
    };
    if let Some(v) = info.get("MAX_SEQ_ID_KEY") {
        let v: [u8; 8] = v
            .try_into()
            .map_err(|_| Error::malformed(WHAT, "an 8-byte MAX_SEQ_ID_KEY", v.len().to_string()))?;
        info.max_seq_id = Some(i64::from_be_bytes(v));
    }
    if let Some(v) = info.get("TIMERANGE") {
        // Layouts other than the PB and 16-byte forms are kept raw in `entries`.
        info.time_range = parse_time_range(v).ok();
    }
    Ok(info)
}

/// TIMERANGE: `PBUF` + TimeRangeTracker{from, to} (2.x), or two big-endian longs (1.x).
fn parse_time_range(v: &[u8]) -> Result<(i64, i64)> {
    const WHAT: &str = "HFile TIMERANGE";
    if let Ok(rest) = strip_pbuf(WHAT, v) {
        let m = pb::TimeRangeTrackerPb::decode(rest).map_err(Error::pb(WHAT))?;
        return Ok((
            m.from.unwrap_or(0) as i64,
            m.to.unwrap_or(i64::MAX as u64) as i64,
        ));
    }
    // The Writable form: HBase reads the first two longs and ignores what follows (1.x wrote
    // the whole 32-byte buffer of its DataOutputBuffer, the last 16 bytes zero).
    if v.len() < 16 {
        return Err(Error::malformed(
            WHAT,
            "PBUF TimeRangeTracker or two 8-byte longs",
            v.len().to_string(),
        ));
    }
    Ok((be_u64(WHAT, v, 0)? as i64, be_u64(WHAT, v, 8)? as i64))
}

/// Reads the FileInfo block from the load-on-open section. `section` holds file bytes
/// starting at `section_start` (normally [`HFileTrailer::load_on_open_range`]); the block
/// at `trailer.file_info_offset` is checksum-verified and decompressed.
pub fn read_file_info(
    section: &[u8],
    section_start: u64,
    trailer: &HFileTrailer,
) -> Result<FileInfo> {
    const WHAT: &str = "HFile FileInfo";
    let off = trailer
        .file_info_offset
        .checked_sub(section_start)
        .and_then(|o| usize::try_from(o).ok())
        .ok_or_else(|| {
            Error::malformed(
                WHAT,
                "a section starting at or before file_info_offset",
                section_start.to_string(),
            )
        })?;
    if trailer.encrypted {
        return Err(Error::Unsupported {
            what: WHAT,
            detail: "encrypted HFile".into(),
        });
    }
    let b = read_block(section, off, trailer.file_info_offset, trailer.version)?;
    if b.kind != BlockType::FileInfo {
        return Err(Error::malformed(
            WHAT,
            "a FILEINF2 block at file_info_offset",
            format!("{:?}", b.kind),
        ));
    }
    let payload = unpack(WHAT, b.payload, b.uncompressed_len, trailer.compression)?;
    parse_file_info_payload(&payload)
}

/// Result of a full block walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockReport {
    /// The trailer.
    pub trailer: HFileTrailer,
    /// Blocks per type.
    pub blocks: BTreeMap<BlockType, u64>,
    /// Checksum chunks verified.
    pub checksum_chunks: u64,
    /// Checksum algorithms seen.
    pub checksum_types: Vec<ChecksumType>,
}

impl BlockReport {
    /// Blocks of one type.
    pub fn count(&self, kind: BlockType) -> u64 {
        self.blocks.get(&kind).copied().unwrap_or(0)
    }
}

/// Deep validation of a whole HFile in memory: parses the trailer, walks every block from
/// offset 0, verifies every checksum chunk, and requires the walk to end exactly at the
/// trailer. For files not in memory, [`BlockWalk`] does the same from bounded reads.
pub fn verify_blocks(file: &[u8]) -> Result<BlockReport> {
    let size = file.len() as u64;
    let tail = &file[file.len().saturating_sub(MAX_TRAILER_SIZE as usize)..];
    let trailer = HFileTrailer::parse(tail, size)?;
    let mut walk = BlockWalk::new(trailer, size);
    let end = walk.end as usize;
    walk.feed(&file[..end])?;
    walk.finish()
}

/// The largest block a [`BlockWalk`] accepts (header, payload and checksums): a bound on the
/// memory one walk needs. HBase writes blocks of about its block size (64 KiB by default); a
/// single cell larger than that makes one block of the cell's size.
pub const MAX_BLOCK_SIZE: u64 = 256 << 20;

/// A block walk fed from bounded reads: [`BlockWalk::feed`] takes file bytes from
/// [`BlockWalk::offset`] on, checks every block complete in them and says how many bytes it
/// used; [`BlockWalk::need`] says how many bytes the next block needs at least, so that a
/// caller reading chunks of a few MiB holds at most one chunk plus one block in memory.
#[derive(Clone, Debug)]
pub struct BlockWalk {
    trailer: HFileTrailer,
    /// Where the blocks end (the trailer starts).
    end: u64,
    off: u64,
    /// Bytes the next block needs, once its header was seen.
    need: Option<u64>,
    blocks: BTreeMap<BlockType, u64>,
    checksum_chunks: u64,
    checksum_types: Vec<ChecksumType>,
}

impl BlockWalk {
    /// A walk of a file of `file_size` bytes whose trailer was parsed from its tail.
    pub fn new(trailer: HFileTrailer, file_size: u64) -> Self {
        let end = file_size.saturating_sub(trailer.trailer_size);
        BlockWalk {
            trailer,
            end,
            off: 0,
            need: None,
            blocks: BTreeMap::new(),
            checksum_chunks: 0,
            checksum_types: Vec::new(),
        }
    }

    /// File offset of the next block (the first byte [`BlockWalk::feed`] expects).
    pub fn offset(&self) -> u64 {
        self.off
    }

    /// File offset where the blocks end and the trailer starts.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes from [`BlockWalk::offset`] the next block needs, when a feed stopped inside it
    /// (at least its header; the whole block once the header was seen).
    pub fn need(&self) -> Option<u64> {
        self.need
    }

    fn header_len(&self) -> u64 {
        if self.trailer.version.has_block_checksums() {
            33
        } else {
            24
        }
    }

    /// Checks every block that is complete in `buf` (file bytes from [`BlockWalk::offset`];
    /// bytes past the trailer start are ignored) and returns how many bytes were used. The
    /// rest, if any, starts the next block: feed it again with more bytes after it.
    pub fn feed(&mut self, buf: &[u8]) -> Result<u64> {
        let avail = (buf.len() as u64).min(self.end - self.off) as usize;
        let buf = &buf[..avail];
        let mut used = 0usize;
        self.need = None;
        while self.off < self.end {
            let rest = &buf[used..];
            let hlen = self.header_len();
            if (rest.len() as u64) < hlen {
                self.need = Some(hlen.min(self.end - self.off));
                break;
            }
            if BlockType::from_magic(&rest[..8]).is_none() {
                return Err(Error::malformed(
                    "HFile block header",
                    "a known block magic",
                    format!(
                        "{} at offset {}",
                        crate::error::hex_prefix(&rest[..hlen as usize]),
                        self.off
                    ),
                ));
            }
            let on_disk = hlen + u64::from(be_u32("HFile block header", rest, 8)?);
            if on_disk > MAX_BLOCK_SIZE {
                return Err(Error::malformed(
                    "HFile block header",
                    "a block of at most 256 MiB",
                    format!("{on_disk} bytes at offset {}", self.off),
                ));
            }
            if on_disk > self.end - self.off {
                return Err(Error::Truncated {
                    what: "HFile block",
                    offset: self.off,
                    needed: on_disk,
                    len: self.end - self.off,
                });
            }
            if (rest.len() as u64) < on_disk {
                self.need = Some(on_disk);
                break;
            }
            let b = read_block(rest, 0, self.off, self.trailer.version)?;
            *self.blocks.entry(b.kind).or_insert(0) += 1;
            self.checksum_chunks += b.chunks;
            if !self.checksum_types.contains(&b.checksum) {
                self.checksum_types.push(b.checksum);
            }
            used += b.on_disk_len;
            self.off += b.on_disk_len as u64;
        }
        Ok(used as u64)
    }

    /// Ends the walk: an error unless every block up to the trailer was checked.
    pub fn finish(self) -> Result<BlockReport> {
        if self.off < self.end {
            return Err(Error::Truncated {
                what: "HFile block",
                offset: self.off,
                needed: self.need.unwrap_or(self.header_len()),
                len: self.end - self.off,
            });
        }
        Ok(BlockReport {
            trailer: self.trailer,
            blocks: self.blocks,
            checksum_chunks: self.checksum_chunks,
            checksum_types: self.checksum_types,
        })
    }
}

#[cfg(test)]
mod time_range_tests {
    use super::parse_time_range;

    #[test]
    fn timerange_in_writable_form_reads_the_first_two_longs() {
        // As a real HBase snapshot export's HFile holds it: two longs, then 16 zero bytes.
        let mut v = Vec::new();
        v.extend_from_slice(&0x0000_0176_b13c_2c10u64.to_be_bytes());
        v.extend_from_slice(&0x0000_0176_b13c_2e51u64.to_be_bytes());
        assert_eq!(
            parse_time_range(&v).unwrap(),
            (0x0176_b13c_2c10, 0x0176_b13c_2e51)
        );
        v.extend_from_slice(&[0; 16]);
        assert_eq!(
            parse_time_range(&v).unwrap(),
            (0x0176_b13c_2c10, 0x0176_b13c_2e51)
        );
        assert!(parse_time_range(&v[..15]).is_err());
    }
}
