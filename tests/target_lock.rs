//! One run at a time per target (issue 17, item 5): a second run against a target that a
//! live run holds is refused (exit 2, one line naming the holder) while the first completes
//! exactly; a hold whose run is gone is taken over and said so. On local disk and on Azurite.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::azure_auth::{KEY, sdk};
use crate::cloud::{azurite, container};
use crate::util::*;

/// A source big enough that a copy throttled to 8 MB/s takes a few seconds.
fn slow_source(root: &Path) {
    fs::create_dir_all(root.join("d")).unwrap();
    for i in 0..4u8 {
        let data: Vec<u8> = (0..8u32 << 20)
            .map(|x| (x as u8).wrapping_mul(i + 1))
            .collect();
        fs::write(root.join(format!("d/f{i}")), data).unwrap();
    }
}

fn spawn_copy(src: &str, dst: &str) -> Child {
    Command::new(bin())
        .args([
            "copy",
            src,
            dst,
            "--progress",
            "none",
            "--max-bandwidth",
            "8MB/s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait (bounded) until `held` says the first run holds its lock.
fn until_held(what: &str, held: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !held() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the first run never held {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn host() -> String {
    hbcp_engine::lock::hostname()
}

/// The second run's refusal: exit 2, one line, naming host, pid and start.
fn assert_refused(r: &Run, pid: u32) {
    assert_eq!(r.code, 2, "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{r:?}");
    assert!(lines[0].contains("in use by another run"), "{r:?}");
    assert!(lines[0].contains(&format!("pid {pid}")), "{r:?}");
    assert!(lines[0].contains(&format!("host {}", host())), "{r:?}");
    assert!(lines[0].contains("started 20"), "{r:?}");
}

#[test]
fn a_second_copy_to_a_local_target_is_refused_while_the_first_completes_exactly() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    slow_source(&src);
    let first = spawn_copy(&s(&src), &s(&dst));
    let pid = first.id();
    let lock = dst.join(".hbcp/lock");
    until_held("the local lock", || {
        fs::read_to_string(&lock).is_ok_and(|x| x.contains(&format!("\"pid\":{pid}")))
    });
    let second = copy(&src, &dst, &[]);
    let first = to_run(first.wait_with_output().unwrap());
    assert_refused(&second, pid);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains("complete and verified"), "{first:?}");
    assert_same_tree(&src, &dst);
    // Released: the next run takes it without a word about a stale lock.
    let again = copy(&src, &dst, &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!again.stderr.contains("took over"), "{again:?}");
}

#[test]
fn a_local_lock_left_by_a_killed_run_is_taken_over_and_said_so() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    // A run killed with -9 leaves its name in the lock but holds no flock any more.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    fs::create_dir_all(dst.join(".hbcp")).unwrap();
    fs::write(
        dst.join(".hbcp/lock"),
        format!(
            r#"{{"host":"{}","pid":{dead},"started":"2026-01-01T00:00:00Z","command":"copy"}}"#,
            host()
        ),
    )
    .unwrap();
    let r = copy(&src, &dst, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "took over the lock of a run that is gone (hbcp copy on host {}, pid {dead}, started 2026-01-01T00:00:00Z)",
            host()
        )),
        "{r:?}"
    );
    assert_same_tree(&src, &dst);
    assert_eq!(fs::read(dst.join(".hbcp/lock")).unwrap(), b"", "released");
}

fn azure_store(url: &str) -> std::sync::Arc<dyn hbcp_store::Store> {
    let u = hbcp_store::StoreUrl::parse(url, true).unwrap();
    let opts = hbcp_store_cloud::CloudOptions {
        allow_http: true,
        create_container: true,
        ..Default::default()
    };
    hbcp_store_cloud::open(&u, &opts).unwrap().0
}

