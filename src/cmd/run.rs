//! `hbcp run PLAN [--shard I/N]`: execute a plan, or one shard of it.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, RunSpec};

use super::Ctx;
use crate::cli::RunArgs;

/// The arguments as a [`RunSpec`], run by the job.
pub(crate) fn run(a: RunArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Run(RunSpec {
        tuning: a.tuning.spec()?,
        plan: a.plan,
        shard: a.shard,
    }))
}
