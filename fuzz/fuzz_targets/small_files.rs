//! Fuzz target: hbase.version, hbase.id, .regioninfo, .tableinfo and Reference parsers never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hbcp_hbase::parse_hbase_version(data);
    let _ = hbcp_hbase::parse_cluster_id(data);
    if let Ok(r) = hbcp_hbase::parse_region_info(data) {
        let _ = r.encoded_name();
    }
    let _ = hbcp_hbase::parse_table_descriptor(data);
    let _ = hbcp_hbase::parse_reference(data);
});
