//! The one retry policy and the status of a failure, on every cloud (issue #17 items 16 and 13):
//! Azurite, moto's S3 and fake-gcs-server, each behind the fault proxy of `faultproxy.rs`.
//!
//! - A throttle answer (503) injected N times is retried by the policy exactly as configured:
//!   N + 1 requests, N retries and N throttles in the report; a read answered 503 every time
//!   costs exactly the policy's 5 tries, not object_store's retries inside each of them.
//! - A storm of 503s reaches the adaptive concurrency: every throttle answer is counted by the
//!   copy, and the limit of requests in flight is lower at the end than at the start.
//! - A 403 or a 500 arriving after the first bytes moved gives the same status on every cloud,
//!   in `copy`, `sync`, `backup` and `verify`: 1, or 3 where the command resumes; never 2 (bad
//!   input), which is for what is found before anything is written.

use std::fs;
use std::sync::atomic::Ordering::Relaxed;

use crate::clouds::Cloud;
use crate::faultproxy::{self, Mode};
use crate::util::*;

fn report(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// `n` files of `size` bytes under `dir`, each different.
fn files(dir: &std::path::Path, n: u32, size: usize) {
    fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let data: Vec<u8> = (0..size).map(|j| (j as u32 ^ (i * 7919)) as u8).collect();
        fs::write(dir.join(format!("f{i:03}")), data).unwrap();
    }
}

/// `n` files of `size` bytes in a local folder, and a fresh place on `cloud` seeded with them
/// straight: (folder, source, place).
fn seeded<'a>(
    cloud: &'a Cloud,
    tag: &str,
    n: u32,
    size: usize,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    crate::clouds::Place<'a>,
) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    files(&src, n, size);
    let place = cloud.place(tag);
    place.seed(&src);
    (t, src, place)
}

#[test]
fn a_throttle_answer_is_retried_exactly_as_the_policy_says_on_every_cloud() {
    for cloud in Cloud::all() {
        let kind = cloud.kind;
        let (t, src, place) = seeded(&cloud, "throttle", 1, 10_000);

        // Three 503s, then the read passes: 4 reads, 3 retries, 3 throttles seen.
        let proxy = faultproxy::start(&cloud.upstream, Mode::BusyFirstReads(3));
        let rep = t.path().join("r.json");
        let back = t.path().join("back");
        let r = place.run(
            &proxy.url,
            &[
                "copy",
                "{}",
                &s(&back),
                "--workers",
                "1",
                "--verify",
                "size",
                "--report",
                &s(&rep),
            ],
        );
        assert_eq!(r.code, 0, "{kind:?}: {r:?}");
        assert_same_tree(&src, &back);
        let c = &proxy.counters;
        assert_eq!(c.busy_503.load(Relaxed), 3, "{kind:?}");
        assert_eq!(c.range_gets.load(Relaxed), 4, "{kind:?}: one read per try");
        let rep = report(&rep);
        assert_eq!(rep["retries"], 3, "{kind:?}: {rep}");
        assert_eq!(rep["concurrency"]["throttles"], 3, "{kind:?}: {rep}");
        drop(proxy);

        // A 503 every time: exactly the policy's 5 tries; the service is failing, not the
        // file: the copy stops there, resumable, naming what it was doing.
        let proxy = faultproxy::start(&cloud.upstream, Mode::BusyReads);
        let r = place.run(
            &proxy.url,
            &["copy", "{}", &s(&t.path().join("back2")), "--workers", "1"],
        );
        assert_eq!(r.code, 3, "{kind:?}: {r:?}");
        assert!(r.stderr.contains("resume with"), "{kind:?}: {r:?}");
        assert!(r.stderr.contains("f000"), "{kind:?}: {r:?}");
        assert!(r.stderr.contains("503"), "{kind:?}: {r:?}");
        let reads = proxy.counters.range_gets.load(Relaxed);
        assert_eq!(
            reads, 5,
            "{kind:?}: {reads} reads for one failing call: {r:?}"
        );
    }
}

#[test]
fn a_storm_of_503s_reaches_the_adaptive_concurrency_on_every_cloud() {
    for cloud in Cloud::all() {
        let kind = cloud.kind;
        let (t, src, place) = seeded(&cloud, "storm", 40, 20_000);
        // One ranged read in ten answered 503 (five in a row on one read, which stops the copy,
        // is 1 in 100,000).
        let proxy = faultproxy::start(
            &cloud.upstream,
            Mode::BusyReadsShare {
                per_mille: 100,
                seed: 0x5707,
            },
        );
        let rep = t.path().join("r.json");
        let back = t.path().join("back");
        let r = place.run(
            &proxy.url,
            &[
                "copy",
                "{}",
                &s(&back),
                "--workers",
                "16",
                "--verify",
                "size",
                "--report",
                &s(&rep),
            ],
        );
        assert_eq!(r.code, 0, "{kind:?}: {r:?}");
        assert_same_tree(&src, &back);
        let busy = proxy.counters.busy_503.load(Relaxed);
        let rep = report(&rep);
        assert!(busy > 0, "{kind:?}: no 503 was injected");
        // Every throttle answer reached the adaptive concurrency, none absorbed below it.
        assert_eq!(rep["concurrency"]["throttles"], busy, "{kind:?}: {rep}");
        assert_eq!(rep["retries"], busy, "{kind:?}: {rep}");
        // It started at half the workers (8) and was cut.
        let settled = rep["concurrency"]["settled"].as_u64().unwrap();
        assert!(settled < 8, "{kind:?}: settled at {settled}: {rep}");
    }
}

/// `hbcp COMMAND` between local files and a fresh place on `cloud`, through a proxy that
/// answers `status` to every request once two requests carrying file data were answered
/// (uploads for `copy`, `sync` and `backup`; reads back for `verify`, of a place seeded
/// straight). One worker, so that the failure lands in the middle of the files.
fn fails_after_the_first_bytes(cloud: &Cloud, command: &str, status: u16) -> Run {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    files(&src, 6, 50_000);
    let place = cloud.place(command);
    if command == "verify" {
        place.seed(&src);
    }
    let proxy = faultproxy::start(&cloud.upstream, Mode::FailAfter { status, after: 2 });
    let src_arg = s(&src);
    let mut args = vec![command, &src_arg, "{}", "--workers", "1"];
    if command == "verify" {
        args.extend(["--verify", "reread"]);
    }
    let r = place.run(&proxy.url, &args);
    let c = &proxy.counters;
    assert!(
        c.data_passed.load(Relaxed) >= 2 && c.failed_after.load(Relaxed) > 0,
        "{:?} {command} {status}: the failure came after the first bytes: {r:?}",
        cloud.kind
    );
    r
}

#[test]
fn a_403_or_a_500_after_the_first_bytes_is_one_status_per_command_on_every_cloud() {
    let clouds = Cloud::all();
    let mut wrong = Vec::new();
    for status in [403u16, 500] {
        // copy, sync and backup resume: run again, they go on (3); verify does not (1).
        for (command, want) in [("copy", 3), ("sync", 3), ("backup", 3), ("verify", 1)] {
            for cloud in &clouds {
                let r = fails_after_the_first_bytes(cloud, command, status);
                let what = format!("{:?} {command} after HTTP {status}", cloud.kind);
                let resumable = want != 3 || r.stderr.contains("resume with");
                if r.code != want || !resumable || r.stderr.contains("panicked") {
                    wrong.push(format!("{what}, expected exit {want}: {r:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
