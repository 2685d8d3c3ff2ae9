//! `--dry-run` of `copy`, `sync`, `backup` and `restore`: what the run would copy, keep, copy inside the
//! target, fail on and (`sync --delete`) delete, as counts, bytes and the first names, with
//! nothing written anywhere — not the target (opened without its write probe), not the state
//! folder (scratch files go to the system's temporary folder and are removed), no lock.
//!
//! Each source file is judged by the engine's own rule ([`hbcp_engine::decide`]) from the same
//! listing the real run would feed it, and a file found with the same size at the target is
//! hashed on both sides as the real run does: so the dry run names exactly what the real run
//! then writes (only reads are made).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use anyhow::{Context, Result};
use hbcp_engine::TargetIndex;
use hbcp_engine::decide::{Decision, decide, server_side, target_is_empty};
use hbcp_state::checksum::hash_file;
use hbcp_store::{Entry, EntryKind, ListSink, Store};

use crate::Exit;
use crate::commands::Job;
use crate::report::bytes;

/// Names printed per kind of action (all of them with `--progress json`).
const FIRST: usize = 10;

/// Files of one kind of action: count, bytes, the first names in key order.
#[derive(Default)]
struct Tally {
    files: u64,
    bytes: u64,
    first: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, key: &str, size: u64) {
        self.files += 1;
        self.bytes += size;
        if self.first.len() < FIRST || self.first.last().is_some_and(|l| key < l.as_str()) {
            self.first.insert(key.to_string());
            if self.first.len() > FIRST {
                self.first.pop_last();
            }
        }
    }
}

/// The kinds of action, in the order they are printed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Copy,
    Replace,
    CopyWithin,
    Keep,
    Fail,
    Delete,
}

impl Action {
    const ALL: [Action; 6] = [
        Action::Copy,
        Action::Replace,
        Action::CopyWithin,
        Action::Keep,
        Action::Fail,
        Action::Delete,
    ];

    /// The JSON name.
    fn name(self) -> &'static str {
        match self {
            Action::Copy => "copy",
            Action::Replace => "replace",
            Action::CopyWithin => "copy_within",
            Action::Keep => "keep",
            Action::Fail => "fail",
            Action::Delete => "delete",
        }
    }

    /// The summary line's words.
    fn phrase(self) -> &'static str {
        match self {
            Action::Copy => "would copy (not at the target)",
            Action::Replace => "would copy over a different file at the target",
            Action::CopyWithin => "would copy inside the target (moved at the source)",
            Action::Keep => "would keep (already at the target)",
            Action::Fail => "would fail (the target has a folder under the name)",
            Action::Delete => "would delete (the source no longer has them)",
        }
    }
}

/// What a dry run found.
pub(crate) struct DryRun {
    json: bool,
    tallies: Mutex<std::collections::BTreeMap<Action, Tally>>,
    /// Entries the listing names but that are not copied (symlinks out of the root…).
    warnings: Mutex<Vec<String>>,
}

impl DryRun {
    fn new(json: bool) -> Self {
        DryRun {
            json,
            tallies: Mutex::default(),
            warnings: Mutex::default(),
        }
    }

    fn add(&self, action: Action, key: &str, size: u64) {
        if self.json {
            outln!(
                "{}",
                serde_json::json!({"event": "dry_run", "action": action.name(), "key": key, "bytes": size})
            );
        }
        self.tallies
            .lock()
            .unwrap()
            .entry(action)
            .or_default()
            .add(key, size);
    }

    fn tally(&self, action: Action) -> (u64, u64) {
        let t = self.tallies.lock().unwrap();
        t.get(&action).map_or((0, 0), |t| (t.files, t.bytes))
    }

    /// Print the summary (stdout) and end the run: exit 0, nothing written.
    fn print(&self, head: &str, notes: &[String]) -> Exit {
        let files = |n: u64| crate::report::count(n, "file");
        outln!("dry run: {head}; nothing was written");
        let t = self.tallies.lock().unwrap();
        for a in Action::ALL {
            let Some(t) = t.get(&a) else { continue };
            outln!("{}: {}, {}", a.phrase(), files(t.files), bytes(t.bytes));
            if a == Action::Keep {
                // What stays as it is needs no names (--progress json lists them).
                continue;
            }
            for k in &t.first {
                outln!("  {k}");
            }
            if t.files > t.first.len() as u64 {
                outln!("  … and {} more", t.files - t.first.len() as u64);
            }
        }
        if t.is_empty() {
            outln!("nothing to copy");
        }
        for w in self.warnings.lock().unwrap().iter() {
            outln!("warning: {w}");
        }
        for n in notes {
            outln!("{n}");
        }
        if self.json {
            let mut done = serde_json::Map::new();
            done.insert("event".into(), "dry_run_done".into());
            for a in Action::ALL {
                let (f, b) = t.get(&a).map_or((0, 0), |t| (t.files, t.bytes));
                done.insert(format!("{}_files", a.name()), f.into());
                done.insert(format!("{}_bytes", a.name()), b.into());
            }
            outln!("{}", serde_json::Value::Object(done));
        }
        Exit::Ok
    }
}

