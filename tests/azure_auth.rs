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

pub(crate) const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published key for devstoreaccount1 (not a secret).
pub(crate) const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's account endpoint and the SDK's Python, or `None` (skipped; a failure under CI).
pub(crate) fn setup() -> Option<(String, String)> {
    let base = azurite()?;
    let py = emulator(
        "HBCP_TEST_PYTHON",
        "the Azure SDK for Python (scripts/azure-sdk.sh)",
    )?;
    Some((format!("{base}/{ACCOUNT}"), py))
}

/// Run tests/azure_sdk.py; its stdout, trimmed.
pub(crate) fn sdk(py: &str, args: &[&str]) -> String {
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

/// Run hbcp with no Azure credential (and no extra trusted CA) in the environment but `env`.
fn hbcp_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") || k.starts_with("HBCP_AZURE_KEY_") || k.starts_with("SSL_CERT_")
        {
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

/// A process this test started, killed by its PID when the test ends.
pub(crate) struct Server(pub(crate) std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on now (the OS's choice).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until `port` accepts connections (at most 60 s), or fail with `log`.
pub(crate) fn wait_for(port: u16, server: &mut Server, log: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = server.0.try_wait() {
            panic!(
                "exited {st}: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} never opened"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, made with openssl:
/// (ca.pem, cert.pem, key.pem).
fn test_ca(dir: &Path) -> (String, String, String) {
    let p = |f: &str| s(&dir.join(f));
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=hbcp test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p("key.pem"),
        "-out",
        &p("leaf.csr"),
    ]);
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("cert.pem"),
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

/// The token stand-in (tests/entra_token.py) for audience `aud`: its port and request log.
fn token_server(
    py: &str,
    dir: &Path,
    cert: &str,
    key: &str,
    aud: &str,
) -> (Server, u16, std::path::PathBuf) {
    let port = free_port();
    let log = dir.join(format!("token-{port}.log"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/entra_token.py");
    let child = Command::new(py)
        .arg(script)
        .args([&port.to_string(), cert, key, aud, &s(&log)])
        .stderr(fs::File::create(dir.join(format!("token-{port}.err"))).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    wait_for(port, &mut server, &dir.join(format!("token-{port}.err")));
    (server, port, log)
}

#[test]
fn entra_id_on_azurite_service_principal_managed_and_workload_identity_copy_and_a_wrong_audience_is_refused()
 {
    let Some((_, py)) = setup() else { return };
    let azurite_bin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/node/node_modules/.bin/azurite-blob");
    assert!(
        azurite_bin.exists(),
        "scripts/azurite.sh installs Azurite at {}",
        azurite_bin.display()
    );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (ca, cert, key) = test_ca(dir);
    // Azurite checking bearer tokens (issuer, audience, lifetime), over HTTPS only.
    let port = free_port();
    let alog = dir.join("azurite.log");
    let child = Command::new(&azurite_bin)
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
        ])
        .args([
            "--disableTelemetry",
            "--loose",
            "--skipApiVersionCheck",
            "--oauth",
            "basic",
        ])
        .args(["--cert", &cert, "--key", &key])
        .stdout(fs::File::create(&alog).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut azurite = Server(child);
    wait_for(port, &mut azurite, &alog);
    let (_good, good, good_log) = token_server(&py, dir, &cert, &key, "https://storage.azure.com");
    let (_bad, bad, _) = token_server(&py, dir, &cert, &key, "https://management.azure.com");
    let ep = format!("https://127.0.0.1:{port}/{ACCOUNT}");
    let src = dir.join("src");
    tree(&src);
    let want = sdk(&py, &["local", &s(&src)]);
    const SECRET: &str = "sp-client-s3cret-value";
    let tenant = "00000000-0000-0000-0000-000000000001";
    let authority = |p: u16| format!("https://127.0.0.1:{p}");
    // The test CA is trusted as a TLS-inspecting proxy's would be: SSL_CERT_FILE.
    let sp = |p: u16| {
        vec![
            ("SSL_CERT_FILE".to_string(), ca.clone()),
            (
                "AZURE_CLIENT_ID".into(),
                "11111111-1111-1111-1111-111111111111".into(),
            ),
            ("AZURE_TENANT_ID".into(), tenant.into()),
            ("AZURE_CLIENT_SECRET".into(), SECRET.into()),
            ("AZURE_AUTHORITY_HOST".into(), authority(p)),
        ]
    };
    let with = |args: &[&str], env: &[(String, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        hbcp_env(args, &env)
    };
    // The SDK reads back over the same TLS, trusting the same CA.
    let digest = |c: &str| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure_sdk.py");
        let o = Command::new(&py)
            .arg(script)
            .args(["digest", &ep, ACCOUNT, KEY, c, "hbase"])
            .env("REQUESTS_CA_BUNDLE", &ca)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };

    // Service principal (client secret): a token from the stand-in's token endpoint.
    let r = with(
        &copy_args(&s(&src), &format!("{ep}/spcopy/hbase")),
        &sp(good),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("created container spcopy"), "{r:?}");
    assert_eq!(digest("spcopy"), want);
    assert!(
        fs::read_to_string(&good_log)
            .unwrap()
            .contains(&format!("POST /{tenant}/oauth2/v2.0/token"))
    );
    let a = with(&["auth", &format!("{ep}/spcopy/hbase")], &sp(good));
    assert_eq!(a.code, 0, "{a:?}");
    assert!(
        a.stdout
            .contains("Entra ID service principal (client secret)"),
        "{a:?}"
    );
    for run in [&r, &a] {
        assert_no_secret(run, SECRET);
    }

    // Managed identity, user-assigned by client id, from the endpoint AZURE_MSI_ENDPOINT names.
    let msi = vec![
        ("SSL_CERT_FILE".to_string(), ca.clone()),
        (
            "AZURE_CLIENT_ID".into(),
            "22222222-2222-2222-2222-222222222222".into(),
        ),
        (
            "AZURE_MSI_ENDPOINT".into(),
            format!("{}/msi/token", authority(good)),
        ),
    ];
    let r = with(&copy_args(&s(&src), &format!("{ep}/msicopy/hbase")), &msi);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(digest("msicopy"), want);
    let log = fs::read_to_string(&good_log).unwrap();
    assert!(
        log.contains("GET /msi/token") && log.contains("client_id=22222222"),
        "{log}"
    );
    let a = with(&["auth", &format!("{ep}/msicopy/hbase")], &msi);
    assert!(
        a.stdout.contains("managed identity, user-assigned") && a.stdout.contains("22222222"),
        "{a:?}"
    );

    // Workload identity: the federated token file is exchanged at the same token endpoint.
    let federated = dir.join("federated-token");
    fs::write(&federated, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ3b3JrbG9hZCJ9.").unwrap();
    let wi = vec![
        ("SSL_CERT_FILE".to_string(), ca.clone()),
        (
            "AZURE_CLIENT_ID".into(),
            "33333333-3333-3333-3333-333333333333".into(),
        ),
        ("AZURE_TENANT_ID".into(), tenant.into()),
        ("AZURE_FEDERATED_TOKEN_FILE".into(), s(&federated)),
        ("AZURE_AUTHORITY_HOST".into(), authority(good)),
    ];
    let r = with(&copy_args(&s(&src), &format!("{ep}/wicopy/hbase")), &wi);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(digest("wicopy"), want);
    let a = with(&["auth", &format!("{ep}/wicopy/hbase")], &wi);
    assert!(a.stdout.contains("Entra ID workload identity"), "{a:?}");

    // A token for another audience: refused before any byte, one line, nothing created.
    let r = with(
        &copy_args(&s(&src), &format!("{ep}/audcopy/hbase")),
        &sp(bad),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(one_line(&r).contains("refused the credential"), "{r:?}");
    assert_no_secret(&r, SECRET);
    // Without the CA trusted: the TLS failure, named as such.
    let untrusted: Vec<(String, String)> = sp(good).into_iter().skip(1).collect();
    let r = with(
        &copy_args(&s(&src), &format!("{ep}/tlscopy/hbase")),
        &untrusted,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        one_line(&r).contains("TLS handshake failed") && one_line(&r).contains("SSL_CERT_FILE"),
        "{r:?}"
    );
}
