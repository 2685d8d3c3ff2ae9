//! The `service` way from the target's listing (issue 19): after a copy, the files written
//! whole are proven by the MD5 the service computed over each stored object, taken from the
//! target's listing (Azure List Blobs' Content-MD5, S3 ListObjectsV2's ETag, the GCS JSON API
//! list's md5Hash), with no HEAD and
//! no read of any of them; only the file written in blocks is read back. Counted by the fault
//! proxy between hbcp and the emulator. The service's values are judged by an independent
//! client (the Azure SDK for Python, boto3), and a byte flipped at the target behind hbcp's
//! back is still found by `hbcp verify`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;

use md5::{Digest, Md5};

use crate::azure_auth::{ACCOUNT, KEY, sdk, setup};
use crate::faultproxy::{self, Mode};
use crate::util::*;

/// Files ≤ this are written whole; larger ones in parts.
const RANGE: usize = 64 * 1024;
/// Small files in the tree.
const SMALL: usize = 24;

pub(crate) fn bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
        .collect()
}

pub(crate) fn hex_md5(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `SMALL` whole files (odd sizes, one of exactly a range) and one of many
/// parts (`big` bytes); returns `(key, md5)` of the whole files.
fn tree(src: &Path, big: usize) -> Vec<(String, String)> {
    fs::create_dir_all(src.join("d/e")).unwrap();
    let mut whole = Vec::new();
    for i in 0..SMALL {
        let len = match i {
            // (No empty file: the fault proxy answers Azurite's empty-body PUT 400; empty
            // files are in tests/verify_ways.rs.)
            0 => RANGE,
            _ => (i * 2_731) % RANGE + 1,
        };
        let data = bytes(len, i as u32);
        let key = format!("d/{}f{i}", if i % 2 == 0 { "e/" } else { "" });
        fs::write(src.join(&key), &data).unwrap();
        whole.push((key, hex_md5(&data)));
    }
    fs::write(src.join("d/big"), bytes(big, 99)).unwrap();
    whole
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    to_run(
        Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap(),
    )
}

/// `hbcp CMD SRC DST` with ranges of `range` bytes (64 KiB; S3 takes parts of 5 MiB and up).
fn hbcp_env(
    cmd: &str,
    src: &Path,
    dst: &str,
    report: &Path,
    range: &str,
    env: &[(&str, &str)],
) -> Run {
    let mut args = vec![
        cmd,
        "--progress",
        "none",
        "--allow-http",
        "--verify",
        "checksum",
    ];
    if cmd == "copy" {
        args.extend(["--range-size", range]);
    }
    let (src, report) = (s(src), s(report));
    args.extend([src.as_str(), dst, "--report", report.as_str()]);
    run_env(&args, env)
}

/// `(service, reread + transport)` of the report's `verified.ways`: the big file is read
/// back, or on Azure proven by its blocks' CRC-64s and the commit (tests/transport.rs).
pub(crate) fn ways(report: &Path) -> (u64, u64) {
    let r: serde_json::Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
    let w = &r["verified"]["ways"];
    (
        w["service"].as_u64().unwrap(),
        w["reread"].as_u64().unwrap() + w["transport"].as_u64().unwrap(),
    )
}

/// The copy's verification made no request per whole file: no HEAD of any (the 3 to 5 HEADs
/// are hbcp's own state's and markers': on main each of the whole files had one more), and the only object
/// reads are the big file's ranges read back (the source is local, not counted).
fn assert_no_request_per_file(p: &faultproxy::Proxy, report: &Path) {
    let c = &p.counters;
    // The file written in blocks is proven another way: read back, or on Azure by
    // `transport` (its blocks' CRC-64s and its commit's ETag).
    let r: serde_json::Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
    let w = &r["verified"]["ways"];
    let other = w["reread"].as_u64().unwrap() + w["transport"].as_u64().unwrap_or(0);
    assert_eq!(
        (w["service"].as_u64().unwrap(), other),
        (SMALL as u64, 1),
        "whole files by the listing: {w}"
    );
    let heads = c.heads.load(Relaxed);
    assert!(
        heads < 6,
        "no HEAD of any of the {SMALL} whole files: {heads} HEADs"
    );
    let gets = c.range_gets.load(Relaxed);
    assert!(
        gets <= 6,
        "only the big file's ranges are read back, not the {SMALL} whole files: {gets} GETs"
    );
}

#[test]
fn azure_whole_files_are_proven_by_the_listings_md5_with_no_request_per_file() {
    let Some((ep, py)) = setup() else { return };
    let base = ep.trim_end_matches(&format!("/{ACCOUNT}")).to_string();
    let c = format!("listed{}", std::process::id());
    sdk(&py, &["create", &ep, ACCOUNT, KEY, &c]);
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let whole = tree(&src, 5 * RANGE + 3);
    let proxy = faultproxy::start(&base, Mode::Pass);
    let dst = format!("{}/{ACCOUNT}/{c}/root", proxy.url);
    let rep = t.path().join("copy.json");
    let r = hbcp_env("copy", &src, &dst, &rep, "64KiB", &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_no_request_per_file(&proxy, &rep);
    assert!(proxy.counters.lists.load(Relaxed) >= 1);

    // The SDK lists the same Content-MD5s: the MD5s of the source bytes.
    let out = sdk(&py, &["md5s", &ep, ACCOUNT, KEY, &c, "root"]);
    let listed: std::collections::BTreeMap<String, Option<String>> =
        serde_json::from_str(&out).unwrap();
    for (k, md5) in &whole {
        assert_eq!(listed[k].as_deref(), Some(md5.as_str()), "{k}");
    }

    // A byte flipped in a whole file behind hbcp's back: `verify` finds it.
    let mut bad = bytes((5 * 2_731) % RANGE + 1, 5);
    bad[7] ^= 1;
    let f = t.path().join("bad");
    fs::write(&f, &bad).unwrap();
    sdk(&py, &["upload", &ep, ACCOUNT, KEY, &c, "root/d/f5", &s(&f)]);
    let v = hbcp_env(
        "verify",
        &src,
        &format!("{ep}/{c}/root"),
        &rep,
        "64KiB",
        &[],
    );
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stdout.contains("differs: d/f5"), "{v:?}");
}

/// `{key: etag}` of the objects under `prefix`, as boto3 lists them.
fn s3_etags(py: &str, ep: &str, prefix: &str) -> std::collections::BTreeMap<String, String> {
    let code = r#"
import boto3, json, sys
ep, prefix = sys.argv[1:3]
s3 = boto3.client('s3', endpoint_url=ep, aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')
out = {}
for page in s3.get_paginator('list_objects_v2').paginate(Bucket='hbcp-test', Prefix=prefix + '/'):
    for o in page.get('Contents', []):
        out[o['Key'][len(prefix) + 1:]] = o['ETag'].strip('"')
print(json.dumps(out))
"#;
    let o = Command::new(py)
        .args(["-c", code, ep, prefix])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn s3_put(py: &str, ep: &str, key: &str, file: &Path) {
    let code = r#"
import boto3, sys
ep, key, path = sys.argv[1:4]
s3 = boto3.client('s3', endpoint_url=ep, aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')
s3.put_object(Bucket='hbcp-test', Key=key, Body=open(path, 'rb').read())
"#;
    let o = Command::new(py)
        .args(["-c", code, ep, key, &s(file)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn s3_single_part_objects_are_proven_by_the_listings_etag_with_no_request_per_file() {
    let Some(ep) = emulator("HBCP_TEST_S3", "moto") else {
        return;
    };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "boto3 (scripts/moto.sh)") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let whole = tree(&src, (10 << 20) + 3);
    let prefix = format!("listed{}", std::process::id());
    let dst = format!("s3://hbcp-test/{prefix}");
    let proxy = faultproxy::start(&ep, Mode::Pass);
    let env = [("AWS_ENDPOINT_URL", proxy.url.as_str())];
    let rep = t.path().join("copy.json");
    let r = hbcp_env("copy", &src, &dst, &rep, "5MiB", &env);
    assert_eq!(r.code, 0, "{r:?}");
    assert_no_request_per_file(&proxy, &rep);

    // boto3 lists the same ETags: the MD5s of the source bytes; the big file's is a
    // multipart ETag (`-N`), which proves nothing, so it was read back.
    let etags = s3_etags(&py, &ep, &prefix);
    for (k, md5) in &whole {
        assert_eq!(etags[k], *md5, "{k}");
    }
    assert!(etags["d/big"].contains('-'), "{etags:?}");

    // A byte flipped behind hbcp's back: `verify` finds it.
    let mut bad = bytes((3 * 2_731) % RANGE + 1, 3);
    bad[0] ^= 0x80;
    let f = t.path().join("bad");
    fs::write(&f, &bad).unwrap();
    s3_put(&py, &ep, &format!("{prefix}/d/f3"), &f);
    let v = hbcp_env(
        "verify",
        &src,
        &dst,
        &rep,
        "5MiB",
        &[("AWS_ENDPOINT_URL", &ep)],
    );
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stdout.contains("differs: d/f3"), "{v:?}");
}

#[test]
fn gcs_whole_files_are_proven_by_the_listings_md5hash_with_no_request_per_file() {
    let Some(base) = crate::cloud::gcs() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let whole = tree(&src, 5 * RANGE + 3);
    let prefix = format!("listed{}", std::process::id());
    let dst = format!("gs://hbcp-test/{prefix}");
    let proxy = faultproxy::start(&base, Mode::Pass);
    let key = crate::clouds::gcs_key(&proxy.url);
    let env = [("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str())];
    let rep = t.path().join("copy.json");
    let r = hbcp_env("copy", &src, &dst, &rep, "64KiB", &env);
    assert_eq!(r.code, 0, "{r:?}");
    // The big file is composed from its parts: GCS keeps no md5Hash of it, so it is read back.
    assert_eq!(ways(&rep), (SMALL as u64, 1), "whole files by the listing");
    // No metadata GET per whole file (on main: one each); the few left are hbcp's own state's.
    // (The copy itself still HEADs each file it put, for the version token the journal keeps:
    // the JSON API's upload answer is not read for it.)
    let c = &proxy.counters;
    let gets = c.gcs_object_gets.load(Relaxed);
    assert!(
        gets < 6,
        "no metadata GET of any of the {SMALL} whole files: {gets}"
    );
    let reads = c.range_gets.load(Relaxed);
    assert!(reads <= 6, "only the big file is read back: {reads} GETs");

    // A byte flipped in a whole file, rewritten through the JSON API: `verify` finds it.
    let (k, _) = &whole[5];
    let mut bad = bytes((5 * 2_731) % RANGE + 1, 5);
    bad[7] ^= 1;
    hbcp_testkit::gcs_emulator::upload(&base, "hbcp-test", &format!("{prefix}/{k}"), &bad).unwrap();
    let key = crate::clouds::gcs_key(&base);
    let v = hbcp_env(
        "verify",
        &src,
        &dst,
        &rep,
        "64KiB",
        &[("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str())],
    );
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stdout.contains(&format!("differs: {k}")), "{v:?}");
}
