//! `hbcp bench DST`: what an endpoint sustains, the counterpart of `azcopy bench`. Synthetic
//! files are written under `DST/hbcp-bench-PID/` by the same engine a copy uses, read back and
//! checked by the verifier, then deleted. The result is kept so that `hbcp plan` can estimate a
//! copy's duration to that endpoint.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use anyhow::{Context, Result};
use hbcp_engine::{Config, Stats};
use hbcp_state::manifest;
use hbcp_store::synthetic::SyntheticStore;
use hbcp_store::timed::Timed;
use hbcp_store::{Entry, ListSink, Store};
use hbcp_verifier::VerifyMode;
use hbcp_verifier::check::{Params, SourceCheck, verify_entries};
use serde::{Deserialize, Serialize};

use crate::report::bytes;
use crate::spec::BenchSpec;
use crate::{Exit, usage};

/// What a bench measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    /// Endpoint (redacted).
    pub target: String,
    /// When.
    pub at: String,
    /// Files and bytes written.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
    /// Requests in flight.
    pub concurrency: usize,
    /// Write throughput.
    pub write_bytes_per_s: f64,
    /// Files written per second.
    pub write_files_per_s: f64,
    /// Read throughput.
    pub read_bytes_per_s: f64,
    /// Files of [`SMALL_BENCH_SIZE`] bytes written per second (a second, small-file phase):
    /// what a tree of small files goes at, bound by requests rather than bytes. 0 in records
    /// of benches that had no such phase.
    #[serde(default)]
    pub small_files_per_s: f64,
    /// Request latencies of the write phase (ms).
    pub latency_ms: hbcp_engine::Latency,
    /// Request latencies by operation of the whole bench: the write (puts, staged parts,
    /// commits), the read-back (gets), the clean-up (list pages, deletes).
    #[serde(default)]
    pub latency_by_op_ms: std::collections::BTreeMap<String, hbcp_engine::OpLatency>,
}

/// Files written by the small-file phase of a bench, and their size.
const SMALL_BENCH_FILES: u64 = 256;
/// See [`SMALL_BENCH_FILES`].
const SMALL_BENCH_SIZE: u64 = 4096;

/// A file of at most this size is timed in an estimate by files per second (its time is the
/// request's), a larger one by bytes per second: the engine's chunk, below which a file is one
/// request.
const SMALL_FILE: u64 = hbcp_engine::CHUNK;

/// The folder where the benches of this machine are kept, one record per endpoint.
fn bench_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".hbcp-state"));
    base.join("hbcp").join("bench")
}

/// Where the last bench of an endpoint is kept.
pub fn result_path(target: &str) -> PathBuf {
    let h = xxhash_rust::xxh3::xxh3_64(target.trim_end_matches('/').as_bytes());
    bench_dir().join(format!("{h:016x}.json"))
}

/// A URL as an estimate compares them: no query (a SAS is redacted anyway), no trailing `/`.
fn url_path(u: &str) -> &str {
    u.split_once('?')
        .map_or(u, |(p, _)| p)
        .trim_end_matches('/')
}

