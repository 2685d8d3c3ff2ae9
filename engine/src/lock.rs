//! One run at a time per target. Two runs writing one target race on its staging files and
//! append to one journal; the second of them is refused instead, with a line that names the
//! first (host, pid, start), and a hold whose run is gone is taken over and said so.
//!
//! - Local disk: an advisory `flock` on `.hbcp/lock` under the target root. The kernel drops it
//!   when the process ends however it ends (kill -9 included), so a hold is live exactly as
//!   long as its process; the file's content only names the holder.
//! - Object stores: a lock object `.hbcp/lock` created only if absent (If-None-Match) and
//!   holding a lease: the holder renews it every third of [`LEASE`] (If-Match on the version it
//!   wrote); a lock whose lease has run out is taken over by a write conditional on the version
//!   that was read, so of two runs taking over one stale lock only one wins. A lock whose
//!   holder ran on this host and whose process is gone is stale at once (a run killed with -9
//!   and run again does not wait for the lease).
//! - A lease lost while the run goes on (another run changed the lock, or renewals failed until
//!   the lease ran out) is not only logged: [`TargetLock::on_loss`] tells the run, which stops
//!   (exit 3, resumable) instead of writing a target that another run may now hold.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hbcp_store::{PutIf, Store};
use serde::{Deserialize, Serialize};

/// How long an object-store lock holds without renewal.
pub const LEASE: Duration = Duration::from_secs(60);

/// The lease in force: [`LEASE`], or `HBCP_LOCK_LEASE_SECS` (at least 3 seconds) when set —
/// a knob for tests that lose a lease, and for stores where a minute is too long to wait.
pub fn lease() -> Duration {
    std::env::var("HBCP_LOCK_LEASE_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(LEASE, |s| Duration::from_secs(s.max(3)))
}

/// What the run is told when its lease is lost: why, in one line.
pub type OnLoss = Box<dyn Fn(&str) + Send + Sync>;

/// The loss of a remote lock: the flag, and whom to tell.
#[derive(Default)]
struct Loss {
    lost: AtomicBool,
    tell: Mutex<Option<OnLoss>>,
}

impl std::fmt::Debug for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loss").field("lost", &self.lost).finish()
    }
}

impl Loss {
    fn lose(&self, why: &str) {
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "hbcp::lock", "{why}");
            if let Some(tell) = &*self.tell.lock().unwrap_or_else(|e| e.into_inner()) {
                tell(why);
            }
        }
    }
}

/// The key of the lock of a whole run, under the target root.
pub const LOCK_KEY: &str = ".hbcp/lock";

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When the run started (RFC 3339).
    pub started: String,
    /// The command (`copy`, `run`, …).
    pub command: String,
    /// End of the lease, seconds since the epoch (object stores; 0 on local disk).
    #[serde(default)]
    pub expires: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hbcp {} on host {}, pid {}, started {}",
            self.command, self.host, self.pid, self.started
        )
    }
}

impl Holder {
    /// This process, running `command` since `started`.
    pub fn me(command: &str, started: &str) -> Holder {
        Holder {
            host: hostname(),
            pid: std::process::id(),
            started: started.into(),
            command: command.into(),
            expires: 0,
        }
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// A live run holds it.
    #[error(
        "the target is in use by another run ({0}); wait for it to finish, or stop it, then run again"
    )]
    Held(Holder),
    /// The lock holds something that is not a lock.
    #[error(
        "the target's lock {key} cannot be read ({why}); if no other run uses the target, delete it and run again"
    )]
    Unreadable {
        /// The lock's key or path.
        key: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] hbcp_store::Error),
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct TargetLock {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Local(File),
    Remote {
        stop: Arc<(Mutex<bool>, Condvar)>,
        renewer: Option<JoinHandle<()>>,
        store: Arc<dyn Store>,
        key: String,
        token: Arc<Mutex<String>>,
        lost: Arc<Loss>,
    },
}

impl TargetLock {
    /// Take the lock `key` of a target: under `local_root` on local disk, else on `store`.
    /// Returns the lock and, when it was taken over from a run that is gone, that run.
    pub fn acquire(
        store: &Arc<dyn Store>,
        local_root: Option<&Path>,
        key: &str,
        me: &Holder,
    ) -> Result<(TargetLock, Option<Holder>), LockError> {
        match local_root {
            Some(root) => acquire_local(&root.join(key), me),
            None => acquire_remote(store, key, me),
        }
    }

    /// True when a renewal found the lock taken by another run (its lease had run out).
    pub fn lost(&self) -> bool {
        match &self.inner {
            Inner::Local(_) => false,
            Inner::Remote { lost, .. } => lost.lost.load(Ordering::Relaxed),
        }
    }

