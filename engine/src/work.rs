//! The pipeline of a copy: feeder, planner, workers, committer (see the crate docs).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use hbcp_state::checksum::{combine, hash_file};
use hbcp_state::journal::{self, Journal, Record, Resume};
use hbcp_state::manifest::{self, ManifestEntry, ManifestHeader};
use hbcp_state::{range_at, range_count};
use hbcp_store::timed::Timed;
use hbcp_store::{Entry, EntryKind, Error as StoreError, Store, Upload};
use xxhash_rust::xxh3::Xxh3;

use crate::LargestFirst;
use crate::adaptive::{Controller, Gate};
use crate::budget::Budget;
use crate::decide::{Decision, decide};
use crate::limiter::{Bandwidth, Capped};
use crate::stats::Stats;
use crate::{Config, Result, spill_path};

mod digest;
mod server_side;
mod tallies;

/// A file that could not be copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// Key.
    pub key: String,
    /// Why.
    pub error: String,
}

/// Why a job stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The source listing was refused (unreadable folder, a name that is not UTF-8, access
    /// denied…): bad input, unless something was written already.
    Listing(String),
    /// A fatal error (disk full, target refused): resumable once fixed.
    Fatal(String),
    /// Interrupted (signal): resumable.
    Interrupted,
}

/// What a copy did.
#[derive(Debug)]
pub struct Outcome {
    /// Files that failed.
    pub failures: Vec<Failure>,
    /// Source findings that were not copied (symlinks out of the root, special files).
    pub warnings: Vec<String>,
    /// Why the job stopped early, if it did.
    pub stop: Option<Stop>,
    /// The spill manifest of every file now at the target (copied or already there).
    pub spill: std::path::PathBuf,
    /// Journal records found from an earlier run.
    pub resumed_records: u64,
    /// Empty directories created.
    pub dirs: u64,
}

/// A large file in flight: its ranges are tasks of their own.
struct Big {
    entry: Entry,
    ranges: u32,
    upload: Mutex<Option<Arc<dyn Upload>>>,
    hashes: Mutex<Vec<Option<u64>>>,
    remaining: AtomicU32,
    /// The first error of a range, and whether it was a source change.
    failed: Mutex<Option<(String, bool)>>,
    /// Copied range by range by the target's service (`--s2s`), not streamed.
    copy: Option<server_side::Ranged>,
    /// The whole file's MD5, hashed in order as its ranges are read (`--put-md5`).
    md5: digest::InOrder,
}

enum Task {
    Whole(Entry),
    Range(Arc<Big>, u32),
    Commit(Arc<Big>),
    Check(Entry, bool),
    /// An HFile that moved at the source: copy it inside the target from where it was.
    CopyWithin {
        from: String,
        entry: Entry,
        hash: u64,
    },
    Dir(String),
    /// A file the target's service copies from the source (`--s2s`).
    ServerSide(Entry),
}

enum Done {
    File {
        entry: Entry,
        hash: u64,
        /// Journal it (it is now durable at the target and matches the source).
        copied: bool,
        /// Its bytes were written to the target by this run.
        written: bool,
        /// The target's version token after the write ([`target_version`]).
        tv: Option<String>,
        /// The MD5 of the bytes read for a whole-file write whose target service computes one
        /// too (for the verifier's `service` way).
        md5: Option<[u8; 16]>,
        /// The commit's ETag when the service checked every part on arrival (the verifier's
        /// `transport` way, [`Upload::transport_checked`]).
        transport: Option<String>,
    },
    /// A range is durable in the staging area; the worker waits on `ack` until it is journaled.
    Range {
        entry: Entry,
        idx: u32,
        hash: u64,
        ack: Sender<()>,
        /// Copied by the target's service: no checksum (`hash` is meaningless).
        copied: bool,
    },
    Dir(String),
    /// Already at the target and taken as the same without reading (sync of an HFile).
    Kept {
        entry: Entry,
        hash: Option<u64>,
    },
    Failed(Failure),
    Warning(String),
    /// Copied by the target's service: no checksum taken on the way.
    ServerSide {
        entry: Entry,
        /// The target's version token after the copy.
        tv: Option<String>,
        /// Journal it (false when a resume found it journaled already).
        journal: bool,
    },
}

struct Shared<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Store,
    cfg: &'a Config,
    stats: &'a Stats,
    cancel: &'a AtomicBool,
    /// Set when the job must stop (fatal error or interrupt).
    halt: AtomicBool,
    stop: Mutex<Option<Stop>>,
    limiter: Option<Arc<Bandwidth>>,
    /// Range buffers held in memory (object-store targets).
    budget: Budget,
    /// Requests in flight (adaptive against object stores).
    gate: Gate,
    local_dst: bool,
    /// Server-side copies are tried (`--s2s auto`, two object stores).
    s2s: bool,
    /// The first file that could not be copied server-side was named.
    s2s_said: AtomicBool,
    /// The first file that could not be copied server-side range by range was named.
    s2s_ranges_said: AtomicBool,
    /// The target failed a server-side copy by range: no further file is copied by ranges.
    s2s_ranges_off: AtomicBool,
    /// What the stores' retry policy saw (throttles, retries), taken in after every call.
    seen: tallies::Seen<'a>,
}

