//! `hbcp report FILE.json --html OUT.html`: a run drawn for a change board, as one
//! self-contained HTML page with inline SVG (no script, no network, nothing linked).
//!
//! Top to bottom: the outcome (status, hbcp version, the redacted command line, duration,
//! bytes, files, what was left out); the problems, first (mismatches with the expected and
//! actual size or checksum, failures, source findings, warnings); then the copy and the verify
//! throughput drawn apart over one labelled time axis with the phases as bands; the requests
//! in flight against the concurrency limit, explained; the latencies of each operation, named
//! as a reader knows them, on a logarithmic axis.

use std::fmt::Write;

use serde_json::Value;

/// The drawing's own width: the SVG scales to the page's full width.
const W: f64 = 1200.0;
const H: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn mib(b: f64) -> String {
    hbcp_job::report::human_bytes(b)
}

fn duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{}m {:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!(
            "{}h {:02}m",
            (s / 3600.0).floor(),
            ((s % 3600.0) / 60.0).floor()
        )
    }
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most `n` ticks up to `max`.
fn step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// The phases of a run over time: (name, start, end) in seconds.
type Phases = Vec<(&'static str, f64, f64)>;

/// A time chart: one series of `(t, y)`, the phases as bands behind it, ticks and a label on
/// both axes. `limit`: a dashed horizontal line with its label.
#[allow(clippy::too_many_arguments)]
fn time_chart(
    id: &str,
    title: &str,
    unit: &str,
    pts: &[(f64, f64)],
    t_end: f64,
    phases: &Phases,
    color: &str,
    limit: Option<(f64, String)>,
) -> String {
    let max_x = t_end
        .max(pts.iter().map(|p| p.0).fold(0.0, f64::max))
        .max(1.0);
    let max_y = pts
        .iter()
        .map(|p| p.1)
        .chain(limit.as_ref().map(|l| l.0))
        .fold(0.0, f64::max)
        * 1.1;
    // Nothing drawn: an axis from 0 to 1 rather than a zero-height one.
    let max_y = if max_y > 0.0 { max_y } else { 1.0 };
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + x / max_x * pw;
    let sy = |y: f64| TOP + ph - y / max_y * ph;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure id="{id}"><figcaption>{}</figcaption><svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for (name, a, b) in phases {
        let fill = if *name == "copy" {
            "#e3efe6"
        } else {
            "#e6e9f5"
        };
        let _ = write!(
            svg,
            r##"<rect class="band band-{name}" x="{:.1}" y="{TOP}" width="{:.1}" height="{ph}" fill="{fill}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#667">{name}</text>"##,
            sx(*a),
            (sx(*b) - sx(*a)).max(1.0),
            sx(*a) + 4.0,
            TOP + 13.0
        );
    }
    // Axes, ticks and labels.
    let _ = write!(
        svg,
        r##"<g class="axis"><line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="#888"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{0}" stroke="#888"/>"##,
        TOP + ph,
        W - RIGHT
    );
    let xs = step(max_x, 10.0);
    for i in 0..=((max_x / xs + 1e-9).floor() as u64) {
        let x = i as f64 * xs;
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#888"/><text class="tick-x" x="{0:.1}" y="{3}" font-size="11" text-anchor="middle" fill="#444">{4}</text>"##,
            sx(x),
            TOP + ph,
            TOP + ph + 4.0,
            TOP + ph + 16.0,
            esc(&format!("{} s", trim_num(x)))
        );
    }
    let ys = step(max_y, 4.0);
    for i in 0..=((max_y / ys + 1e-9).floor() as u64) {
        let y = i as f64 * ys;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#eee"/><text class="tick-y" x="{2}" y="{3:.1}" font-size="11" text-anchor="end" fill="#444">{4}</text>"##,
            sy(y),
            W - RIGHT,
            LEFT - 6.0,
            sy(y) + 4.0,
            esc(&trim_num(y))
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle" fill="#222">time since the start (s)</text><text x="14" y="{:.1}" font-size="12" text-anchor="middle" fill="#222" transform="rotate(-90 14 {:.1})">{}</text></g>"##,
        LEFT + pw / 2.0,
        H - 4.0,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(unit)
    );
    if let Some((v, label)) = &limit {
        let _ = write!(
            svg,
            r##"<line class="limit" x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#b55" stroke-dasharray="6 4"/><text x="{2}" y="{3:.1}" font-size="11" fill="#b55">{4}</text>"##,
            sy(*v),
            W - RIGHT,
            LEFT + 60.0,
            sy(*v) - 4.0,
            esc(label)
        );
    }
    if pts.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="13" fill="#888">no samples in this phase (shorter than a second, or none)</text>"##,
            LEFT + 20.0,
            TOP + ph / 2.0
        );
    } else {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in pts {
            let _ = write!(
                svg,
                r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{} s: {:.2} {}</title></circle>"#,
                sx(*x),
                sy(*y),
                trim_num(*x),
                y,
                esc(unit)
            );
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

fn trim_num(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .into()
    }
}

/// What an operation of the report is, in words a reader knows.
fn op_name(op: &str) -> &str {
    match op {
        "list" => "list (one page of a listing)",
        "head" => "file info (HEAD / stat)",
        "get" => "read (ranged GET)",
        "put" => "write a whole file (PUT)",
        "begin" => "start a staged upload",
        "stage" => "upload one block / part",
        "commit" => "commit an upload",
        "abort" => "abort an upload",
        "delete" => "delete",
        "copy" => "server-side copy",
        "mkdir" => "make a folder",
        other => other,
    }
}

/// The latencies of each operation on a logarithmic axis: a bar from p50 to max with marks at
/// p50, p90, p99, so that a median of a millisecond stays visible beside a maximum of seconds.
fn latency_chart(rows: &[(String, &Value)]) -> String {
    let v = |l: &Value, k: &str| l[k].as_f64().unwrap_or(0.0);
    let lo_ms = rows
        .iter()
        .map(|(_, l)| v(l, "p50"))
        .filter(|x| *x > 0.0)
        .fold(f64::MAX, f64::min)
        .min(1.0);
    let hi_ms = rows.iter().map(|(_, l)| v(l, "max")).fold(1.0, f64::max);
    let lo = 10f64.powf(lo_ms.max(1e-3).log10().floor());
    let hi = 10f64.powf(hi_ms.log10().ceil()).max(lo * 10.0);
    let left = 300.0;
    let row_h = 26.0;
    let h = TOP + rows.len() as f64 * row_h + BOTTOM;
    let pw = W - left - RIGHT;
    let sx = |ms: f64| left + (ms.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()) * pw;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure id="latency"><figcaption>Request latency by operation (logarithmic axis): the bar runs from the median (p50) to the slowest request; marks at p90 and p99</figcaption><svg class="chart" viewBox="0 0 {W} {h}" width="100%" role="img" aria-label="request latency by operation">"#
    );
    let mut t = lo;
    while t <= hi * 1.0001 {
        let label = if t < 1.0 {
            format!("{} µs", (t * 1000.0).round())
        } else if t < 1000.0 {
            format!("{} ms", t.round())
        } else {
            format!("{} s", (t / 1000.0).round())
        };
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1}" stroke="#eee"/><text class="tick-x" x="{0:.1}" y="{2}" font-size="11" text-anchor="middle" fill="#444">{3}</text>"##,
            sx(t),
            h - BOTTOM,
            h - BOTTOM + 16.0,
            esc(&label)
        );
        t *= 10.0;
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#222">latency (log scale)</text>"##,
        left + pw / 2.0,
        h - 4.0
    );
    for (i, (op, l)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * row_h + row_h / 2.0;
        let _ = write!(
            svg,
            r##"<g class="op" id="op-{}"><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#222">{} ({} {})</text><line class="lat" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#4a7fb5" stroke-width="8"/>"##,
            esc(&op.replace(' ', "-")),
            left - 8.0,
            y + 4.0,
            esc(op_name(op)),
            l["count"].as_u64().unwrap_or(0),
            if l["count"].as_u64() == Some(1) {
                "request"
            } else {
                "requests"
            },
            sx(v(l, "p50")),
            sx(v(l, "max")).max(sx(v(l, "p50")) + 2.0)
        );
        for (k, c) in [("p50", "#123"), ("p90", "#d80"), ("p99", "#c33")] {
            if l.get(k).is_some() {
                let _ = write!(
                    svg,
                    r#"<circle class="mark-{k}" cx="{:.1}" cy="{y:.1}" r="5" fill="{c}"><title>{k} {:.2} ms</title></circle>"#,
                    sx(v(l, k)),
                    v(l, k)
                );
            }
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The problems of a run, as tables; empty when there are none.
fn problems(report: &Value) -> String {
    let list = |k: &Value| k.as_array().cloned().unwrap_or_default();
    let mismatches = list(&report["verified"]["mismatches"]);
    let failures = list(&report["failures"]);
    let findings = list(&report["source_findings"]);
    let warnings = list(&report["warnings"]);
    let extras = list(&report["verified"]["extras"]);
    if mismatches.is_empty() && failures.is_empty() && findings.is_empty() && warnings.is_empty() {
        return r#"<section id="problems" class="ok"><h2>Problems</h2><p>None: no file failed, none differs from the source, no source finding.</p></section>"#.into();
    }
    let mut html = String::from(r#"<section id="problems" class="bad"><h2>Problems</h2>"#);
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    };
    if !mismatches.is_empty() {
        let _ = write!(
            html,
            "<h3>{} {} at the target</h3><table class=\"mismatches\"><tr><th>file</th><th>what</th><th>expected (source)</th><th>actual (target)</th></tr>",
            mismatches.len(),
            if mismatches.len() == 1 {
                "mismatch"
            } else {
                "mismatches"
            }
        );
        for m in &mismatches {
            let _ = write!(
                html,
                "<tr><td class=\"key\">{}</td><td>{}</td><td class=\"sum\">{}</td><td class=\"sum\">{}</td></tr>",
                cell(&m["key"]),
                cell(&m["kind"]).replace('_', " "),
                cell(&m["expected"]),
                cell(&m["actual"])
            );
        }
        html.push_str("</table>");
        if !extras.is_empty() {
            let _ = write!(
                html,
                "<p>{} of them: files at the target that the source lacks.</p>",
                extras.len()
            );
        }
    }
    if !failures.is_empty() {
        let _ = write!(
            html,
            "<h3>{} failed</h3><table class=\"failures\"><tr><th>file</th><th>error</th></tr>",
            failures.len()
        );
        for f in &failures {
            let _ = write!(
                html,
                "<tr><td class=\"key\">{}</td><td>{}</td></tr>",
                cell(&f["key"]),
                cell(&f["error"])
            );
        }
        html.push_str("</table>");
    }
    if !findings.is_empty() {
        let _ = write!(
            html,
            "<h3>{} source findings (already so at the source, copied as they are)</h3><table class=\"findings\"><tr><th>file</th><th>kind</th><th>detail</th></tr>",
            findings.len()
        );
        for f in &findings {
            let _ = write!(
                html,
                "<tr><td class=\"key\">{}</td><td>{}</td><td>{}</td></tr>",
                cell(&f["key"]),
                cell(&f["kind"]),
                cell(&f["detail"])
            );
        }
        html.push_str("</table>");
    }
    if !warnings.is_empty() {
        html.push_str("<h3>Warnings</h3><ul>");
        for w in &warnings {
            let _ = write!(html, "<li>{}</li>", cell(w));
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
    html
}

/// Render a report (the JSON written by `--report`) as HTML.
pub fn render(report: &Value) -> String {
    let s = |k: &str| report[k].as_str().unwrap_or("").to_string();
    let n = |k: &str| report[k].as_f64().unwrap_or(0.0);
    let timeline = report["timeline"].as_array().cloned().unwrap_or_default();
    // The phases: the copy took bytes_copied / throughput seconds from the start (the report's
    // rate is the copy's own); the verification the rest. `hbcp verify` only verifies.
    let last_t = timeline.last().and_then(|p| p["t"].as_f64()).unwrap_or(0.0);
    let elapsed = n("elapsed_s").max(last_t);
    let copy_end = if s("command") == "verify" {
        0.0
    } else if n("throughput_bytes_per_s") > 0.0 {
        (n("bytes_copied") / n("throughput_bytes_per_s")).min(elapsed)
    } else if report["verified"]["files"].as_u64().unwrap_or(0) > 0 {
        // Nothing copied: a first sample with verified bytes marks the verification.
        timeline
            .iter()
            .find(|p| p["verified"].as_f64().unwrap_or(0.0) > 0.0)
            .and_then(|p| p["t"].as_f64())
            .map_or(0.0, |t| (t - 1.0).max(0.0))
    } else {
        elapsed
    };
    let mut phases: Phases = Vec::new();
    if copy_end > 0.0 {
        phases.push(("copy", 0.0, copy_end));
    }
    if report["verified"]["files"].as_u64().unwrap_or(0) > 0 && copy_end < elapsed {
        phases.push(("verify", copy_end, elapsed));
    }
    // Copy and verify apart: each one's bytes per second between two samples (the run starts
    // at zero), drawn where that interval belongs to its phase.
    let (mut copy, mut verify, mut inflight) = (Vec::new(), Vec::new(), Vec::new());
    let mut prev = (0.0, 0.0, 0.0);
    for p in &timeline {
        let t = p["t"].as_f64().unwrap_or(0.0);
        let b = p["bytes"].as_f64().unwrap_or(0.0);
        let v = p["verified"].as_f64().unwrap_or(0.0);
        let (t0, b0, v0) = prev;
        let dt = (t - t0).max(1e-6);
        if t0 < copy_end {
            copy.push((t, (b - b0).max(0.0) / dt / 1048576.0));
        }
        if t > copy_end {
            verify.push((t, (v - v0).max(0.0) / dt / 1048576.0));
        }
        prev = (t, b, v);
        inflight.push((t, p["in_flight"].as_f64().unwrap_or(0.0)));
    }
    let failed = n("exit_code") != 0.0;
    let left_out = report["left_out"].as_object().cloned().unwrap_or_default();
    let left_total: u64 = left_out
        .values()
        .map(|c| c["files"].as_u64().unwrap_or(0))
        .sum();
    let left_txt = if left_total == 0 {
        "nothing".to_string()
    } else {
        format!(
            "{} ({})",
            hbcp_job::report::count(left_total, "file"),
            left_out
                .iter()
                .map(|(k, c)| format!("{} {}", k.replace('_', " "), c["files"]))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let verified = &report["verified"];
    let mismatches = verified["mismatches"].as_array().map_or(0, |m| m.len());
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hbcp {}: {}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.2em 2em;color:#222}}
header{{border-left:8px solid {};padding:.4em 1em;background:#fafafa}}
header h1{{margin:.2em 0;font-size:1.5em}}
.cmd{{font-family:ui-monospace,monospace;background:#f0f0f0;padding:.4em .6em;overflow-wrap:anywhere}}
dl.facts{{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:.2em 1.5em;margin:.6em 0}}
dl.facts div{{display:flex;gap:.5em}}dt{{font-weight:600;min-width:7em}}dd{{margin:0}}
table{{border-collapse:collapse;width:100%;margin:.4em 0}}td,th{{padding:3px 10px;text-align:left;border-bottom:1px solid #ddd;vertical-align:top}}
td.key,td.sum{{font-family:ui-monospace,monospace;overflow-wrap:anywhere}}
section.bad h2{{color:#b00}}section.ok h2{{color:#2a6}}
figure{{margin:1.2em 0;width:100%}}figcaption{{font-weight:600;margin-bottom:.3em}}
p.note{{color:#444;max-width:70em}}
</style></head><body>
<header><h1>hbcp {}: {}</h1>"#,
        esc(&s("command")),
        esc(&s("status")),
        if failed { "#b00" } else { "#2a6" },
        esc(&s("command")),
        esc(&s("status")),
    );
    let _ = write!(
        html,
        r#"<div class="cmd">{}</div><dl class="facts">"#,
        esc(&match report["command_line"].as_str() {
            Some(c) => c.to_string(),
            None => format!("hbcp {} {} {}", s("command"), s("source"), s("target")),
        })
    );
    let rows = [
        (
            "outcome",
            format!("{} (exit {})", s("status"), n("exit_code")),
        ),
        (
            "hbcp",
            report["hbcp_version"]
                .as_str()
                .unwrap_or("(not recorded)")
                .to_string(),
        ),
        ("source", s("source")),
        ("target", s("target")),
        ("started", s("started")),
        ("finished", s("finished")),
        ("duration", duration(elapsed)),
        (
            "files",
            format!(
                "{} ({} copied, {} already there)",
                n("files"),
                n("files_copied"),
                n("files_skipped")
            ),
        ),
        (
            "bytes",
            format!("{} ({} copied)", mib(n("bytes")), mib(n("bytes_copied"))),
        ),
        (
            "copy rate",
            format!("{}/s", mib(n("throughput_bytes_per_s"))),
        ),
        (
            "verified",
            format!(
                "{} files, {}, {mismatches} {} ({})",
                verified["files"].as_u64().unwrap_or(0),
                mib(verified["bytes"].as_f64().unwrap_or(0.0)),
                if mismatches == 1 {
                    "mismatch"
                } else {
                    "mismatches"
                },
                verified["mode"].as_str().unwrap_or("")
            ),
        ),
        ("left out", left_txt),
        (
            "tasks / retries",
            format!("{} / {}", n("tasks"), n("retries")),
        ),
    ];
    for (k, v) in rows {
        let _ = write!(html, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(&v));
    }
    html.push_str("</dl></header>");
    html.push_str(&problems(report));
    html.push_str("<h2>Throughput</h2>");
    html.push_str(&time_chart(
        "copy-throughput",
        "Copy: bytes written to the target per second",
        "MiB/s",
        &copy,
        elapsed,
        &phases,
        "#2a6",
        None,
    ));
    html.push_str(&time_chart(
        "verify-throughput",
        "Verify: bytes read back or checked per second",
        "MiB/s",
        &verify,
        elapsed,
        &phases,
        "#36c",
        None,
    ));
    let conc = &report["concurrency"];
    let workers = conc["workers"].as_f64().unwrap_or(0.0);
    html.push_str("<h2>Requests in flight</h2>");
    html.push_str(&time_chart(
        "in-flight",
        "Requests being served at each sample",
        "requests",
        &inflight,
        elapsed,
        &phases,
        "#a62",
        (workers > 0.0).then(|| (workers, format!("--workers {workers}"))),
    ));
    if workers > 0.0 {
        let _ = write!(
            html,
            r#"<p class="note">A request in flight is one read, write, listing page or HEAD being served at the moment of the sample. <code>--workers</code> ({workers}) is the most there may be. {} A worker waiting for its turn under <code>--max-bandwidth</code> or for buffer room under <code>--max-memory</code>, or hashing what it read, holds no request: so fewer requests than workers are in flight when the limit is the bandwidth, the memory or the CPU rather than the store.</p>"#,
            if conc["adaptive"].as_bool().unwrap_or(false) {
                format!(
                    "Against an object store the limit adapts to the store's answers: it settled at {} and went as high as {}.",
                    conc["settled"], conc["peak"]
                )
            } else {
                "Disk to disk the limit is fixed.".to_string()
            }
        );
    }
    let mut ops: Vec<(String, &Value)> = report["latency_by_op_ms"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default();
    if !ops.is_empty() {
        html.push_str("<h2>Request latency</h2>");
        ops.push(("all requests".into(), &report["latency_ms"]));
        html.push_str(&latency_chart(&ops));
        html.push_str(
            "<table class=\"latency\"><tr><th>operation</th><th>requests</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>",
        );
        let ms = |l: &Value, k: &str| match l[k].as_f64() {
            Some(v) if v < 0.1 => format!("{:.0} µs", v * 1000.0),
            Some(v) => format!("{v:.2} ms"),
            None => "–".into(),
        };
        for (op, l) in &ops {
            let _ = write!(
                html,
                "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(op_name(op)),
                l["count"].as_u64().unwrap_or(0),
                ms(l, "p50"),
                ms(l, "p90"),
                ms(l, "p99"),
                ms(l, "max")
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>\n");
    html
}
