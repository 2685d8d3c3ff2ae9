//! The hbcp verifier: proves that a target matches its source before a copy is called complete.
//!
//! - The checksum scheme and the manifest it checks against are `hbcp_state`'s; the completion
//!   manifest at `DST/.hbcp/manifest.json.zst` is written only when every check holds.
//! - [`generation`]: point-in-time generations of a backup target (`hbcp backup`): their
//!   manifests, the layout, and the pruning rule.
//! - [`check`]: the checks — a target against the manifest of a copy, or two trees against each
//!   other (`hbcp verify`) — listing every missing, extra, short or differing file.
//! - [`listed`]: the `service` way from the target's listing, no request per file.
//! - [`transport`]: the `transport` way, a file whose every part the service checked on arrival.
//! - [`hbase`]: the HBase checks of a verified HBase target (HFile trailers, `--verify deep`
//!   block walks, HFileLinks and References resolving at the source): source findings,
//!   kept apart from the copy faults.
//!
//! It must never import `hbcp-planner` or `hbcp-engine`: the job's selection comes in as a
//! predicate ([`check::Accepts`]), the manifest and checksums are `hbcp-state`'s.
#![warn(missing_docs, unreachable_pub)]

pub mod check;
pub mod generation;
pub mod hbase;
pub mod listed;
pub mod transport;

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
    Format(hbcp_state::Error),
}

impl From<hbcp_state::Error> for Error {
    fn from(e: hbcp_state::Error) -> Self {
        match e {
            hbcp_state::Error::Store(s) => Error::Store(s),
            other => Error::Format(other),
        }
    }
}