impl Shared<'_> {
    fn halted(&self) -> bool {
        if self.cancel.load(Relaxed) && !self.halt.load(Relaxed) {
            self.set_stop(Stop::Interrupted);
        }
        self.halt.load(Relaxed)
    }

    fn set_stop(&self, s: Stop) {
        let mut st = self.stop.lock().unwrap();
        if st.is_none() {
            *st = Some(s);
        }
        self.halt.store(true, Relaxed);
    }

    /// Run a store call, again where the retry policy (`hbcp_store::retry`) says so: the
    /// stores retry each request themselves and give up with `Error::Exhausted`, which is not
    /// tried again here; what is (a body cut off after its answer began, a local I/O error, a
    /// store without a policy of its own) gets the same tries and backoff. Every throttle
    /// answer a store saw, retried or not, tells the adaptive concurrency at once.
    fn retry<T>(&self, mut f: impl FnMut() -> hbcp_store::Result<T>) -> hbcp_store::Result<T> {
        use hbcp_store::retry::{Tries, Verdict};
        let mut tries = Tries::with_attempts(None, self.cfg.attempts);
        loop {
            let permit = self.gate.acquire();
            self.stats.in_flight.fetch_add(1, Relaxed);
            let r = f();
            self.stats.in_flight.fetch_sub(1, Relaxed);
            drop(permit);
            self.seen.absorb(&self.gate, self.stats);
            if let Err(e) = &r {
                if e.is_throttle() && !self.seen.tallied() {
                    self.gate.throttled_at(Instant::now());
                }
            }
            let attempt = tries.attempt();
            match tries.judge(r) {
                Verdict::Retry { error, wait } if !self.halted() => {
                    tracing::debug!(target: "hbcp::retry", "attempt {attempt} failed, retrying: {error}");
                    self.stats.retries.fetch_add(1, Relaxed);
                    std::thread::sleep(wait);
                }
                Verdict::Retry { error, .. } => return Err(error),
                Verdict::Return(r) => return r,
            }
        }
    }
}

pub(crate) fn run(
    src: &dyn Store,
    dst: &dyn Store,
    feed: &crate::Feed<'_>,
    cfg: &Config,
    stats: &Stats,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    // Every request of the copy (listing, planner, workers) is timed by operation.
    let src = &Timed::new(src, stats.ops());
    let dst = &Timed::new(dst, stats.ops());
    let (mut journal, resume) = Journal::open(&cfg.state_dir, &cfg.job)?;
    let spill = spill_path(&cfg.state_dir);
    let header = ManifestHeader::new(
        &cfg.source_label,
        &cfg.target_label,
        cfg.range_size,
        &cfg.started,
    );
    let mut spill_w = manifest::create(&spill, &header)?;
    let resumed_records = resume.records;
    let sh = Shared {
        src,
        dst,
        cfg,
        stats,
        cancel,
        halt: AtomicBool::new(false),
        stop: Mutex::new(None),
        limiter: cfg.max_bandwidth.clone(),
        budget: Budget::new(cfg.buffer_budget),
        gate: Gate::new(
            cfg.workers.max(1),
            cfg.start_concurrency.unwrap_or(cfg.workers),
        ),
        local_dst: dst.caps().positional_writes,
        s2s: crate::decide::server_side(cfg, src, dst),
        s2s_said: AtomicBool::new(false),
        s2s_ranges_said: AtomicBool::new(false),
        s2s_ranges_off: AtomicBool::new(false),
        seen: tallies::Seen::new(src, dst),
    };
    let workers = cfg.workers.max(1);
    let (entry_tx, entry_rx) = bounded::<Entry>(8192);
    let (task_tx, task_rx) = bounded::<Task>(workers * 4);
    let (done_tx, done_rx) = bounded::<Done>(16_384);
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let mut dirs = 0u64;

    let committer_result = std::thread::scope(|s| {
        // Feeder: listing or plan → entries.
        let sh_ref = &sh;
        s.spawn(move || {
            let r = feed(sh_ref.src, &|e: Entry| {
                if sh_ref.halted() {
                    return Err(StoreError::Unsupported {
                        what: "listing".into(),
                        hint: "job stopping".into(),
                    });
                }
                entry_tx.send(e).map_err(|_| StoreError::Unsupported {
                    what: "listing".into(),
                    hint: "job stopping".into(),
                })
            });
            if let Err(e) = r {
                if !sh_ref.halted() {
                    // A listing the source refuses (unreadable folder, unsafe name, denied) is
                    // bad input; a service or network failure (HTTP 500, a reset) is not.
                    sh_ref.set_stop(if e.is_bad_input() {
                        Stop::Listing(e.to_string())
                    } else {
                        Stop::Fatal(format!("cannot list the source: {e}"))
                    });
                }
            }
            sh_ref.stats.listing_done.store(true, Relaxed);
        });
        // Planner.
        let done_tx_p = done_tx.clone();
        let resume_ref = &resume;
        s.spawn(move || plan(sh_ref, entry_rx, task_tx, done_tx_p, resume_ref));
        // Workers.
        for _ in 0..workers {
            let rx = task_rx.clone();
            let dtx = done_tx.clone();
            s.spawn(move || worker(sh_ref, rx, dtx));
        }
        drop(task_rx);
        drop(done_tx);
        // Concurrency controller: once a second, while the copy runs.
        let (tick_stop, ticks) = bounded::<()>(0);
        if cfg.start_concurrency.is_some() {
            s.spawn(move || {
                let mut c = Controller::new();
                let mut waits = sh_ref.gate.waits();
                loop {
                    match ticks.recv_timeout(Duration::from_secs(1)) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                    let w = sh_ref.gate.waits();
                    let bytes = sh_ref.stats.bytes_copied.load(Relaxed);
                    c.tick(&sh_ref.gate, Instant::now(), bytes, w != waits);
                    waits = w;
                }
            });
        }
        // Committer (this thread).
        let r = commit_loop(
            &sh,
            done_rx,
            &mut journal,
            &mut spill_w,
            &mut failures,
            &mut warnings,
            &mut dirs,
        );
        drop(tick_stop);
        r
    });
    if let Err(e) = committer_result {
        sh.set_stop(Stop::Fatal(e));
    }
    let finished = spill_w.finish();
    sh.stats.buffer_peak.fetch_max(sh.budget.peak(), Relaxed);
    let st = sh.stats;
    sh.seen.absorb(&sh.gate, st);
    st.throttles.store(sh.gate.throttle_count(), Relaxed);
    st.concurrency_final.store(sh.gate.limit() as u64, Relaxed);
    st.concurrency_peak
        .fetch_max(sh.gate.peak() as u64, Relaxed);
    let stop = sh.stop.lock().unwrap().clone();
    if stop.is_none() {
        // Without a complete spill there is nothing to verify against.
        finished.map_err(crate::Error::Format)?;
    }
    Ok(Outcome {
        failures,
        warnings,
        stop,
        spill,
        resumed_records,
        dirs,
    })
}