#[test]
fn a_second_copy_to_an_azurite_target_is_refused_while_the_first_completes_exactly() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    slow_source(&src);
    let blob = container(&base, "devstoreaccount1", "lock");
    let store = azure_store(&blob);
    let first = spawn_copy(&s(&src), &blob);
    let pid = first.id();
    until_held("the lock blob", || {
        store
            .get_versioned(".hbcp/lock")
            .unwrap()
            .is_some_and(|(d, _)| String::from_utf8_lossy(&d).contains(&format!("\"pid\":{pid}")))
    });
    let second = copy(&src, Path::new(&blob), &[]);
    let first = to_run(first.wait_with_output().unwrap());
    assert_refused(&second, pid);
    assert_eq!(first.code, 0, "{first:?}");
    // Exactly the source, read back through hbcp to a fresh local folder and compared there.
    let back = t.path().join("back");
    assert_eq!(copy(Path::new(&blob), &back, &[]).code, 0);
    assert_same_tree(&src, &back);
    assert!(store.head(".hbcp/lock").unwrap().is_none(), "released");
}

#[test]
fn an_azurite_lock_whose_lease_ran_out_is_taken_over_and_said_so() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    let blob = container(&base, "devstoreaccount1", "stale");
    let store = azure_store(&blob);
    let stale = r#"{"host":"elsewhere","pid":7,"started":"2026-01-01T00:00:00Z","command":"copy","expires":1}"#;
    store.put(".hbcp/lock", stale.as_bytes()).unwrap();
    let r = copy(&src, Path::new(&blob), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(
            "took over the lock of a run that is gone (hbcp copy on host elsewhere, pid 7, started 2026-01-01T00:00:00Z)"
        ),
        "{r:?}"
    );
    assert!(store.head(".hbcp/lock").unwrap().is_none(), "released");
    // A live lease (expiring in an hour) is not taken over.
    let live = format!(
        r#"{{"host":"elsewhere","pid":8,"started":"2026-01-01T00:00:00Z","command":"copy","expires":{}}}"#,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600
    );
    store.put(".hbcp/lock", live.as_bytes()).unwrap();
    let r = copy(&src, Path::new(&blob), &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("host elsewhere, pid 8"), "{r:?}");
    assert_eq!(
        store.get_versioned(".hbcp/lock").unwrap().unwrap().0,
        live.as_bytes()
    );
}