    /// Call `tell` (once, from the renewal thread) if the lease is lost: the run stops. A
    /// local lock (a `flock`) cannot be lost while its process lives.
    pub fn on_loss(&self, tell: OnLoss) {
        if let Inner::Remote { lost, .. } = &self.inner {
            *lost.tell.lock().unwrap_or_else(|e| e.into_inner()) = Some(tell);
        }
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        match &mut self.inner {
            // Emptied, then unlocked as the file closes: an empty lock is a released one.
            Inner::Local(f) => {
                let _ = f.set_len(0);
            }
            Inner::Remote {
                stop,
                renewer,
                store,
                key,
                token,
                lost,
            } => {
                *stop.0.lock().unwrap() = true;
                stop.1.notify_all();
                if let Some(h) = renewer.take() {
                    let _ = h.join();
                }
                if lost.lost.load(Ordering::Relaxed) {
                    return;
                }
                // Only our own version of it: a run that took it over keeps its lock.
                let mine = token.lock().unwrap().clone();
                if let Ok(Some((_, now))) = store.get_versioned(key) {
                    if now == mine {
                        let _ = store.delete(key);
                    }
                }
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and the name is read up to the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn acquire_local(path: &PathBuf, me: &Holder) -> Result<(TargetLock, Option<Holder>), LockError> {
    let io = |op: &'static str, e: std::io::Error| {
        LockError::Store(hbcp_store::Error::io(path.display().to_string(), op, e))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create", e))?;
    }
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io("open", e))?;
    let mut text = String::new();
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io("lock", e));
        }
        f.read_to_string(&mut text).map_err(|e| io("read", e))?;
        return Err(match serde_json::from_str::<Holder>(&text) {
            Ok(h) => LockError::Held(h),
            // The holder is between taking the lock and writing its name.
            Err(_) => LockError::Held(Holder {
                host: "?".into(),
                pid: 0,
                started: "just now".into(),
                command: "?".into(),
                expires: 0,
            }),
        });
    }
    f.read_to_string(&mut text).map_err(|e| io("read", e))?;
    // A lock left with a name in it: its run ended without releasing it (killed).
    let stale = serde_json::from_str::<Holder>(&text).ok();
    let json = serde_json::to_vec(me).expect("a holder serialises");
    f.set_len(0).map_err(|e| io("write", e))?;
    f.rewind().map_err(|e| io("write", e))?;
    f.write_all(&json).map_err(|e| io("write", e))?;
    f.sync_data().map_err(|e| io("sync", e))?;
    Ok((
        TargetLock {
            inner: Inner::Local(f),
        },
        stale,
    ))
}

/// True when `h` ran on this host and its process is gone (or is this very process, which
/// took over a dead run's pid).
fn gone_from_here(h: &Holder) -> bool {
    if h.host != hostname() {
        return false;
    }
    if h.pid == std::process::id() {
        return true;
    }
    let Ok(pid) = libc::pid_t::try_from(h.pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn leased(me: &Holder) -> Vec<u8> {
    let mut h = me.clone();
    h.expires = now_secs() + lease().as_secs();
    serde_json::to_vec(&h).expect("a holder serialises")
}

fn acquire_remote(
    store: &Arc<dyn Store>,
    key: &str,
    me: &Holder,
) -> Result<(TargetLock, Option<Holder>), LockError> {
    let mut taken_over = None;
    let mut token = None;
    // A few rounds: between a failed create and the read, the lock may have been released.
    for _ in 0..5 {
        if let Some(t) = store.put_if(key, &leased(me), PutIf::Absent)? {
            token = Some(t);
            break;
        }
        let Some((data, version)) = store.get_versioned(key)? else {
            continue;
        };
        let held: Holder = serde_json::from_slice(&data).map_err(|e| LockError::Unreadable {
            key: key.into(),
            why: e.to_string(),
        })?;
        if held.expires > now_secs() && !gone_from_here(&held) {
            return Err(LockError::Held(held));
        }
        // The lease ran out, or its run was on this host and is gone (killed): take it over,
        // unless another run changed it since it was read.
        if let Some(t) = store.put_if(key, &leased(me), PutIf::Version(&version))? {
            token = Some(t);
            taken_over = Some(held);
            break;
        }
    }
    let Some(token) = token else {
        return Err(LockError::Unreadable {
            key: key.into(),
            why: "it kept changing while it was being taken".into(),
        });
    };
    let token = Arc::new(Mutex::new(token));
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let lost = Arc::new(Loss::default());
    let renewer = {
        let (store, key, me) = (store.clone(), key.to_string(), me.clone());
        let (token, stop, lost) = (token.clone(), stop.clone(), lost.clone());
        std::thread::Builder::new()
            .name("hbcp-lock".into())
            .spawn(move || renew(&*store, &key, &me, &token, &stop, &lost))
            .map_err(|e| hbcp_store::Error::io("lock renewal", "start thread", e))?
    };
    Ok((
        TargetLock {
            inner: Inner::Remote {
                stop,
                renewer: Some(renewer),
                store: store.clone(),
                key: key.into(),
                token,
                lost,
            },
        },
        taken_over,
    ))
}

/// Renew the lease every third of [`lease`] until stopped; a failed renewal is tried again at
/// the next turn (the lease has two more turns to go); a lock found changed, or a lease that ran
/// out while renewals failed, is lost.
fn renew(
    store: &dyn Store,
    key: &str,
    me: &Holder,
    token: &Mutex<String>,
    stop: &(Mutex<bool>, Condvar),
    lost: &Loss,
) {
    let lease = lease();
    let mut expires = now_secs() + lease.as_secs();
    loop {
        {
            let (stopped, _) = stop
                .1
                .wait_timeout_while(stop.0.lock().unwrap(), lease / 3, |s| !*s)
                .unwrap();
            if *stopped {
                return;
            }
        }
        let current = token.lock().unwrap().clone();
        let attempt = now_secs();
        match store.put_if(key, &leased(me), PutIf::Version(&current)) {
            Ok(Some(t)) => {
                *token.lock().unwrap() = t;
                expires = attempt + lease.as_secs();
            }
            Ok(None) => {
                lost.lose(&format!(
                    "the target lock {key} was changed by someone else: its lease is lost"
                ));
                return;
            }
            Err(e) if now_secs() >= expires => {
                lost.lose(&format!(
                    "the lease of the target lock {key} ran out while it could not be renewed: {e}"
                ));
                return;
            }
            Err(e) => tracing::debug!(target: "hbcp::lock", "lease renewal failed: {e}"),
        }
    }
}
