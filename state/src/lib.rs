//! hbcp's on-disk state: the formats a job writes and reads back, and nothing that decides what
//! to copy or moves bytes.
//!
//! - [`records`]: the framed, zstd-compressed, checksummed record file shared by plans,
//!   manifests, generations and sort runs.
//! - [`extsort`]: sorts more records than fit in memory (runs in [`records`] files, merged).
//! - [`ranges`]: the split arithmetic — a file cut into byte ranges.
//! - [`checksum`]: the one checksum scheme (xxh3 per range, combined), shared by the engine that
//!   hashes what it reads and the verifier that re-reads the target.
//! - [`manifest`]: the per-file manifest (key, size, checksum) — the copy's spill and the
//!   completion manifest at `DST/.hbcp/manifest.json.zst`.
//! - [`journal`]: the append-only resume journal of a job.
//! - [`time`]: the RFC 3339 time stamps these files carry.
//!
//! It must never import the planner, engine, verifier or HBase crates (they all depend on it):
//! only `hbcp-store` (entries, the Store trait) below it.
#![warn(missing_docs, unreachable_pub)]

pub mod checksum;
pub mod extsort;
pub mod journal;
pub mod manifest;
pub mod ranges;
pub mod records;
pub mod time;

pub use ranges::{range_at, range_count, ranges};

/// Result with the state error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of hbcp's state files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A plan, manifest or journal file that is not what it should be.
    #[error("{path}: {why}")]
    BadFile {
        /// The file.
        path: String,
        /// What was expected.
        why: String,
    },
    /// An I/O error on a state file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The journal cannot be used.
    #[error("journal {path}: {why}")]
    Journal {
        /// Journal file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A store error (a manifest uploaded or read through a store).
    #[error(transparent)]
    Store(#[from] hbcp_store::Error),
}
