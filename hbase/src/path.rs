//! Path grammar of an HBase root: what each '/'-separated key relative to the root is, from
//! its name alone (HBase 0.94 legacy names through 4.x), so a planner can decide what to copy
//! and which small files to read before touching any bytes.

use std::fmt;

/// A table: namespace and qualifier, as they appear in directory names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// Namespace (`default`, `hbase`, or a user namespace).
    pub namespace: String,
    /// Table qualifier.
    pub qualifier: String,
}

impl TableRef {
    /// A table reference from its two parts.
    pub fn new(namespace: impl Into<String>, qualifier: impl Into<String>) -> Self {
        TableRef {
            namespace: namespace.into(),
            qualifier: qualifier.into(),
        }
    }

    /// Parses HBase's string form: `ns:qualifier`, or a bare qualifier for `default`.
    pub fn from_hbase_name(name: &str) -> Self {
        match name.split_once(':') {
            Some((ns, q)) => TableRef::new(ns, q),
            None => TableRef::new("default", name),
        }
    }
}

impl fmt::Display for TableRef {
    /// HBase's string form: `qualifier` in `default`, `ns:qualifier` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace == "default" {
            f.write_str(&self.qualifier)
        } else {
            write!(f, "{}:{}", self.namespace, self.qualifier)
        }
    }
}

/// The parts of an HFileLink name `[ns=]table=region-hfile`: where the linked HFile lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HFileLinkName {
    /// Table holding the linked HFile.
    pub table: TableRef,
    /// Encoded region of the linked HFile.
    pub region: String,
    /// Name of the linked HFile.
    pub hfile: String,
}

impl HFileLinkName {
    /// Where the linked file is looked for, in HBase's order (data, archive, .tmp, mobdir),
    /// as keys relative to the root, for the given family.
    pub fn candidate_keys(&self, family: &str) -> [String; 4] {
        let tail = format!(
            "{}/{}/{}/{}/{}",
            self.table.namespace, self.table.qualifier, self.region, family, self.hfile
        );
        [
            format!("data/{tail}"),
            format!("archive/data/{tail}"),
            format!(".tmp/data/{tail}"),
            format!("mobdir/data/{tail}"),
        ]
    }
}

/// Where a store file sits: table, region, family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreLocation {
    /// Table.
    pub table: TableRef,
    /// Encoded region name (directory name).
    pub region: String,
    /// Column family.
    pub family: String,
}

