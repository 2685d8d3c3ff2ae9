//! Which listing entries belong to a job.
//!
//! hbcp's own folder (`.hbcp/`) is never part of a job. `--exclude GLOB` patterns match the
//! relative key (`**/.tmp/**`, `WALs/**`); a pattern without `/` also matches any single path
//! component, so `--exclude .tmp` leaves out every `.tmp` folder.
//!
//! On an HBase root (a folder with `hbase.version`) the HBase rules apply on top
//! ([`Selection::with_hbase_rules`]): transient folders (`.tmp/` at every level, `corrupt/`,
//! `staging/`, `.hbck/`, `splitWAL/`, `.migration/`, `.hbase-snapshot/.tmp/` — snapshots being
//! taken or exported —, pre-2.5 `.splits/`/`.merges/`, `*.temp` recovered edits) are left out,
//! and so are the write-ahead logs (`WALs/`, `oldWALs/`, `MasterProcWALs/`, `recovered.edits/`)
//! unless they are asked for. A [`Scope`] holds the folders of an HBase selection (a table's
//! regions, a snapshot's folder) so that the verifier calls "extra" only the target files under
//! them that the source lacks.

use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use hbcp_store::{Entry, EntryKind};

use crate::{Error, Result};

/// A job's selection of keys.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    exclude: Option<GlobSet>,
    component_excludes: Vec<String>,
    patterns: Vec<String>,
    hbase: Option<HbaseRules>,
    scope: Option<Arc<Scope>>,
}

/// The HBase rules of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HbaseRules {
    /// Copy the write-ahead logs too (`--allow-unflushed`).
    pub include_wals: bool,
}

/// The folders an HBase selection owns at the target: a file under them that the source does
/// not have is "extra" there; a file elsewhere is none of the job's business.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Key prefixes ending in `/`.
    pub prefixes: Vec<String>,
}

impl Scope {
    /// Whether `key` is in the scope.
    pub fn contains(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }
}

/// The folder at the top of a root where hbcp keeps its own state.
pub const HBCP_PREFIX: &str = ".hbcp/";

/// True for keys the HBase rules leave out of a copy: transient folders always, write-ahead
/// logs unless `include_wals`. `is_dir` marks an (empty) directory entry, judged as the
/// folder it is.
pub fn hbase_leaves_out(key: &str, is_dir: bool, include_wals: bool) -> bool {
    let transient =
        hbcp_hbase::is_transient(key) || (is_dir && hbcp_hbase::is_transient(&format!("{key}/x")));
    // A region's `recovered.edits/<seqid>.seqid` is not an edit but the marker of the highest
    // sequence id the region used: kept, so the region never reuses one.
    let wal = hbcp_hbase::is_wal_family(key) && !(key.ends_with(".seqid") && !is_dir);
    transient || (!include_wals && wal)
}

impl Selection {
    /// A selection that excludes keys matching any of `patterns`.
    pub fn with_excludes(patterns: &[String]) -> Result<Self> {
        let mut b = GlobSetBuilder::new();
        let mut component_excludes = Vec::new();
        for p in patterns {
            let glob = Glob::new(p).map_err(|e| Error::BadPattern {
                pattern: p.clone(),
                why: e.kind().to_string(),
            })?;
            b.add(glob);
            if !p.contains('/') && !p.contains('*') && !p.contains('?') && !p.contains('[') {
                component_excludes.push(p.clone());
            }
        }
        let set = b.build().map_err(|e| Error::BadPattern {
            pattern: patterns.join(" "),
            why: e.to_string(),
        })?;
        Ok(Selection {
            exclude: (!patterns.is_empty()).then_some(set),
            component_excludes,
            patterns: patterns.to_vec(),
            hbase: None,
            scope: None,
        })
    }

    /// Apply the HBase rules (the source is an HBase root).
    pub fn with_hbase_rules(mut self, rules: HbaseRules) -> Self {
        self.hbase = Some(rules);
        self
    }

