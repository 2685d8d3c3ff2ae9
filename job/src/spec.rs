//! What a run is asked to do, as plain data: the endpoints, the selection, the tuning and each
//! command's own options, with the flag values already parsed (sizes, rates, shares, durations).
//!
//! The binary's argument parser fills these (`src/cli.rs`); a test or another front end can
//! build them directly. No clap, no process globals: a [`JobSpec`] is all a run reads of its
//! invocation (with the environment's credentials, which the stores read themselves).

use std::path::PathBuf;
use std::time::Duration;

/// One invocation: the command with its options, and what every command shares.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The command and its options.
    pub command: CommandSpec,
    /// `--azure-endpoint`: the Azure Blob endpoint of a sovereign cloud or an emulator.
    pub azure_endpoint: Option<String>,
    /// `--put-md5`: store each uploaded file's MD5 as the service's Content-MD5.
    pub put_md5: bool,
    /// The command line to give again to resume this run, secrets already taken out.
    pub resume: ResumeLine,
}

/// The command line of a run as the resume line prints it: quoted for a shell, with every
/// secret replaced by `REDACTED`.
#[derive(Debug, Clone, Default)]
pub struct ResumeLine {
    /// The quoted, redacted command line.
    pub line: String,
    /// A secret was replaced (the line says how to give it again).
    pub redacted: bool,
}

impl ResumeLine {
    /// The resume line of these arguments (the program's name first), each argument's secrets
    /// (a URL's SAS signature, a password, the value of a secret environment variable)
    /// replaced by `REDACTED`.
    pub fn of(args: impl IntoIterator<Item = String>) -> ResumeLine {
        let (line, redacted) = crate::exit::resume_command(args);
        ResumeLine { line, redacted }
    }
}

/// The commands the job runs (the binary itself answers `report`, `completions` and `man`).
#[derive(Debug, Clone)]
pub enum CommandSpec {
    /// `hbcp copy`.
    Copy(CopySpec),
    /// `hbcp plan`.
    Plan(PlanSpec),
    /// `hbcp run`.
    Run(RunSpec),
    /// `hbcp verify`.
    Verify(VerifySpec),
    /// `hbcp finalize`.
    Finalize(FinalizeSpec),
    /// `hbcp status`.
    Status(StatusSpec),
    /// `hbcp sync`.
    Sync(SyncSpec),
    /// `hbcp bench`.
    Bench(BenchSpec),
    /// `hbcp preflight`.
    Preflight(PreflightSpec),
    /// `hbcp snapshots`.
    Snapshots(SnapshotsSpec),
    /// `hbcp backup`.
    Backup(BackupSpec),
    /// `hbcp generations`.
    Generations(GenerationsSpec),
    /// `hbcp restore`.
    Restore(RestoreSpec),
    /// `hbcp auth`.
    Auth(AuthSpec),
    /// `hbcp jobs`.
    Jobs(JobsSpec),
}

/// `hbcp jobs`: the jobs this machine ran or runs.
#[derive(Debug, Clone)]
pub struct JobsSpec {
    /// What to do.
    pub action: JobsAction,
}

/// `hbcp jobs [list | show ID | clean]`.
#[derive(Debug, Clone)]
pub enum JobsAction {
    /// Every job: id, command, source, target, state, started, bytes done.
    List {
        /// One JSON array on stdout.
        json: bool,
    },
    /// One job (its id or a unique start of it): figures, journal, last error, resume line.
    Show {
        /// The id, or a unique start of it.
        id: String,
        /// One JSON object on stdout.
        json: bool,
    },
    /// Remove jobs' state folders and records: completed ones unless `all`.
    Clean {
        /// Only jobs last recorded longer ago than this.
        older_than: Option<Duration>,
        /// Failed and interrupted jobs too (never a running one).
        all: bool,
        /// Say what would be removed, remove nothing.
        dry_run: bool,
    },
}

impl CommandSpec {
    /// Whether giving the same command line again resumes this command (copy, run, sync,
    /// backup, restore): a stop that may pass ends it with exit 3 and the resume line.
    pub fn resumes(&self) -> bool {
        matches!(
            self,
            CommandSpec::Copy(_)
                | CommandSpec::Run(_)
                | CommandSpec::Sync(_)
                | CommandSpec::Backup(_)
                | CommandSpec::Restore(_)
        )
    }
}

/// The source and the target URL.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The source URL.
    pub src: String,
    /// The target URL.
    pub dst: String,
}

/// `--exclude` globs.
#[derive(Debug, Clone, Default)]
pub struct SelectionSpec {
    /// Globs of keys (relative to the source root) left out.
    pub exclude: Vec<String>,
}

/// The HBase selection: tables, a snapshot, a row range, a time range, the target layout.
#[derive(Debug, Clone, Default)]
pub struct HbaseSelectSpec {
    /// `--table NS:NAME`, repeatable.
    pub table: Vec<String>,
    /// `--snapshot NAME`.
    pub snapshot: Option<String>,
    /// `--start-row KEY`.
    pub start_row: Option<String>,
    /// `--end-row KEY`.
    pub end_row: Option<String>,
    /// `--since TIME`.
    pub since: Option<String>,
    /// `--until TIME`.
    pub until: Option<String>,
    /// `--layout`.
    pub layout: LayoutChoice,
}

