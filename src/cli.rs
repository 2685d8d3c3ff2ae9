//! Command-line arguments (plain data from clap) and their checked form.
//!
//! The flags are a contract (docs/ARCHITECTURE.md "Commands"); values are checked here once, so that a
//! bad value is one clear line and exit 2 before anything is written.

use std::path::PathBuf;

use clap::builder::ArgPredicate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hbcp_job::spec;

/// `hbcp -V`: the version, the commit and the build date on one line.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("HBCP_GIT_COMMIT"),
    " ",
    env!("HBCP_BUILD_DATE"),
    ")"
);

/// `hbcp --version`: what a bug report needs (build.rs stamps these; "unknown" where a build
/// could not know them, e.g. a tree without .git).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("HBCP_GIT_COMMIT"),
    "\nbuilt: ",
    env!("HBCP_BUILD_DATE"),
    "\ntarget: ",
    env!("HBCP_TARGET"),
    "\nobject_store: ",
    env!("HBCP_OBJECT_STORE")
);

/// hbcp copies an HBase root folder between storage endpoints, with checksums, resume and a
/// verifier that proves the target matches before the copy is called complete.
#[derive(Debug, Parser)]
#[command(
    name = "hbcp",
    version = VERSION,
    long_version = LONG_VERSION,
    about,
    long_about = None,
    max_term_width = 100,
    after_help = "Exit status: 0 complete and verified; 1 finished, but something failed or did not \
                  verify; 2 bad usage or bad input, nothing written; 3 interrupted, resumable \
                  (run the same command again).\nSee `hbcp COMMAND --help` for each command's \
                  flags and examples, and `man hbcp`."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// When stderr is not a terminal (a cron or nohup run's log), print a line of progress
    /// figures this often, e.g. 30s, 5m.
    #[arg(long, global = true, value_name = "DURATION", default_value = "60s",
          value_parser = parse_interval)]
    pub stats_interval: std::time::Duration,
    /// Also write hbcp's log to FILE (appended): every line it prints on stderr, the job's
    /// id, and with -v its diagnostics. No secret is written to it.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<std::path::PathBuf>,
    /// The log file's format: text lines, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More diagnostics, on stderr and in the log file: -v info, -vv debug, -vvv trace.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count,
          conflicts_with = "quiet")]
    pub verbose: u8,
    /// No progress display (bar or stats lines); the log file gets warnings and errors only.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One text line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parse `--stats-interval`: a duration of at least 100ms (`1s`, `30s`, `5m`).
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}); expected e.g. 1s, 30s, 5m"))?;
    if d < std::time::Duration::from_millis(100) {
        return Err(format!("{s:?} is too short; the least is 100ms"));
    }
    Ok(d)
}

impl Cli {
    /// `--azure-endpoint` of the commands that open a URL.
    pub fn azure_endpoint(&self) -> Option<String> {
        use Command as C;
        let a = match &self.command {
            C::Copy(a) => &a.azure,
            C::Plan(a) => &a.azure,
            C::Run(a) => &a.azure,
            C::Finalize(a) => &a.azure,
            C::Status(a) => &a.azure,
            C::Sync(a) => &a.azure,
            C::Verify(a) => &a.azure,
            C::Bench(a) => &a.azure,
            C::Preflight(a) => &a.azure,
            C::Snapshots(a) => &a.azure,
            C::Backup(a) => &a.azure,
            C::Generations(a) => &a.azure,
            C::Restore(a) => &a.azure,
            C::Auth(a) => &a.azure,
            C::Report(_) | C::Completions(_) | C::Man(_) | C::Jobs(_) => return None,
        };
        a.azure_endpoint.clone()
    }

    /// `--put-md5` of the commands that write files.
    pub fn put_md5(&self) -> bool {
        use Command as C;
        match &self.command {
            C::Copy(a) => a.tuning.put_md5,
            C::Run(a) => a.tuning.put_md5,
            C::Sync(a) => a.tuning.put_md5,
            C::Backup(a) => a.tuning.put_md5,
            C::Restore(a) => a.tuning.put_md5,
            C::Bench(a) => a.put_md5,
            _ => false,
        }
    }
}

/// `--azure-endpoint`, on every command that opens a URL.
#[derive(Debug, Args, Clone, Default)]
pub struct AzureArgs {
    /// Azure Blob endpoint for sovereign clouds or an emulator, e.g.
    /// https://ACCOUNT.blob.core.chinacloudapi.cn or http://127.0.0.1:10000/devstoreaccount1
    #[arg(long, value_name = "URL", env = "HBCP_AZURE_ENDPOINT")]
    pub azure_endpoint: Option<String>,
}

