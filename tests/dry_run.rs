//! `--dry-run` of `copy`, `sync`, `backup` and `restore` (issue #20): nothing is written anywhere (the
//! target, the state folder, no lock: trees listed before and after, on Azurite by the Azure
//! SDK), exit 0, and what it names is exactly what the real run that follows writes (or
//! deletes), judged from the target tree itself (new or replaced files have a new inode).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Every entry under `root` (hbcp's `.hbcp/` folder included): path → (is_dir, inode, size,
/// mtime in ns). Empty when `root` does not exist.
fn tree(root: &Path) -> BTreeMap<String, (bool, u64, u64, i64)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (bool, u64, u64, i64)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let mtime = md.mtime() * 1_000_000_000 + md.mtime_nsec();
            out.insert(rel, (md.is_dir(), md.ino(), md.len(), mtime));
            if md.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// The files (not `.hbcp/`) that are new in `after` or a different file (inode) than in
/// `before`: what a run wrote.
fn written(
    before: &BTreeMap<String, (bool, u64, u64, i64)>,
    after: &BTreeMap<String, (bool, u64, u64, i64)>,
) -> BTreeSet<String> {
    after
        .iter()
        .filter(|(k, v)| !v.0 && !k.starts_with(".hbcp"))
        .filter(|(k, v)| before.get(*k).is_none_or(|b| b.1 != v.1))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The files of `before` (not `.hbcp/`) that `after` lacks.
fn gone(
    before: &BTreeMap<String, (bool, u64, u64, i64)>,
    after: &BTreeMap<String, (bool, u64, u64, i64)>,
) -> BTreeSet<String> {
    before
        .iter()
        .filter(|(k, v)| !v.0 && !k.starts_with(".hbcp") && !after.contains_key(*k))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The `--progress json` lines of a dry run: action → keys; and its closing line.
fn actions(stdout: &str) -> (BTreeMap<String, BTreeSet<String>>, serde_json::Value) {
    let mut by = BTreeMap::<String, BTreeSet<String>>::new();
    let mut done = serde_json::Value::Null;
    for l in stdout.lines() {
        let Ok(j) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        match j["event"].as_str() {
            Some("dry_run") => {
                by.entry(j["action"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(j["key"].as_str().unwrap().to_string());
            }
            Some("dry_run_done") => done = j,
            _ => {}
        }
    }
    (by, done)
}

fn of(by: &BTreeMap<String, BTreeSet<String>>, action: &str) -> BTreeSet<String> {
    by.get(action).cloned().unwrap_or_default()
}

/// The bundled sample root, copied to `dest`.
fn sample(dest: &Path) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&sample)
        .arg(dest)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn copy_dry_run_writes_nothing_and_names_exactly_what_the_real_copy_then_writes() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst, state) = (
        t.path().join("src"),
        t.path().join("dst"),
        t.path().join("state"),
    );
    sample(&src);
    let st = s(&state);
    let dry = |extra: &[&str]| {
        let mut a = vec!["copy", src.to_str().unwrap(), dst.to_str().unwrap()];
        a.extend(["--dry-run", "--state", &st]);
        a.extend(extra);
        hbcp(a)
    };

    // Into a target that does not exist: it is not created, nor is the state folder.
    let r = dry(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!dst.exists(), "the dry run created the target");
    assert!(!state.exists(), "the dry run created the state folder");
    assert!(
        r.stdout
            .contains("would copy (not at the target): 55 files, 3.3 MiB"),
        "{r:?}"
    );
    // The first names, in key order, then how many more; and what is left out.
    assert!(
        r.stdout
            .contains("\n  .hbase-snapshot/snap-1/.snapshotinfo\n"),
        "{r:?}"
    );
    assert!(r.stdout.contains("  … and 45 more\n"), "{r:?}");
    assert!(r.stdout.contains("left out: 6 files left out"), "{r:?}");
    let j = dry(&["--progress", "json"]);
    assert_eq!(j.code, 0, "{j:?}");
    let (by, done) = actions(&j.stdout);
    assert_eq!(done["copy_files"], 55, "{j:?}");
    let r = copy(&src, &dst, &["--state", &st]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        of(&by, "copy"),
        written(&BTreeMap::new(), &tree(&dst)),
        "the dry run named other files than the copy wrote"
    );
    assert_eq!(by.len(), 1, "{by:?}");

    // Changes at the source: a new file, one with another size, one with the same size and
    // other bytes (only the checksums tell it apart), and one file removed.
    fs::write(src.join("notes/new.txt"), b"new").unwrap();
    let grown = "data/hbase/namespace/b8e6889307cef8d9b7a4f2c75a074234/.regioninfo";
    let mut g = fs::read(src.join(grown)).unwrap();
    g.push(b'x');
    fs::write(src.join(grown), g).unwrap();
    let same_size = "notes/operator copy #123 ü=ok.txt";
    let mut b = fs::read(src.join(same_size)).unwrap();
    b[0] ^= 0x20;
    fs::write(src.join(same_size), b).unwrap();

    let before = tree(&dst);
    let state_before = tree(&state);
    let j = dry(&["--progress", "json"]);
    assert_eq!(j.code, 0, "{j:?}");
    assert_eq!(tree(&dst), before, "the dry run changed the target");
    assert_eq!(tree(&state), state_before, "the dry run changed the state");
    let (by, done) = actions(&j.stdout);
    assert_eq!(
        of(&by, "copy"),
        BTreeSet::from(["notes/new.txt".to_string()])
    );
    assert_eq!(
        of(&by, "replace"),
        BTreeSet::from([grown.to_string(), same_size.to_string()])
    );
    assert_eq!(done["keep_files"], 53, "{j:?}");
    let r = dry(&[]);
    assert!(
        r.stdout
            .contains("would copy over a different file at the target: 2 files, 80 B"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("would keep (already at the target): 53 files"),
        "{r:?}"
    );

    let r = copy(&src, &dst, &["--state", &st]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut want = of(&by, "copy");
    want.extend(of(&by, "replace"));
    assert_eq!(written(&before, &tree(&dst)), want);
}

/// A small HBase root: `hbase.version`, two tables of two regions with three HFiles each.
fn root(src: &Path) {
    let put = |key: &str, data: &[u8]| {
        let p = src.join(key);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    };
    put("hbase.version", b"PBUF\n\x018");
    for t in ["t1", "t2"] {
        put(
            &format!("data/default/{t}/.tabledesc/.tableinfo.0000000001"),
            t.as_bytes(),
        );
        for r in ["aaaa", "bbbb"] {
            let reg = format!("data/default/{t}/{t}{r}");
            put(&format!("{reg}/.regioninfo"), reg.as_bytes());
            for f in 0..3u32 {
                put(
                    &format!("{reg}/cf/{}", hfile(t, r, f)),
                    &vec![f as u8; 1000 + f as usize],
                );
            }
        }
    }
}

fn hfile(t: &str, r: &str, f: u32) -> String {
    format!(
        "{:0>32}",
        format!("{t}{r}{f}")
            .bytes()
            .map(|b| format!("{:x}", b % 16))
            .collect::<String>()
    )
}

fn sync(src: &Path, dst: &Path, extra: &[&str]) -> Run {
    let mut a = vec!["sync", src.to_str().unwrap(), dst.to_str().unwrap()];
    a.push("--no-wals-expected");
    if !extra.contains(&"--progress") {
        a.extend(["--progress", "none"]);
    }
    a.extend(extra);
    hbcp(a)
}

#[test]
fn sync_delete_dry_run_lists_exactly_what_the_real_sync_then_deletes() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    root(&src);
    let r = sync(&src, &dst, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    // HBase activity: a flush (a new HFile), a compaction (an HFile moved to archive/), a
    // region gone (its four files).
    let flushed = format!("data/default/t1/t1aaaa/cf/{}", hfile("t9", "zzzz", 9));
    fs::write(src.join(&flushed), vec![9u8; 4321]).unwrap();
    let moved_from = format!("data/default/t2/t2aaaa/cf/{}", hfile("t2", "aaaa", 1));
    let moved_to = format!("archive/{moved_from}");
    fs::create_dir_all(src.join(&moved_to).parent().unwrap()).unwrap();
    fs::rename(src.join(&moved_from), src.join(&moved_to)).unwrap();
    fs::remove_dir_all(src.join("data/default/t1/t1bbbb")).unwrap();

    let before = tree(&dst);
    let dry = |extra: &[&str]| {
        let mut a = vec!["--dry-run", "--delete"];
        a.extend(extra);
        sync(&src, &dst, &a)
    };
    // The default cap (5%) would refuse these deletions: the dry run says so.
    let r = dry(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("would delete (the source no longer has them): 5 files"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("the sync would refuse these deletions: 5 of 19 target files"),
        "{r:?}"
    );
    let r = dry(&["--max-delete", "50%", "--progress", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(tree(&dst), before, "the dry run changed the target");
    let (by, _) = actions(&r.stdout);
    assert_eq!(of(&by, "copy"), BTreeSet::from([flushed.clone()]));
    assert_eq!(of(&by, "copy_within"), BTreeSet::from([moved_to.clone()]));
    let deletes = of(&by, "delete");
    assert!(deletes.contains(&moved_from), "{deletes:?}");
    assert_eq!(deletes.len(), 5, "{deletes:?}");

    let rep = t.path().join("sync.json");
    let r = sync(
        &src,
        &dst,
        &["--delete", "--max-delete", "50%", "--report", &s(&rep)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    let deleted: BTreeSet<String> = j["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let after = tree(&dst);
    assert_eq!(deleted, deletes, "{j}");
    assert_eq!(gone(&before, &after), deletes);
    let mut want = of(&by, "copy");
    want.extend(of(&by, "copy_within"));
    want.extend(of(&by, "replace"));
    assert_eq!(written(&before, &after), want);
}

#[test]
fn sync_dry_run_refuses_watch_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    root(&src);
    let r = sync(&src, &dst, &["--dry-run", "--watch"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--dry-run shows what one sync would do"),
        "{r:?}"
    );
    let r = sync(&src, &dst, &["--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("would copy (not at the target): 19 files"),
        "{r:?}"
    );
    assert!(!dst.exists(), "the dry run created the target");
}

#[test]
fn restore_dry_run_names_the_generation_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (src, bk, out) = (
        t.path().join("src"),
        t.path().join("bk"),
        t.path().join("out"),
    );
    root(&src);
    let r = hbcp([
        "backup",
        &s(&src),
        &s(&bk),
        "--no-wals-expected",
        "--progress",
        "none",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let g = hbcp(["generations", &s(&bk), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&g.stdout).unwrap();
    let id = v[0]["id"].as_u64().unwrap().to_string();
    let bk_before = tree(&bk);
    let restore = |extra: &[&str]| {
        let mut a = vec!["restore", bk.to_str().unwrap(), "--generation", &id];
        a.extend([out.to_str().unwrap(), "--progress", "json"]);
        a.extend(extra);
        hbcp(a)
    };
    let r = restore(&["--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!out.exists(), "the dry run created the target");
    assert_eq!(tree(&bk), bk_before, "the dry run changed the backup");
    let (by, _) = actions(&r.stdout);
    assert_eq!(by.len(), 1, "{by:?}");
    let r = restore(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(of(&by, "copy"), written(&BTreeMap::new(), &tree(&out)));
    // A target that is not empty is refused as the restore refuses it (exit 2).
    let other = t.path().join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("x"), b"x").unwrap();
    let r = hbcp([
        "restore",
        &s(&bk),
        "--generation",
        &id,
        &s(&other),
        "--dry-run",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not empty"), "{r:?}");
}

#[test]
fn azurite_copy_dry_run_writes_no_blob() {
    let Some((ep, python)) = crate::azure_auth::setup() else {
        return;
    };
    let (account, key) = (crate::azure_auth::ACCOUNT, crate::azure_auth::KEY);
    let py = |args: &[&str]| crate::azure_auth::sdk(&python, args);
    let c = format!("dryrun{}", std::process::id());
    py(&["create", &ep, account, key, &c]);
    let listing = || py(&["digest", &ep, account, key, &c, ""]);
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    sample(&src);
    let dst = format!("{ep}/{c}/hbase");
    let r = hbcp(["copy", &s(&src), &dst, "--dry-run", "--progress", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(listing(), "{}", "the dry run wrote blobs");
    let (by, _) = actions(&r.stdout);
    let r = hbcp(["copy", &s(&src), &dst, "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    let blobs: serde_json::Value = serde_json::from_str(&listing()).unwrap();
    let copied: BTreeSet<String> = blobs
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| k.strip_prefix("hbase/"))
        .filter(|k| !k.starts_with(".hbcp/"))
        .map(str::to_string)
        .collect();
    assert_eq!(of(&by, "copy"), copied);
    // Again after a change: the blobs stay as they are until the real copy.
    fs::write(src.join("notes/new.txt"), b"new").unwrap();
    let before = listing();
    let r = hbcp(["copy", &s(&src), &dst, "--dry-run", "--progress", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(listing(), before, "the dry run changed the blobs");
    let (by, _) = actions(&r.stdout);
    assert_eq!(
        of(&by, "copy"),
        BTreeSet::from(["notes/new.txt".to_string()])
    );
    assert_eq!(by.get("keep").map(|k| k.len()), Some(55));
}

#[test]
fn backup_dry_run_writes_nothing_and_names_what_the_real_backup_then_stores() {
    let t = tempfile::tempdir().unwrap();
    let (src, bk, state) = (
        t.path().join("src"),
        t.path().join("bk"),
        t.path().join("state"),
    );
    sample(&src);
    let (a, b, st) = (s(&src), s(&bk), s(&state));
    let rep = t.path().join("r.json");
    let rp = s(&rep);
    let dry = || {
        hbcp([
            "backup",
            &a,
            &b,
            "--dry-run",
            "--state",
            &st,
            "--progress",
            "json",
        ])
    };
    let real = || {
        let r = hbcp([
            "backup",
            &a,
            &b,
            "--state",
            &st,
            "--progress",
            "none",
            "--report",
            &rp,
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
        j["new_files"].as_u64().unwrap()
    };

    // A first backup: everything the copy would copy, nothing created.
    let j = dry();
    assert_eq!(j.code, 0, "{j:?}");
    assert!(!bk.exists(), "the dry run created the backup target");
    assert!(!state.exists(), "the dry run created the state folder");
    let (by, done) = actions(&j.stdout);
    assert_eq!(done["copy_files"], 55, "{j:?}");
    assert_eq!(of(&by, "copy").len(), 55);
    assert_eq!(real(), 55, "the backup stored what the dry run named");

    // After a new file: only it would be stored; the target (lock, layout, pool) untouched.
    fs::write(src.join("notes/new.txt"), b"new").unwrap();
    let (before, state_before) = (tree(&bk), tree(&state));
    let j = dry();
    assert_eq!(j.code, 0, "{j:?}");
    assert_eq!(tree(&bk), before, "the dry run changed the backup target");
    assert_eq!(tree(&state), state_before, "the dry run changed the state");
    let (by, done) = actions(&j.stdout);
    assert_eq!(
        of(&by, "copy"),
        BTreeSet::from(["notes/new.txt".to_string()])
    );
    assert_eq!(done["keep_files"], 55, "{j:?}");
    assert_eq!(real(), 1);
}
