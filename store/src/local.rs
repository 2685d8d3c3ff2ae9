//! The local-disk store: the fast path.
//!
//! Reads are positional (`pread`), writes are positional into a staging file under
//! `ROOT/.hbcp/staging/` that is renamed into place only when whole, so no partial file is ever
//! visible at its final name. Durability is a group commit: [`Store::flush`] calls `syncfs(2)`
//! on the target file system, once per batch of files instead of one `fsync` per file. Listing
//! is our own walker: it keeps every name byte-exact (`%2C`, `=`, `#123`, spaces, unicode),
//! reports empty directories, and never follows a symlink out of the root. Large roots are
//! walked by a few threads over a shared stack of folders (stat-bound work overlaps); the
//! entries of one folder come in one burst, in the order the folder lists them, and memory
//! holds only the folders not walked yet, never the files. A target store writes, and reads
//! back to verify, with `O_DIRECT` where the file system allows ([`crate::direct`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::direct::{AlignedBuf, Switch};
use crate::{Caps, Entry, EntryKind, Error, ListSink, Result, Store, Upload, check_key};

/// Name of hbcp's own folder at the top of a target root (staging, journal, manifest).
pub const HBCP_DIR: &str = ".hbcp";

/// A directory on local disk.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    walkers: usize,
    direct: Arc<Switch>,
}

impl LocalStore {
    /// A store rooted at `root` (which need not exist yet), listed by up to 4 threads.
    pub fn new(root: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalStore {
            root,
            walkers: cores.clamp(1, 4),
            direct: Arc::new(Switch::new(false)),
        }
    }

    /// Write and read with `O_DIRECT` where the file system allows it (a target: what hbcp
    /// writes it syncs and re-reads, so the page cache would only cost a copy, and a read past
    /// the cache verifies the disk). Off by default: a source's hot files are best read cached.
    /// Only on ext2/3/4, xfs and btrfs, where `O_DIRECT` is a plain fast path.
    pub fn with_direct_io(mut self, on: bool) -> Self {
        self.direct = Arc::new(Switch::new(on && crate::direct::worth_it(&self.root)));
        self
    }