fn plan(
    sh: &Shared<'_>,
    entries: Receiver<Entry>,
    tasks: Sender<Task>,
    done: Sender<Done>,
    resume: &Resume,
) {
    let target_empty = match crate::decide::target_is_empty(sh.dst) {
        Ok(b) => b,
        Err(e) => {
            sh.set_stop(Stop::Fatal(format!("cannot list the target: {e}")));
            return;
        }
    };
    let mut window = LargestFirst::new(sh.cfg.window);
    let send = |t: Task| tasks.send(t).is_ok();
    for e in entries.iter() {
        if sh.halted() {
            break;
        }
        match e.kind {
            EntryKind::Skipped => {
                let why = e.version.clone().unwrap_or_default();
                let _ = done.send(Done::Warning(format!("not copied: {} ({why})", e.key)));
                continue;
            }
            EntryKind::Dir => {
                if !send(Task::Dir(e.key)) {
                    break;
                }
                continue;
            }
            EntryKind::File => {}
        }
        sh.stats.files_listed.fetch_add(1, Relaxed);
        sh.stats.bytes_listed.fetch_add(e.size, Relaxed);
        // Resume: a file the journal says is durable, still there with its size and the version
        // the target gave it when it was written. Without a journaled version (or with the
        // target showing none) the size alone proves nothing: the file is checked below.
        if let Some((h, Some(tv))) = resume.file(&e.key, e.size, e.version.as_deref()) {
            if target_unchanged(sh, &e, tv) {
                sh.stats.files_skipped.fetch_add(1, Relaxed);
                sh.stats.bytes_skipped.fetch_add(e.size, Relaxed);
                let _ = done.send(Done::File {
                    entry: e,
                    hash: h,
                    copied: false,
                    written: false,
                    tv: None,
                    md5: None,
                    transport: None,
                });
                continue;
            }
        }
        if server_side::resumed(sh, resume, &e, &done) {
            continue;
        }
        // What the index says of this key (a sync, a backup), read once.
        let known = sh.cfg.known_target.as_deref();
        let indexed = match known.map(|k| k.get(&e.key)).transpose() {
            Ok(x) => x.flatten(),
            Err(err) => {
                sh.set_stop(Stop::Fatal(err.to_string()));
                break;
            }
        };
        let existing = if known.is_some() {
            indexed.map(|k| Entry {
                key: e.key.clone(),
                size: k.size,
                version: None,
                modified: None,
                kind: EntryKind::File,
            })
        } else if target_empty {
            None
        } else {
            match sh.retry(|| sh.dst.head(&e.key)) {
                Ok(x) => x,
                Err(err) => {
                    let _ = done.send(Done::Failed(Failure {
                        key: e.key,
                        error: format!("target: {err}"),
                    }));
                    continue;
                }
            }
        };
        let by_name = |name: &str| {
            known
                .map(|k| k.by_name(name))
                .transpose()
                .map(Option::flatten)
        };
        let decision = decide(
            &e,
            existing.as_ref(),
            sh.cfg.overwrite,
            sh.cfg.write_once,
            by_name,
        );
        let t = match decision {
            Err(err) => {
                sh.set_stop(Stop::Fatal(err.to_string()));
                break;
            }
            Ok(Decision::New | Decision::Replace) => {
                if !emit(sh, &window.push(e), &tasks, resume) {
                    break;
                }
                continue;
            }
            Ok(Decision::Keep { checked: false }) => {
                let hash = indexed.and_then(|k| k.hash);
                sh.stats.files_skipped.fetch_add(1, Relaxed);
                sh.stats.bytes_skipped.fetch_add(e.size, Relaxed);
                let _ = done.send(Done::Kept { entry: e, hash });
                continue;
            }
            Ok(Decision::Conflict) => {
                let _ = done.send(Done::Failed(Failure {
                    key: e.key,
                    error: "the target has a directory or special file under this name".into(),
                }));
                continue;
            }
            Ok(Decision::Moved { from, hash }) => Task::CopyWithin {
                from,
                entry: e,
                hash,
            },
            // Same size at the target: a server-side copy costs less than reading both.
            Ok(Decision::Compare) if sh.s2s && e.size > 0 => Task::ServerSide(e),
            Ok(Decision::Compare) => Task::Check(e, true),
            Ok(Decision::Keep { checked: true }) => Task::Check(e, false),
        };
        if !send(t) {
            break;
        }
    }
    while let Some(e) = window.pop() {
        if sh.halted() || !emit(sh, &Some(e), &tasks, resume) {
            break;
        }
    }
}

/// True when the target still has `e`'s file with the size it was journaled with and the
/// version (hash `tv`, [`journal::version_hash`]) it was given then: one HEAD.
fn target_unchanged(sh: &Shared<'_>, e: &Entry, tv: u64) -> bool {
    matches!(
        sh.retry(|| sh.dst.head(&e.key)),
        Ok(Some(t)) if t.kind == EntryKind::File
            && t.size == e.size
            && t.version.is_some()
            && tv == journal::version_hash(t.version.as_deref())
    )
}

