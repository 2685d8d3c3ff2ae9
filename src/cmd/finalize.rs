//! `hbcp finalize PLAN`: verify the shards of a plan together and write the completion manifest.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, FinalizeSpec};

use super::Ctx;
use crate::cli::FinalizeArgs;

/// The arguments as a [`FinalizeSpec`], run by the job.
pub(crate) fn run(a: FinalizeArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Finalize(FinalizeSpec {
        plan: a.plan,
        verify: a.verify.spec(),
        strict: a.strict,
        workers: a.workers,
        report: a.report,
        allow_http: a.allow_http,
    }))
}