/// What a key under the root is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathKind {
    /// `hbase.version`.
    HbaseVersion,
    /// `hbase.id`.
    HbaseId,
    /// `.tabledesc/.tableinfo.<seq>[.<len>]` (or the legacy `<table>/.tableinfo.<seq>`).
    TableDescriptor {
        /// Table.
        table: TableRef,
        /// Sequence number; the highest one is current.
        seq: u64,
        /// Byte length from the 2.5+ `.<len>` suffix.
        len: Option<u64>,
    },
    /// `<region>/.regioninfo`.
    RegionInfo {
        /// Table.
        table: TableRef,
        /// Encoded region name.
        region: String,
    },
    /// A plain HFile (32-hex name, optionally `_SeqId_<n>_` or `_del`).
    HFile {
        /// Where it sits.
        at: StoreLocation,
        /// File name.
        name: String,
        /// Under `archive/` rather than `data/`.
        archived: bool,
    },
    /// A 0-byte HFileLink `[ns=]table=region-hfile`.
    HFileLink {
        /// Where the link sits.
        at: StoreLocation,
        /// File name.
        name: String,
        /// What it points at.
        target: HFileLinkName,
        /// Under `archive/` rather than `data/`.
        archived: bool,
    },
    /// A split/merge Reference `<hfile-or-link>.<parentRegion>`.
    Reference {
        /// Where the reference sits.
        at: StoreLocation,
        /// File name.
        name: String,
        /// Encoded name of the parent region holding the referred-to file.
        parent_region: String,
        /// Name of the referred-to file in the parent's family dir (an HFile or a link).
        hfile: String,
        /// Under `archive/` rather than `data/`.
        archived: bool,
    },
    /// A 0-byte back-reference `archive/…/<cf>/.links-<hfile>/<region>.<table>`.
    BackReference {
        /// Where the archived HFile sits.
        at: StoreLocation,
        /// The archived HFile that is linked to.
        hfile: String,
        /// The back-reference file name (`<linking region>.<linking table>`).
        name: String,
    },
    /// A MOB file under `mobdir/data/`.
    MobFile {
        /// Where it sits.
        at: StoreLocation,
        /// File name.
        name: String,
    },
    /// The FILE store-file tracker list `<cf>/.filelist/f1|f2`.
    FileList {
        /// Family dir it describes.
        at: StoreLocation,
        /// `f1`, `f2`, …
        name: String,
    },
    /// A region server WAL under `WALs/` (or legacy `.logs/`).
    Wal {
        /// Server directory name (`host,port,startcode[-splitting]`).
        server: String,
        /// File name.
        name: String,
        /// The hbase:meta WAL (`….meta`).
        meta: bool,
        /// The server dir carries `-splitting`: crash recovery was under way.
        splitting: bool,
    },
    /// An archived WAL under `oldWALs/` (or legacy `.oldlogs/`).
    OldWal {
        /// File name.
        name: String,
    },
    /// A procedure-store WAL under `MasterProcWALs/`.
    ProcedureWal {
        /// File name.
        name: String,
    },
    /// Anything under `MasterData/` (2.3+ master local region).
    MasterData,
    /// `.hbase-snapshot/<name>/.snapshotinfo`.
    SnapshotInfo {
        /// Snapshot directory name.
        name: String,
    },
    /// `.hbase-snapshot/<name>/data.manifest` or `region-manifest.<enc>`.
    SnapshotManifest {
        /// Snapshot directory name.
        name: String,
    },
    /// Any other file inside a completed snapshot dir (v1 layout files, `.tabledesc`).
    SnapshotOther {
        /// Snapshot directory name.
        name: String,
    },
    /// `<region>/recovered.edits/…` (also under HBASE-20734's misplaced `<ns>/<table>/` dirs).
    RecoveredEdits {
        /// Table, when the key names one.
        table: Option<TableRef>,
        /// Encoded region name.
        region: String,
        /// File name.
        name: String,
    },
    /// Temporary or operational state not copied by default.
    Transient,
    /// A Hadoop `.<name>.crc` sidecar written by the local filesystem.
    CrcSidecar,
    /// Anything else.
    Other,
}

/// The region-level top directories whose content is temporary.
const TRANSIENT_TOP: &[&str] = &[
    ".tmp",
    "corrupt",
    ".corrupt",
    "staging",
    ".hbck",
    ".migration",
    "splitWAL",
];

/// Classifies a key relative to the root by its name alone.
pub fn classify(key: &str) -> PathKind {
    let key = key.trim_start_matches('/');
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let Some(&last) = segs.last() else {
        return PathKind::Other;
    };
    if last.starts_with('.') && last.ends_with(".crc") && last.len() > 5 {
        return PathKind::CrcSidecar;
    }
    if is_transient_segments(&segs) {
        return PathKind::Transient;
    }
    match segs.as_slice() {
        ["hbase.version"] => PathKind::HbaseVersion,
        ["hbase.id"] => PathKind::HbaseId,
        ["WALs" | ".logs", server, name] => PathKind::Wal {
            server: (*server).to_owned(),
            name: (*name).to_owned(),
            meta: name.ends_with(".meta"),
            splitting: server.ends_with("-splitting"),
        },
        ["oldWALs" | ".oldlogs", .., name] => PathKind::OldWal {
            name: (*name).to_owned(),
        },
        ["MasterProcWALs", .., name] => PathKind::ProcedureWal {
            name: (*name).to_owned(),
        },
        ["MasterData", ..] => PathKind::MasterData,
        [".hbase-snapshot" | ".snapshot", snap, rest @ ..] if !rest.is_empty() => {
            let name = (*snap).to_owned();
            match rest {
                [".snapshotinfo"] => PathKind::SnapshotInfo { name },
                ["data.manifest"] => PathKind::SnapshotManifest { name },
                [m] if m.starts_with("region-manifest.") => PathKind::SnapshotManifest { name },
                _ => PathKind::SnapshotOther { name },
            }
        }
        ["data", ns, table, rest @ ..] => table_key(ns, table, rest, false),
        ["archive" | ".archive", "data", ns, table, rest @ ..] => table_key(ns, table, rest, true),
        ["mobdir", "data", ns, table, region, family, name] => PathKind::MobFile {
            at: loc(ns, table, region, family),
            name: (*name).to_owned(),
        },
        // HBASE-20734: recovered.edits under <root>/<ns>/<table>/<region>/ (2.0.4–2.2.0).
        [ns, table, region, "recovered.edits", .., name] => PathKind::RecoveredEdits {
            table: Some(TableRef::new(*ns, *table)),
            region: (*region).to_owned(),
            name: (*name).to_owned(),
        },
        _ => PathKind::Other,
    }
}