/// Commands. Each ends its `--help` with examples from the README's runbooks (the tests run
/// every one of them, URLs rewritten to local folders and Azurite).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan + copy + verify in one go; run it again after a crash and it resumes.
    #[command(after_help = examples::COPY)]
    Copy(CopyArgs),
    /// Write the plan of a copy to a file and print its summary.
    #[command(after_help = examples::SHARDS)]
    Plan(PlanArgs),
    /// Execute a plan written by `hbcp plan`, or one shard of it.
    #[command(after_help = examples::SHARDS)]
    Run(RunArgs),
    /// After all shards of a plan ran: verify the whole target, then write the completion manifest.
    #[command(after_help = examples::SHARDS)]
    Finalize(FinalizeArgs),
    /// Progress of a sharded job, from the shards' results and journals.
    #[command(after_help = examples::SHARDS)]
    Status(StatusArgs),
    /// Copy only what is new or changed (HFiles by path and size, metadata by content);
    /// `--watch` keeps doing it and measures the replication lag.
    #[command(after_help = examples::SYNC)]
    Sync(SyncArgs),
    /// Compare a target with its source; every mismatch is listed.
    #[command(after_help = examples::VERIFY)]
    Verify(VerifyArgs),
    /// Draw a run's report: throughput over time, requests in flight, latencies.
    #[command(after_help = examples::REPORT)]
    Report(ReportArgs),
    /// Measure what an endpoint sustains: writes synthetic data, reads it back, deletes it.
    #[command(after_help = examples::BENCH)]
    Bench(BenchArgs),
    /// Tables, regions, snapshots, WAL state, and edits that live only in WALs.
    #[command(after_help = examples::PREFLIGHT)]
    Preflight(PreflightArgs),
    /// List the HBase snapshots of a root: name, table, creation time, HFiles, bytes.
    #[command(after_help = examples::SNAPSHOTS)]
    Snapshots(SnapshotsArgs),
    /// Write a new point-in-time generation of SRC at DST (HFiles stored once across
    /// generations); `--keep N` prunes older ones.
    #[command(after_help = examples::BACKUP)]
    Backup(BackupArgs),
    /// List the generations of a backup target.
    #[command(after_help = examples::BACKUP)]
    Generations(GenerationsArgs),
    /// Materialise a generation of a backup target as a complete, verified root at TARGET.
    #[command(after_help = examples::BACKUP)]
    Restore(RestoreArgs),
    /// Which credential a URL uses (kind and source, never its value), and what it may do
    /// there: list, write, read and delete probed with a temporary object it removes.
    #[command(after_help = examples::AUTH)]
    Auth(AuthArgs),
    /// The jobs this machine ran or runs (id, command, source, target, state, started, bytes
    /// done); `jobs show ID`; `jobs clean` removes old jobs' state.
    #[command(after_help = examples::JOBS)]
    Jobs(JobsArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    #[command(after_help = examples::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout; packages install it as hbcp(1).
    #[command(hide = true)]
    Man(ManArgs),
}

/// The examples at the end of each command's `--help`, drawn from the README's runbooks.
/// tests/docs.rs runs every line that starts with `  hbcp ` (in order, one sandbox per
/// command), expecting exit 0 or the `# exit N` its comment names.
mod examples {
    pub(super) const COPY: &str = "\
Examples:
  hbcp preflight wasbs://hbase@oldcluster.blob.core.windows.net/hbase
  hbcp copy wasbs://hbase@oldcluster.blob.core.windows.net/hbase \\
      wasbs://hbase@newcluster.blob.core.windows.net/hbase --report migrate.json
  hbcp copy /data/hbase /backup/hbase --table default:usertable --table analytics:daily
  hbcp copy /data/hbase /staging/load --table usertable --layout bulkload";

    pub(super) const SHARDS: &str = "\
Examples:
  hbcp plan /data/hbase wasbs://hbase@newcluster.blob.core.windows.net/hbase --out job.plan
  hbcp run job.plan --shard 0/2      # on machine 1
  hbcp status job.plan               # which shards are done, running or not started
  hbcp run job.plan --shard 1/2      # on machine 2
  hbcp finalize job.plan";

    pub(super) const SYNC: &str = "\
Examples:
  hbcp sync /data/hbase abfss://hbase@drsite.dfs.core.windows.net/hbase
  hbcp sync /data/hbase abfss://hbase@drsite.dfs.core.windows.net/hbase \\
      --delete --watch --interval 5m     # until Ctrl-C";

