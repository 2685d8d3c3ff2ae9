//! The hbcp engine: streams a listing into byte-range tasks and runs them on a worker pool.
//!
//! ```text
//! feeder ──entries──▶ planner ──tasks──▶ N workers ──done──▶ committer
//! (listing or plan)   (resume, overwrite,  (read, hash,        (flush target, journal,
//!                      largest first)       write, commit)      manifest spill)
//! ```
//! All channels are bounded, so memory stays flat however many files there are. Each range is
//! hashed (xxh3) as it is read; a file becomes visible at the target only when whole. Nothing
//! is journaled before it is durable: a finished range is made durable by its worker
//! (`Upload::sync_parts`) and journaled at once while the worker waits, so a crash costs at most
//! one range per worker; whole files are made durable in groups (`Store::flush`) and then
//! journaled. A rerun after a crash skips exactly what is durable. A failing file is recorded and the job goes
//! on; a fatal error (disk full) or an interrupt stops it cleanly.
//!
//! The engine moves bytes and knows no format of the data it moves: it must never import
//! `hbcp-hbase`, `hbcp-planner` or `hbcp-verifier` (an HBase rule such as the write-once names
//! comes in through [`Config::write_once`]); its own files are `hbcp-state`'s.
#![warn(missing_docs, unreachable_pub)]

pub mod adaptive;
pub mod budget;
pub mod decide;
pub mod index;
pub mod keymap;
pub mod limiter;
pub mod lock;
pub mod order;
pub mod stats;
mod work;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use budget::Budget;
pub use index::{Known, Named, TargetIndex, TargetIndexBuilder};
pub use keymap::{KeyMap, KeyMapBuilder};
pub use limiter::{Bandwidth, Capped};
pub use order::LargestFirst;
pub use stats::{Latency, OpLatency, Sample, Stats};
pub use work::{Failure, Outcome, Stop};

/// Result with the engine error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors that prevent a job from running at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The journal cannot be used.
    #[error("journal {path}: {why}")]
    Journal {
        /// Journal file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A store error outside any single file.
    #[error(transparent)]
    Store(#[from] hbcp_store::Error),
    /// A state file (manifest spill, sort run) format or I/O error.
    #[error(transparent)]
    Format(hbcp_state::Error),
    /// The target index's scratch file cannot be written or read.
    #[error("target index {path}: {source}")]
    IndexIo {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The target index's scratch file is damaged.
    #[error("target index {path}: {why}")]
    Index {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl From<hbcp_state::Error> for Error {
    fn from(e: hbcp_state::Error) -> Self {
        match e {
            hbcp_state::Error::Journal { path, why } => Error::Journal { path, why },
            hbcp_state::Error::Store(s) => Error::Store(s),
            other => Error::Format(other),
        }
    }
}

/// What to do with a file that already exists at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Copy unless size and checksum are equal (default).
    #[default]
    IfDifferent,
    /// Always copy.
    Always,
    /// Never replace an existing file.
    Never,
    /// Incremental sync: a write-once file ([`Config::write_once`]) at the same path with the
    /// same size is the same file and is not read; other files are compared by checksum; a
    /// write-once file that moved (data/ → archive/) is copied inside the target instead of
    /// sent again.
    Sync,
}

/// Which file names are written once and never rewritten, and name no other file: such a
/// file with the same name and size at the target is the same file (see [`Overwrite::Sync`]
/// and [`TargetIndex::by_name`]). The engine knows no format: the caller says (for an HBase
/// root, `hbcp_hbase::is_unique_hfile_name`).
pub type WriteOnce = fn(&str) -> bool;

/// A [`WriteOnce`] that takes no name: every file is compared by content.
pub fn no_write_once(_name: &str) -> bool {
    false
}

/// Bytes a worker reads or writes at a time on local disk, and the most a streamed range holds
/// in memory (larger files and ranges stream through one such buffer per worker).
pub const CHUNK: u64 = 1 << 20;

/// Settings of a copy.
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker threads (requests in flight).
    pub workers: usize,
    /// Files larger than this are cut into ranges of this size.
    pub range_size: u64,
    /// Read/write chunk within a range on local disk (bounds memory per worker).
    pub chunk: u64,
    /// Existing files at the target.
    pub overwrite: Overwrite,
    /// The run's bandwidth limit (`--max-bandwidth`), one for the whole run: the copy's writes
    /// and the checksums of files already at the target take from it here, and the caller's
    /// verification reads through it ([`Capped`]).
    pub max_bandwidth: Option<std::sync::Arc<Bandwidth>>,
    /// Bytes of range buffers the workers may hold at once (`--max-memory` less hbcp's fixed
    /// needs); workers wait for room rather than go over it.
    pub buffer_budget: u64,
    /// Adaptive concurrency: start with this many requests in flight and let the controller
    /// move it between 2 and `workers` (throughput up: more; throttled: fewer). `None`: a fixed
    /// `workers` (local disk to local disk).
    pub start_concurrency: Option<usize>,
    /// Job identity (source, target, selection).
    pub job: String,
    /// Where the journal and the manifest spill live.
    pub state_dir: PathBuf,
    /// Files held for largest-first ordering.
    pub window: usize,
    /// Attempts per request for retryable errors.
    pub attempts: u32,
    /// Source and target as printed (redacted), for the manifest header.
    pub source_label: String,
    /// Target label.
    pub target_label: String,
    /// Job start (RFC 3339).
    pub started: String,
    /// What the target holds, when known without looking (sync, backup), so that a sync
    /// neither lists nor heads the target file by file.
    pub known_target: Option<std::sync::Arc<TargetIndex>>,
    /// The names of write-once files (used by [`Overwrite::Sync`]); none by default.
    pub write_once: WriteOnce,
    /// Server-side copies (`--s2s auto`): a file the target's service can copy from the source
    /// itself is copied that way, its bytes never passing through hbcp; `false` streams all.
    pub s2s: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 8,
            range_size: 64 << 20,
            chunk: CHUNK,
            overwrite: Overwrite::IfDifferent,
            max_bandwidth: None,
            buffer_budget: 512 << 20,
            start_concurrency: None,
            job: "job".into(),
            state_dir: PathBuf::from(".hbcp-state"),
            window: 100_000,
            attempts: hbcp_store::retry::ATTEMPTS,
            source_label: String::new(),
            target_label: String::new(),
            started: hbcp_state::time::now_rfc3339(),
            known_target: None,
            write_once: no_write_once,
            s2s: true,
        }
    }
}

