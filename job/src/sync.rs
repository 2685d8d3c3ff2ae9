//! `hbcp sync SRC DST [--delete] [--watch --interval D]`: incremental copies for disaster
//! recovery, once or continuously, with the replication lag measured per HFile.
//!
//! A cycle knows the target from the last completion manifest (no listing, no per-file request),
//! except every `--recheck` cycles, when it lists the target to catch changes made behind its
//! back. HFiles are write-once and uniquely named, so an HFile at the same path with the same size
//! is not read again; metadata files (`.regioninfo`, `.tableinfo`, …) are compared by checksum;
//! an HFile that moved (data/ → archive/ on compaction) is copied inside the target. Deletions
//! (`--delete`) happen only after the copy verified, only of what the source no longer has, never
//! more than `--max-delete` of the target without `--force`, and never in a run with an error.

use std::iter::Peekable;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use hbcp_engine::index::SORT_BATCH;
use hbcp_engine::{Overwrite, Stats, Stop, TargetIndex};
use hbcp_state::extsort::ExternalSort;
use hbcp_state::manifest::{
    self, COMPLETION_KEY, MANIFEST_FORMAT, MANIFEST_VERSION, ManifestEntry, ManifestHeader,
};
use hbcp_state::records::RecordReader;
use hbcp_store::timed::Timed;
use hbcp_store::{Entry, EntryKind, ListSink};
use hbcp_verifier::check::{Params, SourceCheck};
use hbcp_verifier::{VerifyMode, VerifyOutcome};
use serde::Serialize;

use crate::commands::{
    Job, build_job, cleanup_staging, install_signals, open_source, open_target_for,
    read_manifest_at, selection, verify_file_where, verify_mode,
};
use crate::preflight::WalPlaces;
use crate::report::bytes;
use crate::spec::{ProgressMode, SyncSpec};
use crate::{Exit, usage};

pub use crate::rpo::Lag;
use crate::rpo::{Clock, Rpo};

/// What one cycle did.
#[derive(Debug, Default, Serialize)]
pub struct Cycle {
    /// Cycle number, from 1.
    pub cycle: u64,
    /// Whether the target was listed (a recheck) or taken from the last manifest.
    pub target_listed: bool,
    /// Files written (sent or copied inside the target).
    pub files_copied: u64,
    /// Bytes sent.
    pub bytes_copied: u64,
    /// Files at the target already.
    pub files_unchanged: u64,
    /// What this cycle's listing left out, by reason (counts and bytes; the keys are in no
    /// cycle's line: a cluster's WALs are many).
    pub left_out: std::collections::BTreeMap<String, hbcp_planner::LeftOutCount>,
    /// The same as the cycle's line says it ("6 files left out (HBase transient 1, …)").
    #[serde(skip)]
    pub left_out_summary: String,
    /// Files deleted from the target.
    pub deleted: Vec<String>,
    /// Deletions refused (over `--max-delete` without `--force`, or after an error).
    pub deletions_refused: Option<String>,
    /// Edits that were only in WALs when the cycle started (or WALs that could not be read):
    /// data at risk, not in the HFiles this cycle synced.
    pub at_risk: Vec<String>,
    /// Failures and mismatches (and source findings under `--verify deep` or `--strict`).
    pub problems: Vec<String>,
    /// What the HBase checks found wrong at the source in the files written now.
    pub source_findings: Vec<hbcp_verifier::SourceFinding>,
    /// The baseline: the first cycle, which copies what the target lacks when the sync
    /// starts; its lag is not counted in the RPO.
    pub baseline: bool,
    /// Replication lag of the files written (see [`crate::rpo`]).
    pub lag: Lag,
    /// Seconds the cycle took.
    pub elapsed_s: f64,
    /// Exit status of the cycle.
    pub exit_code: u8,
}

/// Files at the target that the source no longer has and that were not deleted (no
/// `--delete`, or over the cap): kept beside the completion manifest so that the manifests
/// together describe the whole target.
const EXTRAS_KEY: &str = ".hbcp/sync-extras.manifest.zst";

