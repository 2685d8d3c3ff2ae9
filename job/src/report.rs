//! The JSON report of a run (`--report FILE.json`): the fields docs/ARCHITECTURE.md promises, plus the
//! failures, warnings and the throughput timeline. Written atomically (temporary file, rename).

use std::path::Path;

use std::collections::BTreeMap;

use hbcp_engine::{Failure, Latency, OpLatency, Sample};
use hbcp_verifier::{Mismatch, SourceFinding, Ways};
use serde::Serialize;

/// Verification part of the report.
#[derive(Debug, Serialize, Default)]
pub struct Verified {
    /// Mode used.
    pub mode: String,
    /// Files checked.
    pub files: u64,
    /// Bytes checked.
    pub bytes: u64,
    /// Every copy fault (the target differs from the source).
    pub mismatches: Vec<Mismatch>,
    /// Files proven equal, counted by the way each was proven: `service` (a checksum the
    /// target service computed over the stored object), `reread` (bytes read back and
    /// hashed), `size` (sizes only).
    pub ways: Ways,
    /// Files at a target that is not an HBase layout which the source lacks (not a fault).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<String>,
}

/// The report.
#[derive(Debug, Serialize, Default)]
pub struct Report {
    /// Command that produced it.
    pub command: String,
    /// Source (redacted).
    pub source: String,
    /// Target (redacted).
    pub target: String,
    /// Start, RFC 3339.
    pub started: String,
    /// End, RFC 3339.
    pub finished: String,
    /// Exit status.
    pub exit_code: u8,
    /// Outcome in words.
    pub status: String,
    /// Job identity.
    pub job: String,
    /// Journal folder.
    pub state_dir: String,
    /// Files in the job (copied now or already at the target).
    pub files: u64,
    /// Bytes in the job.
    pub bytes: u64,
    /// Files copied in this run.
    pub files_copied: u64,
    /// Bytes sent in this run.
    pub bytes_copied: u64,
    /// Of those, bytes that passed through hbcp (read from the source, written to the target).
    pub bytes_through_client: u64,
    /// Of those, bytes the target's service copied from the source itself (`--s2s`).
    pub bytes_server_side: u64,
    /// Files skipped (already at the target, or durable from an earlier run).
    pub files_skipped: u64,
    /// Bytes not sent again.
    pub bytes_skipped: u64,
    /// Empty directories.
    pub dirs: u64,
    /// Tasks run.
    pub tasks: u64,
    /// Requests retried.
    pub retries: u64,
    /// Verification.
    pub verified: Verified,
    /// Bytes sent per second of the copy phase.
    pub throughput_bytes_per_s: f64,
    /// Seconds of the whole run.
    pub elapsed_s: f64,
    /// Per-request latencies (every request).
    pub latency_ms: Latency,
    /// Per-request latencies by operation (`list` pages, `head`, `get`, `put`, `stage`,
    /// `commit`, `delete`…), with their distribution.
    pub latency_by_op_ms: BTreeMap<String, OpLatency>,
    /// What the job left out, by reason (`hbase_transient`, `wals`, `excluded`, `selection`):
    /// files, bytes and the first keys.
    pub left_out: BTreeMap<String, hbcp_planner::LeftOutCount>,
    /// Files that could not be copied.
    pub failures: Vec<Failure>,
    /// Warnings of the copy (files not copied, or copied as they are).
    pub warnings: Vec<String>,
    /// What the HBase checks found wrong at the source (copied as it is): warnings that fail
    /// the run only under `--verify deep` or `--strict`.
    pub source_findings: Vec<SourceFinding>,
    /// Throughput over time, one point a second.
    pub timeline: Vec<Sample>,
    /// Range buffers under `--max-memory`.
    pub memory: Memory,
    /// Requests in flight.
    pub concurrency: Concurrency,
    /// `--max-bandwidth`: the limit and every byte that went through it (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthUse>,
}

/// What went through the run's bandwidth limit: the copy's bytes, the checksums of files
/// already at the target, the verification's read-back.
#[derive(Debug, Serialize, Default)]
pub struct BandwidthUse {
    /// The limit, in bytes per second.
    pub limit_bytes_per_s: u64,
    /// Bytes that went through it.
    pub bytes: u64,
}

/// Range buffers under `--max-memory`.
#[derive(Debug, Serialize, Default)]
pub struct Memory {
    /// Bytes of range buffers allowed at once (`--max-memory` less hbcp's fixed needs).
    pub buffer_budget_bytes: u64,
    /// The most bytes of range buffers held at once.
    pub buffer_peak_bytes: u64,
}

/// Requests in flight.
#[derive(Debug, Serialize, Default)]
pub struct Concurrency {
    /// Worker threads (the most requests in flight).
    pub workers: u64,
    /// Whether the limit adapted to the endpoint (object stores) or was fixed (disk to disk).
    pub adaptive: bool,
    /// The limit at the end of the copy.
    pub settled: u64,
    /// The highest limit reached.
    pub peak: u64,
    /// Throttle answers (HTTP 429, 503) received during the copy; each one cut the limit (at
    /// most once per half second).
    pub throttles: u64,
}

/// This process's command line, quoted and with every secret redacted as in the resume line
/// (set once by [`crate::run`]): in every report.
pub(crate) static COMMAND_LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

impl Report {
    /// Write the report to `path` atomically.
    /// Every report also says which hbcp wrote it and the command line that ran ([`COMMAND_LINE`]).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut value = serde_json::to_value(self)?;
        if let Some(o) = value.as_object_mut() {
            o.insert("hbcp_version".into(), env!("CARGO_PKG_VERSION").into());
            o.insert(
                "command_line".into(),
                COMMAND_LINE.get().cloned().unwrap_or_default().into(),
            );
        }
        let text = serde_json::to_vec_pretty(&value)?;
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| anyhow::anyhow!("cannot write the report {}: {e}", path.display()))
    }
}

/// Bytes (or bytes per second) as a human string: `512 B`, `1.5 MiB`.
pub fn human_bytes(n: f64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", U[i])
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Bytes as a human string.
pub fn bytes(n: u64) -> String {
    human_bytes(n as f64)
}

/// A count and its noun, singular for 1: `count(1, "file")` is "1 file", `count(2, "family")`
/// "2 families" (a noun in -y takes -ies, any other an -s: the nouns hbcp prints).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn a_count_is_singular_for_one_only() {
        assert_eq!(count(1u64, "file"), "1 file");
        assert_eq!(count(0u64, "file"), "0 files");
        assert_eq!(count(2u64, "HFileLink"), "2 HFileLinks");
        assert_eq!(count(1u64, "family"), "1 family");
        assert_eq!(count(3u64, "family"), "3 families");
    }
}
