//! `hbcp snapshots SRC`: the snapshots of an HBase root.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, SnapshotsSpec};

use super::Ctx;
use crate::cli::SnapshotsArgs;

/// The arguments as a [`SnapshotsSpec`], run by the job.
pub(crate) fn run(a: SnapshotsArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Snapshots(SnapshotsSpec {
        src: a.src,
        json: a.json,
        allow_http: a.allow_http,
    }))
}
