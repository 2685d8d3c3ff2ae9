//! `hbcp-gen`: writes synthetic HBase root folders for the benchmark scripts and the sample.
//! Bad input is a message and exit code 2, an I/O failure a message and exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use hbcp_testkit::hbase_tree as tree;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// The small realistic tree bundled in examples/hbase-sample (with --range-size: its HFiles
    /// take the boundary sizes 0, 1, r−1, r, r+1, 3r, 3r±1).
    Sample,
    /// About 1.5 GiB: four 256 MiB HFiles, 60 of 1–16 MiB, 500 of 1–256 KiB.
    Mixed,
    /// 4 × 512 MiB HFiles of random bytes.
    Large,
    /// 20,000 HFiles of 1–64 KiB (or --files N) over tables, regions and families.
    SmallFiles,
    /// N empty files (--files N, default 1,000,000), for the scale tests.
    Scale,
}

/// Write a synthetic HBase root folder, deterministic for a seed.
#[derive(Debug, Parser)]
#[command(name = "hbcp-gen")]
struct Args {
    /// Folder to write (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// What to write.
    #[arg(long, value_enum, required_unless_present = "activity")]
    preset: Option<Preset>,
    /// Instead of writing a new root, apply one round of HBase activity (flushes, a compaction,
    /// a split, a schema change, a new table) to the existing root at --out, seeded by this.
    #[arg(long, conflicts_with_all = ["preset", "files", "range_size"])]
    activity: Option<u64>,
    /// Seed of every name and byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of files for small-files and scale.
    #[arg(long)]
    files: Option<u64>,
    /// Range size whose boundaries the sample's HFile sizes hit: bytes or 64KiB, 8MiB, 1GiB.
    #[arg(long, value_parser = parse_size)]
    range_size: Option<u64>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number of bytes, e.g. 65536 or 64KiB"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("{s:?}: unknown unit {u:?} (use KiB, MiB or GiB)")),
    };
    let v = n
        .checked_mul(mul)
        .ok_or_else(|| format!("{s:?}: too large"))?;
    if v < 2 {
        return Err(format!("{s:?}: a range size is at least 2 bytes"));
    }
    Ok(v)
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let Some(seed) = a.activity {
        if !a.out.join("data").is_dir() {
            eprintln!(
                "hbcp-gen: --out {}: not an HBase root (no data/ folder); --activity changes an existing root",
                a.out.display()
            );
            return ExitCode::from(2);
        }
        return match hbcp_testkit::activity::activity(&a.out, seed, false) {
            Ok(act) => {
                println!(
                    "hbcp-gen: activity on {}: {} files written, {} archived, {} removed",
                    a.out.display(),
                    act.written.len(),
                    act.archived.len(),
                    act.removed.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hbcp-gen: {}: {e}", a.out.display());
                ExitCode::FAILURE
            }
        };
    }
    let Some(preset) = a.preset else {
        eprintln!("hbcp-gen: --preset or --activity is needed");
        return ExitCode::from(2);
    };
    if a.out.exists()
        && std::fs::read_dir(&a.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        eprintln!(
            "hbcp-gen: --out {}: exists and is not an empty folder",
            a.out.display()
        );
        return ExitCode::from(2);
    }
    if a.range_size.is_some() && !matches!(preset, Preset::Sample) {
        eprintln!("hbcp-gen: --range-size applies to --preset sample only");
        return ExitCode::from(2);
    }
    if a.files.is_some() && !matches!(preset, Preset::SmallFiles | Preset::Scale) {
        eprintln!("hbcp-gen: --files applies to --preset small-files and scale only");
        return ExitCode::from(2);
    }
    let out = &a.out;
    let r = match preset {
        Preset::Sample => {
            let mut spec = tree::Spec::sample();
            if let Some(r) = a.range_size {
                spec.hfile_sizes = tree::Spec::boundary_sizes(r);
            }
            tree::generate(out, &spec, a.seed)
        }
        Preset::Large => tree::large_files(out, 4, 512 << 20, a.seed),
        Preset::SmallFiles => {
            tree::many_files(out, a.files.unwrap_or(20_000), 1024, 64 * 1024, a.seed)
        }
        Preset::Scale => tree::many_files(out, a.files.unwrap_or(1_000_000), 0, 0, a.seed),
        Preset::Mixed => (|| {
            let mut s = tree::large_files_in(out, "big", 4, 256 << 20, a.seed)?;
            for part in [
                tree::many_files_in(out, "medium", 60, 1 << 20, 16 << 20, a.seed + 1)?,
                tree::many_files_in(out, "small", 500, 1024, 256 * 1024, a.seed + 2)?,
            ] {
                s.files += part.files;
                s.bytes += part.bytes;
            }
            Ok(s)
        })(),
    };
    match r {
        Ok(s) => {
            println!(
                "hbcp-gen: wrote {}: {} files, {} bytes",
                out.display(),
                s.files,
                s.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hbcp-gen: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
