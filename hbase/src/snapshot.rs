//! Snapshot metadata: `.snapshotinfo`, the v2 `data.manifest` / `region-manifest.*`, and the
//! v1 layout (region dirs inside the snapshot dir). From these the copier learns which
//! HFiles a snapshot needs without listing any directory.

use prost::Message;

use crate::error::{Error, Result};
use crate::meta::{Reference, RegionInfo, TableDescriptor};
use crate::path::{TableRef, is_hfile_name, parse_hfile_link_name, parse_reference_name};
use crate::pb;

/// Content of `.snapshotinfo` (SnapshotDescription).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Snapshot name (may differ from its directory name).
    pub name: String,
    /// Table the snapshot is of.
    pub table: Option<TableRef>,
    /// Creation time in ms.
    pub creation_time: i64,
    /// Type: 0 DISABLED, 1 FLUSH, 2 SKIPFLUSH.
    pub kind: i32,
    /// Layout version: 0 = v1 (region dirs), 2 = v2 (`data.manifest`).
    pub version: i32,
    /// Owner.
    pub owner: Option<String>,
    /// Time to live in seconds (0 or -1 = forever).
    pub ttl: i64,
}

/// Parses `.snapshotinfo`: raw SnapshotDescription (no PBUF magic).
pub fn parse_snapshot_info(bytes: &[u8]) -> Result<SnapshotInfo> {
    const WHAT: &str = ".snapshotinfo";
    let m = pb::SnapshotDescriptionPb::decode(bytes).map_err(Error::pb(WHAT))?;
    let name = m
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::malformed(WHAT, "field 1 name", "none"))?;
    Ok(SnapshotInfo {
        name,
        table: m.table.as_deref().map(TableRef::from_hbase_name),
        creation_time: m.creation_time.unwrap_or(0),
        kind: m.r#type.unwrap_or(1),
        version: m.version.unwrap_or(0),
        owner: m.owner,
        ttl: m.ttl.unwrap_or(0),
    })
}

/// A store file named in a region manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStoreFile {
    /// File name: an HFile, HFileLink or Reference name (no path).
    pub name: String,
    /// Reference content, for reference files.
    pub reference: Option<Reference>,
    /// Size of the physical file the name leads to.
    pub file_size: Option<u64>,
}

/// Files of one family in a region manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyFiles {
    /// Column family.
    pub family: String,
    /// Store files.
    pub files: Vec<SnapshotStoreFile>,
}

/// One region of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionManifest {
    /// The region.
    pub region: RegionInfo,
    /// Encoded region name as named by the directory or manifest (filled for v1 layouts).
    pub encoded_name: Option<String>,
    /// Families and their files.
    pub families: Vec<FamilyFiles>,
}

/// A v2 `data.manifest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotManifest {
    /// Table schema.
    pub table: TableDescriptor,
    /// Regions.
    pub regions: Vec<RegionManifest>,
}

/// A physical HFile a snapshot needs, where HBase would look for it (relative to the
/// table's data/archive dirs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReferencedHFile {
    /// Table that owns the file (the link target's table for links).
    pub table: TableRef,
    /// Encoded region name.
    pub region: String,
    /// Column family.
    pub family: String,
    /// HFile name.
    pub hfile: String,
}

impl ReferencedHFile {
    /// Where ExportSnapshot writes it at the target: `archive/data/<ns>/<t>/<r>/<cf>/<hfile>`.
    pub fn archive_key(&self) -> String {
        format!(
            "archive/data/{}/{}/{}/{}/{}",
            self.table.namespace, self.table.qualifier, self.region, self.family, self.hfile
        )
    }
}

/// Resolves a store-file name in a region dir to the physical HFile: plain HFiles to
/// themselves, links to their target, references to the parent region's file (recursively
/// through a link). `None` for names of no known grammar.
pub fn resolve_store_file(
    table: &TableRef,
    region: &str,
    family: &str,
    name: &str,
) -> Option<ReferencedHFile> {
    if is_hfile_name(name) {
        return Some(ReferencedHFile {
            table: table.clone(),
            region: region.to_owned(),
            family: family.to_owned(),
            hfile: name.to_owned(),
        });
    }
    if let Ok(l) = parse_hfile_link_name(name) {
        return Some(ReferencedHFile {
            table: l.table,
            region: l.region,
            family: family.to_owned(),
            hfile: l.hfile,
        });
    }
    let (file, parent) = parse_reference_name(name)?;
    resolve_store_file(table, parent, family, file)
}