/// `--layout`: how a selection is laid out at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayoutChoice {
    /// An HBase root.
    #[default]
    Root,
    /// Bulk-load folders.
    Bulkload,
}

/// Where the WALs of the source live (`--wal-dir`, `--no-wals-expected`).
#[derive(Debug, Clone, Default)]
pub struct WalSpec {
    /// `--wal-dir URL`.
    pub wal_dir: Option<String>,
    /// `--no-wals-expected`.
    pub no_wals_expected: bool,
}

/// How a run copies and checks: shared by copy, run, sync, backup and restore.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// `--workers N`.
    pub workers: Option<usize>,
    /// `--range-size SIZE`, bytes.
    pub range_size: Option<u64>,
    /// The bandwidth cap in bytes per second (`--max-bandwidth` or `--cap-mbps`).
    pub bandwidth: Option<u64>,
    /// `--max-memory SIZE`, bytes.
    pub max_memory: Option<u64>,
    /// `--verify`.
    pub verify: VerifyChoice,
    /// `--strict`.
    pub strict: bool,
    /// `--report FILE.json`.
    pub report: Option<PathBuf>,
    /// `--state DIR`.
    pub state: Option<PathBuf>,
    /// `--progress`.
    pub progress: ProgressMode,
    /// `--overwrite`.
    pub overwrite: OverwriteChoice,
    /// `--allow-http`.
    pub allow_http: bool,
    /// `--s2s auto`: server-side copies where the service offers them.
    pub s2s: bool,
}

impl Tuning {
    /// Check the values that need no endpoint (`--range-size`, `--workers`), before anything
    /// is opened or written: a refusal is a [`crate::UsageError`].
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(rs) = self.range_size {
            crate::commands::check_range_size(rs)?;
        }
        if let Some(w) = self.workers {
            if w == 0 || w > 1024 {
                return crate::usage(format!("--workers {w}: expected 1 to 1024"));
            }
        }
        Ok(())
    }
}

/// `--verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyChoice {
    /// No verification.
    None,
    /// Sizes only.
    Size,
    /// Checksums.
    Checksum,
    /// Read back and checksum.
    Reread,
    /// Checksums and HFile block walks.
    Deep,
}

/// `--progress`: what the observer is asked to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on a terminal, else lines.
    Auto,
    /// A bar.
    Bar,
    /// One JSON line per second on stdout.
    Json,
    /// Nothing.
    None,
}

/// `--overwrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverwriteChoice {
    /// When size or checksum differ.
    IfDifferent,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `hbcp copy`.
#[derive(Debug, Clone)]
pub struct CopySpec {
    /// Source and target.
    pub ends: Endpoints,
    /// `--allow-unflushed`.
    pub allow_unflushed: bool,
    /// `--delete-extra`.
    pub delete_extra: bool,
    /// `--max-delete`, a share in 0..=1.
    pub max_delete: f64,
    /// `--force`.
    pub force: bool,
    /// The WAL places.
    pub wals: WalSpec,
    /// `--exclude`.
    pub selection: SelectionSpec,
    /// The HBase selection.
    pub hbase: HbaseSelectSpec,
    /// Tuning.
    pub tuning: Tuning,
    /// `--dry-run`: say what would be done, write nothing.
    pub dry_run: bool,
}

/// `hbcp plan`.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    /// Source and target.
    pub ends: Endpoints,
    /// `--exclude`.
    pub selection: SelectionSpec,
    /// The HBase selection.
    pub hbase: HbaseSelectSpec,
    /// `--allow-unflushed`.
    pub allow_unflushed: bool,
    /// The WAL places.
    pub wals: WalSpec,
    /// `--out FILE`.
    pub out: PathBuf,
    /// `--range-size`.
    pub range_size: Option<u64>,
    /// `--allow-http`.
    pub allow_http: bool,
    /// `--json`: the summary as one JSON object.
    pub json: bool,
}

/// `hbcp run`.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The plan file.
    pub plan: PathBuf,
    /// `--shard I/N`.
    pub shard: Option<String>,
    /// Tuning.
    pub tuning: Tuning,
}

/// `hbcp sync`.
#[derive(Debug, Clone)]
pub struct SyncSpec {
    /// Source and target.
    pub ends: Endpoints,
    /// `--allow-unflushed`.
    pub allow_unflushed: bool,
    /// The WAL places.
    pub wals: WalSpec,
    /// `--exclude`.
    pub selection: SelectionSpec,
    /// Tuning.
    pub tuning: Tuning,
    /// `--delete`.
    pub delete: bool,
    /// `--dry-run`: say what would be done, write nothing.
    pub dry_run: bool,
    /// `--max-delete`, a share in 0..=1.
    pub max_delete: f64,
    /// `--force`.
    pub force: bool,
    /// `--watch`.
    pub watch: bool,
    /// `--interval`, at least 100 ms.
    pub interval: Duration,
    /// `--recheck N`, at least 1.
    pub recheck: u32,
}

