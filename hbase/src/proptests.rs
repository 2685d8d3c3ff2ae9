//! Property tests: no parser panics on random bytes or on truncated/bit-flipped real files.

use proptest::prelude::*;

use crate::*;

fn all_parsers(b: &[u8]) {
    let _ = parse_hbase_version(b);
    let _ = parse_cluster_id(b);
    let _ = parse_region_info(b);
    let _ = parse_table_descriptor(b);
    let _ = parse_reference(b);
    let _ = parse_snapshot_info(b);
    let _ = parse_snapshot_manifest(b);
    let _ = parse_region_manifest(b);
    let _ = parse_file_info_payload(b);
    let _ = WalSummary::parse(b);
    let _ = verify_blocks(b);
    if let Ok(t) = HFileTrailer::parse(b, b.len() as u64) {
        let _ = read_file_info(b, 0, &t);
    }
    let s = String::from_utf8_lossy(b);
    let _ = classify(&s);
    let _ = parse_hfile_link_name(&s);
}

fn real_hfile() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hbase-real/hfiles-hbase-2.4-via-hudi-rs/hudi_1_0_hbase_2_4_9_no_entry.hfile"
    ))
    .unwrap()
}

proptest! {
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        all_parsers(&b);
        let mut p = b"PBUF".to_vec();
        p.extend_from_slice(&b);
        all_parsers(&p);
        let mut w = b"PWAL".to_vec();
        w.extend_from_slice(&b);
        all_parsers(&w);
    }

    #[test]
    fn mutated_hfile_never_panics(cut in 0usize..6000, flip in 0usize..6000, bit in 0u8..8) {
        let mut f = real_hfile();
        if let Some(x) = f.get_mut(flip) {
            *x ^= 1 << bit;
        }
        f.truncate(cut.min(f.len()));
        all_parsers(&f);
    }

    #[test]
    fn link_names_round_trip(ns in "[a-z][a-z0-9_]{0,8}", t in "[a-z][a-z0-9_.-]{0,12}", r in "[0-9a-f]{32}", h in "[0-9a-f]{32}") {
        let name = format!("{ns}={t}={r}-{h}");
        let l = parse_hfile_link_name(&name).unwrap();
        prop_assert_eq!((l.table.namespace, l.table.qualifier, l.region, l.hfile), (ns, t, r, h));
    }
}