/// Judge every entry `feed` delivers as the job's engine would: `known` is what the target holds
/// when the run knows it without looking (a sync's index).
fn judge(
    job: &Job,
    feed: &hbcp_engine::Feed<'_>,
    known: Option<&TargetIndex>,
    dry: &DryRun,
) -> Result<()> {
    let src = job.src.store.as_ref();
    let dst = job.dst.store.as_ref();
    let cfg = &job.cfg;
    let empty = known.is_none() && target_is_empty(dst).context("cannot list the target")?;
    let s2s = server_side(cfg, src, dst);
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let one = |e: Entry| -> Result<()> {
        match e.kind {
            EntryKind::Skipped => {
                let why = e.version.clone().unwrap_or_default();
                dry.warnings
                    .lock()
                    .unwrap()
                    .push(format!("not copied: {} ({why})", e.key));
                return Ok(());
            }
            EntryKind::Dir => return Ok(()),
            EntryKind::File => {}
        }
        let existing = match known {
            Some(k) => k.get(&e.key)?.map(|k| Entry {
                key: e.key.clone(),
                size: k.size,
                version: None,
                modified: None,
                kind: EntryKind::File,
            }),
            None if empty => None,
            None => dst
                .head(&e.key)
                .with_context(|| format!("target: {}", e.key))?,
        };
        let by_name = |name: &str| {
            known
                .map(|k| k.by_name(name))
                .transpose()
                .map(Option::flatten)
        };
        let d = decide(
            &e,
            existing.as_ref(),
            cfg.overwrite,
            cfg.write_once,
            by_name,
        )?;
        let action = match d {
            Decision::New => Action::Copy,
            Decision::Replace => Action::Replace,
            Decision::Keep { .. } => Action::Keep,
            Decision::Moved { .. } => Action::CopyWithin,
            Decision::Conflict => Action::Fail,
            Decision::Compare if s2s && e.size > 0 => Action::Replace,
            Decision::Compare => {
                // As the engine's check: both sides hashed, range by range.
                let rs = cfg.range_size;
                let s = hash_file(src, &e.key, e.size, rs, e.version.as_deref())
                    .with_context(|| format!("source: {}", e.key))?;
                let t = hash_file(dst, &e.key, e.size, rs, None);
                if matches!(t, Ok(t) if t == s) {
                    Action::Keep
                } else {
                    Action::Replace
                }
            }
        };
        dry.add(action, &e.key, e.size);
        Ok(())
    };
    let listed = feed(src, &|e: Entry| {
        if stop.load(Relaxed) {
            return Err(stopping());
        }
        if let Err(err) = one(e) {
            stop.store(true, Relaxed);
            *failed.lock().unwrap() = Some(err);
            return Err(stopping());
        }
        Ok(())
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    match listed {
        Err(e) if e.is_bad_input() => crate::usage(format!("cannot list the source: {e}")),
        Err(e) => Err(anyhow::Error::new(e).context("cannot list the source")),
        Ok(()) => Ok(()),
    }
}

fn stopping() -> hbcp_store::Error {
    hbcp_store::Error::Unsupported {
        what: "listing".into(),
        hint: "dry run stopping".into(),
    }
}

fn json(job: &Job) -> bool {
    job.tuning.progress == crate::spec::ProgressMode::Json
}

/// `hbcp copy --dry-run`: `feed` is the one the copy would run.
pub(crate) fn copy(job: &Job, feed: &hbcp_engine::Feed<'_>, delete_extra: bool) -> Result<Exit> {
    let dry = DryRun::new(json(job));
    judge(job, feed, None, &dry)?;
    let mut notes = vec![format!("left out: {}", job.left_out.summary())];
    if delete_extra {
        notes.push(
            "--delete-extra: the files it would remove are found by the verification, which a dry run does not do".into(),
        );
    }
    Ok(dry.print(
        &format!("{} {} -> {}", job.command, job.src.url, job.dst.url),
        &notes,
    ))
}

/// `hbcp backup --dry-run`: `job` writes the new generation, knowing what earlier ones stored.
pub(crate) fn backup(job: &Job, feed: &hbcp_engine::Feed<'_>, head: String) -> Result<Exit> {
    let dry = DryRun::new(json(job));
    judge(job, feed, job.cfg.known_target.as_deref(), &dry)?;
    Ok(dry.print(&head, &[format!("left out: {}", job.left_out.summary())]))
}

/// A scratch folder in the system's temporary folder, removed when dropped: the dry run's
/// index and sorts, never in the state folder.
pub(crate) fn scratch() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("hbcp-dry-run-")
        .tempdir()
        .context("cannot create a scratch folder in the system's temporary folder")
}

/// `hbcp sync --dry-run`: what the first cycle would copy and, with `--delete`, delete.
pub(crate) fn sync(
    mut job: Job,
    sel: &hbcp_planner::Selection,
    a: &crate::spec::SyncSpec,
    max_delete: f64,
) -> Result<Exit> {
    let (delete, force) = (a.delete, a.force);
    let tmp = scratch()?;
    job.cfg.state_dir = tmp.path().to_path_buf();
    job.cfg.overwrite = hbcp_engine::Overwrite::Sync;
    // What the target holds, as the sync's first cycle reads it (from the manifests unless
    // every cycle lists the target).
    let (index, _) = crate::sync::load_index(&job, a.recheck == 1)?;
    let mut source = TargetIndex::builder(tmp.path(), job.cfg.write_once)?;
    let src_keys = Mutex::new(&mut source);
    let failed = Mutex::new(None);
    let feed = |src: &dyn Store, sink: &ListSink<'_>| {
        src.list("", &|e: Entry| {
            if !sel.accepts(&e) {
                return Ok(());
            }
            if e.kind == EntryKind::File {
                if let Err(err) = src_keys.lock().unwrap().add(&e.key, e.size, None) {
                    *failed.lock().unwrap() = Some(err);
                    return Err(stopping());
                }
            }
            sink(e)
        })
    };
    let dry = DryRun::new(json(&job));
    judge(&job, &feed, Some(&index), &dry)?;
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e.into());
    }
    let source = source.finish()?;
    let mut notes = Vec::new();
    if delete {
        for t in index.iter() {
            let (k, known) = t?;
            if source.get(&k)?.is_none() && sel.accepts_key(&k) {
                dry.add(Action::Delete, &k, known.size);
            }
        }
        let (extra, _) = dry.tally(Action::Delete);
        let share = extra as f64 / index.len().max(1) as f64;
        if share > max_delete && !force {
            notes.push(format!(
                "the sync would refuse these deletions: {extra} of {} target files ({:.1}%) is more than --max-delete {:.1}%; pass --force to delete them",
                index.len(),
                share * 100.0,
                max_delete * 100.0
            ));
        }
        if dry.tally(Action::Fail).0 > 0 {
            notes.push("the sync would delete nothing: a file would fail".into());
        }
    } else {
        let mut extra = 0u64;
        for t in index.iter() {
            let (k, _) = t?;
            if source.get(&k)?.is_none() && sel.accepts_key(&k) {
                extra += 1;
            }
        }
        if extra > 0 {
            notes.push(format!(
                "{} the source no longer has would stay (--delete removes them)",
                crate::report::count(extra, "target file")
            ));
        }
    }
    Ok(dry.print(&format!("sync {} -> {}", job.src.url, job.dst.url), &notes))
}

/// `hbcp restore --dry-run`: the generation's files against the target. `open` opens the
/// generation's view from a manifest kept at the given path.
pub(crate) fn restore(
    mut job: Job,
    head: String,
    open: impl FnOnce(&std::path::Path) -> Result<std::sync::Arc<dyn Store>>,
) -> Result<Exit> {
    let tmp = scratch()?;
    job.src.store = open(&tmp.path().join("generation.zst"))?;
    let feed = |src: &dyn Store, sink: &ListSink<'_>| src.list("", sink);
    let dry = DryRun::new(json(&job));
    judge(&job, &feed, None, &dry)?;
    Ok(dry.print(&head, &[]))
}
