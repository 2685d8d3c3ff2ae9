//! Progress display: a bar on a terminal, a stats line every `--stats-interval` when stderr is
//! not a terminal (a cron or nohup run's log), one JSON line per second for machines, or
//! nothing. The reporter only reads the engine's `Stats`; it also samples the timeline for the
//! report. Every figure shown is of the phase under way: the listing's entries found, the
//! copy's bytes and files, the verifier's verified files and bytes, with the rate over a sliding
//! window (not the average since the start, which hides a cap or a stall) and the ETA from it.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use hbcp_job::errln;
use hbcp_job::observe::{Phase, Stats, Watch};
use hbcp_job::report::{bytes, human_bytes};
use hbcp_job::spec::ProgressMode;

/// The rate shown is over this much of the recent past.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// `--stats-interval` in milliseconds (set once from the command line; 60 s by default).
static STATS_INTERVAL_MS: AtomicU64 = AtomicU64::new(60_000);

/// Set the interval of the stats lines printed when stderr is not a terminal.
pub fn set_stats_interval(d: Duration) {
    STATS_INTERVAL_MS.store(d.as_millis().clamp(1, u64::MAX as u128) as u64, Relaxed);
}

/// `-q`: no progress display (bar or stats lines); JSON events, asked for, stay.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Set `-q`.
pub fn set_quiet(q: bool) {
    QUIET.store(q, Relaxed);
}

fn stats_interval() -> Duration {
    Duration::from_millis(STATS_INTERVAL_MS.load(Relaxed))
}

/// A running reporter; stops and clears its display when dropped.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    phase: Arc<Mutex<&'static str>>,
    handle: Option<JoinHandle<()>>,
}

/// A duration as `1h02m03s`, `4m05s` or `6s`.
fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The rate over the last [`RATE_WINDOW`]: bytes done at each tick, oldest first.
#[derive(Default)]
struct Window {
    points: VecDeque<(Instant, u64)>,
}

impl Window {
    /// Record `done` at `now`; returns the rate in bytes/s over the window (None until two
    /// points are a tenth of a second apart).
    fn push(&mut self, now: Instant, done: u64) -> Option<f64> {
        self.points.push_back((now, done));
        while self.points.len() > 2 && now.duration_since(self.points[1].0) >= RATE_WINDOW {
            self.points.pop_front();
        }
        let (t0, b0) = *self.points.front()?;
        let dt = now.duration_since(t0).as_secs_f64();
        (dt >= 0.1).then(|| done.saturating_sub(b0) as f64 / dt)
    }

    fn clear(&mut self) {
        self.points.clear();
    }
}

/// What the display shows at one moment.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    phase: &'static str,
    elapsed_s: f64,
    listing_done: bool,
    files_done: u64,
    files_total: u64,
    bytes_done: u64,
    bytes_total: u64,
    /// Bytes per second over the window; None before there is one.
    rate: Option<f64>,
    retries: u64,
    failed: u64,
    in_flight: u64,
}

impl Figures {
    fn read(stats: &Stats, phase: &'static str, rate: Option<f64>) -> Figures {
        let verifying = phase == "verify";
        Figures {
            phase,
            elapsed_s: stats.elapsed().as_secs_f64(),
            listing_done: stats.listing_done.load(Relaxed),
            files_done: if verifying {
                stats.files_verified.load(Relaxed)
            } else {
                stats.files_copied.load(Relaxed) + stats.files_skipped.load(Relaxed)
            },
            files_total: stats.files_listed.load(Relaxed),
            bytes_done: if verifying {
                stats.bytes_verified.load(Relaxed)
            } else {
                stats.bytes_copied.load(Relaxed) + stats.bytes_skipped.load(Relaxed)
            },
            bytes_total: stats.bytes_listed.load(Relaxed),
            rate,
            retries: stats.retries.load(Relaxed),
            failed: stats.files_failed.load(Relaxed),
            in_flight: stats.in_flight.load(Relaxed),
        }
    }

    /// The totals are known once the listing has ended (before, they only grow).
    fn totals_known(&self) -> bool {
        self.listing_done && self.bytes_total >= self.bytes_done
    }

    /// Seconds left at the window's rate; None while the totals or the rate are unknown.
    fn eta_s(&self) -> Option<f64> {
        let rate = self.rate.filter(|r| *r > 0.0)?;
        self.totals_known()
            .then(|| (self.bytes_total - self.bytes_done) as f64 / rate)
    }

