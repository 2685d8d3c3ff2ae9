//! `hbcp report FILE.json --html OUT.html`, the report's per-operation latencies, `hbcp bench`.

use std::fs;
use std::path::Path;

use crate::util::*;

#[test]
fn report_html_draws_a_run_and_refuses_what_is_not_a_report() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    boundary_tree(&src, 64 * 1024);
    let json = t.path().join("r.json");
    assert_eq!(copy(&src, &dst, &["--report", &s(&json)]).code, 0);
    let html = t.path().join("r.html");
    let r = hbcp(["report", &s(&json), "--html", &s(&html)]);
    assert_eq!(r.code, 0, "{r:?}");
    let page = fs::read_to_string(&html).unwrap();
    for needle in [
        "<svg",
        "Copy: bytes written to the target per second",
        "Verify: bytes read back or checked per second",
        "Requests in flight",
        "Request latency",
        "complete and verified",
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    assert!(page.contains(&s(&src)), "names the source");
    fs::write(t.path().join("x.json"), b"{\"a\":1}").unwrap();
    let r = hbcp(["report", &s(&t.path().join("x.json")), "--html", &s(&html)]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = hbcp([
        "report",
        &s(&t.path().join("none.json")),
        "--html",
        &s(&html),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// `chromium --headless` with `args` on `page`: its stdout and its log (stderr).
fn chromium(bin: &str, page: &Path, args: &[String]) -> (String, String) {
    let o = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
        ])
        .args(["--v=0", "--window-size=1400,2000"])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "chromium: {err}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

/// The report of a copy and of a failed verification, opened in a real browser (Chromium from
/// Debian, scripts/chromium.sh): no script error, the problems first with the expected and
/// actual checksums, the copy and verify charts apart with their phase bands, ticks on the
/// time axis and points, the latencies with their marks, the command line without the
/// secret it was given; a screenshot of each for a person, in the test's output folder
/// (target/tmp/report_html/).
#[test]
fn report_html_renders_in_headless_chromium_with_problems_first() {
    let Some(browser) = emulator("HBCP_TEST_CHROMIUM", "Chromium (scripts/chromium.sh)") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    for i in 0..8u8 {
        fs::write(src.join(format!("f{i}")), vec![i; 512 << 10]).unwrap();
    }
    // Held to about three seconds by the cap, so the timeline has samples; a secret of the
    // environment passed on the command line (as an --exclude) must not reach the report.
    let secret = "c2VjcmV0LWFjY291bnQta2V5LWZvci10ZXN0cw==";
    let (json, vjson) = (t.path().join("c.json"), t.path().join("v.json"));
    let o = std::process::Command::new(bin())
        .args(["copy", &s(&src), &s(&dst), "--max-bandwidth", "1.5MiB/s"])
        .args([
            "--exclude",
            secret,
            "--progress",
            "none",
            "--report",
            &s(&json),
        ])
        .env("AZURE_STORAGE_ACCOUNT_KEY", secret)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let mut f = fs::read(dst.join("f3")).unwrap();
    f[100] ^= 1;
    fs::write(dst.join("f3"), f).unwrap();
    let v = hbcp([
        "verify",
        &s(&src),
        &s(&dst),
        "--progress",
        "none",
        "--report",
        &s(&vjson),
    ]);
    assert_eq!(v.code, 1, "{v:?}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_html");
    fs::create_dir_all(&out).unwrap();
    for (name, report) in [("copy", &json), ("verify", &vjson)] {
        let page = t.path().join(format!("{name}.html"));
        let r = hbcp(["report", &s(report), "--html", &s(&page)]);
        assert_eq!(r.code, 0, "{r:?}");
        let (dom, log) = chromium(&browser, &page, &["--dump-dom".into()]);
        for bad in ["Uncaught", ":CONSOLE", "SyntaxError"] {
            assert!(
                !log.contains(bad),
                "{name}: the browser logged {bad}: {log}"
            );
        }
        let j: serde_json::Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
        assert!(!dom.contains(secret), "{name}: the secret is in the page");
        let cmd = if name == "copy" {
            format!(
                "hbcp copy {} {} --max-bandwidth 1.5MiB/s --exclude REDACTED",
                s(&src),
                s(&dst)
            )
        } else {
            format!("hbcp verify {} {}", s(&src), s(&dst))
        };
        assert!(dom.contains(&cmd), "{name}: no {cmd:?} in {dom}");
        assert!(
            dom.contains(&format!("<dd>{}</dd>", env!("CARGO_PKG_VERSION"))),
            "{name}"
        );
        let at = |needle: &str| {
            dom.find(needle)
                .unwrap_or_else(|| panic!("{name}: no {needle}"))
        };
        // Problems first, before any chart.
        assert!(
            at("id=\"problems\"") < at("id=\"copy-throughput\""),
            "{name}"
        );
        let axis_ticks = dom.matches("class=\"tick-x\"").count();
        assert!(axis_ticks >= 3 * 4, "{name}: {axis_ticks} ticks");
        assert!(dom.contains("time since the start (s)"), "{name}");
        assert!(
            dom.contains("class=\"mark-p50\""),
            "{name}: no latency marks"
        );
        assert!(dom.contains("latency (log scale)"), "{name}");
        assert!(
            !dom.contains(">begin<") && !dom.contains(">stage<"),
            "{name}"
        );
        if name == "copy" {
            assert!(at("class=\"band band-copy\"") < at("id=\"verify-throughput\""));
            assert!(dom.contains("class=\"band band-verify\""), "{name}");
            let copy_chart = &dom[at("id=\"copy-throughput\"")..at("id=\"verify-throughput\"")];
            assert!(copy_chart.contains("class=\"series\""), "no copy line");
            assert!(
                copy_chart.matches("class=\"point\"").count() >= 2,
                "{copy_chart}"
            );
            assert!(dom.contains("None: no file failed"), "{name}");
        } else {
            let m = &j["verified"]["mismatches"][0];
            assert_eq!(m["key"], "f3");
            let row = format!(
                "<td class=\"sum\">{}</td><td class=\"sum\">{}</td>",
                m["expected"].as_str().unwrap(),
                m["actual"].as_str().unwrap()
            );
            assert!(dom.contains(&row), "{name}: no row {row}");
            assert!(v.stdout.contains(m["actual"].as_str().unwrap()), "{v:?}");
        }
        let png = out.join(format!("{name}.png"));
        let _ = fs::remove_file(&png);
        chromium(
            &browser,
            &page,
            &[format!("--screenshot={}", png.display())],
        );
        let img = fs::read(&png).unwrap();
        assert_eq!(&img[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
        // IHDR: the width the window had.
        assert_eq!(u32::from_be_bytes(img[16..20].try_into().unwrap()), 1400);
    }
}

#[test]
fn bench_measures_an_endpoint_removes_its_data_and_feeds_the_plan_estimate() {
    let t = tempfile::tempdir().unwrap();
    // An existing folder (a missing one is removed after: tests/bench_path.rs).
    let target = t.path().join("target");
    fs::create_dir(&target).unwrap();
    let state = t.path().join("state");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin())
            .args(args)
            .env("XDG_STATE_HOME", &state)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let rep = t.path().join("b.json");
    let (code, out, err) = run(&[
        "bench",
        &s(&target),
        "--size",
        "8MiB",
        "--files",
        "16",
        "--report",
        &s(&rep),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("write: ") && out.contains("files/s") && out.contains("read back"),
        "{out}"
    );
    // Per-operation latencies: the write, the read-back and the clean-up.
    for op in ["put", "get", "list", "delete"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(op) && l.contains("requests: p50")),
            "no {op} latency line in {out}"
        );
    }
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    assert_eq!(j["files"], 16);
    assert_eq!(j["bytes"], 8 << 20);
    assert!(j["write_bytes_per_s"].as_f64().unwrap() > 0.0);
    // The small-file phase: what a tree of small files goes at.
    assert!(j["small_files_per_s"].as_f64().unwrap() > 0.0, "{j}");
    assert!(out.contains("small files: "), "{out}");
    // Nothing left behind.
    assert_eq!(
        fs::read_dir(&target).unwrap().count(),
        0,
        "bench data removed"
    );
    let src = t.path().join("src");
    boundary_tree(&src, 4096);
    let (code, out, _) = run(&[
        "plan",
        &s(&src),
        &s(&target),
        "--out",
        &s(&t.path().join("p.plan")),
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("estimate: ") && out.contains("hbcp bench"),
        "{out}"
    );
    let (code, _, err) = run(&["bench", &s(&target), "--files", "0"]);
    assert_eq!(code, Some(2), "{err}");
}

/// Small files (whole, one put each) and large ones (cut into 64 KiB ranges, one staged part
/// each, one commit each): (small files, large files, ranges of the large files).
fn small_and_large(root: &Path) -> (u64, u64, u64) {
    let dir = root.join("data/default/t/r1/cf");
    fs::create_dir_all(&dir).unwrap();
    let mut seed = 7u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect()
    };
    for i in 0..5 {
        fs::write(dir.join(format!("small{i}")), bytes(1000 + i * 100)).unwrap();
    }
    // 300,000 bytes: 5 ranges of 64 KiB; 200,000 bytes: 4.
    fs::write(dir.join("large0"), bytes(300_000)).unwrap();
    fs::write(dir.join("large1"), bytes(200_000)).unwrap();
    (5, 2, 9)
}

/// The report's `latency_by_op_ms` counts exactly the requests a checksum-verified copy of
/// `small_and_large` makes, and each operation's percentiles are ordered and above zero.
/// `azure`: the target keeps an MD5 it computed of each whole file, so the verifier proves the
/// small files by it, and the large ones by `transport` (their blocks' CRC-64s and the commit's
/// ETag, one HEAD each), instead of reading them back.
fn assert_counts_are_the_requests_made(report: &Path, html: &Path, azure: bool) {
    let j: serde_json::Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
    let by = j["latency_by_op_ms"].as_object().expect("latency_by_op_ms");
    let count = |op: &str| by.get(op).map_or(0, |l| l["count"].as_u64().unwrap());
    let (small, large, ranges) = (5, 2, 9);
    assert_eq!(count("put"), small, "{by:?}");
    assert_eq!(count("stage"), ranges, "{by:?}");
    assert_eq!(count("commit"), large, "{by:?}");
    assert_eq!(count("begin"), large, "{by:?}");
    // Read once from the source, read back once from the target by the verifier (on Azure
    // nothing: service MD5 and transport prove every file).
    let read_back = if azure { 0 } else { small + ranges };
    assert_eq!(count("get"), small + ranges + read_back, "{by:?}");
    if azure {
        let ways = &j["verified"]["ways"];
        assert_eq!(
            (ways["service"].as_u64(), ways["transport"].as_u64()),
            (Some(small), Some(large)),
            "{ways}"
        );
    }
    assert!(count("list") >= 1, "{by:?}");
    assert_eq!(count("delete") + count("abort"), 0, "{by:?}");
    let total: u64 = by.values().map(|l| l["count"].as_u64().unwrap()).sum();
    assert_eq!(j["latency_ms"]["count"].as_u64().unwrap(), total);
    for (op, l) in by {
        let v = |k: &str| l[k].as_f64().unwrap();
        assert!(v("p50") > 0.0, "{op}: {l}");
        assert!(
            v("p50") <= v("p90")
                && v("p90") <= v("p99")
                && v("p99") <= v("p999")
                && v("p999") <= v("max"),
            "{op}: {l}"
        );
        let in_buckets: u64 = l["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(in_buckets, l["count"].as_u64().unwrap(), "{op}: {l}");
    }
    let r = hbcp(["report", &s(report), "--html", &s(html)]);
    assert_eq!(r.code, 0, "{r:?}");
    let page = fs::read_to_string(html).unwrap();
    assert!(page.contains("Request latency by operation"));
    for (op, l) in by {
        let at = page
            .find(&format!("<g class=\"op\" id=\"op-{op}\">"))
            .unwrap_or_else(|| panic!("no row for {op}"));
        let row = &page[at..at + page[at..].find("</g>").unwrap()];
        let n = l["count"].as_u64().unwrap();
        let plural = if n == 1 { "request" } else { "requests" };
        assert!(
            row.contains(&format!(" ({n} {plural})</text>")),
            "{op}: {row}"
        );
    }
}

#[test]
fn copy_to_local_reports_latency_by_operation_counting_every_request() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    small_and_large(&src);
    let json = t.path().join("r.json");
    let r = copy(
        &src,
        &dst,
        &["--range-size", "64KiB", "--report", &s(&json)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_counts_are_the_requests_made(&json, &t.path().join("r.html"), false);
}

#[test]
fn copy_to_azurite_reports_latency_by_operation_counting_every_request() {
    let Some(base) = crate::cloud::azurite() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    small_and_large(&src);
    let blob = crate::cloud::container(&base, "devstoreaccount1", "lat");
    let json = t.path().join("r.json");
    let r = copy(
        &src,
        Path::new(&blob),
        &["--range-size", "64KiB", "--report", &s(&json)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_counts_are_the_requests_made(&json, &t.path().join("r.html"), true);
}
