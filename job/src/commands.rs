//! The commands: glue between checked arguments and the library crates.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{Context, Result};
use hbcp_engine::{Config, Outcome, Overwrite, Stats};
use hbcp_planner::Selection;
use hbcp_planner::plan::{PLAN_FORMAT, PLAN_VERSION, PlanHeader, PlanReader, PlanWriter};
use hbcp_state::manifest::{self, COMPLETION_KEY, ManifestEntry};
use hbcp_state::time::now_rfc3339;
use hbcp_store::timed::Timed;
use hbcp_store::{Entry, EntryKind, ListSink, Store, StoreUrl};
use hbcp_verifier::check::{Params, SourceCheck, compare_trees, verify_entries_listing};
use hbcp_verifier::listed::TargetListing;
use hbcp_verifier::{FindingKind, HbaseLayout, SourceFinding, VerifyMode, VerifyOutcome};

use crate::observe::Observer;
use crate::observe::Phase;
use crate::report::bytes;
use crate::report::{Report, Verified};
use crate::spec::{
    CommandSpec, CopySpec, FinalizeSpec, JobSpec, OverwriteChoice, PlanSpec, RunSpec, StatusSpec,
    Tuning, VerifyChoice, VerifySpec,
};
use crate::{Exit, usage};
use hbcp_planner::shard::{Assigner, ShardId};

/// Run a command ([`crate::run`]).
pub(crate) fn run(spec: JobSpec, observer: Arc<dyn Observer>) -> Result<Exit> {
    let _ = AZURE_ENDPOINT.set(spec.azure_endpoint);
    let _ = PUT_MD5.set(spec.put_md5);
    let _ = crate::report::COMMAND_LINE.set(spec.resume.line.clone());
    if spec.command.resumes() {
        crate::exit::set_resume(spec.resume);
    }
    let observer = &observer;
    match spec.command {
        CommandSpec::Copy(a) => copy(a, observer),
        CommandSpec::Plan(a) => plan(a),
        CommandSpec::Run(a) => run_plan(a, observer),
        CommandSpec::Verify(a) => verify(a, observer),
        CommandSpec::Finalize(a) => finalize(a),
        CommandSpec::Status(a) => status(a),
        CommandSpec::Sync(a) => crate::sync::sync(a),
        CommandSpec::Bench(a) => crate::bench::bench(a),
        CommandSpec::Preflight(a) => crate::preflight::preflight(a),
        CommandSpec::Snapshots(a) => crate::select::snapshots(a),
        CommandSpec::Backup(a) => crate::backup::backup(a, observer),
        CommandSpec::Generations(a) => crate::backup::generations(a),
        CommandSpec::Restore(a) => crate::backup::restore(a, observer),
        CommandSpec::Auth(a) => crate::auth::auth(a),
        CommandSpec::Jobs(a) => crate::jobs::jobs(a),
    }
}

/// An opened endpoint.
pub(crate) struct End {
    pub(crate) url: StoreUrl,
    pub(crate) store: Arc<dyn Store>,
}

pub(crate) fn parse_url(s: &str, what: &str, allow_http: bool) -> Result<StoreUrl> {
    match StoreUrl::parse(s, allow_http) {
        Ok(u) => Ok(u),
        Err(e) => usage(format!("{what}: {e}")),
    }
}

fn local_path(u: &StoreUrl) -> Option<&Path> {
    match &u.endpoint {
        hbcp_store::Endpoint::Local(p) => Some(p),
        _ => None,
    }
}

/// Canonical form of a path that may not exist yet: the nearest existing ancestor,
/// canonicalized, joined with the rest.
fn canonical_future(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = fs::canonicalize(existing) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

pub(crate) fn open_source(s: &str, allow_http: bool) -> Result<End> {
    let url = parse_url(s, "source", allow_http)?;
    if let Some(p) = local_path(&url) {
        match fs::metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return usage(format!("source {}: does not exist", p.display()));
            }
            Err(e) => return usage(format!("source {}: {e}", p.display())),
            Ok(m) if !m.is_dir() => {
                return usage(format!(
                    "source {}: is a file; expected the HBase root directory (e.g. /hbase)",
                    p.display()
                ));
            }
            Ok(_) => {}
        }
        if let Err(e) = fs::read_dir(p) {
            return usage(format!("source {}: cannot be read: {e}", p.display()));
        }
        let canon = fs::canonicalize(p).with_context(|| format!("source {}", p.display()))?;
        let store: Arc<dyn Store> = Arc::new(hbcp_store::local::LocalStore::new(canon));
        return Ok(End { url, store });
    }
    let store = open_remote(&url, false, allow_http)?;
    Ok(End { url, store })
}

/// `--azure-endpoint`, set once from the command line.
static AZURE_ENDPOINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
/// `--put-md5`, set once from the command line.
static PUT_MD5: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// LIST requests in flight on an object store, from `HBCP_LIST_CONCURRENCY` (like AzCopy's
/// `AZCOPY_CONCURRENT_SCAN`); unset: the store's default (16). 1 lists the root as one sequential
/// paged listing, without the per-folder delimited listings, which suits a service that is
/// slow at delimited listings of big containers (Azurite with a SQL store).
fn list_concurrency() -> Result<Option<usize>> {
    match std::env::var("HBCP_LIST_CONCURRENCY") {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=256).contains(&n) => Ok(Some(n)),
            _ => usage(format!(
                "HBCP_LIST_CONCURRENCY={v:?}: expected the number of LIST requests in flight, \
                 1 to 256"
            )),
        },
    }
}

