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

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use hbcp_engine::{Overwrite, Stats, Stop, TargetIndex};
use hbcp_store::timed::Timed;
use hbcp_store::{Entry, EntryKind, ListSink};
use hbcp_verifier::check::{Params, verify_entries};
use hbcp_verifier::manifest::{self, COMPLETION_KEY, ManifestEntry};
use hbcp_verifier::{VerifyMode, VerifyOutcome};
use serde::Serialize;

use crate::cli::{ProgressArg, SyncArgs};
use crate::commands::{
    Job, build_job, cleanup_staging, install_signals, open_source, open_target, read_manifest_at,
    selection, shell_quote, validate_tuning, verify_mode,
};
use crate::progress::bytes;
use crate::{Exit, usage};

/// Replication lag of the files written in a cycle: from their appearance at the source
/// (modification time) to their verified presence at the target.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Lag {
    /// Files measured.
    pub files: u64,
    /// Median, seconds.
    pub p50_s: f64,
    /// 99th percentile, seconds.
    pub p99_s: f64,
    /// Maximum, seconds.
    pub max_s: f64,
}

fn lag_of(mut v: Vec<f64>) -> Lag {
    if v.is_empty() {
        return Lag::default();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    Lag {
        files: v.len() as u64,
        p50_s: q(0.5),
        p99_s: q(0.99),
        max_s: *v.last().unwrap(),
    }
}

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
    /// Files deleted from the target.
    pub deleted: Vec<String>,
    /// Deletions refused (over `--max-delete` without `--force`, or after an error).
    pub deletions_refused: Option<String>,
    /// Failures and mismatches (and source findings under `--verify deep` or `--strict`).
    pub problems: Vec<String>,
    /// What the HBase checks found wrong at the source in the files written now.
    pub source_findings: Vec<hbcp_verifier::SourceFinding>,
    /// Replication lag.
    pub lag: Lag,
    /// Seconds the cycle took.
    pub elapsed_s: f64,
    /// Exit status of the cycle.
    pub exit_code: u8,
}

/// Parse a share: `0.05`, `5%`.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = if let Some(p) = t.strip_suffix('%') {
        p.trim().parse::<f64>().map(|x| x / 100.0)
    } else {
        t.parse::<f64>()
    }
    .map_err(|_| format!("{s:?}: expected a share such as 5% or 0.05"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{s:?}: a share is between 0% and 100%"));
    }
    Ok(v)
}

/// Files at the target that the source no longer has and that were not deleted (no
/// `--delete`, or over the cap): kept beside the completion manifest so that the manifests
/// together describe the whole target.
const EXTRAS_KEY: &str = ".hbcp/sync-extras.manifest.zst";

fn load_index(job: &Job, recheck: bool) -> Result<(TargetIndex, bool)> {
    let dst = job.dst.store.as_ref();
    let mut idx = TargetIndex::default();
    if !recheck && dst.head(COMPLETION_KEY)?.is_some() && dst.head(EXTRAS_KEY)?.is_some() {
        for key in [COMPLETION_KEY, EXTRAS_KEY] {
            read_manifest_at(dst, key, |e: ManifestEntry| {
                if !e.d {
                    let h = e.checksum();
                    idx.add(&e.k, e.s, h);
                }
            })?;
        }
        return Ok((idx, false));
    }
    let found = std::sync::Mutex::new(TargetIndex::default());
    dst.list("", &|e: Entry| {
        if e.kind == EntryKind::File && !(e.key.starts_with(".hbcp/")) {
            found.lock().unwrap().add(&e.key, e.size, None);
        }
        Ok(())
    })?;
    Ok((found.into_inner().unwrap(), true))
}

fn read_spill(path: &std::path::Path) -> Result<Vec<ManifestEntry>> {
    let mut v = Vec::new();
    manifest::read(
        std::fs::File::open(path)?,
        &path.display().to_string(),
        |e| {
            v.push(e);
            Ok(())
        },
    )?;
    Ok(v)
}

/// Remove `key`'s parent folders that are now empty (local targets keep folders).
fn prune_empty_parents(job: &Job, key: &str, keep: &HashSet<&str>) {
    if !job.dst.store.caps().is_local {
        return;
    }
    let root = std::path::PathBuf::from(job.dst.store.describe());
    let mut k = key;
    while let Some((parent, _)) = k.rsplit_once('/') {
        if keep.contains(parent) {
            break;
        }
        let p = root.join(parent);
        let empty = std::fs::read_dir(&p).is_ok_and(|mut rd| rd.next().is_none());
        if !empty || job.dst.store.delete(parent).is_err() {
            break;
        }
        k = parent;
    }
}

