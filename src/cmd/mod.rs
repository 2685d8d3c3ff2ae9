//! One file per command: its arguments become a [`hbcp_job::JobSpec`], the job runs it (or the
//! binary answers itself: `report`, `completions`, `man`), and its exit status comes back. No
//! file here imports a sibling: what several commands share (the argument groups and their
//! conversion to the spec) is in `cli.rs`, the run's context in [`Ctx`].

mod auth;
mod backup;
mod bench;
mod completions;
mod copy;
mod finalize;
mod generations;
mod jobs;
mod plan;
mod preflight;
mod report;
mod restore;
mod run;
mod snapshots;
mod status;
mod sync;
mod verify;

use std::sync::Arc;

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, JobSpec, ResumeLine};

use crate::cli::{Cli, Command};

/// What every run of the job shares, whatever its command.
pub(crate) struct Ctx {
    azure_endpoint: Option<String>,
    put_md5: bool,
    /// The command line, for the resume line.
    args: Vec<String>,
}

impl Ctx {
    /// Run `command` with this invocation's shared options, its progress shown by
    /// [`crate::progress::Display`].
    pub(crate) fn run(self, command: CommandSpec) -> anyhow::Result<Exit> {
        let spec = JobSpec {
            command,
            azure_endpoint: self.azure_endpoint,
            put_md5: self.put_md5,
            resume: ResumeLine::of(self.args),
        };
        hbcp_job::run(spec, Arc::new(crate::progress::Display))
    }
}

/// Run the command of `cli`; `args` is the process's command line (for the resume line).
pub(crate) fn run(cli: Cli, args: Vec<String>) -> anyhow::Result<Exit> {
    let ctx = Ctx {
        azure_endpoint: cli.azure_endpoint(),
        put_md5: cli.put_md5(),
        args,
    };
    match cli.command {
        Command::Copy(a) => copy::run(a, ctx),
        Command::Plan(a) => plan::run(a, ctx),
        Command::Run(a) => run::run(a, ctx),
        Command::Sync(a) => sync::run(a, ctx),
        Command::Finalize(a) => finalize::run(a, ctx),
        Command::Status(a) => status::run(a, ctx),
        Command::Verify(a) => verify::run(a, ctx),
        Command::Bench(a) => bench::run(a, ctx),
        Command::Preflight(a) => preflight::run(a, ctx),
        Command::Snapshots(a) => snapshots::run(a, ctx),
        Command::Backup(a) => backup::run(a, ctx),
        Command::Generations(a) => generations::run(a, ctx),
        Command::Restore(a) => restore::run(a, ctx),
        Command::Auth(a) => auth::run(a, ctx),
        Command::Jobs(a) => jobs::run(a, ctx),
        Command::Report(a) => report::run(&a),
        Command::Completions(a) => completions::completions(a.shell),
        Command::Man(a) => completions::man(a.dir.as_deref()),
    }
}
