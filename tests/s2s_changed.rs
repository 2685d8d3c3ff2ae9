//! A source changed during a server-side copy (issue 19): every copy request names the version
//! listed at plan time, the file fails named (exit 1), nothing is published under its name,
//! and the rerun copies the new version. The fault proxy runs a hook before the n-th copy
//! request, which overwrites the source with an independent client (boto3, the Azure SDK for
//! Python, fake-gcs-server's upload) and the local tree the target is judged against.
//!
//! What each emulator does with the condition: moto 5 ignores `x-amz-copy-source-if-match`
//! (CopyObject and UploadPartCopy), so there hbcp's own check of the source's version before
//! the commit of a file copied by ranges is what refuses it; Azurite 3.35 answers Copy Blob From
//! URL 412 on `x-ms-source-if-match`; fake-gcs-server ignores `ifSourceGenerationMatch` but
//! answers 404 to a rewrite of a `sourceGeneration` that is gone.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;

use crate::azure_auth::sdk;
use crate::cloud::{azurite, gcs};
use crate::faultproxy::{self, Mode};
use crate::s2s::{ACCT2_KEY, KEY1, azurite_source, local_digest, report, run_env, s3_digest, tag};
use crate::util::*;

/// `size` bytes of version `v` of a file (two versions differ in every range).
fn version(size: u64, v: u8) -> Vec<u8> {
    (0..size)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 13) as u8) ^ v)
        .collect()
}

/// A local tree of one file `d/f` of `size` bytes, version 1.
fn tree(dir: &Path, size: u64) {
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/f"), version(size, 1)).unwrap();
}

/// The failed run: exit 1, the file named as changed, nothing of it sent through hbcp, and
/// every copy request named the version listed.
fn failed_named(r: &Run, proxy: &faultproxy::Proxy) {
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("d/f") && r.stderr.contains("changed at the source"),
        "{}",
        r.stderr
    );
    let c = &proxy.counters;
    assert!(c.copies.load(Relaxed) > 0);
    assert_eq!(c.copies_pinned.load(Relaxed), c.copies.load(Relaxed));
    assert_eq!(c.put_data_bytes.load(Relaxed), 0);
}

