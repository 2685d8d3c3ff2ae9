//! One conformance suite for every store (STYLE #11): the same functions run against local
//! disk, the in-memory store, Azurite, moto's S3 and fake-gcs-server's GCS (hbcp writes GCS
//! through its JSON API: uploads, part objects joined by compose). GCS is also read here as a
//! source of objects put through the emulator's own upload API. The emulators are started by
//! `scripts/test.sh` (`HBCP_TEST_AZURITE`, `HBCP_TEST_S3`, `HBCP_TEST_GCS`); without them these
//! tests fail under CI and say they were skipped elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hbcp_store::{EntryKind, Error, Store, StoreUrl};
use hbcp_store_cloud::{CloudOptions, open};

static N: AtomicU64 = AtomicU64::new(0);

fn unique(tag: &str) -> String {
    format!(
        "{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn store(url: &str) -> Arc<dyn Store> {
    let u = StoreUrl::parse(url, true).unwrap();
    open(
        &u,
        &CloudOptions {
            allow_http: true,
            create_container: true,
            ..Default::default()
        },
    )
    .unwrap()
    .0
}

/// The stores to test, by name; None when the emulator is not running outside CI.
fn stores(t: &tempfile::TempDir) -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut v: Vec<(&'static str, Arc<dyn Store>)> = vec![
        ("local", store(&t.path().join("root").display().to_string())),
        ("memory", store(&format!("memory://{}", unique("m")))),
    ];
    let ci = std::env::var_os("CI").is_some();
    match std::env::var("HBCP_TEST_AZURITE") {
        Ok(base) => v.push((
            "azurite",
            store(&format!(
                "{base}/devstoreaccount1/{}/pre%2Cfix",
                unique("conf")
            )),
        )),
        Err(_) if ci => {
            panic!("CI is set but Azurite is not running (HBCP_TEST_AZURITE): run scripts/test.sh")
        }
        Err(_) => eprintln!("skipped: Azurite not running (HBCP_TEST_AZURITE unset)"),
    }
    match std::env::var("HBCP_TEST_S3") {
        Ok(_) => v.push(("s3", store(&format!("s3://hbcp-test/{}", unique("conf"))))),
        Err(_) if ci => {
            panic!("CI is set but moto is not running (HBCP_TEST_S3): run scripts/test.sh")
        }
        Err(_) => eprintln!("skipped: moto not running (HBCP_TEST_S3 unset)"),
    }
    if gcs().is_some() {
        v.push((
            "gcs",
            store(&format!("gs://hbcp-test/{}/pre%2Cfix", unique("conf"))),
        ));
    }
    v
}

const NAMES: &[&str] = &[
    "WALs/rs1,16020,1/rs1%2C16020%2C1.1700000000000",
    "data/default/t=x/r/cf/0123456789abcdef0123456789abcdef",
    "name with spaces/ü-unicode",
    "x#123",
];

fn list_keys(s: &dyn Store) -> Vec<(String, EntryKind, u64)> {
    let out = Mutex::new(Vec::new());
    s.list("", &|e| {
        // hbcp's own folder (the local store stages files there) is not the data.
        if !e.key.starts_with(".hbcp") {
            out.lock().unwrap().push((e.key, e.kind, e.size));
        }
        Ok(())
    })
    .unwrap();
    let mut v = out.into_inner().unwrap();
    v.sort();
    v
}

fn content(i: usize) -> Vec<u8> {
    format!("content {i}").into_bytes()
}

/// What a store holding `NAMES` (each `content(i)`) must answer, byte-exact.
fn check_names(name: &str, s: &dyn Store) {
    let got = list_keys(s);
    let mut want: Vec<(String, EntryKind, u64)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_string(), EntryKind::File, content(i).len() as u64))
        .collect();
    want.sort();
    assert_eq!(got, want, "{name}");
    for (i, k) in NAMES.iter().enumerate() {
        let h = s
            .head(k)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: head {k}"));
        assert_eq!(h.size, content(i).len() as u64, "{name}");
        let mut buf = Vec::new();
        s.read_range(k, 2..6, None, &mut buf).unwrap();
        assert_eq!(buf, &content(i)[2..6], "{name}: {k}");
    }
    assert!(s.head("no/such/key").unwrap().is_none(), "{name}");
    let mut buf = Vec::new();
    assert!(
        matches!(
            s.read_range("no/such/key", 0..1, None, &mut buf),
            Err(Error::NotFound { .. })
        ),
        "{name}"
    );
    // A read past the end is short, never silently padded.
    assert!(
        matches!(
            s.read_range(NAMES[3], 0..100, None, &mut buf),
            Err(Error::ShortRead { .. })
        ),
        "{name}"
    );
}