/// `allow_http` is `--allow-http`: URL parsing refused a plain-HTTP URL without it, and the
/// store refuses a plain-HTTP endpoint that the environment names (`AWS_ENDPOINT_URL`, a GCS
/// key's `gcs_base_url`) off loopback.
fn open_remote(url: &StoreUrl, target: bool, allow_http: bool) -> Result<Arc<dyn Store>> {
    if let Some(note) = hbcp_store_cloud::url_sas_overrides(url) {
        errln!("hbcp: {note}");
    }
    match hbcp_store_cloud::open(url, &cloud_options(target, allow_http)?) {
        Ok((s, opened)) => {
            if let Some(c) = opened.created_container {
                errln!("hbcp: created container {c} at {}", url.display);
            }
            Ok(s)
        }
        // Found before anything was written: a bad URL, an endpoint that cannot be reached,
        // a credential that is missing, refused or lacks a permission, a missing container.
        Err(e) if e.is_fatal() || e.is_endpoint() => usage(e.to_string()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot open {}", url.display))),
    }
}

/// How cloud endpoints are opened: a source proves it can be listed, a target that it can be
/// listed and written (its container created if missing), before anything moves.
pub(crate) fn cloud_options(
    target: bool,
    allow_http: bool,
) -> Result<hbcp_store_cloud::CloudOptions> {
    Ok(hbcp_store_cloud::CloudOptions {
        allow_http,
        azure_endpoint: AZURE_ENDPOINT.get().cloned().flatten(),
        create_container: target,
        put_md5: PUT_MD5.get().copied().unwrap_or(false),
        list_concurrency: list_concurrency()?,
        list_page_size: None,
        check: if target {
            hbcp_store_cloud::Check::Write
        } else {
            hbcp_store_cloud::Check::List
        },
    })
}

/// Open the target; for a local one, check it is not inside the source (or the reverse) and
/// that it can be written, before anything else is written.
pub(crate) fn open_target(s: &str, src: &End, allow_http: bool) -> Result<End> {
    open_target_for(s, src, allow_http, true)
}

/// [`open_target`]; `write: false` (a dry run) writes nothing there, not even the probe: a
/// local target is only checked, an object store's only listed, its container never created.
pub(crate) fn open_target_for(s: &str, src: &End, allow_http: bool, write: bool) -> Result<End> {
    let url = parse_url(s, "target", allow_http)?;
    if let Some(p) = local_path(&url) {
        let canon = canonical_future(p);
        if let Some(sp) = local_path(&src.url) {
            let sc = fs::canonicalize(sp).unwrap_or_else(|_| sp.to_path_buf());
            if canon.starts_with(&sc) {
                return usage(format!(
                    "target {} is inside the source {}; choose a target outside it",
                    p.display(),
                    sp.display()
                ));
            }
            if sc.starts_with(&canon) {
                return usage(format!(
                    "source {} is inside the target {}; choose a target outside it",
                    sp.display(),
                    p.display()
                ));
            }
        }
        if let Ok(m) = fs::metadata(&canon) {
            if !m.is_dir() {
                return usage(format!(
                    "target {}: exists and is not a directory",
                    p.display()
                ));
            }
        }
        if !write {
            let store: Arc<dyn Store> = Arc::new(hbcp_store::local::LocalStore::new(canon));
            return Ok(End { url, store });
        }
        let probe = canon.join(hbcp_store::local::HBCP_DIR);
        crate::exit::creating(&probe, false);
        if let Err(e) = fs::create_dir_all(&probe) {
            return usage(format!("target {}: not writable: {e}", p.display()));
        }
        let test = probe.join(format!(".probe-{}", std::process::id()));
        if let Err(e) = fs::write(&test, b"").and_then(|_| fs::remove_file(&test)) {
            return usage(format!("target {}: not writable: {e}", p.display()));
        }
        // A local target writes and verifies with O_DIRECT where its file system allows.
        let store: Arc<dyn Store> =
            Arc::new(hbcp_store::local::LocalStore::new(canon).with_direct_io(true));
        return Ok(End { url, store });
    }
    let store = open_remote(&url, write, allow_http)?;
    Ok(End { url, store })
}

/// The folder `hbcp bench` writes to.
pub(crate) fn open_bench_target(url: &StoreUrl, allow_http: bool) -> Result<Arc<dyn Store>> {
    match local_path(url) {
        Some(p) => {
            if let Err(e) = fs::create_dir_all(p) {
                return usage(format!("{}: not writable: {e}", p.display()));
            }
            Ok(Arc::new(hbcp_store::local::LocalStore::new(
                p.to_path_buf(),
            )))
        }
        None => open_remote(url, true, allow_http),
    }
}

pub(crate) fn selection(excludes: &[String]) -> Result<Selection> {
    match Selection::with_excludes(excludes) {
        Ok(s) => Ok(s),
        Err(e) => usage(e.to_string()),
    }
}

fn default_range_size(src: &End, dst: &End) -> u64 {
    default_range_size_for(src.store.caps().is_local && dst.store.caps().is_local)
}

/// The default `--range-size` of a copy, disk to disk or not.
fn default_range_size_for(both_local: bool) -> u64 {
    if both_local {
        64 << 20
    } else {
        // One range in memory per worker: 32 × 8 MiB.
        8 << 20
    }
}

pub(crate) fn default_state_dir(dst: &End, job: &str) -> PathBuf {
    if let hbcp_store::Endpoint::Local(_) = &dst.url.endpoint {
        if let Some(root) = dst.store.describe().into() {
            let root: String = root;
            return PathBuf::from(root)
                .join(hbcp_store::local::HBCP_DIR)
                .join("jobs")
                .join(job);
        }
    }
    crate::jobs::machine_dir().join(job)
}

/// Where the job `job` keeps its journal and scratch files: `--state`, else
/// [`default_state_dir`].
pub(crate) fn state_dir_of(tuning: &Tuning, dst: &End, job: &str) -> PathBuf {
    tuning
        .state
        .clone()
        .unwrap_or_else(|| default_state_dir(dst, job))
}

pub(crate) fn verify_mode(v: VerifyChoice) -> VerifyMode {
    match v {
        VerifyChoice::None => VerifyMode::None,
        VerifyChoice::Size => VerifyMode::Size,
        VerifyChoice::Checksum => VerifyMode::Checksum,
        VerifyChoice::Reread => VerifyMode::Reread,
        VerifyChoice::Deep => VerifyMode::Deep,
    }
}

/// Which HBase checks a job's target gets: none for a folder without `hbase.version`, the
/// root layout for a whole root (the HBase rules apply) or a table/snapshot view, or the
/// bulkload layout.
pub(crate) fn hbase_layout(
    spec: Option<&hbcp_planner::SelectSpec>,
    sel: &Selection,
) -> Option<HbaseLayout> {
    match spec {
        Some(s) if s.is_view() => Some(match s.layout {
            hbcp_planner::Layout::Root => HbaseLayout::Root,
            hbcp_planner::Layout::Bulkload => HbaseLayout::Bulkload,
        }),
        _ => sel.hbase_rules().map(|_| HbaseLayout::Root),
    }
}

/// The planner's warnings of a table or snapshot selection (dangling links, missing parents,
/// unreadable region infos or time ranges) as source findings.
pub(crate) fn view_findings(view: &hbcp_planner::View) -> Vec<SourceFinding> {
    view.warnings
        .iter()
        .map(|w| {
            let (key, detail) = match w.split_once(": ") {
                Some((k, d)) if !k.contains(' ') => (k, d),
                _ => ("", w.as_str()),
            };
            let kind = if detail.contains("dangling HFileLink") {
                FindingKind::DanglingHfileLink
            } else if detail.starts_with("Reference") && detail.contains("not at the source") {
                FindingKind::ReferenceWithoutParent
            } else {
                FindingKind::Selection
            };
            SourceFinding {
                key: key.to_string(),
                kind,
                detail: detail.to_string(),
            }
        })
        .collect()
}

/// Add the selection's findings to what the verifier found (one per key: the verifier's, which
/// says more), sorted by key.
pub(crate) fn merge_findings(found: &mut Vec<SourceFinding>, selection: &[SourceFinding]) {
    for f in selection {
        if f.key.is_empty() || !found.iter().any(|g| g.key == f.key) {
            found.push(f.clone());
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
}

/// Source findings fail a run only under `--verify deep` or `--strict`.
pub(crate) fn findings_fail(mode: VerifyMode, strict: bool, found: &[SourceFinding]) -> bool {
    !found.is_empty() && (strict || mode == VerifyMode::Deep)
}

/// One warning line per source finding, on stderr.
pub(crate) fn warn_findings(found: &[SourceFinding]) {
    for f in found {
        errln!("hbcp: warning: {f}");
    }
}

pub(crate) use crate::exit::install_signals;

/// What a copy needs, however its entries are fed.
pub(crate) struct Job {
    /// Shows the run's progress.
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) src: End,
    pub(crate) dst: End,
    pub(crate) cfg: Config,
    pub(crate) tuning: Tuning,
    pub(crate) command: String,
    /// The job of the whole plan (shards add their suffix to `cfg.job`).
    base_job: String,
    /// This run is one shard of a plan.
    shard: Option<ShardId>,
    /// A snapshot export: published after verification.
    pub(crate) publish: Option<hbcp_planner::view::Publish>,
    /// Files and bytes this run wrote before the engine ran (a snapshot's manifest, put under
    /// `.tmp/` first): the engine then finds them there, and the summary counts them as copied.
    pub(crate) prewritten: (u64, u64),
    /// The source is an HBase root laid out so at the target: the verifier's HBase checks.
    pub(crate) hbase: Option<HbaseLayout>,
    /// Source findings of the selection (printed when it was resolved).
    pub(crate) selection_findings: Vec<SourceFinding>,
    /// The prefixes the copy listed at the source, when its keys are the source's own (a plain
    /// copy, not a view): the verification may list them again instead of a HEAD per file.
    pub(crate) source_prefixes: Option<Vec<String>>,
    /// The keys that belong to the job at the target (what an extra may be).
    pub(crate) target_selection: Selection,
    /// `--delete-extra`, with its cap.
    pub(crate) delete_extra: Option<hbcp_verifier::check::DeleteExtra>,
    /// What the listing left out, by reason (the summary and the report name it).
    pub(crate) left_out: Arc<hbcp_planner::LeftOutTally>,
}

impl Job {
    /// `store`'s reads under the run's bandwidth limit (`--max-bandwidth`): the verification's
    /// read-back moves bytes as the copy does. A signal ends a wait.
    pub(crate) fn capped<'a>(&'a self, store: &'a dyn Store) -> hbcp_engine::Capped<'a> {
        hbcp_engine::Capped::new(
            store,
            self.cfg.max_bandwidth.as_deref(),
            &crate::exit::signalled,
        )
    }
}

// The plan's range size and shard are a `run`'s alone; the other commands pass `None`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_job(
    observer: &Arc<dyn Observer>,
    command: &str,
    src: End,
    dst: End,
    excludes: &[String],
    tuning: Tuning,
    range_size: Option<u64>,
    shard: Option<ShardId>,
) -> Result<Job> {
    let range_size = tuning
        .range_size
        .or(range_size)
        .unwrap_or_else(|| default_range_size(&src, &dst));
    check_range_size(range_size)?;
    let workers = tuning.workers.unwrap_or_else(|| {
        if src.store.caps().is_local && dst.store.caps().is_local {
            8
        } else {
            dst.store
                .caps()
                .default_concurrency
                .max(src.store.caps().default_concurrency)
        }
    });
    if workers == 0 || workers > 1024 {
        return usage(format!("--workers {workers}: expected 1 to 1024"));
    }
    let buffer_budget = match memory_budget(
        tuning.max_memory,
        workers,
        range_size,
        dst.store.caps().positional_writes,
    ) {
        Ok(b) => b,
        Err(msg) => return usage(msg),
    };
    let base_job = hbcp_engine::job_id(&src.url.display, &dst.url.display, excludes, range_size);
    let job = match shard {
        Some(sh) => format!("{base_job}-{sh}"),
        None => base_job.clone(),
    };
    let state_dir = state_dir_of(&tuning, &dst, &job);
    if tuning.state.is_some() {
        let canon = |u: &StoreUrl| local_path(u).map(canonical_future);
        if let Some(msg) = hbcp_engine::state_dir_conflict(
            &canonical_future(&state_dir),
            canon(&src.url).as_deref(),
            canon(&dst.url).as_deref(),
        ) {
            return usage(msg);
        }
    }
    crate::exit::creating(&state_dir, true);
    let cfg = Config {
        workers,
        range_size,
        chunk: hbcp_engine::CHUNK.min(range_size),
        overwrite: match tuning.overwrite {
            OverwriteChoice::IfDifferent => Overwrite::IfDifferent,
            OverwriteChoice::Always => Overwrite::Always,
            OverwriteChoice::Never => Overwrite::Never,
        },
        // One limit for the whole run: the copy, its checks and the verification share it.
        max_bandwidth: tuning
            .bandwidth
            .map(|b| Arc::new(hbcp_engine::Bandwidth::new(b))),
        buffer_budget,
        // Against an object store the number of requests in flight adapts (more while the
        // throughput grows, fewer when throttled); disk to disk it is fixed.
        start_concurrency: (!(src.store.caps().is_local && dst.store.caps().is_local))
            .then_some((workers / 2).max(2)),
        job,
        state_dir,
        source_label: src.url.display.clone(),
        target_label: dst.url.display.clone(),
        started: now_rfc3339(),
        // Sync and backup trust an HFile's name and size (HBase writes each once, named by a
        // UUID); every other file is compared by content.
        write_once: hbcp_hbase::is_unique_hfile_name,
        s2s: tuning.s2s,
        ..Config::default()
    };
    tracing::info!(
        target: "hbcp::job",
        job = %cfg.job,
        command,
        source = %cfg.source_label,
        target = %cfg.target_label,
        state = %cfg.state_dir.display(),
        "job {}: {command} {} -> {}",
        cfg.job,
        cfg.source_label,
        cfg.target_label
    );
    Ok(Job {
        observer: observer.clone(),
        src,
        dst,
        cfg,
        tuning,
        command: command.into(),
        base_job,
        shard,
        publish: None,
        prewritten: (0, 0),
        hbase: None,
        selection_findings: Vec::new(),
        source_prefixes: None,
        target_selection: Selection::default(),
        delete_extra: None,
        left_out: Arc::default(),
    })
}

/// `--range-size` within its bounds (the plan reader checks a plan's by the same constant).
pub(crate) fn check_range_size(rs: u64) -> Result<()> {
    if rs < hbcp_planner::plan::MIN_RANGE_SIZE {
        return usage(format!("--range-size {rs}: must be at least 4KiB"));
    }
    Ok(())
}

/// `--max-memory` against the workers and range size it must hold, checked from the URLs
/// before anything is opened (so that a refusal writes nothing); the same rule
/// [`build_job`] applies once the endpoints are open.
pub(crate) fn validate_memory(t: &Tuning, src: &str, dst: &str) -> Result<()> {
    let local = |u: &str| {
        hbcp_store::StoreUrl::parse(u, true)
            .map(|u| matches!(u.endpoint, hbcp_store::Endpoint::Local(_)))
            .ok()
    };
    let (Some(src_local), Some(dst_local)) = (local(src), local(dst)) else {
        return Ok(()); // A bad URL is named when it is opened.
    };
    let both = src_local && dst_local;
    let workers = t.workers.unwrap_or(if both { 8 } else { 32 });
    let range = t.range_size.unwrap_or_else(|| default_range_size_for(both));
    match memory_budget(t.max_memory, workers, range, dst_local) {
        Ok(_) => Ok(()),
        Err(msg) => usage(msg),
    }
}

fn copy(a: CopySpec, observer: &Arc<dyn Observer>) -> Result<Exit> {
    let delete_extra = a.delete_extra.then_some(hbcp_verifier::check::DeleteExtra {
        max_share: a.max_delete,
        force: a.force,
    });
    validate_memory(&a.tuning, &a.ends.src, &a.ends.dst)?;
    let spec = crate::select::spec(&a.hbase)?;
    let sel = selection(&a.selection.exclude)?;
    let src = open_source(&a.ends.src, a.tuning.allow_http)?;
    if !a.allow_unflushed && spec.snapshot.is_none() {
        // HBase roots only: refuse a copy that would lose edits still only in WALs (of the
        // selected tables, with --table), or that cannot tell.
        let places = crate::preflight::WalPlaces::open(&a.wals, a.tuning.allow_http)?;
        if let Some(msg) = crate::preflight::unflushed_guard(&src, &spec.tables, &places)? {
            return usage(msg);
        }
    } else if spec.snapshot.is_none() {
        crate::preflight::refuse_mid_rename(&src)?;
    }
    let prep = crate::select::prepare(&src, &spec, sel, a.allow_unflushed)?;
    let dst = open_target_for(&a.ends.dst, &src, a.tuning.allow_http, !a.dry_run)?;
    let identity = job_identity(&a.selection.exclude, &spec, &prep.sel);
    let Some(view) = prep.view else {
        let mut job = build_job(observer, "copy", src, dst, &identity, a.tuning, None, None)?;
        job.hbase = hbase_layout(None, &prep.sel);
        job.target_selection = prep.sel.clone();
        job.delete_extra = delete_extra;
        let sel = prep.sel;
        // The whole root, listed again by the verification (see `verify_spill`).
        let prefixes = vec![String::new()];
        job.source_prefixes = Some(prefixes.clone());
        let left_out = job.left_out.clone();
        let feed = move |src: &dyn Store, sink: &ListSink<'_>| {
            for prefix in &prefixes {
                src.list(prefix, &|e: Entry| {
                    if left_out.judge(&sel, &e) {
                        sink(e)
                    } else {
                        Ok(())
                    }
                })?;
            }
            Ok(())
        };
        if a.dry_run {
            return crate::dryrun::copy(&job, &feed, a.delete_extra);
        }
        return execute(job, &feed);
    };
    copy_view(
        observer,
        "copy",
        (src, dst),
        (&spec, view, prep.sel),
        &identity,
        a.tuning,
        delete_extra,
        a.dry_run,
        |_| Ok(()),
    )
}

