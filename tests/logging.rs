//! `--log-file`, `--log-format`, `-v` and `-q` (issue #20): a run's log names its job and holds
//! what stderr said; it never holds a secret (a SAS signature, an account key), even at the
//! most verbose level; -q takes the progress display away.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

fn tree(src: &Path) {
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..4u8 {
        fs::write(src.join(format!("d/f{i}")), vec![i; 40_000]).unwrap();
    }
}

fn report_job(path: &Path) -> String {
    let j: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    j["job"].as_str().unwrap().to_string()
}

#[test]
fn copy_log_file_names_the_job_in_text_and_json_lines_and_v_shows_it_on_stderr() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src);
    let (log, rep) = (t.path().join("run.log"), t.path().join("r.json"));
    let dst = t.path().join("dst");
    let r = copy(&src, &dst, &["--log-file", &s(&log), "--report", &s(&rep)]);
    assert_eq!(r.code, 0, "{r:?}");
    let job = report_job(&rep);
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("hbcp::job: job {job}: copy ")),
        "{text}"
    );
    // What stderr said is in the log, and nothing more was printed on stderr without -v.
    let summary = r.stderr.lines().last().unwrap();
    assert!(summary.contains("complete and verified"), "{r:?}");
    assert!(text.contains(summary), "{text}");
    assert!(!r.stderr.contains("hbcp::job"), "{r:?}");

    // JSON lines, appended to another file; -v also puts the diagnostics on stderr.
    let jlog = t.path().join("run.jsonl");
    let dst2 = t.path().join("dst2");
    let r = copy(
        &src,
        &dst2,
        &[
            "--log-file",
            &s(&jlog),
            "--log-format",
            "json",
            "-v",
            "--report",
            &s(&rep),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let job2 = report_job(&rep);
    assert!(
        r.stderr.contains(&format!("hbcp::job: job {job2}")),
        "{r:?}"
    );
    let lines: Vec<serde_json::Value> = fs::read_to_string(&jlog)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["target"] == "hbcp::job")
        .expect("the job line");
    assert_eq!(started["fields"]["job"], job2.as_str());
    assert_eq!(started["fields"]["command"], "copy");
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("complete and verified")),
        "{lines:?}"
    );

    // A log file that cannot be opened: one line, exit 2, nothing copied.
    let dst3 = t.path().join("dst3");
    let r = copy(&src, &dst3, &["--log-file", "/nonexistent/dir/run.log"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("--log-file /nonexistent/dir/run.log: cannot be opened"),
        "{r:?}"
    );
    assert!(!dst3.exists(), "{r:?}");
}

/// `-q` with stderr redirected: none of the stats lines `--stats-interval` prints otherwise.
#[test]
fn quiet_copy_prints_no_stats_lines() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), vec![7u8; 3 << 20]).unwrap();
    let run = |quiet: bool, dst: &str| {
        let errs = t.path().join(format!("{dst}.err"));
        let mut c = Command::new(bin());
        c.args(["copy", &s(&src), &s(&t.path().join(dst))]).args([
            "--max-bandwidth",
            "2MiB/s",
            "--stats-interval",
            "200ms",
        ]);
        if quiet {
            c.arg("-q");
        }
        let st = c
            .stdout(Stdio::null())
            .stderr(fs::File::create(&errs).unwrap())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0));
        fs::read_to_string(errs).unwrap()
    };
    let loud = run(false, "a");
    assert!(loud.contains("hbcp: [copy] "), "{loud}");
    let quiet = run(true, "b");
    assert!(
        !quiet.contains("hbcp: [copy] ") && !quiet.contains("[verify]"),
        "{quiet}"
    );
    assert!(quiet.contains("complete and verified"), "{quiet}");
}

/// Through a SAS URL to Azurite, with an account key in the environment too, at -vvv (every
/// diagnostic): neither the signature nor the key is in the log, text or JSON, nor on stderr.
#[test]
fn azurite_log_at_trace_holds_no_sas_signature_nor_account_key() {
    let Some((ep, py)) = crate::azure_auth::setup() else {
        return;
    };
    let key = crate::azure_auth::KEY;
    let c = format!("logs{}", std::process::id());
    crate::azure_auth::sdk(&py, &["create", &ep, crate::azure_auth::ACCOUNT, key, &c]);
    let sas = crate::azure_auth::sdk(
        &py,
        &[
            "sas-container",
            &ep,
            crate::azure_auth::ACCOUNT,
            key,
            &c,
            "racwdl",
            "3600",
        ],
    );
    let sig = sas
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .expect("a signature")
        .to_string();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src);
    for format in ["text", "json"] {
        let log = t.path().join(format!("run.{format}"));
        let rep = t.path().join(format!("r.{format}.json"));
        let dst = format!("{ep}/{c}/{format}?{sas}");
        let o = Command::new(bin())
            .args(["copy", &s(&src), &dst, "-vvv", "--progress", "none"])
            .args([
                "--log-file",
                &s(&log),
                "--log-format",
                format,
                "--report",
                &s(&rep),
            ])
            .env("AZURE_STORAGE_ACCOUNT_KEY", key)
            .output()
            .unwrap();
        let r = to_run(o);
        assert_eq!(r.code, 0, "{r:?}");
        let text = fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(&report_job(&rep)),
            "{format}: no job id in {text}"
        );
        // The log saw the requests (trace level), so it had the chance to leak.
        assert!(text.lines().count() >= 3, "{text}");
        for (what, secret) in [("signature", sig.as_str()), ("key", key)] {
            let decoded = secret
                .replace("%2B", "+")
                .replace("%2F", "/")
                .replace("%3D", "=");
            for s in [secret, decoded.as_str()] {
                assert!(!text.contains(s), "{format}: the {what} is in the log");
                assert!(!r.stderr.contains(s), "{format}: the {what} is on stderr");
            }
        }
    }
}
