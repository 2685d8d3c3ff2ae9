//! Server-side copies (`--s2s`, issue 19): between two stores of the same kind the target's
//! service copies each file from the source, and no byte of file content passes through hbcp.
//! Counted by the fault proxy (tests/faultproxy.rs) between hbcp and the emulator; judged by an
//! independent client (boto3, the Azure SDK for Python) against the local tree the source was
//! made from. What the emulators serve: moto CopyObject, fake-gcs-server rewriteTo (across
//! buckets), Azurite 3.35 Copy Blob From URL (across accounts; Put Block From URL answers 501).
//! A file of more than one range is copied by ranges (moto: UploadPartCopy), each journaled, so
//! a kill -9 in the middle is resumed without copying a journaled range again.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};

use crate::azure_auth::sdk;
use crate::cloud::{azurite, gcs};
use crate::faultproxy::{self, Mode};
use crate::util::*;

static N: AtomicU64 = AtomicU64::new(0);

pub(crate) const KEY1: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub(crate) const ACCT2_KEY: &str = "aGJjcC1zZWNvbmQtYWNjb3VudC1rZXktZm9yLXRlc3RzLW9ubHkh";

/// A small HBase-like tree with one file larger than the range size (5 MiB on S3), so that a
/// file cut into ranges when streamed is also copied by one service request.
fn tree(dir: &Path) -> u64 {
    use hbcp_testkit::hbase_tree::{Spec, generate, table};
    let spec = Spec {
        tables: vec![table("default", "t1", 2, &["cf"], 2)],
        hfile_sizes: Spec::boundary_sizes(64 * 1024),
        extras: false,
    };
    generate(dir, &spec, 5).unwrap();
    let fam = dir.join("data/default/big/0123456789abcdef0123456789abcdef/cf");
    std::fs::create_dir_all(&fam).unwrap();
    let large: Vec<u8> = (0..(6 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(fam.join(format!("{:032x}", 1)), &large).unwrap();
    walk_bytes(dir)
}

/// A source on Azurite's first account: container `ca` made by the Azure SDK, `src` copied to
/// its `hbase` folder by hbcp (with `extra`), and a read and list SAS of the container.
pub(crate) fn azurite_source(py: &str, base: &str, ca: &str, src: &Path, extra: &[&str]) -> String {
    let ep1 = format!("{base}/devstoreaccount1");
    sdk(py, &["create", &ep1, "devstoreaccount1", KEY1, ca]);
    let r = copy(src, Path::new(&format!("{ep1}/{ca}/hbase")), extra);
    assert_eq!(r.code, 0, "{r:?}");
    sdk(
        py,
        &[
            "sas-container",
            &ep1,
            "devstoreaccount1",
            KEY1,
            ca,
            "rl",
            "3600",
        ],
    )
}

fn walk_bytes(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk_bytes(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

pub(crate) fn tag() -> String {
    format!("s2s{}n{}", std::process::id(), N.fetch_add(1, SeqCst))
}

pub(crate) fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    to_run(
        Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap(),
    )
}

pub(crate) fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The S3 folder of `tag` (`hbase` in it), as the tests here name S3 folders.
fn url(tag: &str) -> String {
    format!("s3://hbcp-test/{tag}/hbase")
}

/// The local [`tree`] copied by hbcp to a fresh S3 folder in ranges of 5 MiB: (temporary
/// folder, the tree, its bytes, the S3 folder's tag).
fn s3_source() -> (tempfile::TempDir, std::path::PathBuf, u64, String) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let total = tree(&src);
    let a = tag();
    let r = copy(
        &src,
        Path::new(&url(&a)),
        &["--range-size", "5MiB", "--no-wals-expected"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    (t, src, total, a)
}

/// `hbcp copy FROM TO` between two S3 folders with `env`, ranges of 5 MiB, and `extra`.
fn s3_copy(env: &[(&str, &str)], from: &str, to: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "copy",
        "--no-wals-expected",
        from,
        to,
        "--progress",
        "none",
        "--range-size",
        "5MiB",
    ];
    args.extend_from_slice(extra);
    run_env(&args, env)
}

/// The standard output of the Python `body` run with boto3's client `s3` for the S3 service at
/// `endpoint`, and `bucket` and `prefix` set.
fn boto3(py: &str, endpoint: &str, bucket: &str, prefix: &str, body: &str) -> String {
    let code = format!(
        "import boto3, hashlib, json, sys\n\
         ep, bucket, prefix = sys.argv[1:4]\n\
         s3 = boto3.client('s3', endpoint_url=ep, aws_access_key_id='testing', \
         aws_secret_access_key='testing', region_name='us-east-1')\n{body}"
    );
    let o = Command::new(py)
        .args(["-c", &code, endpoint, bucket, prefix])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// `{key: [size, sha256]}` of the objects under `prefix` of an S3 bucket, read by boto3.
pub(crate) fn s3_digest(py: &str, endpoint: &str, bucket: &str, prefix: &str) -> String {
    let body = r#"
out = {}
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix + '/'):
    for o in page.get('Contents', []):
        k = o['Key'][len(prefix) + 1:]
        if k.startswith('.hbcp/') or k.endswith('.hbcp-empty-dir'):
            continue
        d = s3.get_object(Bucket=bucket, Key=o['Key'])['Body'].read()
        out[k] = [len(d), hashlib.sha256(d).hexdigest()]
print(json.dumps(out, sort_keys=True))
"#;
    boto3(py, endpoint, bucket, prefix, body).trim().to_string()
}

/// The local tree as tests/azure_sdk.py digests it (empty folders left out).
/// `what` is on standard error exactly once (a fallback is named once, not per file).
fn said_once(r: &Run, what: &str) {
    assert_eq!(r.stderr.matches(what).count(), 1, "{}", r.stderr);
}

pub(crate) fn local_digest(py: &str, dir: &Path) -> String {
    sdk(py, &["local", &s(dir)])
}

#[test]
fn s3_to_s3_is_copied_by_the_service_and_never_streams_only_on_request() {
    let Some(ep) = emulator("HBCP_TEST_S3", "moto") else {
        return;
    };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "the Python of .tools/venv (boto3)") else {
        return;
    };
    let (t, src, total, a) = s3_source();
    let (b, c) = (tag(), tag());

    // Source and target both through the proxy: every byte hbcp reads or writes is counted.
    let proxy = faultproxy::start(&ep, Mode::Pass);
    let env = [("AWS_ENDPOINT_URL", proxy.url.as_str())];
    let rep = t.path().join("r.json");
    let r = s3_copy(
        &env,
        &url(&a),
        &url(&b),
        &["--verify", "size", "--report", &s(&rep)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let c0 = &proxy.counters;
    assert_eq!(c0.put_data_bytes.load(Relaxed), 0, "no content uploaded");
    // At most the preflight's read of the root's small marker files.
    assert!(c0.range_gets.load(Relaxed) <= 2, "no content read");
    assert!(
        c0.get_body_bytes.load(Relaxed) < total / 4,
        "only listings came back: {} of {total}",
        c0.get_body_bytes.load(Relaxed)
    );
    assert!(c0.copies.load(Relaxed) > 0);
    let j = report(&rep);
    assert_eq!(j["bytes_server_side"], total, "{j}");
    assert_eq!(j["bytes_through_client"], 0, "{j}");
    assert!(r.stderr.contains("copied server-side"), "{}", r.stderr);

    // Byte-exact, by boto3.
    let want = local_digest(&py, &src);
    let prefix = format!("{b}/hbase");
    assert_eq!(s3_digest(&py, &ep, "hbcp-test", &prefix), want);

    // The same command again: every file is journaled as copied by the service, with the
    // version the copy's answer gave, and the target still has it: nothing is copied again.
    let copies = c0.copies.load(Relaxed);
    let again = |rep: &Path| {
        s3_copy(
            &env,
            &url(&a),
            &url(&b),
            &["--verify", "size", "--report", &s(rep)],
        )
    };
    let r = again(&t.path().join("again.json"));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c0.copies.load(Relaxed), copies, "{r:?}");
    assert_eq!(report(&t.path().join("again.json"))["bytes_server_side"], 0);

    // The default verification does not take the copy's word: `verify` against the local tree
    // reads the whole target; the copy's own proves each file by the two services' MD5s
    // (single-part objects) or reads it on both sides (the large file, copied by parts, whose
    // ETag is no MD5).
    let before = c0.get_body_bytes.load(Relaxed);
    let v = run_env(&["verify", &s(&src), &url(&b), "--progress", "none"], &env);
    assert_eq!(v.code, 0, "{v:?}");
    let rep_c = t.path().join("c.json");
    let r = s3_copy(&env, &url(&a), &url(&c), &["--report", &s(&rep_c)]);
    assert_eq!(r.code, 0, "{r:?}");
    let read = c0.get_body_bytes.load(Relaxed) - before;
    let large = (6 << 20) + 7;
    assert!(
        read >= total + 2 * large,
        "verify + the copy's verification read {read} of {total}: {v:?} {r:?}"
    );
    let j = report(&rep_c);
    let ways = &j["verified"]["ways"];
    assert!(ways["reread"].as_u64().unwrap() >= 1, "{j}");
    assert_eq!(
        ways["reread"].as_u64().unwrap() + ways["service"].as_u64().unwrap(),
        j["verified"]["files"].as_u64().unwrap(),
        "{j}"
    );

    // --s2s never: every byte through hbcp.
    let d = tag();
    let put0 = c0.put_data_bytes.load(Relaxed);
    let copies0 = c0.copies.load(Relaxed);
    let rep = t.path().join("n.json");
    let r = s3_copy(
        &env,
        &url(&a),
        &url(&d),
        &["--s2s", "never", "--report", &s(&rep)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(c0.put_data_bytes.load(Relaxed) - put0 >= total);
    assert_eq!(c0.copies.load(Relaxed), copies0);
    let j = report(&rep);
    assert_eq!(j["bytes_server_side"], 0, "{j}");
    assert_eq!(j["bytes_through_client"], total, "{j}");
    assert_eq!(
        s3_digest(&py, &ep, "hbcp-test", &format!("{d}/hbase")),
        want
    );
}

#[test]
fn a_service_that_answers_copies_501_is_streamed_and_named_once() {
    let Some(ep) = emulator("HBCP_TEST_S3", "moto") else {
        return;
    };
    let (t, src, total, a) = s3_source();
    let b = tag();
    let proxy = faultproxy::start(&ep, Mode::NoCopies);
    let env = [("AWS_ENDPOINT_URL", proxy.url.as_str())];
    let rep = t.path().join("r.json");
    let r = s3_copy(&env, &url(&a), &url(&b), &["--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(proxy.counters.copies.load(Relaxed) > 0);
    assert!(proxy.counters.put_data_bytes.load(Relaxed) >= total);
    said_once(&r, "no server-side copy");
    // The large file was tried by ranges first (UploadPartCopy), refused, and said once.
    said_once(&r, "refuses server-side copies by range");
    let j = report(&rep);
    assert_eq!(j["bytes_server_side"], 0, "{j}");
    let v = run_env(&["verify", &s(&src), &url(&b), "--progress", "none"], &[]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn gcs_to_gcs_is_rewritten_by_the_service() {
    let Some(base) = gcs() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let total = tree(&src);
    let a = format!("{}/hbase", tag());
    hbcp_testkit::gcs_emulator::upload_tree(&base, "hbcp-test", &a, &src).unwrap();
    let proxy = faultproxy::start(&base, Mode::Pass);
    let key = crate::clouds::gcs_key(&proxy.url);
    let env = [("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str())];
    let b = format!("gs://hbcp-test/{}/hbase", tag());
    let rep = t.path().join("r.json");
    let r = run_env(
        &[
            "copy",
            "--no-wals-expected",
            &format!("gs://hbcp-test/{a}"),
            &b,
            "--progress",
            "none",
            "--verify",
            "size",
            "--report",
            &s(&rep),
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(proxy.counters.put_data_bytes.load(Relaxed), 0);
    assert!(proxy.counters.range_gets.load(Relaxed) <= 2);
    assert!(proxy.counters.get_body_bytes.load(Relaxed) < total / 4);
    assert!(proxy.counters.copies.load(Relaxed) > 0);
    assert_eq!(report(&rep)["bytes_server_side"], total);
    let v = hbcp(["verify", &s(&src), &b, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn azurite_to_another_account_is_copied_from_the_sources_sas_and_streamed_without_one() {
    let Some(base) = azurite() else { return };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "the Azure SDK for Python") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let total = tree(&src);
    let ep1 = format!("{base}/devstoreaccount1");
    let ep2 = format!("{base}/hbcpacct2");
    let (ca, cb, cc) = (tag(), tag(), tag());
    let sas = azurite_source(&py, &base, &ca, &src, &["--no-wals-expected"]);
    let proxy = faultproxy::start(&base, Mode::Pass);
    let env = [("HBCP_AZURE_KEY_HBCPACCT2", ACCT2_KEY)];
    let target = |c: &str| format!("{}/hbcpacct2/{c}/hbase", proxy.url);
    let rep = t.path().join("r.json");
    let r = run_env(
        &[
            "copy",
            "--no-wals-expected",
            &format!("{ep1}/{ca}/hbase?{sas}"),
            &target(&cb),
            "--progress",
            "none",
            "--verify",
            "size",
            // The large file is more than one range: Put Block From URL is tried first.
            "--range-size",
            "4MiB",
            "--report",
            &s(&rep),
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let sig = sas.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap();
    assert!(!r.stderr.contains(sig) && !r.stdout.contains(sig), "{r:?}");
    // Azurite 3.35 answers Put Block From URL 501: said once, and the file is copied whole by
    // Copy Blob From URL instead, still without a byte through hbcp.
    said_once(&r, "refuses server-side copies by range");
    assert!(!r.stderr.contains("no server-side copy"), "{}", r.stderr);
    assert_eq!(proxy.counters.put_data_bytes.load(Relaxed), 0);
    assert!(proxy.counters.copies.load(Relaxed) > 0);
    assert_eq!(report(&rep)["bytes_server_side"], total);
    let want = local_digest(&py, &src);
    assert_eq!(
        sdk(&py, &["digest", &ep2, "hbcpacct2", ACCT2_KEY, &cb, "hbase"]),
        want
    );

    // A source read with its account key has no credential to hand over: streamed, said once.
    let put0 = proxy.counters.put_data_bytes.load(Relaxed);
    let r = run_env(
        &[
            "copy",
            "--no-wals-expected",
            &format!("{ep1}/{ca}/hbase"),
            &target(&cc),
            "--progress",
            "none",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    said_once(&r, "no server-side copy");
    assert!(r.stderr.contains("SAS"), "{}", r.stderr);
    assert!(proxy.counters.put_data_bytes.load(Relaxed) - put0 >= total);
    assert_eq!(
        sdk(&py, &["digest", &ep2, "hbcpacct2", ACCT2_KEY, &cc, "hbase"]),
        want
    );
}

/// The indices of the ranges a journal says were copied by the service (`cr` records).
fn copied_ranges(journal: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|v| v["t"] == "cr")
        .filter_map(|v| v["i"].as_u64())
        .collect()
}

#[test]
fn a_kill_during_a_server_side_copy_by_ranges_resumes_without_copying_a_journaled_range_again() {
    let Some(ep) = emulator("HBCP_TEST_S3", "moto") else {
        return;
    };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "the Python of .tools/venv (boto3)") else {
        return;
    };
    const RANGE: u64 = 5 << 20;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    // Six ranges of 5 MiB, the last one odd-sized.
    let size = 5 * RANGE + (1 << 20) + 5;
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("d/big"), &data).unwrap();
    let (a, b) = (tag(), tag());
    let url = |p: &str| format!("s3://hbcp-test/{p}/root");
    assert_eq!(
        copy(&src, Path::new(&url(&a)), &["--range-size", "5MiB"]).code,
        0
    );

    let state = t.path().join("state");
    let journal = state.join("journal.log");
    let args = |rep: &Path| -> Vec<String> {
        [
            "copy",
            &url(&a),
            &url(&b),
            "--progress",
            "none",
            "--range-size",
            "5MiB",
            "--state",
            &s(&state),
            "--report",
            &s(rep),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    // Three range copies go through; the next ones hang in the proxy, and the run is killed
    // once the three are journaled.
    let held = faultproxy::start(&ep, Mode::HoldCopiesAfter(3));
    let mut child = Command::new(bin())
        .args(args(&t.path().join("killed.json")))
        .env("AWS_ENDPOINT_URL", &held.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while copied_ranges(&journal).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "three range copies were never journaled"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(held.counters.copies.load(Relaxed) > 3, "a copy was held");
    assert_eq!(held.counters.put_data_bytes.load(Relaxed), 0);
    drop(held);
    let journaled = copied_ranges(&journal);
    assert_eq!(journaled.len(), 3, "{journaled:?}");

    // The rerun copies exactly the ranges not journaled, by the service again.
    let proxy = faultproxy::start(&ep, Mode::Pass);
    let rep = t.path().join("r.json");
    let r = run_env(
        &args(&rep).iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        &[("AWS_ENDPOINT_URL", proxy.url.as_str())],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(proxy.counters.copies.load(Relaxed), 3, "{r:?}");
    assert_eq!(proxy.counters.put_data_bytes.load(Relaxed), 0);
    let left: u64 = (0..6u64)
        .filter(|i| !journaled.contains(i))
        .map(|i| RANGE.min(size - i * RANGE))
        .sum();
    let j = report(&rep);
    assert_eq!(j["bytes_server_side"], left, "{j}");
    assert_eq!(j["bytes_through_client"], 0, "{j}");

    // Byte-exact, by boto3; and hbcp's own verify against the local tree agrees.
    assert_eq!(
        s3_digest(&py, &ep, "hbcp-test", &format!("{b}/root")),
        local_digest(&py, &src)
    );
    let v = hbcp(["verify", &s(&src), &url(&b), "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");

    // A third run finds the whole file journaled as copied: no copy at all.
    let again = faultproxy::start(&ep, Mode::Pass);
    let r = run_env(
        &args(&t.path().join("r3.json"))
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>(),
        &[("AWS_ENDPOINT_URL", again.url.as_str())],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(again.counters.copies.load(Relaxed), 0, "{r:?}");
}

/// The bar's Azure line (issue 19): an Azurite → Azurite copy of the bundled sample root sends
/// fewer bytes through hbcp than the root holds, the rest copied by Azurite itself (Copy Blob
/// From URL across accounts), and the target is the source byte for byte, by the Azure SDK.
#[test]
fn azurite_to_azurite_copy_of_the_bundled_sample_moves_less_than_the_root_through_hbcp() {
    let Some(base) = azurite() else { return };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "the Azure SDK for Python") else {
        return;
    };
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample");
    let total = walk_bytes(&sample);
    let t = tempfile::tempdir().unwrap();
    let ep1 = format!("{base}/devstoreaccount1");
    let ep2 = format!("{base}/hbcpacct2");
    let (ca, cb) = (tag(), tag());
    let sas = azurite_source(&py, &base, &ca, &sample, &[]);
    let proxy = faultproxy::start(&base, Mode::Pass);
    let rep = t.path().join("r.json");
    let r = run_env(
        &[
            "copy",
            &format!("{ep1}/{ca}/hbase?{sas}"),
            &format!("{}/hbcpacct2/{cb}/hbase", proxy.url),
            "--progress",
            "none",
            "--report",
            &s(&rep),
        ],
        &[("HBCP_AZURE_KEY_HBCPACCT2", ACCT2_KEY)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let j = report(&rep);
    let through = j["bytes_through_client"].as_u64().unwrap();
    let server = j["bytes_server_side"].as_u64().unwrap();
    assert!(through < total, "{through} of {total} through hbcp: {j}");
    assert!(server > 0, "{j}");
    // The proxy in front of the target saw no more content uploaded than the report says.
    assert!(proxy.counters.put_data_bytes.load(Relaxed) <= through);
    assert!(proxy.counters.copies.load(Relaxed) > 0);
    let source = sdk(
        &py,
        &["digest", &ep1, "devstoreaccount1", KEY1, &ca, "hbase"],
    );
    assert!(source.len() > 2, "{source}");
    assert_eq!(
        sdk(&py, &["digest", &ep2, "hbcpacct2", ACCT2_KEY, &cb, "hbase"]),
        source
    );
}

/// The object keys boto3 lists under `prefix/` of `bucket` (hbcp's own `.hbcp/` included).
fn s3_keys(py: &str, endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let body = r#"
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix + '/'):
    for o in page.get('Contents', []):
        print(o['Key'][len(prefix) + 1:])
"#;
    boto3(py, endpoint, bucket, prefix, body)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn s3_deletes_one_object_at_a_time_so_a_server_without_bulk_delete_gets_its_lock_back() {
    let Some(ep) = emulator("HBCP_TEST_S3", "moto") else {
        return;
    };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "the Python of .tools/venv (boto3)") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let total = tree(&src);
    let a = tag();
    // A server that answers DeleteObjects (`POST ?delete`) 501, as some S3-compatible servers
    // do (s3s-fs answers 500).
    let proxy = faultproxy::start(&ep, Mode::NoBulkDelete);
    let env = [("AWS_ENDPOINT_URL", proxy.url.as_str())];
    let rep = t.path().join("r.json");
    let r = s3_copy(&env, &s(&src), &url(&a), &["--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    let c = &proxy.counters;
    assert_eq!(c.bulk_deletes.load(Relaxed), 0, "a bulk delete was sent");
    assert!(c.deletes.load(Relaxed) >= 1, "the lock was not deleted");
    let j = report(&rep);
    assert_eq!(j["retries"], 0, "{j}");
    assert_eq!(j["bytes"], total, "{j}");
    // The run's lock is gone from the target (boto3's listing), its journal and manifest stay.
    let keys = s3_keys(&py, &ep, "hbcp-test", &format!("{a}/hbase"));
    assert!(keys.iter().any(|k| k.starts_with(".hbcp/")), "{keys:?}");
    assert!(!keys.iter().any(|k| k == ".hbcp/lock"), "{keys:?}");
    assert_eq!(
        s3_digest(&py, &ep, "hbcp-test", &format!("{a}/hbase")),
        local_digest(&py, &src)
    );
}
