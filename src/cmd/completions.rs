//! `hbcp completions SHELL` and the hidden `hbcp man`: shell completions and the man page,
//! generated from the same clap definitions as `--help`, so that they never drift from it.
//! scripts/release.sh runs both to put them in the .deb.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use clap::CommandFactory;

use crate::cli::Cli;
use hbcp_job::Exit;

/// Print the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hbcp", &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(Exit::Ok)
}

/// Print the man page hbcp(1) on stdout, or with `dir` write it and one page per command
/// (hbcp-copy(1), …, with that command's options and examples) into `dir`.
pub fn man(dir: Option<&Path>) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    match dir {
        Some(d) => {
            // The top page, then one per command (not the hidden ones, nor `help`'s).
            cmd.build();
            let subs = cmd
                .get_subcommands()
                .filter(|c| !c.is_hide_set() && c.get_name() != "help");
            for c in std::iter::once(&cmd).chain(subs) {
                let name = c.get_display_name().unwrap_or(c.get_name());
                let path = d.join(format!("{name}.1"));
                let mut out = Vec::new();
                clap_mangen::Man::new(c.clone()).render(&mut out)?;
                std::fs::write(&path, out)
                    .with_context(|| format!("cannot write the man page {}", path.display()))?;
            }
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            std::io::stdout().write_all(&out)?;
        }
    }
    Ok(Exit::Ok)
}
