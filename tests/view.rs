//! The operator's view (issue #20): what a run shows while it runs and what it says at the end,
//! checked against what the run did.

use std::fs;
use std::process::{Command, Stdio};

use crate::util::*;

/// A stats line: `hbcp: [PHASE] FIGURES`.
fn stats_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("hbcp: [copy] ") || l.starts_with("hbcp: [verify] "))
        .collect()
}

/// The `N.N UNIT/s` rate of a stats line, in bytes/s.
fn rate_of(line: &str) -> Option<f64> {
    let i = line.find("/s,")?;
    let head = &line[..i];
    let j = head.rfind(", ")?;
    let (num, unit) = head[j + 2..].split_once(' ')?;
    let mult = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(num.parse::<f64>().ok()? * mult)
}

/// With stderr redirected to a file (as `> run.log 2>&1` in cron), `--stats-interval 1s`
/// prints a line of figures every second: a copy held to about ten seconds by the cap prints
/// at least five, each with the rate over the recent past (under the cap, not an average
/// since the start), the files and bytes of the total, the elapsed time, retries, failures.
#[test]
fn copy_with_stderr_redirected_prints_stats_lines_at_the_interval() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    // 24 files of 256 KiB = 6 MiB at 600 KiB/s: about ten seconds.
    for i in 0..24u32 {
        fs::write(
            src.join(format!("f{i:02}")),
            vec![(i % 251) as u8; 256 << 10],
        )
        .unwrap();
    }
    let log = t.path().join("run.log");
    let status = Command::new(bin())
        .args(["copy", &s(&src), &s(&dst)])
        // AzCopy's --cap-mbps: 4.9152 megabits/s = 614400 bytes/s = 600 KiB/s.
        .args(["--cap-mbps", "4.9152", "--workers", "2"])
        .args(["--stats-interval", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let err = fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_same_tree(&src, &dst);
    let lines = stats_lines(&err);
    assert!(lines.len() >= 5, "{} stats lines:\n{err}", lines.len());
    let cap = 600.0 * 1024.0;
    for l in &lines {
        for figure in ["elapsed ", "retries 0", "failed 0", "/s"] {
            assert!(l.contains(figure), "{figure:?} missing from {l:?}");
        }
        // Once the listing ended (it is instant here), every line has the totals.
        if !l.contains("listing:") && l.starts_with("hbcp: [copy]") {
            assert!(l.contains(" of 6.0 MiB ("), "{l}");
            assert!(l.contains(" of 24 files"), "{l}");
        }
    }
    // The rate shown is of the recent past and holds under the cap (a short burst allowed).
    let copy_lines: Vec<&&str> = lines.iter().filter(|l| l.contains("[copy]")).collect();
    let late = &copy_lines[copy_lines.len() / 2..];
    for l in late {
        let r = rate_of(l).unwrap_or_else(|| panic!("no rate in {l:?}"));
        assert!(
            r <= cap * 1.5,
            "{r} B/s shown under a cap of {cap} B/s: {l}"
        );
        assert!(l.contains("ETA "), "{l}");
    }
    // The files done never go down and never pass the total.
    let done: Vec<u64> = copy_lines
        .iter()
        .filter_map(|l| {
            let (_, rest) = l.split_once("), ")?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    assert!(done.iter().all(|d| *d <= 24), "{done:?}");
}

/// `--stats-interval` refuses what is not a duration, or one too short to be meant.
#[test]
fn stats_interval_refuses_bad_durations() {
    let t = tempfile::tempdir().unwrap();
    for bad in ["soon", "0s", "5ms"] {
        let r = hbcp([
            "copy",
            &s(t.path()),
            &s(&t.path().join("dst")),
            "--stats-interval",
            bad,
        ]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(r.stderr.contains("--stats-interval"), "{r:?}");
        assert!(!t.path().join("dst").exists());
    }
}

/// The files under `root` (no folders), as relative keys.
fn files_under(root: &std::path::Path) -> Vec<String> {
    digest(root)
        .into_iter()
        .filter(|(k, (is_dir, _, _))| !*is_dir && !k.starts_with(".hbcp/"))
        .map(|(k, _)| k)
        .collect()
}

/// The bundled sample's copy names what it left out and why, as counts by reason, and the
/// report lists the keys: each count is checked against the tree (the WAL folders' files, the
/// transient ones, the --exclude match), and copied + left out = every file of the source.
#[test]
fn copy_of_the_sample_names_what_it_left_out() {
    let t = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample");
    let dst = t.path().join("dst");
    let report = t.path().join("r.json");
    let r = copy(
        &src,
        &dst,
        &["--exclude", "notes/**", "--report", &s(&report)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let all = files_under(&src);
    let copied = files_under(&dst);
    let wals: Vec<&String> = all.iter().filter(|k| in_wal_folder(k)).collect();
    let excluded: Vec<&String> = all.iter().filter(|k| k.starts_with("notes/")).collect();
    let left: Vec<&String> = all.iter().filter(|k| !copied.contains(k)).collect();
    let transient: Vec<&String> = left
        .iter()
        .copied()
        .filter(|k| !wals.contains(k) && !excluded.contains(k))
        .collect();
    assert!(!wals.is_empty() && !transient.is_empty() && excluded.len() == 1);
    for k in &transient {
        assert!(
            hbase_copy_leaves_out(k, true),
            "{k} left out but not transient"
        );
    }
    let summary = r.stderr.lines().last().unwrap();
    let expect = format!(
        "{} files left out (HBase transient {}, WALs {}, --exclude 1)",
        left.len(),
        transient.len(),
        wals.len()
    );
    assert!(summary.contains(&expect), "{expect:?} not in {summary:?}");
    assert!(
        summary.contains(&format!("copied {} files", copied.len())),
        "{summary}"
    );
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    let keys = |why: &str| -> Vec<String> {
        j["left_out"][why]["keys"]
            .as_array()
            .unwrap_or_else(|| panic!("no left_out.{why} in {j}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        keys("wals"),
        wals.iter().map(|k| k.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(keys("excluded"), ["notes/operator copy #123 ü=ok.txt"]);
    assert_eq!(
        keys("hbase_transient"),
        transient.iter().map(|k| k.to_string()).collect::<Vec<_>>()
    );
    let wal_bytes: u64 = wals
        .iter()
        .map(|k| fs::metadata(src.join(k)).unwrap().len())
        .sum();
    assert_eq!(j["left_out"]["wals"]["bytes"], wal_bytes);
    assert_eq!(j["files"], copied.len() as u64, "{j}");
}

/// `--max-bandwidth` refuses a rate that could be read as bits or as bytes, with one line that
/// lists the forms; `--cap-mbps` and `--max-bandwidth` together are refused; nothing written.
#[test]
fn ambiguous_bandwidth_is_refused_with_the_forms() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("a"), b"x").unwrap();
    let dst = t.path().join("dst");
    for rate in ["8M", "8MB", "8mbps", "8MBps", "100"] {
        let r = hbcp(["copy", &s(t.path()), &s(&dst), "--max-bandwidth", rate]);
        assert_eq!(r.code, 2, "{rate}: {r:?}");
        assert!(r.stderr.contains("--max-bandwidth"), "{r:?}");
        assert!(
            r.stderr.contains("800Mbps") && r.stderr.contains("100MiB/s"),
            "{r:?}"
        );
        assert!(!dst.exists(), "{rate}: the target was created");
    }
    let r = hbcp([
        "copy",
        &s(t.path()),
        &s(&dst),
        "--max-bandwidth",
        "8Mbps",
        "--cap-mbps",
        "8",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!dst.exists());
}

/// A backup of the sample says what it left out, as the copy does, and counts in the singular
/// when there is one; `preflight` too ("1 region, 1 family", not "1 regions, 1 families").
#[test]
fn backup_and_preflight_of_the_sample_say_it_plainly() {
    let t = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample");
    let dst = t.path().join("backups");
    let r = hbcp(["backup", &s(&src), &s(&dst), "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    let all = files_under(&src);
    let wals = all.iter().filter(|k| in_wal_folder(k)).count();
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("written: "))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(line.contains(&format!("WALs {wals})")), "{line}");
    assert!(
        line.contains("files left out (HBase transient 1, "),
        "{line}"
    );
    let p = hbcp(["preflight", &s(&src)]);
    assert_eq!(p.code, 0, "{p:?}");
    for bad in ["1 regions", "1 families", "1 HFiles", "1 files"] {
        assert!(
            !p.stdout.contains(&format!(" {bad}")),
            "{bad}: {}",
            p.stdout
        );
    }
    assert!(
        p.stdout.contains(": 1 region, 1 family, 1 HFile, "),
        "{}",
        p.stdout
    );
}
