//! What a copied tree must equal: a digest of every file (size and xxh3-64) and every empty
//! folder under a root, compared with a readable diff, plus the two ways tests damage a copy
//! (`flip_byte`, `truncate`). The walk follows no symlink and skips the target's top-level
//! `.hbcp` folder (hbcp's own state), so a source and its copy digest the same.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

/// One entry of a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        /// Length in bytes.
        size: u64,
        /// xxh3-64 of the content.
        xxh3_64: u64,
    },
    /// A folder with nothing in it (folders with content are implied by their files).
    EmptyDir,
    /// A symbolic link, not followed; its target as written.
    Symlink {
        /// The link's target.
        target: String,
    },
}

/// Relative key (`/`-separated, lossy UTF-8) → node, in key order.
pub type Digest = BTreeMap<String, Node>;

/// The digest of the tree under `root`. Panics with the path on an I/O error (a test helper);
/// use [`try_tree_digest`] to handle errors.
pub fn tree_digest(root: impl AsRef<Path>) -> Digest {
    let root = root.as_ref();
    try_tree_digest(root).unwrap_or_else(|e| panic!("digest of {}: {e}", root.display()))
}

/// The digest of the tree under `root`.
pub fn try_tree_digest(root: &Path) -> io::Result<Digest> {
    let mut out = Digest::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Digest) -> io::Result<()> {
    let mut any = false;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let key = p
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        if dir == root && key == ".hbcp" {
            continue;
        }
        any = true;
        let ft = e.file_type()?; // does not follow symlinks
        if ft.is_symlink() {
            let target = fs::read_link(&p)?.to_string_lossy().into_owned();
            out.insert(key, Node::Symlink { target });
        } else if ft.is_dir() {
            walk(root, &p, out)?;
        } else {
            out.insert(key, file_node(&p)?);
        }
    }
    if !any && dir != root {
        let key = dir
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        out.insert(key, Node::EmptyDir);
    }
    Ok(())
}

fn file_node(p: &Path) -> io::Result<Node> {
    let mut f = File::open(p)?;
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Node::File {
        size,
        xxh3_64: h.digest(),
    })
}

/// The differences between two digests, one line each (empty when equal): `only in a: key`,
/// `only in b: key`, `differs: key: a … vs b …`.
pub fn diff_digests(a: &Digest, b: &Digest) -> Vec<String> {
    let mut out = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => out.push(format!("only in a: {k} ({va:?})")),
            Some(vb) if vb != va => out.push(format!("differs:   {k}: a {va:?} vs b {vb:?}")),
            Some(_) => {}
        }
    }
    for (k, vb) in b {
        if !a.contains_key(k) {
            out.push(format!("only in b: {k} ({vb:?})"));
        }
    }
    out
}

/// Panics, listing the differences (at most 50 lines), unless the trees under `a` and `b`
/// hold the same files with the same bytes and the same empty folders.
pub fn assert_trees_equal(a: impl AsRef<Path>, b: impl AsRef<Path>) {
    let (a, b) = (a.as_ref(), b.as_ref());
    let d = diff_digests(&tree_digest(a), &tree_digest(b));
    if !d.is_empty() {
        let shown: Vec<&str> = d.iter().take(50).map(String::as_str).collect();
        panic!(
            "trees differ: a = {}, b = {} ({} differences)\n  {}{}",
            a.display(),
            b.display(),
            d.len(),
            shown.join("\n  "),
            if d.len() > 50 { "\n  …" } else { "" }
        );
    }
}

/// Invert every bit of the byte at `offset` (which must be inside the file).
pub fn flip_byte(path: impl AsRef<Path>, offset: u64) -> io::Result<()> {
    let path = path.as_ref();
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    if offset >= len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: offset {offset} is past its {len} bytes",
                path.display()
            ),
        ));
    }
    let mut b = [0u8];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut b)?;
    b[0] = !b[0];
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(&b)
}

/// Cut (or zero-extend) the file at `path` to `len` bytes.
pub fn truncate(path: impl AsRef<Path>, len: u64) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.set_len(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_sees_content_empty_dirs_and_skips_top_level_hbcp() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for d in [&a, &b] {
            fs::create_dir_all(d.join("x/empty")).unwrap();
            fs::write(d.join("x/f"), b"hello").unwrap();
        }
        fs::create_dir_all(b.join(".hbcp/journal")).unwrap();
        fs::write(b.join(".hbcp/state"), b"s").unwrap();
        assert_trees_equal(&a, &b);
        let d = tree_digest(&a);
        assert_eq!(d.len(), 2);
        assert_eq!(d["x/empty"], Node::EmptyDir);
        assert!(matches!(d["x/f"], Node::File { size: 5, .. }));

        flip_byte(b.join("x/f"), 4).unwrap();
        assert_eq!(fs::read(b.join("x/f")).unwrap(), b"hell\x90");
        let diff = diff_digests(&d, &tree_digest(&b));
        assert_eq!(diff.len(), 1);
        assert!(diff[0].starts_with("differs:   x/f"), "{diff:?}");
        assert!(flip_byte(b.join("x/f"), 5).is_err());

        truncate(b.join("x/f"), 2).unwrap();
        assert_eq!(fs::read(b.join("x/f")).unwrap(), b"he");
        fs::remove_dir(b.join("x/empty")).unwrap();
        let diff = diff_digests(&d, &tree_digest(&b));
        assert!(
            diff.iter().any(|l| l.starts_with("only in a: x/empty")),
            "{diff:?}"
        );
        let r = std::panic::catch_unwind(|| assert_trees_equal(&a, &b));
        assert!(r.is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_recorded_not_followed() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("d")).unwrap();
        fs::write(t.path().join("d/f"), b"x").unwrap();
        std::os::unix::fs::symlink("d", t.path().join("l")).unwrap();
        let d = tree_digest(t.path());
        assert_eq!(d["l"], Node::Symlink { target: "d".into() });
        assert!(!d.contains_key("l/f"));
    }
}
