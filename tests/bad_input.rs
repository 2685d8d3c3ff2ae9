//! Bad input: one clear line on stderr, exit 2, nothing written.

use std::fs;
use std::path::Path;

use crate::util::*;

fn assert_usage(r: &Run, needle: &str) {
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(needle), "expected {needle:?} in {r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
}

fn nothing_at(p: &Path) {
    assert!(!p.exists(), "{} was written", p.display());
}

#[test]
fn copy_missing_source_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("dst");
    let r = copy(&t.path().join("nope"), &dst, &[]);
    assert_usage(&r, "does not exist");
    nothing_at(&dst);
}

#[test]
fn copy_source_that_is_a_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("f"), b"x").unwrap();
    let dst = t.path().join("dst");
    let r = copy(&t.path().join("f"), &dst, &[]);
    assert_usage(&r, "is a file");
    nothing_at(&dst);
}

#[test]
fn copy_target_inside_source_and_source_inside_target_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    let before = digest(&src);
    let r = copy(&src, &src.join("sub/dst"), &[]);
    assert_usage(&r, "inside the source");
    nothing_at(&src.join("sub"));
    let r = copy(&src.join("data"), &src, &[]);
    assert_usage(&r, "inside the target");
    assert_eq!(digest(&src), before, "the source is never written to");
    assert!(!src.join(".hbcp").exists());
}

#[test]
fn copy_target_that_is_a_file_or_unwritable_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    fs::write(t.path().join("file"), b"x").unwrap();
    let r = copy(&src, &t.path().join("file"), &[]);
    assert_usage(&r, "not a directory");
    let r = copy(&src, &t.path().join("file/below"), &[]);
    assert_usage(&r, "not writable");
    // /proc is not writable even for root.
    let r = copy(&src, Path::new("/proc/hbcp-test-target"), &[]);
    assert_usage(&r, "not writable");
}

#[test]
fn copy_unknown_flag_values_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    let dst = t.path().join("dst");
    for args in [
        vec!["--verify", "sometimes"],
        vec!["--overwrite", "maybe"],
        vec!["--range-size", "12 parsecs"],
        vec!["--range-size", "100"],
        vec!["--workers", "0"],
        vec!["--max-bandwidth", "fast"],
        vec!["--progress", "loud"],
        vec!["--exclude", "a["],
        vec!["--no-such-flag"],
    ] {
        let r = copy(&src, &dst, &args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(args[0]) || r.stderr.contains(args.last().unwrap()),
            "{args:?}: {r:?}"
        );
        nothing_at(&dst);
    }
}

#[test]
fn copy_refuses_retired_and_plain_http_urls() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    let r = copy(
        &src,
        Path::new("adl://store.azuredatalakestore.net/hbase"),
        &[],
    );
    assert_usage(&r, "abfss://");
    let r = copy(
        &src,
        Path::new("wasb://c@acct.blob.core.windows.net/hbase"),
        &[],
    );
    assert_usage(&r, "--allow-http");
}

#[test]
fn copy_source_with_a_name_that_is_not_utf8_is_bad_input() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), b"x").unwrap();
    let r = copy(&src, &t.path().join("dst"), &[]);
    assert_usage(&r, "not valid UTF-8");
    // Issue #17 item 13: exit 2 means nothing written, not even the target's .hbcp/ folder.
    nothing_at(&t.path().join("dst"));
}

/// Issue #17 item 13: a `plan --out` that fails after it began writing leaves no `.tmp` and no
/// plan behind.
#[test]
fn plan_whose_out_cannot_be_put_in_place_leaves_no_tmp() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"x").unwrap();
    // --out names a folder: the plan is written to out.tmp, then cannot be renamed onto it.
    let out = t.path().join("out");
    fs::create_dir_all(out.join("inside")).unwrap();
    let r = hbcp([
        "plan",
        &s(&src),
        &s(&t.path().join("dst")),
        "--out",
        &s(&out),
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    nothing_at(&t.path().join("out.tmp"));
    nothing_at(&t.path().join("dst"));
    assert!(out.join("inside").is_dir(), "the folder is untouched");
}

#[test]
fn copy_max_memory_too_small_for_the_workers_is_refused_naming_what_it_needs() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    let dst = t.path().join("dst");
    let r = copy(&src, &dst, &["--max-memory", "64MiB", "--workers", "8"]);
    assert_usage(&r, "--max-memory 64.0 MiB");
    assert!(r.stderr.contains("8 workers"), "{r:?}");
    nothing_at(&dst);
    let r = copy(&src, &dst, &["--max-memory", "lots"]);
    assert_usage(&r, "--max-memory");
    nothing_at(&dst);
}

#[test]
fn a_list_concurrency_that_is_not_a_number_from_1_to_256_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let plan = t.path().join("plan.zst");
    for bad in ["lots", "0", "1000"] {
        let o = std::process::Command::new(bin())
            .args([
                "plan",
                "http://127.0.0.1:9/devstoreaccount1/c/hbase",
                &s(&t.path().join("dst")),
                "--out",
                &s(&plan),
            ])
            .env("HBCP_LIST_CONCURRENCY", bad)
            .output()
            .unwrap();
        let r = to_run(o);
        assert_usage(&r, &format!("HBCP_LIST_CONCURRENCY=\"{bad}\""));
        assert!(r.stderr.contains("1 to 256"), "{r:?}");
        nothing_at(&plan);
    }
}

/// Issue 17, item 8: `--state` inside the source would write into it, and inside the target
/// (an HBase folder of it above all) it would land among the copied files: both refused as
/// DST-inside-SRC is, and nothing written there.
#[test]
fn copy_state_inside_the_source_or_among_the_target_files_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    let sample = real_root(&real_root_names()[0], &t.path().join("x"));
    let src_digest = digest(&sample);
    fs::rename(&sample, &src).unwrap();
    let st = src.join("data/state");
    let r = copy(&src, &dst, &["--allow-unflushed", "--state", &s(&st)]);
    assert_usage(&r, "is inside the source");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    nothing_at(&st);
    assert_eq!(digest(&src), src_digest, "the source is untouched");
    let st = dst.join("data/default/state");
    let r = copy(&src, &dst, &["--allow-unflushed", "--state", &s(&st)]);
    assert_usage(&r, "is inside the target");
    nothing_at(&st);
    nothing_at(&dst.join("data"));
    // Its own folder at the target is where state belongs.
    let st = dst.join(".hbcp/my-state");
    let r = copy(&src, &dst, &["--allow-unflushed", "--state", &s(&st)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(st.is_dir());
    assert_same_copy_with_wals(&src, &dst);
}
