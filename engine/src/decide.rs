//! What a copy does with one source file, given what the target holds under its name: the one
//! rule shared by the engine's planner and by a dry run (`--dry-run`), so that a dry run names
//! exactly the files the real run then writes.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use hbcp_store::{Entry, EntryKind, Error as StoreError, Store};

use crate::index::Named;
use crate::{Overwrite, WriteOnce};

/// What becomes of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not at the target: sent.
    New,
    /// At the target with another size, or `--overwrite always`: sent, replacing it.
    Replace,
    /// At the target with the same size: the checksums of both sides decide (sent when they
    /// differ). Between two object stores with server-side copies, sent server-side instead
    /// of read twice.
    Compare,
    /// Kept as the target has it. `checked`: the checksums are still taken, for the record
    /// (`--overwrite never`); otherwise it is not read at all (a write-once file with the same
    /// name and size, in a sync).
    Keep {
        /// Both sides are read and hashed.
        checked: bool,
    },
    /// A write-once file the target holds under another key with the same size (an HFile
    /// moved from `data/` to `archive/`): copied inside the target.
    Moved {
        /// Where the target holds it.
        from: String,
        /// Its checksum.
        hash: u64,
    },
    /// The target has a folder or a special file under this name: the file fails.
    Conflict,
}

/// Whether a run copies files server-side (`--s2s auto` between two object stores): a file
/// [`Decision::Compare`] then sends is copied by the target's service, without comparing.
pub fn server_side(
    cfg: &crate::Config,
    src: &dyn hbcp_store::Store,
    dst: &dyn hbcp_store::Store,
) -> bool {
    cfg.s2s && !src.caps().is_local && !dst.caps().is_local
}

/// Whether the target holds nothing but hbcp's own `.hbcp/` folder: then no file is looked up
/// one by one (every one is [`Decision::New`]). One listing, stopped at the first entry.
pub fn target_is_empty(dst: &dyn Store) -> hbcp_store::Result<bool> {
    let found = AtomicBool::new(false);
    let r = dst.list("", &|e: Entry| {
        if e.key == ".hbcp" || e.key.starts_with(".hbcp/") {
            return Ok(());
        }
        found.store(true, Relaxed);
        Err(StoreError::Unsupported {
            what: "listing".into(),
            hint: "stop at first entry".into(),
        })
    });
    match r {
        Ok(()) => Ok(!found.load(Relaxed)),
        Err(_) if found.load(Relaxed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Decide for `e`, given `existing` (what the target holds under `e.key`, if anything) and,
/// for a sync, `by_name` (the write-once file of the target with this name, if any).
pub fn decide<E>(
    e: &Entry,
    existing: Option<&Entry>,
    overwrite: Overwrite,
    write_once: WriteOnce,
    by_name: impl FnOnce(&str) -> Result<Option<Named>, E>,
) -> Result<Decision, E> {
    if overwrite == Overwrite::Sync {
        let name = e.key.rsplit('/').next().unwrap_or("");
        if write_once(name) {
            match existing {
                Some(x) if x.kind == EntryKind::File && x.size == e.size => {
                    return Ok(Decision::Keep { checked: false });
                }
                None => {
                    let moved = by_name(name)?.and_then(|n| {
                        let hash = n.hash?;
                        (n.size == e.size && n.key != e.key).then_some((n.key, hash))
                    });
                    if let Some((from, hash)) = moved {
                        return Ok(Decision::Moved { from, hash });
                    }
                }
                _ => {}
            }
        }
    }
    Ok(match existing {
        None => Decision::New,
        Some(x) if x.kind != EntryKind::File => Decision::Conflict,
        Some(_) if overwrite == Overwrite::Never => Decision::Keep { checked: true },
        Some(x)
            if matches!(overwrite, Overwrite::IfDifferent | Overwrite::Sync)
                && x.size == e.size =>
        {
            Decision::Compare
        }
        // Replaced: the old file stays whole until the new one is renamed over it.
        Some(_) => Decision::Replace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str, size: u64) -> Entry {
        Entry {
            key: key.into(),
            size,
            version: None,
            modified: None,
            kind: EntryKind::File,
        }
    }

    fn hfile(name: &str) -> bool {
        name.len() == 32
    }

    const H: &str = "0123456789abcdef0123456789abcdef";

    fn none(_: &str) -> Result<Option<Named>, ()> {
        Ok(None)
    }

    #[test]
    fn every_rule_of_the_table() {
        let e = file("t/f", 10);
        let same = file("t/f", 10);
        let other = file("t/f", 11);
        let dir = Entry {
            kind: EntryKind::Dir,
            ..file("t/f", 0)
        };
        let no = crate::no_write_once;
        let d = |x: Option<&Entry>, o| decide(&e, x, o, no, none).unwrap();
        assert_eq!(d(None, Overwrite::IfDifferent), Decision::New);
        assert_eq!(d(Some(&same), Overwrite::IfDifferent), Decision::Compare);
        assert_eq!(d(Some(&other), Overwrite::IfDifferent), Decision::Replace);
        assert_eq!(d(Some(&same), Overwrite::Always), Decision::Replace);
        assert_eq!(
            d(Some(&other), Overwrite::Never),
            Decision::Keep { checked: true }
        );
        assert_eq!(d(Some(&dir), Overwrite::IfDifferent), Decision::Conflict);
        // A sync takes a write-once file of the same name and size as it is, and finds one
        // that moved by its name.
        let h = file(&format!("t/{H}"), 10);
        let kept = decide(&h, Some(&h), Overwrite::Sync, hfile, none).unwrap();
        assert_eq!(kept, Decision::Keep { checked: false });
        let moved = decide(&h, None, Overwrite::Sync, hfile, |_| {
            Ok::<_, ()>(Some(Named {
                key: format!("a/{H}"),
                size: 10,
                hash: Some(7),
            }))
        })
        .unwrap();
        assert_eq!(
            moved,
            Decision::Moved {
                from: format!("a/{H}"),
                hash: 7
            }
        );
        // Another size, or no checksum known: sent again.
        let resized = decide(&h, None, Overwrite::Sync, hfile, |_| {
            Ok::<_, ()>(Some(Named {
                key: format!("a/{H}"),
                size: 9,
                hash: Some(7),
            }))
        })
        .unwrap();
        assert_eq!(resized, Decision::New);
        // Not write-once: compared by content even in a sync.
        assert_eq!(
            decide(&e, Some(&same), Overwrite::Sync, hfile, none).unwrap(),
            Decision::Compare
        );
        // The lookup's error comes back.
        assert_eq!(
            decide(
                &h,
                None,
                Overwrite::Sync,
                hfile,
                |_| Err::<Option<Named>, _>("broken")
            ),
            Err("broken")
        );
    }
}