#[test]
fn names_round_trip_byte_exact_through_put_list_head_read() {
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        for (i, k) in NAMES.iter().enumerate() {
            s.put(k, &content(i))
                .unwrap_or_else(|e| panic!("{name}: put {k}: {e}"));
        }
        check_names(name, s.as_ref());
    }
}

/// fake-gcs-server's URL (scripts/gcs.sh), and a fresh folder of its test bucket to fill; None
/// (skipped) outside CI when it is not running.
fn gcs() -> Option<(String, String)> {
    match std::env::var("HBCP_TEST_GCS") {
        Ok(base) => Some((base, unique("gconf"))),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but fake-gcs-server is not running (HBCP_TEST_GCS): run scripts/test.sh"
            )
        }
        Err(_) => {
            eprintln!("skipped: fake-gcs-server not running (HBCP_TEST_GCS unset)");
            None
        }
    }
}

fn gcs_put(base: &str, prefix: &str, key: &str, data: &[u8]) {
    hbcp_testkit::gcs_emulator::upload(base, "hbcp-test", &format!("{prefix}/{key}"), data)
        .unwrap();
}

#[test]
fn gcs_names_round_trip_byte_exact_through_list_head_read() {
    let Some((base, prefix)) = gcs() else { return };
    for (i, k) in NAMES.iter().enumerate() {
        gcs_put(&base, &prefix, k, &content(i));
    }
    check_names("gcs", store(&format!("gs://hbcp-test/{prefix}")).as_ref());
}

#[test]
fn gcs_ranges_of_a_large_object_read_from_threads_and_folder_markers() {
    let Some((base, prefix)) = gcs() else { return };
    let part = 64 * 1024;
    let size = 3 * part + 1000;
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    gcs_put(&base, &prefix, "big/file", &data);
    gcs_put(&base, &prefix, "empty/dir/.hbcp-empty-dir", b"");
    let s = store(&format!("gs://hbcp-test/{prefix}"));
    let got: Vec<u8> = std::thread::scope(|sc| {
        let hs: Vec<_> = [3u64, 1, 0, 2]
            .into_iter()
            .map(|i| {
                let s = s.clone();
                sc.spawn(move || {
                    let r = i * part..((i + 1) * part).min(size);
                    let mut buf = Vec::new();
                    s.read_range("big/file", r, None, &mut buf).unwrap();
                    (i, buf)
                })
            })
            .collect();
        let mut parts: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        parts.sort();
        parts.into_iter().flat_map(|(_, b)| b).collect()
    });
    assert!(got == data, "the ranges put together are the object");
    let mut buf = Vec::new();
    let r = s.read_range("big/file", size - 10..size + 10, None, &mut buf);
    assert!(matches!(r, Err(Error::ShortRead { .. })), "{r:?}");
    let keys = list_keys(s.as_ref());
    assert!(
        keys.contains(&("empty/dir".into(), EntryKind::Dir, 0)),
        "{keys:?}"
    );
    assert_eq!(s.head("empty/dir").unwrap().unwrap().kind, EntryKind::Dir);
    // Deletes go through (an XML API DELETE the emulator serves).
    s.delete("empty/dir").unwrap();
    assert!(s.head("empty/dir").unwrap().is_none());
    s.delete("big/file").unwrap();
    assert!(s.head("big/file").unwrap().is_none());
}

#[test]
fn conditional_reads_fail_once_the_object_changed() {
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        s.put("f", b"version one").unwrap();
        let v = s
            .head("f")
            .unwrap()
            .unwrap()
            .version
            .expect("a version token");
        let mut buf = Vec::new();
        s.read_range("f", 0..7, Some(&v), &mut buf)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(buf, b"version");
        std::thread::sleep(std::time::Duration::from_millis(5)); // distinct mtime on local disk
        s.put("f", b"version two!").unwrap();
        let now = s.head("f").unwrap().unwrap().version;
        assert!(now.is_some() && now.as_ref() != Some(&v), "{name}: {now:?}");
        if name == "gcs" {
            // fake-gcs-server ignores If-Match (and ifGenerationMatch) on reads: it serves the
            // new bytes. The changed version above is what a resumed copy and the verifier see.
            continue;
        }
        let r = s.read_range("f", 0..7, Some(&v), &mut buf);
        assert!(matches!(r, Err(Error::Changed { .. })), "{name}: {r:?}");
    }
}

#[test]
fn a_range_past_the_end_is_a_short_read() {
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        s.put("short", b"0123456789").unwrap();
        let mut buf = Vec::new();
        let r = s.read_range("short", 5..20, None, &mut buf);
        assert!(matches!(r, Err(Error::ShortRead { .. })), "{name}: {r:?}");
    }
}

