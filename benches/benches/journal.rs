//! Journal append rate: records per second made durable (one write and one `fdatasync` per
//! append), for one record per append (a lone finished range) and for batches as the
//! committer groups them, on the file system of `$TMPDIR`.

use divan::Bencher;
use divan::counter::ItemsCount;
use hbcp_state::journal::{Journal, Record};

fn main() {
    divan::main();
}

#[divan::bench(args = [1, 64, 1024])]
fn append(b: Bencher, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), "bench-job").unwrap();
    let recs: Vec<Record> = (0..batch)
        .map(|i| Record::Range {
            k: format!("data/default/t/0123456789abcdef0123456789abcdef/cf/{i:032x}"),
            s: 1 << 30,
            v: Some("1700000000.123456789-4242-1073741824".into()),
            i: i as u32,
            h: 0x1234_5678_9abc_def0 ^ i as u64,
        })
        .collect();
    b.counter(ItemsCount::new(batch))
        .bench_local(|| j.append(&recs).unwrap());
}