    pub(super) const VERIFY: &str = "\
Examples:
  hbcp copy /data/hbase wasbs://hbase@newcluster.blob.core.windows.net/hbase
  hbcp verify /data/hbase wasbs://hbase@newcluster.blob.core.windows.net/hbase
  hbcp verify /data/hbase wasbs://hbase@newcluster.blob.core.windows.net/hbase --table usertable";

    pub(super) const REPORT: &str = "\
Examples:
  hbcp copy /data/hbase /backup/hbase --report run.json
  hbcp report run.json --html run.html";

    pub(super) const BENCH: &str = "\
Examples:
  hbcp bench wasbs://hbase@newcluster.blob.core.windows.net/bench --size 64MiB --files 16
  hbcp bench /mnt/data --size 64MiB --report bench.json";

    pub(super) const PREFLIGHT: &str = "\
Examples:
  hbcp preflight wasbs://hbase@oldcluster.blob.core.windows.net/hbase
  hbcp preflight /data/hbase --report preflight.json";

    pub(super) const SNAPSHOTS: &str = "\
Examples:
  hbcp snapshots /data/hbase
  hbcp copy /data/hbase wasbs://hbase@newcluster.blob.core.windows.net/hbase --snapshot snap-1";

    pub(super) const BACKUP: &str = "\
Examples:
  hbcp backup /data/hbase abfss://backup@drsite.dfs.core.windows.net/hbase --keep 24
  hbcp generations abfss://backup@drsite.dfs.core.windows.net/hbase
  hbcp restore abfss://backup@drsite.dfs.core.windows.net/hbase --generation 1 /mnt/restore/hbase";

    pub(super) const AUTH: &str = "\
Examples:
  hbcp auth wasbs://hbase@oldcluster.blob.core.windows.net/hbase --read-only   # as a source
  hbcp auth wasbs://hbase@oldcluster.blob.core.windows.net/hbase   # as a target: write, delete too";

    pub(super) const JOBS: &str = "\
Examples:
  hbcp jobs
  hbcp jobs clean --older-than 7d --dry-run
  hbcp jobs clean --older-than 7d --all";

    pub(super) const COMPLETIONS: &str = "\
Examples:
  hbcp completions bash > ~/.local/share/bash-completion/completions/hbcp
  hbcp completions zsh > ~/.zfunc/_hbcp
  hbcp completions fish > ~/.config/fish/completions/hbcp.fish";
}

/// `hbcp man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write hbcp.1 and one page per command (hbcp-copy.1, …) into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `hbcp completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `hbcp jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// What to do (default: list).
    #[command(subcommand)]
    pub action: Option<JobsCommand>,
    /// `hbcp jobs --json`: the list as one JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `hbcp jobs list | show ID | clean`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Every job this machine ran or runs: id, command, state, started, bytes done, source
    /// and target (secrets redacted).
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// One job: its figures, state folder, journal, last error and resume line (redacted).
    Show {
        /// The job's id, or a unique start of it.
        id: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Remove jobs' state folders and records: completed jobs only unless --all; never a
    /// running one.
    Clean {
        /// Only jobs last recorded longer ago than this, e.g. 7d, 12h.
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Failed and interrupted jobs too (their journals, so they can no longer resume).
        #[arg(long)]
        all: bool,
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Parse `--older-than`: a duration (`30m`, `12h`, `7d`).
pub fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}); expected e.g. 12h, 7d"))
}