#[test]
fn staged_parts_written_out_of_order_from_threads_become_visible_only_at_commit() {
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        let part = if name == "s3" { 5 << 20 } else { 64 * 1024 };
        let size = 3 * part + 1000;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let up = s
            .begin_upload("big/file", size as u64, part as u64, "job")
            .unwrap();
        std::thread::scope(|sc| {
            for idx in [3u32, 1, 0, 2] {
                let up = up.clone();
                let data = &data;
                sc.spawn(move || {
                    let start = idx as usize * part;
                    let end = (start + part).min(size);
                    up.put_part(idx, start as u64, &data[start..end]).unwrap();
                });
            }
        });
        assert!(
            s.head("big/file").unwrap().is_none(),
            "{name}: visible before commit"
        );
        up.commit()
            .unwrap_or_else(|e| panic!("{name}: commit: {e}"));
        let mut buf = Vec::new();
        s.read_range("big/file", 0..size as u64, None, &mut buf)
            .unwrap();
        assert!(buf == data, "{name}: content after commit");
        // An aborted upload leaves nothing.
        let up = s.begin_upload("aborted", 10, 5, "job").unwrap();
        up.put_part(0, 0, b"01234").unwrap();
        up.abort().unwrap();
        assert!(s.head("aborted").unwrap().is_none(), "{name}");
    }
}

#[test]
fn folders_copies_and_deletes() {
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        s.make_dir("empty/dir")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        s.put("a", b"A").unwrap();
        let keys = list_keys(s.as_ref());
        assert!(
            keys.contains(&("empty/dir".into(), EntryKind::Dir, 0)),
            "{name}: {keys:?}"
        );
        assert_eq!(
            s.head("empty/dir").unwrap().unwrap().kind,
            EntryKind::Dir,
            "{name}"
        );
        // An empty file is a file, whatever one request or two tell (Azure: one HEAD).
        s.put("empty-file", b"").unwrap();
        let e = s.head("empty-file").unwrap().unwrap();
        assert_eq!((e.kind, e.size), (EntryKind::File, 0), "{name}");
        assert!(e.version.is_some(), "{name}: {e:?}");
        match s.copy_within("a", "b/a") {
            Ok(()) => {
                let mut buf = Vec::new();
                s.read_range("b/a", 0..1, None, &mut buf).unwrap();
                assert_eq!(buf, b"A", "{name}");
            }
            Err(e) => panic!("{name}: server-side copy: {e}"),
        }
        s.delete("a").unwrap();
        s.delete("a").unwrap(); // deleting what is gone is fine
        assert!(s.head("a").unwrap().is_none(), "{name}");
        s.delete("empty/dir").unwrap();
        assert!(s.head("empty/dir").unwrap().is_none(), "{name}");
    }
}

#[test]
fn a_listing_gives_every_entry_the_version_a_head_gives() {
    // The verification of a copy checks the source's versions by a listing instead of a HEAD
    // per file (when there are many): the two must say the same of the same object, for a file
    // put whole, a file of staged parts, an empty file, a folder marker and odd names.
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        s.put("v/whole", b"whole file").unwrap();
        s.put("v/empty", b"").unwrap();
        s.put(NAMES[0], b"odd name").unwrap();
        s.make_dir("v/dir")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let part = s.caps().min_part_size.max(1) as usize;
        let up = s
            .begin_upload("v/parts", 2 * part as u64, part as u64, "job")
            .unwrap();
        up.put_part(0, 0, &vec![1u8; part]).unwrap();
        up.put_part(1, part as u64, &vec![2u8; part]).unwrap();
        up.commit().unwrap();
        let listed = listing(s.as_ref(), "");
        let listed: Vec<_> = listed
            .iter()
            .filter(|e| !e.key.starts_with(".hbcp"))
            .collect();
        assert_eq!(listed.len(), 5, "{name}: {listed:?}");
        for e in listed {
            let h = s
                .head(&e.key)
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: {}", e.key));
            // Local disk gives directories no version; every object store does.
            assert!(
                e.version.is_some() || e.kind == EntryKind::Dir && name == "local",
                "{name}: {e:?}"
            );
            assert_eq!(
                (&h.version, h.kind, h.size),
                (&e.version, e.kind, e.size),
                "{name}: {}",
                e.key
            );
        }
    }
}

