//! Every count agrees (issue #20): what `sync` (each cycle's line and JSON) and `plan` say they
//! left out, by reason, equals what the tree holds, counted here from the files themselves.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// The bundled sample's files by reason left out with `--exclude notes/**` (WALs, excluded,
/// HBase transient), counted from the tree; and the summary the commands print for them.
fn sample_left_out(src: &Path) -> (usize, usize, usize, String) {
    let all: Vec<String> = digest(src)
        .into_iter()
        .filter(|(_, (is_dir, _, _))| !*is_dir)
        .map(|(k, _)| k)
        .collect();
    let wals = all.iter().filter(|k| in_wal_folder(k)).count();
    let excluded = all.iter().filter(|k| k.starts_with("notes/")).count();
    let transient = all
        .iter()
        .filter(|k| !k.starts_with("notes/") && hbase_copy_leaves_out(k, true))
        .count();
    assert!(wals > 0 && transient > 0 && excluded == 1);
    let summary = format!(
        "{} files left out (HBase transient {transient}, WALs {wals}, --exclude {excluded})",
        wals + excluded + transient
    );
    (wals, excluded, transient, summary)
}

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample")
}

#[test]
fn sync_cycle_says_what_it_left_out_by_reason() {
    let t = tempfile::tempdir().unwrap();
    let src = sample();
    let (wals, excluded, transient, summary) = sample_left_out(&src);
    let dst = t.path().join("dst");
    let args = [
        "sync",
        &s(&src),
        &s(&dst),
        "--exclude",
        "notes/**",
        "--progress",
        "json",
    ];
    // Twice: the second cycle (nothing to write) leaves out the same files again.
    for _ in 0..2 {
        let r = hbcp(args);
        assert_eq!(r.code, 0, "{r:?}");
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains("sync cycle 1:"))
            .unwrap_or_else(|| panic!("no cycle line: {r:?}"));
        assert!(line.contains(&summary), "{summary:?} not in {line:?}");
        let cycle: Value = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|j| j["event"] == "cycle")
            .unwrap_or_else(|| panic!("no cycle event: {r:?}"))["cycle"]
            .clone();
        let lo = &cycle["left_out"];
        assert_eq!(lo["wals"]["files"], wals as u64, "{cycle}");
        assert_eq!(lo["excluded"]["files"], excluded as u64, "{cycle}");
        assert_eq!(lo["hbase_transient"]["files"], transient as u64, "{cycle}");
        let wal_bytes: u64 = digest(&src)
            .into_iter()
            .filter(|(k, (is_dir, _, _))| !is_dir && in_wal_folder(k))
            .map(|(k, _)| fs::metadata(src.join(k)).unwrap().len())
            .sum();
        assert_eq!(lo["wals"]["bytes"], wal_bytes, "{cycle}");
    }
}

#[test]
fn plan_says_what_it_leaves_out_by_reason() {
    let t = tempfile::tempdir().unwrap();
    let src = sample();
    let (wals, excluded, transient, summary) = sample_left_out(&src);
    let out = t.path().join("p.plan");
    let args = [
        "plan",
        &s(&src),
        &s(&t.path().join("dst")),
        "--exclude",
        "notes/**",
        "--out",
        &s(&out),
    ];
    let r = hbcp(args);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("left out: {summary}\n")),
        "{summary:?} not in {r:?}"
    );
    // The same counts in --json, with the keys.
    let r = hbcp(args.iter().chain(&["--json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let j: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let lo = &j["left_out"];
    assert_eq!(lo["wals"]["files"], wals as u64, "{j}");
    assert_eq!(lo["excluded"]["files"], excluded as u64, "{j}");
    assert_eq!(lo["hbase_transient"]["files"], transient as u64, "{j}");
    assert_eq!(
        lo["excluded"]["keys"][0],
        "notes/operator copy #123 ü=ok.txt"
    );
    // What the plan holds and what it left out make the whole tree.
    let all = digest(&src).values().filter(|(d, _, _)| !d).count() as u64;
    assert_eq!(
        j["files"].as_u64().unwrap() + (wals + excluded + transient) as u64,
        all,
        "{j}"
    );
}

/// `--layout bulkload` of a table whose split daughters refer to their parent's HFiles: the
/// selection line says how many files the selected HFiles make at the target, and that number
/// is the copy's "copied N files" and the target's file count; the HFiles selected are the
/// table's store files (HFiles and References), counted from the tree.
#[test]
fn bulkload_selection_and_summary_count_the_same_files() {
    let t = tempfile::tempdir().unwrap();
    let src = sample();
    let dst = t.path().join("dst");
    let r = copy(
        &src,
        &dst,
        &["--table", "usertable", "--layout", "bulkload"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let store_files = digest(&src.join("data/default/usertable"))
        .into_iter()
        .filter(|(k, (is_dir, _, _))| {
            let parts: Vec<&str> = k.split('/').collect();
            !is_dir && parts.len() == 3 && !parts[0].starts_with('.') && !parts[2].starts_with('.')
        })
        .count();
    let held = digest(&dst)
        .into_iter()
        .filter(|(k, (is_dir, _, _))| !is_dir && !k.starts_with(".hbcp/"))
        .count();
    assert!(held < store_files, "the sample's daughters share HFiles");
    let line = format!(
        "HFiles selected: {store_files}, stored as {held} files under <table>/<family>/<hfile>"
    );
    assert!(r.stderr.contains(&line), "{line:?} not in {r:?}");
    assert!(
        r.stderr
            .contains(&format!("selection: {held} files in all")),
        "{r:?}"
    );
    assert!(r.stderr.contains(&format!("copied {held} files")), "{r:?}");
}
