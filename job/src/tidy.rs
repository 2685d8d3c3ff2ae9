//! Folders a deletion leaves empty at a local target (object stores have no folders): one rule
//! for a sync's deletions and a backup's prune.

use hbcp_store::Store;

/// Remove `key`'s parent folders that are now empty, deepest first, stopping at the first that
/// `keep` names or that is not empty. Object stores have no folders: nothing to do there.
pub(crate) fn prune_empty_parents(store: &dyn Store, key: &str, keep: impl Fn(&str) -> bool) {
    if !store.caps().is_local {
        return;
    }
    let mut k = key;
    while let Some((parent, _)) = k.rsplit_once('/') {
        // A local store deletes a folder only when it is empty.
        if keep(parent) || store.delete(parent).is_err() {
            break;
        }
        k = parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_empty_parents_up_to_a_kept_or_full_folder() {
        let root = std::env::temp_dir().join(format!("hbcp-tidy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("pool/a/b/c")).unwrap();
        std::fs::create_dir_all(root.join("pool/x")).unwrap();
        let store = hbcp_store::local::LocalStore::new(root.clone());
        // The file is gone already; its empty folders go, `pool` is kept.
        prune_empty_parents(&store, "pool/a/b/c/f", |p| !p.contains('/'));
        assert!(!root.join("pool/a").exists());
        assert!(root.join("pool/x").exists());
        // A folder that is not empty stays, and so do its parents.
        std::fs::create_dir_all(root.join("t/d/e")).unwrap();
        std::fs::write(root.join("t/d/other"), b"x").unwrap();
        prune_empty_parents(&store, "t/d/e/f", |_| false);
        assert!(!root.join("t/d/e").exists());
        assert!(root.join("t/d/other").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