#[test]
fn s3_a_source_changed_between_ranges_copied_by_the_service_fails_named_then_the_new_version_is_copied()
 {
    let Some(ep) = emulator("HBCP_TEST_S3", "moto") else {
        return;
    };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "the Python of .tools/venv (boto3)") else {
        return;
    };
    // Three ranges of 5 MiB (UploadPartCopy), the last one odd-sized.
    let size = (10 << 20) + 5;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src, size);
    let (a, b) = (tag(), tag());
    let url = |p: &str| format!("s3://hbcp-test/{p}/root");
    assert_eq!(
        copy(&src, Path::new(&url(&a)), &["--range-size", "5MiB"]).code,
        0
    );
    // Before the second range's copy: version 2 (same size) at the source, by boto3.
    let (py2, ep2, src2) = (py.clone(), ep.clone(), src.clone());
    let key = format!("{a}/root/d/f");
    let hook: faultproxy::Hook = Box::new(move || {
        std::fs::write(src2.join("d/f"), version(size, 2)).unwrap();
        let code = "import boto3, sys\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing', \
            aws_secret_access_key='testing', region_name='us-east-1')\n\
            s3.put_object(Bucket='hbcp-test', Key=sys.argv[2], Body=open(sys.argv[3], 'rb').read())";
        let o = Command::new(&py2)
            .args(["-c", code, &ep2, &key, &s(&src2.join("d/f"))])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
    let (from, to) = (url(&a), url(&b));
    let run = |proxy: &faultproxy::Proxy, rep: &Path| {
        run_env(
            &[
                "copy",
                &from,
                &to,
                "--progress",
                "none",
                "--range-size",
                "5MiB",
                "--report",
                &s(rep),
            ],
            &[("AWS_ENDPOINT_URL", proxy.url.as_str())],
        )
    };
    let proxy = faultproxy::start_with_hook(&ep, Mode::HookBeforeCopy(1), Some(hook));
    let r = run(&proxy, &t.path().join("r1.json"));
    failed_named(&r, &proxy);
    assert!(
        proxy.counters.copies.load(Relaxed) >= 3,
        "every range was tried"
    );
    // Nothing under its name, by boto3.
    let prefix = format!("{b}/root");
    assert_eq!(s3_digest(&py, &ep, "hbcp-test", &prefix), "{}");
    drop(proxy);

    // The rerun copies version 2, by the service, byte-exact by boto3.
    let proxy = faultproxy::start(&ep, Mode::Pass);
    let rep = t.path().join("r2.json");
    let r = run(&proxy, &rep);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(proxy.counters.put_data_bytes.load(Relaxed), 0);
    assert_eq!(report(&rep)["bytes_server_side"], size);
    assert_eq!(
        s3_digest(&py, &ep, "hbcp-test", &prefix),
        local_digest(&py, &src)
    );
}

#[test]
fn azurite_a_source_changed_before_copy_blob_from_url_fails_named_then_the_new_version_is_copied() {
    let Some(base) = azurite() else { return };
    let Some(py) = emulator("HBCP_TEST_PYTHON", "the Azure SDK for Python") else {
        return;
    };
    let size = 100_003;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src, size);
    let ep1 = format!("{base}/devstoreaccount1");
    let ep2 = format!("{base}/hbcpacct2");
    let (ca, cb) = (tag(), tag());
    let sas = azurite_source(&py, &base, &ca, &src, &[]);
    // Before the copy request: version 2 at the source, by the Azure SDK.
    let (py2, ep1b, ca2, src2) = (py.clone(), ep1.clone(), ca.clone(), src.clone());
    let hook: faultproxy::Hook = Box::new(move || {
        std::fs::write(src2.join("d/f"), version(size, 2)).unwrap();
        sdk(
            &py2,
            &[
                "upload",
                &ep1b,
                "devstoreaccount1",
                KEY1,
                &ca2,
                "hbase/d/f",
                &s(&src2.join("d/f")),
            ],
        );
    });
    let env = [("HBCP_AZURE_KEY_HBCPACCT2", ACCT2_KEY)];
    let run = |proxy: &faultproxy::Proxy| {
        run_env(
            &[
                "copy",
                &format!("{ep1}/{ca}/hbase?{sas}"),
                &format!("{}/hbcpacct2/{cb}/hbase", proxy.url),
                "--progress",
                "none",
            ],
            &env,
        )
    };
    let proxy = faultproxy::start_with_hook(&base, Mode::HookBeforeCopy(0), Some(hook));
    let r = run(&proxy);
    failed_named(&r, &proxy);
    assert!(r.stderr.contains("412"), "{}", r.stderr);
    assert_eq!(
        sdk(&py, &["digest", &ep2, "hbcpacct2", ACCT2_KEY, &cb, "hbase"]),
        "{}"
    );
    drop(proxy);

    let proxy = faultproxy::start(&base, Mode::Pass);
    let r = run(&proxy);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(proxy.counters.put_data_bytes.load(Relaxed), 0);
    assert_eq!(
        sdk(&py, &["digest", &ep2, "hbcpacct2", ACCT2_KEY, &cb, "hbase"]),
        local_digest(&py, &src)
    );
}

#[test]
fn gcs_a_source_changed_before_the_rewrite_fails_named_then_the_new_version_is_copied() {
    let Some(base) = gcs() else { return };
    let size = 100_003;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src, size);
    let a = format!("{}/hbase", tag());
    hbcp_testkit::gcs_emulator::upload_tree(&base, "hbcp-test", &a, &src).unwrap();
    let b = format!("{}/hbase", tag());
    // Before the rewrite: version 2 at the source, by fake-gcs-server's upload.
    let (base2, src2, object) = (base.clone(), src.clone(), format!("{a}/d/f"));
    let hook: faultproxy::Hook = Box::new(move || {
        std::fs::write(src2.join("d/f"), version(size, 2)).unwrap();
        hbcp_testkit::gcs_emulator::upload(&base2, "hbcp-test", &object, &version(size, 2))
            .unwrap();
    });
    let run = |proxy: &faultproxy::Proxy| {
        let key = crate::clouds::gcs_key(&proxy.url);
        run_env(
            &[
                "copy",
                &format!("gs://hbcp-test/{a}"),
                &format!("gs://hbcp-test/{b}"),
                "--progress",
                "none",
            ],
            &[("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str())],
        )
    };
    let proxy = faultproxy::start_with_hook(&base, Mode::HookBeforeCopy(0), Some(hook));
    let r = run(&proxy);
    failed_named(&r, &proxy);
    let target = format!("{b}/d/f");
    assert_eq!(
        hbcp_testkit::gcs_emulator::resource(&base, "hbcp-test", &target).unwrap(),
        None
    );
    drop(proxy);

    let proxy = faultproxy::start(&base, Mode::Pass);
    let r = run(&proxy);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(proxy.counters.put_data_bytes.load(Relaxed), 0);
    let v = hbcp([
        "verify",
        &s(&src),
        &format!("gs://hbcp-test/{b}"),
        "--progress",
        "none",
    ]);
    assert_eq!(v.code, 0, "{v:?}");
}
