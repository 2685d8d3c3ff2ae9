//! `hbcp status PLAN`: which shards of a plan are done.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, StatusSpec};

use super::Ctx;
use crate::cli::StatusArgs;

/// The arguments as a [`StatusSpec`], run by the job.
pub(crate) fn run(a: StatusArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Status(StatusSpec {
        plan: a.plan,
        shards: a.shards,
        allow_http: a.allow_http,
    }))
}