/// The bench that serves `target`: of the benches kept on this machine, the one whose endpoint
/// is `target` or a folder above it (same scheme, account or bucket and container: the URL is
/// a prefix ending at a `/`), the longest such; `None` when there is none.
pub fn nearest(target: &str) -> Option<BenchResult> {
    let want = url_path(target);
    std::fs::read_dir(bench_dir())
        .ok()?
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|b| serde_json::from_slice::<BenchResult>(&b).ok())
        .filter(|b| {
            let have = url_path(&b.target);
            !have.is_empty()
                && want
                    .strip_prefix(have)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .max_by_key(|b| url_path(&b.target).len())
}

/// A tree's mix of file sizes, for an estimate: files of at most [`SMALL_FILE`] bytes, and the
/// bytes of the larger ones.
#[derive(Debug, Default)]
pub struct Mix {
    small_files: std::sync::atomic::AtomicU64,
    large_bytes: std::sync::atomic::AtomicU64,
}

impl Mix {
    /// Count one file of `size` bytes.
    pub fn add(&self, size: u64) {
        if size <= SMALL_FILE {
            self.small_files.fetch_add(1, Relaxed);
        } else {
            self.large_bytes.fetch_add(size, Relaxed);
        }
    }
}

/// A copy's estimated duration.
#[derive(Debug)]
pub struct Estimate {
    /// Seconds: the small files at the bench's small-file rate, plus the large files' bytes
    /// at its byte rate.
    pub secs: f64,
    /// Small files and their rate (files per second).
    pub small: (u64, f64),
    /// Bytes of the large files and their rate (bytes per second).
    pub large: (u64, f64),
    /// The bench it comes from.
    pub bench: BenchResult,
}

/// A copy's estimated duration to `target` from the nearest bench ([`nearest`]) and the tree's
/// mix of sizes; `None` without a bench.
pub fn estimate(target: &str, mix: &Mix) -> Option<Estimate> {
    let b = nearest(target)?;
    // A record of a bench without the small-file phase: its files per second.
    let fps = if b.small_files_per_s > 0.0 {
        b.small_files_per_s
    } else {
        b.write_files_per_s
    };
    let (small, large) = (mix.small_files.load(Relaxed), mix.large_bytes.load(Relaxed));
    let (fps, bps) = (fps.max(1e-3), b.write_bytes_per_s.max(1.0));
    Some(Estimate {
        secs: small as f64 / fps + large as f64 / bps,
        small: (small, fps),
        large: (large, bps),
        bench: b,
    })
}

fn sub_url(dst: &str, folder: &str) -> String {
    match dst.split_once('?') {
        Some((base, q)) => format!("{}/{folder}?{q}", base.trim_end_matches('/')),
        None => format!("{}/{folder}", dst.trim_end_matches('/')),
    }
}

/// The folders a bench is about to create above its own (the missing ones of the path it was
/// given), removed when dropped, deepest first, each only if empty: `hbcp bench /new/path`
/// leaves no folder behind.
struct MadeFolders(Vec<std::path::PathBuf>);

impl MadeFolders {
    fn before(path: &std::path::Path) -> MadeFolders {
        let mut missing = Vec::new();
        let mut p = Some(path);
        while let Some(x) = p.filter(|x| !x.as_os_str().is_empty() && !x.exists()) {
            missing.push(x.to_path_buf());
            p = x.parent();
        }
        MadeFolders(missing)
    }
}

impl Drop for MadeFolders {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `hbcp bench`.
pub fn bench(a: BenchSpec) -> Result<Exit> {
    if a.files == 0 || a.size == 0 {
        return usage("--size and --files must be above zero");
    }
    if a.files > 10_000_000 {
        return usage("--files: at most 10,000,000");
    }
    let folder = format!("hbcp-bench-{}", std::process::id());
    let parent = parse_url(&a.dst, a.allow_http)?;
    let url = parse_url(&sub_url(&a.dst, &folder), a.allow_http)?;
    // A local folder that does not exist yet is made for the bench and removed after it.
    let _made = match &parent.endpoint {
        hbcp_store::Endpoint::Local(p) => MadeFolders::before(p),
        _ => MadeFolders(Vec::new()),
    };
    let dst = crate::commands::open_bench_target(&url, a.allow_http)?;
    let file_size = (a.size / a.files).max(1);
    let src = SyntheticStore::new(a.files, file_size, 0x5eed);
    // Against an object store the concurrency adapts, from half of the workers, and the bench
    // reports where it settled; `--workers N` sets the most (and, with a local target, all).
    let workers = a
        .workers
        .unwrap_or(if dst.caps().is_local {
            dst.caps().default_concurrency
        } else {
            2 * dst.caps().default_concurrency
        })
        .clamp(1, 1024);
    let range_size = a.range_size.unwrap_or(if dst.caps().is_local {
        64 << 20
    } else {
        8 << 20
    });
    let state = tempdir_state()?;
    let cfg = Config {
        workers,
        range_size,
        chunk: hbcp_engine::CHUNK.min(range_size),
        start_concurrency: (!dst.caps().is_local).then_some((workers / 2).max(2)),
        job: format!("bench-{}", std::process::id()),
        state_dir: state.clone(),
        source_label: src.describe(),
        target_label: url.display.clone(),
        ..Config::default()
    };
    let stats = Stats::default();
    let cancel = AtomicBool::new(false);
    errln!(
        "hbcp: bench {}: writing {} files of {} ({}), {workers} requests in flight",
        parent.display,
        a.files,
        bytes(file_size),
        bytes(file_size * a.files)
    );
    let t0 = Instant::now();
    let feed = |src: &dyn Store, sink: &ListSink<'_>| src.list("", sink);
    let out = hbcp_engine::copy(&src, dst.as_ref(), &feed, &cfg, &stats, &cancel)?;
    let write_s = t0.elapsed().as_secs_f64();
    let write_latency = stats.latency();
    // The read-back and the clean-up are timed too (by operation).
    let dst = &Timed::new(dst.as_ref(), stats.ops());
    let failed = !out.failures.is_empty() || out.stop.is_some();
    // Read everything back and check it.
    let t1 = Instant::now();
    let mut entries = Vec::new();
    manifest::read(std::fs::File::open(&out.spill)?, "spill", |e| {
        entries.push(e);
        Ok(())
    })?;
    let verified = verify_entries(
        dst,
        SourceCheck::None,
        entries.into_iter(),
        &Params {
            mode: VerifyMode::Checksum,
            workers,
            range_size,
            chunk: cfg.chunk,
            hbase: None,
        },
        &|_| {},
    )?;
    let read_s = t1.elapsed().as_secs_f64();
    let small_files_per_s = small_phase(&a, &folder, &cfg, &state)?;
    // Remove what was written.
    let keys = std::sync::Mutex::new(Vec::new());
    dst.list("", &|e: Entry| {
        keys.lock().unwrap().push(e.key);
        Ok(())
    })?;
    for k in keys.into_inner().unwrap() {
        let _ = dst.delete(&k);
    }
    if let hbcp_store::Endpoint::Local(p) = &url.endpoint {
        let _ = std::fs::remove_dir_all(p);
    }
    let _ = std::fs::remove_dir_all(&state);
    let written = stats.bytes_copied.load(Relaxed);
    let result = BenchResult {
        target: parent.display.clone(),
        at: hbcp_state::time::now_rfc3339(),
        files: stats.files_copied.load(Relaxed),
        bytes: written,
        concurrency: if cfg.start_concurrency.is_some() {
            stats.concurrency_final.load(Relaxed) as usize
        } else {
            workers
        },
        write_bytes_per_s: written as f64 / write_s.max(1e-6),
        write_files_per_s: stats.files_copied.load(Relaxed) as f64 / write_s.max(1e-6),
        read_bytes_per_s: verified.bytes as f64 / read_s.max(1e-6),
        small_files_per_s,
        latency_ms: write_latency,
        latency_by_op_ms: stats.latency_by_op(),
    };
    outln!(
        "small files: {:.0} files/s ({} files of {})",
        small_files_per_s,
        SMALL_BENCH_FILES,
        bytes(SMALL_BENCH_SIZE)
    );
    outln!(
        "write: {}/s, {:.0} files/s; read back: {}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} requests in flight",
        bytes(result.write_bytes_per_s as u64),
        result.write_files_per_s,
        bytes(result.read_bytes_per_s as u64),
        result.latency_ms.p50,
        result.latency_ms.p99,
        result.latency_ms.max,
        if cfg.start_concurrency.is_some() {
            format!(
                "settled at {} (of at most {workers}, highest {})",
                result.concurrency,
                stats.concurrency_peak.load(Relaxed)
            )
        } else {
            workers.to_string()
        }
    );
    for (op, l) in &result.latency_by_op_ms {
        outln!(
            "  {op:<6} {:>7} requests: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.count,
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
    }
    if failed || !verified.ok() {
        for f in &out.failures {
            errln!("hbcp: failed: {}: {}", f.key, f.error);
        }
        for m in &verified.mismatches {
            errln!("hbcp: {m}");
        }
        if let Some(s) = &out.stop {
            errln!("hbcp: stopped: {s:?}");
        }
        return Ok(Exit::Failed);
    }
    let path = result_path(&parent.display);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some(r) = &a.report {
        std::fs::write(r, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(Exit::Ok)
}

/// The small-file phase: [`SMALL_BENCH_FILES`] files of [`SMALL_BENCH_SIZE`] bytes written
/// under the bench's folder (`small/`, removed with it) by the same engine; files per second.
fn small_phase(a: &BenchSpec, folder: &str, cfg: &Config, state: &std::path::Path) -> Result<f64> {
    let url = parse_url(&sub_url(&a.dst, &format!("{folder}/small")), a.allow_http)?;
    let dst = crate::commands::open_bench_target(&url, a.allow_http)?;
    let src = SyntheticStore::new(SMALL_BENCH_FILES, SMALL_BENCH_SIZE, 0x5ea11);
    let cfg = Config {
        job: format!("{}-small", cfg.job),
        state_dir: state.join("small"),
        target_label: url.display.clone(),
        source_label: src.describe(),
        ..cfg.clone()
    };
    let stats = Stats::default();
    let t0 = Instant::now();
    let feed = |src: &dyn Store, sink: &ListSink<'_>| src.list("", sink);
    let out = hbcp_engine::copy(
        &src,
        dst.as_ref(),
        &feed,
        &cfg,
        &stats,
        &AtomicBool::new(false),
    )?;
    let secs = t0.elapsed().as_secs_f64();
    if !out.failures.is_empty() || out.stop.is_some() {
        anyhow::bail!(
            "the small-file phase of the bench failed: {:?}",
            out.failures.first()
        );
    }
    Ok(stats.files_copied.load(Relaxed) as f64 / secs.max(1e-6))
}

fn tempdir_state() -> Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("hbcp-bench-state-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

fn parse_url(s: &str, allow_http: bool) -> Result<hbcp_store::StoreUrl> {
    match hbcp_store::StoreUrl::parse(s, allow_http) {
        Ok(u) => Ok(u),
        Err(e) => usage(e.to_string()),
    }
}
