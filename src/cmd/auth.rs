//! `hbcp auth URL`: which credential an endpoint takes and which permissions it lacks.

use hbcp_job::Exit;
use hbcp_job::spec::{AuthSpec, CommandSpec};

use super::Ctx;
use crate::cli::AuthArgs;

/// The arguments as a [`AuthSpec`], run by the job.
pub(crate) fn run(a: AuthArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    ctx.run(CommandSpec::Auth(AuthSpec {
        url: a.url,
        read_only: a.read_only,
        allow_http: a.allow_http,
    }))
}
