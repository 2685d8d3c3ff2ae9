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
