//! `hbcp-gen`: writes synthetic HBase root folders for the benchmark scripts and the sample.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use hbcp_testkit::hbase_tree as tree;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// The small realistic tree bundled in examples/hbase-sample.
    Sample,
    /// About 1.5 GiB: four 256 MiB HFiles, 60 of 1–16 MiB, 500 small.
    Mixed,
    /// 4 × 512 MiB HFiles.
    Large,
    /// 20,000 HFiles of 1–64 KiB (or --files N).
    SmallFiles,
    /// N empty files (--files N), for the scale tests.
    Scale,
}

/// Write a synthetic HBase root folder.
#[derive(Debug, Parser)]
#[command(name = "hbcp-gen")]
struct Args {
    /// Folder to write (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum)]
    preset: Preset,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of files for small-files and scale.
    #[arg(long)]
    files: Option<u64>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.out.exists()
        && std::fs::read_dir(&a.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        eprintln!(
            "hbcp-gen: --out {}: exists and is not empty",
            a.out.display()
        );
        return ExitCode::from(2);
    }
    let r = match a.preset {
        Preset::Sample => tree::generate(&a.out, &tree::Spec::sample(), a.seed),
        Preset::Large => tree::large_files(&a.out, 4, 512 << 20, a.seed),
        Preset::SmallFiles => {
            tree::many_files(&a.out, a.files.unwrap_or(20_000), 1024, 64 * 1024, a.seed)
        }
        Preset::Scale => tree::many_files(&a.out, a.files.unwrap_or(1_000_000), 0, 0, a.seed),
        Preset::Mixed => tree::large_files(&a.out.join("big"), 4, 256 << 20, a.seed)
            .and_then(|_| {
                tree::many_files(&a.out.join("medium"), 60, 1 << 20, 16 << 20, a.seed + 1)
            })
            .and_then(|_| {
                tree::many_files(&a.out.join("small"), 500, 1024, 256 * 1024, a.seed + 2)
            }),
    };
    match r {
        Ok(s) => {
            println!(
                "hbcp-gen: wrote {} ({} files in the last set, {} bytes)",
                a.out.display(),
                s.files,
                s.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hbcp-gen: {}: {e}", a.out.display());
            ExitCode::FAILURE
        }
    }
}