/// Turn a file into tasks. Returns false when the workers are gone.
fn emit(sh: &Shared<'_>, e: &Option<Entry>, tasks: &Sender<Task>, resume: &Resume) -> bool {
    let Some(e) = e else { return true };
    let resumed_ranges = || {
        resume
            .ranges_of(&e.key, e.size, e.version.as_deref())
            .is_some()
    };
    if sh.s2s && e.size > 0 && !resumed_ranges() {
        return match server_side::ranged(sh, e, resume) {
            Some((big, todo)) => send_ranges(big, todo, tasks),
            None => tasks.send(Task::ServerSide(e.clone())).is_ok(),
        };
    }
    if e.size <= sh.cfg.chunk.min(sh.cfg.range_size) {
        return tasks.send(Task::Whole(e.clone())).is_ok();
    }
    let n = range_count(e.size, sh.cfg.range_size) as u32;
    let mut hashes = vec![None; n as usize];
    let mut upload = None;
    if let Some(done) = resume.ranges_of(&e.key, e.size, e.version.as_deref()) {
        // Trust journaled ranges only if the staged data is still there.
        if let Ok(up) = sh
            .dst
            .begin_upload(&e.key, e.size, sh.cfg.range_size, &sh.cfg.job)
        {
            for (i, h) in done {
                let r = range_at(e.size, sh.cfg.range_size, i as u64);
                // Each journaled range is trusted only if the store still holds it staged.
                if !up.has_part(i, r.end - r.start) {
                    continue;
                }
                if let Some(slot) = hashes.get_mut(i as usize) {
                    *slot = Some(h);
                    sh.stats.bytes_skipped.fetch_add(r.end - r.start, Relaxed);
                }
            }
            upload = Some(up);
        }
    }
    let todo: Vec<u32> = (0..n).filter(|i| hashes[*i as usize].is_none()).collect();
    let remaining = AtomicU32::new(todo.len() as u32);
    let big = Arc::new(Big {
        entry: e.clone(),
        ranges: n,
        upload: Mutex::new(upload),
        hashes: Mutex::new(hashes),
        remaining,
        failed: Mutex::new(None),
        copy: None,
        md5: Default::default(),
    });
    send_ranges(big, todo, tasks)
}

/// The tasks of a large file: its ranges `todo` not yet durable, or its commit when none is
/// left. Returns false when the workers are gone.
fn send_ranges(big: Arc<Big>, todo: Vec<u32>, tasks: &Sender<Task>) -> bool {
    if todo.is_empty() {
        return tasks.send(Task::Commit(big)).is_ok();
    }
    for i in todo {
        if tasks.send(Task::Range(big.clone(), i)).is_err() {
            return false;
        }
    }
    true
}

fn worker(sh: &Shared<'_>, tasks: Receiver<Task>, done: Sender<Done>) {
    for t in tasks.iter() {
        if sh.halted() {
            break;
        }
        sh.stats.tasks.fetch_add(1, Relaxed);
        match t {
            Task::Dir(key) => match sh.retry(|| sh.dst.make_dir(&key)) {
                Ok(()) => {
                    let _ = done.send(Done::Dir(key));
                }
                Err(e) => fail(sh, &done, &key, e),
            },
            Task::Whole(e) => match copy_whole(sh, &e) {
                Ok((hash, written, md5)) => {
                    sh.stats.files_copied.fetch_add(1, Relaxed);
                    let tv = target_version(sh, &e.key, written);
                    let _ = done.send(Done::File {
                        entry: e,
                        hash,
                        copied: true,
                        written: true,
                        tv,
                        md5,
                        transport: None,
                    });
                }
                Err(
                    StoreError::Changed { .. }
                    | StoreError::NotFound { .. }
                    | StoreError::ShortRead { .. },
                ) => redo_changed(sh, &e.key, &done),
                Err(err) => fail(sh, &done, &e.key, err),
            },
            Task::Range(big, idx) => range_task(sh, &big, idx, &done),
            Task::Commit(big) => finish_big(sh, &big, &done),
            Task::ServerSide(e) => server_side::copy(sh, &e, &done),
            Task::Check(e, write) => check_task(sh, &e, write, &done),
            Task::CopyWithin { from, entry, hash } => {
                match sh.retry(|| sh.dst.copy_within(&from, &entry.key)) {
                    Ok(()) => {
                        sh.stats.files_copied.fetch_add(1, Relaxed);
                        let tv = target_version(sh, &entry.key, None);
                        let _ = done.send(Done::File {
                            entry,
                            hash,
                            copied: true,
                            written: true,
                            tv,
                            md5: None,
                            transport: None,
                        });
                    }
                    // No server-side copy here (or the old copy is gone): send it.
                    Err(_) => copy_inline(sh, &entry, &done),
                }
            }
        }
    }
}

/// The target's version token of a file just written (or found the same), journaled with it so
/// that a rerun notices a target file changed behind its back and copies it again. `written`
/// is the store's own answer to the write (an object store's ETag from Put Blob, Put Block
/// List, PutObject or CompleteMultipartUpload); without one, a HEAD asks (a stat on local
/// disk). `None` when neither knows: the rerun then checks the file instead of trusting it.
fn target_version(sh: &Shared<'_>, key: &str, written: Option<String>) -> Option<String> {
    written.or_else(|| {
        sh.retry(|| sh.dst.head(key))
            .ok()
            .flatten()
            .and_then(|e| e.version)
    })
}

