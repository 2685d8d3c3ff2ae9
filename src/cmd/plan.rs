//! `hbcp plan SRC DST --out FILE`: write the plan of a copy and print its summary.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, PlanSpec};

use super::Ctx;
use crate::cli::PlanArgs;

/// The arguments as a [`PlanSpec`], run by the job.
pub(crate) fn run(a: PlanArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Plan(PlanSpec {
        ends: a.ends.spec(),
        selection: a.selection.spec(),
        hbase: a.hbase.spec(),
        allow_unflushed: a.allow_unflushed,
        wals: a.wals.spec(),
        out: a.out,
        range_size: a.range_size,
        allow_http: a.allow_http,
        json: a.json,
    }))
}
