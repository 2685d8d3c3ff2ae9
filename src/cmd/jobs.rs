//! `hbcp jobs [list | show ID | clean]`: the jobs this machine ran or runs, and removing old
//! jobs' state.

use hbcp_job::Exit;
use hbcp_job::spec::{CommandSpec, JobsAction, JobsSpec};

use super::Ctx;
use crate::cli::{JobsArgs, JobsCommand};

/// The arguments as a [`JobsSpec`], run by the job.
pub(crate) fn run(a: JobsArgs, ctx: Ctx) -> anyhow::Result<Exit> {
    let action = match a.action {
        None => JobsAction::List { json: a.json },
        Some(JobsCommand::List { json }) => JobsAction::List {
            json: json || a.json,
        },
        Some(JobsCommand::Show { id, json }) => JobsAction::Show {
            id,
            json: json || a.json,
        },
        Some(JobsCommand::Clean {
            older_than,
            all,
            dry_run,
        }) => JobsAction::Clean {
            older_than,
            all,
            dry_run,
        },
    };
    ctx.run(CommandSpec::Jobs(JobsSpec { action }))
}