/// `hbcp auth`.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// The endpoint: any URL form hbcp copies from or to (a SAS in an Azure URL's query is
    /// that endpoint's credential).
    pub url: String,
    /// Only list and read are needed (a source): exit 0 without write and delete.
    #[arg(long)]
    pub read_only: bool,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// The HBase root.
    pub src: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub ends: Endpoints,
    /// After the new generation is verified, keep only the newest N generations (files a kept
    /// generation needs are never deleted); the same as --keep-last N.
    #[arg(long, value_name = "N", conflicts_with = "keep_last")]
    pub keep: Option<usize>,
    /// Retention (restic's meaning): keep the newest N generations.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the newest generation of each of the last N hours (UTC) that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<usize>,
    /// Keep the newest generation of each of the last N days (UTC) that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,
    /// Keep the newest generation of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,
    /// Keep the newest generation of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,
    /// Write nothing; say what the new generation would store and keep from earlier ones, and
    /// with a --keep policy which generations there now it would remove, and what would go.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse a prune that removes more than this share of the bytes stored at the target,
    /// without --force.
    #[arg(long, value_name = "SHARE", default_value = "50%")]
    pub max_delete: String,
    /// Prune even beyond --max-delete.
    #[arg(long)]
    pub force: bool,
    /// Back up although the preflight found edits that live only in WALs: the WALs are then part
    /// of the generation (without this flag they are left out, as by `copy`, and such a backup
    /// is refused, exit 2).
    #[arg(long)]
    pub allow_unflushed: bool,
    #[command(flatten)]
    pub wals: WalArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp generations`.
#[derive(Debug, Args)]
pub struct GenerationsArgs {
    /// The backup target.
    pub dst: String,
    /// Print the list as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup target.
    pub dst: String,
    /// Where to materialise the root (an empty folder, or the target of an interrupted restore).
    pub target: String,
    /// The generation to restore: its ID (see `hbcp generations DST`), or `latest` for the
    /// newest one.
    #[arg(long, value_name = "ID|latest")]
    pub generation: String,
    /// Only this table of the generation (NS:NAME, or NAME for namespace default;
    /// repeatable), with what it needs to open in HBase, as `copy --table` selects it.
    #[arg(long, value_name = "NS:NAME", conflicts_with = "snapshot")]
    pub table: Vec<String>,
    /// Only this snapshot of the generation, laid out as `copy --snapshot` lays it out (its
    /// manifest made visible last, its HFiles under archive/).
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Write nothing (not the target, not the state folder, no lock): say what would be
    /// copied and kept, as counts, bytes and the first names (with --progress json,
    /// every name as a JSON line on stdout).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// Where the WALs of an HBase root are, for the preflight and the WAL guard of copy, plan,
/// sync and backup.
#[derive(Debug, Clone, Args)]
pub struct WalArgs {
    /// The WALs live outside the root: the folder HBase's `hbase.wal.dir` names (holding
    /// `WALs/` and `oldWALs/`), e.g. the HDFS of an HDInsight cluster with Accelerated Writes;
    /// any URL hbcp reads. Its WALs are read by the WAL guard, not copied.
    #[arg(long, value_name = "URL")]
    pub wal_dir: Option<String>,
    /// This HBase root has no WALs anywhere (e.g. a cluster stopped cleanly whose archived WALs
    /// were cleaned). Without it, a root in which no WAL is found (and no --wal-dir) is not
    /// promised safe, and a copy of it is refused (exit 2).
    #[arg(long)]
    pub no_wals_expected: bool,
}

/// `hbcp preflight`.
#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The HBase root to inspect.
    pub src: String,
    #[command(flatten)]
    pub wals: WalArgs,
    /// Write the findings as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The endpoint to measure (data goes to a folder `hbcp-bench-PID` under it, removed after).
    pub dst: String,
    /// Total bytes to write.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "1GiB")]
    pub size: u64,
    /// Number of files the bytes are spread over.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub files: u64,
    /// Parallel requests (default: the endpoint's).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Range size for large files.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub range_size: Option<u64>,
    /// Write the result as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
    /// Store each blob's Content-MD5 (Azure targets), so that Azure's own tools can check the
    /// blobs; every block is also sent with a transactional MD5 that the service checks. Costs
    /// MD5 CPU and, for files sent in ranges, one more in-order read of the source.
    #[arg(long)]
    pub put_md5: bool,
}

/// `hbcp report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report written with `--report FILE.json`.
    pub json: PathBuf,
    /// Where to write the HTML page.
    #[arg(long, value_name = "OUT.html")]
    pub html: PathBuf,
}

/// SRC and DST.
#[derive(Debug, Args)]
pub struct Endpoints {
    /// Source: a local path, file://, wasbs://, abfss://, https://ACCOUNT.blob.core.windows.net/, az://, s3://, gs://
    pub src: String,
    /// Target, same forms as the source.
    pub dst: String,
}

/// Which files.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectionArgs {
    /// Leave out keys matching this glob (relative to the root; repeatable). A plain name such
    /// as `.tmp` leaves out every path component of that name.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

