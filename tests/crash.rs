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
    const BOUND: i64 = (WORKERS * RANGE) as i64;
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
    // The faster of two runs: the first one also pays for a cold binary and page cache.
    let mut full = Duration::MAX;
    for p in 0..2 {
        let probe = t.path().join(format!("probe{p}"));
        let t0 = Instant::now();
        let r = hbcp(args(&probe));
        assert_eq!(r.code, 0, "{r:?}");
        full = full.min(t0.elapsed());
    }
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
        // Bytes the killed run had written (write/pwrite syscalls), read while it is stopped
        // (SIGSTOP, waited for), so that nothing is written between the count and the SIGKILL.
        let mut killed = None;
        if exited.is_none() {
            let pid = child.id() as i32;
            let mut status = 0;
            // SAFETY: a signal to, and a wait for, our own child process.
            let r = unsafe {
                libc::kill(pid, libc::SIGSTOP);
                libc::waitpid(pid, &mut status, libc::WUNTRACED)
            };
            if r == pid && libc::WIFSTOPPED(status) {
                let written: u64 = fs::read_to_string(format!("/proc/{pid}/io"))
                    .unwrap()
                    .lines()
                    .find_map(|l| l.strip_prefix("wchar: ").map(|v| v.trim().parse().unwrap()))
                    .unwrap();
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                // Less hbcp's own files (journal, manifest spill, completion manifest), which
                // are not copied data: what stays under .hbcp/ outside staging/.
                let own = dst.join(".hbcp");
                let own = if own.exists() {
                    digest(&own)
                } else {
                    Default::default()
                };
                let meta: u64 = own
                    .iter()
                    .filter(|(k, v)| !v.0 && !k.starts_with("staging/"))
                    .map(|(_, v)| v.1)
                    .sum();
                killed = Some((at, written - meta));
            }
            // Otherwise it had exited on its own (waitpid reaped it): a whole run, checked
            // like the others.
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
        if let Some((at, written)) = killed {
            // Data written by the killed run + sent by the rerun − the tree = sent twice.
            let resent = written as i64 + copied - total as i64;
            eprintln!(
                "crash test: round {round}: killed at {:.0} ms, {visible_bytes} bytes visible, \
                 {written} data bytes written, rerun sent {copied}: {resent} sent again",
                at.as_secs_f64() * 1000.0
            );
            // One range (or small file) in flight per worker, nothing more: a finished range
            // is journaled before its worker takes another task.
            assert!(
                resent <= BOUND,
                "round {round}: {resent} bytes sent again > {WORKERS} workers × {RANGE}"
            );
            worst_resent = worst_resent.max(resent);
            resent_total += resent.max(0);
        }
    }
    eprintln!(
        "crash test: {kills} kills in {round} rounds; bytes sent again after a crash: worst {worst_resent}, \
         total {resent_total}, bound {BOUND} ({WORKERS} workers × {RANGE} range)"
    );
    assert!(kills >= 20, "only {kills} kills landed mid-copy");
}
