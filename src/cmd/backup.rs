//! `hbcp backup SRC DST`: a new point-in-time generation, then the retention policy.

use hbcp_job::Exit;
use hbcp_job::spec::{self, BackupSpec, CommandSpec};

use super::Ctx;
use crate::cli::BackupArgs;

/// The arguments as a [`BackupSpec`], run by the job.
pub(crate) fn run(a: BackupArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    let tuning = a.tuning.spec()?;
    ctx.run(CommandSpec::Backup(BackupSpec {
        tuning,
        ends: a.ends.spec(),
        keep: a.keep,
        keep_last: a.keep_last,
        keep_hourly: a.keep_hourly,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        dry_run: a.dry_run,
        max_delete: spec::share("--max-delete", &a.max_delete)?,
        force: a.force,
        allow_unflushed: a.allow_unflushed,
        wals: a.wals.spec(),
        selection: a.selection.spec(),
    }))
}
