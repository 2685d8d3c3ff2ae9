//! `hbcp backup SRC DST [--keep N]`, `hbcp generations DST`, `hbcp restore DST --generation ID
//! TARGET`: point-in-time generations for disaster recovery.
//!
//! A backup is a sync into a target laid out by generation (see
//! [`hbcp_verifier::generation`]): the engine runs in sync mode over a store wrapper
//! ([`GenStore`]) that maps each key of the root to where its bytes are kept — an HFile (written
//! once, uniquely named) to the shared pool, any other file to the folder of the generation
//! being written. The index of what earlier generations stored is the engine's `TargetIndex`,
//! so an HFile already stored is not read again, one that moved (compaction → archive/) costs
//! nothing, and a metadata file unchanged since the last generation is compared by checksum and
//! not stored again. The generation manifest is written last, in one put, after every file it
//! names is durable and verified; an interrupted backup resumes under the same id (a marker in
//! `.hbcp/`) with the engine's journal. Pruning writes tombstones first, then deletes the stored
//! keys no kept generation names, then the manifests — an interrupted prune is finished by the
//! next backup.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use hbcp_engine::{Overwrite, Stats, Stop};
use hbcp_state::manifest::COMPLETION_KEY;
use hbcp_store::timed::Timed;
use hbcp_store::{Entry, EntryKind, ListSink, Store};
use hbcp_verifier::check::{Params, SourceCheck, verify_entries};
use hbcp_verifier::generation::{
    self as g, GENERATION_FORMAT, GENERATION_VERSION, GenerationHeader, LAYOUT_FORMAT, LAYOUT_KEY,
    Layout,
};
use hbcp_verifier::{VerifyMode, VerifyOutcome};

use crate::commands::{
    End, build_job, cleanup_staging, forget, install_signals, open_source, open_target, selection,
    verify_mode,
};
use crate::genstore::{GenStore, Listing, list_generations, load_known};
use crate::report::bytes;
use crate::spec::{BackupSpec, GenerationsSpec, ProgressMode, RestoreSpec, VerifyChoice};
use crate::{Exit, usage};

/// The id of the generation a backup is writing, kept until its manifest is written so that a
/// rerun after a crash finishes the same generation.
const PENDING_KEY: &str = ".hbcp/backup-pending.json";

fn read_small(store: &dyn Store, key: &str) -> Result<Option<Vec<u8>>> {
    let Some(e) = store.head(key)? else {
        return Ok(None);
    };
    if e.kind != EntryKind::File {
        return Ok(None);
    }
    let mut buf = Vec::new();
    store
        .read_range(key, 0..e.size, None, &mut buf)
        .with_context(|| format!("reading {key}"))?;
    Ok(Some(buf))
}

fn read_layout(store: &dyn Store, display: &str) -> Result<Option<Layout>> {
    let Some(b) = read_small(store, LAYOUT_KEY)? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Layout>(&b) {
        Ok(l) if l.format == LAYOUT_FORMAT && l.version == 1 && l.range_size >= 4096 => Ok(Some(l)),
        Ok(l) => usage(format!(
            "{display}/{LAYOUT_KEY}: {} version {} is not a backup layout this hbcp reads (expected {LAYOUT_FORMAT} version 1)",
            l.format, l.version
        )),
        Err(e) => usage(format!(
            "{display}/{LAYOUT_KEY}: not an hbcp backup layout marker: {e}"
        )),
    }
}

/// Anything at `store` outside `.hbcp/`?
fn has_content(store: &dyn Store) -> Result<bool> {
    Ok(!hbcp_engine::decide::target_is_empty(store)?)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    id: u64,
}

/// The generations a prune removes.
struct PrunePlan {
    pruned: Vec<u64>,
}

/// What a prune did.
#[derive(Debug, Default, serde::Serialize)]
struct Pruned {
    generations: Vec<u64>,
    /// Nothing was removed: `generations` and the counts say what would be.
    dry_run: bool,
    deleted_files: u64,
    deleted_bytes: u64,
    problems: Vec<String>,
}

/// How far a prune may go.
struct PruneCap {
    /// Share of the stored bytes a prune may remove without `force`.
    max_share: f64,
    force: bool,
    /// Say what would go; remove nothing.
    dry_run: bool,
}

