//! Tests against the real HBase fixtures in `tests/fixtures/hbase-real/` (never modified):
//! archives are unpacked into a temp dir, every file is classified and parsed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hbase-real"
    ))
    .join(rel)
}

fn gunzip(rel: &str) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture(rel)).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Every regular file of an archive, by path inside the archive.
fn unpack(rel: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    if rel.ends_with(".zip") {
        zip::ZipArchive::new(std::fs::File::open(fixture(rel)).unwrap())
            .unwrap()
            .extract(dir.path())
            .unwrap();
    } else {
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(fixture(rel)).unwrap());
        tar::Archive::new(gz).unpack(dir.path()).unwrap();
    }
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let key = p
                    .strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// Files under `hbase/` of a root-dir tarball, keyed relative to the root.
fn root(rel: &str) -> BTreeMap<String, Vec<u8>> {
    unpack(rel)
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("hbase/").map(|k| (k.to_owned(), v)))
        .collect()
}

fn trailer_of(bytes: &[u8]) -> HFileTrailer {
    let r = HFileTrailer::tail_range(bytes.len() as u64);
    HFileTrailer::parse(&bytes[r.start as usize..], bytes.len() as u64).unwrap()
}

fn file_info_of(bytes: &[u8], t: &HFileTrailer) -> FileInfo {
    let r = t.load_on_open_range(bytes.len() as u64);
    read_file_info(&bytes[r.start as usize..r.end as usize], r.start, t)
        .unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

const HUDI: &str = "hfiles-hbase-2.4-via-hudi-rs/";

#[test]
fn hudi_hfiles_trailer_fileinfo_and_blocks() {
    // (file, entries, data blocks, leaf index, intermediate index) from the fixture README.
    let cases: &[(&str, Option<u64>, u64, u64, u64)] = &[
        (
            "hudi_1_0_hbase_2_4_9_16KB_GZ_20000.hfile",
            Some(20000),
            72,
            0,
            0,
        ),
        (
            "hudi_1_0_hbase_2_4_9_512KB_GZ_20000.hfile",
            Some(20000),
            3,
            0,
            0,
        ),
        (
            "hudi_1_0_hbase_2_4_9_16KB_NONE_5000.hfile",
            Some(5000),
            18,
            0,
            0,
        ),
        (
            "hudi_1_0_hbase_2_4_9_64KB_NONE_5000.hfile",
            Some(5000),
            5,
            0,
            0,
        ),
        (
            "hudi_1_0_hbase_2_4_9_16KB_GZ_200_20_non_unique.hfile",
            Some(4200),
            0,
            0,
            0,
        ),
        (
            "hudi_1_0_hbase_2_4_13_16KB_GZ_20000_fake_first_key.hfile",
            Some(20000),
            86,
            0,
            0,
        ),
        (
            "hudi_1_0_hbase_2_4_13_1KB_GZ_20000_large_keys.hfile",
            Some(20000),
            2858,
            4,
            0,
        ),
        (
            "hudi_1_0_hbase_2_4_13_1KB_GZ_10000_large_keys_deep_index.hfile",
            Some(10000),
            1429,
            103,
            7,
        ),
        ("hudi_1_0_hbase_2_4_9_no_entry.hfile", Some(0), 0, 0, 0),
    ];
    for &(name, entries, data, leaf, inter) in cases {
        let bytes = std::fs::read(fixture(&format!("{HUDI}{name}"))).unwrap();
        let t = trailer_of(&bytes);
        assert_eq!(t.version, HFileVersion { major: 3, minor: 3 }, "{name}");
        assert_eq!(t.trailer_size, 4096);
        if name.contains("_GZ_") {
            assert_eq!(t.compression, Compression::Gz, "{name}");
        } else if name.contains("_NONE_") {
            assert_eq!(t.compression, Compression::None, "{name}");
        }
        if let Some(n) = entries {
            assert_eq!(t.entry_count, n, "{name}");
        }
        let report = verify_blocks(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        if data > 0 {
            assert_eq!(report.count(BlockType::Data), data, "{name}");
        }
        assert_eq!(report.count(BlockType::LeafIndex), leaf, "{name}");
        assert_eq!(report.count(BlockType::IntermediateIndex), inter, "{name}");
        assert_eq!(report.count(BlockType::FileInfo), 1, "{name}");
        assert_eq!(report.checksum_types, vec![ChecksumType::Crc32c], "{name}");
        let info = file_info_of(&bytes, &t);
        assert!(
            info.get("hfile.LASTKEY").is_some() || t.entry_count == 0,
            "{name}: {:?}",
            info.entries.len()
        );
        if t.entry_count == 0 {
            assert_eq!(
                (t.first_data_block_offset, t.last_data_block_offset),
                (u64::MAX, u64::MAX)
            );
        } else {
            assert_eq!(
                t.comparator, "org.apache.hadoop.hbase.KeyValue$KVComparator",
                "{name}"
            );
        }
    }
}

#[test]
fn corrupt_block_fixtures_fail_deep_check_only() {
    for name in [
        "TestCompaction_HFileWithCorruptBlock.gz",
        "TestCompaction_HFileWithCorruptBlock.branch-2.5.gz",
    ] {
        let bytes = gunzip(&format!("apache-hbase/{name}"));
        let t = trailer_of(&bytes);
        assert_eq!(t.version, HFileVersion { major: 3, minor: 3 });
        let e = verify_blocks(&bytes).unwrap_err();
        assert!(e.is_checksum_mismatch(), "{name}: {e}");
    }
}

/// Walks `bytes` as a caller with bounded reads does: chunks of `chunk` bytes, each feed
/// given what is left of the last one plus at least what the next block needs.
fn walk_in_chunks(bytes: &[u8], chunk: usize) -> crate::Result<crate::BlockReport> {
    let t = trailer_of(bytes);
    let mut w = crate::BlockWalk::new(t, bytes.len() as u64);
    let mut held: Vec<u8> = Vec::new();
    let mut read_to = 0usize;
    let end = w.end() as usize;
    while (w.offset() as usize) < end {
        let want = w.need().map_or(0, |n| n as usize).max(held.len() + 1);
        while held.len() < want && read_to < end {
            let n = chunk.min(end - read_to);
            held.extend_from_slice(&bytes[read_to..read_to + n]);
            read_to += n;
        }
        let used = w.feed(&held)? as usize;
        held.drain(..used);
        if used == 0 && read_to == end && w.need().is_some() {
            break;
        }
    }
    w.finish()
}

#[test]
fn block_walk_in_small_chunks_matches_the_whole_file_walk() {
    for name in [
        "hudi_1_0_hbase_2_4_9_16KB_NONE_5000.hfile",
        "hudi_1_0_hbase_2_4_13_1KB_GZ_10000_large_keys_deep_index.hfile",
        "hudi_1_0_hbase_2_4_9_512KB_GZ_20000.hfile",
        "hudi_1_0_hbase_2_4_9_no_entry.hfile",
    ] {
        let bytes = std::fs::read(fixture(&format!("{HUDI}{name}"))).unwrap();
        let whole = verify_blocks(&bytes).unwrap();
        for chunk in [1, 97, 4096, 1 << 20] {
            let walked = walk_in_chunks(&bytes, chunk).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(walked, whole, "{name} in chunks of {chunk}");
        }
    }
    for name in [
        "TestCompaction_HFileWithCorruptBlock.gz",
        "TestCompaction_HFileWithCorruptBlock.branch-2.5.gz",
    ] {
        let bytes = gunzip(&format!("apache-hbase/{name}"));
        let whole = verify_blocks(&bytes).unwrap_err().to_string();
        let walked = walk_in_chunks(&bytes, 1000).unwrap_err();
        assert!(walked.is_checksum_mismatch(), "{name}: {walked}");
        assert_eq!(walked.to_string(), whole, "{name}");
    }
    // A file cut short inside its blocks (the trailer kept) ends the walk with an error.
    let bytes = std::fs::read(fixture(&format!(
        "{HUDI}hudi_1_0_hbase_2_4_9_16KB_NONE_5000.hfile"
    )))
    .unwrap();
    let t = trailer_of(&bytes);
    let mut w = crate::BlockWalk::new(t, bytes.len() as u64);
    w.feed(&bytes[..20_000]).unwrap();
    assert!(w.need().is_some());
    assert!(w.finish().is_err());
}

#[test]
fn hfile_v1_is_unsupported() {
    let bytes = std::fs::read(fixture(
        "apache-hbase/hfile-v1/8e8ab58dcf39412da19833fcd8f687ac",
    ))
    .unwrap();
    let r = HFileTrailer::tail_range(bytes.len() as u64);
    let e = HFileTrailer::parse(&bytes[r.start as usize..], bytes.len() as u64).unwrap_err();
    assert!(e.is_unsupported(), "{e}");
    assert!(verify_blocks(&bytes).unwrap_err().is_unsupported());
}

/// What one root dir holds, gathered by classifying and parsing every file.
#[derive(Default, Debug)]
struct RootFacts {
    version: Option<String>,
    tables: Vec<String>,
    regions: Vec<(String, String, Vec<u8>, Vec<u8>)>,
    hfiles: usize,
    wals: Vec<(String, bool)>,
    wal_data_edits: Vec<(String, String, u64)>,
    max_seq_ids: Vec<i64>,
}

fn scan_root(rel: &str) -> RootFacts {
    let mut f = RootFacts::default();
    for (key, bytes) in root(rel) {
        match classify(&key) {
            PathKind::HbaseVersion => {
                f.version = Some(parse_hbase_version(&bytes).unwrap().version)
            }
            PathKind::HbaseId => assert!(!parse_cluster_id(&bytes).unwrap().is_empty()),
            PathKind::TableDescriptor { table, .. } => {
                let d = parse_table_descriptor(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
                assert_eq!(d.table, table, "{key}");
                assert!(!d.families.is_empty(), "{key}");
                f.tables.push(d.table.to_string());
            }
            PathKind::RegionInfo { table, region } => {
                let r = parse_region_info(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
                assert_eq!(r.table, table, "{key}");
                assert_eq!(
                    r.encoded_name(),
                    region,
                    "{key}: md5 of the region name is the dir name"
                );
                f.regions
                    .push((r.table.to_string(), region, r.start_key, r.end_key));
            }
            PathKind::HFile { .. } => {
                let rep = verify_blocks(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
                let info = file_info_of(&bytes, &rep.trailer);
                if let Some(s) = info.max_seq_id {
                    f.max_seq_ids.push(s);
                }
                f.hfiles += 1;
            }
            PathKind::Wal { .. } | PathKind::OldWal { .. }
                if !bytes.is_empty() && !key.contains("pv2-") =>
            {
                let w = WalSummary::parse(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
                f.wals.push((key.clone(), w.closed));
                for e in w.entries.iter().filter(|e| !e.is_marker_only()) {
                    f.wal_data_edits
                        .push((e.table.clone(), e.families.join(","), e.sequence_id));
                }
            }
            _ => {}
        }
    }
    f
}

#[test]
fn root_2_1_iamgoangle_user_data_only_in_open_wal() {
    let f = scan_root("rootdirs/hbase-2.1-docker-iamgoangle-go-redis-hbase.tar.gz");
    assert_eq!(f.version.as_deref(), Some("8"));
    assert!(f.tables.contains(&"test".to_owned()), "{:?}", f.tables);
    assert!(
        !f.wals.is_empty() && f.wals.iter().all(|(_, closed)| !closed),
        "{:?}",
        f.wals
    );
    let test_seqs: Vec<u64> = f
        .wal_data_edits
        .iter()
        .filter(|(t, fam, _)| t == "test" && fam == "f")
        .map(|e| e.2)
        .collect();
    assert_eq!(test_seqs, vec![4, 5], "{:?}", f.wal_data_edits);
}

#[test]
fn root_2_2_3_adamsai_open_but_flushed() {
    let f = scan_root("rootdirs/hbase-2.2.3-AdamSai.tar.gz");
    assert_eq!(f.version.as_deref(), Some("8"));
    assert!(
        f.tables.contains(&"hbase:namespace".to_owned()),
        "{:?}",
        f.tables
    );
    assert!(!f.wals.is_empty() && f.wals.iter().all(|(_, c)| !c));
    // Namespace edits are at or below the HFiles' MAX_SEQ_ID (research §7: 4,5 <= 6).
    let max_hfile = f.max_seq_ids.iter().copied().max().unwrap();
    assert!(
        f.wal_data_edits
            .iter()
            .filter(|e| e.0 == "hbase:namespace")
            .all(|e| e.2 as i64 <= max_hfile),
        "{f:?}"
    );
}

#[test]
fn root_2_2_2_kturnura_tables_and_regions() {
    let f = scan_root("rootdirs/hbase-2.2.2-KTurnura-RemoteSensing.tar.gz");
    assert!(
        f.tables.contains(&"RemoteSensing".to_owned()),
        "{:?}",
        f.tables
    );
    assert!(
        f.regions
            .iter()
            .any(|r| r.0 == "RemoteSensing" && r.1.starts_with("75fc24bd")),
        "{:?}",
        f.regions
    );
    assert!(f.hfiles > 0);
    assert!(f.wals.iter().all(|(_, c)| !c));
}

#[test]
fn root_4_0_tejas4m_closed_wals_and_sized_tabledesc() {
    let files = root("rootdirs/hbase-4.0.0-alpha-1-SNAPSHOT-tejas4m-hbase-views.tar.gz");
    let sized: Vec<_> = files
        .iter()
        .filter_map(|(k, v)| match classify(k) {
            PathKind::TableDescriptor { len: Some(l), .. } => Some((l, v.len() as u64)),
            _ => None,
        })
        .collect();
    assert!(!sized.is_empty());
    assert!(
        sized.iter().all(|(l, n)| l == n),
        "the .<len> suffix is the byte length: {sized:?}"
    );
    let f = scan_root("rootdirs/hbase-4.0.0-alpha-1-SNAPSHOT-tejas4m-hbase-views.tar.gz");
    assert!(f.tables.contains(&"my_table".to_owned()), "{:?}", f.tables);
    assert!(
        f.regions
            .iter()
            .any(|r| r.1 == "6c930cffe9f380e753905208e8dca1fa")
    );
    assert!(
        !f.wals.is_empty() && f.wals.iter().all(|(_, c)| *c),
        "{:?}",
        f.wals
    );
}

#[test]
fn root_1_4_3_onehao_and_0_98_uniquehwb() {
    let f = scan_root("rootdirs/hbase-1.4.3-onehao.tar.gz");
    assert!(
        !f.wals.is_empty() && f.wals.iter().all(|(_, c)| !c),
        "{:?}",
        f.wals
    );
    assert!(
        f.wal_data_edits.iter().any(|e| e.0 == "hbase:meta"),
        "{:?}",
        f.wal_data_edits
    );
    let f = scan_root("rootdirs/hbase-0.98-localfs-uniquehwb-HadoopAndHBase.tar.gz");
    assert_eq!(f.version.as_deref(), Some("8"));
    assert!(f.hfiles > 0);
    assert!(
        !f.wals.is_empty() && f.wals.iter().all(|(k, c)| *c && k.starts_with("oldWALs/")),
        "{:?}",
        f.wals
    );
}

/// Checks every snapshot in an export: info, manifest, and that every referenced HFile is
/// present under `archive/` of the export. Returns (dir name, snapshot name, table, regions).
fn check_snapshots(files: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String, String, usize)> {
    let mut out = Vec::new();
    for (key, bytes) in files {
        let Some(pos) = key.find(".hbase-snapshot/") else {
            continue;
        };
        let (prefix, rel) = key.split_at(pos);
        let PathKind::SnapshotInfo { name: dir } = classify(rel) else {
            continue;
        };
        let info = parse_snapshot_info(bytes).unwrap();
        assert_eq!(info.version, 2);
        let manifest_key = format!("{prefix}.hbase-snapshot/{dir}/data.manifest");
        let m = parse_snapshot_manifest(&files[&manifest_key]).unwrap();
        assert_eq!(Some(&m.table.table), info.table.as_ref());
        let refs = m.referenced_hfiles();
        assert!(!refs.is_empty());
        for r in &refs {
            assert!(
                files.contains_key(&format!("{prefix}{}", r.archive_key())),
                "{dir}: {} missing",
                r.archive_key()
            );
        }
        out.push((dir, info.name, m.table.table.to_string(), m.regions.len()));
    }
    out.sort();
    out
}

#[test]
fn exported_snapshots() {
    let s = check_snapshots(&unpack("snapshots/EndToEndIT-snapshot.zip"));
    assert!(
        s.iter()
            .any(|x| x.1 == "test-snapshot" && x.2 == "test-table" && x.3 == 10),
        "{s:?}"
    );
    assert_eq!(s.len(), 2, "{s:?}");
    let s = check_snapshots(&unpack(
        "snapshots/export-2022-04-test-and-snappy-snapshots.tar.gz",
    ));
    assert!(
        s.iter()
            .any(|x| x.0 == "snappy-compressed-snapshot" && x.1 == "demo-snapshot"),
        "{s:?}"
    );
    let s = check_snapshots(&unpack(
        "snapshots/export-2020-12-test-snapshot-localfs-with-crc.tar.gz",
    ));
    assert!(!s.is_empty());
}

#[test]
fn v1_snapshot_layout_in_legacy_root() {
    let files = unpack("apache-hbase/TestNamespaceUpgrade.tgz");
    let inside: Vec<&str> = files
        .keys()
        .filter_map(|k| k.split_once("/.snapshot/foo_snapshot1/").map(|(_, r)| r))
        .collect();
    assert!(
        !inside.is_empty(),
        "{:?}",
        files.keys().take(20).collect::<Vec<_>>()
    );
    let refs = v1_referenced_hfiles(&TableRef::new("default", "foo"), inside.iter().copied());
    assert!(!refs.is_empty(), "{inside:?}");
}
