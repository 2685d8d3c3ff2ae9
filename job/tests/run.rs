//! `hbcp_job::run` as a library: a `JobSpec` built without the command line, an observer of
//! its own. The binary's end-to-end tests (tests/) cover every command through clap; these
//! prove the seam itself: the spec is all a run reads, and the observer sees the phases.

use std::path::Path;
use std::sync::{Arc, Mutex};

use hbcp_job::observe::{Observer, Phase, Stats, Watch};
use hbcp_job::spec::{
    CommandSpec, CopySpec, Endpoints, HbaseSelectSpec, JobSpec, OverwriteChoice, ProgressMode,
    ResumeLine, SelectionSpec, Tuning, VerifyChoice, WalSpec,
};
use hbcp_job::{Exit, UsageError};

/// Records what the job told it, and the counters it was handed.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
    stats: Mutex<Option<Arc<Stats>>>,
}

struct RecWatch(Arc<Mutex<Vec<String>>>);

impl Watch for RecWatch {
    fn phase(&self, phase: Phase) {
        self.0.lock().unwrap().push(phase.name().into());
    }
}

impl Drop for RecWatch {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("stopped".into());
    }
}

impl Observer for Recorder {
    fn watch(&self, stats: Arc<Stats>, mode: ProgressMode) -> Box<dyn Watch> {
        self.events.lock().unwrap().push(format!("watch {mode:?}"));
        *self.stats.lock().unwrap() = Some(stats);
        Box::new(RecWatch(self.events.clone()))
    }
}

fn tuning(workers: Option<usize>) -> Tuning {
    Tuning {
        workers,
        range_size: None,
        bandwidth: None,
        max_memory: None,
        verify: VerifyChoice::Checksum,
        strict: false,
        report: None,
        state: None,
        progress: ProgressMode::None,
        overwrite: OverwriteChoice::IfDifferent,
        allow_http: false,
        s2s: true,
    }
}

fn copy_spec(src: &Path, dst: &Path, workers: Option<usize>) -> JobSpec {
    JobSpec {
        command: CommandSpec::Copy(CopySpec {
            ends: Endpoints {
                src: src.display().to_string(),
                dst: dst.display().to_string(),
            },
            allow_unflushed: false,
            delete_extra: false,
            max_delete: 0.05,
            force: false,
            wals: WalSpec::default(),
            selection: SelectionSpec::default(),
            hbase: HbaseSelectSpec::default(),
            tuning: tuning(workers),
            dry_run: false,
        }),
        azure_endpoint: None,
        put_md5: false,
        resume: ResumeLine::of(["hbcp".to_string(), "copy".into()]),
    }
}

#[test]
fn a_spec_built_without_the_command_line_copies_verifies_and_shows_its_phases() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    let files = [
        ("a/b/one", vec![7u8; 300_000]),
        ("two", b"hello".to_vec()),
        ("a/empty", vec![]),
    ];
    for (k, v) in &files {
        std::fs::write(src.join(k), v).unwrap();
    }
    let dst = t.path().join("dst");
    let rec = Arc::new(Recorder::default());
    let exit = hbcp_job::run(copy_spec(&src, &dst, Some(2)), rec.clone()).unwrap();
    assert_eq!(exit, Exit::Ok);
    for (k, v) in &files {
        assert_eq!(&std::fs::read(dst.join(k)).unwrap(), v, "{k}");
    }
    // The observer was started once in the spec's mode, saw the verify phase, and was stopped
    // before the run returned.
    assert_eq!(
        *rec.events.lock().unwrap(),
        ["watch None", "verify", "stopped"]
    );
    // The counters it was handed are the run's: every byte copied and verified.
    let stats = rec.stats.lock().unwrap().clone().unwrap();
    let total: u64 = files.iter().map(|(_, v)| v.len() as u64).sum();
    let copied = stats
        .bytes_copied
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(copied, total);
    assert_eq!(
        stats
            .bytes_verified
            .load(std::sync::atomic::Ordering::Relaxed),
        total
    );
}

#[test]
fn a_spec_with_an_impossible_worker_count_is_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let dst = t.path().join("dst");
    let rec = Arc::new(Recorder::default());
    let err = hbcp_job::run(copy_spec(&src, &dst, Some(0)), rec.clone()).unwrap_err();
    let usage = err.downcast_ref::<UsageError>().expect("a usage error");
    assert!(usage.0.contains("--workers 0"), "{}", usage.0);
    // Nothing ran: no display was started and nothing was copied.
    assert!(rec.events.lock().unwrap().is_empty());
    assert!(!dst.join("f").exists());
}