/// Copy a table or snapshot `view` of `ends.0` (resolved by [`crate::select::prepare`], with
/// its selection) to `ends.1`, verified: `copy --table/--snapshot`, and `restore --table/
/// --snapshot` out of a generation. `adjust` sets what differs in the job, or refuses it,
/// before anything is written.
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy_view(
    observer: &Arc<dyn Observer>,
    command: &str,
    (src, dst): (End, End),
    (spec, view, sel): (&hbcp_planner::SelectSpec, hbcp_planner::View, Selection),
    identity: &[String],
    tuning: Tuning,
    delete_extra: Option<hbcp_verifier::check::DeleteExtra>,
    dry_run: bool,
    adjust: impl FnOnce(&mut Job) -> Result<()>,
) -> Result<Exit> {
    let skip = crate::select::identity_at_target(&view, dst.store.as_ref())?;
    let vstore = crate::select::view_store(&src, spec, None);
    let view_end = End {
        store: vstore.clone(),
        url: src.url.clone(),
    };
    let mut job = build_job(
        observer, command, view_end, dst, identity, tuning, None, None,
    )?;
    job.publish = view.publish.clone();
    job.hbase = hbase_layout(Some(spec), &sel);
    job.target_selection = sel.clone();
    job.delete_extra = delete_extra;
    job.selection_findings = view_findings(&view);
    adjust(&mut job)?;
    for k in &skip {
        errln!("hbcp: the target already has {k}: kept as it is");
    }
    if let Some(p) = view.publish.as_ref().filter(|_| !dry_run) {
        let mut first = Vec::new();
        crate::select::copy_entries(&view, &sel, &skip, &mut |e, o| {
            if e.key.starts_with(&p.tmp) {
                first.push((e, o));
            }
            Ok(())
        })?;
        job.prewritten = crate::select::put_manifest_first(
            src.store.as_ref(),
            job.dst.store.as_ref(),
            &first,
            p,
        )?;
    }
    // The view's files stream from its sealed list; each key's sources are known to the view
    // store before the engine can read it.
    let feed = move |_: &dyn Store, sink: &ListSink<'_>| {
        crate::select::copy_entries(&view, &sel, &skip, &mut |e, o| {
            vstore.map_key(&e.key, &o);
            sink(e)
        })
    };
    if dry_run {
        return crate::dryrun::copy(&job, &feed, job.delete_extra.is_some());
    }
    execute(job, &feed)
}

/// What makes two jobs the same job: excludes, HBase rules, selection.
pub(crate) fn job_identity(
    excludes: &[String],
    spec: &hbcp_planner::SelectSpec,
    sel: &Selection,
) -> Vec<String> {
    let mut v = excludes.to_vec();
    if let Some(r) = sel.hbase_rules() {
        v.push(format!("\0hbase wals={}", r.include_wals));
    }
    v.extend(spec.describe());
    v
}

