//! HBase selections: `--table` with the closure of its links and references, `--layout
//! bulkload`, `--start-row/--end-row`, `--snapshot` (ExportSnapshot's layout) and `hbcp
//! snapshots`, `--since/--until`, and the preflight guard narrowed to the selected tables.
//! Expectations are computed from the source trees (generated ones, and the real snapshot exports
//! and root dirs), never written down.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hbcp_testkit::hbase_tree::{Spec, generate, table};
use hbcp_testkit::pb::{Msg, pbuf};

use crate::util::*;

/// Regular files of a tree (no `.hbcp/`): key → (size, hash).
fn files(root: &Path) -> BTreeMap<String, (u64, u64)> {
    digest(root)
        .into_iter()
        .filter(|(_, (dir, _, _))| !dir)
        .map(|(k, (_, n, h))| (k, (n, h)))
        .collect()
}

fn sample(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    generate(&src, &Spec::sample(), 7).unwrap();
    src
}

fn keys_under<'a>(f: &'a BTreeMap<String, (u64, u64)>, prefix: &str) -> Vec<&'a String> {
    f.keys().filter(|k| k.starts_with(prefix)).collect()
}

/// Region dirs of a table at a root: encoded name → parsed `.regioninfo`.
fn regions(root: &Path, ns: &str, t: &str) -> BTreeMap<String, hbcp_hbase::RegionInfo> {
    let tdir = root.join("data").join(ns).join(t);
    let mut out = BTreeMap::new();
    for e in fs::read_dir(&tdir).unwrap() {
        let p = e.unwrap().path();
        let ri = p.join(".regioninfo");
        if ri.is_file() {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(
                name,
                hbcp_hbase::parse_region_info(&fs::read(ri).unwrap()).unwrap(),
            );
        }
    }
    out
}

#[test]
fn copy_table_brings_the_hfiles_its_links_point_to_from_data_or_archive() {
    let t = tempfile::tempdir().unwrap();
    let src = sample(t.path());
    let before = files(&src);
    let clone = "data/default/usertable_clone/";
    let links: Vec<String> = keys_under(&before, clone)
        .into_iter()
        .filter(|k| k.rsplit('/').next().unwrap().contains('='))
        .cloned()
        .collect();
    assert!(
        links.len() >= 4,
        "the sample has a clone made of links: {links:?}"
    );
    // A compaction moved the first link's target to the archive, as HBase does.
    let target_of = |link: &str| {
        let (dir, name) = link.rsplit_once('/').unwrap();
        let family = dir.rsplit('/').next().unwrap();
        let (table, rest) = name.split_once('=').unwrap();
        let (region, hfile) = rest.split_once('-').unwrap();
        format!("data/default/{table}/{region}/{family}/{hfile}")
    };
    let moved = target_of(&links[0]);
    let archived = format!("archive/{moved}");
    fs::create_dir_all(src.join(&archived).parent().unwrap()).unwrap();
    fs::rename(src.join(&moved), src.join(&archived)).unwrap();
    let before = files(&src);

    let dst = t.path().join("dst");
    let r = copy(&src, &dst, &["--table", "default:usertable_clone"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut want: BTreeSet<String> = keys_under(&before, clone).into_iter().cloned().collect();
    want.insert("hbase.version".into());
    want.insert("hbase.id".into());
    for l in &links {
        let d = target_of(l);
        want.insert(if before.contains_key(&d) {
            d
        } else {
            format!("archive/{d}")
        });
    }
    assert!(want.contains(&archived));
    let got = files(&dst);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), want);
    for (k, v) in &got {
        assert_eq!(
            Some(v),
            before.get(k),
            "{k} is byte-identical to the source"
        );
    }
    // The verifier judges the same selection: clean now, a missing linked HFile after.
    let verify = || {
        hbcp([
            "verify",
            &s(&src),
            &s(&dst),
            "--table",
            "usertable_clone",
            "--progress",
            "none",
        ])
    };
    let v = verify();
    assert_eq!(v.code, 0, "{v:?}");
    // The selection owns its regions' folders at the target: a file there that the source
    // lacks is extra; a file of another table is none of its business.
    let region_dir = dst.join(links[0].rsplit_once('/').unwrap().0);
    fs::write(
        region_dir.join("0123456789abcdef0123456789abcdef"),
        b"stray",
    )
    .unwrap();
    fs::create_dir_all(dst.join("data/default/othertable/r1/cf")).unwrap();
    fs::write(dst.join("data/default/othertable/r1/cf/f"), b"other").unwrap();
    let v = verify();
    assert_eq!(v.code, 1, "{v:?}");
    let extras: Vec<&str> = v
        .stdout
        .lines()
        .filter(|l| l.starts_with("extra: "))
        .collect();
    assert_eq!(extras.len(), 1, "{v:?}");
    assert!(
        extras[0].ends_with("/0123456789abcdef0123456789abcdef"),
        "{v:?}"
    );
    fs::remove_file(region_dir.join("0123456789abcdef0123456789abcdef")).unwrap();
    fs::remove_file(dst.join(&archived)).unwrap();
    let v = verify();
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stdout.contains(&archived) || v.stderr.contains(&archived),
        "{v:?}"
    );
}

