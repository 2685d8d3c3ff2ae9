//! `hbcp restore --table NS:NAME` / `--snapshot NAME`: one table or one snapshot out of a
//! backup generation, so that disaster recovery brings back what was lost without restoring
//! the whole root. The generation is seen as a root ([`GenView`], its manifest in a map on
//! disk), the table or snapshot is resolved in it by the same selection as `copy --table` /
//! `--snapshot` ([`crate::select::prepare`]), and copied and verified by the same path
//! ([`crate::commands::copy_view`]).

use std::sync::Arc;

use anyhow::{Context, Result};
use hbcp_planner::SelectSpec;

use crate::commands::{End, copy_view, selection};
use crate::genstore::GenView;
use crate::spec::RestoreSpec;
use crate::{Exit, usage};

/// Restore what `spec` (a table or snapshot selection) names of generation `id` of `backup`
/// to `dst`. Into an empty target, or the target of the same interrupted restore.
pub(crate) fn restore_selection(
    a: RestoreSpec,
    spec: SelectSpec,
    backup: End,
    id: u64,
    dst: End,
    observer: &Arc<dyn crate::Observer>,
) -> Result<Exit> {
    let display = backup.url.display.clone();
    // The generation's map: flat memory at any file count, gone when the restore ends.
    let scratch = tempfile::Builder::new()
        .prefix("hbcp-restore-")
        .tempdir()
        .context("cannot create a scratch folder in the system's temporary folder")?;
    let (_, view) = GenView::open(backup.store.clone(), id, &scratch.path().join("gen.zst"))?;
    let generation = End {
        url: backup.url.clone(),
        store: Arc::new(view),
    };
    let prep = crate::select::prepare(&generation, &spec, selection(&[])?, false)?;
    let Some(view) = prep.view else {
        anyhow::bail!("a table or snapshot selection resolved to no view");
    };
    let mut identity = vec![format!("\0restore:{id}")];
    identity.extend(spec.describe());
    copy_view(
        observer,
        "restore",
        (generation, dst),
        (&spec, view, prep.sel),
        &identity,
        a.tuning,
        None,
        a.dry_run,
        |job| {
            job.cfg.source_label = format!("{display} generation {id}");
            if !hbcp_state::journal::exists_in(&job.cfg.state_dir)
                && !hbcp_engine::decide::target_is_empty(job.dst.store.as_ref())?
            {
                return usage(format!(
                    "target {}: not empty; restore into an empty folder (a restore that was interrupted resumes into its own target)",
                    job.dst.url.display
                ));
            }
            Ok(())
        },
    )
}
