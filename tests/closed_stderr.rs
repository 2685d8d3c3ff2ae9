//! A closed standard error never changes how a run ends (issue 17): `eprintln!` panics (exit
//! 101) when stderr is a pipe whose reader has gone, and with `2>&-` the first file hbcp opens
//! would take descriptor 2 and receive its diagnostics. Both runs end as with a live stderr.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

fn tree(root: &Path) {
    fs::create_dir_all(root.join("d")).unwrap();
    for i in 0..20u32 {
        fs::write(
            root.join(format!("d/f{i}")),
            vec![i as u8; 3000 + i as usize],
        )
        .unwrap();
    }
}

/// The write end of a pipe whose read end is already closed.
fn widowed_pipe() -> OwnedFd {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills two new descriptors, owned below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are fresh and owned here only.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(r);
    w
}

/// hbcp `args` with stderr on a pipe nobody reads.
fn with_widowed_stderr(args: &[&str]) -> i32 {
    Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::from(widowed_pipe()))
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// hbcp `args` started by a shell with `2>&-`.
fn with_closed_stderr(args: &[&str]) -> i32 {
    Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" "$@" 2>&-"#)
        .arg(bin())
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

#[test]
fn a_closed_stderr_pipe_ends_each_run_with_its_own_status() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    tree(&src);
    // A copy prints its header and its verdict on stderr: 0, and the target is exact.
    assert_eq!(
        with_widowed_stderr(&["copy", &s(&src), &s(&dst), "--progress", "none"]),
        0
    );
    assert_same_tree(&src, &dst);
    // A verify that finds a difference names it on stderr: 1.
    fs::write(dst.join("d/f3"), b"changed").unwrap();
    assert_eq!(with_widowed_stderr(&["verify", &s(&src), &s(&dst)]), 1);
    // Bad input: its one line on stderr, 2.
    assert_eq!(
        with_widowed_stderr(&["copy", &s(&t.path().join("nope")), &s(&dst)]),
        2
    );
}

#[test]
fn a_closed_stderr_descriptor_ends_each_run_with_its_own_status_and_no_file_takes_it() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    tree(&src);
    assert_eq!(
        with_closed_stderr(&["copy", &s(&src), &s(&dst), "--progress", "none"]),
        0
    );
    assert_same_tree(&src, &dst);
    // Nothing hbcp meant for stderr landed in a file it opened: the lock, the journal and the
    // completion manifest read back, so the next run finds nothing to do and verifies.
    let lock = fs::read(dst.join(".hbcp/lock")).unwrap();
    assert!(lock.is_empty(), "{}", String::from_utf8_lossy(&lock));
    let again = copy(&src, &dst, &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("complete and verified"), "{again:?}");
    assert!(!again.stderr.contains("took over"), "{again:?}");
    let r = hbcp(["verify", &s(&src), &s(&dst)]);
    assert_eq!(r.code, 0, "{r:?}");
    fs::write(dst.join("d/f3"), b"changed").unwrap();
    assert_eq!(with_closed_stderr(&["verify", &s(&src), &s(&dst)]), 1);
    assert_eq!(
        with_closed_stderr(&["copy", &s(&t.path().join("nope")), &s(&dst)]),
        2
    );
}