    /// List with `n` threads (1: one thread, depth first, in the order folders list).
    pub fn with_walkers(mut self, n: usize) -> Self {
        self.walkers = n.max(1);
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn staging_path(&self, key: &str, job: &str) -> PathBuf {
        let h = xxhash_rust::xxh3::xxh3_128(format!("{job}\0{key}").as_bytes());
        self.root
            .join(HBCP_DIR)
            .join("staging")
            .join(format!("{h:032x}.part"))
    }

    /// Open `key` for reading; if `version` is given, fail with [`Error::Changed`] unless the
    /// file still has it.
    fn open_checked(&self, key: &str, version: Option<&str>) -> Result<(File, String)> {
        let path = self.path_of(key)?;
        let display = self.display(key);
        let file = open_read(&path, &display)?;
        if let Some(v) = version {
            let md = file
                .metadata()
                .map_err(|e| Error::io(&display, "stat", e))?;
            let now = version_of(&md);
            if now != v {
                return Err(Error::Changed {
                    key: key.to_string(),
                    why: format!("listed as {v}, now {now}"),
                });
            }
        }
        Ok((file, display))
    }

    fn display(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    /// Open `key` to read `len` bytes (a direct descriptor too when that is worth a second
    /// open: at least one whole block).
    fn reader<'a>(&'a self, key: &'a str, version: Option<&str>, len: u64) -> Result<Reader<'a>> {
        let (file, display) = self.open_checked(key, version)?;
        let direct = if len >= crate::direct::ALIGN as u64 {
            self.direct.open(&self.path_of(key)?, false)
        } else {
            None
        };
        Ok(Reader {
            file,
            direct,
            sw: &self.direct,
            key,
            display,
        })
    }
}

/// Version token of a local file: modification time (ns), inode, size.
pub fn version_of(md: &fs::Metadata) -> String {
    format!(
        "{}.{}-{}-{}",
        md.mtime(),
        md.mtime_nsec(),
        md.ino(),
        md.len()
    )
}

fn entry_of(key: String, md: &fs::Metadata, kind: EntryKind) -> Entry {
    Entry {
        key,
        size: if kind == EntryKind::File { md.len() } else { 0 },
        version: (kind == EntryKind::File).then(|| version_of(md)),
        modified: md.modified().ok(),
        kind,
    }
}

/// List one folder: its files (and findings) go to `sink`, its subfolders to `subdirs`.
fn walk_one(
    root: &Path,
    canon_root: &Path,
    rel: &str,
    prefix: &str,
    sink: &ListSink<'_>,
    subdirs: &mut Vec<String>,
) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !rel.is_empty() => return Ok(()),
        Err(e) => return Err(Error::io(dir.display().to_string(), "list directory", e)),
    };
    let mut empty = true;
    for de in rd {
        let de = de.map_err(|e| Error::io(dir.display().to_string(), "list directory", e))?;
        empty = false;
        let name = de.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::BadKey {
                key: dir.join(&name).display().to_string(),
                why: "file name is not valid UTF-8".into(),
            });
        };
        let key = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if !prefix.is_empty() && !key.starts_with(prefix) && !prefix.starts_with(&format!("{key}/"))
        {
            continue;
        }
        let path = de.path();
        let md = fs::symlink_metadata(&path)
            .map_err(|e| Error::io(path.display().to_string(), "stat", e))?;
        let ft = md.file_type();
        if ft.is_dir() {
            subdirs.push(key);
        } else if ft.is_file() {
            if key.starts_with(prefix) {
                sink(entry_of(key, &md, EntryKind::File))?;
            }
        } else if ft.is_symlink() {
            match follow(&path, canon_root) {
                Ok(tmd) => sink(entry_of(key, &tmd, EntryKind::File))?,
                Err(why) => sink(skipped(key, why))?,
            }
        } else {
            sink(skipped(key, "not a regular file (fifo, socket or device)"))?;
        }
    }
    if empty && !rel.is_empty() && rel.starts_with(prefix) {
        let md = fs::symlink_metadata(&dir)
            .map_err(|e| Error::io(dir.display().to_string(), "stat", e))?;
        sink(entry_of(rel.to_string(), &md, EntryKind::Dir))?;
    }
    Ok(())
}

/// The metadata of the regular file a symlink leads to, when that file is inside the root
/// (only such links are followed), else why the link is passed over.
fn follow(link: &Path, canon_root: &Path) -> std::result::Result<fs::Metadata, &'static str> {
    match fs::canonicalize(link) {
        Ok(target) if target.starts_with(canon_root) => match fs::metadata(&target) {
            Ok(tmd) if tmd.is_file() => Ok(tmd),
            _ => Err("symlink to a directory or special file"),
        },
        _ => Err("symlink that leads outside the source root"),
    }
}

/// Depth first on this thread, in the order folders list.
fn walk(root: &Path, canon_root: &Path, prefix: &str, sink: &ListSink<'_>) -> Result<()> {
    let mut stack = vec![String::new()];
    let mut subs = Vec::new();
    while let Some(rel) = stack.pop() {
        walk_one(root, canon_root, &rel, prefix, sink, &mut subs)?;
        stack.extend(subs.drain(..).rev());
    }
    Ok(())
}

/// The folders still to walk, shared by the walker threads.
struct Pending {
    dirs: Vec<String>,
    /// Threads walking a folder now (they may add more).
    busy: usize,
    /// The first error; every thread stops.
    err: Option<Error>,
}