/// What of an HBase root: tables, a snapshot, row-key and time ranges, the target layout.
#[derive(Debug, Args, Clone, Default)]
pub struct HbaseSelectArgs {
    /// Only this table (NS:NAME, or NAME for namespace default; repeatable), with what it
    /// needs to open in HBase: its data dir with .tabledesc, the parent HFiles of its
    /// References, the targets of its HFileLinks (data, archive, .tmp, mobdir) with their
    /// back-references, its mobdir, plus hbase.version and hbase.id (kept if the target has
    /// them), all at the same relative paths.
    #[arg(long, value_name = "NS:NAME")]
    pub table: Vec<String>,
    /// Only this snapshot, laid out as HBase's ExportSnapshot does: its manifest under
    /// .hbase-snapshot/NAME (a copy writes it to .hbase-snapshot/.tmp/NAME first and makes it
    /// visible last, after verification), every HFile it references under
    /// archive/data/<ns>/<table>/<region>/<family>/.
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Only regions whose [startKey, endKey) overlaps [START, END): whole regions are copied,
    /// not rows. Keys as in the HBase shell: text, with \xNN for any byte.
    #[arg(long, value_name = "KEY")]
    pub start_row: Option<String>,
    /// End of the row range (exclusive); see --start-row.
    #[arg(long, value_name = "KEY")]
    pub end_row: Option<String>,
    /// Only HFiles whose cell time range (FileInfo TIMERANGE) overlaps [SINCE, UNTIL): whole
    /// HFiles are copied, not cells. Milliseconds since the epoch, or a UTC date/time
    /// (2024-05-01, 2024-05-01T12:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// End of the time range (exclusive); see --since.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// root: the same relative paths (default). bulkload: <table>/<family>/<hfile> for HBase's
    /// completebulkload, links and references materialised (a Reference brings its parent
    /// HFile whole, once); needs --table or --snapshot.
    #[arg(long, value_enum, default_value_t = LayoutArg::Root)]
    pub layout: LayoutArg,
}

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LayoutArg {
    /// The same relative paths.
    #[default]
    Root,
    /// `<table>/<family>/<hfile>`, for completebulkload.
    Bulkload,
}

/// How to copy.
#[derive(Debug, Args, Clone)]
pub struct TuningArgs {
    /// Parallel workers (requests in flight). Default: 8 for local disk, 32 for object stores.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Files larger than this are cut into byte ranges copied in parallel
    /// (e.g. 64MiB; default 64MiB local, 8MiB object stores).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub range_size: Option<u64>,
    /// Bandwidth limit over all workers: bits (800Mbps, 10Gbps) or bytes (100MB/s,
    /// 100MiB/s) per second.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_bandwidth: Option<u64>,
    /// AzCopy's form of --max-bandwidth: megabits per second (--cap-mbps 800 = 800Mbps).
    #[arg(long, value_name = "N", value_parser = parse_cap_mbps, conflicts_with = "max_bandwidth")]
    pub cap_mbps: Option<u64>,
    /// Most memory the copy's buffers and workers may use, e.g. 512MiB (default: a quarter of
    /// the machine's memory, between 256MiB and 2GiB). Workers wait for room rather than go
    /// over it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// How to check the target after the copy (deep: checksums, then every block of every
    /// HFile with its CRC32C; source findings then fail the run).
    #[arg(long, value_enum, default_value_t = VerifyArg::Checksum)]
    pub verify: VerifyArg,
    /// Source findings (an invalid HFile, a dangling HFileLink, a Reference without its parent,
    /// copied as they are) fail the run, exit 1; without it they are warnings.
    #[arg(long)]
    pub strict: bool,
    /// Write a JSON report of the run.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Where the job journal lives (default: DST/.hbcp/jobs/ID for a local target,
    /// ~/.local/state/hbcp/jobs/ID otherwise).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Progress display: a bar on a terminal, one JSON line per second, or nothing; -P alone
    /// is a bar.
    #[arg(short = 'P', long, value_enum, default_value_t = ProgressArg::Auto,
          num_args = 0..=1, default_missing_value = "bar")]
    pub progress: ProgressArg,
    /// Files that already exist at the target.
    #[arg(long, value_enum, default_value_t = OverwriteArg::IfDifferent)]
    pub overwrite: OverwriteArg,
    /// Allow plain-HTTP endpoints (wasb://, abfs://, http://).
    #[arg(long)]
    pub allow_http: bool,
    /// Store each blob's Content-MD5 (Azure targets), so that Azure's own tools can check the
    /// blobs; every block is also sent with a transactional MD5 that the service checks. Costs
    /// MD5 CPU and, for files sent in ranges, one more in-order read of the source.
    #[arg(long)]
    pub put_md5: bool,
    /// Server-side copies between two stores of the same kind (S3 CopyObject on one endpoint,
    /// GCS rewrite, Azure Copy Blob From URL with the source's SAS): auto uses them where the
    /// pair can and streams the other files; never streams every file through hbcp.
    #[arg(long, value_enum, default_value_t = S2sArg::Auto)]
    pub s2s: S2sArg,
}

/// `--s2s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum S2sArg {
    /// Server-side where the two stores can, streamed otherwise.
    Auto,
    /// Every byte through hbcp.
    Never,
}