fn run_plan(a: RunSpec, observer: &Arc<dyn Observer>) -> Result<Exit> {
    let shard = match a.shard.as_deref().map(ShardId::parse).transpose() {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let (header, _) = match PlanReader::open(&a.plan) {
        Ok(x) => x,
        Err(e) => return usage(format!("plan {}: {e}", a.plan.display())),
    };
    let src = open_source(&header.source, a.tuning.allow_http)?;
    let dst = open_target(&header.target, &src, a.tuning.allow_http)?;
    let pv = plan_view(&a.plan, &header, dst.store.as_ref())?;
    let src = plan_source(src, &header, pv.as_ref());
    let skip = pv.as_ref().map(|p| p.skip.clone()).unwrap_or_default();
    let mut job = build_job(
        observer,
        "run",
        src,
        dst,
        &header.identity(),
        a.tuning,
        Some(header.range_size),
        shard,
    )?;
    if let Some(pv) = &pv {
        if let Some(p) = &pv.publish {
            if shard.is_none() {
                let entries: Vec<(Entry, Vec<String>)> = pv.tmp_entries.clone();
                job.prewritten = crate::select::put_manifest_first(
                    job.src.store.as_ref(),
                    job.dst.store.as_ref(),
                    &entries,
                    p,
                )?;
            }
        }
        // Shards leave the snapshot under .tmp; `hbcp finalize` publishes it.
        job.publish = if shard.is_none() {
            pv.publish.clone()
        } else {
            None
        };
    }
    if pv.is_none() && shard.is_none() {
        // A plan of the whole root run whole: its verification may list the source again, as
        // `copy`'s does (the plan listed the root). Not a shard: each would list all of it for
        // its own part.
        job.source_prefixes = Some(vec![String::new()]);
    }
    job.hbase = match &header.select {
        Some(spec) => hbase_layout(Some(spec), &Selection::default()),
        None => header.hbase_wals.map(|_| HbaseLayout::Root),
    };
    job.target_selection = plan_target_selection(&header)?;
    if job.cfg.range_size != header.range_size {
        return usage(format!(
            "--range-size must match the plan's ({}) when running a plan",
            header.range_size
        ));
    }
    let plan_path = a.plan.clone();
    let range_size = header.range_size;
    let feed = move |_: &dyn Store, sink: &ListSink<'_>| -> hbcp_store::Result<()> {
        let (_, mut rd) = PlanReader::open(&plan_path).map_err(|e| hbcp_store::Error::BadKey {
            key: plan_path.display().to_string(),
            why: e.to_string(),
        })?;
        let mut assigner = shard.map(|s| (s, Assigner::new(s.count, range_size)));
        loop {
            match rd.next_entry() {
                Ok(Some(e)) => {
                    let mine = match &mut assigner {
                        Some((s, a)) => a.assign(&e) == s.index,
                        None => true,
                    };
                    if mine && !skip.contains(&e.key) {
                        sink(e)?
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(hbcp_store::Error::BadKey {
                        key: plan_path.display().to_string(),
                        why: e.to_string(),
                    });
                }
            }
        }
    };
    // A shard says at the target that it runs, so that `hbcp status` sees it from anywhere.
    let beat = job.shard.map(|sh| {
        crate::heartbeat::Heartbeat::start(
            job.dst.store.clone(),
            &job.base_job,
            sh,
            job.cfg.state_dir.join("journal.log"),
        )
    });
    let r = execute(job, &feed);
    if let Some(b) = beat {
        b.stop(r.as_ref().ok().map(|e| e.code()));
    }
    r
}

/// The keys that belong to a plan's job at the target: its excludes and HBase rules.
fn plan_target_selection(header: &PlanHeader) -> Result<Selection> {
    let sel = selection(&header.excludes)?;
    Ok(match header.hbase_wals {
        Some(include_wals) => sel.with_hbase_rules(hbcp_planner::HbaseRules { include_wals }),
        None => sel,
    })
}

/// What running a plan of an HBase selection needs from the plan.
pub(crate) struct PlanView {
    /// Target key → source keys.
    pub(crate) map: std::collections::HashMap<String, Vec<String>>,
    /// The snapshot's publishing step.
    pub(crate) publish: Option<hbcp_planner::view::Publish>,
    /// The snapshot files to write first.
    pub(crate) tmp_entries: Vec<(Entry, Vec<String>)>,
    /// Identity files the target already has.
    pub(crate) skip: std::collections::HashSet<String>,
}

/// Read what running a plan of an HBase selection needs, in one pass over the plan: the source
/// keys that are not implied by the target key (a bulkload layout's), the snapshot's files
/// to write first, the identity files the target has.
pub(crate) fn plan_view(
    plan: &Path,
    header: &PlanHeader,
    dst: &dyn Store,
) -> Result<Option<PlanView>> {
    let Some(spec) = &header.select else {
        return Ok(None);
    };
    let (_, mut rd) = PlanReader::open(plan)?;
    let snapshot = crate::select::derives_archive(spec);
    let mut map = std::collections::HashMap::new();
    let mut snapshot_files = Vec::new();
    let mut identity = Vec::new();
    while let Some((e, o)) = rd.next_mapped()? {
        if !hbcp_planner::view::implied_sources(&e.key, &o, snapshot) {
            map.insert(e.key.clone(), o.clone());
        }
        if e.key.starts_with(".hbase-snapshot/.tmp/") {
            snapshot_files.push((e, o));
        } else if e.key == "hbase.version" || e.key == "hbase.id" {
            identity.push(e.key);
        }
    }
    let keys: Vec<String> = snapshot_files.iter().map(|(e, _)| e.key.clone()).collect();
    let publish = crate::select::publish_of_plan(spec, &keys);
    let tmp_entries = match &publish {
        Some(p) => snapshot_files
            .into_iter()
            .filter(|(e, _)| e.key.starts_with(&p.tmp))
            .collect(),
        None => Vec::new(),
    };
    let mut skip = std::collections::HashSet::new();
    if !spec.tables.is_empty() && spec.layout == hbcp_planner::Layout::Root {
        for k in identity {
            if dst.head(&k)?.is_some() {
                errln!("hbcp: the target already has {k}: kept as it is");
                skip.insert(k);
            }
        }
    }
    Ok(Some(PlanView {
        map,
        publish,
        tmp_entries,
        skip,
    }))
}

/// The source of a plan's job: through the plan's view, when it has one.
fn plan_source(src: End, header: &PlanHeader, pv: Option<&PlanView>) -> End {
    match (pv, &header.select) {
        (Some(pv), Some(spec)) => {
            let store = crate::select::view_store(&src, spec, None);
            for (k, o) in &pv.map {
                store.map_key(k, o);
            }
            End {
                store,
                url: src.url,
            }
        }
        _ => src,
    }
}

/// Copy, verify, write the completion manifest, report; decide the exit status.
fn execute(job: Job, feed: &hbcp_engine::Feed<'_>) -> Result<Exit> {
    let cancel = install_signals()?;
    let _lock = lock_target(&job, &cancel)?;
    let cfg = &job.cfg;
    let quiet = matches!(job.tuning.progress, crate::spec::ProgressMode::Json);
    if !quiet {
        errln!(
            "hbcp: {} {} -> {} (job {}, state in {})",
            job.command,
            job.src.url,
            job.dst.url,
            cfg.job,
            cfg.state_dir.display()
        );
    }
    // The target is about to change: whatever completion manifest it has no longer holds.
    for key in [
        Some(COMPLETION_KEY.to_string()),
        job.shard.map(|sh| shard_key(&job.base_job, sh)),
    ]
    .into_iter()
    .flatten()
    {
        manifest::withdraw(job.dst.store.as_ref(), &key)
            .with_context(|| format!("cannot remove the old completion manifest {key}"))?;
    }
    let mode = verify_mode(job.tuning.verify);
    let ran = crate::skeleton::copy_then_verify(
        &job,
        "copy",
        feed,
        &cancel,
        |outcome| outcome.stop.is_none() && mode != VerifyMode::None,
        |outcome, stats| {
            let mut verified = verify_spill(&job, outcome, mode, stats)?;
            if job.shard.is_none() {
                // A shard's extras are the other shards' files: `hbcp finalize` judges them.
                check_extras(&job, outcome, &mut verified)?;
            }
            forget(&job.cfg, &verified)?;
            Ok(verified)
        },
    )?;
    let copied = ran.copied;
    let (outcome, stats) = (&copied.outcome, &copied.stats);
    let mut verified = ran.verified.unwrap_or_default();
    merge_findings(&mut verified.source_findings, &job.selection_findings);
    let strict_fail = findings_fail(mode, job.tuning.strict, &verified.source_findings);
    let failed = !outcome.failures.is_empty() || !verified.ok() || strict_fail;
    let interrupted = cancel.load(Relaxed);
    let mut status;
    let exit = match crate::exit::early_end(
        outcome.stop.as_ref(),
        interrupted,
        crate::exit::wrote(stats, outcome),
        None,
    ) {
        Some((exit, why)) => {
            status = why;
            exit
        }
        None if failed => {
            status = if strict_fail && outcome.failures.is_empty() && verified.ok() {
                format!(
                    "copied and verified, but {} source findings fail the run ({})",
                    verified.source_findings.len(),
                    if job.tuning.strict {
                        "--strict"
                    } else {
                        "--verify deep"
                    }
                )
            } else {
                "failed".into()
            };
            Exit::Failed
        }
        None => {
            status = if mode == VerifyMode::None {
                "copied, not verified (--verify none)".into()
            } else {
                "complete and verified".into()
            };
            Exit::Ok
        }
    };
    for f in &outcome.failures {
        errln!("hbcp: failed: {}: {}", f.key, f.error);
    }
    for m in &verified.mismatches {
        errln!("hbcp: {m}");
    }
    for w in &outcome.warnings {
        errln!("hbcp: warning: {w}");
    }
    for n in &verified.notes {
        errln!("hbcp: note: {n}");
    }
    // The selection's findings were printed when it was resolved; the verifier's are new.
    warn_findings(
        &verified
            .source_findings
            .iter()
            .filter(|f| !job.selection_findings.contains(f))
            .cloned()
            .collect::<Vec<_>>(),
    );
    if exit == Exit::Ok {
        if let Some(p) = &job.publish {
            if let Err(e) = publish_snapshot(&job, outcome, p) {
                errln!("hbcp: the snapshot could not be made visible: {e:#}");
                status = "copied and verified, but the snapshot could not be made visible".into();
                return finish(&job, &copied, &verified, mode, Exit::Failed, status);
            }
            errln!(
                "hbcp: snapshot published: {} (written under {} first)",
                p.visible,
                p.tmp
            );
        }
    }
    let key = match job.shard {
        Some(sh) => shard_key(&job.base_job, sh),
        None => COMPLETION_KEY.to_string(),
    };
    crate::skeleton::complete(&job, &copied, &verified, mode, exit, status, &key)
}

pub(crate) fn finish(
    job: &Job,
    copied: &crate::skeleton::Copied,
    verified: &VerifyOutcome,
    mode: VerifyMode,
    exit: Exit,
    status: String,
) -> Result<Exit> {
    let (stats, outcome, copy_secs) = (&copied.stats, &copied.outcome, copied.copy_secs);
    // A reader of stdout that leaves from now on does not change the status.
    crate::exit::settle(exit);
    // What this run put before the engine ran is copied, not "already there".
    let (pre_files, pre_bytes) = job.prewritten;
    let pre_files = pre_files.min(stats.files_skipped.load(Relaxed));
    let pre_bytes = pre_bytes.min(stats.bytes_skipped.load(Relaxed));
    let files_copied = stats.files_copied.load(Relaxed) + pre_files;
    let bytes_copied = stats.bytes_copied.load(Relaxed) + pre_bytes;
    let bytes_server_side = stats.bytes_server_side.load(Relaxed);
    let files_skipped = stats.files_skipped.load(Relaxed) - pre_files;
    let bytes_skipped = stats.bytes_skipped.load(Relaxed) - pre_bytes;
    let elapsed = stats.elapsed().as_secs_f64();
    let rate = bytes_copied as f64 / copy_secs.max(1e-6);
    let verified_txt = match mode {
        VerifyMode::None => "not verified".to_string(),
        _ => format!(
            "verified {} files, {} ({} mismatches, {} source findings{}){}",
            verified.files,
            bytes(verified.bytes),
            verified.mismatches.len(),
            verified.source_findings.len(),
            match verified.ways.summary() {
                w if w.is_empty() => w,
                w => format!("; proven by {w}"),
            },
            match verified.extras.len() {
                0 => String::new(),
                n => format!("; {n} files at the target are not at the source"),
            }
        ),
    };
    let summary = format!(
        "hbcp: {status}: copied {files_copied} files, {}{} in {:.1}s ({}/s); skipped {files_skipped} already there ({}); {} failed; {verified_txt}; {}",
        bytes(bytes_copied),
        match bytes_server_side {
            0 => String::new(),
            n => format!(" ({} copied server-side)", bytes(n)),
        },
        copy_secs,
        bytes(rate as u64),
        bytes(bytes_skipped),
        outcome.failures.len(),
        job.left_out.summary(),
    );
    if let (Some(sh), Exit::Ok) = (job.shard, exit) {
        errln!(
            "hbcp: shard {}/{} done; when every shard is done: hbcp finalize PLAN",
            sh.index,
            sh.count
        );
    }
    errln!("{summary}");
    if exit != Exit::Ok {
        let first = outcome
            .failures
            .first()
            .map(|f| format!("{}: {}", f.key, f.error));
        crate::jobs::problem(
            &status,
            first.or_else(|| verified.mismatches.first().map(|m| m.to_string())),
        );
    }
    if let Some(path) = &job.tuning.report {
        let report = Report {
            command: job.command.clone(),
            source: job.src.url.display.clone(),
            target: job.dst.url.display.clone(),
            started: job.cfg.started.clone(),
            finished: now_rfc3339(),
            exit_code: exit.code(),
            status: status.clone(),
            job: job.cfg.job.clone(),
            state_dir: job.cfg.state_dir.display().to_string(),
            files: files_copied + files_skipped,
            bytes: bytes_copied + bytes_skipped,
            files_copied,
            bytes_copied,
            bytes_through_client: bytes_copied.saturating_sub(bytes_server_side),
            bytes_server_side,
            files_skipped,
            bytes_skipped,
            dirs: outcome.dirs,
            tasks: stats.tasks.load(Relaxed),
            retries: stats.retries.load(Relaxed),
            verified: Verified {
                mode: format!("{mode:?}").to_lowercase(),
                files: verified.files,
                bytes: verified.bytes,
                mismatches: verified.mismatches.clone(),
                extras: verified.extras.clone(),
                ways: verified.ways.clone(),
            },
            throughput_bytes_per_s: rate,
            elapsed_s: elapsed,
            latency_ms: stats.latency(),
            latency_by_op_ms: stats.latency_by_op(),
            left_out: job.left_out.counts(),
            failures: outcome.failures.clone(),
            warnings: outcome
                .warnings
                .iter()
                .chain(&verified.notes)
                .cloned()
                .collect(),
            source_findings: verified.source_findings.clone(),
            timeline: stats.timeline(),
            memory: crate::report::Memory {
                buffer_budget_bytes: job.cfg.buffer_budget,
                buffer_peak_bytes: stats.buffer_peak.load(Relaxed),
            },
            concurrency: crate::report::Concurrency {
                workers: job.cfg.workers as u64,
                adaptive: job.cfg.start_concurrency.is_some(),
                settled: stats.concurrency_final.load(Relaxed),
                peak: stats.concurrency_peak.load(Relaxed),
                throttles: stats.throttles.load(Relaxed),
            },
            bandwidth: job
                .cfg
                .max_bandwidth
                .as_deref()
                .map(|b| crate::report::BandwidthUse {
                    limit_bytes_per_s: b.rate(),
                    bytes: b.bytes(),
                }),
        };
        report.write(path)?;
    }
    if matches!(job.tuning.progress, crate::spec::ProgressMode::Json) {
        outln!(
            "{}",
            serde_json::json!({
                "event": "done", "status": status, "exit_code": exit.code(),
                "files_copied": files_copied, "bytes_copied": bytes_copied,
                "files_skipped": files_skipped, "failed": outcome.failures.len(),
                "verified_files": verified.files, "mismatches": verified.mismatches.len(),
                "source_findings": verified.source_findings.len(),
                "elapsed_s": elapsed,
            })
        );
    }
    Ok(exit)
}

/// What hbcp needs besides the range buffers: its own structures, the HTTP clients, the
/// listing window, the allocator's slack.
const MEMORY_RESERVE: u64 = 96 << 20;

/// The default `--max-memory`: a quarter of the machine's memory, between 256 MiB and 2 GiB.
fn default_max_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(4 << 30);
    (total / 4).clamp(256 << 20, 2 << 30)
}