    /// Done as a share of the total, 0..=1, when the total is known.
    fn fraction(&self) -> Option<f64> {
        match self.bytes_total {
            _ if !self.totals_known() => None,
            0 => Some(1.0),
            t => Some(self.bytes_done as f64 / t as f64),
        }
    }

    /// One line of figures, the same on the bar and in the stats lines.
    fn line(&self) -> String {
        let mut s = String::new();
        if self.listing_done {
            match self.fraction() {
                Some(f) => s.push_str(&format!(
                    "{} of {} ({:.0}%), {} of {} files",
                    bytes(self.bytes_done),
                    bytes(self.bytes_total),
                    (f * 100.0).floor(),
                    self.files_done,
                    self.files_total
                )),
                None => s.push_str(&format!(
                    "{}, {} files",
                    bytes(self.bytes_done),
                    self.files_done
                )),
            }
        } else if self.phase == "verify" && self.files_total == 0 {
            // `hbcp verify`: the comparison runs alongside the listing, whose size is unknown.
            s.push_str(&format!(
                "{}, {} files (listing)",
                bytes(self.bytes_done),
                self.files_done
            ));
        } else {
            s.push_str(&format!(
                "listing: {} entries found ({}); {}, {} files done",
                self.files_total,
                bytes(self.bytes_total),
                bytes(self.bytes_done),
                self.files_done
            ));
        }
        match self.rate {
            Some(r) => s.push_str(&format!(", {}/s", human_bytes(r))),
            None => s.push_str(", -/s"),
        }
        if let Some(eta) = self.eta_s() {
            s.push_str(&format!(", ETA {}", clock(eta)));
        }
        s.push_str(&format!(
            ", elapsed {}, retries {}, failed {}",
            clock(self.elapsed_s),
            self.retries,
            self.failed
        ));
        s
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "event": "progress",
            "phase": self.phase,
            "elapsed_s": (self.elapsed_s * 10.0).round() / 10.0,
            "files_done": self.files_done,
            "files_total": self.files_total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "listing_done": self.listing_done,
            "bytes_per_s": self.rate.map(f64::round).unwrap_or(0.0),
            "eta_s": self.eta_s().map(f64::round),
            "in_flight": self.in_flight,
            "retries": self.retries,
            "failed": self.failed,
        })
    }
}

/// How the figures are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    Bar,
    /// A line on stderr every `--stats-interval`.
    Lines,
    Json,
    Nothing,
}