#[test]
fn many_empty_files_and_folder_markers_interleaved_are_each_listed_as_what_they_are() {
    // Azure tells a folder marker from an empty file by a HEAD of each 0-byte blob, several at
    // a time: every answer must land on its own blob, whatever order they come back in.
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        let mut want = Vec::new();
        for i in 0..150 {
            let key = format!("many/k{i:03}");
            if i % 7 == 3 {
                s.make_dir(&key).unwrap_or_else(|e| panic!("{name}: {e}"));
                want.push((key, EntryKind::Dir, 0));
            } else if i % 11 == 5 {
                s.put(&key, b"x").unwrap_or_else(|e| panic!("{name}: {e}"));
                want.push((key, EntryKind::File, 1));
            } else {
                s.put(&key, b"").unwrap_or_else(|e| panic!("{name}: {e}"));
                want.push((key, EntryKind::File, 0));
            }
        }
        assert_eq!(list_keys(s.as_ref()), want, "{name}");
    }
}

#[test]
fn a_later_upload_of_the_same_job_finds_the_parts_already_staged() {
    let t = tempfile::tempdir().unwrap();
    for (name, s) in stores(&t) {
        let part = if name == "s3" { 5 << 20 } else { 64 * 1024 };
        let size = 3 * part + 10;
        let data: Vec<u8> = (0..size).map(|i| (i * 13 % 253) as u8).collect();
        let piece = |i: u32| {
            let a = i as usize * part;
            &data[a..(a + part).min(size)]
        };
        // A first run stages parts 0 and 2, then dies without committing.
        let first = s
            .begin_upload("resumed/file", size as u64, part as u64, "job-a")
            .unwrap();
        for i in [0u32, 2] {
            first
                .put_part(i, (i as usize * part) as u64, piece(i))
                .unwrap();
        }
        drop(first);
        let again = s
            .begin_upload("resumed/file", size as u64, part as u64, "job-a")
            .unwrap();
        let finds_parts = matches!(name, "azurite" | "s3" | "gcs");
        if finds_parts {
            // Azure must find them by deterministic block IDs and Get Block List; S3 by
            // ListMultipartUploads and ListParts; GCS by its part objects' names and sizes.
            assert!(again.is_resumed(), "{name}: staged parts not found");
        }
        if again.is_resumed() {
            assert!(again.has_part(0, part as u64), "{name}: part 0");
            assert!(again.has_part(2, part as u64), "{name}: part 2");
            if finds_parts {
                // (A local staging file cannot tell which of its ranges were written.)
                assert!(
                    !again.has_part(1, part as u64),
                    "{name}: part 1 was never sent"
                );
                assert!(
                    !again.has_part(0, part as u64 - 1),
                    "{name}: wrong size trusted"
                );
            }
            if name == "azurite" || name == "gcs" {
                // Another job's upload of the same blob does not see them.
                let other = s
                    .begin_upload("resumed/file", size as u64, part as u64, "job-b")
                    .unwrap();
                assert!(
                    !other.is_resumed() && !other.has_part(0, part as u64),
                    "{name}"
                );
            }
            for i in [1u32, 3] {
                again
                    .put_part(i, (i as usize * part) as u64, piece(i))
                    .unwrap();
            }
        } else {
            for i in 0..4u32 {
                again
                    .put_part(i, (i as usize * part) as u64, piece(i))
                    .unwrap();
            }
        }
        assert!(
            s.head("resumed/file").unwrap().is_none(),
            "{name}: visible early"
        );
        again
            .commit()
            .unwrap_or_else(|e| panic!("{name}: commit: {e}"));
        let mut buf = Vec::new();
        s.read_range("resumed/file", 0..size as u64, None, &mut buf)
            .unwrap();
        assert!(buf == data, "{name}: content after a resumed commit");
    }
}

#[test]
fn put_md5_stores_the_whole_file_md5_on_azure() {
    use md5::Digest;
    let Ok(base) = std::env::var("HBCP_TEST_AZURITE") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Azurite is not running"
        );
        eprintln!("skipped: Azurite not running (HBCP_TEST_AZURITE unset)");
        return;
    };
    let url = format!("{base}/devstoreaccount1/{}/md5%2Croot", unique("md5"));
    let u = StoreUrl::parse(&url, true).unwrap();
    let opts = CloudOptions {
        allow_http: true,
        create_container: true,
        put_md5: true,
        ..Default::default()
    };
    let (s, _) = open(&u, &opts).unwrap();
    let small = b"a small metadata file".to_vec();
    s.put("small", &small).unwrap();
    assert_eq!(
        s.content_md5("small").unwrap(),
        Some(<[u8; 16]>::from(md5::Md5::digest(&small)))
    );
    let part = 64 * 1024;
    let size = 2 * part + 7;
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 241) as u8).collect();
    let up = s
        .begin_upload("large", size as u64, part as u64, "job")
        .unwrap();
    assert!(up.wants_md5());
    for (i, c) in data.chunks(part).enumerate() {
        up.put_part(i as u32, (i * part) as u64, c).unwrap();
    }
    let whole = <[u8; 16]>::from(md5::Md5::digest(&data));
    up.set_md5(whole);
    up.commit().unwrap();
    assert_eq!(s.content_md5("large").unwrap(), Some(whole));
    // Without --put-md5 nothing is claimed for a block list.
    let (plain, _) = open(
        &u,
        &CloudOptions {
            allow_http: true,
            ..Default::default()
        },
    )
    .unwrap();
    let up = plain
        .begin_upload("large2", size as u64, part as u64, "job")
        .unwrap();
    assert!(!up.wants_md5());
    for (i, c) in data.chunks(part).enumerate() {
        up.put_part(i as u32, (i * part) as u64, c).unwrap();
    }
    up.commit().unwrap();
    assert_eq!(plain.content_md5("large2").unwrap(), None);
}

