//! Fuzz target: path grammar never panics; a parsed HFileLink name rebuilds to itself.
#![no_main]
use hbcp_hbase::{classify, is_transient, is_wal_family, parse_hfile_link_name, parse_reference_name, table_of};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|key: &str| {
    let _ = classify(key);
    let _ = is_transient(key);
    let _ = is_wal_family(key);
    let _ = table_of(key);
    let _ = parse_reference_name(key);
    if let Ok(l) = parse_hfile_link_name(key) {
        let rebuilt = if key.matches('=').count() == 2 {
            format!("{}={}={}-{}", l.table.namespace, l.table.qualifier, l.region, l.hfile)
        } else {
            format!("{}={}-{}", l.table.qualifier, l.region, l.hfile)
        };
        assert_eq!(rebuilt, key);
    }
});
