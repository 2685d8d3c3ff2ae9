//! Verification ways (issue 19): `service` proves a whole file written to Azure by the
//! Content-MD5 the service computed over the stored blob, compared with the MD5 hbcp computed
//! from the source bytes in the copy's own read, without reading the blob back; `reread`
//! always reads back. Judged with an independent client: the Azure SDK for Python lists the
//! blobs' Content-MD5 (tests/azure_sdk.py) and rewrites a blob behind hbcp's back.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use md5::{Digest, Md5};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::azure_auth::{ACCOUNT, KEY, sdk, setup};
use crate::util::*;

/// Files ≤ this are written whole (one Put Blob); larger ones in blocks.
const RANGE: usize = 64 * 1024;

fn container(ep: &str, py: &str, tag: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let c = format!(
        "{tag}{}n{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    sdk(py, &["create", ep, ACCOUNT, KEY, &c]);
    c
}

fn copy(src: &Path, dst: &str, verify: &str, report: &Path) -> Run {
    hbcp([
        "copy",
        &s(src),
        dst,
        "--progress",
        "none",
        "--range-size",
        "64KiB",
        "--allow-http",
        "--verify",
        verify,
        "--report",
        &s(report),
    ])
}

fn verify(src: &Path, dst: &str, verify: &str, report: &Path) -> Run {
    hbcp([
        "verify",
        &s(src),
        dst,
        "--progress",
        "none",
        "--allow-http",
        "--verify",
        verify,
        "--report",
        &s(report),
    ])
}

fn ways(report: &Path) -> (u64, u64, String) {
    let r: serde_json::Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
    let w = &r["verified"]["ways"];
    (
        w["service"].as_u64().expect("verified.ways.service"),
        w["reread"].as_u64().expect("verified.ways.reread"),
        r["verified"]["mode"].as_str().unwrap().to_string(),
    )
}

/// The blobs' Content-MD5 under `prefix`, as the SDK lists them (hbcp's own folder left out).
fn listed_md5s(ep: &str, py: &str, c: &str, prefix: &str) -> BTreeMap<String, Option<String>> {
    let out = sdk(py, &["md5s", ep, ACCOUNT, KEY, c, prefix]);
    let m: BTreeMap<String, Option<String>> = serde_json::from_str(&out).unwrap();
    m.into_iter()
        .filter(|(k, _)| !k.starts_with(".hbcp/"))
        .collect()
}

fn hex_md5(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

#[test]
fn service_md5s_match_hbcps_on_empty_odd_one_part_and_many_part_files() {
    let Some((ep, py)) = setup() else { return };
    let c = container(&ep, &py, "ways");
    let mut runner = TestRunner::new(Config {
        cases: 3,
        failure_persistence: None,
        ..Config::default()
    });
    // Sizes across the whole-file limit: empty, odd, exactly one range, many ranges.
    let size = prop_oneof![
        Just(0usize),
        Just(1usize),
        Just(RANGE),
        Just(RANGE + 1),
        0usize..RANGE,
        RANGE..4 * RANGE + 3,
    ];
    let n = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&proptest::collection::vec(size, 1..7), |sizes| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let t = tempfile::tempdir().unwrap();
            let src = t.path().join("src");
            fs::create_dir_all(src.join("d")).unwrap();
            let mut want = BTreeMap::new();
            for (j, len) in sizes.iter().enumerate() {
                let data = bytes(*len, i * 100 + j as u32);
                let key = format!("d/f{j}");
                fs::write(src.join(&key), &data).unwrap();
                want.insert(key, (*len, hex_md5(&data)));
            }
            let prefix = format!("case{i}");
            let dst = format!("{ep}/{c}/{prefix}");
            let report = t.path().join("r.json");
            let r = copy(&src, &dst, "checksum", &report);
            prop_assert_eq!(r.code, 0, "{:?}", r);
            let listed = listed_md5s(&ep, &py, &c, &prefix);
            prop_assert_eq!(listed.len(), want.len(), "{:?}", listed);
            let mut whole = 0;
            for (key, (len, md5)) in &want {
                let got = &listed[key];
                if *len <= RANGE {
                    // Written whole: Azure computed the MD5 of what it stored, and it is the
                    // MD5 of the source bytes.
                    whole += 1;
                    prop_assert_eq!(got.as_deref(), Some(md5.as_str()), "{}", key);
                } else {
                    // Blocks: the service keeps no MD5 of the whole blob (no --put-md5).
                    prop_assert_eq!(got.as_deref(), None, "{}", key);
                }
            }
            // Every whole file was proven by the service's MD5 (hbcp's matched it), the
            // block blobs by their blocks' transactional CRC-64s and the commit's ETag
            // (tests/transport.rs): nothing read back.
            let (service, reread, mode) = ways(&report);
            prop_assert_eq!(mode, "checksum");
            prop_assert_eq!(service, whole);
            prop_assert_eq!(reread, 0);
            prop_assert!(
                r.stderr.contains(&format!("proven by service {whole}")) || whole == 0,
                "{:?}",
                r
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_byte_flipped_at_the_target_is_found_by_verify_under_every_way() {
    let Some((ep, py)) = setup() else { return };
    let c = container(&ep, &py, "flip");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let small = bytes(5000, 1);
    let big = bytes(3 * RANGE + 17, 2);
    fs::write(src.join("small"), &small).unwrap();
    fs::write(src.join("big"), &big).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    let dst = format!("{ep}/{c}/root");
    let report = t.path().join("copy.json");
    let r = copy(&src, &dst, "checksum", &report);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ways(&report).0, 2, "small and empty proven by the service");

    // Unchanged: `verify` proves the whole files by the service, the blocks by reading back.
    let rep = t.path().join("v.json");
    let v = verify(&src, &dst, "checksum", &rep);
    assert_eq!(v.code, 0, "{v:?}");
    assert_eq!(ways(&rep), (2, 1, "checksum".into()));
    let v = verify(&src, &dst, "reread", &rep);
    assert_eq!(v.code, 0, "{v:?}");
    assert_eq!(ways(&rep), (0, 3, "reread".into()));

    // One byte flipped in each file, written by another client behind hbcp's back.
    for (name, data) in [("small", &small), ("big", &big)] {
        let mut bad = data.clone();
        bad[data.len() / 2] ^= 0x40;
        let f = t.path().join(format!("{name}.bad"));
        fs::write(&f, &bad).unwrap();
        sdk(
            &py,
            &[
                "upload",
                &ep,
                ACCOUNT,
                KEY,
                &c,
                &format!("root/{name}"),
                &s(&f),
            ],
        );
    }
    for way in ["checksum", "reread"] {
        let v = verify(&src, &dst, way, &rep);
        assert_eq!(v.code, 1, "{way}: {v:?}");
        for name in ["small", "big"] {
            assert!(
                v.stdout.contains(&format!("differs: {name}")),
                "{way}: {v:?}"
            );
        }
        let r: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
        assert_eq!(r["verified"]["mismatches"].as_array().unwrap().len(), 2);
        // The empty file is still proven; by the service unless the way is reread.
        assert_eq!(
            ways(&rep),
            (
                u64::from(way == "checksum"),
                u64::from(way == "reread"),
                way.into()
            )
        );
    }
}
