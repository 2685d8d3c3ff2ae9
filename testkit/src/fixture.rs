//! The real HBase roots, snapshots and HFiles in `tests/fixtures/hbase-real`, unpacked into a
//! folder a test owns (the fixtures themselves are never touched).

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

/// `tests/fixtures/hbase-real` of this repository.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hbase-real")
}

/// Unpack the fixture `name` (a path under [`fixtures_dir`], e.g.
/// `rootdirs/hbase-2.2.3-AdamSai.tar.gz`) into `dest` (created if missing) and return `dest`.
/// `.tar.gz`/`.tgz` and `.zip` are unpacked; a lone `.gz` is inflated to `dest/<name without
/// .gz>`; anything else (an `.hfile`) is copied to `dest/<file name>`. Archive entries that
/// would land outside `dest` are refused.
pub fn extract_fixture(name: &str, dest: &Path) -> io::Result<PathBuf> {
    let src = fixtures_dir().join(name);
    let err = |e: io::Error| io::Error::new(e.kind(), format!("fixture {}: {e}", src.display()));
    fs::create_dir_all(dest)?;
    let file_name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let f = File::open(&src).map_err(err)?;
    if file_name.ends_with(".tar.gz") || file_name.ends_with(".tgz") {
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(f)));
        ar.set_preserve_permissions(false);
        ar.unpack(dest).map_err(err)?; // unpack refuses `..` and absolute entries
    } else if file_name.ends_with(".zip") {
        let mut z =
            zip::ZipArchive::new(BufReader::new(f)).map_err(|e| err(io::Error::other(e)))?;
        for i in 0..z.len() {
            let mut e = z.by_index(i).map_err(|e| err(io::Error::other(e)))?;
            let Some(rel) = e.enclosed_name() else {
                return Err(err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("entry {:?} leaves the destination", e.name()),
                )));
            };
            if rel.components().any(|c| matches!(c, Component::ParentDir)) {
                continue;
            }
            let out = dest.join(rel);
            if e.is_dir() {
                fs::create_dir_all(&out)?;
            } else {
                if let Some(p) = out.parent() {
                    fs::create_dir_all(p)?;
                }
                io::copy(&mut e, &mut File::create(&out)?).map_err(err)?;
            }
        }
    } else if let Some(stem) = file_name.strip_suffix(".gz") {
        let mut gz = flate2::read::GzDecoder::new(BufReader::new(f));
        io::copy(&mut gz, &mut File::create(dest.join(stem))?).map_err(err)?;
    } else {
        drop(f);
        fs::copy(&src, dest.join(&file_name)).map_err(err)?;
    }
    Ok(dest.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_fixtures_unpack() {
        let t = tempfile::tempdir().unwrap();
        let d = extract_fixture(
            "rootdirs/hbase-2.2.3-AdamSai.tar.gz",
            &t.path().join("root"),
        )
        .unwrap();
        let dig = crate::tree_digest(&d);
        assert!(
            dig.keys().any(|k| k.ends_with("hbase.version")),
            "{:?}",
            dig.keys().take(10).collect::<Vec<_>>()
        );
        let z = extract_fixture("snapshots/EndToEndIT-snapshot.zip", &t.path().join("z")).unwrap();
        assert!(!crate::tree_digest(&z).is_empty());
        let g = extract_fixture(
            "apache-hbase/TestCompaction_HFileWithCorruptBlock.gz",
            &t.path().join("g"),
        )
        .unwrap();
        let f = fs::read(g.join("TestCompaction_HFileWithCorruptBlock")).unwrap();
        assert!(f.len() > 4, "inflated");
        assert!(extract_fixture("no/such.tar.gz", &t.path().join("n")).is_err());
    }
}
