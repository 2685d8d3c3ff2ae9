//! A plan run as N shards by N processes at once, then `hbcp finalize`; `hbcp status` in between.

use std::fs;
use std::process::{Command, Stdio};

use crate::util::*;

fn tree(src: &std::path::Path) {
    boundary_tree(src, 64 * 1024);
    for t in 0..3 {
        let fam = src.join(format!(
            "data/ns{t}/tbl/fedcba9876543210fedcba987654321{t}/cf"
        ));
        fs::create_dir_all(&fam).unwrap();
        for i in 0..20u32 {
            fs::write(
                fam.join(format!("{:032x}", i + 100 * t)),
                vec![(i + t) as u8; 1000 * i as usize],
            )
            .unwrap();
        }
    }
}

/// The tree (plus, with `big`, a family of 8 HFiles of 512 KiB, so that a shard slowed down
/// stays under way) and its plan, made with `extra` arguments: (folder, source, target, plan).
fn planned(
    big: bool,
    extra: &[&str],
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    tree(&src);
    if big {
        let fam = src.join("data/default/big/0123456789abcdef0123456789abcdef/cf");
        fs::create_dir_all(&fam).unwrap();
        for i in 0..8u32 {
            fs::write(
                fam.join(format!("{:032x}", 7000 + i)),
                vec![i as u8; 512 * 1024],
            )
            .unwrap();
        }
    }
    let plan = t.path().join("p.plan");
    let mut args = vec![
        "plan".to_string(),
        s(&src),
        s(&dst),
        "--out".into(),
        s(&plan),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let r = hbcp(&args);
    assert_eq!(r.code, 0, "{r:?}");
    (t, src, dst, plan)
}

#[test]
fn run_three_shards_in_parallel_then_finalize_equals_a_single_copy() {
    let (t, src, dst, plan) = planned(false, &["--range-size", "64KiB"]);
    // Finalize before any shard ran: nothing to finalize.
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 1, "{r:?}");
    let children: Vec<_> = (0..3)
        .map(|i| {
            let rep = t.path().join(format!("s{i}.json"));
            let c = Command::new(bin())
                .args([
                    "run",
                    &s(&plan),
                    "--shard",
                    &format!("{i}/3"),
                    "--progress",
                    "none",
                    "--report",
                    &s(&rep),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (c, rep)
        })
        .collect();
    let mut sent = 0u64;
    let mut files = 0u64;
    for (c, rep) in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&fs::read(rep).unwrap()).unwrap();
        assert!(
            j["files_copied"].as_u64().unwrap() > 0,
            "every shard has work: {j}"
        );
        sent += j["bytes_copied"].as_u64().unwrap();
        files += j["files_copied"].as_u64().unwrap();
    }
    let d = expected_copy(&src);
    let total: u64 = d.values().map(|v| v.1).sum();
    assert_eq!(sent, total, "no byte copied twice");
    assert_eq!(files, d.values().filter(|v| !v.0).count() as u64);
    assert!(
        !dst.join(".hbcp/manifest.json.zst").exists(),
        "only finalize writes the manifest"
    );
    let st = hbcp(["status", &s(&plan)]);
    assert_eq!(st.code, 0, "{st:?}");
    assert_eq!(st.stdout.matches(": done,").count(), 3, "{st:?}");
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(dst.join(".hbcp/manifest.json.zst").is_file());
    assert_same_tree(&src, &dst);
}

