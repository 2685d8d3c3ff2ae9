//! `hbcp copy` on local disk: byte-exact round trips, resume, overwrite, report.

use std::fs;

use crate::util::*;

const R: u64 = 64 * 1024;

#[test]
fn copy_boundary_tree_round_trips_byte_exact() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, R);
    let r = copy(&src, &dst, &["--range-size", "64KiB", "--workers", "3"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
    assert!(staging_leftovers_outside_hbcp(&dst).is_empty());
    assert!(
        dst.join(".hbcp/manifest.json.zst").is_file(),
        "completion manifest"
    );
    assert!(r.stderr.contains("complete and verified"), "{r:?}");
}

#[test]
fn copy_every_real_root_dir_round_trips() {
    for name in real_root_names() {
        let t = tempfile::tempdir().unwrap();
        let src = real_root(&name, &t.path().join("x"));
        let dst = t.path().join("dst");
        let r = copy(&src, &dst, &["--allow-unflushed"]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        assert_same_copy_with_wals(&src, &dst);
        let v = hbcp(["verify", &s(&src), &s(&dst), "--progress", "none"]);
        assert_eq!(v.code, 0, "{name}: {v:?}");
    }
}

#[test]
fn copy_again_skips_everything_and_still_verifies() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, R);
    let rep = t.path().join("r.json");
    assert_eq!(copy(&src, &dst, &["--range-size", "64KiB"]).code, 0);
    let r = copy(&src, &dst, &["--range-size", "64KiB", "--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    assert_eq!(j["bytes_copied"], 0, "{j}");
    assert_eq!(j["files_copied"], 0);
    assert_eq!(j["files"], j["files_skipped"]);
    assert!(j["verified"]["files"].as_u64().unwrap() >= 9);
}

#[test]
fn copy_report_has_the_contract_fields() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, R);
    let rep = t.path().join("report.json");
    let r = copy(&src, &dst, &["--range-size", "64KiB", "--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    for f in [
        "source",
        "target",
        "started",
        "finished",
        "files",
        "bytes",
        "tasks",
        "retries",
        "throughput_bytes_per_s",
    ] {
        assert!(!j[f].is_null(), "report lacks {f}: {j}");
    }
    let total: u64 = expected_copy(&src).values().map(|v| v.1).sum();
    assert_eq!(j["bytes"].as_u64().unwrap(), total);
    assert_eq!(j["verified"]["bytes"].as_u64().unwrap(), total);
    assert!(j["verified"]["mismatches"].as_array().unwrap().is_empty());
    // 3*R and 3*R+7 are cut into ranges: more tasks than files.
    assert!(j["tasks"].as_u64().unwrap() > j["files"].as_u64().unwrap());
    for p in ["p50", "p99", "p999", "max"] {
        assert!(
            j["latency_ms"][p].as_f64().unwrap() >= 0.0,
            "latency_ms.{p}"
        );
    }
    assert!(j["latency_ms"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn copy_overwrite_if_different_replaces_only_changed_files() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, R);
    // A target that already holds a stale version of one file and an identical copy of another.
    let fam = "data/default/t1/0123456789abcdef0123456789abcdef/cf";
    fs::create_dir_all(dst.join(fam)).unwrap();
    let stale = format!("{fam}/{:032x}", 3);
    let mut bytes = fs::read(src.join(&stale)).unwrap();
    bytes[10] ^= 0xff;
    fs::write(dst.join(&stale), &bytes).unwrap();
    let same = format!("{fam}/{:032x}", 1);
    fs::copy(src.join(&same), dst.join(&same)).unwrap();
    let rep = t.path().join("r.json");
    let r = copy(&src, &dst, &["--range-size", "64KiB", "--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    assert_eq!(
        j["files_skipped"], 1,
        "only the identical file is skipped: {j}"
    );
}

#[test]
fn copy_overwrite_never_keeps_the_target_and_reports_it() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"new").unwrap();
    fs::create_dir_all(&dst).unwrap();
    fs::write(dst.join("a"), b"old").unwrap();
    let r = copy(&src, &dst, &["--overwrite", "never"]);
    assert_eq!(fs::read(dst.join("a")).unwrap(), b"old");
    assert_eq!(r.code, 1, "a kept file that differs does not verify: {r:?}");
    assert!(r.stderr.contains("differs: a"), "{r:?}");
    let r = copy(&src, &dst, &["--overwrite", "always"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(dst.join("a")).unwrap(), b"new");
}

#[test]
fn copy_never_follows_a_symlink_out_of_the_source() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst, outside) = (
        t.path().join("src"),
        t.path().join("dst"),
        t.path().join("outside"),
    );
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), b"do not copy").unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), src.join("escape")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("escapedir")).unwrap();
    let r = copy(&src, &dst, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!dst.join("escape").exists() && !dst.join("escapedir").exists());
    assert_eq!(fs::read(dst.join("f")).unwrap(), b"data");
    assert!(r.stderr.contains("not copied: escape"), "{r:?}");
}