/// A job's identity: the same source, target and selection give the same id, so a rerun finds
/// its journal.
pub fn job_id(source: &str, target: &str, selection: &[String], range_size: u64) -> String {
    let s = format!("{source}\0{target}\0{}\0{range_size}", selection.join("\0"));
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(s.as_bytes()))
}

/// Why `state` (a job's `--state` folder, canonical) cannot hold a job's state: inside the
/// source (the source is never written), or inside a local target anywhere but its own
/// `.hbcp/` folder (the state would land among the copied data: in `data/` of an HBase root,
/// as files the source lacks). Paths are canonical; `None` when it may.
pub fn state_dir_conflict(
    state: &Path,
    src_root: Option<&Path>,
    dst_root: Option<&Path>,
) -> Option<String> {
    if let Some(src) = src_root {
        if state.starts_with(src) {
            return Some(format!(
                "--state {} is inside the source {}, which is never written; choose a folder outside it",
                state.display(),
                src.display()
            ));
        }
    }
    if let Some(dst) = dst_root {
        if state.starts_with(dst) && !state.starts_with(dst.join(hbcp_store::local::HBCP_DIR)) {
            return Some(format!(
                "--state {} is inside the target {}, among the copied files; choose a folder outside it (or under its {}/)",
                state.display(),
                dst.display(),
                hbcp_store::local::HBCP_DIR
            ));
        }
    }
    None
}

/// Path of the manifest spill of a job.
pub fn spill_path(state_dir: &Path) -> PathBuf {
    state_dir.join("copied.manifest.zst")
}

/// What feeds a copy its entries: given the source store the engine reads through (timed, so
/// a listing's pages count among the run's requests), it delivers the selected entries (from a
/// listing or a plan) to the sink.
pub type Feed<'a> =
    dyn Fn(&dyn hbcp_store::Store, &hbcp_store::ListSink<'_>) -> hbcp_store::Result<()> + Sync + 'a;

/// Run a copy: `feed` delivers the selected entries (from a listing or a plan) to its sink.
pub fn copy(
    src: &dyn hbcp_store::Store,
    dst: &dyn hbcp_store::Store,
    feed: &Feed<'_>,
    cfg: &Config,
    stats: &Stats,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    work::run(src, dst, feed, cfg, stats, cancel)
}
