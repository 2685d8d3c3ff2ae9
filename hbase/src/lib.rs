//! Pure knowledge of HBase's root folder for hbcp: what each path is (by name alone) and
//! what the small and structural files say (bytes in, facts out). No I/O: callers fetch
//! the bytes — ranged where a function says which range it needs — and pass them in.
//!
//! * paths: [`classify`], [`is_transient`], [`is_wal_family`], [`table_of`], [`parse_hfile_link_name`],
//!   [`is_hfile_name`] (HBase's grammar) and [`is_unique_hfile_name`] (the write-once names)
//! * metadata: [`parse_hbase_version`], [`parse_cluster_id`], [`parse_region_info`],
//!   [`parse_table_descriptor`], [`parse_reference`]
//! * HFiles: [`HFileTrailer::tail_range`] → [`HFileTrailer::parse`] →
//!   [`HFileTrailer::load_on_open_range`] → [`read_file_info`]; [`verify_blocks`] for a deep check
//! * snapshots: [`parse_snapshot_info`], [`parse_snapshot_manifest`], [`v1_referenced_hfiles`]
//! * WALs: [`WalSummary::parse`]
//!
//! It must never import another hbcp crate (nor do any I/O): the planner, the verifier and the
//! job call it.

#![warn(missing_docs, unreachable_pub)]

mod error;
mod hfile;
mod meta;
mod path;
mod pb;
mod snapshot;
mod wal;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;

pub use error::{Error, Result};
pub use hfile::{
    BlockReport, BlockType, BlockWalk, ChecksumType, Compression, FileInfo, HFileTrailer,
    HFileVersion, MAX_BLOCK_SIZE, MAX_TRAILER_SIZE, parse_file_info_payload, read_file_info,
    verify_blocks,
};
pub use meta::{
    ColumnFamily, HbaseVersion, RefHalf, Reference, RegionInfo, TableDescriptor, parse_cluster_id,
    parse_hbase_version, parse_reference, parse_region_info, parse_table_descriptor,
};
pub use path::{
    HFileLinkName, PathKind, StoreLocation, TableRef, classify, is_hfile_name, is_transient,
    is_unique_hfile_name, is_wal_family, parse_hfile_link_name, parse_reference_name,
    parse_tableinfo_name, table_of,
};
pub use snapshot::{
    FamilyFiles, ReferencedHFile, RegionManifest, SnapshotInfo, SnapshotManifest,
    SnapshotStoreFile, parse_region_manifest, parse_snapshot_info, parse_snapshot_manifest,
    resolve_store_file, v1_referenced_hfiles,
};
pub use wal::{META_FAMILY, WalEntry, WalSummary};