/// What each worker thread costs besides the buffers it takes from the budget: its stack's
/// touched pages, its latency histogram, its allocator cache.
const MEMORY_PER_WORKER: u64 = 256 << 10;

/// The bytes of buffers the workers may hold at once under `--max-memory`: the cap less the
/// fixed reserve and the workers' own cost. A worker streaming to a local target holds two
/// chunks; one sending to an object store holds a whole range (a part is sent from one buffer
/// so that a retry can send it again): at least that much must fit.
fn memory_budget(
    max_memory: Option<u64>,
    workers: usize,
    range_size: u64,
    positional_writes: bool,
) -> Result<u64, String> {
    let cap = max_memory.unwrap_or_else(default_max_memory);
    let fixed = MEMORY_RESERVE + workers as u64 * MEMORY_PER_WORKER;
    let need = fixed
        + if positional_writes {
            2 * hbcp_engine::CHUNK.min(range_size)
        } else {
            range_size
        };
    if cap < need {
        return Err(format!(
            "--max-memory {}: {workers} workers{} need at least {}; raise --max-memory or lower --workers{}",
            crate::report::bytes(cap),
            if positional_writes {
                String::new()
            } else {
                format!(" and one {} range", crate::report::bytes(range_size))
            },
            crate::report::bytes(need),
            if positional_writes {
                ""
            } else {
                " / --range-size"
            },
        ));
    }
    Ok(cap - fixed)
}

/// Re-read the target for every file of the spill and compare with the checksums computed
/// from the source; also check the source did not change meanwhile.
pub(crate) fn verify_spill(
    job: &Job,
    outcome: &Outcome,
    mode: VerifyMode,
    stats: &Arc<Stats>,
) -> Result<VerifyOutcome> {
    let params = Params {
        mode,
        workers: job.cfg.workers,
        range_size: job.cfg.range_size,
        chunk: job.cfg.chunk,
        hbase: job.hbase,
    };
    let st = stats.clone();
    let progress = move |n: u64| {
        st.bytes_verified.fetch_add(n, Relaxed);
        st.files_verified.fetch_add(1, Relaxed);
    };
    // The verifier's requests (the read-back above all) join the run's latencies.
    let src_timed = Timed::new(job.src.store.as_ref(), stats.ops());
    let src = job.capped(&src_timed);
    let dst_timed = Timed::new(job.dst.store.as_ref(), stats.ops());
    let files = stats.files_copied.load(Relaxed) + stats.files_skipped.load(Relaxed);
    let check = match &job.source_prefixes {
        Some(prefixes) if !job.src.store.caps().is_local && files > RELIST_MIN_FILES => {
            SourceCheck::Listing {
                store: &src,
                prefixes,
                scratch: &job.cfg.state_dir,
            }
        }
        _ => SourceCheck::Head(&src),
    };
    // The target's listing proves what it can (the service's MD5s), no request per file.
    let target = job
        .source_prefixes
        .as_deref()
        .map(|prefixes| TargetListing {
            prefixes,
            scratch: &job.cfg.state_dir,
        });
    verify_file_where(
        &outcome.spill,
        &job.capped(&dst_timed),
        check,
        target,
        &params,
        &progress,
        &|_| true,
    )
}

