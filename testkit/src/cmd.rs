//! Running the `hbcp` binary from integration tests. Only the caller knows where Cargo built
//! it (`env!("CARGO_BIN_EXE_hbcp")` exists in the root package's tests, not here), so the
//! path is passed in.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A command line for `hbcp`, built up then run to completion.
#[derive(Debug, Clone)]
pub struct Hbcp {
    bin: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    dir: Option<PathBuf>,
}

/// What a run left: its exit code (-1 when killed by a signal), stdout and stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Exit code, -1 when the process died of a signal.
    pub code: i32,
    /// Standard output, lossy UTF-8.
    pub stdout: String,
    /// Standard error, lossy UTF-8.
    pub stderr: String,
}

impl Run {
    /// Panic with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Hbcp {
    /// A command for the binary at `bin` (pass `env!("CARGO_BIN_EXE_hbcp")`).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Hbcp {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
        }
    }
    /// Add one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }
    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// Set an environment variable for the run.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        self
    }
    /// Remove an inherited environment variable for the run.
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.env.push((k.as_ref().to_owned(), None));
        self
    }
    /// Run in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }
    /// Run to completion (stdin closed).
    pub fn try_run(&self) -> io::Result<Run> {
        let mut c = Command::new(&self.bin);
        c.args(&self.args).stdin(Stdio::null());
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        let o = c.output().map_err(|e| {
            io::Error::new(e.kind(), format!("running {}: {e}", self.bin.display()))
        })?;
        Ok(Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        })
    }
    /// Run to completion; panics if the binary cannot be started (a test helper).
    #[track_caller]
    pub fn run(&self) -> Run {
        self.try_run().unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn runs_a_binary_with_args_env_and_codes() {
        let r = Hbcp::new("/bin/sh")
            .args(["-c", "echo \"$1 $HBCP_X\"; echo err >&2; exit 3", "sh"])
            .arg("a b")
            .env("HBCP_X", "y")
            .run();
        assert_eq!(r.code, 3);
        assert_eq!(r.stdout, "a b y\n");
        assert_eq!(r.stderr, "err\n");
        r.expect_code(3);
        assert!(Hbcp::new("/no/such/hbcp").try_run().is_err());
    }
}