/// Finish interrupted prunes, and remove the generations `policy` does not keep, with the
/// stored files no kept generation names. Streams the manifests through maps on disk under
/// `scratch`.
fn prune(
    store: &dyn Store,
    policy: &g::Retention,
    cap: &PruneCap,
    scratch: &std::path::Path,
) -> Result<Pruned> {
    let listing = list_generations(store)?;
    let mut out = Pruned::default();
    if policy.is_empty() && listing.tombstones.is_empty() {
        return Ok(out);
    }
    let mut times = std::collections::BTreeMap::new();
    for id in listing.visible() {
        let h = g::read_header(store, id)?;
        let t = humantime::parse_rfc3339(&h.finished)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .with_context(|| {
                format!(
                    "{}: finish time {:?} is not an RFC 3339 time",
                    g::manifest_key(id),
                    h.finished
                )
            })?;
        times.insert(id, t);
    }
    let (kept, pruned) = g::keep_split(&listing.manifests, &listing.tombstones, &times, policy);
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let (delete, stored_bytes) = crate::genstore::prune_deletions(store, &kept, &pruned, scratch)?;
    let mut doomed = 0u64;
    for r in delete.iter() {
        doomed += r?.2;
    }
    let share = doomed as f64 / stored_bytes.max(1) as f64;
    if cap.dry_run {
        out.generations = pruned;
        out.deleted_files = delete.len();
        out.deleted_bytes = doomed;
        out.dry_run = true;
        return Ok(out);
    }
    if share > cap.max_share && !cap.force {
        out.problems.push(format!(
            "not pruned: generations {pruned:?} would delete {} of the {} stored ({:.1}%), more than --max-delete {:.1}%; pass --force to prune them",
            bytes(doomed),
            bytes(stored_bytes),
            share * 100.0,
            cap.max_share * 100.0
        ));
        return Ok(out);
    }
    let plan = PrunePlan { pruned };
    // 1. Tombstones: the pruned generations are no longer visible (nor restorable).
    for id in &plan.pruned {
        if !listing.tombstones.contains(id) {
            store.put(&g::tombstone_key(*id), b"")?;
        }
    }
    store.flush()?;
    // 2. The stored files no kept generation needs.
    for r in delete.iter() {
        let (k, _, size) = r?;
        let k = &k;
        match store.delete(k) {
            Ok(()) => {
                out.deleted_files += 1;
                out.deleted_bytes += size;
                // The layout's top folders (pool/, files/) stay.
                crate::tidy::prune_empty_parents(store, k, |p| !p.contains('/'));
            }
            Err(e) => out.problems.push(format!("delete {k}: {e}")),
        }
    }
    // 3. The manifests, then the tombstones — only when every deletion worked, so that a
    //    failed one is retried by the next prune.
    if out.problems.is_empty() {
        for id in &plan.pruned {
            for key in [g::manifest_key(*id), g::tombstone_key(*id)] {
                if let Err(e) = store.delete(&key) {
                    out.problems.push(format!("delete {key}: {e}"));
                }
            }
        }
        // Tombstones whose manifest was already gone.
        for id in listing.tombstones.difference(&listing.manifests) {
            let key = g::tombstone_key(*id);
            if let Err(e) = store.delete(&key) {
                out.problems.push(format!("delete {key}: {e}"));
            }
        }
        if store.caps().is_local {
            let root = std::path::PathBuf::from(store.describe());
            for id in &plan.pruned {
                let _ = std::fs::remove_dir(root.join(g::FILES_PREFIX).join(id.to_string()));
            }
        }
    }
    out.generations = plan.pruned;
    Ok(out)
}

/// Say what a prune did (or, with `--dry-run`, would do).
fn say_pruned(pruned: &Pruned) {
    let would = if pruned.dry_run {
        "would prune"
    } else {
        "pruned"
    };
    for p in &pruned.generations {
        errln!("hbcp: {would} generation {p}");
    }
    if pruned.dry_run {
        errln!(
            "hbcp: --dry-run: would delete {} stored files ({}) no kept generation needs; nothing was removed",
            pruned.deleted_files,
            bytes(pruned.deleted_bytes)
        );
    } else if !pruned.generations.is_empty() {
        errln!(
            "hbcp: deleted {} stored files ({}) no kept generation needs",
            pruned.deleted_files,
            bytes(pruned.deleted_bytes)
        );
    }
}