fn loc(ns: &str, table: &str, region: &str, family: &str) -> StoreLocation {
    StoreLocation {
        table: TableRef::new(ns, table),
        region: region.to_owned(),
        family: family.to_owned(),
    }
}

fn table_key(ns: &str, table: &str, rest: &[&str], archived: bool) -> PathKind {
    let t = || TableRef::new(ns, table);
    match rest {
        [".tabledesc", f] | [f] if f.starts_with(".tableinfo.") => match parse_tableinfo_name(f) {
            Some((seq, len)) => PathKind::TableDescriptor {
                table: t(),
                seq,
                len,
            },
            None => PathKind::Other,
        },
        [region, ".regioninfo"] => PathKind::RegionInfo {
            table: t(),
            region: (*region).to_owned(),
        },
        [region, "recovered.edits", .., name] => PathKind::RecoveredEdits {
            table: Some(t()),
            region: (*region).to_owned(),
            name: (*name).to_owned(),
        },
        [region, family, ".filelist", name] => PathKind::FileList {
            at: loc(ns, table, region, family),
            name: (*name).to_owned(),
        },
        [region, family, dir, name] if dir.starts_with(".links-") => PathKind::BackReference {
            at: loc(ns, table, region, family),
            hfile: dir.trim_start_matches(".links-").to_owned(),
            name: (*name).to_owned(),
        },
        [region, family, name] if !family.starts_with('.') => {
            store_file(loc(ns, table, region, family), name, archived)
        }
        _ => PathKind::Other,
    }
}

