//! `hbcp copy` and `hbcp verify` between local disk, Azurite and moto's S3, started by
//! scripts/test.sh. Outside CI, without the emulators, these tests say they were skipped.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::s2s::run_env;
use crate::util::*;

static N: AtomicU64 = AtomicU64::new(0);

/// Second Azurite account (AZURITE_ACCOUNTS in scripts/test.sh); its key is test-only.
const ACCT2_KEY: &str = "aGJjcC1zZWNvbmQtYWNjb3VudC1rZXktZm9yLXRlc3RzLW9ubHkh";

pub(crate) fn azurite() -> Option<String> {
    emulator("HBCP_TEST_AZURITE", "Azurite")
}

fn s3() -> bool {
    emulator("HBCP_TEST_S3", "moto").is_some()
}

pub(crate) fn container(base: &str, account: &str, tag: &str) -> String {
    format!(
        "{base}/{account}/{tag}{}n{}/hbase",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn generated(dir: &std::path::Path) {
    use hbcp_testkit::hbase_tree::{Spec, generate, table};
    let spec = Spec {
        tables: vec![
            table("default", "t1", 2, &["cf"], 3),
            table("ns1", "t2", 2, &["f"], 2),
        ],
        hfile_sizes: Spec::boundary_sizes(64 * 1024),
        extras: true,
    };
    generate(dir, &spec, 9).unwrap();
}

#[test]
fn copy_local_to_azurite_to_local_round_trips_and_verifies() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    let blob = container(&base, "devstoreaccount1", "up");
    let r = copy(
        &src,
        std::path::Path::new(&blob),
        &["--range-size", "64KiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("created container"), "{r:?}");
    let v = hbcp(["verify", &s(&src), &blob, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
    let back = t.path().join("back");
    let r = copy(
        std::path::Path::new(&blob),
        &back,
        &["--range-size", "64KiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &back);
}

#[test]
fn copy_real_root_dirs_to_azurite_and_back() {
    let Some(base) = azurite() else { return };
    for name in real_root_names() {
        let t = tempfile::tempdir().unwrap();
        let src = real_root(&name, &t.path().join("x"));
        let blob = container(&base, "devstoreaccount1", "real");
        let r = copy(&src, std::path::Path::new(&blob), &["--allow-unflushed"]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        let back = t.path().join("back");
        // The preflight runs on the blob source too: the same roots need the flag.
        let r = copy(std::path::Path::new(&blob), &back, &["--allow-unflushed"]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        assert_same_copy_with_wals(&src, &back);
    }
}

#[test]
fn copy_azurite_to_azurite_across_containers_and_accounts() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    let a = container(&base, "devstoreaccount1", "aa");
    let b = container(&base, "devstoreaccount1", "bb");
    let c = container(&base, "hbcpacct2", "cc");
    let env = [("HBCP_AZURE_KEY_HBCPACCT2", ACCT2_KEY)];
    assert_eq!(copy(&src, std::path::Path::new(&a), &[]).code, 0);
    let r = run_env(
        &[
            "copy",
            &a,
            &b,
            "--progress",
            "none",
            "--range-size",
            "64KiB",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_env(
        &[
            "copy",
            &b,
            &c,
            "--progress",
            "none",
            "--range-size",
            "64KiB",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = run_env(&["verify", &s(&src), &c, "--progress", "none"], &env);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn copy_local_to_s3_then_s3_to_azurite() {
    if !s3() {
        return;
    }
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    let bucket = format!(
        "s3://hbcp-test/e2e{}n{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    // S3 parts are at least 5 MiB.
    let r = copy(
        &src,
        std::path::Path::new(&bucket),
        &["--range-size", "5MiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let blob = container(&base, "devstoreaccount1", "froms3");
    let r = copy(
        std::path::Path::new(&bucket),
        std::path::Path::new(&blob),
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = hbcp(["verify", &s(&src), &blob, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn verify_names_a_flipped_byte_in_a_target_blob() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 64 * 1024);
    let blob = container(&base, "devstoreaccount1", "flip");
    assert_eq!(
        copy(
            &src,
            std::path::Path::new(&blob),
            &["--range-size", "64KiB"]
        )
        .code,
        0
    );
    // Rewrite one blob with a byte flipped, through the store layer.
    let key = format!(
        "data/default/t1/0123456789abcdef0123456789abcdef/cf/{:032x}",
        5
    );
    let mut data = fs::read(src.join(&key)).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x40;
    let url = hbcp_store::StoreUrl::parse(&blob, true).unwrap();
    let (store, _) = hbcp_store_cloud::open(&url, &Default::default()).unwrap();
    store.put(&key, &data).unwrap();
    assert_verify_finds_only(&src, &blob, &key);
}

/// `hbcp verify SRC TARGET` exits 1 with one line: `key` differs.
fn assert_verify_finds_only(src: &std::path::Path, target: &str, key: &str) {
    let v = hbcp(["verify", &s(src), target, "--progress", "none"]);
    assert_eq!(v.code, 1, "{v:?}");
    assert_eq!(v.stdout.lines().count(), 1, "{v:?}");
    assert!(
        v.stdout.starts_with("differs: ") && v.stdout.contains(key),
        "{v:?}"
    );
}

#[test]
fn no_secret_appears_in_any_output_journal_plan_or_report() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    const SIG: &str = "S3cr3tS1gn4tur3Zq";
    const KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MTIzNDU2Nzg5MDEyMw==";
    let sas = format!("sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&sig={SIG}");
    let blob = container(&base, "devstoreaccount1", "secret");
    let rep = t.path().join("r.json");
    let state = t.path().join("state");
    let plan = t.path().join("p.plan");
    let mut outputs = Vec::new();
    // A wrong SAS: the service refuses (403) and hbcp must fail fast, naming the URL.
    let r = run_env(
        &[
            "copy",
            &s(&src),
            &blob,
            "--progress",
            "json",
            "--report",
            &s(&rep),
            "--state",
            &s(&state),
        ],
        &[
            ("AZURE_STORAGE_SAS_TOKEN", &sas),
            ("AZURE_STORAGE_ACCOUNT_KEY", ""),
        ],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("127.0.0.1"),
        "the error names the URL: {r:?}"
    );
    outputs.push(r.stdout + &r.stderr);
    // A SAS in the URL itself, and a wrong account key.
    let with_sas = format!("{blob}?{sas}");
    for args in [
        vec!["plan", &s(&src), &with_sas, "--out", &s(&plan)],
        vec!["verify", &s(&src), &with_sas, "--progress", "none"],
    ] {
        let r = run_env(&args, &[("AZURE_STORAGE_ACCOUNT_KEY", KEY)]);
        outputs.push(r.stdout + &r.stderr);
    }
    let r = run_env(
        &[
            "copy",
            &s(&src),
            &blob,
            "--progress",
            "bar",
            "--report",
            &s(&rep),
        ],
        &[("AZURE_STORAGE_ACCOUNT_KEY", KEY)],
    );
    assert_ne!(r.code, 0, "a wrong key is refused: {r:?}");
    outputs.push(r.stdout + &r.stderr);
    outputs.extend(written(&[&rep, &plan], &state));
    for (i, o) in outputs.iter().enumerate() {
        assert!(!o.contains(SIG), "output {i} holds the SAS signature:\n{o}");
        assert!(!o.contains(KEY), "output {i} holds the account key:\n{o}");
    }
}

/// What hbcp wrote: the `files` (reports, plans; zstd-compressed ones also decoded) and every
/// file under the `state` folder (journals).
pub(crate) fn written(files: &[&std::path::Path], state: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for p in files {
        if let Ok(b) = fs::read(p) {
            out.push(String::from_utf8_lossy(&b).into_owned());
            if let Ok(d) = zstd::decode_all(&b[..]) {
                out.push(String::from_utf8_lossy(&d).into_owned());
            }
        }
    }
    for e in walk(state) {
        out.push(String::from_utf8_lossy(&fs::read(e).unwrap()).into_owned());
    }
    out
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

#[test]
fn shards_of_a_plan_to_azurite_then_finalize() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    let blob = container(&base, "devstoreaccount1", "shard");
    let plan = t.path().join("p.plan");
    let r = hbcp([
        "plan",
        &s(&src),
        &blob,
        "--out",
        &s(&plan),
        "--range-size",
        "64KiB",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    for i in [0, 2] {
        let r = hbcp([
            "run",
            &s(&plan),
            "--shard",
            &format!("{i}/3"),
            "--progress",
            "none",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("missing shard: 1/3"), "{r:?}");
    let r = hbcp(["run", &s(&plan), "--shard", "1/3", "--progress", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = hbcp(["finalize", &s(&plan)]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = hbcp(["verify", &s(&src), &blob, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn sync_local_to_azurite_sends_only_new_data_and_moves_compacted_hfiles_inside() {
    let Some(base) = azurite() else { return };
    use hbcp_testkit::hbase_tree::{Spec, generate, table};
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let spec = Spec {
        tables: vec![table("default", "t1", 2, &["cf"], 3)],
        hfile_sizes: vec![10_000, 20_000, 30_000],
        extras: false,
    };
    generate(&src, &spec, 5).unwrap();
    let blob = container(&base, "devstoreaccount1", "sync");
    let rep = t.path().join("s.json");
    // A generated root without extras has no WALs.
    let r = hbcp([
        "sync",
        &s(&src),
        &blob,
        "--no-wals-expected",
        "--progress",
        "none",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // A flush and a compaction: one new HFile, one HFile moved to archive/.
    let fam = fs::read_dir(src.join("data/default/t1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("cf").is_dir())
        .unwrap()
        .join("cf");
    let moved = fs::read_dir(&fam).unwrap().next().unwrap().unwrap().path();
    let rel = moved
        .strip_prefix(&src)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let to = src.join(format!("archive/{rel}"));
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::rename(&moved, &to).unwrap();
    fs::write(
        fam.join("ffffffffffffffffffffffffffffffff"),
        vec![7u8; 12_345],
    )
    .unwrap();
    let r = hbcp([
        "sync",
        &s(&src),
        &blob,
        "--no-wals-expected",
        "--delete",
        "--max-delete",
        "50%",
        "--progress",
        "none",
        "--report",
        &s(&rep),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    assert_eq!(
        j["cycles"][0]["bytes_copied"], 12_345,
        "only the flushed HFile is sent: {j}"
    );
    assert_eq!(j["deleted"].as_array().unwrap().len(), 1, "{j}");
    let v = hbcp(["verify", &s(&src), &blob, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn copy_to_azurite_with_40_workers_holds_no_more_range_buffers_than_max_memory_allows() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..6u32 {
        let data: Vec<u8> = (0..3 * 1024 * 1024 + 777 * i)
            .map(|j: u32| (j.wrapping_mul(2654435761) ^ i).to_le_bytes()[3])
            .collect();
        fs::write(src.join(format!("d/f{i}")), data).unwrap();
    }
    let blob = container(&base, "devstoreaccount1", "mem");
    // 96 MiB reserve + 40 workers x 256 KiB + 3 MiB: three 1 MiB ranges at once.
    let rep = t.path().join("up.json");
    let r = copy(
        &src,
        std::path::Path::new(&blob),
        &[
            "--workers",
            "40",
            "--range-size",
            "1MiB",
            "--max-memory",
            "109MiB",
            "--report",
            &s(&rep),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    let budget = j["memory"]["buffer_budget_bytes"].as_u64().unwrap();
    let peak = j["memory"]["buffer_peak_bytes"].as_u64().unwrap();
    assert_eq!(budget, 3 << 20, "{j}");
    assert!(
        (1 << 20..=budget).contains(&peak),
        "peak {peak} of budget {budget}"
    );
    assert_eq!(j["concurrency"]["adaptive"], true, "{j}");
    // Down again: a local target streams every range through two 1 MiB chunks, so a 4 MiB
    // budget lets two ranges stream at once, whatever the 40 workers.
    let back = t.path().join("back");
    let rep = t.path().join("down.json");
    let r = copy(
        std::path::Path::new(&blob),
        &back,
        &[
            "--workers",
            "40",
            "--range-size",
            "1MiB",
            "--max-memory",
            "110MiB",
            "--report",
            &s(&rep),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    let peak = j["memory"]["buffer_peak_bytes"].as_u64().unwrap();
    assert!((2 << 20..=4 << 20).contains(&peak), "{j}");
    assert_same_tree(&src, &back);
}

/// The Azurite target is identical to `src`: `hbcp verify` finds nothing missing, different
/// or extra.
fn azure_same(blob: &str) -> impl Fn(&std::path::Path) + '_ {
    move |src| {
        let v = hbcp(["verify", &s(src), blob, "--progress", "none"]);
        assert_eq!(v.code, 0, "{v:?}");
    }
}

#[test]
fn sync_local_to_azurite_after_generated_activity_with_a_split_sends_only_new_data() {
    let Some(base) = azurite() else { return };
    let blob = container(&base, "devstoreaccount1", "syncact");
    crate::sync::sync_after_generated_activity(&blob, &azure_same(&blob));
}

#[test]
fn sync_local_to_azurite_watch_runs_cycles_measures_lag_and_stops_cleanly_on_sigint() {
    let Some(base) = azurite() else { return };
    let blob = container(&base, "devstoreaccount1", "syncwatch");
    crate::sync::watch_runs_cycles_measures_lag_and_stops_on_sigint(&blob, &azure_same(&blob));
}

// GCS, on fake-gcs-server (scripts/gcs.sh). As a target: hbcp writes through the JSON API
// (uploads, part objects joined by compose). As a source: objects put through the emulator's
// own upload API, independently of hbcp.

pub(crate) fn gcs() -> Option<String> {
    emulator("HBCP_TEST_GCS", "fake-gcs-server")
}

/// `src` put into a fresh folder of the emulator's test bucket; its gs:// URL.
fn gcs_source(base: &str, src: &std::path::Path, tag: &str) -> String {
    let prefix = format!(
        "{tag}{}n{}/hbase",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    hbcp_testkit::gcs_emulator::upload_tree(base, "hbcp-test", &prefix, src).unwrap();
    format!("gs://hbcp-test/{prefix}")
}

#[test]
fn copy_gcs_to_local_in_ranges_verifies_then_verify_names_a_flipped_byte() {
    let Some(base) = gcs() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    // Large files, read in many ranges, beside the small ones.
    let fam = t
        .path()
        .join("src/data/default/big/0123456789abcdef0123456789abcdef/cf");
    fs::create_dir_all(&fam).unwrap();
    let large: Vec<u8> = (0..(3 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
    fs::write(fam.join(format!("{:032x}", 1)), &large).unwrap();
    let gs = gcs_source(&base, &src, "g2l");
    let back = t.path().join("back");
    let r = copy(std::path::Path::new(&gs), &back, &["--range-size", "64KiB"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &back);
    let v = hbcp(["verify", &s(&src), &gs, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
    // One object rewritten with a byte flipped in its middle.
    let key = format!(
        "data/default/big/0123456789abcdef0123456789abcdef/cf/{:032x}",
        1
    );
    let mut data = large.clone();
    data[large.len() / 2] ^= 0x40;
    let prefix = gs.strip_prefix("gs://hbcp-test/").unwrap();
    hbcp_testkit::gcs_emulator::upload(&base, "hbcp-test", &format!("{prefix}/{key}"), &data)
        .unwrap();
    assert_verify_finds_only(&src, &gs, &key);
}

/// A fresh folder of the emulator's test bucket, as a gs:// URL.
fn gcs_target(tag: &str) -> String {
    format!(
        "gs://hbcp-test/{tag}{}n{}/hbase",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The objects left under a GCS target's part staging folder.
fn gcs_parts_left(target: &str) -> Vec<String> {
    let url = hbcp_store::StoreUrl::parse(&format!("{target}/.hbcp/gcs-parts"), true).unwrap();
    let (store, _) = hbcp_store_cloud::open(&url, &Default::default()).unwrap();
    let left = std::sync::Mutex::new(Vec::new());
    store
        .list("", &|e| {
            left.lock().unwrap().push(e.key);
            Ok(())
        })
        .unwrap();
    left.into_inner().unwrap()
}

#[test]
fn copy_local_to_gcs_and_gcs_to_gcs_in_composed_ranges_verifies_then_names_a_flipped_byte() {
    let Some(base) = gcs() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    // A large file of 49 ranges: two levels of composes (32 sources at most per compose).
    let fam = src.join("data/default/big/0123456789abcdef0123456789abcdef/cf");
    fs::create_dir_all(&fam).unwrap();
    let large: Vec<u8> = (0..(3 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
    fs::write(fam.join(format!("{:032x}", 1)), &large).unwrap();
    // Names GCS must keep byte-exact.
    fs::write(src.join("WALs%2Cname with space=1 ü"), b"byte-exact names").unwrap();
    let gs = gcs_target("l2g");
    let r = copy(&src, std::path::Path::new(&gs), &["--range-size", "64KiB"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = hbcp(["verify", &s(&src), &gs, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(gcs_parts_left(&gs).is_empty(), "{:?}", gcs_parts_left(&gs));
    let back = t.path().join("back");
    let r = copy(std::path::Path::new(&gs), &back, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_same_tree(&src, &back);
    // GCS to GCS, in ranges again.
    let gs2 = gcs_target("g2g");
    let r = copy(
        std::path::Path::new(&gs),
        std::path::Path::new(&gs2),
        &["--range-size", "256KiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = hbcp(["verify", &s(&src), &gs2, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
    // One composed target object rewritten with a byte flipped, independently of hbcp.
    let key = format!(
        "data/default/big/0123456789abcdef0123456789abcdef/cf/{:032x}",
        1
    );
    let mut data = large.clone();
    data[large.len() / 3] ^= 0x01;
    let prefix = gs2.strip_prefix("gs://hbcp-test/").unwrap();
    hbcp_testkit::gcs_emulator::upload(&base, "hbcp-test", &format!("{prefix}/{key}"), &data)
        .unwrap();
    assert_verify_finds_only(&src, &gs2, &key);
}

#[test]
fn copy_azurite_to_gcs_verifies() {
    let Some(_) = gcs() else { return };
    let Some(abase) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    let blob = container(&abase, "devstoreaccount1", "togcs");
    let r = copy(
        &src,
        std::path::Path::new(&blob),
        &["--range-size", "64KiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let gs = gcs_target("a2g");
    let r = copy(
        std::path::Path::new(&blob),
        std::path::Path::new(&gs),
        &["--range-size", "64KiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = hbcp(["verify", &s(&src), &gs, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
    let v = hbcp(["verify", &blob, &gs, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn copy_gcs_to_azurite_verifies() {
    let Some(gbase) = gcs() else { return };
    let Some(abase) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    generated(&src);
    let gs = gcs_source(&gbase, &src, "g2a");
    let blob = container(&abase, "devstoreaccount1", "fromgcs");
    let r = copy(
        std::path::Path::new(&gs),
        std::path::Path::new(&blob),
        &["--range-size", "64KiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = hbcp(["verify", &s(&src), &blob, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
    let v = hbcp(["verify", &gs, &blob, "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn a_plain_http_gcs_base_url_off_this_machine_is_refused_without_allow_http() {
    // No emulator needed: the URL is refused before any request.
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    let key = r#"{"gcs_base_url":"http://gcs.example.invalid:4443","disable_oauth":true,"client_email":"","private_key_id":"","private_key":""}"#;
    let r = run_env(
        &["copy", &s(&src), "gs://hbcp-test/x", "--progress", "none"],
        &[("GOOGLE_SERVICE_ACCOUNT_KEY", key)],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("http://gcs.example.invalid:4443") && r.stderr.contains("--allow-http"),
        "{r:?}"
    );
}

#[test]
fn no_gcs_private_key_appears_in_any_output_journal_plan_or_report() {
    let Some(base) = gcs() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    const BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCfAkEhBcPkEy";
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{BODY}\n-----END PRIVATE KEY-----\n");
    let key = |oauth: bool| {
        serde_json::json!({
            "gcs_base_url": base, "disable_oauth": !oauth, "client_email": "copier@test",
            "private_key_id": "k1", "private_key": pem,
        })
        .to_string()
    };
    let gs = gcs_source(&base, &src, "gsecret");
    let (rep, state, plan) = (
        t.path().join("r.json"),
        t.path().join("state"),
        t.path().join("p.plan"),
    );
    let back = t.path().join("back");
    let mut outputs = Vec::new();
    let with_key = key(false);
    let env = [("GOOGLE_SERVICE_ACCOUNT_KEY", with_key.as_str())];
    let r = run_env(
        &[
            "copy",
            &gs,
            &s(&back),
            "--progress",
            "json",
            "--report",
            &s(&rep),
            "--state",
            &s(&state),
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    outputs.push(r.stdout + &r.stderr);
    for args in [
        vec!["plan", &gs, &s(&back), "--out", &s(&plan)],
        vec!["verify", &s(&src), &gs, "--progress", "none"],
    ] {
        let r = run_env(&args, &env);
        outputs.push(r.stdout + &r.stderr);
    }
    // A write (hbcp writes GCS through the JSON API), and its verify.
    let target = format!("{gs}-copy");
    let write = |target: &str, k: &str| {
        run_env(
            &[
                "copy",
                &s(&src),
                target,
                "--progress",
                "none",
                "--report",
                &s(&rep),
            ],
            &[("GOOGLE_SERVICE_ACCOUNT_KEY", k)],
        )
    };
    let r = write(&target, &with_key);
    assert_eq!(r.code, 0, "{r:?}");
    outputs.push(r.stdout + &r.stderr);
    let r = run_env(&["verify", &s(&src), &target, "--progress", "none"], &env);
    assert_eq!(r.code, 0, "{r:?}");
    outputs.push(r.stdout + &r.stderr);
    // A write into a bucket that does not exist, a key that cannot sign, a broken key JSON, a
    // key in a wrong field: all fail, and say why (naming the URL) without the key.
    let bad_json = format!("{{\"private_key\": \"{BODY}\", oops");
    let wrong_field = format!(
        "{{\"private_key\": \"\", \"private_key_id\": \"\", \"client_email\": \"\", \"disable_oauth\": \"{BODY}\"}}"
    );
    let missing = format!("gs://hbcp-missing-{}/x", std::process::id());
    let cases = [
        ("write into a missing bucket", key(false), missing.as_str()),
        ("unusable key", key(true), target.as_str()),
        ("broken JSON", bad_json, target.as_str()),
        ("key in the wrong field", wrong_field, target.as_str()),
    ];
    for (what, k, to) in &cases {
        let r = write(to, k);
        assert_ne!(r.code, 0, "{what}: {r:?}");
        let bucket = to.split('/').take(3).collect::<Vec<_>>().join("/");
        assert!(r.stderr.contains(&bucket), "{what}: names the URL: {r:?}");
        outputs.push(r.stdout + &r.stderr);
    }
    outputs.extend(written(&[&rep, &plan], &state));
    for (i, o) in outputs.iter().enumerate() {
        assert!(!o.contains(BODY), "output {i} holds the private key:\n{o}");
    }
}
