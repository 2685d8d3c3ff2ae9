//! Planner throughput: listing entries per second through what the planner does with each
//! (the selection with HBase rules and an exclude, the largest-first window, the split into
//! ranges) and through the plan file writer (`hbcp plan`).

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use hbcp_planner::plan::{PLAN_FORMAT, PLAN_VERSION, PlanHeader, PlanWriter};
use hbcp_engine::LargestFirst;
use hbcp_planner::{HbaseRules, Selection};
use hbcp_state::range_count;
use hbcp_store::{Entry, EntryKind};

fn main() {
    divan::main();
}

const N: usize = 100_000;
const RANGE: u64 = 64 << 20;

/// `n` entries as an HBase root lists them: HFiles of 1 KiB–1 GiB in regions and families,
/// with a few WALs and `.tmp` files among them that the HBase rules leave out.
fn entries(n: usize) -> Vec<Entry> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            let x = hbcp_benches::xorshift(&mut x);
            let key = match i % 50 {
                0 => format!("WALs/rs{},16020,1/rs%2C16020%2C1.{i}", i % 7),
                1 => format!("data/default/t{}/.tmp/{i:032x}", i % 9),
                _ => format!(
                    "data/default/t{}/{:032x}/cf/{:016x}{:016x}",
                    i % 9,
                    i / 100,
                    x,
                    i
                ),
            };
            Entry {
                key,
                size: 1024 << (x % 21),
                version: Some(format!("{x:x}")),
                modified: None,
                kind: EntryKind::File,
            }
        })
        .collect()
}

/// Selection (HBase rules + one exclude) → largest-first window → ranges.
#[divan::bench]
fn select_order_split(b: Bencher) {
    let list = entries(N);
    let sel = Selection::with_excludes(&["**/*.tmp".to_string()])
        .unwrap()
        .with_hbase_rules(HbaseRules {
            include_wals: false,
        });
    b.counter(ItemsCount::new(N)).bench_local(|| {
        let mut window = LargestFirst::new(4096);
        let mut tasks = 0u64;
        for e in black_box(&list) {
            if !sel.accepts(e) {
                continue;
            }
            if let Some(out) = window.push(e.clone()) {
                tasks += range_count(out.size, RANGE);
            }
        }
        while let Some(out) = window.pop() {
            tasks += range_count(out.size, RANGE);
        }
        tasks
    });
}

/// The plan file: one record per entry, zstd-compressed, to a temporary file.
#[divan::bench]
fn plan_writer(b: Bencher) {
    let list = entries(N);
    let dir = tempfile::tempdir().unwrap();
    let header = PlanHeader {
        format: PLAN_FORMAT.into(),
        version: PLAN_VERSION,
        source: "/src".into(),
        target: "/dst".into(),
        range_size: RANGE,
        excludes: Vec::new(),
        created: "2026-01-01T00:00:00Z".into(),
        select: None,
        hbase_wals: Some(false),
    };
    b.counter(ItemsCount::new(N)).bench_local(|| {
        let mut w = PlanWriter::create(&dir.path().join("plan"), &header).unwrap();
        for e in black_box(&list) {
            w.add(e).unwrap();
        }
        w.finish().unwrap()
    });
}
