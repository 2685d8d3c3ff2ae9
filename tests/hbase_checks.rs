//! The verifier's HBase checks through the binary: source findings (an invalid HFile, a corrupt
//! block under `--verify deep`, a dangling HFileLink) are warnings in the report's
//! `source_findings`, failing the run only under `--verify deep` or `--strict`; copy faults stay
//! in `verified.mismatches`; a folder without `hbase.version` gets no HBase checks.

use std::fs;
use std::path::{Path, PathBuf};

use hbcp_testkit::hbase_tree::{Spec, generate};

use crate::util::*;

/// The bytes of a real fixture file (a `.gz` inflated, through the testkit's extractor).
fn fixture(rel: &str) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    let out = hbcp_testkit::extract_fixture(rel, d.path()).unwrap();
    let name = Path::new(rel)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::read(out.join(name.strip_suffix(".gz").unwrap_or(&name))).unwrap()
}

const VALID: &str = "hfiles-hbase-2.4-via-hudi-rs/hudi_1_0_hbase_2_4_9_16KB_NONE_5000.hfile";
const CORRUPT_BLOCK: &str = "apache-hbase/TestCompaction_HFileWithCorruptBlock.branch-2.5.gz";

/// A family dir of the root (`data/<ns>/<table>/<region>/<family>`), as a key.
fn family_dir(root: &Path) -> String {
    let mut stack = vec![root.join("data")];
    while let Some(d) = stack.pop() {
        let rel = d
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.split('/').count() == 5 {
            return rel;
        }
        let mut kids: Vec<PathBuf> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        kids.sort();
        stack.extend(kids.into_iter().rev());
    }
    panic!("no family dir under {}", root.display());
}

fn put(root: &Path, key: &str, bytes: &[u8]) {
    let p = root.join(key);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

/// The source findings of a report: (key, kind, detail).
fn findings(report: &Path) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
    v["source_findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no source_findings in {v}"))
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn mismatches(report: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
    v["verified"]["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect()
}

/// A generated root (valid trailers, random blocks) with a real HFile cut in half and a
/// dangling HFileLink placed in one of its family dirs.
fn generated_root_with_findings(src: &Path) -> (String, String) {
    generate(src, &Spec::sample(), 7).unwrap();
    let fam = family_dir(src);
    let cut = format!("{fam}/c0ffee00c0ffee00c0ffee00c0ffee00");
    let real = fixture(VALID);
    put(src, &cut, &real[..real.len() / 2]);
    let link = format!(
        "{fam}/nosuchtable=0123456789abcdef0123456789abcdef-{}",
        "7".repeat(32)
    );
    put(src, &link, b"");
    (cut, link)
}

#[test]
fn copy_of_a_root_with_an_invalid_hfile_warns_and_reports_it_exit_0_and_strict_fails() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    let (cut, link) = generated_root_with_findings(&src);
    let report = t.path().join("r.json");
    let r = copy(&src, &dst, &["--report", &s(&report)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("hbcp: warning: source finding: ") && l.contains(&cut)),
        "{r:?}"
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("warning") && l.contains(&link)),
        "{r:?}"
    );
    let f = findings(&report);
    let kinds: Vec<(&str, &str)> = f
        .iter()
        .map(|(k, kind, _)| (k.as_str(), kind.as_str()))
        .collect();
    assert!(kinds.contains(&(cut.as_str(), "invalid_hfile")), "{f:?}");
    assert!(
        kinds.contains(&(link.as_str(), "dangling_hfile_link")),
        "{f:?}"
    );
    // The generated HFiles have valid trailers: nothing else is named.
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(mismatches(&report).is_empty());
    // The copy is byte-exact all the same.
    assert_same_tree(&src, &dst);
    assert!(dst.join(".hbcp/manifest.json.zst").is_file());

    // --strict: the same findings fail the run.
    let dst2 = t.path().join("dst2");
    let report2 = t.path().join("r2.json");
    let r = copy(&src, &dst2, &["--strict", "--report", &s(&report2)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&cut), "{r:?}");
    assert_eq!(findings(&report2).len(), 2);
    assert!(mismatches(&report2).is_empty());
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&report2).unwrap()).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert!(v["status"].as_str().unwrap().contains("--strict"), "{v}");
}

/// The real 2.2.3 root (its HFiles are real and valid) with `files` placed in a family dir.
fn real_root_with(t: &Path, files: &[(&str, Vec<u8>)]) -> (PathBuf, Vec<String>) {
    let src = real_root("hbase-2.2.3-AdamSai.tar.gz", &t.join("unpacked"));
    let fam = family_dir(&src);
    let keys = files
        .iter()
        .map(|(name, bytes)| {
            let k = format!("{fam}/{name}");
            put(&src, &k, bytes);
            k
        })
        .collect();
    (src, keys)
}

