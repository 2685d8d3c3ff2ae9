//! Test fixtures: temp dirs, the hbcp command runner, tree digests, real fixture extraction.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The URL of an emulator that scripts/test.sh started (`var`, e.g. `HBCP_TEST_S3`), or
/// `None` with a "skipped" line when it is not running. Under CI a missing emulator is a
/// failure, not a skip.
pub fn emulator(var: &str, name: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(b) => Some(b),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but {name} is not running; run scripts/test.sh")
        }
        Err(_) => {
            eprintln!("skipped: {name} not running ({var} unset)");
            None
        }
    }
}

/// Path to the built `hbcp` binary. `HBCP_TEST_BIN` runs the tests against another build (an older one, to see a regression
/// test fail before its fix).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("HBCP_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hbcp").to_string())
    })
}

/// Result of one hbcp run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn to_run(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Run hbcp with `args`.
pub fn hbcp<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    to_run(Command::new(bin()).args(args).output().expect("run hbcp"))
}

/// Wait for `child` to end, at most `secs`; `None` if it did not (then it is killed).
pub fn ends_within(child: &mut std::process::Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    }
}

/// A `hbcp copy SRC DST --progress none ARGS…` run.
pub fn copy(src: &Path, dst: &Path, extra: &[&str]) -> Run {
    let mut a: Vec<String> = vec![
        "copy".into(),
        s(src),
        s(dst),
        "--progress".into(),
        "none".into(),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    hbcp(a)
}

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Unpack a real fixture (`rootdirs/…tar.gz`) into `dest`; returns the HBase root inside.
pub fn real_root(name: &str, dest: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hbase-real/rootdirs")
        .join(name);
    fs::create_dir_all(dest).unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&src)
        .arg("-C")
        .arg(dest)
        .status()
        .expect("tar");
    assert!(st.success(), "tar xzf {}", src.display());
    // Each archive has one top folder.
    let mut tops: Vec<PathBuf> = fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    tops.sort();
    assert_eq!(tops.len(), 1, "{tops:?}");
    tops.remove(0)
}

/// All real root-dir fixtures.
pub fn real_root_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hbase-real/rootdirs");
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    v.sort();
    v
}

/// Digest of a tree without hbcp's own `.hbcp` folder: key → (is_dir, size, content hash).
pub fn digest(root: &Path) -> BTreeMap<String, (bool, u64, u64)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (bool, u64, u64)>) {
        let mut n = 0;
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            n += 1;
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".hbcp" {
                continue;
            }
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                walk(root, &p, out);
            } else if md.is_file() {
                let data = fs::read(&p).unwrap();
                out.insert(rel, (false, md.len(), xxhash_rust::xxh3::xxh3_64(&data)));
            }
        }
        if n == 0 && dir != root {
            let rel = dir
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(rel, (true, 0, 0));
        }
    }
    walk(root, root, &mut out);
    out
}

/// True for a file of an HBase root's WAL folders (`WALs/`, `oldWALs/`, `MasterProcWALs/`):
/// what `hbcp copy` counts as "WALs" left out.
pub fn in_wal_folder(key: &str) -> bool {
    ["WALs/", "oldWALs/", "MasterProcWALs/"]
        .iter()
        .any(|p| key.starts_with(p))
}

/// True for the keys `hbcp copy` leaves out of an HBase root (DESIGN "what it copies", README
/// "What hbcp copies from an HBase root"), spelled out here independently of the code: the
/// transient folders, and the write-ahead logs (copied only with `--allow-unflushed`) except
/// the regions' `recovered.edits/*.seqid` markers.
pub fn hbase_copy_leaves_out(key: &str, wals: bool) -> bool {
    let segs: Vec<&str> = key.split('/').collect();
    let top = segs[0];
    let transient = matches!(
        top,
        ".tmp" | "corrupt" | ".corrupt" | "staging" | ".hbck" | ".migration" | "splitWAL"
    ) || (matches!(top, ".hbase-snapshot" | ".snapshot")
        && segs.get(1) == Some(&".tmp"))
        || (matches!(top, "data" | "mobdir" | "archive")
            && segs
                .iter()
                .any(|s| matches!(*s, ".tmp" | ".splits" | ".merges" | "splits")));
    let in_edits = segs.contains(&"recovered.edits");
    let wal = matches!(
        top,
        "WALs" | "oldWALs" | "MasterProcWALs" | ".logs" | ".oldlogs"
    ) || (in_edits && !key.ends_with(".seqid"));
    transient || (in_edits && key.ends_with(".temp")) || (!wals && wal)
}

