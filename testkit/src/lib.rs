//! Test kit for hbcp: generators of realistic HBase root folders ([`hbase_tree`], also named
//! [`r#gen`]) with just enough protobuf encoding ([`pb`]) to write HBase's small files as HBase
//! does; tree digests and damage for copy tests ([`digest`]); the real fixtures unpacked
//! ([`fixture`]); a runner for the `hbcp` binary ([`cmd`]); HBase activity between two
//! incremental copies ([`activity`]); objects put into the GCS emulator ([`gcs_emulator`]) and
//! blobs into Azurite exactly as named ([`azurite`]); WALs, plain and compressed ([`wal`]).
//! Used by the integration tests, the benchmark scripts (through the `hbcp-gen` binary) and to
//! make `examples/hbase-sample`.
//! It must never be a dependency of a product crate (only of tests, benches and scripts); it
//! imports `hbcp-hbase` alone among hbcp's crates.
#![warn(missing_docs, unreachable_pub)]

pub mod activity;
pub mod azurite;
pub mod cmd;
pub mod digest;
pub mod fixture;
pub mod gcs_emulator;
pub mod hbase_tree;
pub mod pb;
pub mod wal;

/// The generator under the name the design uses (`gen` is a keyword in edition 2024, hence
/// `r#gen`; [`hbase_tree`] is the same module).
pub use hbase_tree as r#gen;

pub use cmd::{Hbcp, Run};
pub use digest::{
    Digest, Node, assert_trees_equal, diff_digests, flip_byte, tree_digest, truncate,
    try_tree_digest,
};
pub use fixture::{extract_fixture, fixtures_dir};
pub use hbase_tree::{Spec, Summary, generate};

#[cfg(test)]
mod tests {
    use super::hbase_tree::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;

    fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    let k = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.insert(k, fs::read(&p).unwrap());
                }
            }
        }
        walk(root, root, &mut out);
        out
    }

    #[test]
    fn same_seed_same_tree_other_seed_other_tree() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let s = Spec::sample();
        let sa = generate(a.path(), &s, 7).unwrap();
        generate(b.path(), &s, 7).unwrap();
        generate(c.path(), &s, 8).unwrap();
        assert_eq!(tree(a.path()), tree(b.path()));
        assert_ne!(tree(a.path()), tree(c.path()));
        assert_eq!(sa.files as usize, tree(a.path()).len());
        assert_eq!(
            sa.bytes,
            tree(a.path()).values().map(|v| v.len() as u64).sum::<u64>()
        );
    }

    #[test]
    fn region_dirs_are_the_md5_of_their_region_name() {
        // The research's real example: my_table,,1733179231941 → 6c930cffe9f380e753905208e8dca1fa.
        assert_eq!(
            encoded_region_name("my_table", b"", 1733179231941),
            "6c930cffe9f380e753905208e8dca1fa"
        );
        assert_eq!(
            encoded_region_name("test-table", b"50", 1652120363846)[..8],
            *"90bb1f99"
        );
    }

    #[test]
    fn hfiles_end_in_a_v3_trailer_and_sizes_hit_the_boundaries() {
        let d = tempfile::tempdir().unwrap();
        let r = 64 * 1024;
        let spec = Spec {
            tables: vec![table("default", "t", 1, &["cf"], 10)],
            hfile_sizes: Spec::boundary_sizes(r),
            extras: false,
        };
        assert_eq!(spec.hfile_sizes.len(), 10);
        generate(d.path(), &spec, 1).unwrap();
        let t = tree(d.path());
        let hfiles: Vec<(&String, &Vec<u8>)> = t
            .iter()
            .filter(|(k, _)| {
                k.starts_with("data/default/t/")
                    && k.split('/').nth(5).is_some_and(|n| n.len() == 32)
            })
            .collect();
        assert_eq!(hfiles.len(), 10);
        let all = tree(d.path());
        let sizes: Vec<u64> = all
            .iter()
            .filter(|(k, _)| k.starts_with("data/default/t/"))
            .map(|(_, v)| v.len() as u64)
            .collect();
        for want in [0, 1, r - 1, r, r + 1, 3 * r, 3 * r - 1, 3 * r + 1] {
            assert!(sizes.contains(&want), "{want} in {sizes:?}");
        }
        for (k, v) in hfiles.into_iter().filter(|(_, v)| v.len() > 4096) {
            let n = v.len();
            assert_eq!(&v[n - 4..], &[3, 0, 0, 3], "{k}: version word v3.3");
            assert_eq!(&v[n - 4096..n - 4088], b"TRABLK\"$", "{k}: trailer magic");
        }
    }

    #[test]
    fn links_and_references_point_at_files_that_exist() {
        let d = tempfile::tempdir().unwrap();
        generate(d.path(), &Spec::sample(), 3).unwrap();
        let t = tree(d.path());
        let mut links = 0;
        let mut refs = 0;
        for k in t.keys() {
            let parts: Vec<&str> = k.split('/').collect();
            let name = *parts.last().unwrap();
            if parts[0] != "data" || parts.len() != 6 {
                continue;
            }
            if let Some((table, rest)) = name.split_once('=') {
                let (region, hfile) = rest.split_once('-').unwrap();
                let target = format!("data/{}/{table}/{region}/{}/{hfile}", parts[1], parts[4]);
                assert!(t.contains_key(&target), "link {k} → {target}");
                assert!(t[k].is_empty());
                links += 1;
            } else if let Some((hfile, parent)) = name.split_once('.') {
                let target = format!(
                    "data/{}/{}/{parent}/{}/{hfile}",
                    parts[1], parts[2], parts[4]
                );
                assert!(t.contains_key(&target), "reference {k} → {target}");
                assert!(t[k].starts_with(b"PBUF"));
                refs += 1;
            }
        }
        assert!(links > 0 && refs > 0, "{links} links, {refs} references");
        assert!(
            t.keys()
                .any(|k| k.starts_with("WALs/") && k.contains("%2C"))
        );
        assert_eq!(t["hbase.version"], b"PBUF\x0a\x018");
    }
}