/// `hbcp finalize`.
#[derive(Debug, Clone)]
pub struct FinalizeSpec {
    /// The plan file.
    pub plan: PathBuf,
    /// `--verify`.
    pub verify: VerifyChoice,
    /// `--strict`.
    pub strict: bool,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--report`.
    pub report: Option<PathBuf>,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `hbcp status`.
#[derive(Debug, Clone)]
pub struct StatusSpec {
    /// The plan file.
    pub plan: PathBuf,
    /// `--shards N`.
    pub shards: Option<u32>,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `hbcp verify`.
#[derive(Debug, Clone)]
pub struct VerifySpec {
    /// Source and target.
    pub ends: Endpoints,
    /// `--exclude`.
    pub selection: SelectionSpec,
    /// The HBase selection.
    pub hbase: HbaseSelectSpec,
    /// `--allow-unflushed`.
    pub allow_unflushed: bool,
    /// `--verify` (`--deep` is `Deep`).
    pub verify: VerifyChoice,
    /// `--strict`.
    pub strict: bool,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--max-bandwidth` / `--cap-mbps`: bytes per second over every read of both sides.
    pub bandwidth: Option<u64>,
    /// `--report`.
    pub report: Option<PathBuf>,
    /// `--progress`.
    pub progress: ProgressMode,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `hbcp bench`.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// The target URL.
    pub dst: String,
    /// `--size`, bytes.
    pub size: u64,
    /// `--files`.
    pub files: u64,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--range-size`.
    pub range_size: Option<u64>,
    /// `--report`.
    pub report: Option<PathBuf>,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `hbcp preflight`.
#[derive(Debug, Clone)]
pub struct PreflightSpec {
    /// The source URL.
    pub src: String,
    /// The WAL places.
    pub wals: WalSpec,
    /// `--report`.
    pub report: Option<PathBuf>,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `hbcp snapshots`.
#[derive(Debug, Clone)]
pub struct SnapshotsSpec {
    /// The source URL.
    pub src: String,
    /// `--json`.
    pub json: bool,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `hbcp backup`.
#[derive(Debug, Clone)]
pub struct BackupSpec {
    /// Source and backup target.
    pub ends: Endpoints,
    /// `--keep N` (the older name of `--keep-last`).
    pub keep: Option<usize>,
    /// `--keep-last N`.
    pub keep_last: Option<usize>,
    /// `--keep-hourly N`.
    pub keep_hourly: Option<usize>,
    /// `--keep-daily N`.
    pub keep_daily: Option<usize>,
    /// `--keep-weekly N`.
    pub keep_weekly: Option<usize>,
    /// `--keep-monthly N`.
    pub keep_monthly: Option<usize>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--max-delete`, a share in 0..=1.
    pub max_delete: f64,
    /// `--force`.
    pub force: bool,
    /// `--allow-unflushed`.
    pub allow_unflushed: bool,
    /// The WAL places.
    pub wals: WalSpec,
    /// `--exclude`.
    pub selection: SelectionSpec,
    /// Tuning.
    pub tuning: Tuning,
}

/// `hbcp generations`.
#[derive(Debug, Clone)]
pub struct GenerationsSpec {
    /// The backup target URL.
    pub dst: String,
    /// `--json`.
    pub json: bool,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `hbcp restore`.
#[derive(Debug, Clone)]
pub struct RestoreSpec {
    /// The backup target URL.
    pub dst: String,
    /// Where to restore.
    pub target: String,
    /// `--generation ID`.
    pub generation: String,
    /// `--table` / `--snapshot`: only this table or snapshot out of the generation (the other
    /// fields of the selection stay unset).
    pub select: HbaseSelectSpec,
    /// Tuning.
    pub tuning: Tuning,
    /// `--dry-run`: say what would be done, write nothing.
    pub dry_run: bool,
}

/// `hbcp auth`.
#[derive(Debug, Clone)]
pub struct AuthSpec {
    /// The URL to check.
    pub url: String,
    /// `--read-only`.
    pub read_only: bool,
    /// `--allow-http`.
    pub allow_http: bool,
}

/// `FLAG SHARE` (`--max-delete 5%`) as a share in 0..=1; a bad value is a [`crate::UsageError`].
pub fn share(flag: &str, s: &str) -> anyhow::Result<f64> {
    parse_share(s).or_else(|e| crate::usage(format!("{flag} {e}")))
}

/// `--interval` of `hbcp sync`: a duration of at least 100 ms; else a [`crate::UsageError`].
pub fn interval(s: &str) -> anyhow::Result<Duration> {
    match humantime::parse_duration(s) {
        Ok(d) if d >= Duration::from_millis(100) => Ok(d),
        Ok(_) => crate::usage("--interval must be at least 100ms"),
        Err(e) => crate::usage(format!("--interval {s:?}: {e}; expected e.g. 30s, 5m, 1h")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(parse_share("5%").unwrap(), 0.05);
        assert_eq!(parse_share("0.2").unwrap(), 0.2);
        assert!(parse_share("150%").is_err());
        assert!(parse_share("lots").is_err());
    }
}
