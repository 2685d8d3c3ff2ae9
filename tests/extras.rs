//! Files at the target that the source lacks (issue 17, item 2): under a copied HBase table,
//! region or family folder each is a copy fault that HBase would load (exit 1, named, no
//! completion manifest) unless `--delete-extra` removes it, within `--max-delete`; on a plain
//! folder they are reported, not judged.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

/// The HFiles of a root (files in `data/NS/TABLE/REGION/FAMILY/`), sorted.
fn hfiles(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![(root.join("data"), 0)];
    while let Some((d, depth)) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if name.starts_with('.') || name == "recovered.edits" {
                continue;
            }
            if ft.is_dir() && depth < 4 {
                dirs.push((e.path(), depth + 1));
            } else if ft.is_file() && depth == 4 {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A real root and its first HFile's family folder, relative.
fn root_with_family(t: &Path) -> (PathBuf, String) {
    let src = real_root(&real_root_names()[0], &t.join("x"));
    let h = hfiles(&src);
    assert!(!h.is_empty(), "the fixture has HFiles");
    let fam = h[0].parent().unwrap().strip_prefix(&src).unwrap();
    (src.clone(), s(fam))
}

const MANIFEST: &str = ".hbcp/manifest.json.zst";

#[test]
fn copy_to_a_target_with_a_stale_hfile_exits_1_naming_it_and_writes_no_manifest() {
    let t = tempfile::tempdir().unwrap();
    let (src, fam) = root_with_family(t.path());
    let dst = t.path().join("dst");
    // An earlier copy's HFile, since compacted away at the source.
    let stale = format!("{fam}/0123456789abcdef0123456789abcdef");
    fs::create_dir_all(dst.join(&fam)).unwrap();
    fs::write(dst.join(&stale), b"stale cells").unwrap();
    let r = copy(&src, &dst, &["--allow-unflushed"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("extra: {stale}")), "{r:?}");
    assert!(!r.stderr.contains("complete and verified"), "{r:?}");
    assert!(!dst.join(MANIFEST).exists(), "no completion manifest");
    assert!(
        dst.join(&stale).is_file(),
        "nothing removed without --delete-extra"
    );
    // `hbcp verify` of the same pair agrees.
    let v = hbcp(["verify", &s(&src), &s(&dst), "--progress", "none"]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stdout.contains(&format!("extra: {stale}")), "{v:?}");

    // --delete-extra removes it; the copy is then complete, and the target is exactly the
    // source's copy (judged by an independent digest, not hbcp's verify).
    let r = copy(&src, &dst, &["--allow-unflushed", "--delete-extra"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("removed extra (not at the source): {stale}")),
        "{r:?}"
    );
    assert!(!dst.join(&stale).exists());
    assert!(dst.join(MANIFEST).is_file());
    assert_same_copy_with_wals(&src, &dst);
}

#[test]
fn copy_delete_extra_refuses_more_than_max_delete_without_force() {
    let t = tempfile::tempdir().unwrap();
    let (src, fam) = root_with_family(t.path());
    let dst = t.path().join("dst");
    assert_eq!(copy(&src, &dst, &["--allow-unflushed"]).code, 0);
    let stale: Vec<String> = (0..20).map(|i| format!("{fam}/{i:032x}")).collect();
    for k in &stale {
        fs::write(dst.join(k), b"x").unwrap();
    }
    let r = copy(&src, &dst, &["--allow-unflushed", "--delete-extra"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("more than --max-delete 5.0%"), "{r:?}");
    assert!(
        stale.iter().all(|k| dst.join(k).is_file()),
        "nothing deleted"
    );
    assert!(!dst.join(MANIFEST).exists(), "{r:?}");
    let r = copy(
        &src,
        &dst,
        &["--allow-unflushed", "--delete-extra", "--force"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(stale.iter().all(|k| !dst.join(k).exists()));
    assert_same_copy_with_wals(&src, &dst);
    // A bad share is bad usage.
    let r = copy(&src, &dst, &["--delete-extra", "--max-delete", "120%"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--max-delete"), "{r:?}");
}

#[test]
fn copy_into_an_hbase_root_keeps_what_is_outside_the_copied_folders() {
    // Another table, and transient files inside a copied table, are none of the copy's
    // business: not faults, not deleted.
    let t = tempfile::tempdir().unwrap();
    let (src, fam) = root_with_family(t.path());
    let dst = t.path().join("dst");
    let other = "data/default/another_table/r1/f/0123456789abcdef";
    let tmp = format!("{}/.tmp/half-written", fam.rsplitn(3, '/').nth(2).unwrap());
    for k in [other, tmp.as_str()] {
        fs::create_dir_all(dst.join(k).parent().unwrap()).unwrap();
        fs::write(dst.join(k), b"x").unwrap();
    }
    let r = copy(&src, &dst, &["--allow-unflushed", "--delete-extra"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        dst.join(other).is_file() && dst.join(&tmp).is_file(),
        "{r:?}"
    );
}

#[test]
fn copy_of_a_plain_folder_reports_extras_at_the_target_without_failing() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("a/one"), b"1").unwrap();
    fs::create_dir_all(dst.join("a")).unwrap();
    fs::write(dst.join("a/old"), b"0").unwrap();
    let rep = t.path().join("r.json");
    let r = copy(&src, &dst, &["--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("at the target, not at the source: a/old"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("1 files at the target are not at the source"),
        "{r:?}"
    );
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    assert_eq!(j["verified"]["extras"], serde_json::json!(["a/old"]), "{j}");
    assert!(dst.join("a/old").is_file());
}