#[test]
fn copy_table_layout_bulkload_materialises_links_and_references() {
    let t = tempfile::tempdir().unwrap();
    let src = sample(t.path());
    // The split parent of the sample, marked split and offline as HBase leaves it: bulkload
    // reads it only through its daughters' References.
    let before = files(&src);
    let refs: Vec<&String> = keys_under(&before, "data/default/usertable/")
        .into_iter()
        .filter(|k| {
            let n = k.rsplit('/').next().unwrap();
            !n.starts_with('.') && n.contains('.')
        })
        .collect();
    assert!(!refs.is_empty(), "the sample has a split with References");
    let parent = refs[0].rsplit('.').next().unwrap().to_string();
    let ri_path = src.join(format!("data/default/usertable/{parent}/.regioninfo"));
    let ri = hbcp_hbase::parse_region_info(&fs::read(&ri_path).unwrap()).unwrap();
    let tn = Msg::new().bytes(1, b"default").bytes(2, b"usertable");
    let split = Msg::new()
        .uint(1, ri.region_id as u64)
        .msg(2, &tn)
        .bytes(3, &ri.start_key)
        .bytes(4, &ri.end_key)
        .uint(5, 1)
        .uint(6, 1)
        .uint(7, 0);
    fs::write(&ri_path, pbuf(&split.delimited())).unwrap();
    assert!(
        hbcp_hbase::parse_region_info(&fs::read(&ri_path).unwrap())
            .unwrap()
            .split
    );
    let before = files(&src);

    let dst = t.path().join("dst");
    let r = copy(
        &src,
        &dst,
        &["--table", "usertable", "--layout", "bulkload"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // <table>/<family>/<hfile>: every HFile of the live regions, and each parent HFile a
    // Reference points to, once and whole.
    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (k, v) in keys_under(&before, "data/default/usertable/")
        .into_iter()
        .map(|k| (k, before[k]))
    {
        let parts: Vec<&str> = k.split('/').collect();
        let [_, _, _, region, family, name] = parts[..] else {
            continue;
        };
        if name.starts_with('.') || region.starts_with('.') {
            continue;
        }
        if let Some((hfile, parent_region)) = name.split_once('.') {
            let p = format!("data/default/usertable/{parent_region}/{family}/{hfile}");
            want.insert(format!("usertable/{family}/{hfile}"), before[&p]);
        } else if region != parent {
            want.insert(format!("usertable/{family}/{name}"), v);
        }
    }
    assert_eq!(files(&dst), want);

    // A clone of links, bulkloaded: the linked HFiles under the clone's name.
    let dst2 = t.path().join("dst2");
    let r = copy(
        &src,
        &dst2,
        &["--table", "usertable_clone", "--layout", "bulkload"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let got = files(&dst2);
    let links = keys_under(&before, "data/default/usertable_clone/")
        .into_iter()
        .filter(|k| k.contains('='))
        .count();
    assert_eq!(got.len(), links, "{got:?}");
    for (k, v) in &got {
        let hfile = k.strip_prefix("usertable_clone/cf/").expect(k);
        let found: Vec<_> = before
            .iter()
            .filter(|(sk, _)| {
                sk.starts_with("data/default/usertable/") && sk.ends_with(&format!("/{hfile}"))
            })
            .collect();
        assert_eq!(found.len(), 1, "{k}");
        assert_eq!(found[0].1, v, "{k} holds the linked HFile's bytes");
    }
}

#[test]
fn copy_table_start_row_end_row_copies_only_the_regions_that_overlap() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let spec = Spec {
        tables: vec![
            table("default", "wide", 6, &["cf"], 1),
            table("default", "other", 2, &["cf"], 1),
        ],
        hfile_sizes: vec![5000],
        extras: false,
    };
    generate(&src, &spec, 11).unwrap();
    let regs = regions(&src, "default", "wide");
    assert_eq!(regs.len(), 6);
    let mut by_start: Vec<(&String, &hbcp_hbase::RegionInfo)> = regs.iter().collect();
    by_start.sort_by(|a, b| a.1.start_key.cmp(&b.1.start_key));
    // From inside the second region to the start of the fourth (exclusive).
    let mut start = by_start[1].1.start_key.clone();
    start.push(b'8');
    let end = by_start[3].1.start_key.clone();
    let overlaps = |r: &hbcp_hbase::RegionInfo| {
        (r.end_key.is_empty() || start.as_slice() < r.end_key.as_slice())
            && r.start_key.as_slice() < end.as_slice()
    };
    let want_regions: BTreeSet<&String> = regs
        .iter()
        .filter(|(_, r)| overlaps(r))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(want_regions.len(), 2, "{want_regions:?}");

    let dst = t.path().join("dst");
    let (sk, ek) = (
        String::from_utf8(start.clone()).unwrap(),
        String::from_utf8(end.clone()).unwrap(),
    );
    let r = copy(
        &src,
        &dst,
        // A generated root without extras has no WALs.
        &[
            "--table",
            "wide",
            "--start-row",
            &sk,
            "--end-row",
            &ek,
            "--no-wals-expected",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let got = files(&dst);
    let got_regions: BTreeSet<&str> = got
        .keys()
        .filter_map(|k| k.strip_prefix("data/default/wide/"))
        .map(|k| k.split('/').next().unwrap())
        .filter(|r| !r.starts_with('.'))
        .collect();
    assert_eq!(
        got_regions,
        want_regions.iter().map(|s| s.as_str()).collect()
    );
    assert!(got.contains_key("data/default/wide/.tabledesc/.tableinfo.0000000001"));
    assert!(keys_under(&got, "data/default/other/").is_empty());
    let src_files = files(&src);
    for r in &want_regions {
        for k in keys_under(&src_files, &format!("data/default/wide/{r}/")) {
            assert_eq!(got.get(k), src_files.get(k), "{k}");
        }
    }
    // An open end: every region from the key on.
    let dst2 = t.path().join("dst2");
    let r = copy(
        &src,
        &dst2,
        &["--table", "wide", "--start-row", &sk, "--no-wals-expected"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let n = files(&dst2)
        .keys()
        .filter(|k| k.ends_with("/.regioninfo"))
        .count();
    assert_eq!(n, 5, "all but the first region");
}

/// The three real snapshot exports, unpacked: (fixture, HBase root inside).
fn snapshot_exports(dir: &Path) -> Vec<(String, PathBuf)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hbase-real/snapshots");
    let mut out = Vec::new();
    let mut names: Vec<String> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let d = dir.join(&n);
        fs::create_dir_all(&d).unwrap();
        if n.ends_with(".zip") {
            zip::ZipArchive::new(fs::File::open(base.join(&n)).unwrap())
                .unwrap()
                .extract(&d)
                .unwrap();
        } else if n.ends_with(".tar.gz") {
            let st = std::process::Command::new("tar")
                .arg("xzf")
                .arg(base.join(&n))
                .arg("-C")
                .arg(&d)
                .status()
                .unwrap();
            assert!(st.success());
        } else {
            continue;
        }
        // The root is the top folder holding `.hbase-snapshot/` (the zip has a sibling folder).
        let top: Vec<PathBuf> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join(".hbase-snapshot").is_dir())
            .collect();
        assert_eq!(top.len(), 1, "{n}: {top:?}");
        out.push((n, top[0].clone()));
    }
    out
}

fn is_hfile_name(k: &str) -> bool {
    let n = k.rsplit('/').next().unwrap();
    !n.starts_with('.') && !n.ends_with(".crc")
}

#[test]
fn snapshots_lists_and_copy_snapshot_exports_each_real_snapshot_closure() {
    let t = tempfile::tempdir().unwrap();
    let exports = snapshot_exports(t.path());
    assert_eq!(exports.len(), 3, "{exports:?}");
    let mut seen = 0;
    for (fixture, root) in &exports {
        let src_files = files(root);
        let r = hbcp(["snapshots", &s(root), "--json"]);
        assert_eq!(r.code, 0, "{fixture}: {r:?}");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
        let dirs: BTreeSet<&str> = src_files
            .keys()
            .filter_map(|k| k.strip_prefix(".hbase-snapshot/"))
            .map(|k| k.split('/').next().unwrap())
            .filter(|d| *d != ".tmp")
            .collect();
        assert_eq!(rows.len(), dirs.len(), "{fixture}: {rows:?}");
        for row in &rows {
            let (name, dir, tbl) = (
                row["name"].as_str().unwrap(),
                row["dir"].as_str().unwrap(),
                row["table"].as_str().unwrap(),
            );
            let (ns, q) = tbl.split_once(':').unwrap();
            // The HFiles the manifest names, where an export puts them.
            let man = hbcp_hbase::parse_snapshot_manifest(
                &fs::read(root.join(format!(".hbase-snapshot/{dir}/data.manifest"))).unwrap(),
            )
            .unwrap();
            let mut named = BTreeSet::new();
            for r in &man.regions {
                let enc = r
                    .encoded_name
                    .clone()
                    .unwrap_or_else(|| r.region.encoded_name());
                for f in &r.families {
                    for sf in &f.files {
                        assert!(sf.reference.is_none() && !sf.name.contains('='));
                        named.insert(format!(
                            "archive/data/{ns}/{q}/{enc}/{}/{}",
                            f.family, sf.name
                        ));
                    }
                }
            }
            let hfiles: BTreeSet<&String> =
                src_files.keys().filter(|k| named.contains(*k)).collect();
            assert_eq!(
                hfiles.len(),
                named.len(),
                "{fixture} {name}: every named HFile is in the export"
            );
            assert!(!hfiles.is_empty(), "{fixture} {name}");
            assert_eq!(
                row["hfiles"].as_u64(),
                Some(hfiles.len() as u64),
                "{fixture} {name}"
            );
            assert_eq!(row["missing"].as_u64(), Some(0), "{fixture} {name}");

            let dst = t.path().join(format!("dst-{fixture}-{dir}"));
            let c = copy(root, &dst, &["--snapshot", name]);
            assert_eq!(c.code, 0, "{fixture} {name}: {c:?}");
            let got = files(&dst);
            let mut want: BTreeSet<&String> =
                keys_under(&src_files, &format!(".hbase-snapshot/{dir}/"))
                    .into_iter()
                    .collect();
            want.extend(hfiles.iter().copied());
            assert_eq!(
                got.keys().collect::<BTreeSet<_>>(),
                want,
                "{fixture} {name}"
            );
            for (k, v) in &got {
                assert_eq!(Some(v), src_files.get(k), "{k}");
            }
            assert!(
                !dst.join(".hbase-snapshot/.tmp").join(dir).exists(),
                "published"
            );
            seen += 1;
        }
    }
    assert!(seen >= 5, "every snapshot of the three exports: {seen}");
}

/// (min, max) cell time of a real HFile, read with the hbase crate.
fn time_range(p: &Path) -> (i64, i64) {
    let b = fs::read(p).unwrap();
    let size = b.len() as u64;
    let tail = hbcp_hbase::HFileTrailer::tail_range(size);
    let tr = hbcp_hbase::HFileTrailer::parse(&b[tail.start as usize..], size).unwrap();
    let r = tr.load_on_open_range(size);
    let info =
        hbcp_hbase::read_file_info(&b[r.start as usize..r.end as usize], r.start, &tr).unwrap();
    info.time_range.expect("a flushed HFile has a TIMERANGE")
}

#[test]
fn copy_snapshot_bulkload_since_until_selects_hfiles_by_their_cell_time_range() {
    let t = tempfile::tempdir().unwrap();
    let exports = snapshot_exports(t.path());
    let (_, root) = exports
        .iter()
        .find(|(n, _)| n.contains("2022-04"))
        .expect("the 2022 export");
    let src_files = files(root);
    let hfiles: Vec<(String, (i64, i64))> = keys_under(&src_files, "archive/data/default/test/")
        .into_iter()
        .filter(|k| is_hfile_name(k))
        .map(|k| (k.clone(), time_range(&root.join(k))))
        .collect();
    assert!(hfiles.len() >= 3);
    let mut maxes: Vec<i64> = hfiles.iter().map(|(_, r)| r.1).collect();
    maxes.sort();
    maxes.dedup();
    assert!(
        maxes.len() >= 2,
        "the HFiles were flushed at different times: {hfiles:?}"
    );
    let since = maxes[maxes.len() / 2];
    let want: BTreeSet<String> = hfiles
        .iter()
        .filter(|(_, (_, max))| *max >= since)
        .map(|(k, _)| format!("test/cf/{}", k.rsplit('/').next().unwrap()))
        .collect();
    assert!(!want.is_empty() && want.len() < hfiles.len());
    let dst = t.path().join("since");
    let r = copy(
        root,
        &dst,
        &[
            "--snapshot",
            "test-snapshot",
            "--layout",
            "bulkload",
            "--since",
            &since.to_string(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(files(&dst).into_keys().collect::<BTreeSet<_>>(), want);

    // --until is exclusive: HFiles whose oldest cell is before it.
    let mut mins: Vec<i64> = hfiles.iter().map(|(_, r)| r.0).collect();
    mins.sort();
    let until = mins[mins.len() / 2];
    let want: BTreeSet<String> = hfiles
        .iter()
        .filter(|(_, (min, _))| *min < until)
        .map(|(k, _)| format!("test/cf/{}", k.rsplit('/').next().unwrap()))
        .collect();
    let dst = t.path().join("until");
    let r = copy(
        root,
        &dst,
        &[
            "--snapshot",
            "test-snapshot",
            "--layout",
            "bulkload",
            "--until",
            &until.to_string(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(files(&dst).into_keys().collect::<BTreeSet<_>>(), want);
}

#[test]
fn copy_refuses_bad_selections_with_one_line_and_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let src = sample(t.path());
    let dst = t.path().join("dst");
    let cases: &[(&[&str], &str)] = &[
        (&["--table", "nosuch"], "default:usertable"),
        (&["--table", "bad/name"], "NS:NAME"),
        (&["--snapshot", "nosuch"], "snap-1"),
        (&["--start-row", "a"], "--table"),
        (&["--since", "2024-01-01"], "--table"),
        (&["--layout", "bulkload"], "--table"),
        (
            &["--table", "usertable", "--since", "yesterday"],
            "milliseconds",
        ),
        (
            &["--table", "usertable", "--start-row", "b", "--end-row", "a"],
            "[start, end)",
        ),
        (&["--table", "usertable", "--start-row", "\\xZZ"], "hex"),
        (
            &["--table", "usertable", "--snapshot", "snap-1"],
            "cannot be combined",
        ),
        (&["--snapshot", "snap-1", "--since", "1"], "bulkload"),
    ];
    for (args, says) in cases {
        let r = copy(&src, &dst, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?} says {says:?}: {r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {r:?}");
        assert!(!dst.exists(), "{args:?}: nothing written");
    }
}

#[test]
fn copy_table_is_refused_only_for_tables_whose_edits_live_only_in_wals() {
    let mut checked = 0;
    for name in real_root_names() {
        let t = tempfile::tempdir().unwrap();
        let root = real_root(&name, &t.path().join("x"));
        let rep = t.path().join("p.json");
        let p = hbcp(["preflight", &s(&root), "--report", &s(&rep)]);
        if p.code != 1 {
            continue;
        }
        let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
        let losing: BTreeSet<String> = j["unflushed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["table"].as_str().unwrap().to_string())
            .collect();
        let tables: Vec<String> = j["tables"].as_object().unwrap().keys().cloned().collect();
        let safe = tables
            .iter()
            .find(|t| !losing.contains(*t))
            .expect("a flushed table");
        let lost = losing.iter().next().unwrap();
        let r = copy(&root, &t.path().join("lost"), &["--table", lost]);
        assert_eq!(r.code, 2, "{name} --table {lost}: {r:?}");
        assert!(r.stderr.contains(&format!("flush '{lost}'")), "{r:?}");
        let dst = t.path().join("safe");
        let r = copy(&root, &dst, &["--table", safe]);
        assert_eq!(r.code, 0, "{name} --table {safe}: {r:?}");
        let (ns, q) = safe.split_once(':').unwrap_or(("default", safe));
        assert!(
            !keys_under(&files(&dst), &format!("data/{ns}/{q}/")).is_empty(),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "the two real roots with WAL-only edits");
}

#[test]
fn plan_and_run_a_table_and_a_snapshot_selection_equal_their_copy() {
    let t = tempfile::tempdir().unwrap();
    let src = sample(t.path());
    for sel in [
        vec!["--table", "usertable_clone"],
        vec!["--snapshot", "snap-1"],
        vec!["--table", "usertable", "--layout", "bulkload"],
    ] {
        let tag = sel.join("_").replace("--", "");
        let (a, b) = (
            t.path().join(format!("copy-{tag}")),
            t.path().join(format!("run-{tag}")),
        );
        let r = copy(&src, &a, &sel);
        assert_eq!(r.code, 0, "{sel:?}: {r:?}");
        let plan = t.path().join(format!("{tag}.plan"));
        let mut args = vec!["plan".to_string(), s(&src), s(&b), "--out".into(), s(&plan)];
        args.extend(sel.iter().map(|x| x.to_string()));
        let r = hbcp(&args);
        assert_eq!(r.code, 0, "{sel:?}: {r:?}");
        let r = hbcp(["run", &s(&plan), "--progress", "none"]);
        assert_eq!(r.code, 0, "{sel:?}: {r:?}");
        assert_same_tree(&a, &b);
    }
}

#[test]
fn copy_of_a_real_root_leaves_out_transient_folders_and_wals_unless_allow_unflushed() {
    let (mut tmp_left, mut wal_left, mut seqid_kept) = (0, 0, 0);
    for name in real_root_names() {
        let t = tempfile::tempdir().unwrap();
        let root = real_root(&name, &t.path().join("x"));
        if hbcp(["preflight", &s(&root)]).code != 0 {
            continue; // roots with WAL-only edits need --allow-unflushed: see below
        }
        let src = files(&root);
        let dst = t.path().join("dst");
        let r = copy(&root, &dst, &[]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        let got = files(&dst);
        for (k, v) in &src {
            let top = k.split('/').next().unwrap();
            let edits = k.contains("/recovered.edits/");
            if top == ".tmp" {
                assert!(!got.contains_key(k), "{name}: {k} is transient");
                tmp_left += 1;
            } else if matches!(top, "WALs" | "oldWALs" | "MasterProcWALs")
                || (edits && !k.ends_with(".seqid"))
            {
                assert!(!got.contains_key(k), "{name}: {k} is a WAL");
                wal_left += 1;
            } else {
                assert_eq!(got.get(k), Some(v), "{name}: {k} is copied");
                seqid_kept += usize::from(k.ends_with(".seqid"));
            }
        }
        // The verifier applies the same rules: the WALs left out are not "missing".
        let v = hbcp(["verify", &s(&root), &s(&dst), "--progress", "none"]);
        assert_eq!(v.code, 0, "{name}: {v:?}");
        // With --allow-unflushed the WALs come too; transient folders never do.
        let dst2 = t.path().join("dst2");
        let r = copy(&root, &dst2, &["--allow-unflushed"]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        let got2 = files(&dst2);
        for k in src.keys() {
            let top = k.split('/').next().unwrap();
            assert_eq!(got2.contains_key(k), top != ".tmp", "{name}: {k}");
        }
    }
    assert!(
        tmp_left > 0 && wal_left > 0 && seqid_kept > 0,
        "{tmp_left} {wal_left} {seqid_kept}"
    );
}

/// Issue #20: `hbcp snapshots` keeps its columns under their headers when a table's name is
/// longer than the old fixed width (28): each row's CREATED, HFILES and BYTES start or end
/// where their headers do.
#[test]
fn snapshots_columns_stay_aligned_with_a_long_table_name() {
    use hbcp_testkit::hbase_tree::{Spec, generate, table};
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let long = "a_table_name_longer_than_the_old_column_width";
    let spec = Spec {
        tables: vec![table("analytics", long, 1, &["cf"], 1)],
        hfile_sizes: vec![5000],
        extras: true,
    };
    generate(&root, &spec, 7).unwrap();
    let r = hbcp(["snapshots", &s(&root)]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let header = lines[0];
    let row = lines
        .iter()
        .find(|l| l.contains(long))
        .unwrap_or_else(|| panic!("no row names the table: {r:?}"));
    let created = header.find("CREATED").unwrap();
    assert!(
        row[created..].starts_with(|c: char| c.is_ascii_digit()),
        "the creation time is not under CREATED:\n{header}\n{row}"
    );
    assert_eq!(
        row.find(&format!("analytics:{long}")),
        header.find("TABLE"),
        "{header}\n{row}"
    );
    // HFILES and BYTES are right-aligned: the row is exactly as long as the header.
    assert_eq!(row.len(), header.len(), "{header}\n{row}");
    assert!(lines.last().unwrap().starts_with("1 snapshot, "), "{r:?}");
}

/// Issue #20: the counts printed for a selection agree with what the copy did. Into an empty
/// target, the selection's "N files in all" is the summary's "copied N files" with nothing
/// "already there" (a snapshot's manifest, put first, was counted as skipped), and N is the
/// number of files the target then holds outside `.hbcp/`.
#[test]
fn selection_counts_agree_with_the_copy_and_the_target() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hbase-sample");
    let t = tempfile::tempdir().unwrap();
    let number = |text: &str, before: &str| -> u64 {
        let at = text
            .find(before)
            .unwrap_or_else(|| panic!("no {before:?} in {text}"));
        text[at + before.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let cases: [&[&str]; 4] = [
        &["--table", "usertable_clone"],
        &["--snapshot", "snap-1"],
        &["--table", "usertable", "--layout", "bulkload"],
        &["--table", "usertable"],
    ];
    for (i, sel) in cases.iter().enumerate() {
        let dst = t.path().join(format!("d{i}"));
        let mut a = vec![
            "copy".to_string(),
            s(&root),
            s(&dst),
            "--progress".into(),
            "none".into(),
        ];
        a.extend(sel.iter().map(|x| x.to_string()));
        let r = hbcp(a);
        assert_eq!(r.code, 0, "{sel:?}: {r:?}");
        let selected = number(&r.stderr, "selection: ");
        let copied = number(&r.stderr, "copied ");
        let skipped = number(&r.stderr, "skipped ");
        let held = files(&dst)
            .keys()
            .filter(|k| !k.starts_with(".hbcp/"))
            .count() as u64;
        assert_eq!(
            (selected, copied, skipped),
            (held, held, 0),
            "{sel:?}: {}",
            r.stderr
        );
    }
}
