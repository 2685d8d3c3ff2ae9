//! Reserve a staged local file's blocks before its ranges are written.
//!
//! A staging file starts as a hole of its final size. Each direct write into a hole makes the
//! file system find and map new blocks for that write alone (on ext4: one block allocation and
//! one journalled extent change per write request). Measured here with `dd … oflag=direct
//! conv=fdatasync` of 1 GiB in 1 MiB writes, writing into a hole took 0.23 system CPU-s
//! (median of 4) and into a file whose blocks were reserved first with `fallocate` 0.12: the
//! file system maps the whole file in one call and each write only marks its blocks written.
//!
//! Reserving is an optimisation, never a requirement: a file system without `fallocate`
//! (tmpfs before 3.5, NFS v3, FUSE) keeps the hole and the same bytes land. A full disk is the
//! one refusal that matters, and it surfaces here, before any byte is written, as the error
//! the first write would have given.

use std::fs::File;
use std::io;

/// Reserve blocks for the first `size` bytes of `file` without changing what it holds: holes
/// become allocated, unwritten extents (reading as zeros, as the hole did); blocks already
/// written stay as they are (a resumed staging file keeps its ranges). The file's length must
/// already be `size`. Returns `Err` only for a full disk or quota (`ENOSPC`, `EDQUOT`).
#[cfg(target_os = "linux")]
pub(crate) fn reserve(file: &File, size: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(size) else {
        return Ok(());
    };
    if len == 0 {
        return Ok(());
    }
    loop {
        // SAFETY: `file` holds a valid open descriptor for the call; mode 0 allocates only,
        // within the length the file already has.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => return Err(e),
            // Not supported here (EOPNOTSUPP, ENOSYS, EINVAL…): the writes allocate as before.
            _ => return Ok(()),
        }
    }
}

/// No `fallocate` outside Linux: the writes allocate as they land.
#[cfg(not(target_os = "linux"))]
pub(crate) fn reserve(_file: &File, _size: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};

    /// Reserving allocates the hole's blocks, keeps the length and the bytes already written
    /// (a resumed staging file), and the rest still reads as zeros.
    #[test]
    fn reserving_keeps_length_and_bytes_and_allocates_the_hole() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let size = 4 << 20;
        f.set_len(size).unwrap();
        f.write_all_at(b"resumed range", 1 << 20).unwrap();
        let before = f.metadata().unwrap().blocks();
        reserve(&f, size).unwrap();
        let md = f.metadata().unwrap();
        assert_eq!(md.len(), size);
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[1 << 20..(1 << 20) + 13], b"resumed range");
        assert!(got[..1 << 20].iter().all(|&b| b == 0));
        assert!(got[(1 << 20) + 13..].iter().all(|&b| b == 0));
        // On a file system with fallocate (ext4, xfs, btrfs, tmpfs: every machine the tests
        // run on), the whole length is now backed by blocks (512-byte units).
        if cfg!(target_os = "linux") {
            assert!(md.blocks() > before, "{before} -> {}", md.blocks());
            assert!(md.blocks() * 512 >= size);
        }
    }
}
