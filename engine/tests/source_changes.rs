//! A source file that changes, shrinks or disappears while it is being copied is copied again
//! or reported — never a target file made of two versions. A wrapper store changes the source
//! at an exact moment (the first read of a chosen range), so the tests are deterministic.

use std::fs;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hbcp_engine::{Config, Stats};
use hbcp_store::local::LocalStore;
use hbcp_store::{Caps, Entry, ListSink, Result, Store, Upload};

type Hook = Box<dyn Fn(&PathBuf) + Send + Sync>;

/// Runs `hook` once, just before the first read of `key` that starts at or after `at`.
#[derive(Debug)]
struct ChangeOnRead {
    inner: LocalStore,
    key: String,
    at: u64,
    fired: AtomicBool,
    hook: Mutex<Option<HookBox>>,
}

struct HookBox(Hook);
impl std::fmt::Debug for HookBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hook")
    }
}

impl Store for ChangeOnRead {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> Result<()> {
        self.inner.list(prefix, sink)
    }
    fn head(&self, key: &str) -> Result<Option<Entry>> {
        self.inner.head(key)
    }
    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if key == self.key && range.start >= self.at && !self.fired.swap(true, Ordering::SeqCst) {
            if let Some(h) = self.hook.lock().unwrap().take() {
                (h.0)(&self.inner.root().join(key));
            }
        }
        self.inner.read_range(key, range, version, buf)
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.inner.put(key, data)
    }
    fn begin_upload(&self, key: &str, size: u64, part: u64, job: &str) -> Result<Arc<dyn Upload>> {
        self.inner.begin_upload(key, size, part, job)
    }
    fn make_dir(&self, key: &str) -> Result<()> {
        self.inner.make_dir(key)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(seed as u32)
                .to_le_bytes()[1]
        })
        .collect()
}

struct Case {
    warnings: Vec<String>,
    failures: usize,
    dst: PathBuf,
    _t: tempfile::TempDir,
}

fn run_case(key: &str, at: u64, hook: Hook) -> Case {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("big"), pattern(200 * 1024, 1)).unwrap();
    fs::write(src.join("small"), pattern(1000, 2)).unwrap();
    let store = ChangeOnRead {
        inner: LocalStore::new(src.clone()),
        key: key.into(),
        at,
        fired: AtomicBool::new(false),
        hook: Mutex::new(Some(HookBox(hook))),
    };
    let target = LocalStore::new(dst.clone());
    let cfg = Config {
        workers: 2,
        range_size: 64 * 1024,
        chunk: 16 * 1024,
        state_dir: t.path().join("state"),
        ..Config::default()
    };
    let stats = Stats::default();
    let cancel = AtomicBool::new(false);
    let out = hbcp_engine::copy(
        &store,
        &target,
        &|src: &dyn Store, sink| src.list("", sink),
        &cfg,
        &stats,
        &cancel,
    )
    .unwrap();
    assert!(out.stop.is_none(), "{:?}", out.stop);
    Case {
        warnings: out.warnings,
        failures: out.failures.len(),
        dst,
        _t: t,
    }
}

#[test]
fn a_large_file_rewritten_mid_copy_is_copied_again_whole() {
    let c = run_case(
        "big",
        64 * 1024,
        Box::new(|p| fs::write(p, pattern(200 * 1024, 9)).unwrap()),
    );
    assert_eq!(c.failures, 0);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("big: changed at the source")),
        "{:?}",
        c.warnings
    );
    assert_eq!(
        fs::read(c.dst.join("big")).unwrap(),
        pattern(200 * 1024, 9),
        "the new version, whole"
    );
}

#[test]
fn a_large_file_truncated_mid_copy_is_copied_at_its_new_size() {
    let c = run_case(
        "big",
        128 * 1024,
        Box::new(|p| fs::write(p, pattern(70 * 1024, 3)).unwrap()),
    );
    assert_eq!(c.failures, 0);
    assert_eq!(fs::read(c.dst.join("big")).unwrap(), pattern(70 * 1024, 3));
}

#[test]
fn a_file_deleted_mid_copy_is_reported_and_not_left_half_written() {
    let c = run_case("big", 64 * 1024, Box::new(|p| fs::remove_file(p).unwrap()));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("big: deleted at the source")),
        "{:?}",
        c.warnings
    );
    assert!(!c.dst.join("big").exists());
    assert_eq!(fs::read(c.dst.join("small")).unwrap(), pattern(1000, 2));
}

#[test]
fn a_small_file_rewritten_before_its_read_is_copied_in_its_new_version() {
    let c = run_case(
        "small",
        0,
        Box::new(|p| fs::write(p, b"rewritten!").unwrap()),
    );
    assert_eq!(c.failures, 0);
    assert_eq!(fs::read(c.dst.join("small")).unwrap(), b"rewritten!");
}