/// What a store rooted at `url` lists, every key (hbcp's own folder included).
fn all_keys(url: &str) -> Vec<String> {
    let out = Mutex::new(Vec::new());
    store(url)
        .list("", &|e| {
            out.lock().unwrap().push(e.key);
            Ok(())
        })
        .unwrap();
    let mut v = out.into_inner().unwrap();
    v.sort();
    v
}

#[test]
fn gcs_an_upload_of_more_than_32_parts_composes_in_a_tree_shows_no_part_and_leaves_none() {
    let Some((_, prefix)) = gcs() else { return };
    let url = format!("gs://hbcp-test/{prefix}/root");
    let parts_url = format!("{url}/.hbcp/gcs-parts");
    let s = store(&url);
    let part = 1024;
    let n = 70; // three composes of the parts, then one of those three
    let size = n * part - 100;
    let data: Vec<u8> = (0..size).map(|i| (i * 11 % 247) as u8).collect();
    let up = s
        .begin_upload(
            "WALs/rs1%2C16020%2C1/big file=ü",
            size as u64,
            part as u64,
            "job",
        )
        .unwrap();
    assert!(!up.is_resumed());
    std::thread::scope(|sc| {
        for t in 0..4 {
            let (up, data) = (up.clone(), &data);
            sc.spawn(move || {
                for i in (t..n).step_by(4).rev() {
                    let a = i * part;
                    up.put_part(i as u32, a as u64, &data[a..(a + part).min(size)])
                        .unwrap();
                }
            });
        }
    });
    // Staged: the parts are objects of their own, none under the target's name, none listed.
    assert_eq!(all_keys(&parts_url).len(), n, "one object per part");
    assert!(all_keys(&url).is_empty(), "{:?}", all_keys(&url));
    assert!(s.head("WALs/rs1%2C16020%2C1/big file=ü").unwrap().is_none());
    up.commit().unwrap();
    let mut buf = Vec::new();
    s.read_range(
        "WALs/rs1%2C16020%2C1/big file=ü",
        0..size as u64,
        None,
        &mut buf,
    )
    .unwrap();
    assert!(buf == data, "the composed object is the file");
    assert_eq!(
        all_keys(&url),
        vec!["WALs/rs1%2C16020%2C1/big file=ü".to_string()]
    );
    assert!(
        all_keys(&parts_url).is_empty(),
        "{:?}",
        all_keys(&parts_url)
    );
    // An aborted upload deletes what it staged.
    let up = s.begin_upload("aborted", 3000, 1024, "job").unwrap();
    up.put_part(1, 1024, &[7; 1024]).unwrap();
    up.put_part(0, 0, &[8; 1024]).unwrap();
    assert_eq!(all_keys(&parts_url).len(), 2);
    up.abort().unwrap();
    assert!(all_keys(&parts_url).is_empty());
    assert!(s.head("aborted").unwrap().is_none());
}

