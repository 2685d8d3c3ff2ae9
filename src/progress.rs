//! Progress display: a bar on a terminal, one JSON line per second for machines, or nothing.
//! The reporter only reads the engine's `Stats`; it also samples the timeline for the report.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use hbcp_engine::Stats;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ProgressArg;

/// A running reporter; stops when dropped or on [`Reporter::finish`].
pub struct Reporter {
    stop: Arc<AtomicBool>,
    phase: Arc<Mutex<&'static str>>,
    handle: Option<JoinHandle<()>>,
}

fn human_bytes(n: f64) -> String {
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

impl Reporter {
    /// Start reporting `stats` in `mode`.
    pub fn start(stats: Arc<Stats>, mode: ProgressArg) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(Mutex::new("copy"));
        let mode = match mode {
            ProgressArg::Auto if std::io::stderr().is_terminal() => ProgressArg::Bar,
            ProgressArg::Auto => ProgressArg::None,
            m => m,
        };
        let (s2, p2) = (stop.clone(), phase.clone());
        let handle = std::thread::Builder::new()
            .name("hbcp-progress".into())
            .spawn(move || report_loop(&stats, mode, &s2, &p2))
            .expect("spawn progress thread");
        Reporter {
            stop,
            phase,
            handle: Some(handle),
        }
    }

    /// Switch the phase shown (`copy`, `verify`).
    pub fn phase(&self, p: &'static str) {
        *self.phase.lock().unwrap() = p;
    }

    /// Stop and clear the display.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn report_loop(stats: &Stats, mode: ProgressArg, stop: &AtomicBool, phase: &Mutex<&'static str>) {
    let bar = (mode == ProgressArg::Bar).then(|| {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(5));
        b.set_style(
            ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
            )
            .expect("progress template")
            .progress_chars("=> "),
        );
        b
    });
    let tick = Duration::from_millis(if bar.is_some() { 200 } else { 1000 });
    let mut last_sample = std::time::Instant::now();
    let mut last_bytes = 0u64;
    while !stop.load(Relaxed) {
        std::thread::park_timeout(tick);
        if stop.load(Relaxed) {
            break;
        }
        let ph = *phase.lock().unwrap();
        let verifying = ph == "verify";
        let files_total = stats.files_listed.load(Relaxed);
        let bytes_total = stats.bytes_listed.load(Relaxed);
        let files_done = stats.files_copied.load(Relaxed) + stats.files_skipped.load(Relaxed);
        let bytes_done = if verifying {
            stats.bytes_verified.load(Relaxed)
        } else {
            stats.bytes_copied.load(Relaxed) + stats.bytes_skipped.load(Relaxed)
        };
        if last_sample.elapsed() >= Duration::from_millis(990) {
            let s = stats.sample();
            let rate =
                (s.bytes.saturating_sub(last_bytes)) as f64 / last_sample.elapsed().as_secs_f64();
            last_bytes = s.bytes;
            last_sample = std::time::Instant::now();
            if mode == ProgressArg::Json {
                let remaining = bytes_total.saturating_sub(bytes_done) as f64;
                let eta = if rate > 0.0 && stats.listing_done.load(Relaxed) {
                    Some((remaining / rate).round())
                } else {
                    None
                };
                let line = serde_json::json!({
                    "event": "progress",
                    "phase": ph,
                    "elapsed_s": (s.t * 10.0).round() / 10.0,
                    "files_done": if verifying { stats.files_verified.load(Relaxed) } else { files_done },
                    "files_total": files_total,
                    "bytes_done": bytes_done,
                    "bytes_total": bytes_total,
                    "listing_done": stats.listing_done.load(Relaxed),
                    "bytes_per_s": rate.round(),
                    "eta_s": eta,
                    "in_flight": s.in_flight,
                    "retries": stats.retries.load(Relaxed),
                    "failed": stats.files_failed.load(Relaxed),
                });
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
        if let Some(b) = &bar {
            b.set_prefix(ph);
            b.set_length(bytes_total.max(bytes_done));
            b.set_position(bytes_done);
            let listing = if stats.listing_done.load(Relaxed) {
                ""
            } else {
                " (listing…)"
            };
            b.set_message(format!("{files_done}/{files_total} files{listing}"));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
