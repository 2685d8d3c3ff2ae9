//! HBase on WASB: WALs kept as page blobs in hadoop-azure's format (written on Azurite by the
//! Azure SDK for Python, an independent client) are read as Hadoop reads them, by the preflight
//! and by a copy; a root in the middle of a WASB folder rename is refused.

use std::path::Path;
use std::process::Command;

use crate::cloud::{azurite, container};
use crate::util::*;

/// Azurite's well-known development account key.
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The Python with the Azure SDK (scripts/azure-sdk.sh), or `None` (a failure under CI).
fn azure_py() -> Option<String> {
    emulator("HBCP_TEST_PYTHON", "the Azure SDK for Python")
}

/// Preflight verdict of a root: exit status and the (table, family, WAL sequence id) of the
/// edits only in WALs.
fn verdict(root: &str) -> (i32, Vec<(String, String, u64)>, serde_json::Value) {
    let t = tempfile::tempdir().unwrap();
    let rep = t.path().join("p.json");
    let r = hbcp(["preflight", root, "--report", &s(&rep)]);
    assert!(r.code == 0 || r.code == 1, "{root}: {r:?}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    (r.code, unflushed_of(&j), j["not_checked"].clone())
}

#[test]
fn page_blob_wals_on_azurite_give_the_local_verdicts_and_copy_back_byte_equal() {
    let Some(base) = azurite() else { return };
    let Some(py) = azure_py() else { return };
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint={base}/devstoreaccount1;"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure_page_blob.py");
    let mut paged = 0;
    for name in real_root_names() {
        let t = tempfile::tempdir().unwrap();
        let src = real_root(&name, &t.path().join("x"));
        let blob = container(&base, "devstoreaccount1", "pg");
        let r = copy(&src, Path::new(&blob), &["--allow-unflushed"]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        // The WALs again, as page blobs in hadoop-azure's format (in place of the block blobs).
        let cont = blob.rsplit('/').nth(1).unwrap();
        let wals: Vec<String> = digest(&src)
            .into_iter()
            .filter(|(k, v)| !v.0 && (k.starts_with("WALs/") || k.starts_with("oldWALs/")))
            .map(|(k, _)| format!("hbase/{k}={}", src.join(&k).display()))
            .collect();
        assert!(!wals.is_empty(), "{name}: every real root has WALs");
        paged += wals.len();
        let st = Command::new(&py)
            .arg(&script)
            .arg(&conn)
            .arg(cont)
            .args(&wals)
            .status()
            .unwrap();
        assert!(st.success(), "{name}: the SDK wrote the page blobs");
        let (code, unflushed, not_checked) = verdict(&blob);
        let (lcode, lunflushed, _) = verdict(&s(&src));
        assert_eq!(not_checked, serde_json::json!([]), "{name}: every WAL read");
        assert_eq!((code, &unflushed), (lcode, &lunflushed), "{name}");
        // Copied back: the files Hadoop sees, byte for byte.
        let back = t.path().join("back");
        let r = copy(Path::new(&blob), &back, &["--allow-unflushed"]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        assert_same_copy_with_wals(&src, &back);
        let v = hbcp([
            "verify",
            &blob,
            &s(&back),
            "--allow-unflushed",
            "--progress",
            "none",
        ]);
        assert_eq!(v.code, 0, "{name}: {v:?}");
    }
    assert!(paged > 5, "{paged}");
}

#[test]
fn a_root_in_the_middle_of_a_wasb_folder_rename_is_refused_with_what_to_do() {
    let t = tempfile::tempdir().unwrap();
    let name = real_root_names()
        .into_iter()
        .find(|n| n.contains("2.2.3"))
        .unwrap();
    let src = real_root(&name, &t.path().join("x"));
    let dst = t.path().join("dst");
    assert_eq!(copy(&src, &dst, &[]).code, 0, "the root alone copies");
    std::fs::remove_dir_all(&dst).unwrap();
    std::fs::create_dir_all(src.join("data/default")).unwrap();
    std::fs::write(
        src.join("data/default/t1-RenamePending.json"),
        br#"{"FormatVersion":"1.0","OldFolderName":"hbase/.tmp/data/default/t1","NewFolderName":"hbase/data/default/t1","FileList":[]}"#,
    )
    .unwrap();
    let r = hbcp(["preflight", &s(&src)]);
    assert_eq!(r.code, 2, "{r:?}");
    for (what, r) in [
        ("preflight", r),
        ("copy", copy(&src, &dst, &[])),
        (
            "copy --allow-unflushed",
            copy(&src, &dst, &["--allow-unflushed"]),
        ),
    ] {
        assert_eq!(r.code, 2, "{what}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{what}: one line: {r:?}");
        assert!(
            r.stderr.contains("folder data/default/t1 ") && r.stderr.contains("hadoop fs -ls"),
            "{what}: names the folder and what to do: {r:?}"
        );
        assert!(!dst.exists(), "{what}: nothing written");
    }
}