#[allow(clippy::too_many_arguments)]
fn cycle(
    job: &mut Job,
    sel: &hbcp_planner::Selection,
    n: u64,
    recheck: bool,
    a: &SyncArgs,
    max_delete: f64,
    cancel: &Arc<AtomicBool>,
) -> Result<(Cycle, bool)> {
    let t0 = Instant::now();
    let (index, listed) = load_index(job, recheck)?;
    let index = Arc::new(index);
    job.cfg.known_target = Some(index.clone());
    job.cfg.overwrite = Overwrite::Sync;
    job.cfg.started = hbcp_planner::plan::now_rfc3339();
    let stats = Arc::new(Stats::default());
    let feed = move |src: &dyn hbcp_store::Store, sink: &ListSink<'_>| {
        src.list("", &|e: Entry| {
            if sel.accepts(&e) { sink(e) } else { Ok(()) }
        })
    };
    let outcome = hbcp_engine::copy(
        job.src.store.as_ref(),
        job.dst.store.as_ref(),
        &feed,
        &job.cfg,
        &stats,
        cancel,
    )?;
    let mut c = Cycle {
        cycle: n,
        target_listed: listed,
        ..Default::default()
    };
    let interrupted = matches!(outcome.stop, Some(Stop::Interrupted)) || cancel.load(Relaxed);
    if let Some(stop) = &outcome.stop {
        c.problems.push(format!("{stop:?}"));
        c.exit_code = if interrupted { 3 } else { 1 };
        return Ok((c, interrupted));
    }
    let entries = read_spill(&outcome.spill)?;
    let params = |mode| Params {
        mode,
        workers: job.cfg.workers,
        range_size: job.cfg.range_size,
        chunk: job.cfg.chunk,
        hbase: job.hbase,
    };
    let mode = verify_mode(job.tuning.verify);
    let noop = |_: u64| {};
    // Files written now: every byte; files kept: present with their size.
    let mut verified = VerifyOutcome::default();
    if mode != VerifyMode::None {
        let fresh = entries.iter().filter(|e| e.n).cloned().collect::<Vec<_>>();
        let kept = entries.iter().filter(|e| !e.n).cloned().collect::<Vec<_>>();
        let dst = &Timed::new(job.dst.store.as_ref(), stats.ops());
        let v1 = verify_entries(
            dst,
            Some(&Timed::new(job.src.store.as_ref(), stats.ops())),
            fresh.into_iter(),
            &params(mode),
            &noop,
        )?;
        let v2 = verify_entries(
            dst,
            None,
            kept.into_iter(),
            &params(VerifyMode::Size),
            &noop,
        )?;
        verified = v1;
        verified.merge(v2);
    }
    let verified_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    c.lag = lag_of(
        entries
            .iter()
            .filter(|e| e.n && !e.d)
            .filter_map(|e| e.m.map(|m| (verified_at - m).max(0.0)))
            .collect(),
    );
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
    // Deletions: only after a clean, verified copy.
    let source: HashSet<&str> = entries.iter().map(|e| e.k.as_str()).collect();
    let extra: Vec<&String> = index
        .by_key
        .keys()
        .filter(|k| !source.contains(k.as_str()) && sel.accepts_key(k))
        .collect();
    if a.delete {
        let share = extra.len() as f64 / index.by_key.len().max(1) as f64;
        if !clean {
            if !extra.is_empty() {
                c.deletions_refused = Some(format!(
                    "{} deletions not done: this cycle had errors",
                    extra.len()
                ));
            }
        } else if mode == VerifyMode::None {
            if !extra.is_empty() {
                c.deletions_refused =
                    Some("deletions need a verified copy; not with --verify none".into());
            }
        } else if share > max_delete && !a.force {
            c.deletions_refused = Some(format!(
                "would delete {} of {} target files ({:.1}%), more than --max-delete {:.1}%; pass --force to delete them",
                extra.len(),
                index.by_key.len(),
                share * 100.0,
                max_delete * 100.0
            ));
        } else {
            let dirs: HashSet<&str> = entries
                .iter()
                .filter(|e| e.d)
                .map(|e| e.k.as_str())
                .collect();
            for k in extra.iter().copied() {
                match job.dst.store.delete(k) {
                    Ok(()) => {
                        prune_empty_parents(job, k, &dirs);
                        c.deleted.push(k.clone());
                    }
                    Err(e) => c.problems.push(format!("delete {k}: {e}")),
                }
            }
            c.deleted.sort();
        }
    }
    if c.problems.is_empty() && mode != VerifyMode::None {
        // The manifests now describe the target: the next cycle starts from them, and the
        // journal of this cycle is no longer needed.
        let deleted: HashSet<&str> = c.deleted.iter().map(|d| d.as_str()).collect();
        let remaining = extra
            .iter()
            .filter(|k| !deleted.contains(k.as_str()))
            .map(|k| {
                let (size, hash) = index.by_key[*k];
                let mut m = ManifestEntry::dir(k);
                m.d = false;
                m.n = false;
                m.s = size;
                m.h = hash.map(hbcp_verifier::checksum::hex);
                m
            });
        let header = manifest::ManifestHeader::new(
            &job.cfg.source_label,
            &job.cfg.target_label,
            job.cfg.range_size,
            &job.cfg.started,
        );
        let bytes_ = manifest::encode(&header, remaining)?;
        job.dst.store.put(EXTRAS_KEY, &bytes_)?;
        crate::commands::write_completion(job, &outcome, &verified, COMPLETION_KEY)?;
        let _ = std::fs::remove_dir_all(&job.cfg.state_dir);
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
pub fn sync(a: SyncArgs) -> Result<Exit> {
    validate_tuning(&a.tuning)?;
    crate::commands::validate_memory(&a.tuning, &a.ends.src, &a.ends.dst)?;
    let sel = selection(&a.selection.exclude)?;
    let max_delete = match parse_share(&a.max_delete) {
        Ok(v) => v,
        Err(e) => return usage(format!("--max-delete {e}")),
    };
    let interval = match humantime::parse_duration(&a.interval) {
        Ok(d) if d >= Duration::from_millis(100) => d,
        Ok(_) => return usage("--interval must be at least 100ms"),
        Err(e) => {
            return usage(format!(
                "--interval {:?}: {e}; expected e.g. 30s, 5m, 1h",
                a.interval
            ));
        }
    };
    if a.recheck == 0 {
        return usage("--recheck must be at least 1 (1 = list the target every cycle)");
    }
    let src = open_source(&a.ends.src, a.tuning.allow_http)?;
    let dst = open_target(&a.ends.dst, &src, a.tuning.allow_http)?;
    let resume_cmd = std::env::args()
        .map(|x| shell_quote(&x))
        .collect::<Vec<_>>()
        .join(" ");
    let mut excludes = a.selection.exclude.clone();
    excludes.push("\0sync".into());
    let mut job = build_job(
        "sync",
        src,
        dst,
        &excludes,
        a.tuning.clone(),
        None,
        resume_cmd,
        None,
    )?;
    job.hbase = if crate::select::is_hbase_root(job.src.store.as_ref())? {
        Some(hbcp_verifier::HbaseLayout::Root)
    } else {
        None
    };
    let cancel = install_signals()?;
    let json = a.tuning.progress == ProgressArg::Json;
    let mut n = 0u64;
    let mut worst = 0u8;
    let mut all: Vec<Cycle> = Vec::new();
    loop {
        n += 1;
        // List the target every --recheck cycles, and after a cycle that found a problem.
        let recheck = n % a.recheck as u64 == 0 || all.last().is_some_and(|c| c.exit_code != 0);
        let (c, interrupted) = cycle(&mut job, &sel, n, recheck, &a, max_delete, &cancel)?;
        let line = format!(
            "hbcp: sync cycle {}: {} files written ({}), {} unchanged, {} deleted; lag p50 {:.1}s p99 {:.1}s max {:.1}s; {:.1}s{}",
            c.cycle,
            c.files_copied,
            bytes(c.bytes_copied),
            c.files_unchanged,
            c.deleted.len(),
            c.lag.p50_s,
            c.lag.p99_s,
            c.lag.max_s,
            c.elapsed_s,
            if c.target_listed {
                " (target listed)"
            } else {
                ""
            }
        );
        if json {
            println!("{}", serde_json::json!({"event": "cycle", "cycle": &c}));
        }
        eprintln!("{line}");
        for d in &c.deleted {
            eprintln!("hbcp: deleted: {d}");
        }
        for p in &c.problems {
            eprintln!("hbcp: {p}");
        }
        if let Some(r) = &c.deletions_refused {
            eprintln!("hbcp: {r}");
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
    let lags: Vec<Lag> = all.iter().map(|c| c.lag).collect();
    let max_lag = lags.iter().map(|l| l.max_s).fold(0.0, f64::max);
    let rpo = if a.watch {
        max_lag + interval.as_secs_f64()
    } else {
        max_lag
    };
    if let Some(path) = &job.tuning.report {
        let report = serde_json::json!({
            "command": "sync",
            "source": job.src.url.display,
            "target": job.dst.url.display,
            "cycles": all,
            "rpo_s": rpo,
            "files": all.iter().map(|c| c.files_copied + c.files_unchanged).last().unwrap_or(0),
            "bytes": all.iter().map(|c| c.bytes_copied).sum::<u64>(),
            "deleted": all.iter().flat_map(|c| c.deleted.clone()).collect::<Vec<_>>(),
            "exit_code": worst,
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
        std::fs::rename(&tmp, path)?;
    }
    if a.watch {
        eprintln!(
            "hbcp: sync stopped after {} cycles; worst lag {:.1}s; RPO you can promise at this interval: {:.0}s",
            all.len(),
            max_lag,
            rpo
        );
        // A watch ends by a signal: a clean stop.
        return Ok(if worst == 0 { Exit::Ok } else { Exit::Failed });
    }
    let last = all.last().map(|c| c.exit_code).unwrap_or(1);
    Ok(match last {
        0 => Exit::Ok,
        3 => Exit::Interrupted,
        _ => Exit::Failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_lags() {
        assert_eq!(parse_share("5%").unwrap(), 0.05);
        assert_eq!(parse_share("0.2").unwrap(), 0.2);
        assert!(parse_share("150%").is_err());
        assert!(parse_share("lots").is_err());
        let l = lag_of(vec![3.0, 1.0, 2.0]);
        assert_eq!((l.files, l.p50_s, l.max_s), (3, 2.0, 3.0));
        assert_eq!(lag_of(vec![]).files, 0);
    }
}
