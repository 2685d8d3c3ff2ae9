//! `hbcp bench DST`: measure an endpoint's throughput with synthetic files.

use hbcp_job::Exit;
use hbcp_job::spec::{BenchSpec, CommandSpec};

use super::Ctx;
use crate::cli::BenchArgs;

/// The arguments as a [`BenchSpec`], run by the job.
pub(crate) fn run(a: BenchArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Bench(BenchSpec {
        dst: a.dst,
        size: a.size,
        files: a.files,
        workers: a.workers,
        range_size: a.range_size,
        report: a.report,
        allow_http: a.allow_http,
    }))
}