#[test]
fn gcs_put_md5_is_checked_by_gcs_for_uploads_and_kept_as_metadata_on_composite_objects() {
    use md5::Digest;
    let Some((base, prefix)) = gcs() else { return };
    let u = StoreUrl::parse(&format!("gs://hbcp-test/{prefix}"), true).unwrap();
    let opts = CloudOptions {
        allow_http: true,
        put_md5: true,
        ..Default::default()
    };
    let (s, _) = open(&u, &opts).unwrap();
    let small = b"a small metadata file".to_vec();
    s.put("small", &small).unwrap();
    let md5 = |d: &[u8]| <[u8; 16]>::from(md5::Md5::digest(d));
    assert_eq!(s.content_md5("small").unwrap(), Some(md5(&small)));
    let part = 4096;
    let data: Vec<u8> = (0..3 * part + 5).map(|i| (i * 31 % 241) as u8).collect();
    let up = s
        .begin_upload("large", data.len() as u64, part as u64, "job")
        .unwrap();
    assert!(up.wants_md5());
    for (i, c) in data.chunks(part).enumerate() {
        up.put_part(i as u32, (i * part) as u64, c).unwrap();
    }
    up.set_md5(md5(&data));
    up.commit().unwrap();
    assert_eq!(s.content_md5("large").unwrap(), Some(md5(&data)));
    // Real GCS keeps no md5Hash for a composite object: hbcp's own claim is its metadata.
    use base64::Engine;
    let meta = hbcp_testkit::gcs_emulator::resource(&base, "hbcp-test", &format!("{prefix}/large"))
        .unwrap()
        .unwrap();
    let want = base64::engine::general_purpose::STANDARD.encode(md5(&data));
    assert!(
        meta.contains(&format!("\"hbcp-content-md5\":\"{want}\"")),
        "{meta}"
    );
    assert_eq!(s.content_md5("no/such").unwrap(), None);
}

#[test]
fn gcs_writes_into_a_missing_bucket_fail_at_once_naming_the_object() {
    let Some(_) = gcs() else { return };
    let s = store(&format!("gs://no-such-bucket-{}/p", unique("b")));
    let e = s.put("WALs/a%2Cb", b"x").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Remote {
                retryable: false,
                status: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("gs://no-such-bucket-"), "{e}");
    assert!(e.to_string().contains("/p/WALs/a%2Cb"), "{e}");
    let up = s.begin_upload("big", 10, 5, "job");
    // The listing of staged parts answers 404 for a missing bucket, or the part upload does.
    let e = match up {
        Err(e) => e,
        Ok(up) => up.put_part(0, 0, b"01234").unwrap_err(),
    };
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("gs://no-such-bucket-"), "{e}");
}

/// Every entry of a listing, whole (key, size, version, modification time, kind), by key.
fn listing(s: &dyn Store, prefix: &str) -> Vec<hbcp_store::Entry> {
    let out = Mutex::new(Vec::new());
    s.list(prefix, &|e| {
        out.lock().unwrap().push(e);
        Ok(())
    })
    .unwrap();
    let mut v = out.into_inner().unwrap();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

/// An HBase-like root of `tables` tables (in two namespaces) of 3 regions each, with WALs
/// whose names carry `%2C`, empty directories, top-level files and folders deeper than a
/// region. Returns every file key put and the table folders.
fn many_tables(s: &dyn Store, tables: usize) -> (Vec<String>, Vec<String>) {
    let mut keys = vec!["hbase.version".to_string(), "hbase.id".to_string()];
    let mut folders = Vec::new();
    for t in 0..tables {
        let ns = if t % 2 == 0 { "default" } else { "ns1" };
        let table = format!("data/{ns}/t{t:02}");
        folders.push(table.clone());
        keys.push(format!("{table}/.tabledesc/.tableinfo.0000000001"));
        for r in 0..3 {
            let region = format!("{table}/{t:02}{r}0123456789abcdef0123456789ab");
            keys.push(format!("{region}/.regioninfo"));
            keys.push(format!(
                "{region}/cf/{t:02}{r}aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            ));
            keys.push(format!(
                "{region}/recovered.edits/deep/er/0000000000000000{r}.seqid"
            ));
        }
    }
    for w in 0..5 {
        keys.push(format!(
            "WALs/rs{w}%2C16020%2C1700000000000/rs{w}%2C16020%2C1700000000000.{w}"
        ));
    }
    keys.push("oldWALs/rs0%2C16020%2C1.1".into());
    // A few writers at once: the emulators take one small PUT at a time each.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..6 {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(k) = keys.get(i) else { break };
                    s.put(k, format!("{k}:{i}").as_bytes()).unwrap();
                }
            });
        }
    });
    for d in [
        "data/default/empty-table",
        "archive/data/ns1/t01/cold/empty",
    ] {
        s.make_dir(d).unwrap();
    }
    (keys, folders)
}

fn cloud_urls() -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Ok(base) = std::env::var("HBCP_TEST_AZURITE") {
        v.push((
            "azurite",
            format!("{base}/devstoreaccount1/{}/hb%2Case", unique("plist")),
        ));
    }
    if std::env::var("HBCP_TEST_S3").is_ok() {
        v.push(("s3", format!("s3://hbcp-test/{}/hb%2Case", unique("plist"))));
    }
    // Without the emulators, stores() above says what was skipped (and fails under CI).
    let t = tempfile::tempdir().unwrap();
    let _ = stores(&t);
    v
}

