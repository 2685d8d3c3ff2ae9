//! `hbcp plan` then `hbcp run`: the plan file is versioned and checksummed.

use std::fs;

use crate::util::*;

#[test]
fn plan_prints_a_summary_and_run_executes_it() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, 64 * 1024);
    let plan = t.path().join("job.plan");
    let r = hbcp([
        "plan",
        &s(&src),
        &s(&dst),
        "--out",
        &s(&plan),
        "--range-size",
        "64KiB",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let files = expected_copy(&src).values().filter(|v| !v.0).count();
    assert!(r.stdout.contains(&format!("files: {files}\n")), "{r:?}");
    assert!(r.stdout.contains("tables: 1\n"), "{r:?}");
    assert!(r.stdout.contains("tasks: "), "{r:?}");
    assert!(!dst.exists(), "plan writes nothing at the target");
    let r = hbcp(["run", &s(&plan), "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
}

#[test]
fn run_refuses_a_damaged_or_foreign_plan() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, 64 * 1024);
    let plan = t.path().join("job.plan");
    assert_eq!(
        hbcp(["plan", &s(&src), &s(&dst), "--out", &s(&plan)]).code,
        0
    );
    let bytes = fs::read(&plan).unwrap();
    // Truncated.
    let cut = t.path().join("cut.plan");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = hbcp(["run", &s(&cut), "--progress", "none"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    // Not a plan at all.
    let junk = t.path().join("junk.plan");
    fs::write(&junk, b"hello").unwrap();
    let r = hbcp(["run", &s(&junk), "--progress", "none"]);
    assert_eq!(r.code, 2, "{r:?}");
    // Another version.
    let text = String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap();
    let other = zstd::encode_all(
        text.replacen("\"version\":1", "\"version\":99", 1)
            .as_bytes(),
        3,
    )
    .unwrap();
    let v99 = t.path().join("v99.plan");
    fs::write(&v99, other).unwrap();
    let r = hbcp(["run", &s(&v99), "--progress", "none"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("version 99"), "{r:?}");
    assert!(
        !dst.join("hbase.version").exists(),
        "nothing copied from a bad plan"
    );
}
