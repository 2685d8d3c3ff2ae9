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

/// Why a listed entry is not part of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeftOut {
    /// HBase's transient folders (`.tmp/`, `corrupt/`, `staging/`, …): work in progress.
    Transient,
    /// Write-ahead logs (copied only with `--allow-unflushed`).
    Wals,
    /// Matched by `--exclude`.
    Excluded,
    /// Outside the `--table` / `--snapshot` selection.
    Selection,
    /// hbcp's own state folder (`.hbcp/`): never data, never counted.
    HbcpState,
}

impl LeftOut {
    /// The reason's name in summaries and reports.
    pub fn name(self) -> &'static str {
        match self {
            LeftOut::Transient => "hbase_transient",
            LeftOut::Wals => "wals",
            LeftOut::Excluded => "excluded",
            LeftOut::Selection => "selection",
            LeftOut::HbcpState => "hbcp_state",
        }
    }

    /// The reason as a summary line says it.
    pub fn phrase(self) -> &'static str {
        match self {
            LeftOut::Transient => "HBase transient",
            LeftOut::Wals => "WALs",
            LeftOut::Excluded => "--exclude",
            LeftOut::Selection => "outside the selection",
            LeftOut::HbcpState => "hbcp state",
        }
    }
}

/// The files a job left out, counted by reason as the listing goes (shared by its threads).
#[derive(Debug, Default)]
pub struct LeftOutTally {
    inner: std::sync::Mutex<std::collections::BTreeMap<LeftOut, LeftOutCount>>,
}

/// The files left out for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeftOutCount {
    /// Files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Their keys, the first [`LeftOutTally::KEYS`] of them.
    pub keys: Vec<String>,
}

impl LeftOutTally {
    /// Keys kept per reason (a cluster's WALs can be many thousands).
    pub const KEYS: usize = 1000;

    /// Count `entry` (a file; folders and hbcp's own state are not counted) as left out.
    pub fn add(&self, entry: &Entry, why: LeftOut) {
        if entry.kind != EntryKind::File || why == LeftOut::HbcpState {
            return;
        }
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry(why).or_default();
        c.files += 1;
        c.bytes += entry.size;
        if c.keys.len() < Self::KEYS {
            c.keys.push(entry.key.clone());
        }
    }

    /// The counts by reason name, keys sorted.
    pub fn counts(&self) -> std::collections::BTreeMap<String, LeftOutCount> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                v.keys.sort();
                (k.name().to_string(), v)
            })
            .collect()
    }

    /// `6 files left out (WALs 5, HBase transient 1)`, or `nothing left out`.
    pub fn summary(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let total: u64 = m.values().map(|c| c.files).sum();
        if total == 0 {
            return "nothing left out".into();
        }
        let parts: Vec<String> = m
            .iter()
            .map(|(k, c)| format!("{} {}", k.phrase(), c.files))
            .collect();
        format!(
            "{total} {} left out ({})",
            if total == 1 { "file" } else { "files" },
            parts.join(", ")
        )
    }

    /// Count `entry` when `sel` leaves it out; whether it belongs to the job.
    pub fn judge(&self, sel: &Selection, entry: &Entry) -> bool {
        match sel.left_out(entry) {
            None => true,
            Some(why) => {
                self.add(entry, why);
                false
            }
        }
    }
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
        self.verdict(key, is_dir).is_none()
    }

    /// Why `key` is not part of the job, or `None` when it is.
    fn verdict(&self, key: &str, is_dir: bool) -> Option<LeftOut> {
        if key == ".hbcp" || key.starts_with(HBCP_PREFIX) {
            return Some(LeftOut::HbcpState);
        }
        if let Some(scope) = &self.scope {
            if !scope.contains(key) {
                return Some(LeftOut::Selection);
            }
        }
        if let Some(r) = self.hbase {
            if hbase_leaves_out(key, is_dir, r.include_wals) {
                // Transient first: a `.tmp` under `WALs/` is transient whatever the WAL rule.
                let transient = hbcp_hbase::is_transient(key)
                    || (is_dir && hbcp_hbase::is_transient(&format!("{key}/x")));
                return Some(if transient {
                    LeftOut::Transient
                } else {
                    LeftOut::Wals
                });
            }
        }
        if let Some(set) = &self.exclude {
            if set.is_match(key) {
                return Some(LeftOut::Excluded);
            }
            if !self.component_excludes.is_empty()
                && key
                    .split('/')
                    .any(|c| self.component_excludes.iter().any(|x| x == c))
            {
                return Some(LeftOut::Excluded);
            }
        }
        None
    }

    /// Whether `entry` belongs to the job.
    pub fn accepts(&self, entry: &Entry) -> bool {
        self.accepts_key_kind(&entry.key, entry.kind == EntryKind::Dir)
    }

    /// Why `entry` is not part of the job, or `None` when it is.
    pub fn left_out(&self, entry: &Entry) -> Option<LeftOut> {
        self.verdict(&entry.key, entry.kind == EntryKind::Dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file entry: [`dir`]'s, with a size.
    fn file(key: &str, size: u64) -> Entry {
        Entry {
            size,
            kind: EntryKind::File,
            ..dir(key)
        }
    }

    #[test]
    fn left_out_is_counted_by_reason() {
        let s = Selection::with_excludes(&["*.bak".into()])
            .unwrap()
            .with_hbase_rules(HbaseRules {
                include_wals: false,
            });
        let t = LeftOutTally::default();
        let entries = [
            file("WALs/rs,1,2/rs%2C1%2C2.17", 10),
            file("oldWALs/rs%2C1%2C2.16", 20),
            file(".tmp/hbase-hbck.lock", 3),
            file("data/default/t/.tmp/x", 1),
            file("old.bak", 7),
            file(".hbcp/jobs/x", 9),
            file("data/default/t/r/cf/abc", 100),
            dir("WALs"),
        ];
        let kept: Vec<&str> = entries
            .iter()
            .filter(|e| t.judge(&s, e))
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(kept, ["data/default/t/r/cf/abc"]);
        let c = t.counts();
        assert_eq!(c["wals"].files, 2);
        assert_eq!(c["wals"].bytes, 30);
        assert_eq!(c["hbase_transient"].files, 2);
        assert_eq!(c["excluded"].keys, ["old.bak"]);
        assert!(!c.contains_key("hbcp_state"));
        assert_eq!(
            t.summary(),
            "5 files left out (HBase transient 2, WALs 2, --exclude 1)"
        );
        assert_eq!(LeftOutTally::default().summary(), "nothing left out");
    }

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
