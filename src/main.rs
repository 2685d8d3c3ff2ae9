//! The `hbcp` binary: arguments in, exit code out. The work is done by the library crates;
//! the exit codes of docs/ARCHITECTURE.md are decided in one place, `exit.rs`.

// First: its `outln!` is used by the modules below.
#[macro_use]
#[path = "../job/src/exit.rs"]
mod exit;
#[path = "../job/src/genproof.rs"]
mod genproof;
#[path = "../job/src/genstore.rs"]
mod genstore;
#[path = "../job/src/heartbeat.rs"]
mod heartbeat;

mod auth;
#[path = "../job/src/backup.rs"]
mod backup;
#[path = "../job/src/bench.rs"]
mod bench;
mod cli;
#[path = "../job/src/commands.rs"]
mod commands;
mod completions;
mod html;
#[path = "../verifier/src/preflight.rs"]
mod preflight;
mod progress;
mod report;
#[path = "../job/src/rpo.rs"]
mod rpo;
#[path = "../job/src/select.rs"]
mod select;
#[path = "../job/src/sync.rs"]
mod sync;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use exit::{Exit, usage};

/// `HBCP_LOG=debug` (or `info`, `trace`) prints hbcp's own diagnostics on stderr: each retry
/// with the error that caused it and the service's request id. Only hbcp's targets are enabled:
/// the HTTP libraries' own logs could carry signed URLs.
fn init_logging() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let Ok(level) = std::env::var("HBCP_LOG") else {
        return;
    };
    let level = match level.to_ascii_lowercase().as_str() {
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => return,
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(Targets::new().with_target("hbcp", level)))
        .try_init();
}

/// mimalloc's `mi_option_arena_eager_commit` (the 5th entry of `mi_option_e` in mimalloc.h,
/// the same in v2 and v3).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// On Linux mimalloc commits its first arena whole; with 32 or more worker threads that kept
/// about 14 MiB per thread resident whatever the buffers (a download of the 1.6 GiB mixed set at
/// 32 workers peaked at 500 MiB; 200 MiB with eager commit off). The option must be set before
/// the first allocation reserves that arena, which happens before `main`: so this runs as an
/// ELF constructor, before the Rust runtime allocates anything (C code's malloc is not mimalloc).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static MIMALLOC_OPTIONS: extern "C" fn() = {
    extern "C" fn set() {
        // SAFETY: sets one of mimalloc's documented options; it allocates nothing.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
    }
    set
};

fn main() -> ExitCode {
    exit::fill_closed_std_fds();
    init_logging();
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    progress::set_stats_interval(cli.stats_interval);
    let exit = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => exit::of_error(&e),
    };
    if exit == Exit::Usage {
        // Bad input: nothing written, and no folder this run created is left behind.
        exit::undo_created();
    }
    exit.into()
}