/// `hbcp copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    pub ends: Endpoints,
    /// Copy although the preflight found edits that live only in WALs (the WALs are copied
    /// with the data; without this flag such a copy is refused, exit 2).
    #[arg(long)]
    pub allow_unflushed: bool,
    /// Remove target files under the copied HBase table, region and family folders that the
    /// source lacks (without it each one fails the copy, exit 1: HBase would load it).
    #[arg(long)]
    pub delete_extra: bool,
    /// With --delete-extra: refuse to delete more than this share of the files under those
    /// folders without --force.
    #[arg(long, value_name = "SHARE", default_value = "5%")]
    pub max_delete: String,
    /// With --delete-extra: delete even more than --max-delete.
    #[arg(long)]
    pub force: bool,
    /// Write nothing (not the target, not the state folder, no lock): say what would be
    /// copied and kept, as counts, bytes and the first names (with --progress json,
    /// every name as a JSON line on stdout).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wals: WalArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub hbase: HbaseSelectArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub ends: Endpoints,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub hbase: HbaseSelectArgs,
    /// Plan the WALs too (as `copy --allow-unflushed` copies them).
    #[arg(long)]
    pub allow_unflushed: bool,
    #[command(flatten)]
    pub wals: WalArgs,
    /// Where to write the plan.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Range size the plan's tasks are cut to.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub range_size: Option<u64>,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A plan written by `hbcp plan`.
    pub plan: PathBuf,
    /// Run only shard I of N (I counts from 0), e.g. one per machine; then `hbcp finalize`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub ends: Endpoints,
    /// Sync although edits live only in WALs (the WALs are then synced too, as `copy
    /// --allow-unflushed` copies them); without it such a sync is refused, exit 2, before its
    /// first cycle.
    #[arg(long)]
    pub allow_unflushed: bool,
    #[command(flatten)]
    pub wals: WalArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    /// Delete from the target what the source no longer has (only under DST, only after the
    /// copy verified, never in a cycle with an error).
    #[arg(long)]
    pub delete: bool,
    /// Refuse to delete more than this share of the target's files without --force.
    #[arg(long, value_name = "SHARE", default_value = "5%")]
    pub max_delete: String,
    /// Delete even more than --max-delete.
    #[arg(long)]
    pub force: bool,
    /// Write nothing (not the target, not the state folder, no lock): say what would be
    /// copied, kept and (with --delete) deleted, as counts, bytes and the first names (with --progress json,
    /// every name as a JSON line on stdout).
    #[arg(long)]
    pub dry_run: bool,
    /// Keep syncing every --interval until stopped (Ctrl-C: clean stop, exit 0).
    #[arg(long)]
    pub watch: bool,
    /// Time between the starts of two cycles with --watch.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub interval: String,
    /// List the whole target every N cycles (otherwise the last manifest describes it).
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub recheck: u32,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp finalize`.
#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// The plan the shards ran.
    pub plan: PathBuf,
    /// How to check the target.
    #[arg(long, value_enum, default_value_t = VerifyArg::Checksum)]
    pub verify: VerifyArg,
    /// Source findings fail the run (exit 1).
    #[arg(long)]
    pub strict: bool,
    /// Parallel readers.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Write a JSON report.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The plan the shards run.
    pub plan: PathBuf,
    /// Number of shards (found from the shards' results when not given).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `hbcp verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub ends: Endpoints,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub hbase: HbaseSelectArgs,
    /// The copy was made with --allow-unflushed: the WALs belong to it.
    #[arg(long)]
    pub allow_unflushed: bool,
    /// Compare sizes only, every byte (checksum, the default: by the MD5 the target service
    /// computed where it keeps one, else read back), every byte read back (reread), or every
    /// byte and every HFile block's CRC32C (deep).
    #[arg(long, value_enum, default_value_t = VerifyArg::Checksum,
          default_value_if("deep", ArgPredicate::IsPresent, Some("deep")))]
    pub verify: VerifyArg,
    /// The same as --verify deep.
    #[arg(long, conflicts_with = "verify")]
    pub deep: bool,
    /// Source findings (an invalid HFile, a dangling HFileLink, a Reference without its
    /// parent) fail the run, exit 1; without it (and without --verify deep) they are warnings.
    #[arg(long)]
    pub strict: bool,
    /// Parallel readers.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Bandwidth limit over every read of both sides: bits (800Mbps, 10Gbps) or bytes
    /// (100MB/s, 100MiB/s) per second.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_bandwidth: Option<u64>,
    /// AzCopy's form of --max-bandwidth: megabits per second (--cap-mbps 800 = 800Mbps).
    #[arg(long, value_name = "N", value_parser = parse_cap_mbps, conflicts_with = "max_bandwidth")]
    pub cap_mbps: Option<u64>,
    /// Write a JSON report.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Progress display; -P alone is a bar.
    #[arg(short = 'P', long, value_enum, default_value_t = ProgressArg::Auto,
          num_args = 0..=1, default_missing_value = "bar")]
    pub progress: ProgressArg,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// `--verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyArg {
    /// No verification: the copy is not called verified and no completion manifest is written.
    None,
    /// Sizes only.
    Size,
    /// Sizes and checksums of every byte: the MD5 the target service computed over the
    /// stored object where it keeps one (Azure, GCS: files written whole), compared with the
    /// MD5 of the source bytes (no read-back); else every byte read back and hashed (xxh3).
    /// On an HBase root also every HFile's trailer.
    Checksum,
    /// As checksum, but every target byte is read back and hashed, whatever the service keeps.
    Reread,
    /// As checksum, and on an HBase root every block of every HFile with its CRC32C
    /// checksums; source findings fail the run.
    Deep,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// A bar when stderr is a terminal, nothing otherwise.
    Auto,
    /// A bar on stderr.
    Bar,
    /// One JSON line per second on stdout.
    Json,
    /// Nothing but the final summary.
    None,
}

