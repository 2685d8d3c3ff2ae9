//! `--log-file FILE`, `--log-format text|json`, `-v`/`-q` and `HBCP_LOG`: hbcp's diagnostics
//! through `tracing`. Only hbcp's own targets are enabled (the HTTP libraries' logs could carry
//! signed URLs), and every line written to the log file passes through the job's redaction
//! (`hbcp_job::exit::redact`: the secret environment values, SAS signatures, authorization
//! headers), so the log never holds a secret. The log file also holds every line hbcp prints
//! on stderr (target `hbcp::stderr`) and the job's identity (`hbcp::job`).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::cli::{Cli, LogFormat};

/// The log file, each write redacted before it reaches the disk.
#[derive(Clone)]
struct Redacting {
    file: Arc<Mutex<File>>,
}

impl Write for Redacting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let clean = hbcp_job::exit::redact(&String::from_utf8_lossy(buf));
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = Redacting;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The level of `-v` (count) and `-q`: `None` when neither is given.
fn level_of(verbose: u8, quiet: bool) -> Option<LevelFilter> {
    match (quiet, verbose) {
        (true, _) => Some(LevelFilter::WARN),
        (false, 0) => None,
        (false, 1) => Some(LevelFilter::INFO),
        (false, 2) => Some(LevelFilter::DEBUG),
        (false, _) => Some(LevelFilter::TRACE),
    }
}

/// `HBCP_LOG=error|warn|info|debug|trace`.
fn env_level() -> Option<LevelFilter> {
    Some(
        match std::env::var("HBCP_LOG")
            .ok()?
            .to_ascii_lowercase()
            .as_str()
        {
            "error" => LevelFilter::ERROR,
            "warn" => LevelFilter::WARN,
            "info" => LevelFilter::INFO,
            "debug" => LevelFilter::DEBUG,
            "trace" => LevelFilter::TRACE,
            _ => return None,
        },
    )
}

/// Open `--log-file` (appended to) and install the subscribers: on stderr at `-v`'s level or
/// `HBCP_LOG`'s (nothing by default; the lines hbcp prints itself are not repeated), in the
/// file at `-v`'s level or info. Err: the file cannot be opened (bad input, exit 2).
pub fn init(cli: &Cli) -> Result<(), String> {
    let level = level_of(cli.verbose, cli.quiet);
    let stderr_level = env_level().or(level.filter(|_| !cli.quiet));
    let stderr = stderr_level.map(|l| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_filter(
                Targets::new()
                    .with_target("hbcp", l)
                    .with_target("hbcp::stderr", LevelFilter::OFF),
            )
    });
    let file = match &cli.log_file {
        None => None,
        Some(p) => Some(open(p)?),
    };
    let file_level = level.unwrap_or(LevelFilter::INFO);
    let targets = Targets::new().with_target("hbcp", file_level);
    let (text, json) = match (file, cli.log_format) {
        (None, _) => (None, None),
        (Some(w), LogFormat::Text) => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(w)
                    .with_ansi(false)
                    .with_filter(targets),
            ),
            None,
        ),
        (Some(w), LogFormat::Json) => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(w)
                    .with_filter(targets),
            ),
        ),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(text)
        .with(json)
        .try_init();
    Ok(())
}

fn open(p: &Path) -> Result<Redacting, String> {
    hbcp_job::exit::creating_file(p);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| {
            format!(
                "--log-file {}: cannot be opened for writing: {e}; give a file in a folder that exists and is writable",
                p.display()
            )
        })?;
    Ok(Redacting {
        file: Arc::new(Mutex::new(file)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_v_and_q() {
        assert_eq!(level_of(0, false), None);
        assert_eq!(level_of(1, false), Some(LevelFilter::INFO));
        assert_eq!(level_of(2, false), Some(LevelFilter::DEBUG));
        assert_eq!(level_of(5, false), Some(LevelFilter::TRACE));
        assert_eq!(level_of(2, true), Some(LevelFilter::WARN));
    }
}
