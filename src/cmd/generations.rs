//! `hbcp generations DST`: the generations of a backup target.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, GenerationsSpec};

use super::Ctx;
use crate::cli::GenerationsArgs;

/// The arguments as a [`GenerationsSpec`], run by the job.
pub(crate) fn run(a: GenerationsArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Generations(GenerationsSpec {
        dst: a.dst,
        json: a.json,
        allow_http: a.allow_http,
    }))
}
