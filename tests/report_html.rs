//! `hbcp report FILE.json --html OUT.html`.

use std::fs;

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
        "Throughput over time",
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

#[test]
fn bench_measures_an_endpoint_removes_its_data_and_feeds_the_plan_estimate() {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
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
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&rep).unwrap()).unwrap();
    assert_eq!(j["files"], 16);
    assert_eq!(j["bytes"], 8 << 20);
    assert!(j["write_bytes_per_s"].as_f64().unwrap() > 0.0);
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
