//! `--put-md5` in one read of the source (issue 19): the whole file's MD5, which Azure keeps
//! as the blob's Content-MD5 (Put Block List's `x-ms-blob-content-md5`), is hashed from the
//! bytes each range sends, so every source byte is read once — counted by the fault proxy in
//! front of an Azurite source — and every file copied, the staged ones included, is then proven
//! by the target's listing (`service`), with nothing read back. A copy cut off mid-file and run
//! again does not send its journaled ranges again but hashes them from the source, and still
//! stores the right MD5. The stored values are judged by the Azure SDK for Python.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use crate::azure_auth::{ACCOUNT, KEY, sdk, setup};
use crate::faultproxy::{self, Mode};
use crate::util::*;
use crate::verify_listed::{bytes, hex_md5, ways};

/// The range size of these copies.
const RANGE: usize = 64 * 1024;

/// Files of one range or less, of two ranges, and of many ranges with an odd tail; written
/// under `src`, returned as `(key, bytes)`.
fn tree(src: &Path) -> Vec<(String, Vec<u8>)> {
    let files = [
        ("a/small", bytes(10_000, 1)),
        ("a/one", bytes(RANGE, 2)),
        ("a/two", bytes(RANGE + 1, 3)),
        ("big", bytes(16 * RANGE + 3, 4)),
    ];
    for (k, d) in &files {
        let p = src.join(k);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, d).unwrap();
    }
    files
        .iter()
        .map(|(k, d)| (k.to_string(), d.clone()))
        .collect()
}

/// The SDK's Content-MD5 of every blob under `c/root` equals the MD5 of the source file.
fn assert_stored_md5s(py: &str, ep: &str, c: &str, files: &[(String, Vec<u8>)]) {
    let out = sdk(py, &["md5s", ep, ACCOUNT, KEY, c, "root"]);
    let listed: BTreeMap<String, Option<String>> = serde_json::from_str(&out).unwrap();
    for (k, d) in files {
        assert_eq!(
            listed.get(k).cloned().flatten().as_deref(),
            Some(hex_md5(d).as_str()),
            "Content-MD5 of {k} ({} bytes): {listed:?}",
            d.len()
        );
    }
}

fn copy(src: &str, dst: &str, report: &Path, extra: &[&str]) -> Run {
    let rep = s(report);
    let mut args = vec![
        "copy",
        src,
        dst,
        "--progress",
        "none",
        "--allow-http",
        "--put-md5",
        "--s2s",
        "never",
        "--range-size",
        "64KiB",
        "--report",
        &rep,
    ];
    args.extend(extra);
    hbcp(args)
}

#[test]
fn put_md5_copy_reads_each_source_byte_once_and_the_listing_proves_every_file() {
    let Some((ep, py)) = setup() else { return };
    let base = ep.trim_end_matches(&format!("/{ACCOUNT}")).to_string();
    let (from, to) = (
        format!("md5src{}", std::process::id()),
        format!("md5dst{}", std::process::id()),
    );
    sdk(&py, &["create", &ep, ACCOUNT, KEY, &from]);
    sdk(&py, &["create", &ep, ACCOUNT, KEY, &to]);
    let t = tempfile::tempdir().unwrap();
    let files = tree(&t.path().join("src"));
    for (k, _) in &files {
        let p = s(&t.path().join("src").join(k));
        sdk(
            &py,
            &["upload", &ep, ACCOUNT, KEY, &from, &format!("root/{k}"), &p],
        );
    }
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    // The source is read through the proxy; the target is written straight.
    let proxy = faultproxy::start(&base, Mode::Pass);
    let src = format!("{}/{ACCOUNT}/{from}/root", proxy.url);
    let dst = format!("{ep}/{to}/root");
    let rep = t.path().join("copy.json");
    let r = copy(&src, &dst, &rep, &["--verify", "checksum"]);
    assert_eq!(r.code, 0, "{r:?}");

    // Each source byte was read once: what the source sent is the files' bytes and its
    // listings (a few KiB), not the big file a second time for its MD5.
    let sent = proxy.counters.get_body_bytes.load(Relaxed);
    assert!(
        sent >= total && sent < total + RANGE as u64,
        "the source sent {sent} bytes for {total} bytes of files"
    );
    // The MD5s are the service's own over what it stored, as another client lists them.
    assert_stored_md5s(&py, &ep, &to, &files);
    // And every file, staged or not, was proven by them with nothing read back.
    assert_eq!(ways(&rep), (files.len() as u64, 0), "{r:?}");
}

/// Indexes of the range records (`r`) of `key` in the journal at `journal`.
fn journaled_ranges(journal: &Path, key: &str) -> Vec<u64> {
    let text = fs::read_to_string(journal).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|v| v["t"] == "r" && v["k"] == key)
        .filter_map(|v| v["i"].as_u64())
        .collect()
}

#[test]
fn put_md5_copy_killed_mid_file_then_rerun_hashes_the_journaled_ranges_and_stores_the_md5() {
    let Some((ep, py)) = setup() else { return };
    let base = ep.trim_end_matches(&format!("/{ACCOUNT}")).to_string();
    let to = format!("md5resume{}", std::process::id());
    sdk(&py, &["create", &ep, ACCOUNT, KEY, &to]);
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let files = tree(&src);
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let state = t.path().join("state");
    let journal = state.join("journal.log");
    let proxy = faultproxy::start(&base, Mode::Pass);
    let dst = format!("{}/{ACCOUNT}/{to}/root", proxy.url);
    let (src_s, state_s) = (s(&src), s(&state));
    let args = |rep: &Path, slow: bool| -> Vec<String> {
        let mut a: Vec<String> = [
            "copy",
            &src_s,
            &dst,
            "--progress",
            "none",
            "--allow-http",
            "--put-md5",
            "--s2s",
            "never",
            "--range-size",
            "64KiB",
            "--workers",
            "1",
            "--state",
            &state_s,
            "--report",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.push(s(rep));
        if slow {
            a.extend(["--max-bandwidth".to_string(), "256KiB/s".to_string()]);
        }
        a
    };

    // The big file goes first; the run is killed once three of its ranges are journaled.
    let mut child = std::process::Command::new(bin())
        .args(args(&t.path().join("killed.json"), true))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while journaled_ranges(&journal, "big").len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "three ranges were never journaled"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let journaled = journaled_ranges(&journal, "big");
    assert!(
        journaled.len() >= 3 && journaled.len() < 17,
        "{journaled:?}"
    );

    // The rerun does not send the journaled ranges again, and stores the whole file's MD5.
    let before = proxy.counters.put_data_bytes.load(Relaxed);
    let rep = t.path().join("r.json");
    let r = hbcp(args(&rep, false));
    assert_eq!(r.code, 0, "{r:?}");
    let sent = proxy.counters.put_data_bytes.load(Relaxed) - before;
    let kept = journaled.len() as u64 * RANGE as u64;
    // (Less the block lists' XML bodies, which are counted as uploads too: a few KiB.)
    assert!(
        sent < total - kept + 16 * 1024,
        "the rerun sent {sent} bytes of {total}: the {kept} journaled were sent again"
    );
    assert_stored_md5s(&py, &ep, &to, &files);
}