/// The range size of a new backup target's checksums: `--range-size`, else the copy's default.
fn first_range_size(a: &BackupSpec, src: &End, store: &dyn Store) -> u64 {
    a.tuning
        .range_size
        .unwrap_or(if src.store.caps().is_local && store.caps().is_local {
            64 << 20
        } else {
            8 << 20
        })
}

/// The job identity of a backup of `a`'s source into its target.
fn identity(a: &BackupSpec) -> Vec<String> {
    let mut excludes = a.selection.exclude.clone();
    excludes.push(if a.allow_unflushed {
        "\0backup+wals".into()
    } else {
        "\0backup".into()
    });
    excludes
}

/// The copy job that writes generation `id` into `dst` through a [`GenStore`], knowing what the
/// earlier generations stored (indexed in `scratch`): the real backup and its dry run alike.
#[allow(clippy::too_many_arguments)]
fn generation_job(
    a: &BackupSpec,
    observer: &Arc<dyn crate::Observer>,
    src: End,
    dst: &End,
    listing: &Listing,
    id: u64,
    range_size: u64,
    scratch: &std::path::Path,
) -> Result<(crate::commands::Job, Arc<GenStore>)> {
    let known = load_known(dst.store.as_ref(), listing, scratch)?;
    let gen_store = Arc::new(GenStore {
        inner: dst.store.clone(),
        id,
        prev: known.prev,
        pooled: known.pooled,
        clashed: Mutex::new(HashMap::new()),
        claims: Default::default(),
    });
    let mut tuning = a.tuning.clone();
    tuning.range_size = Some(range_size);
    let gen_end = End {
        url: dst.url.clone(),
        store: gen_store.clone(),
    };
    let mut job = build_job(
        observer,
        "backup",
        src,
        gen_end,
        &identity(a),
        tuning,
        None,
        None,
    )?;
    job.cfg.known_target = Some(Arc::new(known.index));
    job.cfg.overwrite = Overwrite::Sync;
    Ok((job, gen_store))
}

/// The backup's listing of the whole source root, what `sel` leaves out tallied by reason.
fn root_feed(
    job: &crate::commands::Job,
    sel: hbcp_planner::Selection,
) -> impl Fn(&dyn Store, &ListSink<'_>) -> hbcp_store::Result<()> + Sync + use<> {
    let left_out = job.left_out.clone();
    move |src: &dyn Store, sink: &ListSink<'_>| {
        src.list("", &|e: Entry| {
            if left_out.judge(&sel, &e) {
                sink(e)
            } else {
                Ok(())
            }
        })
    }
}

/// `backup --dry-run`: what the backup would store as its new generation (copy), keep from the
/// earlier ones (keep) or fail on, as the real run judges each file, and with a `--keep-*`
/// policy which generations there now it would prune. Nothing is written: no lock, layout,
/// pending marker or state; the index of what is stored goes to the system's temporary folder.
#[allow(clippy::too_many_arguments)]
fn dry_run(
    a: &BackupSpec,
    observer: &Arc<dyn crate::Observer>,
    src: End,
    dst: End,
    sel: hbcp_planner::Selection,
    policy: &g::Retention,
    cap: &PruneCap,
) -> Result<Exit> {
    let store = dst.store.clone();
    let display = dst.url.display.clone();
    let layout = read_layout(store.as_ref(), &display)?;
    if layout.is_none() && has_content(store.as_ref())? {
        return usage(format!(
            "target {display}: not empty and not an hbcp backup target (no {LAYOUT_KEY}); back up into an empty folder or an existing backup target"
        ));
    }
    let range_size = match &layout {
        Some(l) => l.range_size,
        None => first_range_size(a, &src, store.as_ref()),
    };
    let listing = list_generations(store.as_ref())?;
    let pending = read_small(store.as_ref(), PENDING_KEY)?
        .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
        .filter(|p| p.id > listing.max_id());
    let id = pending.map_or(listing.max_id() + 1, |p| p.id);
    let tmp = crate::dryrun::scratch()?;
    let (mut job, _) =
        generation_job(a, observer, src, &dst, &listing, id, range_size, tmp.path())?;
    job.hbase = crate::commands::hbase_layout(None, &sel);
    let feed = root_feed(&job, sel);
    let head = format!("backup {} -> {display} generation {id}", job.src.url);
    let exit = crate::dryrun::backup(&job, &feed, head)?;
    if !policy.is_empty() && layout.is_some() {
        let pruned = prune(store.as_ref(), policy, cap, &tmp.path().join("prune"))?;
        say_pruned(&pruned);
    }
    Ok(exit)
}