/// One run at a time per target (see [`hbcp_engine::lock`]): a whole run holds `.hbcp/lock`,
/// a shard its own lock (the shards of one plan run side by side).
pub(crate) fn lock_target(
    job: &Job,
    cancel: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<hbcp_engine::lock::TargetLock> {
    let key = match job.shard {
        None => hbcp_engine::lock::LOCK_KEY.to_string(),
        Some(_) => format!("{}-{}", hbcp_engine::lock::LOCK_KEY, job.cfg.job),
    };
    lock_end(&job.dst, &key, &job.command, &job.cfg.started, cancel)
}

/// Take the lock `key` of the target `dst` for a run of `command` started at `started`, before
/// anything is written there: held by a live run, exit 2 naming it. Every writing command takes
/// it. If its lease is lost later (an object store), the run is told through `cancel` and
/// stops: exit 3, resumable.
pub(crate) fn lock_end(
    dst: &End,
    key: &str,
    command: &str,
    started: &str,
    cancel: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<hbcp_engine::lock::TargetLock> {
    use hbcp_engine::lock::{Holder, LockError, TargetLock};
    let root = local_path(&dst.url).map(|_| PathBuf::from(dst.store.describe()));
    if let Some(r) = &root {
        // An exit 2 after this (a source that cannot be listed) leaves nothing at the target.
        if let Some(folder) = r.join(key).parent() {
            crate::exit::creating(folder, false);
        }
        crate::exit::creating_file(&r.join(key));
    }
    let me = Holder::me(command, started);
    let lock = match TargetLock::acquire(&dst.store, root.as_deref(), key, &me) {
        Ok((lock, None)) => lock,
        Ok((lock, Some(gone))) => {
            errln!("hbcp: took over the lock of a run that is gone ({gone})");
            lock
        }
        Err(e @ LockError::Held(_)) => {
            // What this run was about to create (its state folder) is the holder's to make:
            // the refusal must not remove it under the live run.
            crate::exit::forget_created();
            return usage(e.to_string());
        }
        Err(e @ LockError::Unreadable { .. }) => return usage(e.to_string()),
        // Found before anything was written: the credential's problem, exit 2.
        Err(LockError::Store(e)) if e.is_auth() => {
            return usage(format!("cannot lock the target {}: {e}", dst.url));
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot lock the target {}", dst.url))
            );
        }
    };
    let cancel = cancel.clone();
    lock.on_loss(Box::new(move |why| {
        errln!(
            "hbcp: stopping: {}; another run may hold the target now",
            crate::exit::redact(why)
        );
        cancel.store(true, Relaxed);
    }));
    Ok(lock)
}

/// The target's extras (see [`hbcp_verifier::check::find_extras`]): copy faults under the
/// copied HBase folders (removed with `--delete-extra`), the rest reported.
fn check_extras(job: &Job, outcome: &Outcome, verified: &mut VerifyOutcome) -> Result<()> {
    let extras = hbcp_verifier::check::find_extras(
        job.dst.store.as_ref(),
        &outcome.spill,
        job.hbase,
        &|e| job.target_selection.accepts(e),
        &job.cfg.state_dir,
    )
    .context("listing the target for extra files")?;
    let (deleted, refused) = extras.settle(job.dst.store.as_ref(), job.delete_extra, verified);
    for k in &deleted {
        errln!("hbcp: removed extra (not at the source): {k}");
    }
    if let Some(line) = refused {
        errln!("hbcp: {line}");
        verified.notes.push(line);
    }
    const SHOWN: usize = 20;
    for k in verified.extras.iter().take(SHOWN) {
        errln!("hbcp: note: at the target, not at the source: {k}");
    }
    if verified.extras.len() > SHOWN {
        errln!(
            "hbcp: note: … and {} more at the target, not at the source (the report lists all)",
            verified.extras.len() - SHOWN
        );
    }
    Ok(())
}

/// Above this many files, the verification of a copy from an object store checks the source
/// versions with one listing of what the copy listed instead of a HEAD per file. The listing
/// costs a LIST page per 1,000 (S3, GCS) to 5,000 (Azure) keys of the whole listed tree, the
/// HEADs one request per copied file (32 in flight): at 256 files the HEADs take 8 round trips,
/// about one LIST page's time, and a listing of a tree larger than what was selected still has
/// a margin. Request prices point the same way (one S3 LIST costs 12.5 HEADs).
const RELIST_MIN_FILES: u64 = 256;

/// Journal the files that did not verify (`verified`'s mismatches), so that a rerun copies them
/// again instead of trusting their records. A journal that cannot be written stops the run (exit 3): a rerun could trust
/// a stale record.
pub(crate) fn forget(cfg: &Config, verified: &VerifyOutcome) -> Result<()> {
    if verified.ok() {
        return Ok(());
    }
    let recs: Vec<_> = verified
        .mismatches
        .iter()
        .map(|m| hbcp_state::journal::Record::Forget { k: m.key.clone() })
        .collect();
    hbcp_state::journal::Journal::open(&cfg.state_dir, &cfg.job)
        .and_then(|(mut j, _)| j.append(&recs))
        .map_err(|e| {
            crate::exit::engine_error(e.into(), "cannot record the files that did not verify")
        })
}

/// The completion manifest: every file with size and checksum, sorted by key, written last.
/// The spill goes through an external sort into a local file that is then sent in parts, so
/// memory does not grow with the file count.
pub(crate) fn write_completion(
    job: &Job,
    outcome: &Outcome,
    verified: &VerifyOutcome,
    key: &str,
) -> Result<()> {
    let out = job.cfg.state_dir.join("completion.manifest.zst");
    let rename = |k: &str| job.publish.as_ref().and_then(|p| p.visible_key(k));
    manifest::write_sorted(&outcome.spill, &job.cfg.state_dir, &out, &rename, |h| {
        h.finished = Some(now_rfc3339());
        h.files = Some(verified.files);
        h.bytes = Some(verified.bytes);
    })?;
    manifest::upload_file(job.dst.store.as_ref(), key, &out, &job.cfg.job)
        .with_context(|| format!("writing {key}"))?;
    job.dst.store.flush()?;
    let _ = fs::remove_file(&out);
    Ok(())
}

/// Make an exported snapshot visible (its files were written under `.hbase-snapshot/.tmp/`).
fn publish_snapshot(job: &Job, outcome: &Outcome, p: &hbcp_planner::view::Publish) -> Result<()> {
    let file = fs::File::open(&outcome.spill)?;
    let mut tmp = Vec::new();
    manifest::read(file, &outcome.spill.display().to_string(), |e| {
        if e.k.starts_with(&p.tmp) && e.kind() == EntryKind::File {
            tmp.push((e.k.clone(), e.s));
        }
        Ok(())
    })?;
    crate::select::publish(job.dst.store.as_ref(), p, &tmp)
}

pub(crate) fn cleanup_staging(job: &Job) {
    if let hbcp_store::Endpoint::Local(_) = &job.dst.url.endpoint {
        let staging = PathBuf::from(job.dst.store.describe())
            .join(hbcp_store::local::HBCP_DIR)
            .join("staging");
        let _ = fs::remove_dir(staging); // only if empty: staged ranges of a resume stay
    }
}

/// A temporary file removed when this goes out of scope, however the function ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn plan(a: PlanSpec) -> Result<Exit> {
    let spec = crate::select::spec(&a.hbase)?;
    let src = open_source(&a.ends.src, a.allow_http)?;
    let dst_url = parse_url(&a.ends.dst, "target", a.allow_http)?;
    let sel = selection(&a.selection.exclude)?;
    if !a.allow_unflushed && spec.snapshot.is_none() {
        let places = crate::preflight::WalPlaces::open(&a.wals, a.allow_http)?;
        if let Some(msg) = crate::preflight::unflushed_guard(&src, &spec.tables, &places)? {
            return usage(msg);
        }
    }
    let prep = crate::select::prepare(&src, &spec, sel, a.allow_unflushed)?;
    let sel = prep.sel;
    let range_size = a
        .range_size
        .unwrap_or(if src.store.caps().is_local && dst_url.is_local() {
            64 << 20
        } else {
            8 << 20
        });
    check_range_size(range_size)?;
    let header = PlanHeader {
        format: PLAN_FORMAT.into(),
        version: PLAN_VERSION,
        source: src.url.display.clone(),
        target: dst_url.display.clone(),
        range_size,
        excludes: a.selection.exclude.clone(),
        created: now_rfc3339(),
        select: spec.is_view().then(|| spec.clone()),
        hbase_wals: sel.hbase_rules().map(|r| r.include_wals),
    };
    let tmp = a.out.with_extension("tmp");
    // Whatever ends the plan early, its temporary file goes (after the rename there is none).
    let _tmp_guard = RemoveOnDrop(tmp.clone());
    let mut w = match PlanWriter::create(&tmp, &header) {
        Ok(w) => w,
        Err(e) => return usage(format!("--out {}: {e}", a.out.display())),
    };
    let w_err = std::sync::Mutex::new(None);
    let wm = std::sync::Mutex::new(&mut w);
    let mut warnings = Vec::new();
    let warn_m = std::sync::Mutex::new(&mut warnings);
    // What the listing leaves out, by reason, as `copy` counts it; the sizes of what it keeps.
    let left_out = hbcp_planner::LeftOutTally::default();
    let mix = crate::bench::Mix::default();
    let listed = if let Some(view) = &prep.view {
        crate::select::copy_entries(view, &sel, &Default::default(), &mut |e, o| {
            if e.kind == EntryKind::File {
                mix.add(e.size);
            }
            wm.lock().unwrap().add_mapped(&e, &o).map_err(|err| {
                *w_err.lock().unwrap() = Some(err.to_string());
                hbcp_store::Error::Unsupported {
                    what: "plan".into(),
                    hint: err.to_string(),
                }
            })
        })
    } else {
        src.store.list("", &|e: Entry| {
            if !left_out.judge(&sel, &e) {
                return Ok(());
            }
            if e.kind == EntryKind::Skipped {
                warn_m.lock().unwrap().push(format!(
                    "not copied: {} ({})",
                    e.key,
                    e.version.as_deref().unwrap_or("")
                ));
                return Ok(());
            }
            if e.kind == EntryKind::File {
                mix.add(e.size);
            }
            if let Err(err) = wm.lock().unwrap().add(&e) {
                *w_err.lock().unwrap() = Some(err.to_string());
                return Err(hbcp_store::Error::Unsupported {
                    what: "plan".into(),
                    hint: err.to_string(),
                });
            }
            Ok(())
        })
    };
    if let Some(e) = w_err.into_inner().unwrap() {
        anyhow::bail!("writing the plan {}: {e}", a.out.display());
    }
    match listed {
        Err(e) if e.is_bad_input() => return usage(format!("cannot list the source: {e}")),
        Err(e) => return Err(anyhow::Error::new(e).context("cannot list the source")),
        Ok(()) => {}
    }
    let summary = w.finish()?;
    fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    for w in &warnings {
        errln!("hbcp: warning: {w}");
    }
    let estimate = crate::bench::estimate(&header.target, &mix);
    let bench_command = format!("hbcp bench {}", header.target);
    if a.json {
        // The text's figures, by name; `left_out` as the copy's report gives it.
        let est = estimate.as_ref().map(|e| {
            serde_json::json!({
                "seconds": e.secs,
                "small_files": e.small.0,
                "small_files_per_s": e.small.1,
                "large_bytes": e.large.0,
                "bytes_per_s": e.large.1,
                "bench": e.bench.target,
                "bench_at": e.bench.at,
            })
        });
        let j = serde_json::json!({
            "plan": a.out.display().to_string(),
            "source": header.source,
            "target": header.target,
            "files": summary.files,
            "empty_directories": summary.dirs,
            "bytes": summary.bytes,
            "tasks": summary.tasks,
            "range_size": range_size,
            "largest_file": summary.largest,
            "tables": summary.tables,
            "left_out": prep.view.is_none().then(|| left_out.counts()),
            "estimate": est,
            "bench_command": estimate.is_none().then_some(&bench_command),
        });
        outln!("{j}");
        return Ok(Exit::Ok);
    }
    outln!("plan: {}", a.out.display());
    outln!("source: {}", header.source);
    outln!("target: {}", header.target);
    outln!("files: {}", summary.files);
    outln!("empty directories: {}", summary.dirs);
    outln!("bytes: {} ({})", summary.bytes, bytes(summary.bytes));
    outln!(
        "tasks: {} (range size {})",
        summary.tasks,
        bytes(range_size)
    );
    outln!("largest file: {}", bytes(summary.largest));
    outln!("tables: {}", summary.tables);
    if prep.view.is_none() {
        outln!("left out: {}", left_out.summary());
    }
    match estimate {
        Some(e) => outln!(
            "estimate: {} ({:.0} s: {} at {:.0} files/s, {} of larger files at {}/s; hbcp bench {} at {})",
            humantime::format_duration(std::time::Duration::from_secs(e.secs.ceil() as u64)),
            e.secs.ceil(),
            crate::report::count(e.small.0, "small file"),
            e.small.1,
            bytes(e.large.0),
            bytes(e.large.1 as u64),
            e.bench.target,
            e.bench.at
        ),
        None => outln!("estimate: none yet; run `{bench_command}` to measure the target"),
    }
    Ok(Exit::Ok)
}

