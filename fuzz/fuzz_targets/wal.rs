//! Fuzz target: the WAL summary never panics; a summary never reports more cells than bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = hbcp_hbase::WalSummary::parse(data) {
        let cells: u64 = s.entries.iter().map(|e| u64::from(e.cell_count)).sum();
        assert!(cells <= data.len() as u64);
        let _ = s.max_data_seq_ids();
    }
});
