//! SIGINT / SIGTERM: stop taking work, flush the journal, exit 3 with the command to resume;
//! the same command then finishes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::util::*;

fn interrupted_then_resumed(signal: i32) {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    let fam = src.join("data/default/t/0123456789abcdef0123456789abcdef/f");
    fs::create_dir_all(&fam).unwrap();
    for i in 0..64u32 {
        fs::write(
            fam.join(format!("{i:032x}")),
            vec![(i % 251) as u8; 64 * 1024],
        )
        .unwrap();
    }
    // 4 MiB at 1 MiB/s: about four seconds, so the signal lands mid-copy.
    let mut child = Command::new(bin())
        .args([
            "copy",
            &s(&src),
            &s(&dst),
            "--progress",
            "json",
            "--max-bandwidth",
            "1MiB",
            "--workers",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first progress line: the copy is under way.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("\"event\":\"progress\""), "{line}");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("interrupted; resume with"), "{err}");
    assert!(
        err.contains("hbcp copy") || err.contains("hbcp\" copy") || err.contains(" copy "),
        "{err}"
    );
    assert!(
        !dst.join(".hbcp/manifest.json.zst").exists(),
        "not complete, so no manifest"
    );
    // Whatever is visible is whole.
    for (k, v) in digest(&dst) {
        assert_eq!(
            digest(&src).get(&k),
            Some(&v),
            "{k} is visible but not whole"
        );
    }
    let r = copy(&src, &dst, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &dst);
}

#[test]
fn copy_interrupted_by_sigint_exits_3_and_resumes() {
    interrupted_then_resumed(libc::SIGINT);
}

#[test]
fn copy_interrupted_by_sigterm_exits_3_and_resumes() {
    interrupted_then_resumed(libc::SIGTERM);
}