fn region_from_pb(m: pb::SnapshotRegionManifestPb) -> Result<RegionManifest> {
    const WHAT: &str = "snapshot region manifest";
    let region = RegionInfo::from_pb(
        WHAT,
        m.region_info
            .ok_or_else(|| Error::malformed(WHAT, "field 2 region_info", "none"))?,
    )?;
    let mut families = Vec::with_capacity(m.family_files.len());
    for f in m.family_files {
        let mut files = Vec::with_capacity(f.store_files.len());
        for s in f.store_files {
            files.push(SnapshotStoreFile {
                name: s
                    .name
                    .ok_or_else(|| Error::malformed(WHAT, "a store file name", "none"))?,
                reference: s
                    .reference
                    .map(|r| Reference::from_pb(WHAT, r))
                    .transpose()?,
                file_size: s.file_size,
            });
        }
        families.push(FamilyFiles {
            family: String::from_utf8_lossy(&f.family_name).into_owned(),
            files,
        });
    }
    Ok(RegionManifest {
        region,
        encoded_name: None,
        families,
    })
}

/// Parses a `region-manifest.<enc>` file (raw SnapshotRegionManifest) of an unconsolidated v2 snapshot.
pub fn parse_region_manifest(bytes: &[u8]) -> Result<RegionManifest> {
    let m = pb::SnapshotRegionManifestPb::decode(bytes)
        .map_err(Error::pb("snapshot region manifest"))?;
    region_from_pb(m)
}

/// Parses `data.manifest`: raw SnapshotDataManifest.
pub fn parse_snapshot_manifest(bytes: &[u8]) -> Result<SnapshotManifest> {
    const WHAT: &str = "data.manifest";
    let m = pb::SnapshotDataManifestPb::decode(bytes).map_err(Error::pb(WHAT))?;
    let schema = m
        .table_schema
        .ok_or_else(|| Error::malformed(WHAT, "field 1 table_schema", "none"))?;
    let table = TableDescriptor::from_pb(WHAT, schema)?;
    let regions = m
        .region_manifests
        .into_iter()
        .map(region_from_pb)
        .collect::<Result<_>>()?;
    Ok(SnapshotManifest { table, regions })
}

impl SnapshotManifest {
    /// Every physical HFile the snapshot needs, de-duplicated and sorted; references count
    /// as their parent's file. Names of unknown grammar are skipped.
    pub fn referenced_hfiles(&self) -> Vec<ReferencedHFile> {
        let table = &self.table.table;
        let mut out: Vec<ReferencedHFile> = self
            .regions
            .iter()
            .flat_map(|r| {
                let enc = r
                    .encoded_name
                    .clone()
                    .unwrap_or_else(|| r.region.encoded_name());
                r.families.iter().flat_map(move |f| {
                    let enc = enc.clone();
                    f.files
                        .iter()
                        .filter_map(move |s| resolve_store_file(table, &enc, &f.family, &s.name))
                })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The files of a v1 snapshot (0.94–0.98 layout), from the keys *inside* the snapshot dir:
/// `<region>/<family>/<hfile-marker>` entries name the referenced HFiles of `table`.
pub fn v1_referenced_hfiles<'a>(
    table: &TableRef,
    keys: impl IntoIterator<Item = &'a str>,
) -> Vec<ReferencedHFile> {
    let mut out: Vec<ReferencedHFile> = keys
        .into_iter()
        .filter_map(|k| {
            let segs: Vec<&str> = k.split('/').filter(|s| !s.is_empty()).collect();
            match segs.as_slice() {
                [region, family, name] if !region.starts_with('.') && !family.starts_with('.') => {
                    resolve_store_file(table, region, family, name)
                }
                _ => None,
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
