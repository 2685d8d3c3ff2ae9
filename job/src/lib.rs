//! hbcp job: the run orchestration of every command, between the binary (arguments, printing,
//! progress rendering, exit codes) and the stages (planner, engine, verifier, store).
//!
//! - [`spec`]: what a run is asked to do, as plain validated data ([`JobSpec`]);
//! - [`run`]: runs one [`JobSpec`] and says how it ended ([`Exit`]);
//! - [`observe`]: the [`Observer`] through which a run shows its progress;
//! - [`report`]: the `--report` JSON document;
//! - [`exit`]: how every command ends (exit statuses, the resume line, signals).
//!
//! It must never import clap or indicatif (nor any display): the binary parses the command
//! line into a [`JobSpec`], implements [`Observer`], and maps [`Exit`] to the process status.

// First: its `errln!`/`outln!` are used by the modules below.
#[macro_use]
pub mod exit;

mod auth;
mod backup;
mod bench;
mod commands;
mod dryrun;
mod genproof;
mod genrestore;
mod genstore;
mod heartbeat;
mod jobs;
pub mod observe;
mod poolclaim;
mod preflight;
pub mod report;
mod rpo;
mod select;
mod skeleton;
pub mod spec;
mod sync;
mod tidy;

pub use exit::{Exit, UsageError, usage};
pub use observe::{Observer, Phase, Watch};
pub use spec::JobSpec;

/// Run one command to its end: `Ok` with its exit status, or the error that stopped it (map it
/// with [`exit::of_error`], which prints it and the resume line when the command resumes).
pub fn run(spec: JobSpec, observer: std::sync::Arc<dyn Observer>) -> anyhow::Result<Exit> {
    let r = commands::run(spec, observer);
    // An error is recorded where it is printed (`exit::of_error`).
    if let Ok(exit) = &r {
        jobs::ended(*exit, None);
    }
    r
}
