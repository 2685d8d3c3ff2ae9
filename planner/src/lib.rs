//! The hbcp planner: decides what to copy and cuts it into tasks.
//!
//! The planner is pure bookkeeping over a stream of listing entries: a [`Selection`] says which
//! entries belong to the job, [`split`] cuts a file into byte ranges, [`LargestFirst`] orders a
//! bounded window of files so that the big ones start early and the tail is short, and
//! [`plan`] reads and writes the versioned, checksummed plan file. [`records`] is the framed,
//! zstd-compressed record format shared by plan files and manifests; [`extsort`] sorts more of
//! them than fit in memory.
#![warn(missing_docs, unreachable_pub)]

pub mod extsort;
pub mod order;
pub mod plan;
pub mod records;
pub mod select;
pub mod shard;
pub mod split;
pub mod view;

pub use order::LargestFirst;
pub use select::{HbaseRules, LeftOut, LeftOutCount, LeftOutTally, Scope, Selection};
pub use split::{range_count, ranges};
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
}
