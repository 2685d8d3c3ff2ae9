//! The hbcp planner: decides what to copy and cuts it into tasks.
//!
//! The planner is pure bookkeeping over a stream of listing entries: a [`Selection`] says which
//! entries belong to the job, [`view`] resolves an HBase selection, [`shard`] splits a plan
//! between machines, and [`plan`] reads and writes the versioned, checksummed plan file (in `hbcp_state`'s framed
//! record format).
//!
//! It must never import `hbcp-engine` or `hbcp-verifier`; its files are in `hbcp-state`'s
//! record format.
#![warn(missing_docs, unreachable_pub)]

pub mod plan;
pub mod select;
pub mod shard;
pub mod view;

pub use select::{HbaseRules, LeftOut, LeftOutCount, LeftOutTally, Scope, Selection};
pub mod items;
pub use view::{Layout, SelectSpec, View, ViewListing, ViewStore, build_view};

/// Result with the planner error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the planner and of its file formats.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A selection pattern that does not parse.
    #[error("bad --exclude pattern {pattern:?}: {why}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        why: String,
    },
    /// A plan, manifest or journal file that is not what it should be.
    #[error("{path}: {why}")]
    BadFile {
        /// The file.
        path: String,
        /// What was expected.
        why: String,
    },
    /// An I/O error on a plan or manifest file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A store error while planning.
    #[error(transparent)]
    Store(#[from] hbcp_store::Error),
    /// A state file (records, sort runs) that cannot be written or read.
    #[error(transparent)]
    State(hbcp_state::Error),
}

impl From<hbcp_state::Error> for Error {
    fn from(e: hbcp_state::Error) -> Self {
        match e {
            hbcp_state::Error::BadFile { path, why } => Error::BadFile { path, why },
            hbcp_state::Error::Io { path, source } => Error::Io { path, source },
            hbcp_state::Error::Store(s) => Error::Store(s),
            other => Error::State(other),
        }
    }
}
