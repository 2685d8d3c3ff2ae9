//! Stamps the build for `hbcp --version`: the git commit, the build date, the target and the
//! object_store version. Each falls back to "unknown" where it cannot be known (a source tarball
//! or `cargo install --path .` of a tree without .git, no git on PATH, no Cargo.lock), so the
//! build never fails for want of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // Only this tree's own repository: a source tree unpacked inside another checkout must not
    // take that checkout's commit.
    let own = git(&dir, &["rev-parse", "--show-toplevel"])
        .and_then(|t| std::fs::canonicalize(t).ok())
        .is_some_and(|t| std::fs::canonicalize(&dir).is_ok_and(|d| d == t));
    let commit = own
        .then(|| git(&dir, &["rev-parse", "--short=12", "HEAD"]))
        .flatten();
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the ref it names (a commit).
    if let Some(git_dir) = own
        .then(|| git(&dir, &["rev-parse", "--absolute-git-dir"]))
        .flatten()
    {
        let git_dir = PathBuf::from(git_dir);
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            let common = git(&dir, &["rev-parse", "--git-common-dir"])
                .map(|c| dir.join(c))
                .unwrap_or(git_dir.clone());
            println!("cargo:rerun-if-changed={}", common.join(r).display());
            println!(
                "cargo:rerun-if-changed={}",
                common.join("packed-refs").display()
            );
        }
    }
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    // SOURCE_DATE_EPOCH (reproducible builds) wins over the clock.
    let when = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    let date = humantime::format_rfc3339_seconds(when).to_string();

    let target = std::env::var("TARGET").unwrap_or_default();
    let object_store = locked_version(&dir.join("Cargo.lock"), "object_store");

    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HBCP_GIT_COMMIT={}", or_unknown(commit));
    println!("cargo:rustc-env=HBCP_BUILD_DATE={date}");
    println!(
        "cargo:rustc-env=HBCP_TARGET={}",
        or_unknown(Some(target).filter(|t| !t.is_empty()))
    );
    println!(
        "cargo:rustc-env=HBCP_OBJECT_STORE={}",
        or_unknown(object_store)
    );
}

/// One line of `git ARGS` run in `dir`, or None (no git, not a repository, an error).
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// The version Cargo.lock pins for `name` (the first entry, if several).
fn locked_version(lock: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(lock).ok()?;
    let needle = format!("name = \"{name}\"");
    let mut lines = text.lines();
    lines.find(|l| l.trim() == needle)?;
    let v = lines.next()?.trim().strip_prefix("version = \"")?;
    Some(v.trim_end_matches('"').to_string())
}