/// What the target holds, on disk under the job's state folder: from the manifests, or (a
/// recheck, or no manifests yet) from a listing; true when listed.
pub(crate) fn load_index(job: &Job, recheck: bool) -> Result<(TargetIndex, bool)> {
    let dst = job.dst.store.as_ref();
    let mut idx = TargetIndex::builder(&job.cfg.state_dir, job.cfg.write_once)?;
    if !recheck && dst.head(COMPLETION_KEY)?.is_some() && dst.head(EXTRAS_KEY)?.is_some() {
        let mut failed = None;
        for key in [COMPLETION_KEY, EXTRAS_KEY] {
            read_manifest_at(dst, key, |e: ManifestEntry| {
                if !e.d && failed.is_none() {
                    failed = idx.add(&e.k, e.s, e.checksum()).err();
                }
            })?;
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        return Ok((idx.finish()?, false));
    }
    let found = Mutex::new(idx);
    let failed = Mutex::new(None);
    let listed = dst.list("", &|e: Entry| {
        if e.kind == EntryKind::File && !(e.key.starts_with(".hbcp/")) {
            if let Err(err) = found.lock().unwrap().add(&e.key, e.size, None) {
                let hint = err.to_string();
                *failed.lock().unwrap() = Some(err);
                return Err(hbcp_store::Error::Unsupported {
                    what: "listing".into(),
                    hint,
                });
            }
        }
        Ok(())
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e.into());
    }
    listed?;
    Ok((found.into_inner().unwrap().finish()?, true))
}

/// The entries of a manifest file (the cycle's spill, its extras), streamed.
fn entries_of(path: &Path) -> Result<impl Iterator<Item = Result<ManifestEntry>>> {
    let (_, mut rd): (ManifestHeader, _) =
        RecordReader::open(path, MANIFEST_FORMAT, MANIFEST_VERSION)?;
    Ok(std::iter::from_fn(move || {
        rd.next_record::<ManifestEntry>()
            .transpose()
            .map(|r| r.map_err(Into::into))
    }))
}

/// Move `keys` (sorted) past the keys before `k`; true when `k` is one of them.
fn holds(
    keys: &mut Peekable<impl Iterator<Item = hbcp_state::Result<String>>>,
    k: &str,
) -> Result<bool> {
    loop {
        match keys.peek() {
            None => return Ok(false),
            Some(Ok(s)) if s.as_str() < k => {
                keys.next();
            }
            Some(Ok(s)) => return Ok(s == k),
            Some(Err(_)) => {
                keys.next().expect("peeked")?;
            }
        }
    }
}

/// A cycle's check: the files written now, every byte; the files kept, present with their
/// size. Each is a pass over the spill.
fn verify_cycle(
    job: &Job,
    outcome: &hbcp_engine::Outcome,
    stats: &Stats,
    mode: VerifyMode,
) -> Result<VerifyOutcome> {
    let params = |mode| Params {
        mode,
        workers: job.cfg.workers,
        range_size: job.cfg.range_size,
        chunk: job.cfg.chunk,
        hbase: job.hbase,
    };
    let noop = |_: u64| {};
    let (dst_timed, src_timed) = (
        Timed::new(job.dst.store.as_ref(), stats.ops()),
        Timed::new(job.src.store.as_ref(), stats.ops()),
    );
    let dst = &job.capped(&dst_timed);
    let src = job.capped(&src_timed);
    let mut verified = verify_file_where(
        &outcome.spill,
        dst,
        SourceCheck::Head(&src),
        None,
        &params(mode),
        &noop,
        &|e| e.n,
    )?;
    verified.merge(verify_file_where(
        &outcome.spill,
        dst,
        SourceCheck::None,
        None,
        &params(VerifyMode::Size),
        &noop,
        &|e| !e.n,
    )?);
    Ok(verified)
}

#[allow(clippy::too_many_arguments)]
fn cycle(
    job: &mut Job,
    sel: &hbcp_planner::Selection,
    n: u64,
    recheck: bool,
    a: &SyncSpec,
    max_delete: f64,
    places: &WalPlaces,
    cancel: &Arc<AtomicBool>,
    rpo: &mut Rpo<impl Clock>,
) -> Result<(Cycle, bool)> {
    let t0 = Instant::now();
    // What only the WALs hold now: reported with the cycle; without --allow-unflushed it was
    // not synced, and the cycle fails (the first cycle was refused instead, before any write).
    let at_risk = crate::preflight::at_risk(&job.src, places)?;
    // The last cycle's index goes (with its scratch files) before this one is built.
    job.cfg.known_target = None;
    let (index, listed) = load_index(job, recheck)?;
    let index = Arc::new(index);
    job.cfg.known_target = Some(index.clone());
    job.cfg.overwrite = Overwrite::Sync;
    job.cfg.started = hbcp_state::time::now_rfc3339();
    // What the listing finds is known from now.
    let mut lags = rpo.listing_starts();
    // Counted afresh each cycle: what this cycle's listing left out.
    let left_out = hbcp_planner::LeftOutTally::default();
    let feed = |src: &dyn hbcp_store::Store, sink: &ListSink<'_>| {
        src.list("", &|e: Entry| {
            if left_out.judge(sel, &e) {
                sink(e)
            } else {
                Ok(())
            }
        })
    };
    let mode = verify_mode(job.tuning.verify);
    let ran = crate::skeleton::copy_then_verify(
        job,
        "sync",
        &feed,
        cancel,
        |outcome| outcome.stop.is_none() && mode != VerifyMode::None,
        // Files written now: every byte; files kept: present with their size. Each is a pass
        // over the spill.
        |outcome, stats| verify_cycle(job, outcome, stats, mode),
    );
    job.cfg.known_target = None;
    let ran = ran?;
    let (outcome, stats) = (ran.copied.outcome, ran.copied.stats);
    let mut c = Cycle {
        cycle: n,
        target_listed: listed,
        baseline: lags.baseline,
        left_out: left_out
            .counts()
            .into_iter()
            .map(|(why, count)| {
                let keys = Vec::new();
                (why, hbcp_planner::LeftOutCount { keys, ..count })
            })
            .collect(),
        left_out_summary: left_out.summary(),
        ..Default::default()
    };
    if !at_risk.is_empty() && !a.allow_unflushed {
        c.problems.push(
            "edits only in WALs were not synced: flush them, or sync with --allow-unflushed to sync the WALs too"
                .into(),
        );
    }
    c.at_risk = at_risk;
    let interrupted = matches!(outcome.stop, Some(Stop::Interrupted)) || cancel.load(Relaxed);
    if outcome.stop.is_some() {
        // An earlier cycle wrote at the target: a listing failure now is no longer bad input.
        let wrote = n > 1 || crate::exit::wrote(&stats, &outcome);
        if let Some((exit, why)) =
            crate::exit::early_end(outcome.stop.as_ref(), interrupted, wrote, None)
        {
            c.problems.push(why);
            c.exit_code = exit.code();
            return Ok((c, interrupted));
        }
    }
    let verified = ran.verified.unwrap_or_default();
    rpo.verified(&mut lags);
    for k in outcome
        .failures
        .iter()
        .map(|f| &f.key)
        .chain(verified.mismatches.iter().map(|m| &m.key))
    {
        rpo.failed(&mut lags, k);
    }
    // One more pass: the lags of the files written now; the source's keys, sorted on disk, for
    // the extras; and with deletions at a local target, the folders the source has.
    let state = job.cfg.state_dir.clone();
    let mut source = ExternalSort::<String>::new(&state, SORT_BATCH, |a, b| a.cmp(b));
    let mut dirs = if a.delete && job.dst.store.caps().is_local {
        Some(TargetIndex::builder(&state, job.cfg.write_once)?)
    } else {
        None
    };
    for e in entries_of(&outcome.spill)? {
        let e = e?;
        if e.n && !e.d && !rpo.has_failed(&lags, &e.k) {
            rpo.written(&mut lags, &e.k, e.m);
        }
        if let (true, Some(d)) = (e.d, dirs.as_mut()) {
            d.add(&e.k, 0, None)?;
        }
        source.push(e.k)?;
    }
    c.lag = rpo.finish(lags);
    c.files_copied = stats.files_copied.load(Relaxed);
    c.bytes_copied = stats.bytes_copied.load(Relaxed);
    c.files_unchanged = stats.files_skipped.load(Relaxed);
    c.problems.extend(
        outcome
            .failures
            .iter()
            .map(|f| format!("failed: {}: {}", f.key, f.error)),
    );
    c.problems
        .extend(verified.mismatches.iter().map(|m| m.to_string()));
    crate::commands::warn_findings(&verified.source_findings);
    if crate::commands::findings_fail(mode, job.tuning.strict, &verified.source_findings) {
        c.problems
            .extend(verified.source_findings.iter().map(|f| f.to_string()));
    }
    c.source_findings = verified.source_findings.clone();
    let clean = c.problems.is_empty();
    // The target files the source no longer has (a merge of the index's keys with the
    // source's, both in order), to a manifest file: deleted, or kept as the extras manifest.
    let header = ManifestHeader::new(
        &job.cfg.source_label,
        &job.cfg.target_label,
        job.cfg.range_size,
        &job.cfg.started,
    );
    let extras_path = state.join("extras.manifest.zst");
    let mut w = manifest::create(&extras_path, &header)?;
    let mut held = source.finish()?.peekable();
    for t in index.iter() {
        let (k, known) = t?;
        if !holds(&mut held, &k)? && sel.accepts_key(&k) {
            w.write(&ManifestEntry {
                k,
                s: known.size,
                h: known.hash.map(hbcp_state::checksum::hex),
                v: None,
                d: false,
                n: false,
                c: false,
                m: None,
                md5: None,
                t: None,
            })?;
        }
    }
    drop(held);
    let extra = w.records();
    w.finish()?;
    let target_files = index.len();
    drop(index);
    // Deletions: only after a clean, verified copy.
    let mut deleted_all = false;
    if a.delete {
        let share = extra as f64 / target_files.max(1) as f64;
        if !clean {
            if extra > 0 {
                c.deletions_refused =
                    Some(format!("{extra} deletions not done: this cycle had errors"));
            }
        } else if mode == VerifyMode::None {
            if extra > 0 {
                c.deletions_refused =
                    Some("deletions need a verified copy; not with --verify none".into());
            }
        } else if share > max_delete && !a.force {
            c.deletions_refused = Some(format!(
                "would delete {extra} of {target_files} target files ({:.1}%), more than --max-delete {:.1}%; pass --force to delete them",
                share * 100.0,
                max_delete * 100.0
            ));
        } else {
            let dirs = dirs.take().map(|d| d.finish()).transpose()?;
            // In key order, as the extras were found.
            for e in entries_of(&extras_path)? {
                let k = e?.k;
                match job.dst.store.delete(&k) {
                    Ok(()) => {
                        if let Some(d) = &dirs {
                            // A folder the source has stays (and one the index cannot
                            // tell of).
                            crate::tidy::prune_empty_parents(job.dst.store.as_ref(), &k, |p| {
                                !matches!(d.get(p), Ok(None))
                            });
                        }
                        c.deleted.push(k);
                    }
                    Err(e) => c.problems.push(format!("delete {k}: {e}")),
                }
            }
            deleted_all = true;
        }
    }
    drop(dirs);
    if c.problems.is_empty() && mode != VerifyMode::None {
        // The manifests now describe the target: the next cycle starts from them, and the
        // journal of this cycle is no longer needed. Without a problem, a deletion pass
        // deleted every extra.
        if deleted_all {
            let none = manifest::encode(&header, std::iter::empty())?;
            job.dst.store.put(EXTRAS_KEY, &none)?;
        } else {
            manifest::upload_file(
                job.dst.store.as_ref(),
                EXTRAS_KEY,
                &extras_path,
                &job.cfg.job,
            )?;
        }
        crate::commands::write_completion(job, &outcome, &verified, COMPLETION_KEY)?;
        let _ = std::fs::remove_dir_all(&job.cfg.state_dir);
    } else {
        let _ = std::fs::remove_file(&extras_path);
    }
    cleanup_staging(job);
    c.exit_code = if !c.problems.is_empty() || c.deletions_refused.is_some() {
        1
    } else {
        0
    };
    c.elapsed_s = t0.elapsed().as_secs_f64();
    Ok((c, false))
}

