//! Fuzz target: HFile trailer, FileInfo and block walk never panic; ranges stay inside the file;
//! the block walk fed in small chunks (as the verifier reads big files) agrees with the
//! whole-file walk.
#![no_main]
use hbcp_hbase::{BlockWalk, HFileTrailer, read_file_info, verify_blocks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let tail = HFileTrailer::tail_range(size);
    assert!(tail.end == size && tail.start <= tail.end);
    let whole = verify_blocks(data);
    if let Ok(t) = HFileTrailer::parse(&data[tail.start as usize..], size) {
        let r = t.load_on_open_range(size);
        assert!(r.start <= r.end && r.end <= size);
        let _ = read_file_info(&data[r.start as usize..r.end as usize], r.start, &t);
        // The same walk from chunks of 7 bytes plus what the next block needs.
        let mut w = BlockWalk::new(t, size);
        let end = w.end() as usize;
        let mut held: Vec<u8> = Vec::new();
        let mut next = 0usize;
        let chunked = loop {
            if w.offset() as usize >= end {
                break w.finish();
            }
            let want = w.need().map_or(0, |n| n as usize).max(held.len() + 1);
            while held.len() < want && next < end {
                let n = (want - held.len()).max(7).min(end - next);
                held.extend_from_slice(&data[next..next + n]);
                next += n;
            }
            match w.feed(&held) {
                Ok(0) if next >= end => break w.finish(),
                Ok(used) => {
                    held.drain(..used as usize);
                }
                Err(e) => break Err(e),
            }
        };
        match (&whole, &chunked) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("whole {whole:?} vs chunked {chunked:?}"),
        }
    }
    let _ = hbcp_hbase::parse_file_info_payload(data);
});
