//! `hbcp sync SRC DST [--watch]`: bring a target up to date with its source, once or in cycles.

use hbcp_job::Exit;
use hbcp_job::spec::{self, CommandSpec, SyncSpec};

use super::Ctx;
use crate::cli::SyncArgs;

/// The arguments as a [`SyncSpec`], run by the job.
pub(crate) fn run(a: SyncArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    let tuning = a.tuning.spec()?;
    ctx.run(CommandSpec::Sync(SyncSpec {
        max_delete: spec::share("--max-delete", &a.max_delete)?,
        interval: spec::interval(&a.interval)?,
        tuning,
        ends: a.ends.spec(),
        allow_unflushed: a.allow_unflushed,
        wals: a.wals.spec(),
        selection: a.selection.spec(),
        delete: a.delete,
        dry_run: a.dry_run,
        force: a.force,
        watch: a.watch,
        recheck: a.recheck,
    }))
}
