//! Fuzz target: HFile trailer, FileInfo and block walk never panic; ranges stay inside the file.
#![no_main]
use hbcp_hbase::{HFileTrailer, read_file_info, verify_blocks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let tail = HFileTrailer::tail_range(size);
    assert!(tail.end == size && tail.start <= tail.end);
    if let Ok(t) = HFileTrailer::parse(&data[tail.start as usize..], size) {
        let r = t.load_on_open_range(size);
        assert!(r.start <= r.end && r.end <= size);
        let _ = read_file_info(&data[r.start as usize..r.end as usize], r.start, &t);
    }
    let _ = hbcp_hbase::parse_file_info_payload(data);
    let _ = verify_blocks(data);
});
