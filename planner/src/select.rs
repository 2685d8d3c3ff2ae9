//! Which listing entries belong to a job.
//!
//! hbcp's own folder (`.hbcp/`) is never part of a job. `--exclude GLOB` patterns match the
//! relative key (`**/.tmp/**`, `WALs/**`); a pattern without `/` also matches any single path
//! component, so `--exclude .tmp` leaves out every `.tmp` folder.

use globset::{Glob, GlobSet, GlobSetBuilder};
use hbcp_store::Entry;

use crate::{Error, Result};

/// A job's selection of keys.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    exclude: Option<GlobSet>,
    component_excludes: Vec<String>,
    patterns: Vec<String>,
}

/// The folder at the top of a root where hbcp keeps its own state.
pub const HBCP_PREFIX: &str = ".hbcp/";

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
        })
    }

    /// The patterns, for the plan header and the job identity.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `key` belongs to the job.
    pub fn accepts_key(&self, key: &str) -> bool {
        if key == ".hbcp" || key.starts_with(HBCP_PREFIX) {
            return false;
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
        self.accepts_key(&entry.key)
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
}
