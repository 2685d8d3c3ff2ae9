//! A shard's progress where `hbcp status` can read it from any machine: a small object beside
//! the shards' manifests at the target, written when the shard starts, again whenever its
//! journal has grown (at most every [`EVERY`]), and when it stops. A shard's journal lives in its
//! own state folder — on the machine that runs it, or under any `--state` — so the target is the
//! one place every machine can reach. Writing it never fails the shard: a beat that cannot be
//! written is skipped.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use hbcp_planner::shard::ShardId;
use hbcp_store::Store;
use serde::{Deserialize, Serialize};

/// How often the journal is looked at for progress.
const EVERY: Duration = Duration::from_secs(10);

/// Key of shard `sh`'s progress at the target.
pub(crate) fn key(base_job: &str, sh: ShardId) -> String {
    format!(".hbcp/shards/{base_job}/shard-{sh}.progress.json")
}

/// What a shard last said of itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Beat {
    /// `running`, or `stopped` (then `exit_code` says how; none: an error ended it).
    pub(crate) state: String,
    /// When the shard started (RFC 3339).
    pub(crate) started: String,
    /// Its last progress: the start, then the last time its journal grew (RFC 3339).
    pub(crate) progress: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exit_code: Option<u8>,
}

/// Read shard `sh`'s last beat, if the target has one that parses.
pub(crate) fn read(store: &dyn Store, base_job: &str, sh: ShardId) -> Option<Beat> {
    let k = key(base_job, sh);
    let e = store.head(&k).ok()??;
    let mut buf = Vec::new();
    store.read_range(&k, 0..e.size, None, &mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

/// `hbcp status`'s line for a shard whose manifest is not at the target yet, from its beat.
pub(crate) fn describe(beat: &Beat, shard: &str, files: u64, bytes: u64) -> String {
    let of = format!("{files} files, {}", crate::report::bytes(bytes));
    match (beat.state.as_str(), beat.exit_code) {
        ("running", _) => format!(
            "{shard}: running, last progress {} (started {}), {of}",
            beat.progress, beat.started
        ),
        (_, Some(code)) => format!(
            "{shard}: stopped with exit {code} at {}, without its verified manifest, {of}; run it again",
            beat.progress
        ),
        _ => format!(
            "{shard}: stopped by an error at {}, {of}; run it again",
            beat.progress
        ),
    }
}

/// The beats of a running shard; [`Heartbeat::stop`] writes the last one.
pub(crate) struct Heartbeat {
    store: Arc<dyn Store>,
    key: String,
    started: String,
    journal: PathBuf,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn put(store: &dyn Store, key: &str, beat: &Beat) {
    if let Ok(b) = serde_json::to_vec(beat) {
        let _ = store.put(key, &b);
    }
}

fn modified(journal: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(journal).and_then(|m| m.modified()).ok()
}

impl Heartbeat {
    /// Say at `store` that shard `sh` runs, with its journal at `journal`.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        base_job: &str,
        sh: ShardId,
        journal: PathBuf,
    ) -> Heartbeat {
        let key = key(base_job, sh);
        let started = hbcp_state::time::now_rfc3339();
        let beat = Beat {
            state: "running".into(),
            started: started.clone(),
            progress: started.clone(),
            exit_code: None,
        };
        put(store.as_ref(), &key, &beat);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let (store, key, journal, stop) =
                (store.clone(), key.clone(), journal.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last = modified(&journal);
                let (lock, cv) = &*stop;
                let mut done = lock.lock().unwrap();
                while !*done {
                    done = cv.wait_timeout(done, EVERY).unwrap().0;
                    let now = modified(&journal);
                    if !*done && now != last {
                        if let Some(t) = now {
                            let beat = Beat {
                                progress: humantime::format_rfc3339_seconds(t).to_string(),
                                ..beat.clone()
                            };
                            put(store.as_ref(), &key, &beat);
                        }
                        last = now;
                    }
                }
            })
        };
        Heartbeat {
            store,
            key,
            started,
            journal,
            stop,
            thread: Some(thread),
        }
    }

    /// The shard stopped with `exit_code` (none: an error ended it).
    pub(crate) fn stop(mut self, exit_code: Option<u8>) {
        self.end();
        let progress = modified(&self.journal)
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_else(|| self.started.clone());
        put(
            self.store.as_ref(),
            &self.key,
            &Beat {
                state: "stopped".into(),
                started: self.started.clone(),
                progress,
                exit_code,
            },
        );
    }

    fn end(&mut self) {
        *self.stop.0.lock().unwrap() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.end();
    }
}