/// `hbcp sync`.
pub fn sync(a: SyncSpec) -> Result<Exit> {
    crate::commands::validate_memory(&a.tuning, &a.ends.src, &a.ends.dst)?;
    let sel = selection(&a.selection.exclude)?;
    let (max_delete, interval) = (a.max_delete, a.interval);
    if a.recheck == 0 {
        return usage("--recheck must be at least 1 (1 = list the target every cycle)");
    }
    let src = open_source(&a.ends.src, a.tuning.allow_http)?;
    // The rules of `copy`: what is copied (no transient folders, no WALs unless
    // --allow-unflushed), and the WAL guard before anything is written.
    let sel = crate::select::copy_rules(&src, sel, a.allow_unflushed)?;
    let places = WalPlaces::open(&a.wals, a.tuning.allow_http)?;
    if !a.allow_unflushed {
        if let Some(msg) = crate::preflight::unflushed_guard(&src, &[], &places)? {
            return usage(msg);
        }
    }
    if a.dry_run && a.watch {
        return usage("--dry-run shows what one sync would do: drop --watch");
    }
    let dst = open_target_for(&a.ends.dst, &src, a.tuning.allow_http, !a.dry_run)?;
    let mut excludes = a.selection.exclude.clone();
    excludes.push("\0sync".into());
    // A cycle shows no progress display: its line (or JSON line) per cycle is the display.
    let quiet: Arc<dyn crate::Observer> = Arc::new(crate::observe::Quiet);
    let mut job = build_job(
        &quiet,
        "sync",
        src,
        dst,
        &excludes,
        a.tuning.clone(),
        None,
        None,
    )?;
    job.hbase = if crate::select::is_hbase_root(job.src.store.as_ref())? {
        Some(hbcp_verifier::HbaseLayout::Root)
    } else {
        None
    };
    if a.dry_run {
        return crate::dryrun::sync(job, &sel, &a, max_delete);
    }
    let cancel = install_signals()?;
    let _lock = crate::commands::lock_target(&job, &cancel)?;
    let json = a.tuning.progress == ProgressMode::Json;
    let mut n = 0u64;
    let mut worst = 0u8;
    let mut all: Vec<Cycle> = Vec::new();
    let mut rpo = Rpo::new(crate::rpo::SystemClock);
    loop {
        n += 1;
        // List the target every --recheck cycles, and after a cycle that found a problem.
        let recheck = n % a.recheck as u64 == 0 || all.last().is_some_and(|c| c.exit_code != 0);
        let (c, interrupted) = cycle(
            &mut job, &sel, n, recheck, &a, max_delete, &places, &cancel, &mut rpo,
        )?;
        // The baseline's lag is the time it took to copy what the target lacked: said apart.
        let lag = if c.baseline {
            "the baseline (not counted in the RPO)".to_string()
        } else {
            format!(
                "lag p50 {:.1}s p99 {:.1}s max {:.1}s",
                c.lag.p50_s, c.lag.p99_s, c.lag.max_s
            )
        };
        let line = format!(
            "hbcp: sync cycle {}: {} files written ({}), {} unchanged, {} deleted; {}; {lag}; {:.1}s{}",
            c.cycle,
            c.files_copied,
            bytes(c.bytes_copied),
            c.files_unchanged,
            c.deleted.len(),
            c.left_out_summary,
            c.elapsed_s,
            if c.target_listed {
                " (target listed)"
            } else {
                ""
            }
        );
        if json {
            outln!("{}", serde_json::json!({"event": "cycle", "cycle": &c}));
        }
        errln!("{line}");
        for d in &c.deleted {
            errln!("hbcp: deleted: {d}");
        }
        for r in &c.at_risk {
            errln!("hbcp: data at risk (only in WALs at cycle time): {r}");
        }
        for p in &c.problems {
            errln!("hbcp: {p}");
        }
        if let Some(r) = &c.deletions_refused {
            errln!("hbcp: {r}");
        }
        if !interrupted {
            worst = worst.max(c.exit_code);
        }
        all.push(c);
        if interrupted || cancel.load(Relaxed) || !a.watch {
            break;
        }
        // Wait for the next cycle; a signal ends the wait at once.
        let until = Instant::now() + interval;
        while Instant::now() < until && !cancel.load(Relaxed) {
            std::thread::park_timeout((until - Instant::now()).min(Duration::from_millis(100)));
        }
        if cancel.load(Relaxed) {
            break;
        }
    }
    // After the baseline: the worst lag, and with --watch the interval on top.
    let max_lag = rpo.worst_s();
    let promise = if a.watch {
        rpo.promise_s(interval.as_secs_f64())
    } else {
        max_lag
    };
    if let Some(path) = &job.tuning.report {
        let report = serde_json::json!({
            "command": "sync",
            "source": job.src.url.display,
            "target": job.dst.url.display,
            "cycles": all,
            "worst_lag_s": max_lag,
            "rpo_s": promise,
            "files": all.iter().map(|c| c.files_copied + c.files_unchanged).next_back().unwrap_or(0),
            "bytes": all.iter().map(|c| c.bytes_copied).sum::<u64>(),
            "deleted": all.iter().flat_map(|c| c.deleted.clone()).collect::<Vec<_>>(),
            "exit_code": worst,
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
        std::fs::rename(&tmp, path)?;
    }
    if a.watch {
        match (max_lag, promise) {
            (Some(w), Some(p)) => errln!(
                "hbcp: sync stopped after {} cycles; worst lag after the baseline {:.1}s; RPO you can promise at this interval: {:.0}s",
                all.len(),
                w,
                p
            ),
            _ => errln!(
                "hbcp: sync stopped after {} cycle: the baseline only, no lag measured yet (RPO unknown)",
                all.len()
            ),
        }
        // A watch ends by a signal: a clean stop.
        return Ok(if worst == 0 { Exit::Ok } else { Exit::Failed });
    }
    let last = all.last().map(|c| c.exit_code).unwrap_or(1);
    Ok(match last {
        0 => Exit::Ok,
        2 => Exit::Usage,
        3 => Exit::Interrupted,
        _ => Exit::Failed,
    })
}
