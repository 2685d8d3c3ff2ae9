//! `hbcp preflight` on the real root dirs: the verdict comes from the data (WAL cells above the
//! flushed sequence ids), and legacy roots are refused.

use std::process::Command;

use crate::util::*;

#[test]
fn preflight_finds_the_two_real_roots_whose_edits_live_only_in_wals() {
    let mut losing = Vec::new();
    for name in real_root_names() {
        let t = tempfile::tempdir().unwrap();
        let root = real_root(&name, &t.path().join("x"));
        let rep = t.path().join("p.json");
        let r = hbcp(["preflight", &s(&root), "--report", &s(&rep)]);
        assert!(r.code == 0 || r.code == 1, "{name}: {r:?}");
        assert!(r.stdout.contains("verdict: "), "{name}: {r:?}");
        let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
        assert_eq!(
            j["loses_edits_without_wals"].as_bool(),
            Some(r.code == 1),
            "{name}"
        );
        if r.code == 1 {
            assert!(
                r.stdout.contains("flush '"),
                "{name}: tells how to flush: {r:?}"
            );
            let tables: Vec<String> = j["unflushed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["table"].as_str().unwrap().to_string())
                .collect();
            losing.push((name, tables));
        }
    }
    // Provenance (tests/fixtures/hbase-real/README.txt): the 1.4.3 root's hbase:meta has no
    // HFiles and its edits are only in the WAL; the 2.1 root's default:test lives only in its WAL.
    assert_eq!(losing.len(), 2, "{losing:?}");
    assert!(
        losing[0].0.contains("1.4.3") && losing[0].1.contains(&"hbase:meta".to_string()),
        "{losing:?}"
    );
    assert!(
        losing[1].0.contains("2.1") && losing[1].1 == vec!["test".to_string()],
        "{losing:?}"
    );
}

#[test]
fn preflight_refuses_a_legacy_root_and_passes_a_plain_folder() {
    let t = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hbase-real/apache-hbase/TestNamespaceUpgrade.tgz");
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(t.path())
        .status()
        .unwrap();
    assert!(st.success());
    let r = hbcp(["preflight", &s(&t.path().join("hbase"))]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("0.94") && r.stderr.contains("not supported"),
        "{r:?}"
    );
    let plain = t.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("a"), b"x").unwrap();
    let r = hbcp(["preflight", &s(&plain)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("not an HBase root"), "{r:?}");
}

#[test]
fn copy_refuses_a_root_with_wal_only_edits_unless_allow_unflushed() {
    let t = tempfile::tempdir().unwrap();
    let name = real_root_names()
        .into_iter()
        .find(|n| n.contains("2.1"))
        .unwrap();
    let root = real_root(&name, &t.path().join("x"));
    let dst = t.path().join("dst");
    let r = copy(&root, &dst, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("table test") && r.stderr.contains("flush 'test'"),
        "{r:?}"
    );
    assert!(r.stderr.contains("--allow-unflushed"), "{r:?}");
    assert!(!dst.exists(), "nothing written");
    let r = copy(&root, &dst, &["--allow-unflushed"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_copy_with_wals(&root, &dst);
    assert!(
        digest(&dst).keys().any(|k| k.starts_with("WALs/")),
        "the WALs are copied with the data"
    );
}
