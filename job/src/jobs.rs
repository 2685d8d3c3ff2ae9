//! The jobs this machine ran or runs (`hbcp jobs`, `jobs show ID`, `jobs clean`), as AzCopy's
//! `jobs list/show/clean`. Every copying run (copy, run, sync, backup, restore; never a dry run)
//! keeps a small record, `job.json`, in the machine's jobs folder
//! (`$XDG_STATE_HOME/hbcp/jobs/<job>/`, else `~/.local/state/hbcp/jobs/<job>/`): its command,
//! source and target (as displayed: secrets redacted), state folder, state, times, figures, last
//! error and resume line (redacted). A job whose state folder is at a local target
//! (`DST/.hbcp/jobs/<job>/`) or elsewhere (`--state`) is found through this record.
//!
//! A run that ends complete and verified removes its run's checksums (the completion manifest at
//! the target holds every file's size and checksum) and packs its journal (zstd: about 46 bytes
//! per file instead of 227 with the checksums), which the next run of the job unpacks, so that
//! a rerun still trusts it. A process that died (kill -9) leaves
//! its record "running"; it is shown interrupted once its process is gone.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use hbcp_engine::Stats;
use hbcp_state::time::now_rfc3339;
use serde::{Deserialize, Serialize};

use crate::report::bytes;
use crate::spec::{JobsAction, JobsSpec};
use crate::{Exit, usage};

/// The record's format name.
const FORMAT: &str = "hbcp-job";
/// The record's file name in the job's folder of the machine's jobs folder.
const RECORD: &str = "job.json";
/// The files hbcp writes in a state folder given with `--state` (only these are removed from
/// such a folder: it may hold someone else's files too).
const STATE_FILES: &[&str] = &[
    RECORD,
    "journal.log",
    "journal.log.zst",
    "copied.manifest.zst",
    "completion.manifest.zst",
];