fn fail(sh: &Shared<'_>, done: &Sender<Done>, key: &str, e: StoreError) {
    // The service failed every try of the policy (a 5xx, a throttle, a transport failure that
    // did not pass): the endpoint is failing, not this file; the run stops, resumable, as it
    // does when the service refuses the credential.
    if e.is_fatal() || e.is_exhausted() {
        sh.set_stop(Stop::Fatal(e.to_string()));
        return;
    }
    if sh.halted() {
        // The job is stopping (a signal): the file is not done, not failed; the rerun copies it.
        return;
    }
    sh.stats.files_failed.fetch_add(1, Relaxed);
    let _ = done.send(Done::Failed(Failure {
        key: key.to_string(),
        error: e.to_string(),
    }));
}

/// Wait for `n` bytes of `--max-bandwidth`; a stop (a signal) ends the wait at once, and the
/// bytes are not sent: the range is abandoned, not journaled, and sent again by the rerun.
fn throttle(sh: &Shared<'_>, n: usize) -> hbcp_store::Result<()> {
    match &sh.limiter {
        Some(l) if !l.take(n as u64, &|| sh.halted()) => Err(stopping()),
        _ => Ok(()),
    }
}

/// The MD5 of a whole file's bytes, when the target's service computes one for a whole-file
/// write (`Store::puts_have_service_md5`): hashed from the bytes already in memory, so the
/// source is read once.
fn service_md5(sh: &Shared<'_>, data: &[u8]) -> Option<[u8; 16]> {
    use md5::Digest;
    sh.dst
        .puts_have_service_md5()
        .then(|| md5::Md5::digest(data).into())
}

/// Copy a file in one piece: its xxh3, the target's version token when the write's answer
/// carried one (see [`target_version`]), and its MD5 where the target computes one too.
fn copy_whole(
    sh: &Shared<'_>,
    e: &Entry,
) -> hbcp_store::Result<(u64, Option<String>, Option<[u8; 16]>)> {
    if e.size == 0 {
        // Nothing to read: the listing gave the size, and an empty file cannot be torn between
        // two versions. On an object store the read would be a request per file (a HEAD, to
        // check the version) for no byte; the verification's source check still finds a file
        // that changed or went away since the listing.
        let written = sh.retry(|| sh.dst.put_bytes(&e.key, Default::default()))?;
        return Ok((
            xxhash_rust::xxh3::xxh3_64(&[]),
            written,
            service_md5(sh, &[]),
        ));
    }
    if !sh.local_dst {
        // Object stores: hand the bytes over as they came, no copy.
        let _held = sh.budget.take(e.size);
        let data = sh.retry(|| {
            sh.src
                .read_range_bytes(&e.key, 0..e.size, e.version.as_deref())
        })?;
        let hash = xxhash_rust::xxh3::xxh3_64(&data);
        let md5 = service_md5(sh, &data);
        throttle(sh, data.len())?;
        let written = sh.retry(|| sh.dst.put_bytes(&e.key, data.clone()))?;
        sh.stats.bytes_copied.fetch_add(e.size, Relaxed);
        return Ok((hash, written, md5));
    }
    if e.size > sh.cfg.chunk {
        // Larger than one chunk: streamed into a staged file, never whole in memory.
        let up = sh.retry(|| sh.dst.begin_upload(&e.key, e.size, e.size, &sh.cfg.job))?;
        let r = stream_range(sh, e, 0..e.size, &*up, 0).and_then(|hash| {
            sh.retry(|| up.commit())
                .map(|written| (hash, written, None))
        });
        if r.is_err() {
            let _ = up.abort();
        }
        return r;
    }
    // Local disk: the bytes stream into aligned, reused memory, which a direct write takes as
    // it is (no bounce copy, no zero fill, no fresh pages).
    let _held = sh.budget.take(e.size);
    let mut data = hbcp_store::Pooled::take(e.size as usize);
    sh.retry(|| {
        data.clear();
        sh.src
            .read_range_to(&e.key, 0..e.size, e.version.as_deref(), &mut |piece| {
                data.extend_from_slice(piece);
                Ok(())
            })
    })?;
    let hash = xxhash_rust::xxh3::xxh3_64(data.as_slice());
    throttle(sh, data.len())?;
    sh.retry(|| sh.dst.put(&e.key, data.as_slice()))?;
    sh.stats.bytes_copied.fetch_add(e.size, Relaxed);
    Ok((hash, None, None))
}

fn stopping() -> StoreError {
    StoreError::Unsupported {
        what: "copy".into(),
        hint: "job stopping".into(),
    }
}

/// Stream `range` of the source file `e` into part `idx` of `up` (a target that takes
/// positional writes), through one buffer of at most `cfg.chunk` bytes: one read request for
/// the whole range, whatever its size. Returns the xxh3 of the range. A read that fails half
/// way is retried from the first byte not yet written, so no byte is hashed or written twice.
fn stream_range(
    sh: &Shared<'_>,
    e: &Entry,
    range: std::ops::Range<u64>,
    up: &dyn Upload,
    idx: u32,
) -> hbcp_store::Result<u64> {
    let chunk = sh.cfg.chunk.max(1) as usize;
    // The coalescing buffer and the store's own piece (a local read's buffer).
    let _held = sh.budget.take(2 * chunk as u64);
    let version = e.version.as_deref();
    let mut h = Xxh3::new();
    let mut at = range.start;
    // Hash, throttle and write one piece at `at`.
    let mut write = |data: &[u8], at: &mut u64| -> hbcp_store::Result<()> {
        h.update(data);
        throttle(sh, data.len())?;
        up.put_part(idx, *at, data)?;
        sh.stats.bytes_copied.fetch_add(data.len() as u64, Relaxed);
        *at += data.len() as u64;
        Ok(())
    };
    // The coalescing buffer, aligned so that a local target can write it with O_DIRECT as it
    // is; held for this range only (the budget's `_held`).
    let mut cb = hbcp_store::Pooled::take(chunk.min((range.end - range.start) as usize));
    sh.retry(|| {
        // Bytes a failed attempt buffered but did not write are read again.
        cb.clear();
        sh.src
            .read_range_to(&e.key, at..range.end, version, &mut |mut piece| {
                if sh.halted() {
                    return Err(stopping());
                }
                while !piece.is_empty() {
                    if cb.is_empty() && piece.len() >= chunk {
                        // A whole chunk as it came: no copy.
                        write(&piece[..chunk], &mut at)?;
                        piece = &piece[chunk..];
                        continue;
                    }
                    let n = (chunk - cb.len()).min(piece.len());
                    cb.extend_from_slice(&piece[..n]);
                    piece = &piece[n..];
                    if cb.len() == chunk {
                        write(cb.as_slice(), &mut at)?;
                        cb.clear();
                    }
                }
                Ok(())
            })?;
        if !cb.is_empty() {
            write(cb.as_slice(), &mut at)?;
            cb.clear();
        }
        Ok(())
    })?;
    Ok(h.digest())
}

