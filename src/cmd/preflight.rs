//! `hbcp preflight SRC`: the HBase root's inventory and the edits that live only in WALs.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, PreflightSpec};

use super::Ctx;
use crate::cli::PreflightArgs;

/// The arguments as a [`PreflightSpec`], run by the job.
pub(crate) fn run(a: PreflightArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Preflight(PreflightSpec {
        src: a.src,
        wals: a.wals.spec(),
        report: a.report,
        allow_http: a.allow_http,
    }))
}
