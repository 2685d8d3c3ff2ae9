//! `plan`'s estimate (issue #20): from the nearest bench kept on this machine of the same
//! account and container (a bench of `…/c` serves `…/c/hbase`; the longest such URL wins; a
//! string prefix that is not a folder does not), from the tree's own mix of sizes (small files
//! at the bench's small-file rate, larger ones by bytes), or none with the command to get one.
//! The benches are written here as `hbcp bench` keeps them, with figures that make the
//! estimate a number the test computes.

use std::fs;
use std::path::Path;

use crate::util::*;

/// Keep a bench of `target` under `state` as `hbcp bench` does.
fn stored_bench(state: &Path, name: &str, target: &str, small_fps: f64, bps: f64) {
    let dir = state.join("hbcp/bench");
    fs::create_dir_all(&dir).unwrap();
    let lat = serde_json::json!({"count": 1, "p50": 1.0, "p99": 1.0, "p999": 1.0, "max": 1.0});
    let b = serde_json::json!({
        "target": target, "at": "2026-12-04T00:00:00Z", "files": 16, "bytes": 8 << 20,
        "concurrency": 8, "write_bytes_per_s": bps, "write_files_per_s": 0.001,
        "read_bytes_per_s": bps, "small_files_per_s": small_fps, "latency_ms": lat,
    });
    fs::write(dir.join(format!("{name}.json")), b.to_string()).unwrap();
}

#[test]
fn plan_estimates_from_the_nearest_bench_of_the_same_container_and_the_trees_sizes() {
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let src = t.path().join("src");
    fs::create_dir_all(src.join("big")).unwrap();
    // 10 small files (one request each) and 2 files of 2 MiB (timed by their bytes).
    for i in 0..10 {
        fs::write(src.join(format!("s{i}")), vec![1u8; 100]).unwrap();
    }
    for i in 0..2 {
        fs::write(src.join(format!("big/b{i}")), vec![2u8; 2 << 20]).unwrap();
    }
    let large = 2.0 * (2 << 20) as f64;
    let acct = "https://acct1.blob.core.windows.net";
    stored_bench(&state, "container", &format!("{acct}/c"), 4.0, 1000.0);
    // A string prefix of the target that is not one of its folders: never used.
    stored_bench(&state, "decoy", &format!("{acct}/c/hb"), 0.01, 1.0);
    let plan = |target: &str| {
        let o = std::process::Command::new(bin())
            .args(["plan", &s(&src), target, "--out", &s(&t.path().join("p"))])
            .env("XDG_STATE_HOME", &state)
            .output()
            .unwrap();
        let r = to_run(o);
        assert_eq!(r.code, 0, "{r:?}");
        r.stdout
            .lines()
            .find(|l| l.starts_with("estimate: "))
            .unwrap_or_else(|| panic!("no estimate: {r:?}"))
            .to_string()
    };
    // The container's bench serves a folder under it.
    let line = plan(&format!("{acct}/c/hbase"));
    let want = (10.0 / 4.0 + large / 1000.0_f64).ceil();
    assert!(
        line.contains(&format!("({want:.0} s: 10 small files at 4 files/s"))
            && line.contains(&format!("hbcp bench {acct}/c at")),
        "{want}: {line}"
    );
    // A bench of the folder itself is nearer, and wins.
    stored_bench(&state, "hbase", &format!("{acct}/c/hbase"), 10.0, 2000.0);
    let line = plan(&format!("{acct}/c/hbase/"));
    let want = (10.0 / 10.0 + large / 2000.0_f64).ceil();
    assert!(
        line.contains(&format!("({want:.0} s: ")) && line.contains(&format!("{acct}/c/hbase at")),
        "{want}: {line}"
    );
    // The same in --json.
    let json = |target: &str| -> serde_json::Value {
        let o = std::process::Command::new(bin())
            .args(["plan", &s(&src), target, "--out", &s(&t.path().join("p"))])
            .arg("--json")
            .env("XDG_STATE_HOME", &state)
            .output()
            .unwrap();
        let r = to_run(o);
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
    };
    let j = json(&format!("{acct}/c/hbase"));
    let e = &j["estimate"];
    let secs = e["seconds"].as_f64().unwrap();
    assert!((secs - (1.0 + large / 2000.0)).abs() < 1e-6, "{j}");
    assert_eq!(e["small_files"], 10, "{j}");
    assert_eq!(e["large_bytes"], large as u64, "{j}");
    assert_eq!(e["bench"], format!("{acct}/c/hbase"), "{j}");
    assert!(j["bench_command"].is_null(), "{j}");
    // Another account: no estimate, and the command that gives one.
    let other = "https://acct2.blob.core.windows.net/c/hbase";
    let line = plan(other);
    assert_eq!(
        line,
        format!("estimate: none yet; run `hbcp bench {other}` to measure the target")
    );
    let j = json(other);
    assert!(j["estimate"].is_null(), "{j}");
    assert_eq!(j["bench_command"], format!("hbcp bench {other}"), "{j}");
}