#[test]
fn copy_progress_json_prints_machine_lines() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, R);
    let r = hbcp([
        "copy",
        &s(&src),
        &s(&dst),
        "--progress",
        "json",
        "--range-size",
        "64KiB",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let last = r.stdout.lines().last().expect("a JSON line");
    let j: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(j["event"], "done");
    assert_eq!(j["exit_code"], 0);
    for l in r.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("every stdout line is JSON");
    }
}

#[test]
fn copy_generated_hbase_root_with_boundary_sizes_round_trips() {
    use hbcp_testkit::hbase_tree::{Spec, generate, table};
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    let spec = Spec {
        tables: vec![
            table("default", "t1", 2, &["cf", "cf2"], 4),
            table("ns1", "t2", 3, &["f"], 3),
        ],
        hfile_sizes: Spec::boundary_sizes(R),
        extras: true,
    };
    let sum = generate(&src, &spec, 42).unwrap();
    assert!(sum.files > 50, "{sum:?}");
    let rep = t.path().join("r.json");
    let r = copy(
        &src,
        &dst,
        &[
            "--range-size",
            "64KiB",
            "--workers",
            "4",
            "--report",
            &s(&rep),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    // Everything generated but the WALs and transient folders (the HBase rules).
    let want = expected_copy(&src);
    assert!(
        want.len() < digest(&src).len(),
        "the extras hold WALs and .tmp"
    );
    assert_eq!(
        j["files"].as_u64().unwrap(),
        want.values().filter(|v| !v.0).count() as u64
    );
    assert_eq!(
        j["bytes"].as_u64().unwrap(),
        want.values().map(|v| v.1).sum::<u64>()
    );
    let v = hbcp(["verify", &s(&src), &s(&dst), "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn copy_the_bundled_sample() {
    let t = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample");
    let dst = t.path().join("copy");
    let r = copy(&src, &dst, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
}

/// Issue 17, item 10: a target that does not verify carries no completion manifest, not even
/// the one an earlier, verified copy left.
#[test]
fn copy_that_does_not_verify_leaves_no_old_completion_manifest() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, R);
    assert_eq!(copy(&src, &dst, &["--range-size", "64KiB"]).code, 0);
    assert!(dst.join(".hbcp/manifest.json.zst").is_file());
    // A target file damaged in place (same size), which `--overwrite never` keeps.
    let victim = expected_copy(&src)
        .into_iter()
        .find(|(_, (dir, size, _))| !dir && *size > 0)
        .map(|(k, _)| k)
        .unwrap();
    let mut bytes = fs::read(dst.join(&victim)).unwrap();
    bytes[0] ^= 0xff;
    fs::write(dst.join(&victim), &bytes).unwrap();
    let r = copy(
        &src,
        &dst,
        &["--range-size", "64KiB", "--overwrite", "never"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&victim), "{r:?}");
    assert!(
        !dst.join(".hbcp/manifest.json.zst").exists(),
        "a target that did not verify keeps no completion manifest: {r:?}"
    );
}

/// Issue 17, item 4: a symlink to a file inside SRC is followed (the README says so) and
/// copies as the file it leads to; a link leading out of SRC is still left out.
#[test]
fn copy_follows_a_symlink_to_a_file_inside_the_source() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/b/real"), b"the bytes of the real file").unwrap();
    std::os::unix::fs::symlink("b/real", src.join("a/ln")).unwrap();
    fs::write(t.path().join("outside"), b"secret").unwrap();
    std::os::unix::fs::symlink(t.path().join("outside"), src.join("out")).unwrap();
    let r = copy(&src, &dst, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("complete and verified"), "{r:?}");
    let md = fs::symlink_metadata(dst.join("a/ln")).unwrap();
    assert!(md.is_file(), "a regular file at the target");
    assert_eq!(
        fs::read(dst.join("a/ln")).unwrap(),
        b"the bytes of the real file"
    );
    assert!(
        !dst.join("out").exists(),
        "a link out of the source is not followed"
    );
    let v = hbcp(["verify", &s(&src), &s(&dst), "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}
