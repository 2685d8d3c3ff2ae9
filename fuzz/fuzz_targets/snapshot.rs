//! Fuzz target: snapshot .snapshotinfo, data.manifest (v2) and region-manifest parsers never
//! panic, nor does the v1 layout's listing of referenced HFiles (keys taken from the input).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hbcp_hbase::parse_snapshot_info(data);
    if let Ok(m) = hbcp_hbase::parse_snapshot_manifest(data) {
        let _ = m.referenced_hfiles();
    }
    let _ = hbcp_hbase::parse_region_manifest(data);
    let text = String::from_utf8_lossy(data);
    let table = hbcp_hbase::TableRef::new("ns", "t");
    for f in hbcp_hbase::v1_referenced_hfiles(&table, text.lines()) {
        assert!(f.archive_key().starts_with("archive/data/"));
    }
});
