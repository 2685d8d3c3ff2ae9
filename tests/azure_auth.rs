//! Azure credentials as operators hold them (issue 15): a SAS in the URL is that endpoint's
//! credential for every request, source and target apart; what it may not do is refused before
//! any byte moves (exit 2, one line, nothing written); `hbcp auth URL` names the credential and
//! each missing permission; endpoint problems say what to do with the same exit status on
//! every cloud. Judged against Azurite with an independent client: SAS tokens signed and blobs
//! read back by the Azure SDK for Python (tests/azure_sdk.py, installed by
//! scripts/azure-sdk.sh). No signature may appear in any output.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cloud::azurite;
use crate::util::*;

static N: AtomicU64 = AtomicU64::new(0);

const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published key for devstoreaccount1 (not a secret).
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's account endpoint and the SDK's Python, or `None` (skipped; a failure under CI).
fn setup() -> Option<(String, String)> {
    let base = azurite()?;
    let py = emulator(
        "HBCP_TEST_PYTHON",
        "the Azure SDK for Python (scripts/azure-sdk.sh)",
    )?;
    Some((format!("{base}/{ACCOUNT}"), py))
}

/// Run tests/azure_sdk.py; its stdout, trimmed.
fn sdk(py: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure_sdk.py");
    let o = Command::new(py).arg(script).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "azure_sdk.py {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A fresh container name (created by the SDK when `create`).
fn container(ep: &str, py: &str, create: bool) -> String {
    let c = format!(
        "auth{}n{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    if create {
        sdk(py, &["create", ep, ACCOUNT, KEY, &c]);
    }
    c
}

/// A container SAS signed by the SDK: `perms` as Azure writes them, valid for `secs` seconds.
fn container_sas(ep: &str, py: &str, c: &str, perms: &str, secs: i64) -> String {
    sdk(
        py,
        &[
            "sas-container",
            ep,
            ACCOUNT,
            KEY,
            c,
            perms,
            &secs.to_string(),
        ],
    )
}

fn account_sas(ep: &str, py: &str, perms: &str) -> String {
    sdk(py, &["sas-account", ep, ACCOUNT, KEY, perms, "3600"])
}

fn sig_of(sas: &str) -> String {
    sas.split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .expect("a SAS has a signature")
        .to_string()
}

/// Committed blobs in the container (-1: it does not exist), by the SDK.
fn count(ep: &str, py: &str, c: &str) -> i64 {
    sdk(py, &["count", ep, ACCOUNT, KEY, c]).parse().unwrap()
}

/// Run hbcp with no Azure credential in the environment but `env`.
fn hbcp_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") || k.starts_with("HBCP_AZURE_KEY_") {
            cmd.env_remove(k);
        }
    }
    to_run(cmd.args(args).envs(env.iter().copied()).output().unwrap())
}

/// Files of several sizes, one cut into ranges (blocks) at `--range-size 64KiB`.
fn tree(dir: &Path) {
    fs::create_dir_all(dir.join("data/ns/t/r/f")).unwrap();
    fs::write(dir.join("top"), b"top\n").unwrap();
    fs::write(dir.join("empty"), b"").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(dir.join("data/ns/t/r/f/big"), big).unwrap();
    fs::write(dir.join("data/ns/t/r/f/small"), vec![9u8; 1000]).unwrap();
}

fn copy_args<'a>(src: &'a str, dst: &'a str) -> Vec<&'a str> {
    vec![
        "copy",
        src,
        dst,
        "--progress",
        "none",
        "--range-size",
        "64KiB",
    ]
}

/// The one `hbcp:` line of a refusal.
fn one_line(r: &Run) -> &str {
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {r:?}");
    assert!(lines[0].starts_with("hbcp: "), "{r:?}");
    lines[0]
}

fn assert_no_secret(r: &Run, secret: &str) {
    assert!(
        !r.stdout.contains(secret) && !r.stderr.contains(secret),
        "the SAS signature was printed: {r:?}"
    );
}