/// `threads` walkers over a shared stack of folders; the first error stops them all.
fn walk_parallel(
    root: &Path,
    canon_root: &Path,
    prefix: &str,
    sink: &ListSink<'_>,
    threads: usize,
) -> Result<()> {
    let pending = std::sync::Mutex::new(Pending {
        dirs: vec![String::new()],
        busy: 0,
        err: None,
    });
    let wake = std::sync::Condvar::new();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut subs = Vec::new();
                loop {
                    let rel = {
                        let mut p = pending.lock().unwrap();
                        loop {
                            if p.err.is_some() {
                                return;
                            }
                            if let Some(d) = p.dirs.pop() {
                                p.busy += 1;
                                break d;
                            }
                            if p.busy == 0 {
                                wake.notify_all();
                                return;
                            }
                            p = wake.wait(p).unwrap();
                        }
                    };
                    let r = walk_one(root, canon_root, &rel, prefix, sink, &mut subs);
                    let mut p = pending.lock().unwrap();
                    p.busy -= 1;
                    match r {
                        Ok(()) => p.dirs.extend(subs.drain(..).rev()),
                        Err(e) => {
                            subs.clear();
                            p.err.get_or_insert(e);
                        }
                    }
                    wake.notify_all();
                }
            });
        }
    });
    match pending.into_inner().unwrap().err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn skipped(key: String, why: &str) -> Entry {
    Entry {
        key,
        size: 0,
        version: Some(why.to_string()),
        modified: None,
        kind: EntryKind::Skipped,
    }
}

fn open_read(path: &Path, display: &str) -> Result<File> {
    File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::NotFound {
                key: display.to_string(),
            }
        } else {
            Error::io(display, "open for reading", e)
        }
    })
}

/// Bytes read at a time by [`LocalStore`]'s streaming read.
const STREAM_PIECE: u64 = 1 << 20;

/// A file open for reading, with its direct-I/O descriptor when the store reads direct.
struct Reader<'a> {
    file: File,
    direct: Option<File>,
    sw: &'a Switch,
    key: &'a str,
    display: String,
}

