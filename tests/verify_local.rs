//! `hbcp verify`: every kind of difference is found and named, and nothing else.

use std::fs;

use crate::util::*;

#[test]
fn verify_names_exactly_the_flipped_truncated_deleted_and_added_files() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, 64 * 1024);
    assert_eq!(copy(&src, &dst, &["--range-size", "64KiB"]).code, 0);
    let v = hbcp(["verify", &s(&src), &s(&dst), "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
    let fam = "data/default/t1/0123456789abcdef0123456789abcdef/cf";
    let flip = format!("{fam}/{:032x}", 5); // 3 ranges: flip in the middle one
    let mut b = fs::read(dst.join(&flip)).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    fs::write(dst.join(&flip), b).unwrap();
    let trunc = format!("{fam}/{:032x}", 4);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dst.join(&trunc))
        .unwrap();
    f.set_len(100).unwrap();
    let del = "name with spaces ü=x".to_string();
    fs::remove_file(dst.join(&del)).unwrap();
    let add = format!("{fam}/ffffffffffffffffffffffffffffffff");
    fs::write(dst.join(&add), b"x").unwrap();
    let v = hbcp(["verify", &s(&src), &s(&dst), "--progress", "none"]);
    assert_eq!(v.code, 1, "{v:?}");
    let lines: Vec<&str> = v.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{v:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("differs: ") && l.contains(&flip)),
        "{v:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("short: ") && l.contains(&trunc)),
        "{v:?}"
    );
    assert!(
        lines.iter().any(|l| *l == format!("missing: {del}")),
        "{v:?}"
    );
    assert!(lines.iter().any(|l| *l == format!("extra: {add}")), "{v:?}");
    // Size mode misses the flipped byte but still finds the other three.
    let v = hbcp([
        "verify",
        &s(&src),
        &s(&dst),
        "--progress",
        "none",
        "--verify",
        "size",
    ]);
    assert_eq!(v.code, 1);
    assert_eq!(v.stdout.lines().count(), 3, "{v:?}");
}

#[test]
fn copy_repairs_a_damaged_target_on_the_next_run() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, 64 * 1024);
    assert_eq!(copy(&src, &dst, &["--range-size", "64KiB"]).code, 0);
    let key = format!(
        "data/default/t1/0123456789abcdef0123456789abcdef/cf/{:032x}",
        6
    );
    let mut b = fs::read(dst.join(&key)).unwrap();
    b[0] ^= 0x80;
    fs::write(dst.join(&key), b).unwrap();
    let r = copy(&src, &dst, &["--range-size", "64KiB"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
}

#[test]
fn verify_report_lists_mismatches() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&dst).unwrap();
    fs::write(src.join("a"), b"1").unwrap();
    let rep = t.path().join("v.json");
    let v = hbcp([
        "verify",
        &s(&src),
        &s(&dst),
        "--progress",
        "none",
        "--report",
        &s(&rep),
    ]);
    assert_eq!(v.code, 1);
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    assert_eq!(j["verified"]["mismatches"][0]["key"], "a");
    assert_eq!(j["verified"]["mismatches"][0]["kind"], "missing");
}
