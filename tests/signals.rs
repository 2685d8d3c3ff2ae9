//! SIGINT / SIGTERM: stop taking work, flush the journal, exit 3 with the command to resume;
//! the same command then finishes. The resume line never holds a secret (issue #17, item 12).

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::util::*;

/// `hbcp ARGS… --progress json` started, once its first progress line is out (the copy is under
/// way): the child, its stdout after that line.
fn under_way(args: &[&str]) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = Command::new(bin())
        .args(args)
        .args(["--progress", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("\"event\":\"progress\""), "{line}");
    (child, out, line)
}

/// Send `signal` to our own child.
fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, signal) };
}

fn interrupted_then_resumed(sig: i32) {
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
    let (mut child, _out, _) = under_way(&[
        "copy",
        &s(&src),
        &s(&dst),
        "--max-bandwidth",
        "1MiB",
        "--workers",
        "2",
    ]);
    self::signal(&child, sig);
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

/// A valid account SAS of Azurite's `devstoreaccount1` (its well-known, public key), signed
/// by Python's standard library as Azure specifies the string to sign (not by hbcp's code).
fn azurite_sas() -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            r#"import base64, hmac, hashlib, urllib.parse
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
p = dict(sv="2021-08-06", ss="b", srt="sco", sp="rwdlacup", se="2099-01-01T00:00:00Z", spr="https,http")
to_sign = "\n".join(["devstoreaccount1", p["sp"], p["ss"], p["srt"], "", p["se"], "", p["spr"], p["sv"], "", ""])
p["sig"] = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(p))"#,
        )
        .output()
        .expect("python3");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Issue #17 item 12: a SIGINT'd copy to a URL that carries its SAS prints the resume line with
/// the signature redacted, and the signature appears in no output, report, journal or state
/// file.
#[test]
fn copy_to_a_sas_url_interrupted_by_sigint_prints_no_signature() {
    let Some(base) = crate::cloud::azurite() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let fam = src.join("data/default/t/0123456789abcdef0123456789abcdef/f");
    fs::create_dir_all(&fam).unwrap();
    for i in 0..32u32 {
        fs::write(fam.join(format!("{i:032x}")), vec![i as u8; 64 * 1024]).unwrap();
    }
    let sas = azurite_sas();
    let sig = sas
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .unwrap()
        .to_string();
    // The signature as it may be printed: URL-encoded in the query, or decoded.
    let sig_plain = sig
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let url = format!(
        "{}?{sas}",
        crate::cloud::container(&base, "devstoreaccount1", "sas")
    );
    let (rep, state) = (t.path().join("r.json"), t.path().join("state"));
    // 2 MiB at 256 KiB/s: the signal lands mid-copy.
    let (mut child, mut out, first) = under_way(&[
        "copy",
        &s(&src),
        &url,
        "--max-bandwidth",
        "256KiB",
        "--workers",
        "2",
        "--report",
        &s(&rep),
        "--state",
        &s(&state),
    ]);
    signal(&child, libc::SIGINT);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let mut outputs = vec![first + &rest, err.clone()];
    outputs.extend(crate::cloud::written(&[&rep], &state));
    assert!(outputs.len() > 3, "the report and the journal were read");
    for (i, o) in outputs.iter().enumerate() {
        assert!(
            !o.contains(&sig) && !o.contains(&sig_plain),
            "output {i} holds the SAS signature:\n{o}"
        );
    }
    assert_eq!(status.code(), Some(3), "{err}");
    let resume = err
        .split("interrupted; resume with:\n")
        .nth(1)
        .unwrap_or_default();
    assert!(
        resume
            .lines()
            .next()
            .is_some_and(|l| l.contains("sig=REDACTED")),
        "the resume line names the URL, redacted: {err}"
    );
    assert!(
        err.contains("AZURE_STORAGE_SAS_TOKEN"),
        "says how to give the SAS again: {err}"
    );
}

/// Issue #17 item 14: `hbcp verify … | head -1` — the reader leaves after one line; hbcp ends
/// quietly (no panic, not 101) with the status of an interrupted run.
#[test]
fn verify_into_a_pipe_closed_after_one_line_ends_quietly() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    let fam = src.join("data/default/t/0123456789abcdef0123456789abcdef/f");
    fs::create_dir_all(&fam).unwrap();
    fs::create_dir_all(&dst).unwrap();
    // 3000 missing files: ~250 KB of "missing: …" lines, more than a pipe holds (64 KiB).
    for i in 0..3000u32 {
        fs::write(fam.join(format!("{i:032x}")), b"x").unwrap();
    }
    let mut child = Command::new(bin())
        .args(["verify", &s(&src), &s(&dst), "--progress", "none"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "verify printed a first line");
    drop(out); // `head -1` exits.
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(status.code(), Some(101), "{err}");
    assert_eq!(status.code(), Some(3), "{err}");
}

/// A copy of one 4 MiB file at 32 KiB/s, under way: each 1 MiB chunk waits ~32 s for the
/// bandwidth.
fn throttled_copy(t: &std::path::Path) -> (Child, BufReader<ChildStdout>, std::path::PathBuf) {
    let (src, dst) = (t.join("src"), t.join("dst"));
    fs::create_dir_all(&src).unwrap();
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 9) as u8)
        .collect();
    fs::write(src.join("big"), data).unwrap();
    let (child, out, _) = under_way(&["copy", &s(&src), &s(&dst), "--max-bandwidth", "32KiB"]);
    (child, out, dst)
}

/// Issue #17 item 15: SIGTERM during a throttled copy no longer waits for the ranges in flight
/// (`--max-bandwidth 1` ran 12 minutes past `timeout 120`): exit 3 within a few seconds, saying
/// so, nothing partial visible; the same command then finishes.
#[test]
fn sigterm_during_a_throttled_copy_stops_within_seconds() {
    let t = tempfile::tempdir().unwrap();
    let (mut child, _out, dst) = throttled_copy(t.path());
    signal(&child, libc::SIGTERM);
    let t0 = std::time::Instant::now();
    let status = ends_within(&mut child, 10);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let status = status.unwrap_or_else(|| panic!("still running 10 s after SIGTERM: {err}"));
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("interrupted; resume with"), "{err}");
    assert!(!dst.join("big").exists(), "no partial file visible");
    assert!(
        !err.contains("failed:"),
        "an abandoned range is not a failure: {err}"
    );
}

/// A second signal ends the run at once, exit 3, with the resume line.
#[test]
fn a_second_signal_stops_at_once_with_the_resume_line() {
    let t = tempfile::tempdir().unwrap();
    let (mut child, _out, dst) = throttled_copy(t.path());
    let mut err = BufReader::new(child.stderr.take().unwrap());
    signal(&child, libc::SIGINT);
    let t0 = std::time::Instant::now();
    // The first signal is acknowledged at once; then the second.
    let mut text = String::new();
    while !text.contains("a second signal stops at once") {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            break;
        }
        text.push_str(&l);
    }
    signal(&child, libc::SIGINT);
    let status = ends_within(&mut child, 10).expect("ended after the second signal");
    std::io::Read::read_to_string(&mut err, &mut text).unwrap();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}: {text}",
        t0.elapsed()
    );
    assert!(
        text.contains("a second signal stops at once"),
        "the first signal is acknowledged: {text}"
    );
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(text.contains("resume with:"), "{text}");
    assert!(!dst.join("big").exists(), "no partial file visible");
}