#[test]
fn bar_local_to_azurite_to_azurite_to_local_with_sas_urls_only_byte_exact_per_the_sdk() {
    let Some((ep, py)) = setup() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src);
    let want = sdk(&py, &["local", &s(&src)]);
    // Container SAS on an existing container for the first hop (it may not create containers);
    // an account SAS for the second, whose container does not exist yet: created with it.
    let c1 = container(&ep, &py, true);
    let c2 = container(&ep, &py, false);
    let sas1 = container_sas(&ep, &py, &c1, "racwdl", 3600);
    let sas1_ro = container_sas(&ep, &py, &c1, "rl", 3600);
    let sas2 = account_sas(&ep, &py, "racwdl");
    let u1 = format!("{ep}/{c1}/hbase?{sas1}");
    let u1_ro = format!("{ep}/{c1}/hbase?{sas1_ro}");
    let u2 = format!("{ep}/{c2}/hbase?{sas2}");
    let secrets = [sig_of(&sas1), sig_of(&sas1_ro), sig_of(&sas2)];

    let r = hbcp_env(&copy_args(&s(&src), &u1), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(sdk(&py, &["digest", &ep, ACCOUNT, KEY, &c1, "hbase"]), want);

    let r2 = hbcp_env(&copy_args(&u1_ro, &u2), &[]);
    assert_eq!(r2.code, 0, "{r2:?}");
    assert!(
        r2.stderr.contains(&format!("created container {c2}")),
        "{r2:?}"
    );
    assert_eq!(sdk(&py, &["digest", &ep, ACCOUNT, KEY, &c2, "hbase"]), want);

    let back = t.path().join("back");
    let u2_read = format!("{ep}/{c2}/hbase?{}", account_sas(&ep, &py, "rl"));
    let r3 = hbcp_env(&copy_args(&u2_read, &s(&back)), &[]);
    assert_eq!(r3.code, 0, "{r3:?}");
    assert_eq!(sdk(&py, &["local", &s(&back)]), want);
    let v = hbcp_env(&["verify", &s(&src), &u1_ro, "--progress", "none"], &[]);
    assert_eq!(v.code, 0, "{v:?}");
    for run in [&r, &r2, &r3, &v] {
        for sig in &secrets {
            assert_no_secret(run, sig);
        }
    }
}

/// `hbcp copy` of a small tree into container `c` with `sas` in the URL: refused before any
/// byte moves: exit 2, one line holding each of `says`, nothing in the container (per the
/// SDK), no signature printed.
fn assert_target_refused(ep: &str, py: &str, c: &str, sas: &str, says: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    tree(t.path());
    let r = hbcp_env(
        &copy_args(&s(t.path()), &format!("{ep}/{c}/hbase?{sas}")),
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let line = one_line(&r);
    for want in says {
        assert!(line.contains(want), "{want:?}: {r:?}");
    }
    assert_eq!(count(ep, py, c), 0, "nothing written");
    assert_no_secret(&r, &sig_of(sas));
}

#[test]
fn read_only_sas_as_target_is_refused_before_any_byte_with_the_missing_permission() {
    let Some((ep, py)) = setup() else { return };
    let c = container(&ep, &py, true);
    let sas = container_sas(&ep, &py, &c, "rl", 3600);
    assert_target_refused(&ep, &py, &c, &sas, &["lacks the permission Write", "sp=w"]);
}

#[test]
fn expired_sas_is_refused_before_any_request_naming_when_it_expired() {
    let Some((ep, py)) = setup() else { return };
    let c = container(&ep, &py, true);
    let sas = container_sas(&ep, &py, &c, "racwdl", -3600);
    assert_target_refused(&ep, &py, &c, &sas, &["expired at", "make a new SAS"]);
}

#[test]
fn sas_of_another_container_is_refused_before_any_byte() {
    let Some((ep, py)) = setup() else { return };
    let (a, b) = (container(&ep, &py, true), container(&ep, &py, true));
    let sas_b = container_sas(&ep, &py, &b, "racwdl", 3600);
    assert_target_refused(
        &ep,
        &py,
        &a,
        &sas_b,
        &["refused the credential", "another container"],
    );
}

#[test]
fn bogus_sas_in_the_url_with_a_valid_key_in_the_environment_fails_the_url_wins() {
    let Some((ep, py)) = setup() else { return };
    let t = tempfile::tempdir().unwrap();
    tree(t.path());
    let c = container(&ep, &py, true);
    let sig = "Ym9ndXNTaWduYXR1cmVaejk%3D";
    let bogus = format!("{ep}/{c}/hbase?sv=2021-08-06&sr=c&sp=racwdl&se=2099-01-01&sig={sig}");
    let env = [("AZURE_STORAGE_ACCOUNT_KEY", KEY)];
    let r = hbcp_env(&copy_args(&s(t.path()), &bogus), &env);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("using the SAS in the URL")
            && r.stderr
                .contains("AZURE_STORAGE_ACCOUNT_KEY in the environment is not used"),
        "said once which credential is used: {r:?}"
    );
    assert_eq!(
        r.stderr.matches("using the SAS in the URL").count(),
        1,
        "{r:?}"
    );
    assert!(r.stderr.contains("refused the credential"), "{r:?}");
    assert_eq!(count(&ep, &py, &c), 0, "nothing written");
    assert_no_secret(&r, sig);
    assert_no_secret(&r, "Ym9ndXNTaWduYXR1cmVaejk=");
    assert_no_secret(&r, KEY);
    // The same key, without the URL's SAS, writes: it was the URL's credential that failed.
    let ok = hbcp_env(&copy_args(&s(t.path()), &format!("{ep}/{c}/hbase")), &env);
    assert_eq!(ok.code, 0, "{ok:?}");
}

