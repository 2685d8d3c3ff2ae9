//! `hbcp restore DST TARGET --generation ID`: a generation back into an empty folder.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, RestoreSpec};

use super::Ctx;
use crate::cli::RestoreArgs;

/// The arguments as a [`RestoreSpec`], run by the job.
pub(crate) fn run(a: RestoreArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Restore(RestoreSpec {
        tuning: a.tuning.spec()?,
        dst: a.dst,
        target: a.target,
        generation: a.generation,
        select: hbcp_job::spec::HbaseSelectSpec {
            table: a.table,
            snapshot: a.snapshot,
            ..Default::default()
        },
        dry_run: a.dry_run,
    }))
}
