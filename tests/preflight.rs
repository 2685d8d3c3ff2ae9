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

/// The real root whose name contains `part`, unpacked under `dir`.
fn real(part: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let name = real_root_names()
        .into_iter()
        .find(|n| n.contains(part))
        .unwrap();
    real_root(&name, dir)
}

/// The WAL files (under `WALs/`) of a root.
fn wal_files(root: &std::path::Path) -> Vec<String> {
    digest(root)
        .into_iter()
        .filter(|(k, v)| !v.0 && k.starts_with("WALs/"))
        .map(|(k, _)| k)
        .collect()
}

fn preflight_json(root: &std::path::Path, extra: &[&str]) -> (Run, serde_json::Value) {
    let rep = root.with_extension("preflight.json");
    let mut a = vec!["preflight".to_string(), s(root), "--report".into(), s(&rep)];
    a.extend(extra.iter().map(|x| x.to_string()));
    let r = hbcp(a);
    let j = std::fs::read(&rep)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (r, j)
}

#[test]
fn a_root_with_a_garbage_or_encrypted_wal_is_refused_unless_allow_unflushed() {
    // A root whose WALs hold nothing unflushed: only the unreadable WAL can hold it.
    let t = tempfile::tempdir().unwrap();
    let root = real("2.2.3", &t.path().join("x"));
    let (r, j) = preflight_json(&root, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(j["safe_without_wals"], true);
    let server = wal_files(&root)[0].rsplit_once('/').unwrap().0.to_string();
    let cases: [(&str, Vec<u8>, &str); 2] = [
        (
            "garbage",
            (0..300u32).map(|i| (i * 37 % 251) as u8).collect(),
            "PWAL magic",
        ),
        // A header carrying an encryption key (SecureProtobufLogWriter).
        (
            "encrypted",
            [&b"PWAL"[..], &[5, 0x12, 3], b"key"].concat(),
            "encryption",
        ),
    ];
    for (what, bytes, why) in cases {
        let key = format!("{server}/host%2C16020%2C1.{what}");
        std::fs::write(root.join(&key), &bytes).unwrap();
        let (r, j) = preflight_json(&root, &[]);
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert!(
            r.stdout.contains("verdict: cannot promise") && !r.stdout.contains("loses nothing"),
            "{what}: {r:?}"
        );
        assert_eq!(j["safe_without_wals"], false, "{what}");
        assert!(j["not_checked"][0].as_str().unwrap().contains(why), "{j}");
        let dst = t.path().join(format!("dst-{what}"));
        for cmd in ["copy", "backup", "sync"] {
            let r = hbcp([cmd, &s(&root), &s(&dst), "--progress", "none"]);
            assert_eq!(r.code, 2, "{cmd} {what}: {r:?}");
            assert!(
                r.stderr.contains(&key) && r.stderr.contains(why),
                "{cmd}: names the file and why: {r:?}"
            );
            assert_eq!(r.stderr.lines().count(), 1, "one line: {r:?}");
            assert!(!dst.exists(), "{cmd}: nothing written");
        }
        let plan = t.path().join("p.plan");
        let r = hbcp(["plan", &s(&root), &s(&dst), "--out", &s(&plan)]);
        assert_eq!(r.code, 2, "plan {what}: {r:?}");
        assert!(!plan.exists());
        let r = copy(&root, &dst, &["--allow-unflushed"]);
        assert_eq!(r.code, 0, "{what}: {r:?}");
        assert_same_copy_with_wals(&root, &dst);
        std::fs::remove_dir_all(&dst).unwrap();
        std::fs::remove_file(root.join(&key)).unwrap();
    }
}

#[test]
fn compressed_wals_give_the_same_verdicts_as_their_plain_form() {
    for name in real_root_names() {
        let t = tempfile::tempdir().unwrap();
        let root = real_root(&name, &t.path().join("x"));
        let (plain, pj) = preflight_json(&root, &[]);
        let wals = wal_files(&root);
        let mut compressed = 0;
        for w in &wals {
            let p = root.join(w);
            let bytes = std::fs::read(&p).unwrap();
            if bytes.is_empty() {
                continue;
            }
            let z = hbcp_testkit::wal::compress_wal(&bytes).unwrap();
            assert_ne!(z, bytes);
            std::fs::write(&p, z).unwrap();
            compressed += 1;
        }
        let (r, j) = preflight_json(&root, &[]);
        assert_eq!(r.code, plain.code, "{name}: {r:?}");
        assert_eq!(j["not_checked"], serde_json::json!([]), "{name}: {j}");
        assert_eq!(j["unflushed"], pj["unflushed"], "{name}");
        assert_eq!(j["open_wals"], pj["open_wals"], "{name}");
        assert_eq!(j["safe_without_wals"], pj["safe_without_wals"], "{name}");
        if name.contains("2.1") || name.contains("1.4.3") {
            assert!(compressed > 0, "{name}");
            assert!(!j["unflushed"].as_array().unwrap().is_empty(), "{name}");
        }
    }
}

#[test]
fn wals_moved_out_of_the_root_are_read_with_wal_dir_and_their_absence_holds_the_copy() {
    for part in ["2.1", "1.4.3"] {
        let t = tempfile::tempdir().unwrap();
        let root = real(part, &t.path().join("x"));
        let (before, bj) = preflight_json(&root, &[]);
        assert_eq!(before.code, 1, "{before:?}");
        // Accelerated Writes: the WALs live in hbase.wal.dir, outside the root.
        let wal_dir = t.path().join("waldir");
        std::fs::create_dir_all(&wal_dir).unwrap();
        std::fs::rename(root.join("WALs"), wal_dir.join("WALs")).unwrap();
        if root.join("oldWALs").exists() {
            std::fs::rename(root.join("oldWALs"), wal_dir.join("oldWALs")).unwrap();
        }
        let (r, j) = preflight_json(&root, &[]);
        assert_eq!(r.code, 1, "{part}: {r:?}");
        assert!(
            r.stdout.contains("found no WALs under the root")
                && r.stdout.contains("hbase.wal.dir")
                && !r.stdout.contains("loses nothing"),
            "{part}: {r:?}"
        );
        assert_eq!(j["no_wals_found"], true);
        let dst = t.path().join("dst");
        let r = copy(&root, &dst, &[]);
        assert_eq!(r.code, 2, "{part}: {r:?}");
        assert!(
            r.stderr.contains("--wal-dir") && r.stderr.contains("--no-wals-expected"),
            "{r:?}"
        );
        assert!(!dst.exists());
        // With --wal-dir: the same tables lose the same edits as before.
        let (r, j) = preflight_json(&root, &["--wal-dir", &s(&wal_dir)]);
        assert_eq!(r.code, 1, "{part}: {r:?}");
        assert!(!unflushed_of(&bj).is_empty());
        assert_eq!(unflushed_of(&j), unflushed_of(&bj), "{part}");
        let r = copy(&root, &dst, &["--wal-dir", &s(&wal_dir)]);
        assert_eq!(r.code, 2, "{part}: {r:?}");
        assert!(r.stderr.contains("would lose edits"), "{r:?}");
        // An empty --wal-dir (the wrong folder) does not count as WALs inspected.
        let empty = t.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let r = copy(&root, &dst, &["--wal-dir", &s(&empty)]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("nor under --wal-dir"), "{r:?}");
        let r = copy(&root, &dst, &["--wal-dir", &s(&t.path().join("nope"))]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.starts_with("hbcp: --wal-dir"), "{r:?}");
        assert!(!dst.exists());
        // The operator's word: a root without WALs.
        let r = copy(&root, &dst, &["--no-wals-expected"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_same_tree(&root, &dst);
    }
}

#[test]
fn sync_holds_like_copy_and_reports_wal_only_edits_as_data_at_risk() {
    let t = tempfile::tempdir().unwrap();
    let root = real("2.1", &t.path().join("x"));
    let dst = t.path().join("dst");
    let r = hbcp(["sync", &s(&root), &s(&dst), "--progress", "none"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("table test") && r.stderr.contains("--allow-unflushed"),
        "{r:?}"
    );
    assert!(!dst.exists(), "nothing written");
    let rep = t.path().join("s.json");
    let r = hbcp([
        "sync",
        &s(&root),
        &s(&dst),
        "--allow-unflushed",
        "--progress",
        "none",
        "--report",
        &s(&rep),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("data at risk") && l.contains("table test")),
        "{r:?}"
    );
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    let risk = j["cycles"][0]["at_risk"].as_array().unwrap();
    assert!(
        risk.iter()
            .any(|x| x.as_str().unwrap().contains("table test")),
        "{j}"
    );
    // What copy --allow-unflushed copies: the WALs, and no transient folder.
    assert_same_copy_with_wals(&root, &dst);
    assert!(!wal_files(&dst).is_empty());
}

/// Issue #20: a table made of HFileLinks (the sample's clone of a snapshot) and one holding
/// split References are shown with their links and references counted from the tree, not as
/// "0 families, 0 HFiles".
#[test]
fn preflight_counts_hfilelinks_and_references_apart_from_hfiles() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample");
    // What the tree holds, counted here by name: a link is `table=region-hfile`, a Reference
    // `hfile.parentregion`; both sit in data/NS/TABLE/REGION/FAMILY/.
    let count = |table: &str| {
        let (mut links, mut refs, mut fams) = (0, 0, std::collections::BTreeSet::new());
        for region in std::fs::read_dir(root.join("data/default").join(table)).unwrap() {
            let region = region.unwrap().path();
            if !region.is_dir()
                || region
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with('.')
            {
                continue;
            }
            for fam in std::fs::read_dir(&region).unwrap() {
                let fam = fam.unwrap().path();
                let f = fam.file_name().unwrap().to_str().unwrap().to_string();
                if !fam.is_dir() || f.starts_with('.') || f == "recovered.edits" {
                    continue;
                }
                for file in std::fs::read_dir(&fam).unwrap() {
                    let n = file.unwrap().file_name().into_string().unwrap();
                    if n.contains('=') && !n.contains('.') {
                        links += 1;
                        fams.insert(f.clone());
                    } else if n.contains('.') && !n.starts_with('.') {
                        refs += 1;
                        fams.insert(f.clone());
                    }
                }
            }
        }
        (links, refs, fams.len())
    };
    let (links, _, fams) = count("usertable_clone");
    assert!(links > 0, "the sample's clone has links");
    let (_, refs, _) = count("usertable");
    assert!(refs > 0, "the sample's usertable has a split");
    let t = tempfile::tempdir().unwrap();
    let rep = t.path().join("preflight.json");
    let r = hbcp(["preflight", &s(&root), "--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    let clone = &j["tables"]["usertable_clone"];
    assert_eq!(clone["links"], links, "{clone}");
    assert_eq!(clone["families"].as_array().unwrap().len(), fams, "{clone}");
    assert_eq!(j["tables"]["usertable"]["references"], refs, "{j}");
    let line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("usertable_clone:"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        line.contains(&format!("{fams} famil")) && line.contains(&format!("{links} HFileLinks")),
        "{line}"
    );
    assert!(r.stdout.contains(&format!("{refs} References")), "{r:?}");
}