#[test]
fn two_containers_with_two_sas_urls_copied_one_to_the_other() {
    let Some((ep, py)) = setup() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tree(&src);
    let want = sdk(&py, &["local", &s(&src)]);
    let (a, b) = (container(&ep, &py, true), container(&ep, &py, true));
    let sas_a = container_sas(&ep, &py, &a, "racwdl", 3600);
    let sas_b = container_sas(&ep, &py, &b, "racwdl", 3600);
    let ua = format!("{ep}/{a}/hbase?{sas_a}");
    let ub = format!("{ep}/{b}/copy?{sas_b}");
    assert_eq!(hbcp_env(&copy_args(&s(&src), &ua), &[]).code, 0);
    // Each endpoint signs with its own SAS: neither could read or write the other container.
    let r = hbcp_env(&copy_args(&ua, &ub), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(sdk(&py, &["digest", &ep, ACCOUNT, KEY, &b, "copy"]), want);
    assert_no_secret(&r, &sig_of(&sas_a));
    assert_no_secret(&r, &sig_of(&sas_b));
}

#[test]
fn a_container_sas_cannot_create_a_missing_container_and_the_line_says_what_to_do() {
    let Some((ep, py)) = setup() else { return };
    let t = tempfile::tempdir().unwrap();
    tree(t.path());
    let c = container(&ep, &py, false);
    let sas = container_sas(&ep, &py, &c, "racwdl", 3600);
    let r = hbcp_env(
        &copy_args(&s(t.path()), &format!("{ep}/{c}/hbase?{sas}")),
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let line = one_line(&r);
    assert!(
        line.contains(&format!("container {c} does not exist")) && line.contains("create it first"),
        "{r:?}"
    );
    assert_eq!(count(&ep, &py, &c), -1, "still no container");
    // As a source, the missing container is one line too, the same exit status.
    let r = hbcp_env(
        &copy_args(&format!("{ep}/{c}/hbase?{sas}"), &s(&t.path().join("x"))),
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains("does not exist"), "{r:?}");
}

#[test]
fn auth_names_the_credential_and_each_missing_permission_and_removes_its_probe() {
    let Some((ep, py)) = setup() else { return };
    let c = container(&ep, &py, true);
    let ro = container_sas(&ep, &py, &c, "rl", 3600);
    let r = hbcp_env(&["auth", &format!("{ep}/{c}/hbase?{ro}")], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout
            .contains("credential: service SAS, from the URL's query"),
        "{r:?}"
    );
    assert!(r.stdout.contains("permissions sp=rl"), "{r:?}");
    for (perm, word) in [
        ("list", "granted"),
        ("write", "MISSING"),
        ("read", "granted"),
        ("delete", "MISSING"),
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(perm) && l.contains(word)),
            "{perm} {word}: {r:?}"
        );
    }
    assert!(r.stdout.contains("verdict: missing write, delete"), "{r:?}");
    assert_no_secret(&r, &sig_of(&ro));
    let r = hbcp_env(
        &["auth", "--read-only", &format!("{ep}/{c}/hbase?{ro}")],
        &[],
    );
    assert_eq!(r.code, 0, "a read-only SAS is a good source: {r:?}");

    let rw = account_sas(&ep, &py, "racwdl");
    let r = hbcp_env(&["auth", &format!("{ep}/{c}/hbase?{rw}")], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("credential: account SAS"), "{r:?}");
    assert_eq!(r.stdout.matches("granted").count(), 5, "{r:?}");
    assert_eq!(count(&ep, &py, &c), 0, "the probe object was removed");
    let r = hbcp_env(
        &["auth", &format!("{ep}/{c}/hbase")],
        &[("AZURE_STORAGE_ACCOUNT_KEY", KEY)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("credential: account key (SharedKey), from AZURE_STORAGE_ACCOUNT_KEY"),
        "{r:?}"
    );
    assert_no_secret(&r, KEY);
}

#[test]
fn the_resume_line_of_an_interrupted_copy_to_a_sas_url_holds_no_signature() {
    let Some((ep, py)) = setup() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..32u32 {
        fs::write(src.join(format!("f{i}")), vec![(i % 251) as u8; 64 * 1024]).unwrap();
    }
    let c = container(&ep, &py, true);
    let sas = container_sas(&ep, &py, &c, "racwdl", 3600);
    let url = format!("{ep}/{c}/hbase?{sas}");
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") {
            cmd.env_remove(k);
        }
    }
    // 2 MiB at 512 KiB/s: the signal lands mid-copy, after the first progress line.
    let mut child = cmd
        .args([
            "copy",
            &s(&src),
            &url,
            "--progress",
            "json",
            "--max-bandwidth",
            "512KiB",
            "--workers",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(
        err.contains("resume with") && err.contains("sig=REDACTED"),
        "{err}"
    );
    let sig = sig_of(&sas);
    assert!(
        !err.contains(&sig) && !line.contains(&sig) && !rest.contains(&sig),
        "{err}"
    );
}

#[test]
fn endpoint_problems_are_one_line_and_exit_2_on_every_cloud() {
    let t = tempfile::tempdir().unwrap();
    tree(t.path());
    let src = s(t.path());
    let sas = "sv=2021-08-06&sr=c&sp=racwdl&se=2099-01-01&sig=eA%3D%3D";
    // .invalid never resolves (RFC 6761): DNS, named as such, not "request failed".
    let dns = format!("wasbs://c@acct.blob.core.windows.invalid/hbase?{sas}");
    let r = hbcp_env(&copy_args(&src, &dns), &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains("does not resolve (DNS)"), "{r:?}");
    // Nothing listens on port 1.
    let refused = format!("http://127.0.0.1:1/{ACCOUNT}/c/hbase?{sas}");
    let r = hbcp_env(&copy_args(&src, &refused), &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains("connection refused"), "{r:?}");
    // wasb:// is plain HTTP, refused with what to use instead; abfs:// is HTTPS (its DNS
    // failure shows it got as far as a request).
    let r = hbcp_env(
        &copy_args(&src, "wasb://c@acct.blob.core.windows.net/hbase"),
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains("use wasbs://"), "{r:?}");
    let abfs = format!("abfs://c@acct.dfs.core.windows.invalid/hbase?{sas}");
    let r = hbcp_env(&copy_args(&src, &abfs), &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains("does not resolve"), "{r:?}");
    // A missing bucket on S3 is the same class and status as a missing container on Azure.
    if emulator("HBCP_TEST_S3", "moto").is_some() {
        let r = hbcp(copy_args(&src, "s3://hbcp-no-such-bucket-x/hbase"));
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            one_line(&r).contains("bucket hbcp-no-such-bucket-x does not exist"),
            "{r:?}"
        );
        let r = hbcp(copy_args(
            "s3://hbcp-no-such-bucket-x/hbase",
            &s(&t.path().join("o")),
        ));
        assert_eq!(r.code, 2, "{r:?}");
        assert!(one_line(&r).contains("does not exist"), "{r:?}");
    }
}