/// `--overwrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverwriteArg {
    /// Copy unless size and checksum are equal.
    IfDifferent,
    /// Always copy.
    Always,
    /// Never replace a file that exists at the target.
    Never,
}

/// Parse a size: `123`, `64KiB`, `16MiB`, `1GiB`, `10MB`, `1.5G` (K/M/G/T without `i` are
/// powers of 1000, with `i` powers of 1024; a lone `K`/`M`/`G`/`T` is taken as binary).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("{s:?} is not a size; expected e.g. 64MiB, 512KiB, 1GiB or a byte count")
    })?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?}; expected B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
            ));
        }
    };
    let v = n * mult;
    if !(0.0..1.8e19).contains(&v) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(v as u64)
}

/// The forms `--max-bandwidth` takes, for its refusals.
const RATE_FORMS: &str = "bits per second (800Mbps, 10Gbps, 500Kbps, 2Mbit/s) or bytes per \
    second (100MB/s, 100MiB/s, 1GB/s; KiB, MiB, GiB alone are bytes per second too)";

/// Parse a rate with networking's meaning of its unit: `Mbps`/`Gbps` (a lower-case `b`) are
/// bits per second, `MB/s`/`MiB/s` bytes per second (powers of 1000 without `i`, of 1024 with
/// it); the binary sizes alone (`64MiB`) are bytes per second. Forms that could be read either
/// way (`8M`, `8MB` without `/s`, `8mbps`, `8MBps`, a bare number) are refused. Bytes/s out.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a rate; expected {RATE_FORMS}"))?;
    let bits = |p: f64| n * p / 8.0;
    let v = match unit.trim() {
        "bps" | "bit/s" => bits(1.0),
        "Kbps" | "kbps" | "Kbit/s" | "kbit/s" => bits(1e3),
        "Mbps" | "Mbit/s" => bits(1e6),
        "Gbps" | "Gbit/s" => bits(1e9),
        "Tbps" | "Tbit/s" => bits(1e12),
        "B/s" => n,
        "KB/s" | "kB/s" => n * 1e3,
        "MB/s" => n * 1e6,
        "GB/s" => n * 1e9,
        "TB/s" => n * 1e12,
        "KiB" | "KiB/s" => n * 1024.0,
        "MiB" | "MiB/s" => n * 1024.0 * 1024.0,
        "GiB" | "GiB/s" => n * 1024f64.powi(3),
        "TiB" | "TiB/s" => n * 1024f64.powi(4),
        "" => {
            return Err(format!(
                "{s:?} has no unit: bits or bytes? Use {RATE_FORMS}"
            ));
        }
        other => {
            return Err(format!(
                "{other:?} in {s:?} is ambiguous or unknown as a rate; use {RATE_FORMS}"
            ));
        }
    };
    if !(v.is_finite() && v < 1.8e19) {
        return Err(format!("{s:?} is out of range"));
    }
    if v < 1.0 {
        return Err(format!(
            "{s:?}: the rate must be at least one byte per second"
        ));
    }
    Ok(v as u64)
}