/// `hbcp backup`.
pub fn backup(a: BackupSpec, observer: &Arc<dyn crate::Observer>) -> Result<Exit> {
    if a.tuning.verify == VerifyChoice::None {
        return usage(
            "--verify none: a generation is written only once verified; use size or checksum",
        );
    }
    let policy = g::Retention {
        last: a.keep.or(a.keep_last),
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
    };
    for (flag, v) in [
        (
            if a.keep.is_some() {
                "--keep"
            } else {
                "--keep-last"
            },
            policy.last,
        ),
        ("--keep-hourly", policy.hourly),
        ("--keep-daily", policy.daily),
        ("--keep-weekly", policy.weekly),
        ("--keep-monthly", policy.monthly),
    ] {
        if v == Some(0) {
            return usage(format!(
                "{flag} 0: expected at least 1 (the new generation is always kept)"
            ));
        }
    }
    let cap = PruneCap {
        max_share: a.max_delete,
        force: a.force,
        dry_run: a.dry_run,
    };
    let sel = selection(&a.selection.exclude)?;
    let src = open_source(&a.ends.src, a.tuning.allow_http)?;
    // A generation holds what `hbcp copy` would copy of the root: an HBase root without its
    // transient folders, and without the WALs unless --allow-unflushed.
    let sel = crate::select::copy_rules(&src, sel, a.allow_unflushed)?;
    if !a.allow_unflushed {
        let places = crate::preflight::WalPlaces::open(&a.wals, a.tuning.allow_http)?;
        if let Some(msg) = crate::preflight::unflushed_guard(&src, &[], &places)? {
            return usage(msg);
        }
    }
    if a.dry_run {
        let dst = crate::commands::open_target_for(&a.ends.dst, &src, a.tuning.allow_http, false)?;
        return dry_run(&a, observer, src, dst, sel, &policy, &cap);
    }
    let dst = open_target(&a.ends.dst, &src, a.tuning.allow_http)?;
    // One run at a time per target, taken before the layout or the pending generation is
    // written.
    let cancel = install_signals()?;
    let started = hbcp_state::time::now_rfc3339();
    let _lock = crate::commands::lock_end(
        &dst,
        hbcp_engine::lock::LOCK_KEY,
        "backup",
        &started,
        &cancel,
    )?;
    let store = dst.store.clone();
    let display = dst.url.display.clone();
    let layout = match read_layout(store.as_ref(), &display)? {
        Some(l) => {
            if let Some(rs) = a.tuning.range_size {
                if rs != l.range_size {
                    return usage(format!(
                        "--range-size {rs}: this backup target's checksums use {} (set by its first backup); leave --range-size out",
                        l.range_size
                    ));
                }
            }
            l
        }
        None => {
            if has_content(store.as_ref())? {
                return usage(format!(
                    "target {display}: not empty and not an hbcp backup target (no {LAYOUT_KEY}); back up into an empty folder or an existing backup target"
                ));
            }
            let rs = first_range_size(&a, &src, store.as_ref());
            let l = Layout {
                format: LAYOUT_FORMAT.into(),
                version: 1,
                range_size: rs,
            };
            store.put(LAYOUT_KEY, &serde_json::to_vec_pretty(&l)?)?;
            l
        }
    };
    let listing = list_generations(store.as_ref())?;
    let pending = read_small(store.as_ref(), PENDING_KEY)?
        .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
        .filter(|p| p.id > listing.max_id());
    let resumed = pending.is_some();
    let id = match pending {
        Some(p) => p.id,
        None => {
            let id = listing.max_id() + 1;
            store.put(PENDING_KEY, &serde_json::to_vec(&Pending { id })?)?;
            id
        }
    };
    let excludes = identity(&a);
    // The index goes where the job's state will be (build_job picks the same folder).
    let job_id = hbcp_engine::job_id(&src.url.display, &display, &excludes, layout.range_size);
    let scratch = crate::commands::state_dir_of(&a.tuning, &dst, &job_id);
    let (mut job, gen_store) = generation_job(
        &a,
        observer,
        src,
        &dst,
        &listing,
        id,
        layout.range_size,
        &scratch,
    )?;
    job.hbase = crate::commands::hbase_layout(None, &sel);
    let quiet = matches!(job.tuning.progress, ProgressMode::Json);
    if !quiet {
        errln!(
            "hbcp: backup {} -> {} generation {id}{} (state in {})",
            job.src.url,
            job.dst.url,
            if resumed { ", resumed" } else { "" },
            job.cfg.state_dir.display()
        );
    }
    let feed = root_feed(&job, sel);
    let mut header = GenerationHeader {
        format: GENERATION_FORMAT.into(),
        version: GENERATION_VERSION,
        id,
        source: job.src.url.display.clone(),
        started: job.cfg.started.clone(),
        finished: String::new(),
        range_size: layout.range_size,
        ..Default::default()
    };
    // The manifest, sorted and located, in a local file first (it is sent once verified).
    let local_manifest = job.cfg.state_dir.join(format!("generation-{id}.zst"));
    let ran = crate::skeleton::copy_then_verify(
        &job,
        "backup",
        &feed,
        &cancel,
        // A generation is verified only when the copy ran to its end.
        |outcome| outcome.stop.is_none() && !cancel.load(Relaxed),
        // Every byte stored by this generation; the files it shares with earlier ones are
        // proven by the records of the generations that stored and verified them.
        |outcome, stats| {
            crate::genstore::locate_spill(
                &gen_store,
                &outcome.spill,
                &job.cfg.state_dir,
                &local_manifest,
                &mut header,
            )?;
            let prev_id = listing.visible().last().copied();
            verify_generation(
                &job,
                &gen_store,
                &local_manifest,
                prev_id,
                layout.range_size,
                stats,
            )
        },
    )?;
    let (outcome, stats) = (ran.copied.outcome, ran.copied.stats);
    let Some((verified, proven)) = ran.verified else {
        let hidden = format!("generation {id} is not visible");
        let early = crate::exit::early_end(
            outcome.stop.as_ref(),
            cancel.load(Relaxed),
            crate::exit::wrote(&stats, &outcome),
            Some(&hidden),
        );
        return Ok(early.map_or(Exit::Interrupted, |(exit, _)| exit));
    };
    let mut problems: Vec<String> = outcome
        .failures
        .iter()
        .map(|f| format!("failed: {}: {}", f.key, f.error))
        .collect();
    problems.extend(verified.mismatches.iter().map(|m| m.to_string()));
    crate::commands::warn_findings(&verified.source_findings);
    let mode = verify_mode(job.tuning.verify);
    if crate::commands::findings_fail(mode, job.tuning.strict, &verified.source_findings) {
        problems.push(format!(
            "{} source findings fail the backup ({})",
            verified.source_findings.len(),
            if job.tuning.strict {
                "--strict"
            } else {
                "--verify deep"
            }
        ));
    }
    for w in &outcome.warnings {
        errln!("hbcp: warning: {w}");
    }
    let mut pruned = Pruned::default();
    let exit = if problems.is_empty() {
        // Everything it names is durable; then the manifest (in parts when large, visible only
        // when whole): now the generation is visible. Its finish time is the moment verified.
        header.finished = hbcp_state::time::now_rfc3339();
        let sent = job.cfg.state_dir.join(format!("generation-{id}.final.zst"));
        g::rewrite(&local_manifest, &sent, &header)?;
        store.flush()?;
        hbcp_state::manifest::upload_file(
            store.as_ref(),
            &g::manifest_key(id),
            &sent,
            &job.cfg.job,
        )
        .with_context(|| format!("writing {}", g::manifest_key(id)))?;
        store.flush()?;
        let _ = store.delete(PENDING_KEY);
        let _ = std::fs::remove_dir_all(&job.cfg.state_dir);
        cleanup_staging(&job);
        let files = |n: u64| crate::report::count(n, "file");
        errln!(
            "hbcp: generation {id} written: {}, {}; stored {} new, {} (sent {}); {}",
            files(header.files),
            bytes(header.bytes),
            files(header.new_files),
            bytes(header.new_bytes),
            bytes(stats.bytes_copied.load(Relaxed)),
            job.left_out.summary(),
        );
        // Prune only after the new generation is verified and visible.
        pruned = prune(store.as_ref(), &policy, &cap, &scratch)?;
        let _ = std::fs::remove_dir(&scratch);
        say_pruned(&pruned);
        for p in &pruned.problems {
            errln!("hbcp: prune: {p}");
        }
        if pruned.problems.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        }
    } else {
        forget(&job.cfg, &verified)?;
        for p in &problems {
            errln!("hbcp: {p}");
        }
        errln!(
            "hbcp: generation {id} not written (nothing of it is visible); run the same command again to retry"
        );
        Exit::Failed
    };
    let elapsed = stats.elapsed().as_secs_f64();
    let bytes_sent = stats.bytes_copied.load(Relaxed);
    if quiet {
        outln!(
            "{}",
            serde_json::json!({
                "event": "done", "exit_code": exit.code(), "generation": id,
                "files": header.files, "bytes": header.bytes, "new_files": header.new_files,
                "new_bytes": header.new_bytes, "bytes_sent": bytes_sent,
                "pruned": pruned.generations, "elapsed_s": elapsed,
            })
        );
    }
    if let Some(path) = &job.tuning.report {
        let report = serde_json::json!({
            "command": "backup",
            "source": job.src.url.display,
            "target": job.dst.url.display,
            "started": job.cfg.started,
            "finished": hbcp_state::time::now_rfc3339(),
            "exit_code": exit.code(),
            "generation": id,
            "resumed": resumed,
            "written": problems.is_empty(),
            "files": header.files,
            "bytes": header.bytes,
            "dirs": header.dirs,
            "new_files": header.new_files,
            "new_bytes": header.new_bytes,
            "files_sent": stats.files_copied.load(Relaxed),
            "bytes_sent": bytes_sent,
            "files_unchanged": stats.files_skipped.load(Relaxed),
            "tasks": stats.tasks.load(Relaxed),
            "retries": stats.retries.load(Relaxed),
            "verified": {
                "files": verified.files,
                "bytes": verified.bytes,
                "mismatches": verified.mismatches,
                "by_earlier_generations": proven,
            },
            "source_findings": verified.source_findings,
            "failures": outcome.failures,
            "warnings": outcome.warnings,
            "pruned": pruned,
            "throughput_bytes_per_s": bytes_sent as f64 / elapsed.max(1e-6),
            "elapsed_s": elapsed,
            "latency_ms": stats.latency(),
            "latency_by_op_ms": stats.latency_by_op(),
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
        std::fs::rename(&tmp, path)?;
    }
    Ok(exit)
}

/// Verify a generation's files (its local manifest, sorted): the ones it stored against the
/// source; the ones it shares with earlier generations are proven by their records there (a
/// merge with the previous generation `prev_id`'s manifest, no request per file), and read back
/// at the target only when no record proves them. Also returns how many were proven so.
fn verify_generation(
    job: &crate::commands::Job,
    gen_store: &Arc<GenStore>,
    local_manifest: &std::path::Path,
    prev_id: Option<u64>,
    range_size: u64,
    stats: &Arc<Stats>,
) -> Result<(VerifyOutcome, u64)> {
    let params = |mode| Params {
        mode,
        workers: job.cfg.workers,
        range_size,
        chunk: job.cfg.chunk,
        hbase: job.hbase,
    };
    let progress = {
        let st = stats.clone();
        move |n: u64| {
            st.bytes_verified.fetch_add(n, Relaxed);
            st.files_verified.fetch_add(1, Relaxed);
        }
    };
    let split =
        crate::genproof::split(gen_store.inner.as_ref(), gen_store, local_manifest, prev_id)?;
    let (gen_t, src_t) = (
        Timed::new(gen_store.as_ref(), stats.ops()),
        Timed::new(job.src.store.as_ref(), stats.ops()),
    );
    let gen_timed = &job.capped(&gen_t);
    let (fresh, err1) = crate::genstore::manifest_entries(&split.fresh, |_| true)?;
    let v1 = verify_entries(
        gen_timed,
        SourceCheck::Head(&job.capped(&src_t)),
        fresh,
        &params(verify_mode(job.tuning.verify)),
        &progress,
    )?;
    crate::genstore::check_read(&err1)?;
    let (unproven, err2) = crate::genstore::manifest_entries(&split.unproven, |_| true)?;
    let v2 = verify_entries(
        gen_timed,
        SourceCheck::None,
        unproven,
        &params(verify_mode(job.tuning.verify)),
        &progress,
    )?;
    crate::genstore::check_read(&err2)?;
    stats.files_verified.fetch_add(split.proven(), Relaxed);
    stats.bytes_verified.fetch_add(split.proven_bytes, Relaxed);
    let mut verified = v1;
    verified.merge(v2);
    verified.files += split.proven();
    verified.bytes += split.proven_bytes;
    Ok((verified, split.proven()))
}

/// Open a backup target for reading and check its layout marker.
fn open_backup(dst: &str, allow_http: bool) -> Result<(End, Layout)> {
    let end = open_source(dst, allow_http)?;
    let display = end.url.display.clone();
    match read_layout(end.store.as_ref(), &display)? {
        Some(l) => Ok((end, l)),
        None => usage(format!(
            "{display}: not an hbcp backup target (no {LAYOUT_KEY}); expected a folder written by hbcp backup"
        )),
    }
}

/// `hbcp generations`.
pub fn generations(a: GenerationsSpec) -> Result<Exit> {
    let (end, _) = open_backup(&a.dst, a.allow_http)?;
    let store = end.store.as_ref();
    let listing = list_generations(store)?;
    let mut rows = Vec::new();
    for id in listing.visible() {
        rows.push(g::read_header(store, id)?);
    }
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|h| {
                serde_json::json!({
                    "id": h.id, "time": h.finished, "started": h.started, "source": h.source,
                    "files": h.files, "dirs": h.dirs, "bytes": h.bytes,
                    "new_files": h.new_files, "new_bytes": h.new_bytes,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        errln!("hbcp: {}: no generations yet", end.url.display);
        return Ok(Exit::Ok);
    }
    outln!(
        "{:>6}  {:<24}  {:>10}  {:>12}  {:>12}",
        "ID",
        "TIME",
        "FILES",
        "BYTES",
        "NEW BYTES"
    );
    for h in &rows {
        outln!(
            "{:>6}  {:<24}  {:>10}  {:>12}  {:>12}",
            h.id,
            h.finished,
            h.files,
            bytes(h.bytes),
            bytes(h.new_bytes)
        );
    }
    Ok(Exit::Ok)
}

/// `hbcp restore`.
pub fn restore(a: RestoreSpec, observer: &Arc<dyn crate::Observer>) -> Result<Exit> {
    let spec = crate::select::spec(&a.select)?;
    let (backup_end, layout) = open_backup(&a.dst, a.tuning.allow_http)?;
    let display = backup_end.url.display.clone();
    let listing = list_generations(backup_end.store.as_ref())?;
    let visible = listing.visible();
    // `latest`: the newest generation the target shows (restic's and Velero's word).
    let asked = a.generation.trim();
    let id = if asked.eq_ignore_ascii_case("latest") {
        visible.last().copied()
    } else {
        asked.parse::<u64>().ok().filter(|id| visible.contains(id))
    };
    let Some(id) = id else {
        let have = if visible.is_empty() {
            "it has none".to_string()
        } else {
            format!(
                "its generations are {}",
                visible
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return usage(format!(
            "--generation {:?}: no such generation in {display}; {have} (an ID, or latest; see hbcp generations {display})",
            a.generation
        ));
    };
    let dst =
        crate::commands::open_target_for(&a.target, &backup_end, a.tuning.allow_http, !a.dry_run)?;
    if spec.is_view() {
        return crate::genrestore::restore_selection(a, spec, backup_end, id, dst, observer);
    }
    // The source is the generation's view, opened below under the job's state folder (the
    // job is built on the backup store, whose capabilities the view shares).
    let src = End {
        url: backup_end.url.clone(),
        store: backup_end.store.clone(),
    };
    let excludes = vec![format!("\0restore:{id}")];
    let mut job = build_job(
        observer,
        "restore",
        src,
        dst,
        &excludes,
        a.tuning.clone(),
        None,
        None,
    )?;
    job.cfg.source_label = format!("{display} generation {id}");
    if a.dry_run {
        if !hbcp_state::journal::exists_in(&job.cfg.state_dir)
            && has_content(job.dst.store.as_ref())?
        {
            return usage(format!(
                "target {}: not empty; restore into an empty folder (a restore that was interrupted resumes into its own target)",
                job.dst.url.display
            ));
        }
        let head = format!("restore {display} generation {id} -> {}", job.dst.url);
        let store = backup_end.store.clone();
        return crate::dryrun::restore(job, head, |local| {
            let (_, view) = crate::genstore::GenView::open(store, id, local)?;
            Ok(Arc::new(view) as Arc<dyn Store>)
        });
    }
    let cancel = install_signals()?;
    let _lock = crate::commands::lock_target(&job, &cancel)?;
    if !hbcp_state::journal::exists_in(&job.cfg.state_dir) && has_content(job.dst.store.as_ref())? {
        return usage(format!(
            "target {}: not empty; restore into an empty folder (a restore that was interrupted resumes into its own target)",
            job.dst.url.display
        ));
    }
    let local_manifest = job.cfg.state_dir.join(format!("generation-{id}.zst"));
    let (header, view) =
        crate::genstore::GenView::open(backup_end.store.clone(), id, &local_manifest)?;
    job.src.store = Arc::new(view);
    let quiet = matches!(job.tuning.progress, ProgressMode::Json);
    if !quiet {
        errln!(
            "hbcp: restore {display} generation {id} ({}, {} files, {}) -> {} (state in {})",
            header.finished,
            header.files,
            bytes(header.bytes),
            job.dst.url,
            job.cfg.state_dir.display()
        );
    }
    // Served from the view's map, in key order: no listing request is made.
    let feed = |src: &dyn Store, sink: &ListSink<'_>| src.list("", sink);
    let mode = verify_mode(job.tuning.verify);
    let interrupted = std::cell::Cell::new(false);
    let ran = crate::skeleton::copy_then_verify(
        &job,
        "restore",
        &feed,
        &cancel,
        |outcome| {
            // As the copy ended (a signal during the verification does not change the end).
            interrupted
                .set(cancel.load(Relaxed) || matches!(outcome.stop, Some(Stop::Interrupted)));
            outcome.stop.is_none() && !interrupted.get() && mode != VerifyMode::None
        },
        // Against the generation manifest: every file's checksum as it was backed up.
        |_, stats| {
            let st = stats.clone();
            let progress = move |n: u64| {
                st.bytes_verified.fetch_add(n, Relaxed);
                st.files_verified.fetch_add(1, Relaxed);
            };
            let (expected, read_err) =
                crate::genstore::manifest_entries(&local_manifest, |_| true)?;
            let verified = verify_entries(
                &job.capped(job.dst.store.as_ref()),
                SourceCheck::None,
                expected,
                &Params {
                    mode,
                    workers: job.cfg.workers,
                    range_size: header.range_size,
                    chunk: job.cfg.chunk,
                    // The generation was checked when it was backed up; a restore proves the
                    // bytes.
                    hbase: None,
                },
                &progress,
            )?;
            crate::genstore::check_read(&read_err)?;
            forget(&job.cfg, &verified)?;
            Ok(verified)
        },
    )?;
    let copied = ran.copied;
    let (outcome, stats) = (&copied.outcome, &copied.stats);
    let verified = ran.verified.unwrap_or_default();
    let interrupted = interrupted.get();
    let failed = !outcome.failures.is_empty() || !verified.ok();
    let early = crate::exit::early_end(
        outcome.stop.as_ref(),
        interrupted,
        crate::exit::wrote(stats, outcome),
        None,
    );
    let (exit, status) = match early {
        Some(end) => end,
        _ if failed => (Exit::Failed, "failed".to_string()),
        _ if mode == VerifyMode::None => (
            Exit::Ok,
            format!("generation {id} restored, not verified (--verify none)"),
        ),
        _ => (Exit::Ok, format!("generation {id} restored and verified")),
    };
    for f in &outcome.failures {
        errln!("hbcp: failed: {}: {}", f.key, f.error);
    }
    for m in &verified.mismatches {
        errln!("hbcp: {m}");
    }
    let _ = layout;
    crate::skeleton::complete(&job, &copied, &verified, mode, exit, status, COMPLETION_KEY)
}
