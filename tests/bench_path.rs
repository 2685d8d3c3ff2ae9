//! `hbcp bench PATH` on a local path that does not exist: it measures, then leaves no folder it
//! made behind (issue #20); a folder that existed stays.

use std::process::Command;

use crate::util::*;

/// `hbcp bench ARGS…` with its results kept in the test's own state folder.
fn bench(state: &std::path::Path, args: &[&str]) -> Run {
    to_run(
        Command::new(bin())
            .arg("bench")
            .args(args)
            .env("XDG_STATE_HOME", state)
            .output()
            .unwrap(),
    )
}

#[test]
fn bench_of_a_missing_local_path_removes_the_folders_it_made() {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("no/such/path");
    let state = t.path().join("state");
    let r = bench(&state, &[&s(&target), "--size", "256KiB", "--files", "4"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!t.path().join("no").exists(), "{r:?}");
    // An existing folder is kept, and left empty as it was.
    let here = t.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let r = bench(&state, &[&s(&here), "--size", "256KiB", "--files", "4"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(here.is_dir());
    assert_eq!(std::fs::read_dir(&here).unwrap().count(), 0);
}
