//! The `hbcp` binary: arguments in, exit code out. The command line becomes a
//! `hbcp_job::JobSpec` (`cli.rs`), the job runs it and shows its progress through
//! `progress::Display`; the exit status is decided in one place, `hbcp_job::exit`.
//! It must never import the stages (planner, engine, verifier, store, hbase): only hbcp-job.

mod cli;
mod cmd;
mod html;
mod logging;
mod progress;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use hbcp_job::{Exit, exit};

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
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return code(if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            });
        }
    };
    progress::set_stats_interval(cli.stats_interval);
    progress::set_quiet(cli.quiet);
    if let Err(msg) = logging::init(&cli) {
        return code(exit::of_error(&anyhow::Error::new(hbcp_job::UsageError(
            msg,
        ))));
    }
    let exit = match cmd::run(cli, std::env::args().collect()) {
        Ok(code) => code,
        Err(e) => exit::of_error(&e),
    };
    if exit == Exit::Usage {
        // Bad input: nothing written, and no folder this run created is left behind.
        exit::undo_created();
    }
    code(exit)
}

/// The process status of an [`Exit`] (docs/ARCHITECTURE.md's exit codes).
fn code(exit: Exit) -> ExitCode {
    ExitCode::from(exit.code())
}