fn open_listing(url: &str, concurrency: usize, page: Option<usize>) -> Arc<dyn Store> {
    let u = StoreUrl::parse(url, true).unwrap();
    open(
        &u,
        &CloudOptions {
            allow_http: true,
            create_container: true,
            list_concurrency: Some(concurrency),
            list_page_size: page,
            ..Default::default()
        },
    )
    .unwrap()
    .0
}

#[test]
fn parallel_listing_equals_the_sequential_paged_listing_entry_for_entry() {
    for (name, url) in cloud_urls() {
        let seq = open_listing(&url, 1, None);
        let (keys, folders) = many_tables(seq.as_ref(), 24);
        let want = listing(seq.as_ref(), "");
        // Every file put, byte-exact (`%2C` stays `%2C`), and the two empty directories.
        let mut files: Vec<&str> = want
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.key.as_str())
            .collect();
        files.sort();
        let mut put: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        put.sort();
        assert_eq!(files, put, "{name}");
        assert_eq!(
            want.iter().filter(|e| e.kind == EntryKind::Dir).count(),
            2,
            "{name}"
        );
        for (conc, page) in [(16, None), (8, Some(7)), (3, Some(2)), (1, Some(5))] {
            let par = open_listing(&url, conc, page);
            assert_eq!(
                listing(par.as_ref(), ""),
                want,
                "{name}: {conc} in flight, pages of {page:?}"
            );
            let data: Vec<_> = want
                .iter()
                .filter(|e| e.key.starts_with("data/"))
                .cloned()
                .collect();
            assert_eq!(listing(par.as_ref(), "data/"), data, "{name}: data/");
            let t07: Vec<_> = want
                .iter()
                .filter(|e| e.key.starts_with("data/ns1/t07/"))
                .cloned()
                .collect();
            assert_eq!(t07.len(), 10, "{name}");
            assert_eq!(
                listing(par.as_ref(), "data/ns1/t07/"),
                t07,
                "{name}: one table"
            );
        }
        // The parallel path is the one taken: one LIST per folder above the regions and per
        // region, where the sequential listing is one paged LIST of the whole root.
        let pages = |s: &dyn Store| {
            let lat = Arc::new(hbcp_store::timed::OpLatencies::default());
            let _ = listing(&hbcp_store::timed::Timed::new(s, lat.clone()), "");
            lat.get(hbcp_store::timed::Op::List).len()
        };
        assert_eq!(pages(seq.as_ref()), 1, "{name}");
        assert!(
            pages(open_listing(&url, 16, None).as_ref()) > 24 * 3,
            "{name}"
        );
        // A root of many tables lists every one of them, each with all its regions.
        let par = open_listing(&url, 16, Some(3));
        let got = listing(par.as_ref(), "");
        for f in &folders {
            let n = got
                .iter()
                .filter(|e| e.key.starts_with(&format!("{f}/")) && e.key.ends_with("/.regioninfo"))
                .count();
            assert_eq!(n, 3, "{name}: {f}");
        }
    }
}

#[test]
fn every_list_page_is_timed_as_one_list_request() {
    for (name, url) in cloud_urls() {
        let s = open_listing(&url, 1, Some(4));
        for i in 0..10 {
            s.put(&format!("p/{i:02}"), b"x").unwrap();
        }
        let lat = Arc::new(hbcp_store::timed::OpLatencies::default());
        let timed = hbcp_store::timed::Timed::new(s.as_ref(), lat.clone());
        assert_eq!(listing(&timed, "p/").len(), 10, "{name}");
        // 10 objects in pages of at most 4: three LIST requests.
        assert_eq!(lat.get(hbcp_store::timed::Op::List).len(), 3, "{name}");
    }
}

/// The entries a listing yields, as (key, kind), sorted; duplicates kept.
fn keys_of(s: &dyn Store) -> Vec<(String, EntryKind)> {
    let out = Mutex::new(Vec::new());
    s.list("", &|e| {
        out.lock().unwrap().push((e.key, e.kind));
        Ok(())
    })
    .unwrap();
    let mut v = out.into_inner().unwrap();
    v.sort();
    v
}

/// What a listing makes of a blob named `name` (size 0 when it ends in `/`): a 0-byte name
/// ending in one `/` is a folder marker, the folder; every other name is a file, byte-exact.
fn expected_entry(name: &str) -> (String, EntryKind) {
    match name.strip_suffix('/') {
        Some(d) if !d.is_empty() && !d.ends_with('/') => (d.to_string(), EntryKind::Dir),
        _ => (name.to_string(), EntryKind::File),
    }
}