impl Reader<'_> {
    /// Read exactly `n` bytes at `offset` into `piece`; the end of file first is a short read.
    fn read_piece(&self, piece: &mut AlignedBuf, n: usize, offset: u64) -> Result<()> {
        let got = self
            .sw
            .read_into(self.direct.as_ref(), &self.file, piece, n, offset)
            .map_err(|e| Error::io(&self.display, "read", e))?;
        if got < n {
            return Err(Error::ShortRead {
                key: self.key.to_string(),
                offset: offset + got as u64,
                wanted: (n - got) as u64,
            });
        }
        Ok(())
    }

    /// Fill `buf` at `offset`; end of file before it is full is a short read.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let n = self
            .sw
            .read_at(self.direct.as_ref(), &self.file, buf, offset)
            .map_err(|e| Error::io(&self.display, "read", e))?;
        if n < buf.len() {
            return Err(Error::ShortRead {
                key: self.key.to_string(),
                offset: offset + n as u64,
                wanted: (buf.len() - n) as u64,
            });
        }
        Ok(())
    }
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.is_dir() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::io(parent.display().to_string(), "create directory", e))?;
        }
    }
    Ok(())
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn caps(&self) -> Caps {
        Caps {
            is_local: true,
            positional_writes: true,
            max_part_size: u64::MAX,
            max_parts: u32::MAX,
            min_part_size: 1,
            default_concurrency: 8,
        }
    }

    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> Result<()> {
        let canon = match fs::canonicalize(&self.root) {
            Ok(c) => c,
            // A root that does not exist yet (a new target) holds nothing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(self.root.display().to_string(), "open root", e)),
        };
        if self.walkers > 1 {
            walk_parallel(&self.root, &canon, prefix, sink, self.walkers)
        } else {
            walk(&self.root, &canon, prefix, sink)
        }
    }

    fn head(&self, key: &str) -> Result<Option<Entry>> {
        let path = self.path_of(key)?;
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_file() => Ok(Some(entry_of(key.to_string(), &md, EntryKind::File))),
            Ok(md) if md.is_dir() => Ok(Some(entry_of(key.to_string(), &md, EntryKind::Dir))),
            // As the listing does: a link to a regular file inside the root is that file.
            Ok(md) if md.file_type().is_symlink() => {
                let canon = fs::canonicalize(&self.root)
                    .map_err(|e| Error::io(self.root.display().to_string(), "open root", e))?;
                Ok(Some(match follow(&path, &canon) {
                    Ok(tmd) => entry_of(key.to_string(), &tmd, EntryKind::File),
                    Err(why) => skipped(key.to_string(), why),
                }))
            }
            Ok(_) => Ok(Some(skipped(key.to_string(), "not a regular file"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            Err(e) => Err(Error::io(self.display(key), "stat", e)),
        }
    }

    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let r = self.reader(key, version, range.end - range.start)?;
        let len = (range.end - range.start) as usize;
        buf.clear();
        buf.resize(len, 0);
        r.read_exact_at(buf, range.start)
    }

    /// Read into an aligned buffer that becomes the returned bytes: a direct read lands in it
    /// with no bounce copy, it is not filled with zeros first (as [`Store::read_range`]'s `Vec`
    /// is), and a large one is reused once its bytes are dropped (see [`crate::pool`]).
    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<bytes::Bytes> {
        let r = self.reader(key, version, range.end - range.start)?;
        let n = (range.end - range.start) as usize;
        let mut buf = crate::pool::Pooled(crate::pool::take(n));
        r.read_piece(&mut buf.0, n, range.start)?;
        Ok(bytes::Bytes::from_owner(buf))
    }

    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let r = self.reader(key, version, range.end - range.start)?;
        // One piece of at most STREAM_PIECE bytes in memory, whatever the range; aligned, so
        // that a direct read lands in it and a direct write can take it as it is; reused.
        let mut piece = crate::pool::Pooled::take(STREAM_PIECE as usize);
        let mut at = range.start;
        while at < range.end {
            let n = (range.end - at).min(STREAM_PIECE) as usize;
            r.read_piece(&mut piece, n, at)?;
            sink(piece.as_slice())?;
            at += n as u64;
        }
        Ok(())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let dest = self.path_of(key)?;
        let tmp = self.staging_path(key, "put");
        ensure_parent(&tmp)?;
        let display = self.display(key);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|e| Error::io(tmp.display().to_string(), "create staging file", e))?;
        let direct = if data.len() >= crate::direct::ALIGN {
            self.direct.open(&tmp, true)
        } else {
            None
        };
        if let Err(e) = self
            .direct
            .write_at(direct.as_ref(), &file, data, 0)
            .map_err(|e| Error::io(&display, "write", e))
        {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        drop((direct, file));
        commit_rename(&tmp, &dest, &display)
    }

    fn begin_upload(
        &self,
        key: &str,
        size: u64,
        _part_size: u64,
        job: &str,
    ) -> Result<Arc<dyn Upload>> {
        let dest = self.path_of(key)?;
        let tmp = self.staging_path(key, job);
        ensure_parent(&tmp)?;
        let display = self.display(key);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&tmp)
            .map_err(|e| Error::io(tmp.display().to_string(), "create staging file", e))?;
        let cur = file
            .metadata()
            .map_err(|e| Error::io(tmp.display().to_string(), "stat", e))?
            .len();
        let resumed = cur == size && size > 0;
        if cur != size {
            file.set_len(size)
                .map_err(|e| Error::io(tmp.display().to_string(), "size staging file", e))?;
        }
        // Map the whole file's blocks in one call rather than one write at a time.
        crate::prealloc::reserve(&file, size)
            .map_err(|e| Error::io(tmp.display().to_string(), "reserve staging file", e))?;
        let direct = if size >= crate::direct::ALIGN as u64 {
            self.direct.open(&tmp, true)
        } else {
            None
        };
        Ok(Arc::new(LocalUpload {
            file,
            direct,
            sw: self.direct.clone(),
            tmp,
            dest,
            display,
            resumed,
        }))
    }

    fn copy_within(&self, from: &str, to: &str) -> Result<()> {
        let src = self.path_of(from)?;
        let dest = self.path_of(to)?;
        let tmp = self.staging_path(to, "copy");
        ensure_parent(&tmp)?;
        if let Err(e) = fs::copy(&src, &tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound { key: from.into() }
            } else {
                Error::io(self.display(to), "copy", e)
            });
        }
        commit_rename(&tmp, &dest, &self.display(to))
    }

    fn make_dir(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        fs::create_dir_all(&path).map_err(|e| Error::io(self.display(key), "create directory", e))
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => fs::remove_dir(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => Err(e),
        }
        .map_err(|e| Error::io(self.display(key), "delete", e))
    }

    fn flush(&self) -> Result<()> {
        let dir = match File::open(&self.root) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(Error::io(
                    self.root.display().to_string(),
                    "open for sync",
                    e,
                ));
            }
        };
        // SAFETY: syncfs takes a valid open file descriptor, which `dir` holds for the call.
        #[cfg(target_os = "linux")]
        let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) };
        // No syncfs outside Linux: sync(2) flushes every file system, this one included (more
        // than needed, never less).
        #[cfg(not(target_os = "linux"))]
        let rc = {
            drop(dir);
            // SAFETY: sync takes no arguments and cannot fail.
            unsafe { libc::sync() };
            0
        };
        if rc != 0 {
            return Err(Error::io(
                self.root.display().to_string(),
                "syncfs",
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

fn commit_rename(tmp: &Path, dest: &Path, display: &str) -> Result<()> {
    ensure_parent(dest)?;
    fs::rename(tmp, dest).map_err(|e| {
        let _ = fs::remove_file(tmp);
        Error::io(display, "rename into place", e)
    })
}

/// A staged local file: positional writes into the staging file, then rename.
#[derive(Debug)]
struct LocalUpload {
    file: File,
    /// The staging file opened again with `O_DIRECT`, when the store writes direct.
    direct: Option<File>,
    sw: Arc<Switch>,
    tmp: PathBuf,
    dest: PathBuf,
    display: String,
    resumed: bool,
}

impl Upload for LocalUpload {
    fn is_resumed(&self) -> bool {
        self.resumed
    }

    fn put_part(&self, _index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.sw
            .write_at(self.direct.as_ref(), &self.file, data, offset)
            .map_err(|e| Error::io(&self.display, "write", e))
    }

    fn sync_parts(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(self.tmp.display().to_string(), "fdatasync staging file", e))
    }

    fn commit(&self) -> Result<Option<String>> {
        // The engine takes a local file's version from a HEAD (a stat): none here.
        commit_rename(&self.tmp, &self.dest, &self.display).map(|()| None)
    }

    fn abort(&self) -> Result<()> {
        match fs::remove_file(&self.tmp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(
                self.tmp.display().to_string(),
                "remove staging file",
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Shared-bytes reads (an upload's ranges) give exactly the bytes asked for, also into a
    /// reused buffer that held other bytes, refuse a range past the end as a short read, and
    /// refuse a file whose version changed (here its size).
    #[test]
    fn shared_reads_are_exact_also_in_a_reused_buffer() {
        let d = tempfile::tempdir().unwrap();
        let n = crate::pool::MIN + 12_345;
        let a: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..n).map(|i| (i % 13) as u8).collect();
        std::fs::write(d.path().join("a"), &a).unwrap();
        std::fs::write(d.path().join("b"), &b).unwrap();
        let s = LocalStore::new(d.path().to_path_buf());
        let got = s.read_range_bytes("a", 0..n as u64, None).unwrap();
        assert_eq!(&got[..], &a[..]);
        drop(got);
        let got = s.read_range_bytes("b", 100..n as u64, None).unwrap();
        assert_eq!(&got[..], &b[100..]);
        assert!(matches!(
            s.read_range_bytes("b", 0..n as u64 + 1, None),
            Err(Error::ShortRead { .. })
        ));
        let v = version_of(&std::fs::metadata(d.path().join("a")).unwrap());
        std::fs::write(d.path().join("a"), &b[..n - 1]).unwrap();
        assert!(s.read_range_bytes("a", 0..10, Some(&v)).is_err());
    }

    fn list_all(s: &LocalStore) -> Vec<Entry> {
        let out = Mutex::new(Vec::new());
        s.list("", &|e| {
            out.lock().unwrap().push(e);
            Ok(())
        })
        .unwrap();
        let mut v = out.into_inner().unwrap();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    #[test]
    fn lists_names_byte_exact_and_empty_dirs() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("WALs/rs%2C16020%2C1")).unwrap();
        fs::write(r.join("WALs/rs%2C16020%2C1/x#123"), b"abc").unwrap();
        fs::write(r.join("a b=ü"), b"").unwrap();
        fs::create_dir_all(r.join("empty/dir")).unwrap();
        let s = LocalStore::new(r.to_path_buf());
        let keys: Vec<(String, EntryKind, u64)> = list_all(&s)
            .into_iter()
            .map(|e| (e.key, e.kind, e.size))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("WALs/rs%2C16020%2C1/x#123".into(), EntryKind::File, 3),
                ("a b=ü".into(), EntryKind::File, 0),
                ("empty/dir".into(), EntryKind::Dir, 0),
            ]
        );
    }

    #[test]
    fn parallel_walk_lists_what_one_thread_lists_and_stops_on_an_error() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for t in 0..5 {
            for reg in 0..7 {
                let dir = r.join(format!("data/default/t{t}/r{reg}/cf"));
                fs::create_dir_all(&dir).unwrap();
                for f in 0..(t * reg) {
                    fs::write(dir.join(format!("h{f}")), vec![0u8; f]).unwrap();
                }
            }
        }
        fs::create_dir_all(r.join("data/default/t4/empty")).unwrap();
        let one = list_all(&LocalStore::new(r.into()).with_walkers(1));
        let four = list_all(&LocalStore::new(r.into()).with_walkers(4));
        // 10 × 21 files, 11 empty family folders and one empty folder.
        assert_eq!(one.len(), 210 + 12, "{}", one.len());
        let keys = |v: &[Entry]| {
            v.iter()
                .map(|e| (e.key.clone(), e.size))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&one), keys(&four));
        // A bad name deep in the tree stops every walker with the error.
        let bad = std::ffi::OsStr::from_bytes(b"bad\xff");
        fs::write(r.join("data/default/t3/r2/cf").join(bad), b"").unwrap();
        let err = LocalStore::new(r.into())
            .with_walkers(4)
            .list("", &|_| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }

    #[test]
    fn symlink_out_of_root_is_skipped() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"x").unwrap();
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("in"), b"yy").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("out")).unwrap();
        std::os::unix::fs::symlink(d.path().join("in"), d.path().join("inlink")).unwrap();
        let s = LocalStore::new(d.path().to_path_buf());
        let got: Vec<(String, EntryKind)> =
            list_all(&s).into_iter().map(|e| (e.key, e.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("in".into(), EntryKind::File),
                ("inlink".into(), EntryKind::File),
                ("out".into(), EntryKind::Skipped),
            ]
        );
    }

    #[test]
    fn direct_io_target_stages_puts_and_reads_back_byte_exact() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path().to_path_buf()).with_direct_io(true);
        let part = 256 * 1024u64;
        let size = 3 * part + 1234;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let up = s.begin_upload("t/big", size, part, "job").unwrap();
        // Parts out of order, the last one short; the middle one from unaligned memory.
        for i in [2u64, 0, 3, 1] {
            let r = (i * part) as usize..((i + 1) * part).min(size) as usize;
            let mut owned = vec![0u8; r.len() + 1];
            owned[1..].copy_from_slice(&data[r.clone()]);
            let piece = if i == 1 {
                &owned[1..]
            } else {
                &data[r.clone()]
            };
            up.put_part(i as u32, r.start as u64, piece).unwrap();
        }
        up.sync_parts().unwrap();
        assert!(s.head("t/big").unwrap().is_none());
        up.commit().unwrap();
        s.put("t/small", &data[..5000]).unwrap();
        assert_eq!(fs::read(d.path().join("t/big")).unwrap(), data);
        assert_eq!(fs::read(d.path().join("t/small")).unwrap(), &data[..5000]);
        for (key, range) in [
            ("t/big", 0..size),
            ("t/big", 4096..size - 7),
            ("t/small", 1..5000),
        ] {
            let mut got = Vec::new();
            s.read_range_to(key, range.clone(), None, &mut |p| {
                got.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(
                got,
                &data[range.start as usize..range.end as usize],
                "{key}"
            );
        }
        let mut buf = Vec::new();
        assert!(matches!(
            s.read_range_to("t/big", size - 10..size + 4096, None, &mut |_| Ok(())),
            Err(Error::ShortRead { .. })
        ));
        s.read_range("t/big", 5..9000, None, &mut buf).unwrap();
        assert_eq!(buf, &data[5..9000]);
    }

    #[test]
    fn staged_upload_is_invisible_until_commit() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path().to_path_buf());
        let up = s.begin_upload("t/f", 6, 3, "job").unwrap();
        up.put_part(1, 3, b"def").unwrap();
        assert!(s.head("t/f").unwrap().is_none());
        up.put_part(0, 0, b"abc").unwrap();
        up.commit().unwrap();
        assert_eq!(fs::read(d.path().join("t/f")).unwrap(), b"abcdef");
        let mut buf = Vec::new();
        s.read_range("t/f", 2..5, None, &mut buf).unwrap();
        assert_eq!(buf, b"cde");
        assert!(matches!(
            s.read_range("t/f", 4..9, None, &mut buf),
            Err(Error::ShortRead { .. })
        ));
    }

    #[test]
    fn conditional_read_detects_change() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path().to_path_buf());
        s.put("f", b"one").unwrap();
        let v = s.head("f").unwrap().unwrap().version.unwrap();
        fs::write(d.path().join("f"), b"two!").unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            s.read_range("f", 0..3, Some(&v), &mut buf),
            Err(Error::Changed { .. })
        ));
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path().join("root"));
        assert!(s.put("../evil", b"x").is_err());
        assert!(s.put("/abs", b"x").is_err());
        assert!(!d.path().join("evil").exists());
    }
}