#[test]
fn verify_deep_names_the_corrupt_block_and_the_invalid_hfile_and_fails() {
    let t = tempfile::tempdir().unwrap();
    let real = fixture(VALID);
    let (src, keys) = real_root_with(
        t.path(),
        &[
            ("b10cb10cb10cb10cb10cb10cb10cb10c", fixture(CORRUPT_BLOCK)),
            (
                "c0ffee00c0ffee00c0ffee00c0ffee00",
                real[..real.len() / 2].to_vec(),
            ),
            ("600d600d600d600d600d600d600d600d", real.clone()),
        ],
    );
    let (corrupt, cut, good) = (&keys[0], &keys[1], &keys[2]);
    // Checksum mode: the corrupt block's trailer is fine, only the cut file is named.
    let dst = t.path().join("dst");
    let report = t.path().join("r.json");
    let r = copy(&src, &dst, &["--allow-unflushed", "--report", &s(&report)]);
    assert_eq!(r.code, 0, "{r:?}");
    let f = findings(&report);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((&f[0].0, f[0].1.as_str()), (cut, "invalid_hfile"), "{f:?}");

    // Deep: both, the block problem named; exit 1.
    let dst = t.path().join("dst-deep");
    let report = t.path().join("deep.json");
    let r = copy(
        &src,
        &dst,
        &[
            "--allow-unflushed",
            "--verify",
            "deep",
            "--report",
            &s(&report),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(corrupt.as_str()))
        .unwrap_or_else(|| panic!("{corrupt} not named: {r:?}"));
    assert!(
        line.contains("corrupt HFile block") && line.contains("checksum"),
        "{line}"
    );
    let f = findings(&report);
    let by_key: Vec<(&str, &str)> = f
        .iter()
        .map(|(k, kind, _)| (k.as_str(), kind.as_str()))
        .collect();
    assert_eq!(
        by_key,
        vec![
            (corrupt.as_str(), "corrupt_hfile_block"),
            (cut.as_str(), "invalid_hfile")
        ],
        "{f:?}"
    );
    assert!(
        f[0].2.contains("block") && f[0].2.contains("offset"),
        "{f:?}"
    );
    assert!(!by_key.iter().any(|(k, _)| k == good), "{f:?}");
    assert!(mismatches(&report).is_empty());
    assert_same_copy_with_wals(&src, &dst);

    // `hbcp verify --verify deep` of the same pair: the same findings, exit 1; checksum: exit 0.
    let v = hbcp([
        "verify",
        &s(&src),
        &s(&dst),
        "--allow-unflushed",
        "--progress",
        "none",
        "--verify",
        "deep",
    ]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stderr.contains(corrupt.as_str()) && v.stderr.contains(cut.as_str()),
        "{v:?}"
    );
    assert!(v.stdout.is_empty(), "no copy faults: {v:?}");
    let v = hbcp([
        "verify",
        &s(&src),
        &s(&dst),
        "--allow-unflushed",
        "--progress",
        "none",
    ]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn a_root_of_valid_real_hfiles_passes_verify_deep() {
    let t = tempfile::tempdir().unwrap();
    let (src, keys) = real_root_with(
        t.path(),
        &[
            ("600d600d600d600d600d600d600d600d", fixture(VALID)),
            (
                "600d600d600d600d600d600d600d600e",
                fixture(
                    "hfiles-hbase-2.4-via-hudi-rs/hudi_1_0_hbase_2_4_13_1KB_GZ_10000_large_keys_deep_index.hfile",
                ),
            ),
        ],
    );
    let dst = t.path().join("dst");
    let report = t.path().join("r.json");
    let r = copy(
        &src,
        &dst,
        &[
            "--allow-unflushed",
            "--verify",
            "deep",
            "--strict",
            "--report",
            &s(&report),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(findings(&report).is_empty());
    assert!(!r.stderr.contains("source finding:"), "{r:?}");
    for k in &keys {
        assert!(dst.join(k).is_file(), "{k}");
    }
}

#[test]
fn a_folder_without_hbase_version_gets_no_hbase_checks() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("plain");
    let fam = "data/default/t/0123456789abcdef0123456789abcdef/cf";
    let real = fixture(VALID);
    put(
        &src,
        &format!("{fam}/b10cb10cb10cb10cb10cb10cb10cb10c"),
        &fixture(CORRUPT_BLOCK),
    );
    put(
        &src,
        &format!("{fam}/c0ffee00c0ffee00c0ffee00c0ffee00"),
        &real[..real.len() / 2],
    );
    put(&src, &format!("{fam}/t=abcd-{}", "7".repeat(32)), b"");
    let dst = t.path().join("dst");
    let report = t.path().join("r.json");
    let r = copy(
        &src,
        &dst,
        &["--verify", "deep", "--strict", "--report", &s(&report)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(findings(&report).is_empty());
    assert!(!r.stderr.contains("source finding:"), "{r:?}");
    assert_same_tree(&src, &dst);
}

#[test]
fn a_byte_flipped_at_the_target_is_a_copy_fault_not_a_source_finding() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    let (cut, _) = generated_root_with_findings(&src);
    assert_eq!(copy(&src, &dst, &[]).code, 0);
    // Flip a byte inside the trailer of a valid generated HFile at the target.
    let fam = family_dir(&src);
    let victim = fs::read_dir(dst.join(&fam))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.metadata().unwrap().len() > 8192)
        .map(|e| format!("{fam}/{}", e.file_name().to_string_lossy()))
        .find(|k| *k != cut)
        .expect("a generated HFile");
    let len = fs::metadata(dst.join(&victim)).unwrap().len();
    hbcp_testkit::flip_byte(dst.join(&victim), len - 4096).unwrap();
    let report = t.path().join("v.json");
    let v = hbcp([
        "verify",
        &s(&src),
        &s(&dst),
        "--progress",
        "none",
        "--report",
        &s(&report),
    ]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stdout
            .lines()
            .any(|l| l.starts_with("differs: ") && l.contains(&victim)),
        "{v:?}"
    );
    assert_eq!(mismatches(&report), vec![victim.clone()]);
    let f = findings(&report);
    assert!(
        f.iter()
            .any(|(k, kind, _)| *k == cut && kind == "invalid_hfile"),
        "{f:?}"
    );
    assert!(
        !f.iter().any(|(k, _, _)| *k == victim),
        "the flipped file is a copy fault: {f:?}"
    );
}