    /// Narrow the selection to `scope`.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = Some(Arc::new(scope));
        self
    }

    /// The HBase rules, when they apply.
    pub fn hbase_rules(&self) -> Option<HbaseRules> {
        self.hbase
    }

    /// The patterns, for the plan header and the job identity.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `key` belongs to the job.
    pub fn accepts_key(&self, key: &str) -> bool {
        self.accepts_key_kind(key, false)
    }

    fn accepts_key_kind(&self, key: &str, is_dir: bool) -> bool {
        if key == ".hbcp" || key.starts_with(HBCP_PREFIX) {
            return false;
        }
        if let Some(scope) = &self.scope {
            if !scope.contains(key) {
                return false;
            }
        }
        if let Some(r) = self.hbase {
            if hbase_leaves_out(key, is_dir, r.include_wals) {
                return false;
            }
        }
        if let Some(set) = &self.exclude {
            if set.is_match(key) {
                return false;
            }
            if !self.component_excludes.is_empty()
                && key
                    .split('/')
                    .any(|c| self.component_excludes.iter().any(|x| x == c))
            {
                return false;
            }
        }
        true
    }

    /// Whether `entry` belongs to the job.
    pub fn accepts(&self, entry: &Entry) -> bool {
        self.accepts_key_kind(&entry.key, entry.kind == EntryKind::Dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hbcp_state_is_never_selected() {
        let s = Selection::default();
        assert!(!s.accepts_key(".hbcp/manifest.json.zst"));
        assert!(!s.accepts_key(".hbcp"));
        assert!(s.accepts_key(".hbcpx"));
        assert!(s.accepts_key("data/default/t/r/f/abc"));
    }

    #[test]
    fn excludes_by_glob_and_component() {
        let s = Selection::with_excludes(&["WALs/**".into(), ".tmp".into()]).unwrap();
        assert!(!s.accepts_key("WALs/rs%2C1/x"));
        assert!(!s.accepts_key("data/default/t/.tmp/x"));
        assert!(s.accepts_key("oldWALs/x"));
        assert!(Selection::with_excludes(&["a[".into()]).is_err());
    }

    fn dir(key: &str) -> Entry {
        Entry {
            key: key.into(),
            size: 0,
            version: None,
            modified: None,
            kind: EntryKind::Dir,
        }
    }

    #[test]
    fn hbase_rules_leave_out_transient_folders_and_wals_unless_asked() {
        let s = Selection::default().with_hbase_rules(HbaseRules {
            include_wals: false,
        });
        for k in [
            ".tmp/hbase-hbck.lock",
            ".tmp/data/default/t/r/cf/0123abcd",
            "corrupt/rs%2C1.123",
            "staging/x",
            ".hbck/x",
            "splitWAL/x",
            ".hbase-snapshot/.tmp/snap/.snapshotinfo",
            "data/default/t/.tmp/x",
            "data/default/t/0123/.tmp/cf/abcd",
            "WALs/rs,1,2/rs%2C1%2C2.17",
            "oldWALs/rs%2C1%2C2.17",
            "MasterProcWALs/pv2-00000000000000000001.log",
            "data/default/t/0123/recovered.edits/0000000000000000012",
        ] {
            assert!(!s.accepts_key(k), "{k} should be left out");
        }
        for k in [
            "staging",
            "corrupt",
            "data/default/t/.tmp",
            "data/default/t/r/recovered.edits",
        ] {
            assert!(!s.accepts(&dir(k)), "empty dir {k} should be left out");
        }
        for k in [
            "hbase.version",
            "hbase.id",
            "data/default/t/.tabledesc/.tableinfo.0000000001",
            "data/default/t/0123/.regioninfo",
            "data/default/t/0123/cf/0123abcd",
            "archive/data/default/t/0123/cf/0123abcd",
            ".hbase-snapshot/snap/.snapshotinfo",
            "mobdir/data/default/t/0123/cf/0123abcd",
            "MasterData/data/master/store/.tabledesc/.tableinfo.0000000001",
        ] {
            assert!(s.accepts_key(k), "{k} should be copied");
        }
        assert!(s.accepts_key("data/default/t/0123/recovered.edits/37.seqid"));
        let w = Selection::default().with_hbase_rules(HbaseRules { include_wals: true });
        assert!(w.accepts_key("WALs/rs,1,2/rs%2C1%2C2.17"));
        assert!(w.accepts_key("oldWALs/rs%2C1%2C2.17"));
        assert!(!w.accepts_key(".tmp/hbase-hbck.lock"));
    }

    #[test]
    fn a_scope_narrows_to_its_folders() {
        let mut scope = Scope::default();
        scope.prefixes.push("data/default/t/".into());
        let s = Selection::default().with_scope(scope);
        assert!(!s.accepts_key("hbase.version"));
        assert!(s.accepts_key("data/default/t/r/cf/abc"));
        assert!(!s.accepts_key("data/default/t2/r/cf/abc"));
        assert!(!s.accepts_key("hbase.id"));
    }
}