/// Parse `--cap-mbps N` (AzCopy's flag): megabits per second. Bytes/s out.
pub fn parse_cap_mbps(s: &str) -> Result<u64, String> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of megabits per second (e.g. 800)"))?;
    let v = n * 1e6 / 8.0;
    if !(1.0..1.8e19).contains(&v) {
        return Err(format!(
            "{s:?}: expected megabits per second above zero, e.g. 800"
        ));
    }
    Ok(v as u64)
}

impl TuningArgs {
    /// The tuning of a run, checked ([`spec::Tuning::check`]).
    pub(crate) fn spec(self) -> anyhow::Result<spec::Tuning> {
        let t = spec::Tuning {
            workers: self.workers,
            range_size: self.range_size,
            bandwidth: self.max_bandwidth.or(self.cap_mbps),
            max_memory: self.max_memory,
            verify: self.verify.spec(),
            strict: self.strict,
            report: self.report,
            state: self.state,
            progress: self.progress.spec(),
            overwrite: match self.overwrite {
                OverwriteArg::IfDifferent => spec::OverwriteChoice::IfDifferent,
                OverwriteArg::Always => spec::OverwriteChoice::Always,
                OverwriteArg::Never => spec::OverwriteChoice::Never,
            },
            allow_http: self.allow_http,
            s2s: self.s2s == S2sArg::Auto,
        };
        t.check()?;
        Ok(t)
    }
}

impl Endpoints {
    pub(crate) fn spec(self) -> spec::Endpoints {
        spec::Endpoints {
            src: self.src,
            dst: self.dst,
        }
    }
}

impl SelectionArgs {
    pub(crate) fn spec(self) -> spec::SelectionSpec {
        spec::SelectionSpec {
            exclude: self.exclude,
        }
    }
}

impl WalArgs {
    pub(crate) fn spec(self) -> spec::WalSpec {
        spec::WalSpec {
            wal_dir: self.wal_dir,
            no_wals_expected: self.no_wals_expected,
        }
    }
}

impl HbaseSelectArgs {
    pub(crate) fn spec(self) -> spec::HbaseSelectSpec {
        spec::HbaseSelectSpec {
            table: self.table,
            snapshot: self.snapshot,
            start_row: self.start_row,
            end_row: self.end_row,
            since: self.since,
            until: self.until,
            layout: match self.layout {
                LayoutArg::Root => spec::LayoutChoice::Root,
                LayoutArg::Bulkload => spec::LayoutChoice::Bulkload,
            },
        }
    }
}

impl VerifyArg {
    pub(crate) fn spec(self) -> spec::VerifyChoice {
        match self {
            VerifyArg::None => spec::VerifyChoice::None,
            VerifyArg::Size => spec::VerifyChoice::Size,
            VerifyArg::Checksum => spec::VerifyChoice::Checksum,
            VerifyArg::Reread => spec::VerifyChoice::Reread,
            VerifyArg::Deep => spec::VerifyChoice::Deep,
        }
    }
}

impl ProgressArg {
    pub(crate) fn spec(self) -> spec::ProgressMode {
        match self {
            ProgressArg::Auto => spec::ProgressMode::Auto,
            ProgressArg::Bar => spec::ProgressMode::Bar,
            ProgressArg::Json => spec::ProgressMode::Json,
            ProgressArg::None => spec::ProgressMode::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn rates_in_bits_and_bytes() {
        assert_eq!(parse_rate("100MiB/s").unwrap(), 100 << 20);
        assert_eq!(parse_rate("100MiB").unwrap(), 100 << 20);
        assert_eq!(parse_rate("8Mbps").unwrap(), 1_000_000);
        assert_eq!(parse_rate("800Mbps").unwrap(), 100_000_000);
        assert_eq!(parse_rate("10Gbps").unwrap(), 1_250_000_000);
        assert_eq!(parse_rate("2Mbit/s").unwrap(), 250_000);
        assert_eq!(parse_rate("100MB/s").unwrap(), 100_000_000);
        assert_eq!(parse_rate("1.5GB/s").unwrap(), 1_500_000_000);
        for ambiguous in [
            "8",
            "8M",
            "8MB",
            "8mbps",
            "8MBps",
            "8Mb",
            "8 parsecs",
            "0Mbps",
        ] {
            let e = parse_rate(ambiguous).unwrap_err();
            assert!(e.contains(ambiguous), "{e}");
        }
        assert!(parse_rate("8MB").unwrap_err().contains("800Mbps"));
        assert_eq!(parse_cap_mbps("800").unwrap(), 100_000_000);
        assert!(parse_cap_mbps("0").is_err());
        assert!(parse_cap_mbps("8Mbps").is_err());
    }
}
