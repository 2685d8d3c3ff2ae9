//! The hbcp verifier: proves that a target matches its source before a copy is called complete.
//!
//! - [`checksum`]: the one checksum scheme (xxh3 per range, combined), shared by the engine
//!   that hashes what it reads and the verifier that re-reads the target.
//! - [`manifest`]: the per-file manifest (key, size, checksum) — the completion manifest at
//!   `DST/.hbcp/manifest.json.zst` is written only when every check holds.
//! - [`generation`]: point-in-time generations of a backup target (`hbcp backup`): their
//!   manifests, the layout, and the pruning rule.
//! - [`check`]: the checks — a target against the manifest of a copy, or two trees against each
//!   other (`hbcp verify`) — listing every missing, extra, short or differing file.
//! - [`hbase`]: the HBase checks of a verified HBase target (HFile trailers, `--verify deep`
//!   block walks, HFileLinks and References resolving at the source): source findings,
//!   kept apart from the copy faults.
#![warn(missing_docs, unreachable_pub)]

pub mod check;
pub mod checksum;
pub mod generation;
pub mod hbase;
pub mod manifest;

pub use check::{Mismatch, MismatchKind, VerifyMode, VerifyOutcome, Way, Ways};
pub use hbase::{FindingKind, HbaseLayout, SourceFinding};

/// Result with the verifier error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors that stop a verification (as opposed to mismatches, which are findings).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store error (listing failed, say).
    #[error(transparent)]
    Store(#[from] hbcp_store::Error),
    /// A manifest error.
    #[error(transparent)]
    Format(#[from] hbcp_planner::Error),
}
