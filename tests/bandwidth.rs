//! `--max-bandwidth` covers every byte the run moves, not only the copy's writes (issue #20):
//! the checksums of files already at the target (both sides read) and the verification's
//! read-back take from the same limit. Counted, not timed: the limit's own counter in the
//! report equals the bytes the test expects from the sizes it wrote.

use std::fs;

use serde_json::Value;

use crate::util::*;

#[test]
fn copy_max_bandwidth_counts_the_copy_the_target_checks_and_the_read_back() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(src.join("d")).unwrap();
    fs::create_dir_all(dst.join("d")).unwrap();
    let bytes = |n: usize, seed: u8| -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    };
    // New files: one streamed (larger than the 1 MiB chunk), one small, one empty.
    let new = [("d/big", 1_500_000usize), ("small", 100_000), ("empty", 0)];
    for (k, n) in new {
        fs::write(src.join(k), bytes(n, 1)).unwrap();
    }
    // Already at the target: the same bytes (hashed on both sides, kept) and the same size
    // with other bytes (hashed on both sides, then copied).
    fs::write(src.join("d/same"), bytes(300_000, 2)).unwrap();
    fs::write(dst.join("d/same"), bytes(300_000, 2)).unwrap();
    fs::write(src.join("d/changed"), bytes(200_000, 3)).unwrap();
    fs::write(dst.join("d/changed"), bytes(200_000, 4)).unwrap();
    let report = t.path().join("r.json");
    let r = copy(
        &src,
        &dst,
        &["--max-bandwidth", "64MiB/s", "--report", &s(&report)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
    let j: Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    let copied: u64 = new.iter().map(|(_, n)| *n as u64).sum::<u64>() + 200_000;
    let checked = 2 * (300_000 + 200_000);
    let read_back = copied + 300_000;
    assert_eq!(j["bytes_copied"], copied, "{j}");
    assert_eq!(j["verified"]["bytes"], read_back, "{j}");
    assert_eq!(j["bandwidth"]["limit_bytes_per_s"], 64 << 20, "{j}");
    assert_eq!(
        j["bandwidth"]["bytes"],
        copied + checked + read_back,
        "copy {copied} + checks {checked} + read-back {read_back}: {j}"
    );
    // `hbcp verify` reads both sides (each file hashed at the source and at the target) under
    // its own --max-bandwidth; AzCopy's --cap-mbps is the same limit in megabits.
    let total: u64 = copied + 300_000;
    for (cap, limit) in [
        (["--max-bandwidth", "64MiB/s"], 64u64 << 20),
        (["--cap-mbps", "512"], 64_000_000),
    ] {
        let vr = t.path().join("v.json");
        let (a, b, v) = (s(&src), s(&dst), s(&vr));
        let r = hbcp([
            "verify",
            &a,
            &b,
            "--progress",
            "none",
            "--report",
            &v,
            cap[0],
            cap[1],
        ]);
        assert_eq!(r.code, 0, "{cap:?}: {r:?}");
        let j: Value = serde_json::from_slice(&fs::read(&vr).unwrap()).unwrap();
        assert_eq!(j["bandwidth"]["limit_bytes_per_s"], limit, "{cap:?}: {j}");
        assert_eq!(
            j["bandwidth"]["bytes"],
            2 * total,
            "both sides read once: {j}"
        );
    }
    // Without a limit the report names none.
    let r = copy(&src, &t.path().join("dst2"), &["--report", &s(&report)]);
    assert_eq!(r.code, 0, "{r:?}");
    let j: Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    assert!(j.get("bandwidth").is_none(), "{j}");
}