mod hostile_names {
    use super::*;
    use proptest::prelude::*;

    /// Names of 1 to 5 components from a small alphabet, so that folders are shared and empty
    /// components (`a//b`, `/a`, `a/`) are frequent.
    fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just(""), Just("a"), Just("b"), Just("x y"), Just("%2C")],
            1..=5,
        )
        .prop_map(|v| v.join("/"))
        .prop_filter("a name with a character", |n| n.chars().any(|c| c != '/'))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// Issue 17, item 3: a name holding `//` made the parallel listing list a folder again
        /// at each delimited level (up to 5 times). Every listing, parallel or sequential,
        /// yields each blob once, as it was named.
        #[test]
        fn an_azure_listing_yields_each_blob_once_whatever_the_names(
            names in proptest::collection::btree_set(name(), 1..24)
        ) {
            let Ok(base) = std::env::var("HBCP_TEST_AZURITE") else {
                let t = tempfile::tempdir().unwrap();
                let _ = stores(&t); // says it is skipped, or fails under CI
                return Ok(());
            };
            let url = format!("{base}/devstoreaccount1/{}/hb%2Case", unique("hostile"));
            // The container, made by opening it as a target.
            let opts = CloudOptions { allow_http: true, create_container: true, ..Default::default() };
            hbcp_store_cloud::open(&StoreUrl::parse(&url, true).unwrap(), &opts).unwrap();
            for n in &names {
                let data: &[u8] = if n.ends_with('/') { b"" } else { n.as_bytes() };
                hbcp_testkit::azurite::put_blob_as_named(&url, n, data).unwrap();
            }
            let mut want: Vec<(String, EntryKind)> = names.iter().map(|n| expected_entry(n)).collect();
            want.sort();
            let seq = keys_of(open_listing(&url, 1, None).as_ref());
            prop_assert_eq!(&seq, &want);
            for (conc, page) in [(16, None), (4, Some(2))] {
                let par = keys_of(open_listing(&url, conc, page).as_ref());
                prop_assert_eq!(&par, &want, "{} in flight, pages of {:?}", conc, page);
            }
        }
    }
}

/// The version a write answers (Put Blob / Put Block List on Azure, PutObject /
/// CompleteMultipartUpload on S3) is the one a HEAD then shows: the engine journals it, and a
/// rerun skips a target file only while its HEAD still shows it (issue 17, item 7). Stores
/// whose answer carries no such token say `None`, never a token a HEAD would not show.
#[test]
fn a_write_answers_the_version_a_head_then_shows() {
    let t = tempfile::tempdir().unwrap();
    let mut all = stores(&t);
    if let Ok(base) = std::env::var("HBCP_TEST_AZURITE") {
        let url = format!("{base}/devstoreaccount1/{}/v", unique("ver"));
        let opts = CloudOptions {
            allow_http: true,
            create_container: true,
            put_md5: true,
            ..Default::default()
        };
        all.push((
            "azurite --put-md5",
            open(&StoreUrl::parse(&url, true).unwrap(), &opts)
                .unwrap()
                .0,
        ));
    }
    for (name, s) in all {
        let answers = matches!(name, "azurite" | "azurite --put-md5" | "s3");
        let check = |key: &str, got: Option<String>, how: &str| {
            let head = s.head(key).unwrap().unwrap().version;
            if answers {
                assert!(got.is_some(), "{name}: {how} answered no version");
            }
            if got.is_some() {
                assert_eq!(got, head, "{name}: {how}'s version is not the HEAD's");
            }
        };
        let v1 = s
            .put_bytes("v/small", bytes::Bytes::from_static(b"one"))
            .unwrap();
        check("v/small", v1.clone(), "put");
        // Another write of the same size gets another version.
        let v2 = s
            .put_bytes("v/small", bytes::Bytes::from_static(b"two"))
            .unwrap();
        check("v/small", v2.clone(), "put again");
        if answers {
            assert_ne!(v1, v2, "{name}: two writes, one version");
        }
        let part = s.caps().min_part_size.max(64 * 1024) as usize;
        let size = 2 * part + 5;
        let data: Vec<u8> = (0..size).map(|i| (i * 13 % 251) as u8).collect();
        let up = s
            .begin_upload("v/large", size as u64, part as u64, "job")
            .unwrap();
        for (i, c) in data.chunks(part).enumerate() {
            up.put_part(i as u32, (i * part) as u64, c).unwrap();
        }
        if up.wants_md5() {
            use md5::Digest;
            up.set_md5(<[u8; 16]>::from(md5::Md5::digest(&data)));
        }
        let v3 = up.commit().unwrap();
        check("v/large", v3, "commit");
    }
}
