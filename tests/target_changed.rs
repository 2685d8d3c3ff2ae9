//! A target object changed behind hbcp's back after a copy (issue 17, item 7): one rerun of the
//! same copy repairs it, on object stores as on local disk. The journal keeps the version (ETag)
//! the store's own commit answered; a rerun skips a file only when the target's HEAD still
//! shows that version, never by its size alone. The change is made, and the result judged, by
//! an independent client: the Azure SDK for Python on Azurite (tests/azure_sdk.py), boto3 on
//! moto's S3 (tests/s3_client.py).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cloud::azurite;
use crate::util::*;

static N: AtomicU64 = AtomicU64::new(0);

const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published key for devstoreaccount1 (not a secret).
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The range size of these copies: S3's smallest part, so that the large file is a staged
/// upload of several parts (a commit) and the small one a single put, on every store.
const RANGE: u64 = 5 << 20;

/// Run a Python helper script of tests/; its stdout, trimmed.
fn py(python: &str, script: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let o = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script:?} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A plain folder with a small file (one put) and a large one (a commit of 3 parts); returns
/// their keys.
fn source(dir: &Path) -> [&'static str; 2] {
    fs::create_dir_all(dir.join("d")).unwrap();
    let big: Vec<u8> = (0..3 * RANGE + 7).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(dir.join("d/big"), big).unwrap();
    let small: Vec<u8> = (0..4099u64).map(|i| (i * 7 % 253) as u8).collect();
    fs::write(dir.join("d/small"), small).unwrap();
    fs::write(dir.join("same"), b"left alone").unwrap();
    ["d/big", "d/small"]
}

/// The same size, other bytes: what a size check alone takes for the same file.
fn changed_copy(src: &Path, key: &str, out: &Path) {
    let mut data = fs::read(src.join(key)).unwrap();
    for b in &mut data {
        *b ^= 0x5a;
    }
    fs::write(out, data).unwrap();
}

/// Copy, change the target's objects with `overwrite`, copy again once: exit 0, the target
/// byte-exact by `digest` (the independent client), and `verify` exits 0.
fn one_rerun_repairs(
    dst: &str,
    overwrite: &dyn Fn(&str, &Path),
    digest: &dyn Fn() -> String,
    python: &str,
) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let keys = source(&src);
    let rs = RANGE.to_string();
    let args = ["--range-size", rs.as_str()];
    let r = copy(&src, Path::new(dst), &args);
    assert_eq!(r.code, 0, "first copy: {r:?}");
    let want = py(python, "azure_sdk.py", &["local", &s(&src)]);
    assert_eq!(digest(), want, "the first copy is not byte-exact");
    for key in keys {
        let other = t.path().join("other");
        changed_copy(&src, key, &other);
        overwrite(key, &other);
    }
    assert_ne!(
        digest(),
        want,
        "the independent client did not change the target"
    );
    let r = copy(&src, Path::new(dst), &args);
    assert_eq!(r.code, 0, "rerun: {r:?}");
    assert_eq!(digest(), want, "one rerun did not repair the target: {r:?}");
    let v = hbcp(["verify", &s(&src), dst, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn azure_blobs_changed_behind_hbcps_back_are_repaired_by_one_rerun() {
    let Some(base) = azurite() else { return };
    let Some(python) = emulator(
        "HBCP_TEST_PYTHON",
        "the Azure SDK for Python (scripts/azure-sdk.sh)",
    ) else {
        return;
    };
    let ep = format!("{base}/{ACCOUNT}");
    let c = format!(
        "etag{}n{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let dst = format!("{ep}/{c}/hbase");
    one_rerun_repairs(
        &dst,
        &|key, file| {
            let blob = format!("hbase/{key}");
            py(
                &python,
                "azure_sdk.py",
                &["upload", &ep, ACCOUNT, KEY, &c, &blob, &s(file)],
            );
        },
        &|| {
            py(
                &python,
                "azure_sdk.py",
                &["digest", &ep, ACCOUNT, KEY, &c, "hbase"],
            )
        },
        &python,
    );
}

#[test]
fn s3_objects_changed_behind_hbcps_back_are_repaired_by_one_rerun() {
    if emulator("HBCP_TEST_S3", "moto").is_none() {
        return;
    }
    let Some(python) = emulator("HBCP_TEST_PYTHON", "boto3 (scripts/moto.sh)") else {
        return;
    };
    let prefix = format!(
        "etag{}n{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let dst = format!("s3://hbcp-test/{prefix}");
    one_rerun_repairs(
        &dst,
        &|key, file| {
            let k = format!("{prefix}/{key}");
            py(&python, "s3_client.py", &["put", "hbcp-test", &k, &s(file)]);
        },
        &|| py(&python, "s3_client.py", &["digest", "hbcp-test", &prefix]),
        &python,
    );
}
