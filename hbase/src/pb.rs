//! Hand-written prost messages for the parts of HBase's .proto files that the copier reads
//! (HBase.proto, FS.proto, Snapshot.proto, HFile.proto, WAL.proto). Field numbers follow
//! the upstream definitions; fields the copier never needs are left out and skipped by prost.

#![allow(missing_docs, unreachable_pub)]

#[derive(Clone, PartialEq, prost::Message)]
pub struct TableNamePb {
    #[prost(bytes = "vec", tag = "1")]
    pub namespace: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub qualifier: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegionInfoPb {
    #[prost(uint64, optional, tag = "1")]
    pub region_id: Option<u64>,
    #[prost(message, optional, tag = "2")]
    pub table_name: Option<TableNamePb>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub start_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub end_key: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "5")]
    pub offline: Option<bool>,
    #[prost(bool, optional, tag = "6")]
    pub split: Option<bool>,
    #[prost(int32, optional, tag = "7")]
    pub replica_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BytesBytesPair {
    #[prost(bytes = "vec", tag = "1")]
    pub first: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub second: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NameStringPair {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ColumnFamilySchemaPb {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub attributes: Vec<BytesBytesPair>,
    #[prost(message, repeated, tag = "3")]
    pub configuration: Vec<NameStringPair>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TableSchemaPb {
    #[prost(message, optional, tag = "1")]
    pub table_name: Option<TableNamePb>,
    #[prost(message, repeated, tag = "2")]
    pub attributes: Vec<BytesBytesPair>,
    #[prost(message, repeated, tag = "3")]
    pub column_families: Vec<ColumnFamilySchemaPb>,
    #[prost(message, repeated, tag = "4")]
    pub configuration: Vec<NameStringPair>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReferencePb {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub splitkey: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "2")]
    pub range: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionPb {
    #[prost(string, optional, tag = "1")]
    pub version: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClusterIdPb {
    #[prost(string, optional, tag = "1")]
    pub cluster_id: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotDescriptionPb {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub table: Option<String>,
    #[prost(int64, optional, tag = "3")]
    pub creation_time: Option<i64>,
    #[prost(int32, optional, tag = "4")]
    pub r#type: Option<i32>,
    #[prost(int32, optional, tag = "5")]
    pub version: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub owner: Option<String>,
    #[prost(int64, optional, tag = "8")]
    pub ttl: Option<i64>,
    #[prost(int64, optional, tag = "9")]
    pub max_file_size: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoreFilePb {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub reference: Option<ReferencePb>,
    #[prost(uint64, optional, tag = "3")]
    pub file_size: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FamilyFilesPb {
    #[prost(bytes = "vec", tag = "1")]
    pub family_name: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub store_files: Vec<StoreFilePb>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotRegionManifestPb {
    #[prost(int32, optional, tag = "1")]
    pub version: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub region_info: Option<RegionInfoPb>,
    #[prost(message, repeated, tag = "3")]
    pub family_files: Vec<FamilyFilesPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotDataManifestPb {
    #[prost(message, optional, tag = "1")]
    pub table_schema: Option<TableSchemaPb>,
    #[prost(message, repeated, tag = "2")]
    pub region_manifests: Vec<SnapshotRegionManifestPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FileTrailerPb {
    #[prost(uint64, optional, tag = "1")]
    pub file_info_offset: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub load_on_open_data_offset: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub uncompressed_data_index_size: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub total_uncompressed_bytes: Option<u64>,
    #[prost(uint32, optional, tag = "5")]
    pub data_index_count: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    pub meta_index_count: Option<u32>,
    #[prost(uint64, optional, tag = "7")]
    pub entry_count: Option<u64>,
    #[prost(uint32, optional, tag = "8")]
    pub num_data_index_levels: Option<u32>,
    #[prost(uint64, optional, tag = "9")]
    pub first_data_block_offset: Option<u64>,
    #[prost(uint64, optional, tag = "10")]
    pub last_data_block_offset: Option<u64>,
    #[prost(string, optional, tag = "11")]
    pub comparator_class_name: Option<String>,
    #[prost(uint32, optional, tag = "12")]
    pub compression_codec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "13")]
    pub encryption_key: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FileInfoPb {
    #[prost(message, repeated, tag = "1")]
    pub map_entry: Vec<BytesBytesPair>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeRangeTrackerPb {
    #[prost(uint64, optional, tag = "1")]
    pub from: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub to: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WalHeaderPb {
    #[prost(bool, optional, tag = "1")]
    pub has_compression: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub encryption_key: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3")]
    pub has_tag_compression: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub writer_cls_name: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub cell_codec_cls_name: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub has_value_compression: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WalKeyPb {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub encoded_region_name: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub table_name: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "3")]
    pub log_sequence_number: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub write_time: Option<u64>,
    /// Replication scopes; with WAL compression their family names go through the family
    /// dictionary, so they are read (in order) to keep the dictionaries in step.
    #[prost(message, repeated, tag = "6")]
    pub scopes: Vec<FamilyScopePb>,
    #[prost(uint32, optional, tag = "7")]
    pub following_kv_count: Option<u32>,
    /// Extended attributes (2.5+); compressed values go through the table dictionary.
    #[prost(message, repeated, tag = "12")]
    pub extended_attributes: Vec<WalAttributePb>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FamilyScopePb {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub family: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WalAttributePb {
    #[prost(bytes = "vec", optional, tag = "2")]
    pub value: Option<Vec<u8>>,
}