impl Reporter {
    /// Start reporting `stats` in `mode`.
    pub fn start(stats: Arc<Stats>, mode: ProgressMode) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(Mutex::new("copy"));
        let show = match mode {
            ProgressMode::Auto | ProgressMode::Bar if QUIET.load(Relaxed) => Show::Nothing,
            ProgressMode::Auto if std::io::stderr().is_terminal() => Show::Bar,
            ProgressMode::Auto => Show::Lines,
            ProgressMode::Bar => Show::Bar,
            ProgressMode::Json => Show::Json,
            ProgressMode::None => Show::Nothing,
        };
        let (s2, p2) = (stop.clone(), phase.clone());
        let interval = stats_interval();
        let handle = std::thread::Builder::new()
            .name("hbcp-progress".into())
            .spawn(move || report_loop(&stats, show, interval, &s2, &p2))
            .expect("spawn progress thread");
        Reporter {
            stop,
            phase,
            handle: Some(handle),
        }
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Watch for Reporter {
    /// Switch the phase shown (`copy`, `verify`).
    fn phase(&self, p: Phase) {
        *self.phase.lock().unwrap() = p.name();
    }
}

/// The binary's [`hbcp_job::Observer`]: a [`Reporter`] per run.
pub struct Display;

impl hbcp_job::Observer for Display {
    fn watch(&self, stats: Arc<Stats>, mode: ProgressMode) -> Box<dyn Watch> {
        Box::new(Reporter::start(stats, mode))
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn report_loop(
    stats: &Stats,
    show: Show,
    interval: Duration,
    stop: &AtomicBool,
    phase: &Mutex<&'static str>,
) {
    let bar = (show == Show::Bar).then(|| {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(5));
        b.set_style(
            ProgressStyle::with_template("{prefix:>6} [{bar:24}] {wide_msg}")
                .expect("progress template")
                .progress_chars("=> "),
        );
        b
    });
    // The timeline is sampled once a second; a bar is redrawn five times a second, and stats
    // lines come at their interval (a shorter one than a second wakes the loop that often).
    let tick = match show {
        Show::Bar => Duration::from_millis(200),
        Show::Lines => interval.min(Duration::from_secs(1)),
        _ => Duration::from_secs(1),
    };
    let started = Instant::now();
    let mut last_sample = started;
    let mut last_line = started;
    let mut window = Window::default();
    window.push(started, stats.bytes_copied.load(Relaxed));
    let mut shown_phase = "copy";
    while !stop.load(Relaxed) {
        std::thread::park_timeout(tick);
        if stop.load(Relaxed) {
            break;
        }
        let now = Instant::now();
        let ph = *phase.lock().unwrap();
        if ph != shown_phase {
            window.clear();
            shown_phase = ph;
        }
        // The rate is of bytes moved in this phase: skipped files (already at the target) are
        // not transfers.
        let moved = if ph == "verify" {
            stats.bytes_verified.load(Relaxed)
        } else {
            stats.bytes_copied.load(Relaxed)
        };
        let rate = window.push(now, moved);
        let fig = Figures::read(stats, ph, rate);
        if now.duration_since(last_sample) >= Duration::from_millis(990) {
            stats.sample();
            last_sample = now;
            if show == Show::Json {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", fig.json());
                let _ = out.flush();
            }
        }
        if show == Show::Lines
            && now.duration_since(last_line) + Duration::from_millis(10) >= interval
        {
            last_line = now;
            errln!("hbcp: [{}] {}", fig.phase, fig.line());
        }
        if let Some(b) = &bar {
            b.set_prefix(ph);
            match fig.fraction() {
                Some(f) => {
                    b.set_length(1000);
                    b.set_position((f * 1000.0) as u64);
                }
                // An unknown total: an empty bar, not a full one.
                None => {
                    b.set_length(1000);
                    b.set_position(0);
                }
            }
            b.set_message(fig.line());
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig() -> Figures {
        Figures {
            phase: "copy",
            elapsed_s: 65.0,
            listing_done: true,
            files_done: 3,
            files_total: 10,
            bytes_done: 25 << 20,
            bytes_total: 100 << 20,
            rate: Some((5 << 20) as f64),
            retries: 2,
            failed: 1,
            in_flight: 4,
        }
    }

    #[test]
    fn line_has_every_figure() {
        let l = fig().line();
        assert_eq!(
            l,
            "25.0 MiB of 100.0 MiB (25%), 3 of 10 files, 5.0 MiB/s, ETA 15s, elapsed 1m05s, \
             retries 2, failed 1"
        );
    }

    #[test]
    fn listing_shows_entries_found_and_no_eta() {
        let f = Figures {
            listing_done: false,
            ..fig()
        };
        assert!(
            f.line()
                .starts_with("listing: 10 entries found (100.0 MiB); 25.0 MiB, 3 files")
        );
        assert_eq!(f.eta_s(), None);
        assert_eq!(f.fraction(), None);
    }

    #[test]
    fn verify_without_a_total_is_not_full() {
        let f = Figures {
            phase: "verify",
            listing_done: false,
            files_total: 0,
            bytes_total: 0,
            ..fig()
        };
        assert_eq!(f.fraction(), None);
        assert!(
            f.line().starts_with("25.0 MiB, 3 files (listing)"),
            "{}",
            f.line()
        );
    }

    #[test]
    fn window_rate_forgets_the_old_past() {
        let t0 = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.push(t0, 0), None);
        // 100 MB/s for 20 s, then 1 MB/s for 20 s: the rate shown is the recent one.
        for s in 1..=20u64 {
            w.push(t0 + Duration::from_secs(s), s * 100_000_000);
        }
        let mut r = 0.0;
        for s in 21..=40u64 {
            r = w
                .push(
                    t0 + Duration::from_secs(s),
                    2_000_000_000 + (s - 20) * 1_000_000,
                )
                .unwrap();
        }
        assert!((r - 1_000_000.0).abs() < 1.0, "{r}");
        w.clear();
        assert_eq!(w.push(t0 + Duration::from_secs(41), 0), None);
    }

    #[test]
    fn clock_forms() {
        assert_eq!(clock(5.4), "5s");
        assert_eq!(clock(125.0), "2m05s");
        assert_eq!(clock(3723.0), "1h02m03s");
    }
}
