//! Test kit for hbcp: generators of realistic HBase root folders ([`hbase_tree`]) with just enough
//! protobuf encoding ([`pb`]) to write HBase's small files as HBase does. Used by the
//! integration tests, the benchmark scripts (through the `hbcp-gen` binary) and to make the
//! bundled sample in `examples/hbase-sample`.
#![warn(missing_docs)]

pub mod hbase_tree;
pub mod pb;

pub use hbase_tree::{Spec, Summary, generate};

#[cfg(test)]
mod tests {
    use super::hbase_tree::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;

    fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    let k = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.insert(k, fs::read(&p).unwrap());
                }
            }
        }
        walk(root, root, &mut out);
        out
    }

    #[test]
    fn same_seed_same_tree_other_seed_other_tree() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let s = Spec::sample();
        let sa = generate(a.path(), &s, 7).unwrap();
        generate(b.path(), &s, 7).unwrap();
        generate(c.path(), &s, 8).unwrap();
        assert_eq!(tree(a.path()), tree(b.path()));
        assert_ne!(tree(a.path()), tree(c.path()));
        assert_eq!(sa.files as usize, tree(a.path()).len());
        assert_eq!(
            sa.bytes,
            tree(a.path()).values().map(|v| v.len() as u64).sum::<u64>()
        );
    }

    #[test]
    fn region_dirs_are_the_md5_of_their_region_name() {
        // The research's real example: my_table,,1733179231941 → 6c930cffe9f380e753905208e8dca1fa.
        assert_eq!(
            encoded_region_name("my_table", b"", 1733179231941),
            "6c930cffe9f380e753905208e8dca1fa"
        );
        assert_eq!(
            encoded_region_name("test-table", b"50", 1652120363846)[..8],
            *"90bb1f99"
        );
    }

    #[test]
    fn hfiles_end_in_a_v3_trailer_and_sizes_hit_the_boundaries() {
        let d = tempfile::tempdir().unwrap();
        let r = 64 * 1024;
        let spec = Spec {
            tables: vec![table("default", "t", 1, &["cf"], 8)],
            hfile_sizes: Spec::boundary_sizes(r),
            extras: false,
        };
        generate(d.path(), &spec, 1).unwrap();
        let t = tree(d.path());
        let hfiles: Vec<(&String, &Vec<u8>)> = t
            .iter()
            .filter(|(k, _)| {
                k.starts_with("data/default/t/")
                    && k.split('/').nth(5).is_some_and(|n| n.len() == 32)
            })
            .collect();
        assert_eq!(hfiles.len(), 8);
        let sizes: Vec<u64> = hfiles.iter().map(|(_, v)| v.len() as u64).collect();
        for want in [r - 1, r, r + 1, 3 * r, 3 * r - 1, 3 * r + 1] {
            assert!(sizes.contains(&want), "{want} in {sizes:?}");
        }
        for (k, v) in hfiles {
            let n = v.len();
            assert_eq!(&v[n - 4..], &[3, 0, 0, 3], "{k}: version word v3.3");
            assert_eq!(&v[n - 4096..n - 4088], b"TRABLK\"$", "{k}: trailer magic");
        }
    }

    #[test]
    fn links_and_references_point_at_files_that_exist() {
        let d = tempfile::tempdir().unwrap();
        generate(d.path(), &Spec::sample(), 3).unwrap();
        let t = tree(d.path());
        let mut links = 0;
        let mut refs = 0;
        for k in t.keys() {
            let parts: Vec<&str> = k.split('/').collect();
            let name = *parts.last().unwrap();
            if parts[0] != "data" || parts.len() != 6 {
                continue;
            }
            if let Some((table, rest)) = name.split_once('=') {
                let (region, hfile) = rest.split_once('-').unwrap();
                let target = format!("data/{}/{table}/{region}/{}/{hfile}", parts[1], parts[4]);
                assert!(t.contains_key(&target), "link {k} → {target}");
                assert!(t[k].is_empty());
                links += 1;
            } else if let Some((hfile, parent)) = name.split_once('.') {
                let target = format!(
                    "data/{}/{}/{parent}/{}/{hfile}",
                    parts[1], parts[2], parts[4]
                );
                assert!(t.contains_key(&target), "reference {k} → {target}");
                assert!(t[k].starts_with(b"PBUF"));
                refs += 1;
            }
        }
        assert!(links > 0 && refs > 0, "{links} links, {refs} references");
        assert!(
            t.keys()
                .any(|k| k.starts_with("WALs/") && k.contains("%2C"))
        );
        assert_eq!(t["hbase.version"], b"PBUF\x0a\x018");
    }
}
