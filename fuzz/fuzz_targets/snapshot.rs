//! Fuzz target: snapshot .snapshotinfo, data.manifest and region-manifest parsers never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hbcp_hbase::parse_snapshot_info(data);
    if let Ok(m) = hbcp_hbase::parse_snapshot_manifest(data) {
        let _ = m.referenced_hfiles();
    }
    let _ = hbcp_hbase::parse_region_manifest(data);
});