#[cfg(test)]
mod walk_properties {
    use super::*;
    use proptest::prelude::*;

    /// Issue 17, item 3, on local disk: the parallel walk yields each file and empty folder
    /// once, the same entries as one thread, whatever the tree.
    fn tree() -> impl Strategy<Value = Vec<(Vec<String>, bool)>> {
        let comp = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("x y".to_string()),
            Just("%2C".to_string()),
            Just(".hidden".to_string()),
            Just("ü\\z".to_string()),
        ];
        proptest::collection::vec(
            (proptest::collection::vec(comp, 1..=5), any::<bool>()),
            1..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn a_parallel_walk_yields_each_entry_once_as_one_thread_does(paths in tree()) {
            let d = tempfile::tempdir().unwrap();
            let r = d.path();
            for (comps, is_dir) in &paths {
                let p = comps.iter().fold(r.to_path_buf(), |p, c| p.join(c));
                // A path whose folder is a file already (or the reverse) is left out.
                if *is_dir {
                    let _ = fs::create_dir_all(&p);
                } else if p.parent().is_some_and(|q| fs::create_dir_all(q).is_ok()) && !p.is_dir() {
                    fs::write(&p, comps.join("/")).unwrap();
                }
            }
            let keys = |walkers| {
                let out = std::sync::Mutex::new(Vec::new());
                LocalStore::new(r.into())
                    .with_walkers(walkers)
                    .list("", &|e| {
                        out.lock().unwrap().push((e.key, e.kind, e.size));
                        Ok(())
                    })
                    .unwrap();
                let mut v = out.into_inner().unwrap();
                v.sort();
                v
            };
            let one = keys(1);
            let mut dedup = one.clone();
            dedup.dedup_by(|a, b| a.0 == b.0);
            prop_assert_eq!(dedup.len(), one.len(), "a key listed twice: {:?}", one);
            prop_assert_eq!(keys(4), one.clone());
            prop_assert_eq!(keys(16), one);
        }
    }
}
