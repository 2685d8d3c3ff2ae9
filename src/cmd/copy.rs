//! `hbcp copy SRC DST`: plan, copy and verify in one go; run again after a crash and it resumes.

use hbcp_job::Exit;
use hbcp_job::spec::{self, CommandSpec, CopySpec};

use super::Ctx;
use crate::cli::CopyArgs;

/// The arguments as a [`CopySpec`], run by the job.
pub(crate) fn run(a: CopyArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    let tuning = a.tuning.spec()?;
    ctx.run(CommandSpec::Copy(CopySpec {
        max_delete: spec::share("--max-delete", &a.max_delete)?,
        tuning,
        ends: a.ends.spec(),
        allow_unflushed: a.allow_unflushed,
        delete_extra: a.delete_extra,
        force: a.force,
        wals: a.wals.spec(),
        selection: a.selection.spec(),
        hbase: a.hbase.spec(),
        dry_run: a.dry_run,
    }))
}
