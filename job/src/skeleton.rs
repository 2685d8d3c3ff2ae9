//! The run skeleton every copying command goes through (copy, run, sync, backup, restore):
//! the progress display starts, the target is marked as being written, the engine copies, the
//! display switches to the verify phase while the command's own check runs, and stops before
//! the command concludes (publish, completion manifest, outcome). `hbcp_engine::copy` is called
//! here only, with its error mapped once ([`crate::exit::engine_error`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use hbcp_engine::{Feed, Outcome, Stats};
use hbcp_verifier::{VerifyMode, VerifyOutcome};

use crate::Exit;
use crate::commands::Job;
use crate::observe::Phase;

/// What the copy did.
pub(crate) struct Copied {
    /// The engine's outcome.
    pub(crate) outcome: Outcome,
    /// The run's counters (the report's figures).
    pub(crate) stats: Arc<Stats>,
    /// Seconds the copy took (the verification excluded).
    pub(crate) copy_secs: f64,
}

/// What the copy did and, when it ran, what the command's check found.
pub(crate) struct Ran<V> {
    /// The copy.
    pub(crate) copied: Copied,
    /// The check's result; `None` when `verifies` said no.
    pub(crate) verified: Option<V>,
}

/// Copy `feed`'s entries from `job.src` to `job.dst` under `job.observer`'s display; then, when
/// `verifies(outcome)`, run `verify` in the verify phase. `what` names the command in the
/// error of an engine that could not start ("cannot start the backup").
pub(crate) fn copy_then_verify<V>(
    job: &Job,
    what: &str,
    feed: &Feed<'_>,
    cancel: &Arc<AtomicBool>,
    verifies: impl FnOnce(&Outcome) -> bool,
    verify: impl FnOnce(&Outcome, &Arc<Stats>) -> Result<V>,
) -> Result<Ran<V>> {
    let stats = Arc::new(Stats::default());
    let watch = job.observer.watch(stats.clone(), job.tuning.progress);
    crate::jobs::started(job, &stats);
    crate::exit::writing();
    let outcome = hbcp_engine::copy(
        job.src.store.as_ref(),
        job.dst.store.as_ref(),
        feed,
        &job.cfg,
        &stats,
        cancel,
    )
    .map_err(|e| crate::exit::engine_error(e, &format!("cannot start the {what}")))?;
    let copy_secs = stats.elapsed().as_secs_f64();
    let verified = if verifies(&outcome) {
        watch.phase(Phase::Verify);
        Some(verify(&outcome, &stats)?)
    } else {
        None
    };
    drop(watch);
    Ok(Ran {
        copied: Copied {
            outcome,
            stats,
            copy_secs,
        },
        verified,
    })
}

/// The end of a run that copied a tree and checked it: when it succeeded and was verified, the
/// completion manifest at `key` (a failure to write it fails the run); the staging folders
/// cleaned; then the summary, the report and the status ([`crate::commands::finish`]).
pub(crate) fn complete(
    job: &Job,
    copied: &Copied,
    verified: &VerifyOutcome,
    mode: VerifyMode,
    exit: Exit,
    status: String,
    key: &str,
) -> Result<Exit> {
    if exit == Exit::Ok && mode != VerifyMode::None {
        if let Err(e) = crate::commands::write_completion(job, &copied.outcome, verified, key) {
            errln!("hbcp: cannot write the completion manifest: {e:#}");
            return crate::commands::finish(
                job,
                copied,
                verified,
                mode,
                Exit::Failed,
                "verified, but the completion manifest could not be written".into(),
            );
        }
        crate::jobs::completion_written();
    }
    crate::commands::cleanup_staging(job);
    crate::commands::finish(job, copied, verified, mode, exit, status)
}