fn upload_of(sh: &Shared<'_>, big: &Big) -> hbcp_store::Result<Arc<dyn Upload>> {
    let mut g = big.upload.lock().unwrap();
    if let Some(u) = &*g {
        return Ok(u.clone());
    }
    let e = &big.entry;
    let u = sh.retry(|| {
        sh.dst
            .begin_upload(&e.key, e.size, sh.cfg.range_size, &sh.cfg.job)
    })?;
    *g = Some(u.clone());
    Ok(u)
}

/// Read one range (hashing as it reads) and write it.
fn copy_range(sh: &Shared<'_>, big: &Big, idx: u32) -> hbcp_store::Result<u64> {
    let e = &big.entry;
    let up = upload_of(sh, big)?;
    let r = range_at(e.size, sh.cfg.range_size, idx as u64);
    if let Some(copy) = &big.copy {
        return server_side::range(sh, copy, &*up, idx, r);
    }
    let version = e.version.as_deref();
    if sh.local_dst {
        // Positional writes: the range streams through one chunk of memory.
        stream_range(sh, e, r, &*up, idx)
    } else {
        // One range in memory per worker, handed to the store without a copy.
        let _held = sh.budget.take(r.end - r.start);
        let data = sh.retry(|| sh.src.read_range_bytes(&e.key, r.clone(), version))?;
        let hash = xxhash_rust::xxh3::xxh3_64(&data);
        digest::feed(big, idx, &data);
        throttle(sh, data.len())?;
        sh.retry(|| up.put_part_bytes(idx, r.start, data.clone()))?;
        sh.stats.bytes_copied.fetch_add(r.end - r.start, Relaxed);
        Ok(hash)
    }
}

fn range_task(sh: &Shared<'_>, big: &Arc<Big>, idx: u32, done: &Sender<Done>) {
    if digest::wanted(sh, big) {
        // `--put-md5`: one worker takes the file's ranges, in order.
        return digest::in_order(sh, big, done);
    }
    let already_failed = big.failed.lock().unwrap().is_some();
    if !already_failed {
        match copy_range(sh, big, idx).and_then(|h| sync_parts(sh, big).map(|()| h)) {
            Ok(h) => {
                big.hashes.lock().unwrap()[idx as usize] = Some(h);
                journal_range(big, idx, h, done);
            }
            Err(e) => {
                if e.is_fatal() {
                    sh.set_stop(Stop::Fatal(e.to_string()));
                }
                server_side::note_refusal(sh, big, &e);
                let mut f = big.failed.lock().unwrap();
                if f.is_none() {
                    *f = Some((
                        e.to_string(),
                        // A source that vanished or shrank while being read changed too.
                        matches!(
                            e,
                            StoreError::Changed { .. }
                                | StoreError::NotFound { .. }
                                | StoreError::ShortRead { .. }
                        ),
                    ));
                }
            }
        }
    }
    if big.remaining.fetch_sub(1, Relaxed) == 1 {
        finish_big(sh, big, done);
    }
}

/// Make a finished range durable in the staging area (local disk: `fdatasync` of the staging
/// file), so that its journal record may be written without a whole-target flush.
fn sync_parts(sh: &Shared<'_>, big: &Big) -> hbcp_store::Result<()> {
    let up = big.upload.lock().unwrap().clone();
    match up {
        Some(up) => sh.retry(|| up.sync_parts()),
        None => Ok(()),
    }
}

/// Hand a durable range to the committer, which journals it at once, and wait until it has:
/// a worker takes no other task while its last range is unjournaled, so a crash sends again
/// at most the one range (or small file) each worker has in flight.
fn journal_range(big: &Big, idx: u32, hash: u64, done: &Sender<Done>) {
    let (ack, journaled) = bounded(1);
    let sent = done.send(Done::Range {
        entry: big.entry.clone(),
        idx,
        hash,
        ack,
        copied: big.copy.is_some(),
    });
    if sent.is_ok() {
        // An error means the committer stopped (it drops the ack): the job is halting.
        let _ = journaled.recv();
    }
}