/// A run of `args` throttled to 8 MB/s, its output captured.
fn spawn_slow(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .args(["--progress", "none", "--max-bandwidth", "8MB/s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `args` run twice at once against the local target `dst`: the second is refused naming the
/// first, which completes (exit 0); the first run is returned.
fn second_refused(args: &[&str], dst: &Path) -> Run {
    let first = spawn_slow(args);
    let pid = first.id();
    let lock = dst.join(".hbcp/lock");
    until_held("the local lock", || {
        fs::read_to_string(&lock).is_ok_and(|x| x.contains(&format!("\"pid\":{pid}")))
    });
    let second = hbcp(args);
    let first = to_run(first.wait_with_output().unwrap());
    assert_refused(&second, pid);
    assert_eq!(first.code, 0, "{first:?}");
    first
}

#[test]
fn a_second_sync_to_a_local_target_is_refused_while_the_first_completes_exactly() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    slow_source(&src);
    second_refused(&["sync", &s(&src), &s(&dst)], &dst);
    assert_same_tree(&src, &dst);
    assert_eq!(fs::read(dst.join(".hbcp/lock")).unwrap(), b"", "released");
}

#[test]
fn a_second_backup_to_a_local_target_is_refused_while_the_first_completes_exactly() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    slow_source(&src);
    second_refused(&["backup", &s(&src), &s(&dst)], &dst);
    // One generation, and it holds exactly the source.
    let back = t.path().join("back");
    let r = hbcp(["restore", &s(&dst), "--generation", "1", &s(&back)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &back);
    let r = hbcp([
        "restore",
        &s(&dst),
        "--generation",
        "2",
        &s(&t.path().join("b2")),
    ]);
    assert_eq!(r.code, 2, "the refused backup made no generation: {r:?}");
}

#[test]
fn a_second_restore_to_one_local_target_is_refused_while_the_first_completes_exactly() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst, out) = (
        t.path().join("src"),
        t.path().join("dst"),
        t.path().join("out"),
    );
    slow_source(&src);
    let r = hbcp(["backup", &s(&src), &s(&dst), "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    second_refused(&["restore", &s(&dst), "--generation", "1", &s(&out)], &out);
    assert_same_tree(&src, &out);
}

#[test]
fn a_lease_lost_to_another_writer_stops_the_copy_resumably_on_azurite() {
    let Some(base) = azurite() else { return };
    let Some(py) = emulator(
        "HBCP_TEST_PYTHON",
        "the Azure SDK for Python (scripts/azure-sdk.sh)",
    ) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    slow_source(&src);
    let blob = container(&base, "devstoreaccount1", "lease");
    let name = blob.rsplit('/').nth(1).unwrap().to_string();
    let store = azure_store(&blob);
    // A lease of 3 seconds, renewed every second; the copy takes about 8.
    let first = Command::new(bin())
        .args(["copy", &s(&src), &blob, "--progress", "none"])
        .args(["--max-bandwidth", "4MB/s"])
        .env("HBCP_LOCK_LEASE_SECS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = first.id();
    until_held("the lock blob", || {
        store
            .get_versioned(".hbcp/lock")
            .unwrap()
            .is_some_and(|(d, _)| String::from_utf8_lossy(&d).contains(&format!("\"pid\":{pid}")))
    });
    // Another writer replaces the lock behind the run's back (through the SDK, not hbcp): its
    // next renewal finds the lock changed. The holder it names is gone (its lease ran out).
    let other = r#"{"host":"elsewhere","pid":7,"started":"2026-01-01T00:00:00Z","command":"copy","expires":1}"#;
    let other_file = t.path().join("other-lock");
    fs::write(&other_file, other).unwrap();
    let ep = format!("{base}/devstoreaccount1");
    sdk(
        &py,
        &[
            "upload",
            &ep,
            "devstoreaccount1",
            KEY,
            &name,
            "hbase/.hbcp/lock",
            &s(&other_file),
        ],
    );
    let first = to_run(first.wait_with_output().unwrap());
    assert_eq!(first.code, 3, "{first:?}");
    assert!(first.stderr.contains("lease is lost"), "{first:?}");
    assert!(first.stderr.contains("resume with"), "{first:?}");
    assert!(!first.stderr.contains("complete and verified"), "{first:?}");
    assert_eq!(
        store.get_versioned(".hbcp/lock").unwrap().unwrap().0,
        other.as_bytes(),
        "the lock another run wrote is left to it"
    );
    // The same command again takes the (stale) lock over and completes: the SDK reads back
    // exactly the source.
    let again = copy(&src, Path::new(&blob), &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("took over"), "{again:?}");
    assert_eq!(
        sdk(
            &py,
            &["digest", &ep, "devstoreaccount1", KEY, &name, "hbase"]
        ),
        sdk(&py, &["local", &s(&src)])
    );
}

#[test]
fn finalize_is_refused_while_another_run_holds_the_target_and_writes_after() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let t = tempfile::tempdir().unwrap();
    let (src, dst, plan) = (
        t.path().join("src"),
        t.path().join("dst"),
        t.path().join("p.plan"),
    );
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..5u8 {
        fs::write(src.join(format!("d/f{i}")), vec![i; 1000]).unwrap();
    }
    let r = hbcp(["plan", &s(&src), &s(&dst), "--out", &s(&plan)]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = hbcp(["run", &s(&plan), "--shard", "0/1", "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    // A live holder: this process, holding the lock file's flock with its name in it.
    let mut held = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst.join(".hbcp/lock"))
        .unwrap();
    let me = std::process::id();
    write!(
        held,
        r#"{{"host":"{}","pid":{me},"started":"2026-01-01T00:00:00Z","command":"copy"}}"#,
        host()
    )
    .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let completion = dst.join(".hbcp/manifest.json.zst");
    assert!(!completion.exists());
    let r = hbcp(["finalize", &s(&plan)]);
    assert_refused(&r, me);
    assert!(!completion.exists(), "refused: nothing written");
    // Released (emptied, then closed): finalize goes ahead.
    held.set_len(0).unwrap();
    drop(held);
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(completion.exists(), "{r:?}");
}