/// Parses `.tableinfo.<10 digits>[.<len>]` into (sequence id, length).
pub fn parse_tableinfo_name(name: &str) -> Option<(u64, Option<u64>)> {
    let rest = name.strip_prefix(".tableinfo.")?;
    let (seq, len) = match rest.split_once('.') {
        Some((s, l)) => (s, Some(l)),
        None => (rest, None),
    };
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq = seq.parse().ok()?;
    let len = match len {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => Some(l.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((seq, len))
}

fn store_file(at: StoreLocation, name: &str, archived: bool) -> PathKind {
    if is_hfile_name(name) {
        return PathKind::HFile {
            at,
            name: name.to_owned(),
            archived,
        };
    }
    if let Ok(target) = parse_hfile_link_name(name) {
        return PathKind::HFileLink {
            at,
            name: name.to_owned(),
            target,
            archived,
        };
    }
    if let Some((hfile, parent)) = parse_reference_name(name) {
        return PathKind::Reference {
            at,
            name: name.to_owned(),
            parent_region: parent.to_owned(),
            hfile: hfile.to_owned(),
            archived,
        };
    }
    PathKind::Other
}

/// HBase's HFile name grammar `[0-9a-f]+(_SeqId_<n>_|_del)?` (`StoreFileInfo.HFILE_NAME_REGEX`),
/// split into the hex id and the suffix: `None` when `name` is not an HFile name.
fn split_hfile_name(name: &str) -> Option<(&str, HFileSuffix)> {
    let hex_end = name
        .bytes()
        .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        .unwrap_or(name.len());
    if hex_end == 0 {
        return None;
    }
    let (id, suffix) = name.split_at(hex_end);
    if suffix.is_empty() {
        return Some((id, HFileSuffix::None));
    }
    if suffix == "_del" {
        return Some((id, HFileSuffix::Del));
    }
    let n = suffix.strip_prefix("_SeqId_")?.strip_suffix('_')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some((id, HFileSuffix::BulkLoad))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HFileSuffix {
    None,
    BulkLoad,
    Del,
}

/// True for HBase's HFile name grammar `[0-9a-f]+(_SeqId_<n>_|_del)?`: what HBase itself takes
/// for a store file (0.90's random decimal longs included).
pub fn is_hfile_name(name: &str) -> bool {
    split_hfile_name(name).is_some()
}

/// True for an HFile name that identifies its file: the grammar of [`is_hfile_name`] with the
/// 32-hex UUID that every writer since 0.92 draws (`HRegionFileSystem.generateUniqueName`),
/// plain or bulk-loaded (`_SeqId_<n>_`). Such a file is written once and never rewritten, and
/// no other file has its name: the same name and size at a target is the same file, wherever
/// it moved (data/ to archive/). Short hex names are not unique (`recovered.edits/` holds
/// 19-digit sequence ids in every region, 0.90 HFiles are random longs) and MOB `_del` files
/// are not kept by this rule: those are compared by content.
pub fn is_unique_hfile_name(name: &str) -> bool {
    matches!(
        split_hfile_name(name),
        Some((id, HFileSuffix::None | HFileSuffix::BulkLoad)) if id.len() == 32
    )
}

fn is_table_name_part(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parses an HFileLink file name `table=region-hfile` or `ns=table=region-hfile`.
pub fn parse_hfile_link_name(name: &str) -> crate::Result<HFileLinkName> {
    let bad = |why: &'static str| crate::Error::malformed("HFileLink name", why, name.to_owned());
    let parts: Vec<&str> = name.split('=').collect();
    let (ns, table, tail) = match parts.as_slice() {
        [t, tail] => ("default", *t, *tail),
        [ns, t, tail] => (*ns, *t, *tail),
        _ => return Err(bad("[ns=]table=region-hfile")),
    };
    if !is_table_name_part(ns) || !is_table_name_part(table) {
        return Err(bad("a valid namespace and table name before '='"));
    }
    let (region, hfile) = tail
        .split_once('-')
        .ok_or_else(|| bad("region-hfile after the last '='"))?;
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("a hex encoded region name"));
    }
    if !is_hfile_name(hfile) {
        return Err(bad("an HFile name after the region"));
    }
    Ok(HFileLinkName {
        table: TableRef::new(ns, table),
        region: region.to_owned(),
        hfile: hfile.to_owned(),
    })
}

/// Splits a Reference file name `<hfile-or-link>.<parentRegion>` into (referred file, parent).
pub fn parse_reference_name(name: &str) -> Option<(&str, &str)> {
    let (file, parent) = name.rsplit_once('.')?;
    if parent.is_empty() || !parent.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if is_hfile_name(file) || parse_hfile_link_name(file).is_ok() {
        Some((file, parent))
    } else {
        None
    }
}

fn is_transient_segments(segs: &[&str]) -> bool {
    match segs {
        [top, ..] if TRANSIENT_TOP.contains(top) => true,
        [".hbase-snapshot" | ".snapshot", ".tmp", ..] => true,
        ["mobdir", ".tmp", ..] => true,
        ["data" | "mobdir", ..] | ["archive", "data", ..] => {
            // Table-, region- and store-level temp dirs, pre-2.5 split/merge staging,
            // and recovered edits still being written.
            let inner = &segs[..segs.len() - 1];
            inner
                .iter()
                .any(|s| matches!(*s, ".tmp" | ".splits" | ".merges" | "splits"))
                || (segs.contains(&"recovered.edits")
                    && segs.last().is_some_and(|l| l.ends_with(".temp")))
        }
        _ => false,
    }
}

/// True for keys a copy skips by default: `.tmp/`, `corrupt/`, `staging/`, `.hbck/`,
/// `.hbase-snapshot/.tmp/`, region and table `.tmp/` dirs, `.splits/`/`.merges/`, `*.temp` edits.
pub fn is_transient(key: &str) -> bool {
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    is_transient_segments(&segs)
}

/// True for write-ahead-log keys: `WALs/`, `oldWALs/`, `MasterProcWALs/`, legacy
/// `.logs/`/`.oldlogs/`, and any `recovered.edits/` file.
pub fn is_wal_family(key: &str) -> bool {
    let mut segs = key.split('/').filter(|s| !s.is_empty());
    let first = segs.next();
    matches!(
        first,
        Some("WALs" | "oldWALs" | "MasterProcWALs" | ".logs" | ".oldlogs")
    ) || key.split('/').any(|s| s == "recovered.edits")
}

/// The table a key belongs to, for `data/`, `archive/data/` and `mobdir/data/` keys.
pub fn table_of(key: &str) -> Option<TableRef> {
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["data", ns, t, ..] | ["archive", "data", ns, t, ..] | ["mobdir", "data", ns, t, ..] => {
            Some(TableRef::new(*ns, *t))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_hfile_names_are_the_uuid_ones() {
        let uuid = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
        for n in [uuid.to_string(), format!("{uuid}_SeqId_12_")] {
            assert!(is_hfile_name(&n) && is_unique_hfile_name(&n), "{n}");
        }
        // HFiles by HBase's grammar, but not unique by name: compared by content.
        for n in [
            "2167868774148288302".to_string(), // 0.90: a random long
            "0000000000000000012".to_string(), // a recovered.edits sequence id
            format!("{uuid}_del"),             // MOB del file
            format!("{uuid}0"),                // 33 hex digits
            uuid[..31].to_string(),
        ] {
            assert!(is_hfile_name(&n), "{n}");
            assert!(!is_unique_hfile_name(&n), "{n}");
        }
        // Not HFiles at all.
        for n in [
            "".to_string(),
            uuid.to_uppercase(),
            format!("{uuid}_SeqId_"),
            format!("{uuid}_SeqId_x_"),
            format!("{uuid}_SeqId_12"),
            format!("{uuid}.crc"),
            format!("{uuid}.6c930cffe9f380e753905208e8dca1fa"),
            "t1=6c930cffe9f380e753905208e8dca1fa-0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_string(),
            ".regioninfo".to_string(),
        ] {
            assert!(!is_hfile_name(&n) && !is_unique_hfile_name(&n), "{n}");
        }
    }

    fn at(ns: &str, t: &str, r: &str, f: &str) -> StoreLocation {
        loc(ns, t, r, f)
    }

    #[test]
    fn classify_table_keys() {
        let r = "6c930cffe9f380e753905208e8dca1fa";
        assert_eq!(classify("hbase.version"), PathKind::HbaseVersion);
        assert_eq!(classify("hbase.id"), PathKind::HbaseId);
        assert_eq!(
            classify(&format!("data/default/t1/{r}/cf/0123abcd")),
            PathKind::HFile {
                at: at("default", "t1", r, "cf"),
                name: "0123abcd".into(),
                archived: false
            }
        );
        assert_eq!(
            classify(&format!("archive/data/ns/t1/{r}/cf/0123abcd_SeqId_4_")),
            PathKind::HFile {
                at: at("ns", "t1", r, "cf"),
                name: "0123abcd_SeqId_4_".into(),
                archived: true
            }
        );
        assert_eq!(
            classify("data/default/t1/.tabledesc/.tableinfo.0000000002.1234"),
            PathKind::TableDescriptor {
                table: TableRef::new("default", "t1"),
                seq: 2,
                len: Some(1234)
            }
        );
        assert_eq!(
            classify(&format!("data/default/t1/{r}/.regioninfo")),
            PathKind::RegionInfo {
                table: TableRef::new("default", "t1"),
                region: r.into()
            }
        );
        match classify(&format!("data/default/clone/{r}/cf/ns=t.x=abc123-deadbeef")) {
            PathKind::HFileLink { target, .. } => {
                assert_eq!(target.table, TableRef::new("ns", "t.x"));
                assert_eq!(target.region, "abc123");
                assert_eq!(target.hfile, "deadbeef");
            }
            other => panic!("{other:?}"),
        }
        match classify(&format!("data/default/t1/{r}/cf/deadbeef.0011aa")) {
            PathKind::Reference {
                parent_region,
                hfile,
                ..
            } => {
                assert_eq!(parent_region, "0011aa");
                assert_eq!(hfile, "deadbeef");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(&format!(
                "archive/data/default/t1/{r}/cf/.links-deadbeef/{r}.clone"
            )),
            PathKind::BackReference { .. }
        ));
        assert!(matches!(
            classify(&format!("data/default/t1/{r}/cf/.filelist/f1")),
            PathKind::FileList { .. }
        ));
        assert!(matches!(
            classify("mobdir/data/default/t1/abc/cf/x"),
            PathKind::MobFile { .. }
        ));
    }

    #[test]
    fn classify_operational_keys() {
        assert_eq!(
            classify("WALs/h,16020,1-splitting/h%2C16020%2C1.meta.5.meta"),
            PathKind::Wal {
                server: "h,16020,1-splitting".into(),
                name: "h%2C16020%2C1.meta.5.meta".into(),
                meta: true,
                splitting: true
            }
        );
        assert!(matches!(classify("oldWALs/x.1"), PathKind::OldWal { .. }));
        assert!(matches!(
            classify("MasterProcWALs/pv2-00000000000000000001.log"),
            PathKind::ProcedureWal { .. }
        ));
        assert_eq!(
            classify("MasterData/data/master/store/x"),
            PathKind::MasterData
        );
        assert_eq!(
            classify(".hbase-snapshot/s1/.snapshotinfo"),
            PathKind::SnapshotInfo { name: "s1".into() }
        );
        assert_eq!(
            classify(".hbase-snapshot/s1/data.manifest"),
            PathKind::SnapshotManifest { name: "s1".into() }
        );
        assert_eq!(
            classify(".hbase-snapshot/.tmp/s1/data.manifest"),
            PathKind::Transient
        );
        assert_eq!(classify(".tmp/hbase-hbck.lock"), PathKind::Transient);
        assert_eq!(classify("data/default/t1/abc/.tmp/x"), PathKind::Transient);
        assert_eq!(
            classify("data/default/t1/abc/recovered.edits/0000000000000000005.temp"),
            PathKind::Transient
        );
        assert_eq!(
            classify("data/default/t1/abc/cf/.0123.crc"),
            PathKind::CrcSidecar
        );
        assert!(matches!(
            classify("hbase/meta/1588230740/recovered.edits/1.seqid"),
            PathKind::RecoveredEdits { table: Some(_), .. }
        ));
        assert!(is_wal_family("WALs/a/b") && is_wal_family("data/d/t/r/recovered.edits/1.seqid"));
        assert!(!is_wal_family("data/d/t/r/cf/abc"));
        assert!(is_transient("staging/x") && !is_transient("data/d/t/r/cf/abc"));
        assert_eq!(
            table_of("mobdir/data/ns/t/r/cf/x"),
            Some(TableRef::new("ns", "t"))
        );
    }

    #[test]
    fn link_name_errors_name_the_grammar() {
        let e = parse_hfile_link_name("no-equals").unwrap_err().to_string();
        assert!(e.contains("[ns=]table=region-hfile"), "{e}");
        assert!(parse_hfile_link_name("t=zz-abc").is_err());
        assert!(parse_hfile_link_name("a=b=c=d-e").is_err());
    }
}
