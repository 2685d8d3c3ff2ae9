//! `hbcp verify SRC DST`: compare two trees without copying.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, VerifySpec};

use super::Ctx;
use crate::cli::VerifyArgs;

/// The arguments as a [`VerifySpec`], run by the job.
pub(crate) fn run(a: VerifyArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Verify(VerifySpec {
        ends: a.ends.spec(),
        selection: a.selection.spec(),
        hbase: a.hbase.spec(),
        allow_unflushed: a.allow_unflushed,
        verify: a.verify.spec(),
        strict: a.strict,
        workers: a.workers,
        bandwidth: a.max_bandwidth.or(a.cap_mbps),
        report: a.report,
        progress: a.progress.spec(),
        allow_http: a.allow_http,
    }))
}