/// The last range of a file is done: commit it (or abort it if a range failed).
fn finish_big(sh: &Shared<'_>, big: &Big, done: &Sender<Done>) {
    let key = &big.entry.key;
    if let Some((err, changed)) = big.failed.lock().unwrap().clone() {
        if sh.halted() {
            // Leave the staged ranges for the resume.
            return;
        }
        if let Some(up) = big.upload.lock().unwrap().take() {
            let _ = up.abort();
        }
        if server_side::refused(big) {
            return server_side::instead_of_ranges(sh, big, &err, done);
        }
        // A changed source of a server-side copy fails the file named (the rerun copies it).
        if changed && big.copy.is_none() {
            return redo_changed(sh, key, done);
        }
        sh.stats.files_failed.fetch_add(1, Relaxed);
        let _ = done.send(Done::Failed(Failure {
            key: key.clone(),
            error: err,
        }));
        return;
    }
    let hashes: Vec<u64> = big
        .hashes
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.unwrap_or(0))
        .collect();
    debug_assert_eq!(hashes.len(), big.ranges as usize);
    let up = match upload_of(sh, big) {
        Ok(u) => u,
        Err(e) => return fail(sh, done, key, e),
    };
    let mut md5 = None;
    if up.wants_md5() && big.copy.is_none() {
        // `--put-md5`: the whole file's MD5, hashed as its ranges were read in order.
        match digest::whole(sh, big) {
            Ok(m) => {
                up.set_md5(m);
                md5 = Some(m);
            }
            Err(err) => {
                if sh.halted() {
                    // Leave the staged ranges for the resume.
                    return;
                }
                let _ = up.abort();
                if matches!(
                    err,
                    StoreError::Changed { .. }
                        | StoreError::NotFound { .. }
                        | StoreError::ShortRead { .. }
                ) {
                    return redo_changed(sh, key, done);
                }
                return fail(sh, done, key, err);
            }
        }
    }
    if big.copy.is_some()
        && let Err(e) = server_side::source_unchanged(sh, &big.entry)
    {
        let _ = up.abort();
        return fail(sh, done, key, e);
    }
    match sh.retry(|| up.commit()) {
        Ok(written) if big.copy.is_some() => {
            sh.stats.files_copied.fetch_add(1, Relaxed);
            let _ = done.send(Done::ServerSide {
                entry: big.entry.clone(),
                tv: target_version(sh, key, written),
                journal: true,
            });
        }
        Ok(written) => {
            sh.stats.files_copied.fetch_add(1, Relaxed);
            let transport = written.clone().filter(|_| up.transport_checked());
            let _ = done.send(Done::File {
                entry: big.entry.clone(),
                hash: combine(&hashes),
                copied: true,
                written: true,
                tv: target_version(sh, key, written),
                md5,
                transport,
            });
        }
        Err(e) => {
            let _ = up.abort();
            if big.copy.is_some() && matches!(e, StoreError::Unsupported { .. }) {
                return server_side::instead_of_ranges(sh, big, &e.to_string(), done);
            }
            fail(sh, done, key, e)
        }
    }
}

/// A file already at the target with the same size: compare checksums; copy if different
/// (and allowed).
fn check_task(sh: &Shared<'_>, e: &Entry, write: bool, done: &Sender<Done>) {
    let rs = sh.cfg.range_size;
    // Both reads move bytes: under the run's bandwidth limit, as the copy's writes are.
    let halted = || sh.halted();
    let (src, dst) = (
        Capped::new(sh.src, sh.limiter.as_deref(), &halted),
        Capped::new(sh.dst, sh.limiter.as_deref(), &halted),
    );
    let src_hash = match sh.retry(|| hash_file(&src, &e.key, e.size, rs, e.version.as_deref())) {
        Ok(h) => h,
        Err(err) => return fail(sh, done, &e.key, err),
    };
    let dst_hash = sh.retry(|| hash_file(&dst, &e.key, e.size, rs, None));
    let same = matches!(dst_hash, Ok(h) if h == src_hash);
    if same || !write {
        sh.stats.files_skipped.fetch_add(1, Relaxed);
        sh.stats.bytes_skipped.fetch_add(e.size, Relaxed);
        let _ = done.send(Done::File {
            entry: e.clone(),
            hash: src_hash,
            copied: same,
            written: false,
            tv: if same {
                target_version(sh, &e.key, None)
            } else {
                None
            },
            md5: None,
            transport: None,
        });
        return;
    }
    copy_inline(sh, e, done);
}

/// Copy one file here, range after range (a file found different at the target, or one whose
/// source changed during the copy).
fn copy_inline(sh: &Shared<'_>, e: &Entry, done: &Sender<Done>) {
    let rs = sh.cfg.range_size;
    let chunk = sh.cfg.chunk;
    let n = range_count(e.size, rs).max(1) as u32;
    if e.size <= chunk.min(rs) {
        match copy_whole(sh, e) {
            Ok((h, written, md5)) => {
                sh.stats.files_copied.fetch_add(1, Relaxed);
                let _ = done.send(Done::File {
                    entry: e.clone(),
                    hash: h,
                    copied: true,
                    written: true,
                    tv: target_version(sh, &e.key, written),
                    md5,
                    transport: None,
                });
            }
            Err(err) => fail(sh, done, &e.key, err),
        }
        return;
    }
    let big = Big {
        entry: e.clone(),
        ranges: n,
        upload: Mutex::new(None),
        hashes: Mutex::new(vec![None; n as usize]),
        remaining: AtomicU32::new(n),
        failed: Mutex::new(None),
        copy: None,
        md5: Default::default(),
    };
    // Ranges in order, here: a wanted MD5 is hashed on the way (no second read).
    digest::claim(sh, &big);
    for i in 0..n {
        match copy_range(sh, &big, i) {
            Ok(h) => big.hashes.lock().unwrap()[i as usize] = Some(h),
            Err(err) => {
                if err.is_fatal() {
                    sh.set_stop(Stop::Fatal(err.to_string()));
                }
                // A second change while redoing is reported, not chased forever.
                *big.failed.lock().unwrap() = Some((err.to_string(), false));
                break;
            }
        }
    }
    finish_big(sh, &big, done);
}