/// The generated protobufs read back with derived messages (field numbers from HBase's
/// HBase.proto, FS.proto and HFile.proto), independently of the encoder in `pb`.
#[cfg(test)]
mod decode {
    use crate::digest::{Node, tree_digest};
    use crate::hbase_tree::{Spec, encoded_region_name, generate};
    use prost::Message;
    use std::fs;
    use std::path::Path;

    #[derive(Clone, PartialEq, prost::Message)]
    struct TableName {
        #[prost(bytes = "vec", tag = "1")]
        namespace: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        qualifier: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct RegionInfo {
        #[prost(uint64, tag = "1")]
        region_id: u64,
        #[prost(message, optional, tag = "2")]
        table_name: Option<TableName>,
        #[prost(bytes = "vec", tag = "3")]
        start_key: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        end_key: Vec<u8>,
        #[prost(bool, tag = "5")]
        offline: bool,
        #[prost(bool, tag = "6")]
        split: bool,
        #[prost(int32, tag = "7")]
        replica_id: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Reference {
        #[prost(bytes = "vec", tag = "1")]
        splitkey: Vec<u8>,
        #[prost(int32, tag = "2")]
        range: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct FileTrailerProto {
        #[prost(uint64, tag = "1")]
        file_info_offset: u64,
        #[prost(uint64, tag = "2")]
        load_on_open_data_offset: u64,
        #[prost(uint64, tag = "3")]
        uncompressed_data_index_size: u64,
        #[prost(uint64, tag = "4")]
        total_uncompressed_bytes: u64,
        #[prost(uint32, tag = "5")]
        data_index_count: u32,
        #[prost(uint32, tag = "6")]
        meta_index_count: u32,
        #[prost(uint64, tag = "7")]
        entry_count: u64,
        #[prost(uint32, tag = "8")]
        num_data_index_levels: u32,
        #[prost(uint64, tag = "9")]
        first_data_block_offset: u64,
        #[prost(uint64, tag = "10")]
        last_data_block_offset: u64,
        #[prost(string, tag = "11")]
        comparator_class_name: String,
        #[prost(uint32, tag = "12")]
        compression_codec: u32,
    }

    #[test]
    fn regioninfo_references_and_trailers_decode_back() {
        let d = tempfile::tempdir().unwrap();
        let mut spec = Spec::sample();
        spec.hfile_sizes = Spec::boundary_sizes(64 * 1024);
        generate(d.path(), &spec, 11).unwrap();
        let (mut regions, mut refs, mut trailers) = (0, 0, 0);
        for (k, node) in tree_digest(d.path()) {
            let Node::File { size, .. } = node else {
                continue;
            };
            let parts: Vec<&str> = k.split('/').collect();
            let bytes = fs::read(d.path().join(&k)).unwrap();
            let name = *parts.last().unwrap();
            if name == ".regioninfo" {
                assert_eq!(&bytes[..4], b"PBUF", "{k}");
                let ri = RegionInfo::decode_length_delimited(&bytes[4..]).unwrap();
                let tn = ri.table_name.clone().unwrap();
                assert_eq!(tn.namespace, parts[1].as_bytes(), "{k}");
                assert_eq!(tn.qualifier, parts[2].as_bytes(), "{k}");
                if parts[3] != "1588230740" {
                    let t = if parts[1] == "default" {
                        parts[2].to_string()
                    } else {
                        format!("{}:{}", parts[1], parts[2])
                    };
                    assert_eq!(
                        parts[3],
                        encoded_region_name(&t, &ri.start_key, ri.region_id),
                        "{k}: {ri:?}"
                    );
                    assert!(ri.region_id > 1_600_000_000_000, "{k}: {ri:?}");
                }
                assert!(
                    ri.end_key.is_empty() || ri.start_key < ri.end_key,
                    "{k}: {ri:?}"
                );
                regions += 1;
            } else if parts[0] == "data"
                && parts.len() == 6
                && name.len() > 33
                && name.as_bytes()[32] == b'.'
            {
                assert_eq!(&bytes[..4], b"PBUF", "{k}");
                let r = Reference::decode(&bytes[4..]).unwrap();
                assert!(
                    !r.splitkey.is_empty() && (r.range == 0 || r.range == 1),
                    "{k}: {r:?}"
                );
                refs += 1;
            } else if name.len() == 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && size > 4096
            {
                let t = &bytes[bytes.len() - 4096..];
                assert_eq!(&t[..8], b"TRABLK\"$", "{k}");
                assert_eq!(
                    &t[4092..],
                    &[3, 0, 0, 3],
                    "{k}: version word major 3 minor 3"
                );
                let tp = FileTrailerProto::decode_length_delimited(&t[8..]).unwrap();
                let body = size - 4096;
                assert_eq!(tp.total_uncompressed_bytes, body, "{k}");
                assert!(
                    tp.load_on_open_data_offset < body && tp.file_info_offset < body,
                    "{k}"
                );
                assert!(
                    tp.last_data_block_offset < tp.load_on_open_data_offset,
                    "{k}"
                );
                assert_eq!(&bytes[..8], b"DATABLK*", "{k}");
                trailers += 1;
            }
        }
        assert!(
            regions >= 10 && refs >= 2 && trailers >= 10,
            "{regions} {refs} {trailers}"
        );
    }

    #[test]
    fn bundled_sample_is_what_the_generator_writes() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hbase-sample");
        let d = tempfile::tempdir().unwrap();
        generate(d.path(), &Spec::sample(), 20261125).unwrap();
        // Git drops empty folders: compare files only.
        let files = |p: &Path| {
            let mut t = tree_digest(p);
            t.retain(|_, n| !matches!(n, Node::EmptyDir));
            t
        };
        let diff = crate::diff_digests(&files(&sample), &files(d.path()));
        assert!(
            diff.is_empty(),
            "examples/hbase-sample is stale:\n{}",
            diff.join("\n")
        );
    }
}