fn verify(a: VerifySpec, observer: &Arc<dyn Observer>) -> Result<Exit> {
    let spec = crate::select::spec(&a.hbase)?;
    let src = open_source(&a.ends.src, a.allow_http)?;
    let dst_url = parse_url(&a.ends.dst, "target", a.allow_http)?;
    if let Some(p) = local_path(&dst_url) {
        if !p.is_dir() {
            return usage(format!("target {}: is not a directory", p.display()));
        }
    }
    let dst = if let Some(p) = local_path(&dst_url) {
        let canon = fs::canonicalize(p)?;
        End {
            url: dst_url,
            store: Arc::new(hbcp_store::local::LocalStore::new(canon)),
        }
    } else {
        let store = open_remote(&dst_url, false, a.allow_http)?;
        End {
            url: dst_url,
            store,
        }
    };
    let sel0 = selection(&a.selection.exclude)?;
    let mode = verify_mode(a.verify);
    if mode == VerifyMode::None {
        return usage("--verify none makes no sense for `hbcp verify`; use size, checksum or deep");
    }
    let prep = crate::select::prepare(&src, &spec, sel0.clone(), a.allow_unflushed)?;
    let layout = hbase_layout(Some(&spec), &prep.sel);
    let selection_findings = prep.view.as_ref().map(view_findings).unwrap_or_default();
    let (src_store, sel, dst_sel) = match prep.view {
        None => (src.store.clone(), prep.sel.clone(), prep.sel),
        Some(view) => {
            // The target's own identity files are not judged (a table copy keeps them).
            let skip = crate::select::identity_at_target(&view, dst.store.as_ref())?;
            let dst_sel = sel0.clone().with_scope(view.scope());
            let keep = sel0.clone();
            let listing: hbcp_planner::ViewListing = Box::new(move |sink| {
                for item in view.items.iter().map_err(crate::select::items_err)? {
                    let item = item.map_err(crate::select::items_err)?;
                    if keep.accepts(&item.entry) && !skip.contains(&item.entry.key) {
                        sink(item.entry, item.sources)?;
                    }
                }
                Ok(())
            });
            let store: Arc<dyn Store> = crate::select::view_store(&src, &spec, Some(listing));
            (store, sel0, dst_sel)
        }
    };
    let workers = a.workers.unwrap_or(8).clamp(1, 1024);
    let stats = Arc::new(Stats::default());
    let reporter = observer.watch(stats.clone(), a.progress);
    reporter.phase(Phase::Verify);
    let st = stats.clone();
    let progress = move |n: u64| {
        st.bytes_verified.fetch_add(n, Relaxed);
        st.files_verified.fetch_add(1, Relaxed);
    };
    let started = now_rfc3339();
    // Both sides' reads under one `--max-bandwidth`.
    let limit = a.bandwidth.map(hbcp_engine::Bandwidth::new);
    let (src_timed, dst_timed) = (
        Timed::new(src_store.as_ref(), stats.ops()),
        Timed::new(dst.store.as_ref(), stats.ops()),
    );
    let out = compare_trees(
        &hbcp_engine::Capped::new(&src_timed, limit.as_ref(), &crate::exit::signalled),
        &hbcp_engine::Capped::new(&dst_timed, limit.as_ref(), &crate::exit::signalled),
        &|e| sel.accepts(e),
        &|e| dst_sel.accepts(e),
        &Params {
            mode,
            workers,
            range_size: 64 << 20,
            chunk: hbcp_engine::CHUNK,
            hbase: layout,
        },
        &std::env::temp_dir(),
        &progress,
    );
    drop(reporter);
    let mut out = match out {
        Ok(o) => o,
        // A refusal (403) is bad input, exit 2; a service failure (500) is not: exit::of_error.
        Err(e) => return Err(anyhow::Error::new(e).context("cannot list")),
    };
    for m in &out.mismatches {
        outln!("{m}");
    }
    warn_findings(
        &out.source_findings
            .iter()
            .filter(|f| !selection_findings.contains(f))
            .cloned()
            .collect::<Vec<_>>(),
    );
    merge_findings(&mut out.source_findings, &selection_findings);
    let findings_failed = findings_fail(mode, a.strict, &out.source_findings);
    let exit = if out.ok() && !findings_failed {
        Exit::Ok
    } else {
        Exit::Failed
    };
    errln!(
        "hbcp: verify {} -> {}: {} files, {} checked; {} mismatches, {} source findings{}",
        src.url,
        dst.url,
        out.files,
        bytes(out.bytes),
        out.mismatches.len(),
        out.source_findings.len(),
        if findings_failed {
            if a.strict {
                " (fail the run: --strict)"
            } else {
                " (fail the run: --verify deep)"
            }
        } else {
            ""
        }
    );
    if let Some(path) = &a.report {
        let r = Report {
            command: "verify".into(),
            source: src.url.display.clone(),
            target: dst.url.display.clone(),
            started,
            finished: now_rfc3339(),
            exit_code: exit.code(),
            status: if !out.ok() {
                "mismatches".into()
            } else if findings_failed {
                "verified, but source findings fail the run".into()
            } else {
                "verified".into()
            },
            files: out.files,
            bytes: out.bytes,
            verified: Verified {
                mode: format!("{mode:?}").to_lowercase(),
                files: out.files,
                bytes: out.bytes,
                mismatches: out.mismatches.clone(),
                extras: out.extras.clone(),
                ways: out.ways.clone(),
            },
            source_findings: out.source_findings.clone(),
            elapsed_s: stats.elapsed().as_secs_f64(),
            latency_ms: stats.latency(),
            latency_by_op_ms: stats.latency_by_op(),
            timeline: stats.timeline(),
            bandwidth: limit.as_ref().map(|b| crate::report::BandwidthUse {
                limit_bytes_per_s: b.rate(),
                bytes: b.bytes(),
            }),
            ..Default::default()
        };
        r.write(path)?;
    }
    Ok(exit)
}

/// Where shard I of N of a plan leaves its verified manifest at the target.
fn shard_key(base_job: &str, sh: ShardId) -> String {
    format!(".hbcp/shards/{base_job}/shard-{sh}.manifest.zst")
}

/// Shards that have left their manifest at the target: (index, count).
fn finished_shards(dst: &dyn Store, base_job: &str) -> Result<Vec<ShardId>> {
    let prefix = format!(".hbcp/shards/{base_job}/");
    let found = std::sync::Mutex::new(Vec::new());
    dst.list(&prefix, &|e: Entry| {
        if let Some(name) = e.key.strip_prefix(&prefix) {
            if let Some(id) = name
                .strip_prefix("shard-")
                .and_then(|r| r.strip_suffix(".manifest.zst"))
                .and_then(|r| r.split_once("-of-"))
                .and_then(|(i, n)| ShardId::parse(&format!("{i}/{n}")).ok())
            {
                found.lock().unwrap().push(id);
            }
        }
        Ok(())
    })?;
    let mut v = found.into_inner().unwrap();
    v.sort_by_key(|s| (s.count, s.index));
    Ok(v)
}

pub(crate) fn read_manifest_at(
    dst: &dyn Store,
    key: &str,
    mut f: impl FnMut(ManifestEntry),
) -> Result<()> {
    let size = dst
        .head(key)?
        .with_context(|| format!("{key}: not found at the target"))?
        .size;
    manifest::read_store(dst, key, size, |e| {
        f(e);
        Ok(())
    })?;
    Ok(())
}

fn plan_header_and_ends(plan: &Path, allow_http: bool) -> Result<(PlanHeader, End, End)> {
    let header = match PlanReader::open(plan) {
        Ok((h, _)) => h,
        Err(e) => return usage(format!("plan {}: {e}", plan.display())),
    };
    let src = open_source(&header.source, allow_http)?;
    let dst_url = parse_url(&header.target, "target", allow_http)?;
    let dst = match local_path(&dst_url) {
        Some(p) => End {
            store: Arc::new(hbcp_store::local::LocalStore::new(canonical_future(p))),
            url: dst_url,
        },
        None => {
            let store = open_remote(&dst_url, false, allow_http)?;
            End {
                url: dst_url,
                store,
            }
        }
    };
    Ok((header, src, dst))
}