#[test]
fn finalize_lists_the_missing_shards_and_a_rerun_of_one_shard_completes_the_job() {
    let (_t, src, dst, plan) = planned(false, &["--range-size", "64KiB"]);
    for i in [0, 2] {
        let r = hbcp([
            "run",
            &s(&plan),
            "--shard",
            &format!("{i}/4"),
            "--progress",
            "none",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("missing shard: 1/4") && r.stdout.contains("missing shard: 3/4"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("missing shard: 0/4"), "{r:?}");
    let st = hbcp(["status", &s(&plan)]);
    assert!(st.stdout.contains("shard 1/4: not started"), "{st:?}");
    for i in [1, 3] {
        let r = hbcp([
            "run",
            &s(&plan),
            "--shard",
            &format!("{i}/4"),
            "--progress",
            "none",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
    // A damaged target is caught by finalize.
    let key = "name with spaces ü=x";
    fs::write(dst.join(key), b"UNICODE").unwrap();
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains(key), "{r:?}");
}

#[test]
fn run_rejects_a_bad_shard_spec() {
    let (_t, _, _, plan) = planned(false, &[]);
    for bad in ["3/3", "x/2", "1"] {
        let r = hbcp(["run", &s(&plan), "--shard", bad]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(r.stderr.contains("--shard"), "{r:?}");
    }
}

#[test]
fn a_shard_killed_midway_and_rerun_alone_lets_finalize_succeed() {
    use std::io::{BufRead, BufReader};
    let (_t, src, dst, plan) = planned(true, &["--range-size", "64KiB"]);
    assert_eq!(
        hbcp(["run", &s(&plan), "--shard", "0/2", "--progress", "none"]).code,
        0
    );
    // Shard 1, slowed down, killed once it is under way.
    let mut child = Command::new(bin())
        .args([
            "run",
            &s(&plan),
            "--shard",
            "1/2",
            "--progress",
            "json",
            "--max-bandwidth",
            "1MiB",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("progress"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("missing shard: 1/2"), "{r:?}");
    let r = hbcp(["run", &s(&plan), "--shard", "1/2", "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
}

/// Run hbcp, killing it if it has not ended within `secs` (then the code is -1).
fn hbcp_within(args: &[&str], secs: u64) -> Run {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = ends_within(&mut child, secs);
    to_run(child.wait_with_output().unwrap())
}

/// The plan at `from` with its header's range size set to `range_size`, checksum recomputed
/// (a hand-edited plan: the reader checks the checksum, so only the header is wrong).
fn plan_with_range_size(from: &std::path::Path, to: &std::path::Path, range_size: u64) {
    let text = String::from_utf8(zstd::decode_all(&fs::read(from).unwrap()[..]).unwrap()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    header["range_size"] = range_size.into();
    lines[0] = header.to_string();
    let trailer = lines.pop().unwrap();
    let mut t: serde_json::Value = serde_json::from_str(&trailer).unwrap();
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    t["xxh3"] = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(body.as_bytes())).into();
    let out = format!("{body}{t}\n");
    fs::write(to, zstd::encode_all(out.as_bytes(), 3).unwrap()).unwrap();
}

/// Issue #17 item 17: `status --shards 4000000000` allocated a counter per shard up front, and a
/// plan whose header says range_size 0 reached an assert!. Both are bad input: exit 2, one line,
/// at once.
#[test]
fn status_of_4000000000_shards_and_plans_cut_at_0_bytes_are_bad_input() {
    let (t, _, dst, plan) = planned(false, &[]);
    let r = hbcp_within(&["status", &s(&plan), "--shards", "4000000000"], 20);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--shards 4000000000"), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let zero = t.path().join("zero.plan");
    plan_with_range_size(&plan, &zero, 0);
    for args in [
        vec!["status", &s(&zero), "--shards", "2"],
        vec!["run", &s(&zero), "--shard", "0/2", "--progress", "none"],
        vec!["finalize", &s(&zero)],
    ] {
        let r = hbcp_within(&args, 20);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("range_size 0"), "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:?}");
    }
    assert!(!dst.exists(), "bad input writes nothing at the target");
}

/// Issue #21: `hbcp status` reads what the shards left at the target, not only the journals of
/// this machine's state folder: shards run with their own `--state` (as on other machines)
/// show as done, running (with the time of their last progress), or not started.
#[test]
fn status_sees_shards_run_from_other_state_folders_through_the_target() {
    use std::io::{BufRead, BufReader};
    let (t, src, dst, plan) = planned(true, &["--range-size", "64KiB"]);
    let state = |i: u32| s(&t.path().join(format!("machine{i}")));
    let r = hbcp([
        "run",
        &s(&plan),
        "--shard",
        "0/3",
        "--progress",
        "none",
        "--state",
        &state(0),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // Shard 1, slowed down, seen while it runs, then killed.
    let mut child = Command::new(bin())
        .args([
            "run",
            &s(&plan),
            "--shard",
            "1/3",
            "--progress",
            "json",
            "--max-bandwidth",
            "1MiB",
            "--state",
            &state(1),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("progress"), "{line}");
    let st = hbcp(["status", &s(&plan), "--shards", "3"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(st.code, 0, "{st:?}");
    assert!(st.stdout.contains("shard 0/3: done"), "{st:?}");
    assert!(
        st.stdout.contains("shard 1/3: running, last progress 20"),
        "{st:?}"
    );
    assert!(st.stdout.contains("shard 2/3: not started"), "{st:?}");
    assert!(st.stdout.contains("in progress"), "{st:?}");
    // Shard 2 runs on a third machine; shard 1, killed, still shows its last progress until
    // it runs again, and then the job is ready for finalize.
    for i in [2, 1] {
        let r = hbcp([
            "run",
            &s(&plan),
            "--shard",
            &format!("{i}/3"),
            "--progress",
            "none",
            "--state",
            &state(i),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        let st = hbcp(["status", &s(&plan), "--shards", "3"]);
        assert!(st.stdout.contains(&format!("shard {i}/3: done")), "{st:?}");
        if i == 2 {
            assert!(
                st.stdout.contains("shard 1/3: running, last progress"),
                "{st:?}"
            );
        }
    }
    let st = hbcp(["status", &s(&plan), "--shards", "3"]);
    assert!(st.stdout.contains("all shards done"), "{st:?}");
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
}