/// One job's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    format: String,
    /// The job's id (its state folder's name).
    id: String,
    /// The command (copy, run, sync, backup, restore).
    command: String,
    /// The source as displayed (secrets redacted).
    source: String,
    /// The target as displayed (secrets redacted).
    target: String,
    /// Where its journal lives.
    state_dir: PathBuf,
    /// RFC 3339.
    started: String,
    /// RFC 3339: the last time the record was written.
    updated: String,
    /// running, completed, failed, interrupted.
    state: String,
    /// The process that runs or ran it.
    pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat`), so that a new process
    /// given the same pid is not taken for it.
    #[serde(default)]
    pid_start: Option<u64>,
    #[serde(default)]
    exit_code: Option<u8>,
    /// Files and bytes done (copied or already there) when it ended.
    #[serde(default)]
    files_done: Option<u64>,
    #[serde(default)]
    bytes_done: Option<u64>,
    #[serde(default)]
    last_error: Option<String>,
    /// The command line that resumes it, secrets redacted (empty when it does not resume).
    #[serde(default)]
    resume: String,
    /// The folder it ran in (the resume line's relative paths start there).
    #[serde(default)]
    cwd: Option<PathBuf>,
    /// What became of its journal.
    #[serde(default)]
    journal: Option<String>,
}

/// The job this process runs.
struct Live {
    rec: Record,
    path: PathBuf,
    /// The counters of the current copy (a sync's cycle); the previous cycles' figures.
    stats: Arc<Stats>,
    carried: (u64, u64),
    /// The completion manifest was written: the journal is no longer needed.
    completed: bool,
    /// The summary status of a run that did not succeed, and its first problem.
    problem: Option<String>,
}

static LIVE: Mutex<Option<Live>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Option<Live>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The machine's jobs folder: `$XDG_STATE_HOME/hbcp/jobs`, else `~/.local/state/hbcp/jobs`.
pub(crate) fn machine_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".hbcp-state"))
        .join("hbcp")
        .join("jobs")
}

/// This process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn proc_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether the process that ran `r` still runs.
fn alive(r: &Record) -> bool {
    match (r.pid_start, proc_start(r.pid)) {
        (Some(want), Some(now)) => want == now,
        (None, now) => now.is_some() || Path::new(&format!("/proc/{}", r.pid)).exists(),
        (Some(_), None) => false,
    }
}

fn write_record(path: &Path, rec: &Record) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?,
    )?;
    fs::rename(&tmp, path)
}

fn save(l: &Live) {
    if let Err(e) = write_record(&l.path, &l.rec) {
        errln!(
            "hbcp: warning: cannot record the job in {} ({e}); `hbcp jobs` will not list it",
            l.path.display()
        );
    }
}

/// An endpoint as the record shows it: a local folder as an absolute path (the record is read
/// from anywhere), any other URL as displayed; secrets removed from both.
fn shown(u: &hbcp_store::StoreUrl) -> String {
    crate::exit::redact(&match &u.endpoint {
        hbcp_store::Endpoint::Local(p) => std::path::absolute(p)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| u.display.clone()),
        _ => u.display.clone(),
    })
}

/// A copy of `job` is about to write (called by every copying command, once per copy: a sync
/// calls it every cycle): the job is recorded as running, by this process.
pub(crate) fn started(job: &crate::commands::Job, stats: &Arc<Stats>) {
    let mut g = live();
    if let Some(l) = g.as_mut() {
        l.carried.0 += l.stats.files_copied.load(Relaxed) + l.stats.files_skipped.load(Relaxed);
        l.carried.1 += l.stats.bytes_copied.load(Relaxed) + l.stats.bytes_skipped.load(Relaxed);
        l.stats = stats.clone();
        return;
    }
    let pid = std::process::id();
    let rec = Record {
        format: FORMAT.into(),
        id: job.cfg.job.clone(),
        command: job.command.clone(),
        source: shown(&job.src.url),
        target: shown(&job.dst.url),
        state_dir: std::path::absolute(&job.cfg.state_dir).unwrap_or(job.cfg.state_dir.clone()),
        started: job.cfg.started.clone(),
        updated: now_rfc3339(),
        state: "running".into(),
        pid,
        pid_start: proc_start(pid),
        exit_code: None,
        files_done: None,
        bytes_done: None,
        last_error: None,
        resume: crate::exit::resume_line().0,
        cwd: std::env::current_dir().ok(),
        journal: None,
    };
    let l = Live {
        path: machine_dir().join(&rec.id).join(RECORD),
        rec,
        stats: stats.clone(),
        carried: (0, 0),
        completed: false,
        problem: None,
    };
    save(&l);
    *g = Some(l);
}

/// The run's completion manifest is written: once it ends with exit 0, its journal goes.
pub(crate) fn completion_written() {
    if let Some(l) = live().as_mut() {
        l.completed = true;
    }
}

/// The run did not succeed: its summary status and first problem, for `hbcp jobs show`.
pub(crate) fn problem(status: &str, first: Option<String>) {
    if let Some(l) = live().as_mut() {
        l.problem = Some(crate::exit::redact(&match first {
            Some(f) => format!("{status}: {f}"),
            None => status.to_string(),
        }));
    }
}

/// The run of this process ended with `exit` (and `error`, the line that ended it): its record
/// says so; a verified completion's journal is removed.
pub(crate) fn ended(exit: Exit, error: Option<&str>) {
    let Some(mut l) = live().take() else {
        return;
    };
    let r = &mut l.rec;
    r.state = match exit {
        Exit::Ok => "completed",
        Exit::Interrupted => "interrupted",
        Exit::Failed | Exit::Usage => "failed",
    }
    .into();
    r.exit_code = Some(exit.code());
    r.updated = now_rfc3339();
    r.files_done = Some(
        l.carried.0 + l.stats.files_copied.load(Relaxed) + l.stats.files_skipped.load(Relaxed),
    );
    r.bytes_done = Some(
        l.carried.1 + l.stats.bytes_copied.load(Relaxed) + l.stats.bytes_skipped.load(Relaxed),
    );
    r.last_error = match exit {
        Exit::Ok => None,
        _ => error.map(str::to_string).or(l.problem.clone()),
    };
    if exit == Exit::Ok && l.completed {
        // The run's checksums are in the completion manifest at the target; the journal is
        // packed, so that a rerun still trusts it (a server-side copy is not read again).
        let _ = fs::remove_file(r.state_dir.join("copied.manifest.zst"));
        r.journal = Some(match hbcp_state::journal::pack(&r.state_dir) {
            Ok((before, after)) => format!(
                "packed after the verified completion: {} ({} before); the next run of the job \
                 unpacks it",
                bytes(after),
                bytes(before)
            ),
            Err(e) => format!("not packed: {e}"),
        });
    }
    save(&l);
}

/// The process ends at once with `code` (its standard output was closed under it): the record
/// says how it ended.
pub(crate) fn ended_quietly(code: u8) {
    let exit = match code {
        0 => Exit::Ok,
        1 => Exit::Failed,
        2 => Exit::Usage,
        _ => Exit::Interrupted,
    };
    // The run's own outcome, when it had one, says more than the closed output.
    let known = live().as_ref().is_some_and(|l| l.problem.is_some());
    ended(exit, (!known).then_some("standard output was closed"));
}

/// A record read back, with where it was found.
struct Found {
    rec: Record,
    folder: PathBuf,
}

impl Found {
    /// The state as shown: a running record whose process is gone was interrupted.
    fn state(&self) -> String {
        if self.rec.state == "running" && !alive(&self.rec) {
            "interrupted".into()
        } else {
            self.rec.state.clone()
        }
    }

    fn running(&self) -> bool {
        self.state() == "running"
    }

    fn journal(&self) -> PathBuf {
        self.rec.state_dir.join("journal.log")
    }

    /// Files and bytes done: the figures of its end, else what its journal says is durable.
    fn done(&self) -> Option<(u64, u64)> {
        match (self.rec.files_done, self.rec.bytes_done) {
            (Some(f), Some(b)) if !self.running() => Some((f, b)),
            _ => hbcp_state::journal::load(&self.journal(), &self.rec.id)
                .ok()
                .map(|(r, _)| (r.files, r.file_bytes)),
        }
    }

    /// How long ago it was last written.
    fn age(&self) -> Duration {
        humantime::parse_rfc3339(&self.rec.updated)
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default()
    }
}

/// Every record in the machine's jobs folder, oldest first.
fn all() -> Vec<Found> {
    let dir = machine_dir();
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let folder = e.path();
        let Ok(text) = fs::read(folder.join(RECORD)) else {
            continue;
        };
        match serde_json::from_slice::<Record>(&text) {
            Ok(rec) if rec.format == FORMAT => out.push(Found { rec, folder }),
            _ => errln!(
                "hbcp: warning: {} is not a job record; skipped",
                folder.join(RECORD).display()
            ),
        }
    }
    out.sort_by(|a, b| (&a.rec.started, &a.rec.id).cmp(&(&b.rec.started, &b.rec.id)));
    out
}

/// Bytes under `p` (a file or a folder).
fn size_of(p: &Path) -> u64 {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| size_of(&e.path()))
            .sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// `hbcp jobs`.
pub(crate) fn jobs(a: JobsSpec) -> Result<Exit> {
    match a.action {
        JobsAction::List { json } => list(json),
        JobsAction::Show { id, json } => show(&id, json),
        JobsAction::Clean {
            older_than,
            all,
            dry_run,
        } => clean(older_than, all, dry_run),
    }
}

fn json_of(f: &Found) -> serde_json::Value {
    let done = f.done();
    serde_json::json!({
        "id": f.rec.id, "command": f.rec.command, "source": f.rec.source,
        "target": f.rec.target, "state": f.state(), "started": f.rec.started,
        "updated": f.rec.updated, "exit_code": f.rec.exit_code,
        "files_done": done.map(|d| d.0), "bytes_done": done.map(|d| d.1),
        "state_dir": f.rec.state_dir, "state_bytes": size_of(&f.rec.state_dir),
        "journal": f.rec.journal, "last_error": f.rec.last_error, "resume": f.rec.resume,
        "cwd": f.rec.cwd,
    })
}

fn list(json: bool) -> Result<Exit> {
    let found = all();
    if json {
        let v: Vec<_> = found.iter().map(json_of).collect();
        outln!("{}", serde_json::Value::Array(v));
        return Ok(Exit::Ok);
    }
    if found.is_empty() {
        outln!("no jobs in {}", machine_dir().display());
        return Ok(Exit::Ok);
    }
    outln!(
        "{:<20} {:<8} {:<12} {:<21} {:>11}  SOURCE -> TARGET",
        "ID",
        "COMMAND",
        "STATE",
        "STARTED",
        "DONE"
    );
    for f in &found {
        let done = f.done().map(|d| bytes(d.1)).unwrap_or_else(|| "?".into());
        outln!(
            "{:<20} {:<8} {:<12} {:<21} {:>11}  {} -> {}",
            f.rec.id,
            f.rec.command,
            f.state(),
            f.rec.started,
            done,
            f.rec.source,
            f.rec.target
        );
    }
    Ok(Exit::Ok)
}

/// The record whose id is `id` or starts with it (one only).
fn find(id: &str) -> Result<Found> {
    let mut hits: Vec<Found> = all()
        .into_iter()
        .filter(|f| f.rec.id.starts_with(id))
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => usage(format!(
            "jobs show {id}: no such job in {}; `hbcp jobs` lists them",
            machine_dir().display()
        )),
        n => usage(format!(
            "jobs show {id}: {n} jobs start with {id:?}; give more of the id"
        )),
    }
}

fn show(id: &str, json: bool) -> Result<Exit> {
    let f = find(id)?;
    if json {
        outln!("{}", json_of(&f));
        return Ok(Exit::Ok);
    }
    let r = &f.rec;
    let state = f.state();
    outln!("job {}: {} {} -> {}", r.id, r.command, r.source, r.target);
    outln!(
        "  state: {state}{}",
        match (r.exit_code, state.as_str()) {
            (Some(c), _) => format!(" (exit {c})"),
            (None, "interrupted") => format!(" (process {} is gone)", r.pid),
            (None, _) => format!(" (process {})", r.pid),
        }
    );
    outln!("  started: {}, last recorded: {}", r.started, r.updated);
    if let Some((files, b)) = f.done() {
        outln!("  done: {files} files, {}", bytes(b));
    }
    outln!(
        "  state folder: {} ({})",
        r.state_dir.display(),
        bytes(size_of(&r.state_dir))
    );
    match &r.journal {
        Some(j) => outln!("  journal: {j}"),
        None => match hbcp_state::journal::load(&f.journal(), &r.id) {
            Ok((j, _)) if f.journal().exists() => outln!(
                "  journal: {} records; {} files durable, {}{}",
                j.records,
                j.files,
                bytes(j.file_bytes),
                match j.dropped_tail {
                    0 => String::new(),
                    n => format!("; a damaged tail of {n} bytes (redone on resume)"),
                }
            ),
            Ok(_) => outln!("  journal: none"),
            Err(e) => outln!("  journal: unreadable ({e})"),
        },
    }
    if let Some(e) = &r.last_error {
        outln!("  last error: {e}");
    }
    if state != "completed" && state != "running" && !r.resume.is_empty() {
        match &r.cwd {
            Some(d) => outln!("  resume with (in {}): {}", d.display(), r.resume),
            None => outln!("  resume with: {}", r.resume),
        }
    }
    Ok(Exit::Ok)
}

/// Whether `dir` is a state folder hbcp named for job `id` (`…/jobs/<id>`), not one given with
/// `--state`.
fn named_by_hbcp(dir: &Path, id: &str) -> bool {
    dir.file_name().is_some_and(|n| n == id)
        && dir
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == "jobs")
}

/// Remove a job's state folder and record; the bytes freed. A state folder that hbcp named
/// (`…/jobs/<job>`) goes whole; one given with `--state` loses only the files hbcp writes, and
/// goes only when that left it empty.
fn remove(f: &Found) -> u64 {
    let mut freed = 0;
    let sd = &f.rec.state_dir;
    if sd.exists() {
        if named_by_hbcp(sd, &f.rec.id) {
            freed += size_of(sd);
            let _ = fs::remove_dir_all(sd);
        } else {
            for n in STATE_FILES {
                let p = sd.join(n);
                freed += size_of(&p);
                let _ = fs::remove_file(&p);
            }
            let _ = fs::remove_dir(sd);
        }
    }
    if f.folder.exists() {
        freed += size_of(&f.folder);
        let _ = fs::remove_dir_all(&f.folder);
    }
    freed
}

fn clean(older_than: Option<Duration>, all_states: bool, dry_run: bool) -> Result<Exit> {
    let (mut n, mut freed) = (0u64, 0u64);
    let (mut running, mut kept_state, mut newer) = (0u64, 0u64, 0u64);
    let verb = if dry_run { "would remove" } else { "removed" };
    for f in all() {
        let state = f.state();
        if state == "running" {
            running += 1;
            continue;
        }
        if state != "completed" && !all_states {
            kept_state += 1;
            continue;
        }
        if older_than.is_some_and(|d| f.age() < d) {
            newer += 1;
            continue;
        }
        let size = if dry_run {
            size_of(&f.rec.state_dir)
                + if f.folder != f.rec.state_dir {
                    size_of(&f.folder)
                } else {
                    0
                }
        } else {
            remove(&f)
        };
        outln!(
            "{verb} job {} ({} {}, {}, started {}): {}, {}",
            f.rec.id,
            f.rec.command,
            f.rec.target,
            state,
            f.rec.started,
            f.rec.state_dir.display(),
            bytes(size)
        );
        n += 1;
        freed += size;
    }
    let mut kept = Vec::new();
    if running > 0 {
        kept.push(format!("{running} running"));
    }
    if kept_state > 0 {
        kept.push(format!(
            "{kept_state} failed or interrupted (--all removes them)"
        ));
    }
    if newer > 0 {
        kept.push(format!("{newer} newer than --older-than"));
    }
    outln!(
        "{verb} {}, {}{}",
        crate::report::count(n, "job"),
        bytes(freed),
        if kept.is_empty() {
            String::new()
        } else {
            format!("; kept {}", kept.join(", "))
        }
    );
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_is_not() {
        let pid = std::process::id();
        let start = proc_start(pid).expect("/proc/self/stat has a start time");
        let mut r = Record {
            format: FORMAT.into(),
            id: "x".into(),
            command: "copy".into(),
            source: String::new(),
            target: String::new(),
            state_dir: PathBuf::new(),
            started: String::new(),
            updated: String::new(),
            state: "running".into(),
            pid,
            pid_start: Some(start),
            exit_code: None,
            files_done: None,
            bytes_done: None,
            last_error: None,
            resume: String::new(),
            cwd: None,
            journal: None,
        };
        assert!(alive(&r));
        // The same pid, started at another time: another process.
        r.pid_start = Some(start + 1);
        assert!(!alive(&r));
    }
}