fn finalize(a: FinalizeSpec) -> Result<Exit> {
    let (header, src, dst) = plan_header_and_ends(&a.plan, a.allow_http)?;
    let pv = plan_view(&a.plan, &header, dst.store.as_ref())?;
    let src = plan_source(src, &header, pv.as_ref());
    let base = hbcp_engine::job_id(
        &src.url.display,
        &dst.url.display,
        &header.identity(),
        header.range_size,
    );
    let shards = finished_shards(dst.store.as_ref(), &base)?;
    let Some(count) = shards.iter().map(|s| s.count).max() else {
        errln!(
            "hbcp: no shard of this plan has finished; run `hbcp run {} --shard I/N` for every I, then finalize",
            a.plan.display()
        );
        return Ok(Exit::Failed);
    };
    let missing: Vec<u32> = (0..count)
        .filter(|i| !shards.iter().any(|s| s.count == count && s.index == *i))
        .collect();
    if !missing.is_empty() {
        for i in &missing {
            outln!("missing shard: {i}/{count}");
        }
        errln!(
            "hbcp: {} of {count} shards have not finished; run them, then finalize again",
            missing.len()
        );
        return Ok(Exit::Failed);
    }
    // Finalize writes the completion manifest: one run at a time at the target, as for a copy.
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _lock = lock_end(
        &dst,
        hbcp_engine::lock::LOCK_KEY,
        "finalize",
        &now_rfc3339(),
        &lost,
    )?;
    // Every entry of the plan must be in the manifest of a shard: a merge of the shard
    // manifests and the plan keys, both sorted on disk, so memory stays flat.
    let scratch = std::env::temp_dir().join(format!("hbcp-finalize-{}", std::process::id()));
    fs::create_dir_all(&scratch)?;
    let matched = scratch.join("matched.manifest.zst");
    let mut mh = manifest::ManifestHeader::new(
        &header.source,
        &header.target,
        header.range_size,
        &header.created,
    );
    let not_copied = match_shards(
        dst.store.as_ref(),
        &base,
        count,
        &a.plan,
        &scratch,
        &matched,
        &mh,
    );
    let not_copied = match not_copied {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };
    for k in &not_copied {
        outln!("not copied by any shard: {k}");
    }
    let mode = verify_mode(a.verify);
    let stats = Stats::default();
    let progress = |n: u64| {
        stats.bytes_verified.fetch_add(n, Relaxed);
    };
    let params = Params {
        mode,
        workers: a.workers.unwrap_or(8).clamp(1, 1024),
        range_size: header.range_size,
        chunk: hbcp_engine::CHUNK.min(header.range_size),
        hbase: match &header.select {
            Some(spec) => hbase_layout(Some(spec), &Selection::default()),
            None => header.hbase_wals.map(|_| HbaseLayout::Root),
        },
    };
    let verified = if mode == VerifyMode::None {
        VerifyOutcome::default()
    } else {
        let mut v = verify_file(
            &matched,
            &Timed::new(dst.store.as_ref(), stats.ops()),
            SourceCheck::Head(&Timed::new(src.store.as_ref(), stats.ops())),
            &params,
            &progress,
        )?;
        // The extras of the whole job, which no shard can judge alone.
        let target_sel = plan_target_selection(&header)?;
        hbcp_verifier::check::find_extras(
            dst.store.as_ref(),
            &matched,
            params.hbase,
            &|e| target_sel.accepts(e),
            &scratch,
        )?
        .settle(dst.store.as_ref(), None, &mut v);
        v
    };
    for m in &verified.mismatches {
        outln!("{m}");
    }
    warn_findings(&verified.source_findings);
    let mut ok = not_copied.is_empty()
        && verified.ok()
        && mode != VerifyMode::None
        && !findings_fail(mode, a.strict, &verified.source_findings);
    let publish = pv.as_ref().and_then(|v| v.publish.as_ref());
    if let (true, Some(p)) = (ok, publish) {
        let mut tmp = Vec::new();
        manifest::read(
            fs::File::open(&matched)?,
            &matched.display().to_string(),
            |e| {
                if e.k.starts_with(&p.tmp) && e.kind() == EntryKind::File {
                    tmp.push((e.k.clone(), e.s));
                }
                Ok(())
            },
        )?;
        match crate::select::publish(dst.store.as_ref(), p, &tmp) {
            Ok(()) => errln!("hbcp: snapshot published: {}", p.visible),
            Err(e) => {
                errln!("hbcp: the snapshot could not be made visible: {e:#}");
                ok = false;
            }
        }
    }
    if !ok {
        manifest::withdraw(dst.store.as_ref(), COMPLETION_KEY).with_context(|| {
            format!("cannot remove {COMPLETION_KEY} of a target that did not verify")
        })?;
    }
    if ok && lost.load(Relaxed) {
        return Err(crate::exit::Resumable(format!(
            "the lock of {} was lost during finalize; no completion manifest was written",
            dst.url
        ))
        .into());
    }
    if ok {
        mh.finished = Some(now_rfc3339());
        mh.files = Some(verified.files);
        mh.bytes = Some(verified.bytes);
        let out = scratch.join("completion.manifest.zst");
        let rename = |k: &str| publish.and_then(|p| p.visible_key(k));
        let written = manifest::write_sorted(&matched, &scratch, &out, &rename, |h| *h = mh)
            .map_err(anyhow::Error::from)
            .and_then(|_| {
                manifest::upload_file(dst.store.as_ref(), COMPLETION_KEY, &out, &base)
                    .map_err(anyhow::Error::from)
            })
            .and_then(|()| dst.store.flush().map_err(anyhow::Error::from));
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&scratch);
            return Err(e.context(format!("writing {COMPLETION_KEY}")));
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    errln!(
        "hbcp: finalize: {count} shards, {} files, {} verified; {} not copied, {} mismatches{}",
        verified.files,
        bytes(verified.bytes),
        not_copied.len(),
        verified.mismatches.len(),
        if ok {
            "; completion manifest written"
        } else {
            ""
        }
    );
    if let Some(path) = &a.report {
        let r = Report {
            command: "finalize".into(),
            source: header.source.clone(),
            target: header.target.clone(),
            started: header.created.clone(),
            finished: now_rfc3339(),
            exit_code: if ok { 0 } else { 1 },
            status: if ok {
                "complete and verified".into()
            } else {
                "incomplete".into()
            },
            job: base,
            files: verified.files,
            bytes: verified.bytes,
            verified: Verified {
                mode: format!("{mode:?}").to_lowercase(),
                files: verified.files,
                bytes: verified.bytes,
                mismatches: verified.mismatches.clone(),
                extras: verified.extras.clone(),
                ways: verified.ways.clone(),
            },
            source_findings: verified.source_findings.clone(),
            latency_ms: stats.latency(),
            latency_by_op_ms: stats.latency_by_op(),
            ..Default::default()
        };
        r.write(path)?;
    }
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}

/// Merge the shard manifests of a plan with the plan's keys: the manifest entries of the
/// plan's keys go to the manifest file `out` (sorted by key; a key in two shards' manifests
/// counts once, the later shard's); returns the plan keys that no shard copied.
fn match_shards(
    dst: &dyn Store,
    base: &str,
    count: u32,
    plan: &Path,
    scratch: &Path,
    out: &Path,
    header: &manifest::ManifestHeader,
) -> Result<Vec<String>> {
    let mut copied = manifest::sorter(scratch);
    let mut failed = None;
    for i in 0..count {
        let key = shard_key(base, ShardId { index: i, count });
        read_manifest_at(dst, &key, |e| {
            if failed.is_none() {
                failed = copied.push(e).err();
            }
        })?;
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    let mut keys = hbcp_state::extsort::ExternalSort::new(
        scratch,
        hbcp_state::extsort::DEFAULT_BATCH,
        |a: &String, b: &String| a.cmp(b),
    );
    let (_, mut rd) = PlanReader::open(plan)?;
    while let Some(e) = rd.next_entry()? {
        keys.push(e.key)?;
    }
    let mut w = manifest::create(out, header)?;
    let mut not_copied = Vec::new();
    let mut copied = copied.finish()?.peekable();
    for k in keys.finish()? {
        let k = k?;
        let mut found = None;
        while let Some(Ok(m)) = copied.peek() {
            if m.k > k {
                break;
            }
            let m = copied.next().expect("peeked")?;
            if m.k == k {
                found = Some(m);
            }
        }
        if let Some(Err(_)) = copied.peek() {
            copied.next().expect("peeked")?;
        }
        match found {
            Some(m) => w.write(&m)?,
            None => not_copied.push(k),
        }
    }
    w.finish()?;
    Ok(not_copied)
}

/// Check a target against the manifest file `path`, streaming it to the checking threads.
fn verify_file(
    path: &Path,
    dst: &dyn Store,
    src: SourceCheck<'_>,
    params: &Params,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyOutcome> {
    verify_file_where(path, dst, src, None, params, progress, &|_| true)
}

/// [`verify_file`] for the entries `keep` accepts; with `target`, what the target's listing
/// proves is proven by it ([`hbcp_verifier::listed`]).
pub(crate) fn verify_file_where(
    path: &Path,
    dst: &dyn Store,
    src: SourceCheck<'_>,
    target: Option<TargetListing<'_>>,
    params: &Params,
    progress: &(dyn Fn(u64) + Sync),
    keep: &(dyn Fn(&ManifestEntry) -> bool + Sync),
) -> Result<VerifyOutcome> {
    let file = fs::File::open(path).with_context(|| format!("manifest {}", path.display()))?;
    let display = path.display().to_string();
    let (tx, rx) = crossbeam_channel::bounded::<ManifestEntry>(4096);
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            manifest::read(file, &display, |e| {
                if keep(&e) {
                    let _ = tx.send(e);
                }
                Ok(())
            })
        });
        let out = verify_entries_listing(dst, src, target, rx.into_iter(), params, progress);
        reader.join().expect("manifest reader")?;
        Ok(out?)
    })
}

fn status(a: StatusSpec) -> Result<Exit> {
    let (header, src, dst) = plan_header_and_ends(&a.plan, a.allow_http)?;
    let base = hbcp_engine::job_id(
        &src.url.display,
        &dst.url.display,
        &header.identity(),
        header.range_size,
    );
    let done = finished_shards(dst.store.as_ref(), &base)?;
    let Some(count) = a.shards.or_else(|| done.iter().map(|s| s.count).max()) else {
        return usage("no shard has finished yet; say how many shards there are with --shards N");
    };
    if count == 0 || count > hbcp_planner::shard::MAX_SHARDS {
        return usage(format!(
            "--shards {count}: expected 1 to {}",
            hbcp_planner::shard::MAX_SHARDS
        ));
    }
    // What each shard has to do, by the same assignment the shards use.
    let mut want = vec![(0u64, 0u64); count as usize];
    let mut assigner = Assigner::new(count, header.range_size);
    let (_, mut rd) = PlanReader::open(&a.plan)?;
    while let Some(e) = rd.next_entry()? {
        let i = assigner.assign(&e) as usize;
        if e.kind == EntryKind::File {
            want[i].0 += 1;
            want[i].1 += e.size;
        }
    }
    let mut all_done = true;
    for i in 0..count {
        let sh = ShardId { index: i, count };
        let (files, bytes_total) = want[i as usize];
        let finished = done.contains(&sh);
        // Journals are readable where the state lives (a local target, or this machine).
        let state = default_state_dir(&dst, &format!("{base}-{sh}"));
        let progress =
            hbcp_state::journal::load(&state.join("journal.log"), &format!("{base}-{sh}"))
                .ok()
                .map(|(r, _)| (r.files, r.file_bytes));
        let line = if finished {
            format!(
                "shard {}/{count}: done, {files} files, {}",
                i,
                bytes(bytes_total)
            )
        } else if let Some(beat) = crate::heartbeat::read(dst.store.as_ref(), &base, sh) {
            all_done = false;
            crate::heartbeat::describe(&beat, &format!("shard {i}/{count}"), files, bytes_total)
        } else if let Some((f, b)) = progress.filter(|p| p.0 > 0) {
            all_done = false;
            format!(
                "shard {}/{count}: running, {f}/{files} files, {}/{} ({:.0}%)",
                i,
                bytes(b),
                bytes(bytes_total),
                if bytes_total > 0 {
                    b as f64 * 100.0 / bytes_total as f64
                } else {
                    100.0
                }
            )
        } else {
            all_done = false;
            format!(
                "shard {}/{count}: not started, {files} files, {}",
                i,
                bytes(bytes_total)
            )
        };
        outln!("{line}");
    }
    let complete = dst.store.head(COMPLETION_KEY)?.is_some();
    outln!(
        "job {base}: {}",
        if complete {
            "finalized"
        } else if all_done {
            "all shards done; run hbcp finalize"
        } else {
            "in progress"
        }
    );
    Ok(Exit::Ok)
}
