//! `hbcp jobs` (list, show, clean): the jobs this machine ran, after a completed run, a run
//! killed with SIGKILL and one stopped by SIGINT; `clean` removes exactly what it says it does
//! (completed jobs only unless `--all`, never a running one, never the copied data); a
//! completed job keeps its record only, not its journal (issue #20).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// A machine of its own: the jobs folder under `state`, nothing in the user's home.
struct Machine {
    state: PathBuf,
    home: PathBuf,
}

impl Machine {
    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("XDG_STATE_HOME", &self.state).env("HOME", &self.home);
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        to_run(self.cmd().args(args).output().unwrap())
    }

    /// `hbcp jobs --json`, by id.
    fn jobs(&self) -> Vec<Value> {
        let r = self.run(&["jobs", "--json"]);
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str::<Value>(&r.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn job(&self, id: &str) -> Value {
        self.jobs()
            .into_iter()
            .find(|j| j["id"] == id)
            .unwrap_or_else(|| panic!("job {id} not listed"))
    }

    /// The record folders of the machine's jobs folder.
    fn records(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.state.join("hbcp/jobs"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `hbcp copy SRC DST ARGS… --progress json` started, once its first progress line is out.
    fn under_way(&self, src: &Path, dst: &Path, extra: &[&str]) -> Child {
        let mut child = self
            .cmd()
            .args(["copy", &s(src), &s(dst), "--progress", "json"])
            .args(["--max-bandwidth", "1MiB", "--workers", "2"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("\"event\":\"progress\""), "{line}");
        child
    }
}

/// 64 files of 64 KiB: about four seconds at 1 MiB/s.
fn slow_tree(root: &Path) -> u64 {
    let d = root.join("d");
    fs::create_dir_all(&d).unwrap();
    for i in 0..64u32 {
        fs::write(d.join(format!("f{i:02}")), vec![(i % 251) as u8; 64 * 1024]).unwrap();
    }
    64 * 64 * 1024
}

/// Files and bytes of a tree outside `.hbcp`, as the file system says.
fn visible(root: &Path) -> (u64, u64) {
    digest(root)
        .values()
        .filter(|v| !v.0)
        .fold((0, 0), |(n, b), v| (n + 1, b + v.1))
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn state_dir(j: &Value) -> PathBuf {
    PathBuf::from(j["state_dir"].as_str().unwrap())
}

#[test]
fn jobs_list_show_clean_after_a_completed_a_killed_and_an_interrupted_copy() {
    let t = tempfile::tempdir().unwrap();
    let m = Machine {
        state: t.path().join("state"),
        home: t.path().join("home"),
    };
    let (small, slow) = (t.path().join("small"), t.path().join("slow"));
    fs::create_dir_all(small.join("a/b")).unwrap();
    fs::write(small.join("a/b/one"), vec![7u8; 300_000]).unwrap();
    fs::write(small.join("a/two"), b"two").unwrap();
    slow_tree(&slow);

    // A dry run records nothing.
    let dry = m.run(&["copy", &s(&small), &s(&t.path().join("d0")), "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(m.records().is_empty(), "{:?}", m.records());

    // Killed (SIGKILL) while running: running, kept by clean --all, then interrupted.
    let killed_dst = t.path().join("killed");
    let mut child = m.under_way(&slow, &killed_dst, &[]);
    let running = m.jobs();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0]["state"], "running", "{running:?}");
    let killed_id = running[0]["id"].as_str().unwrap().to_string();
    let c = m.run(&["jobs", "clean", "--all"]);
    assert_eq!(c.code, 0, "{c:?}");
    assert!(c.stdout.contains("kept 1 running"), "{c:?}");
    assert!(!c.stdout.contains(&killed_id), "{c:?}");
    assert!(state_dir(&running[0]).join("journal.log").exists());
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let killed = m.job(&killed_id);
    assert_eq!(killed["state"], "interrupted", "{killed}");
    assert_eq!(killed["exit_code"], Value::Null);
    // Done = the files its journal holds: whole 64 KiB files, all visible at the target.
    let (files, bytes) = (
        killed["files_done"].as_u64().unwrap(),
        killed["bytes_done"].as_u64().unwrap(),
    );
    assert_eq!(bytes, files * 64 * 1024, "{killed}");
    let (vis_files, vis_bytes) = visible(&killed_dst);
    assert!(files <= vis_files && bytes <= vis_bytes, "{killed}");
    assert!(vis_files < 64, "killed before the end: {vis_files}");
    let show = m.run(&["jobs", "show", &killed_id[..6]]);
    assert_eq!(show.code, 0, "{show:?}");
    assert!(
        show.stdout.contains("state: interrupted (process"),
        "{show:?}"
    );
    assert!(
        show.stdout.contains(&format!(
            "journal: {} records; {files} files durable",
            files + 1
        )),
        "{show:?}"
    );
    assert!(
        show.stdout.contains(&format!(
            "resume with (in {}): ",
            std::env::current_dir().unwrap().display()
        )) && show.stdout.contains(&format!("copy {} ", s(&slow))),
        "{show:?}"
    );

    // Completed: listed with its figures; its journal is gone, its record stays small.
    let done_dst = t.path().join("done");
    let r = m.run(&["copy", &s(&small), &s(&done_dst), "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    let done = m
        .jobs()
        .into_iter()
        .find(|j| j["target"] == s(&done_dst))
        .unwrap();
    let done_id = done["id"].as_str().unwrap().to_string();
    assert!(r.stderr.contains(&format!("job {done_id}")), "{r:?}");
    assert_eq!(done["state"], "completed");
    assert_eq!(done["command"], "copy");
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["source"], s(&small));
    assert_eq!(done["target"], s(&done_dst));
    assert_eq!(done["files_done"], 2);
    assert_eq!(done["bytes_done"], 300_003);
    let done_state = state_dir(&done);
    assert!(
        done_state.starts_with(done_dst.join(".hbcp/jobs")),
        "{done}"
    );
    // The run's checksums are gone (the completion manifest holds them); the journal is packed.
    assert!(!done_state.join("journal.log").exists());
    assert!(!done_state.join("copied.manifest.zst").exists());
    assert!(done_state.join("journal.log.zst").exists());
    assert!(
        done["journal"].as_str().unwrap().starts_with("packed"),
        "{done}"
    );
    // The same copy again unpacks it and trusts it: fewer reads than without it.
    let gets = |name: &str| {
        let rep = t.path().join(name);
        let r = m.run(&[
            "copy",
            &s(&small),
            &s(&done_dst),
            "--progress",
            "none",
            "--report",
            &s(&rep),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        let j: Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
        assert_eq!(j["files_skipped"], 2, "{j}");
        j["latency_by_op_ms"]["get"]["count"].as_u64().unwrap()
    };
    let trusted = gets("again.json");
    assert!(done_state.join("journal.log.zst").exists());
    fs::remove_file(done_state.join("journal.log.zst")).unwrap();
    let hashed = gets("again-without-journal.json");
    assert!(
        trusted < hashed,
        "with the journal {trusted} reads, without {hashed}"
    );
    let record = m.state.join("hbcp/jobs").join(&done_id).join("job.json");
    assert!(fs::metadata(&record).unwrap().len() < 2048);

    // Interrupted by SIGINT into a `--state` folder that holds someone else's file too.
    let int_dst = t.path().join("int");
    let own_state = t.path().join("mystate");
    fs::create_dir_all(&own_state).unwrap();
    fs::write(own_state.join("keep.txt"), b"not hbcp's").unwrap();
    let mut child = m.under_way(&slow, &int_dst, &["--state", &s(&own_state)]);
    signal(&child, libc::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let int = m
        .jobs()
        .into_iter()
        .find(|j| j["target"] == s(&int_dst))
        .unwrap();
    let int_id = int["id"].as_str().unwrap().to_string();
    assert_eq!(int["state"], "interrupted");
    assert_eq!(int["exit_code"], 3);
    assert_eq!(int["last_error"], "interrupted");
    assert_eq!(state_dir(&int), own_state);
    assert!(own_state.join("journal.log").exists());

    // clean: completed only by default, and --dry-run removes nothing.
    let before = m.records();
    assert_eq!(before.len(), 3, "{before:?}");
    let c = m.run(&["jobs", "clean", "--dry-run"]);
    assert_eq!(c.code, 0, "{c:?}");
    let named: Vec<&str> = c.stdout.lines().filter(|l| l.contains(" job ")).collect();
    assert_eq!(named.len(), 1, "{c:?}");
    assert!(
        named[0].starts_with(&format!("would remove job {done_id} ")),
        "{c:?}"
    );
    assert!(
        c.stdout
            .contains("kept 2 failed or interrupted (--all removes them)"),
        "{c:?}"
    );
    assert_eq!(m.records(), before);
    assert!(done_state.join("journal.log.zst").exists());
    // Nothing is older than an hour.
    let c = m.run(&["jobs", "clean", "--older-than", "1h", "--all"]);
    assert!(c.stdout.contains("removed 0 jobs"), "{c:?}");
    assert!(c.stdout.contains("kept 3 newer than --older-than"), "{c:?}");
    assert_eq!(m.records(), before);
    let c = m.run(&["jobs", "clean"]);
    assert_eq!(c.code, 0, "{c:?}");
    assert!(
        c.stdout.contains(&format!("removed job {done_id} ")),
        "{c:?}"
    );
    assert!(c.stdout.contains("removed 1 job,"), "{c:?}");
    let mut left = before.clone();
    left.retain(|id| *id != done_id);
    assert_eq!(m.records(), left);
    assert!(!done_state.exists());
    // The copied data stays.
    assert_same_tree(&small, &done_dst);

    // --all: the interrupted ones too; a --state folder keeps what is not hbcp's.
    let killed_state = state_dir(&m.job(&killed_id));
    let c = m.run(&["jobs", "clean", "--all"]);
    assert_eq!(c.code, 0, "{c:?}");
    assert!(c.stdout.contains("removed 2 jobs,"), "{c:?}");
    assert!(
        c.stdout.contains(&killed_id) && c.stdout.contains(&int_id),
        "{c:?}"
    );
    assert!(m.records().is_empty(), "{:?}", m.records());
    assert!(!killed_state.exists());
    assert!(!own_state.join("journal.log").exists());
    assert_eq!(fs::read(own_state.join("keep.txt")).unwrap(), b"not hbcp's");
    assert_eq!(visible(&killed_dst), (vis_files, vis_bytes));

    // An unknown id: one line, exit 2.
    let r = m.run(&["jobs", "show", "nosuchjob"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no such job"), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
}

/// The record, `jobs` and `jobs show` hold no secret: a secret variable's value in a path and
/// in an argument is REDACTED there, as in the resume line.
#[test]
fn jobs_record_and_show_hold_no_secret() {
    const SECRET: &str = "c2VjcmV0LWtleS0xMjM0NQ";
    let t = tempfile::tempdir().unwrap();
    let m = Machine {
        state: t.path().join("state"),
        home: t.path().join("home"),
    };
    let src = t.path().join(format!("src-{SECRET}"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    let dst = t.path().join("dst");
    let r = to_run(
        m.cmd()
            .env("AZURE_STORAGE_KEY", SECRET)
            .args(["copy", &s(&src), &s(&dst), "--progress", "none"])
            .args(["--exclude", &format!("*{SECRET}*")])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(dst.join("f")).unwrap(), b"data");
    let j = m.jobs();
    assert_eq!(j.len(), 1, "{j:?}");
    let id = j[0]["id"].as_str().unwrap();
    let record = fs::read_to_string(m.state.join("hbcp/jobs").join(id).join("job.json")).unwrap();
    let show = m.run(&["jobs", "show", id]);
    for (what, text) in [
        ("job.json", record.as_str()),
        ("jobs --json", &j[0].to_string()),
        ("jobs show", &show.stdout),
        ("jobs", &m.run(&["jobs"]).stdout),
    ] {
        assert!(!text.contains(SECRET), "{what}: {text}");
        assert!(text.contains("REDACTED"), "{what}: {text}");
    }
}
