//! How every command ends, written once (issue #16): the exit statuses of docs/ARCHITECTURE.md
//! and their codes, the decision of which status a run that stopped early gets, the resume line (with
//! every secret taken out), and standard output that a closed pipe ends quietly instead of with
//! a panic. Commands call these; none of them builds a resume line or maps a status itself.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use hbcp_engine::Stop;

use crate::spec::ResumeLine;

/// Write one line on standard error, ignoring a failure: `eprintln!` panics when stderr is a
/// closed pipe (EPIPE) or a closed descriptor (EBADF, `2>&-`); a diagnostic that cannot be
/// shown must not change how the run ends.
pub fn err_line(args: std::fmt::Arguments<'_>) {
    // The log file (`--log-file`) holds what stderr said.
    tracing::info!(target: "hbcp::stderr", "{args}");
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` that never panics ([`err_line`]); the binary writes standard error through it.
#[macro_export]
macro_rules! errln {
    () => {
        $crate::exit::err_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::exit::err_line(format_args!($($arg)*))
    };
}

/// Exit statuses of docs/ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: complete and verified.
    Ok,
    /// 1: finished, but something failed or did not verify.
    Failed,
    /// 2: bad usage or bad input, found before anything was written.
    Usage,
    /// 3: interrupted, resumable (a signal, a full disk, a journal that cannot be written).
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Interrupted => 3,
        }
    }
}

/// Bad usage or bad input: printed as one line, exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand to fail with exit 2.
pub fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(msg.into()).into())
}

/// The run could not go on and can be resumed once the cause is fixed (a journal that cannot
/// be written): exit 3, with the resume line.
#[derive(Debug)]
pub struct Resumable(pub String);

impl std::fmt::Display for Resumable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Resumable {}

/// An engine error that ended a command: a journal that cannot be opened or written is a
/// resumable stop (3: fix the cause, run again); anything else is an error (1).
pub(crate) fn engine_error(e: hbcp_engine::Error, what: &str) -> anyhow::Error {
    match e {
        hbcp_engine::Error::Journal { .. } => Resumable(format!("{what}: {e}")).into(),
        e => anyhow::Error::new(e).context(what.to_string()),
    }
}

/// Folders this run created at a local target or for its state, shallowest first, and whether
/// each goes with its content (a state folder) or only when empty.
static CREATED: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());

/// The folder `path` is about to be created: it and its missing ancestors are recorded, so that
/// a run that ends with bad input (exit 2: nothing written) removes them again. `whole`: the
/// folder goes with what this run put in it (a new job's state folder: its fresh journal).
pub(crate) fn creating(path: &Path, whole: bool) {
    let mut missing = Vec::new();
    let mut p = Some(path);
    while let Some(x) = p.filter(|x| !x.as_os_str().is_empty() && !x.exists()) {
        missing.push((x.to_path_buf(), whole && x == path));
        p = x.parent();
    }
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    created.extend(missing.into_iter().rev());
}

/// Files a run is about to create in a folder it may have to remove again (the target lock):
/// removed by [`undo_created`] when they are still empty (a released lock is an empty file).
static CREATED_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The file `path` is about to be created (if it does not exist yet): see [`CREATED_FILES`].
pub fn creating_file(path: &Path) {
    if !path.exists() {
        let mut files = CREATED_FILES.lock().unwrap_or_else(|e| e.into_inner());
        files.push(path.to_path_buf());
    }
}

/// The folders and files recorded so far are not this run's to remove (another live run holds
/// the target and makes them): forget them.
pub(crate) fn forget_created() {
    CREATED.lock().unwrap_or_else(|e| e.into_inner()).clear();
    CREATED_FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Bad input ended the run: remove the empty files [`creating_file`] recorded, then the
/// folders [`creating`] recorded, deepest first (a folder that is not `whole` only if it is
/// empty).
pub fn undo_created() {
    for f in CREATED_FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        if std::fs::metadata(f).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(f);
        }
    }
    let created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    for (p, whole) in created.iter().rev() {
        let _ = if *whole {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_dir(p)
        };
    }
}

/// Set once a command starts writing at its target (the engine runs): from then on no error
/// is "bad input, nothing written".
static WRITING: AtomicBool = AtomicBool::new(false);

/// Set by the signal handler with the run's own flag: read where that flag is not at hand (a
/// verification waiting for the bandwidth limit ends its wait).
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// A signal asked the run to stop.
pub(crate) fn signalled() -> bool {
    SIGNALLED.load(Relaxed)
}

/// The command is about to write at its target.
pub(crate) fn writing() {
    WRITING.store(true, Relaxed);
}

/// The store error inside an error that ended a command, if there is one (the crates' errors
/// wrap it transparently, so it is not in the `source()` chain itself).
fn store_error(e: &anyhow::Error) -> Option<&hbcp_store::Error> {
    e.chain().find_map(|c| {
        c.downcast_ref::<hbcp_store::Error>()
            .or_else(|| match c.downcast_ref::<hbcp_engine::Error>() {
                Some(hbcp_engine::Error::Store(s)) => Some(s),
                _ => None,
            })
            .or_else(|| match c.downcast_ref::<hbcp_verifier::Error>() {
                Some(hbcp_verifier::Error::Store(s)) => Some(s),
                _ => None,
            })
            .or_else(|| match c.downcast_ref::<hbcp_state::Error>() {
                Some(hbcp_state::Error::Store(s)) => Some(s),
                _ => None,
            })
    })
}

/// The status of an error that ended a command, and its line (every line passes through the
/// redactor):
/// - bad usage or input, or a request the store refuses (access denied, a bad URL or key) found
///   before anything was written: 2, one line — the same in every command;
/// - such a refusal after the command began writing, or a resumable stop (a journal that
///   cannot be written): 3, with the resume line;
/// - a service or network failure that may pass (HTTP 5xx, a reset) in a command that resumes
///   (copy, run, sync, backup, restore): 3, with the resume line;
/// - anything else: 1.
pub fn of_error(e: &anyhow::Error) -> Exit {
    let refused = store_error(e).is_some_and(hbcp_store::Error::is_bad_input);
    let passing = store_error(e).is_some_and(hbcp_store::Error::is_retryable) && resumes();
    let line = redact(&format!("{e:#}"));
    let exit = if let Some(u) = e.downcast_ref::<UsageError>() {
        errln!("hbcp: {}", redact(&u.0));
        Exit::Usage
    } else if refused && !WRITING.load(Relaxed) {
        errln!("hbcp: {line}");
        Exit::Usage
    } else if refused || passing || e.downcast_ref::<Resumable>().is_some() {
        errln!("hbcp: stopped: {line}");
        print_resume("nothing partial is visible at the target; fix the cause and");
        Exit::Interrupted
    } else {
        errln!("hbcp: error: {line}");
        Exit::Failed
    };
    crate::jobs::ended(exit, Some(&line));
    exit
}

/// The resume line of this process's run, set once by [`crate::run`] when its command is one
/// that the same command line resumes (copy, run, sync, backup, restore).
static RESUME: OnceLock<ResumeLine> = OnceLock::new();

/// This process runs a command that `line` resumes (set once, by [`crate::run`]).
pub(crate) fn set_resume(line: ResumeLine) {
    let _ = RESUME.set(line);
}

/// Whether this process runs a command that the same command line resumes.
fn resumes() -> bool {
    RESUME.get().is_some()
}

/// The resume line of this run (empty when its command does not resume).
pub(crate) fn resume_line() -> (String, bool) {
    RESUME
        .get()
        .map(|r| (r.line.clone(), r.redacted))
        .unwrap_or_default()
}

/// How an engine run that did not reach its end ends: the status, the status text of the
/// report, and the lines on stderr (the resume line among them). `None`: it ran to the end.
///
/// - The source listing failed before anything was written at the target: bad input, 2.
/// - The listing failed after bytes were written, or a fatal stop (disk full, a journal that
///   cannot be written, the target refused): 3, resumable once the cause is fixed.
/// - A signal: 3.
///
/// `hidden` says what the target does not show yet (a backup's generation), when it is more
/// than "nothing partial".
pub(crate) fn early_end(
    stop: Option<&Stop>,
    interrupted: bool,
    wrote: bool,
    hidden: Option<&str>,
) -> Option<(Exit, String)> {
    match stop {
        Some(Stop::Listing(msg)) if !wrote => {
            errln!("hbcp: cannot list the source: {}", redact(msg));
            Some((Exit::Usage, "bad input".into()))
        }
        Some(Stop::Listing(msg) | Stop::Fatal(msg)) => {
            errln!("hbcp: stopped: {}", redact(msg));
            print_resume(&format!(
                "{}; fix the cause and",
                hidden.unwrap_or("nothing partial is visible at the target")
            ));
            Some((Exit::Interrupted, format!("stopped: {}", redact(msg))))
        }
        Some(Stop::Interrupted) => Some(interrupted_end(hidden)),
        None if interrupted => Some(interrupted_end(hidden)),
        None => None,
    }
}

/// Whether an engine run wrote anything at the target (bytes, files or folders).
pub(crate) fn wrote(stats: &hbcp_engine::Stats, outcome: &hbcp_engine::Outcome) -> bool {
    stats.bytes_copied.load(Relaxed) > 0 || stats.files_copied.load(Relaxed) > 0 || outcome.dirs > 0
}

fn interrupted_end(hidden: Option<&str>) -> (Exit, String) {
    match hidden {
        Some(h) => print_resume(&format!("interrupted; {h};")),
        None => print_resume("interrupted;"),
    }
    (Exit::Interrupted, "interrupted".into())
}

/// Text made safe to print: secret URL parameters, `Authorization` and bearer values, and the
/// values of the environment's secret variables are replaced by `REDACTED`.
pub fn redact(text: &str) -> String {
    let env = hbcp_store::redact::env_secrets();
    let refs: Vec<&str> = env.iter().map(String::as_str).collect();
    hbcp_store::redact::redact_text(text, &refs)
}

/// A command line, quoted for a shell, with every secret replaced by `REDACTED` (a URL's SAS
/// signature, a password, the value of a secret environment variable); and whether something
/// was replaced.
pub(crate) fn resume_command(args: impl IntoIterator<Item = String>) -> (String, bool) {
    let env = hbcp_store::redact::env_secrets();
    let refs: Vec<&str> = env.iter().map(String::as_str).collect();
    let mut redacted = false;
    let line = args
        .into_iter()
        .map(|a| {
            let safe = hbcp_store::redact::redact_text(&hbcp_store::redact::redact_url(&a), &refs);
            redacted |= safe != a;
            shell_quote(&safe)
        })
        .collect::<Vec<_>>()
        .join(" ");
    (line, redacted)
}

/// `hbcp: {lead} resume with:` and the command line, secrets removed; when one was, a line that
/// says how to give it again.
pub(crate) fn print_resume(lead: &str) {
    let (line, redacted) = resume_line();
    errln!("hbcp: {lead} resume with:\n  {line}");
    if redacted {
        errln!(
            "hbcp: secrets are not shown (REDACTED): put the URL's SAS back in its place, or \
             give it in AZURE_STORAGE_SAS_TOKEN"
        );
    }
}

/// SIGINT / SIGTERM: the first sets the returned flag (the run stops taking work, abandons
/// what it has not made durable, journals what it has, and exits 3 with the resume line) and
/// says so at once; a second ends the process at once, exit 3, with the resume line (what is
/// journaled is durable, and nothing partial is ever visible, as after kill -9).
pub(crate) fn install_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    // Written from the signal handler: made before, so the handler only calls write(2) and
    // _exit(2), which are async-signal-safe.
    let (line, redacted) = resume_line();
    let first: &'static [u8] =
        b"hbcp: stopping: no new work; what is durable is journaled (a second signal stops at once)\n";
    let second: &'static [u8] = Box::leak(
        format!(
            "hbcp: stopped at once by a second signal; nothing partial is visible at the target; resume with:\n  {line}\n{}",
            if redacted { "hbcp: secrets are not shown (REDACTED): put the URL's SAS back in its place, or give it in AZURE_STORAGE_SAS_TOKEN\n" } else { "" }
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let f = flag.clone();
        let action = move || {
            SIGNALLED.store(true, Relaxed);
            let msg = if f.swap(true, Relaxed) { second } else { first };
            // SAFETY: write(2) on stderr from a buffer that lives for the whole process.
            unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
            if msg.as_ptr() == second.as_ptr() {
                signal_hook::low_level::exit(3);
            }
        };
        // SAFETY: the action only loads/stores an atomic, calls write(2) and _exit(2).
        unsafe { signal_hook::low_level::register(sig, action) }?;
    }
    Ok(flag)
}

/// A word as a POSIX shell reads it back.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The status the process ends with if standard output is closed under it: set by a command
/// once it knows its outcome (until then, 3: the run did not get to say its result).
static ON_CLOSED_STDOUT: AtomicU8 = AtomicU8::new(3);

/// The outcome is known: a closed standard output from now on ends the process with it.
pub(crate) fn settle(e: Exit) {
    ON_CLOSED_STDOUT.store(e.code(), Relaxed);
}

/// Write one line on standard output. When the reader has gone (`hbcp verify … | head -1`),
/// the process ends at once, quietly, as a program killed by SIGPIPE would, with the status
/// [`settle`] set (3 before: interrupted, resumable; everything journaled is durable). Any
/// other write error is ignored, as `println!`'s would not be (it panics).
pub fn out_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            let code = ON_CLOSED_STDOUT.load(Relaxed);
            crate::jobs::ended_quietly(code);
            std::process::exit(code.into());
        }
    }
}

/// `println!` that ends the process quietly on a closed pipe instead of panicking
/// ([`out_line`]); the binary writes standard output through it only.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::exit::out_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::exit::out_line(format_args!($($arg)*))
    };
}

/// Standard input, output and error that are closed when the process starts (`2>&-`) are
/// opened on `/dev/null` first: else the next file hbcp opens (a journal, a staging file)
/// would take descriptor 2, and a diagnostic line would be written into it.
pub fn fill_closed_std_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only asks whether the descriptor is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: open(2) of a constant path; the descriptor is the lowest free one, `fd`.
            let got = unsafe {
                libc::open(
                    c"/dev/null".as_ptr(),
                    if fd == 0 {
                        libc::O_RDONLY
                    } else {
                        libc::O_WRONLY
                    },
                )
            };
            if got >= 0 && got != fd {
                // SAFETY: duplicate onto the closed descriptor, then drop the spare one.
                unsafe {
                    libc::dup2(got, fd);
                    libc::close(got);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_designs() {
        let all = [Exit::Ok, Exit::Failed, Exit::Usage, Exit::Interrupted];
        assert_eq!(all.map(Exit::code), [0, 1, 2, 3]);
    }

    #[test]
    fn a_listing_failure_is_bad_input_only_before_anything_was_written() {
        let stop = Stop::Listing("boom".into());
        assert_eq!(
            early_end(Some(&stop), false, false, None).unwrap().0,
            Exit::Usage
        );
        assert_eq!(
            early_end(Some(&stop), false, true, None).unwrap().0,
            Exit::Interrupted
        );
        let fatal = Stop::Fatal("full".into());
        assert_eq!(
            early_end(Some(&fatal), false, false, None).unwrap().0,
            Exit::Interrupted
        );
        assert_eq!(
            early_end(None, true, false, None).unwrap().0,
            Exit::Interrupted
        );
        assert!(early_end(None, false, true, None).is_none());
    }

    #[test]
    fn shell_quote_round_trips_quotes() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("x?sv=1&sig=REDACTED"), "'x?sv=1&sig=REDACTED'");
    }
}