/// The source file changed while it was read: copy its new version (once), or report that it
/// was deleted. Never a target file made of two versions.
fn redo_changed(sh: &Shared<'_>, key: &str, done: &Sender<Done>) {
    match sh.retry(|| sh.src.head(key)) {
        Ok(Some(now)) if now.kind == EntryKind::File => {
            let _ = done.send(Done::Warning(format!(
                "{key}: changed at the source during the copy; copied its new version"
            )));
            copy_inline(sh, &now, done);
        }
        Ok(_) => {
            let _ = done.send(Done::Warning(format!(
                "{key}: deleted at the source during the copy; not copied"
            )));
        }
        Err(e) => fail(sh, done, key, e),
    }
}

/// Committer: journals finished ranges at once (their workers wait for it), batches the
/// other completions (files made durable by one target flush, then journaled, at most every
/// 250 ms), and appends everything to the manifest spill.
#[allow(clippy::too_many_arguments)]
fn commit_loop(
    sh: &Shared<'_>,
    done: Receiver<Done>,
    journal: &mut Journal,
    spill: &mut manifest::ManifestWriter,
    failures: &mut Vec<Failure>,
    warnings: &mut Vec<String>,
    dirs: &mut u64,
) -> Result<(), String> {
    const MAX_BATCH: usize = 8192;
    const MAX_WAIT: Duration = Duration::from_millis(250);
    /// Completions taken at once from the channel before the journal is written.
    const MAX_DRAIN: usize = 1024;
    let mut batch: Vec<Record> = Vec::new();
    // Ranges to journal now, and their waiting workers.
    let mut ranges: Vec<Record> = Vec::new();
    let mut acks: Vec<Sender<()>> = Vec::new();
    let mut last = Instant::now();
    let mut write = |batch: &mut Vec<Record>,
                     ranges: &mut Vec<Record>,
                     acks: &mut Vec<Sender<()>>,
                     files_too: bool|
     -> Result<(), String> {
        if !ranges.is_empty() {
            // The ranges' parts were made durable by their workers (Upload::sync_parts).
            journal.append(ranges).map_err(|e| e.to_string())?;
            ranges.clear();
            for a in acks.drain(..) {
                let _ = a.send(());
            }
        }
        if files_too && !batch.is_empty() {
            sh.dst
                .flush()
                .map_err(|e| format!("cannot make the target durable: {e}"))?;
            journal.append(batch).map_err(|e| e.to_string())?;
            batch.clear();
        }
        Ok(())
    };
    let mut handle = |d: Done,
                      batch: &mut Vec<Record>,
                      ranges: &mut Vec<Record>,
                      acks: &mut Vec<Sender<()>>|
     -> Result<(), String> {
        match d {
            Done::File {
                entry,
                hash,
                copied,
                written,
                tv,
                md5,
                transport,
            } => {
                spill
                    .write(
                        &ManifestEntry::file(&entry, hash)
                            .written(written)
                            .with_md5(md5)
                            .with_transport(transport),
                    )
                    .map_err(|e| format!("manifest spill: {e}"))?;
                if copied {
                    batch.push(Record::File {
                        k: entry.key,
                        s: entry.size,
                        v: entry.version,
                        h: hash,
                        tv,
                    });
                }
            }
            Done::Range {
                entry,
                idx,
                hash,
                ack,
                copied,
            } => {
                ranges.push(if copied {
                    Record::CopiedRange {
                        k: entry.key,
                        s: entry.size,
                        v: entry.version,
                        i: idx,
                    }
                } else {
                    Record::Range {
                        k: entry.key,
                        s: entry.size,
                        v: entry.version,
                        i: idx,
                        h: hash,
                    }
                });
                acks.push(ack);
            }
            Done::Dir(k) => {
                *dirs += 1;
                spill
                    .write(&ManifestEntry::dir(&k))
                    .map_err(|e| format!("manifest spill: {e}"))?;
            }
            Done::Kept { entry, hash } => {
                let mut m = ManifestEntry::file(&entry, hash.unwrap_or(0));
                if hash.is_none() {
                    m.h = None;
                }
                spill
                    .write(&m)
                    .map_err(|e| format!("manifest spill: {e}"))?;
            }
            Done::ServerSide { entry, tv, journal } => {
                let mut m = ManifestEntry::file(&entry, 0).written(journal);
                m.h = None;
                m.c = true;
                spill
                    .write(&m)
                    .map_err(|e| format!("manifest spill: {e}"))?;
                if journal {
                    batch.push(Record::CopiedFile {
                        k: entry.key,
                        s: entry.size,
                        v: entry.version,
                        tv,
                    });
                }
            }
            Done::Failed(f) => failures.push(f),
            Done::Warning(w) => warnings.push(w),
        }
        Ok(())
    };
    let result = loop {
        let r = match done.recv_timeout(MAX_WAIT.saturating_sub(last.elapsed())) {
            Ok(d) => {
                // What else is ready joins the same journal write (ranges finished together
                // share one fdatasync of the journal).
                let mut r = handle(d, &mut batch, &mut ranges, &mut acks);
                let mut n = 1;
                while r.is_ok() && n < MAX_DRAIN {
                    match done.try_recv() {
                        Ok(d) => r = handle(d, &mut batch, &mut ranges, &mut acks),
                        Err(_) => break,
                    }
                    n += 1;
                }
                r
            }
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                break write(&mut batch, &mut ranges, &mut acks, true);
            }
        };
        let r = r.and_then(|()| {
            let files_too = batch.len() >= MAX_BATCH || last.elapsed() >= MAX_WAIT;
            if files_too {
                last = Instant::now();
            }
            write(&mut batch, &mut ranges, &mut acks, files_too)
        });
        if r.is_err() {
            break r;
        }
    };
    if let Err(e) = &result {
        sh.set_stop(Stop::Fatal(e.clone()));
        // Release the waiting workers and keep draining so they can finish; nothing more is
        // journaled.
        acks.clear();
        for _ in done.iter() {}
    }
    result
}
