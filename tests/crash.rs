//! kill -9 at random moments of a copy, then the same command again: every time it finishes,
//! the target verifies byte-exact, and no partial file is ever visible at its final name.
//!
//! The kill moments are spread over the whole run (listing, ranges, commits, verify, manifest)
//! by drawing them from the duration of an uninterrupted run; the copy is slowed with
//! `--max-bandwidth` so that 20 kills fit in a few seconds of CI time.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn tree(src: &std::path::Path) {
    let fam = src.join("data/default/t/0123456789abcdef0123456789abcdef/f");
    fs::create_dir_all(&fam).unwrap();
    for i in 0..4u32 {
        let data: Vec<u8> = (0..(900 * 1024 + i * 7))
            .map(|j| (j.wrapping_mul(2654435761) >> (i + 3)) as u8)
            .collect();
        fs::write(fam.join(format!("{i:032x}")), data).unwrap();
    }
    for i in 0..120u32 {
        fs::write(
            fam.join(format!("{:032x}", 1000 + i)),
            vec![(i % 251) as u8; 4096 + i as usize],
        )
        .unwrap();
    }
    fs::create_dir_all(src.join("empty/dir")).unwrap();
}

#[test]
fn copy_killed_at_20_or_more_random_moments_then_rerun_always_finishes_byte_exact() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src);
    let expected = expected_copy(&src);
    let total: u64 = expected.values().map(|v| v.1).sum();
    const RANGE: u64 = 256 * 1024;
    const WORKERS: u64 = 4;
    const RATE: u64 = 8 << 20;
    let args = |d: &std::path::Path| {
        vec![
            "copy".to_string(),
            s(&src),
            s(d),
            "--progress".into(),
            "none".into(),
            "--range-size".into(),
            "256KiB".into(),
            "--workers".into(),
            WORKERS.to_string(),
            "--max-bandwidth".into(),
            "8MiB".into(),
        ]
    };
    // How long an uninterrupted run takes, to spread the kills over it.
    let probe = t.path().join("probe");
    let t0 = Instant::now();
    let r = hbcp(args(&probe));
    assert_eq!(r.code, 0, "{r:?}");
    let full = t0.elapsed();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut kills = 0;
    let mut worst_resent = 0i64;
    let mut resent_total = 0i64;
    let mut round = 0;
    while kills < 20 && round < 60 {
        round += 1;
        let dst = t.path().join(format!("dst{round}"));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = full.mul_f64((seed % 1000) as f64 / 1000.0 * 0.9);
        let mut child = Command::new(bin())
            .args(args(&dst))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + at;
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(st) = child.try_wait().unwrap() {
                exited = Some(st);
                break;
            }
            std::thread::park_timeout(Duration::from_millis(2));
        }
        // Bytes the killed run had written (write/pwrite syscalls, metadata included), read
        // just before the SIGKILL.
        let mut written = 0u64;
        if exited.is_none() {
            written = fs::read_to_string(format!("/proc/{}/io", child.id()))
                .ok()
                .and_then(|io| {
                    io.lines().find_map(|l| {
                        l.strip_prefix("wchar: ")
                            .and_then(|v| v.trim().parse().ok())
                    })
                })
                .unwrap_or(0);
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        }
        // Whatever is visible at a final name is whole and right (a run killed before it
        // created the target folder left nothing at all).
        let visible = if dst.exists() {
            digest(&dst)
        } else {
            Default::default()
        };
        let mut visible_bytes = 0;
        for (k, v) in &visible {
            if v.0 && expected.get(k).is_none() {
                // A folder whose contents were not written yet: it must be on a path to
                // something of the source.
                let under = format!("{k}/");
                assert!(
                    expected.keys().any(|e| e.starts_with(&under)),
                    "round {round}: folder {k} is not in the source"
                );
                continue;
            }
            assert_eq!(
                expected.get(k),
                Some(v),
                "round {round}: {k} is visible but not whole"
            );
            visible_bytes += v.1;
        }
        let rep = t.path().join(format!("r{round}.json"));
        let mut a = args(&dst);
        a.extend(["--report".into(), s(&rep)]);
        let r = hbcp(a);
        assert_eq!(r.code, 0, "round {round}: {r:?}");
        assert_same_tree(&src, &dst);
        let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
        let copied = j["bytes_copied"].as_u64().unwrap() as i64;
        if written > 0 {
            // Written by the killed run + sent by the rerun − the tree = sent twice.
            let resent = written as i64 + copied - total as i64;
            worst_resent = worst_resent.max(resent);
            resent_total += resent.max(0);
        }
        let _ = visible_bytes;
    }
    eprintln!(
        "crash test: {kills} kills in {round} rounds; bytes sent again after a crash: worst {worst_resent}, \
         total {resent_total} (range {RANGE}, {WORKERS} workers)"
    );
    assert!(kills >= 20, "only {kills} kills landed mid-copy");
    // At most the ranges in flight plus what completed in the last group-commit interval (250 ms).
    let bound = (WORKERS * RANGE + RATE / 4 + RANGE) as i64;
    assert!(worst_resent <= bound, "resent {worst_resent} > {bound}");
}