/// Bytes of new content the activity wrote in what a copy holds (WALs and transient folders
/// are left out, as by `hbcp copy`, `sync` and `backup`).
pub fn new_bytes(act: &hbcp_testkit::activity::Activity) -> u64 {
    act.written
        .iter()
        .filter(|(k, _)| !hbase_copy_leaves_out(k, false))
        .map(|w| w.1)
        .sum()
}

/// What `hbcp copy SRC` puts at the target: the source's digest, less what the HBase rules
/// leave out when SRC is an HBase root (a folder with `hbase.version`).
pub fn expected_copy(src: &Path) -> BTreeMap<String, (bool, u64, u64)> {
    expected_copy_of(src, false)
}

/// [`expected_copy`], with the WALs when `wals` (`--allow-unflushed`).
pub fn expected_copy_of(src: &Path, wals: bool) -> BTreeMap<String, (bool, u64, u64)> {
    let d = digest(src);
    if !src.join("hbase.version").is_file() {
        return d;
    }
    d.into_iter()
        .filter(|(k, _)| !hbase_copy_leaves_out(k, wals))
        .collect()
}

/// Assert that `b` is what `hbcp copy a b --allow-unflushed` leaves (the WALs included).
pub fn assert_same_copy_with_wals(a: &Path, b: &Path) {
    assert_trees(expected_copy_of(a, true), digest(b));
}

/// Assert that `b` is what `hbcp copy a b` leaves: [`expected_copy`] of `a`, byte for byte.
pub fn assert_same_tree(a: &Path, b: &Path) {
    assert_trees(expected_copy(a), digest(b));
}

/// Assert two trees hold exactly the same entries, byte for byte (no HBase rules: `sync`).
pub fn assert_identical_trees(a: &Path, b: &Path) {
    assert_trees(digest(a), digest(b));
}

fn assert_trees(da: BTreeMap<String, (bool, u64, u64)>, db: BTreeMap<String, (bool, u64, u64)>) {
    let missing: Vec<&String> = da.keys().filter(|k| !db.contains_key(*k)).collect();
    let extra: Vec<&String> = db.keys().filter(|k| !da.contains_key(*k)).collect();
    let differ: Vec<&String> = da
        .iter()
        .filter(|(k, v)| db.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "trees differ: missing {missing:?}, extra {extra:?}, differ {differ:?}"
    );
    assert!(!da.is_empty(), "empty tree compared");
}

/// Files at their final names under `root` that look like hbcp staging files.
pub fn staging_leftovers_outside_hbcp(root: &Path) -> Vec<String> {
    digest(root)
        .keys()
        .filter(|k| k.ends_with(".part") || k.contains("hbcp-tmp"))
        .cloned()
        .collect()
}

/// A small tree with sizes at the range boundaries for `range`, names HBase uses, an empty file
/// and an empty directory.
pub fn boundary_tree(root: &Path, range: u64) {
    let fam = root.join("data/default/t1/0123456789abcdef0123456789abcdef/cf");
    fs::create_dir_all(&fam).unwrap();
    let sizes = [0, 1, range - 1, range, range + 1, 3 * range, 3 * range + 7];
    for (i, sz) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*sz)
            .map(|j| ((j * 31 + i as u64 * 7) % 253) as u8)
            .collect();
        fs::write(fam.join(format!("{i:032x}")), data).unwrap();
    }
    let wal = root.join("WALs/host%2C16020%2C1700000000000");
    fs::create_dir_all(&wal).unwrap();
    fs::write(
        wal.join("host%2C16020%2C1700000000000.1700000000001"),
        // A closed WAL without entries: magic, an empty header, an empty trailer, its size and
        // the closing magic (a WAL the preflight can read; a garbage one holds the copy).
        b"PWAL\x00\x00\x00\x00\x00LAWP",
    )
    .unwrap();
    fs::write(
        root.join("data/default/t1/0123456789abcdef0123456789abcdef/cf/t2=abc-def#123"),
        b"",
    )
    .unwrap();
    fs::write(root.join("name with spaces ü=x"), b"unicode").unwrap();
    fs::create_dir_all(
        root.join("data/default/t1/0123456789abcdef0123456789abcdef/recovered.edits"),
    )
    .unwrap();
    fs::write(root.join("hbase.version"), b"PBUF\x0a\x018").unwrap();
}

/// The edits only in WALs of a `preflight --report` JSON: (table, family, WAL sequence id),
/// sorted.
pub fn unflushed_of(j: &serde_json::Value) -> Vec<(String, String, u64)> {
    let mut u: Vec<(String, String, u64)> = j["unflushed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["table"].as_str().unwrap().to_string(),
                u["family"].as_str().unwrap().to_string(),
                u["wal_max_seq_id"].as_u64().unwrap(),
            )
        })
        .collect();
    u.sort();
    u
}
