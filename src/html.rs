//! `hbcp report FILE.json --html OUT.html`: draws a run for people who would rather look than
//! read — throughput over time, requests in flight, the latency percentiles of all requests,
//! and each operation's latency distribution (list pages, heads, gets, puts, staged parts,
//! commits, deletes…) — as one self-contained HTML page with inline SVG (no script, no network).

use std::fmt::Write;

use serde_json::Value;

const W: f64 = 760.0;
const H: f64 = 220.0;
const PAD: f64 = 48.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of `(x, y)` points with axis labels.
fn line_chart(title: &str, unit: &str, pts: &[(f64, f64)], color: &str) -> String {
    let mut svg = String::new();
    let max_x = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let max_y = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    let sx = |x: f64| PAD + x / max_x * (W - 2.0 * PAD);
    let sy = |y: f64| H - PAD + -(y / max_y) * (H - 2.0 * PAD);
    let _ = write!(
        svg,
        r#"<figure><figcaption>{}</figcaption><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="{PAD}" y1="{0}" x2="{1}" y2="{0}" stroke="#888"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{0}" stroke="#888"/>"##,
        H - PAD,
        W - PAD
    );
    for i in 0..=4 {
        let y = max_y * i as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#444">{}</text>"##,
            PAD - 4.0,
            sy(y) + 4.0,
            esc(&format!("{y:.1}"))
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#444">{max_x:.1} s</text><text x="{PAD}" y="{}" font-size="11" fill="#444">{}</text>"##,
        W - PAD,
        H - PAD + 16.0,
        PAD - 10.0,
        esc(unit)
    );
    if !pts.is_empty() {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
    } else {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="13" fill="#888">no samples (the run was shorter than a second)</text>"##,
            W / 3.0,
            H / 2.0
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Bars labelled below with their name and above with their value (`value` formats it).
fn bar_chart<L: AsRef<str>>(
    title: &str,
    bars: &[(L, f64)],
    value: &dyn Fn(f64) -> String,
) -> String {
    let mut svg = String::new();
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9);
    let bw = (W - 2.0 * PAD) / bars.len().max(1) as f64;
    // Many narrow bars (a distribution) take smaller labels.
    let font = if bars.len() > 10 { 9 } else { 12 };
    let _ = write!(
        svg,
        r#"<figure><figcaption>{}</figcaption><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let h = v / max * (H - 2.0 * PAD);
        let x = PAD + i as f64 * bw + bw * 0.15;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#4a7fb5"/><text x="{:.1}" y="{:.1}" font-size="{font}" text-anchor="middle">{}</text><text x="{:.1}" y="{:.1}" font-size="{font}" text-anchor="middle" fill="#333">{}</text>"##,
            H - PAD - h,
            bw * 0.7,
            x + bw * 0.35,
            H - PAD + 16.0,
            esc(label.as_ref()),
            x + bw * 0.35,
            H - PAD - h - 4.0,
            esc(&value(*v)),
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// One section per operation: its percentiles, and its latency distribution drawn as a
/// histogram of requests per latency bucket (buckets double in width).
fn by_operation(ops: &Value) -> String {
    let Some(ops) = ops.as_object().filter(|o| !o.is_empty()) else {
        return String::new();
    };
    let mut html = String::from(
        "<h2>Request latency by operation</h2><table><tr><th>operation</th><th>requests</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>",
    );
    let ms = |l: &Value, k: &str| format!("{:.2} ms", l[k].as_f64().unwrap_or(0.0));
    for (op, l) in ops {
        let _ = write!(
            html,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(op),
            l["count"].as_u64().unwrap_or(0),
            ms(l, "p50"),
            ms(l, "p90"),
            ms(l, "p99"),
            ms(l, "max")
        );
    }
    html.push_str("</table>");
    for (op, l) in ops {
        let bars: Vec<(String, f64)> = l["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                let le = b["le_ms"].as_f64().unwrap_or(0.0);
                let label = if le < 1.0 {
                    format!("{:.0}µs", le * 1000.0)
                } else if le < 1000.0 {
                    format!("{le:.0}ms")
                } else {
                    format!("{:.0}s", le / 1000.0)
                };
                (label, b["count"].as_f64().unwrap_or(0.0))
            })
            .collect();
        let _ = write!(html, r#"<section class="op" id="op-{}">"#, esc(op));
        html.push_str(&bar_chart(
            &format!(
                "{op}: {} requests, latency distribution (requests per bucket, up to the bound below)",
                l["count"].as_u64().unwrap_or(0)
            ),
            &bars,
            &|v| format!("{v:.0}"),
        ));
        html.push_str("</section>");
    }
    html
}

/// Render a report (the JSON written by `--report`) as HTML.
pub fn render(report: &Value) -> String {
    let s = |k: &str| report[k].as_str().unwrap_or("").to_string();
    let n = |k: &str| report[k].as_f64().unwrap_or(0.0);
    let timeline = report["timeline"].as_array().cloned().unwrap_or_default();
    let mut tput = Vec::new();
    let mut inflight = Vec::new();
    let mut prev: Option<(f64, f64, f64)> = None;
    for p in &timeline {
        let t = p["t"].as_f64().unwrap_or(0.0);
        let b = p["bytes"].as_f64().unwrap_or(0.0);
        let v = p["verified"].as_f64().unwrap_or(0.0);
        if let Some((t0, b0, v0)) = prev {
            let dt = (t - t0).max(1e-6);
            // Copy and verify phases do not overlap: show whichever moved.
            let rate = ((b - b0).max(0.0) + (v - v0).max(0.0)) / dt / (1024.0 * 1024.0);
            tput.push((t, rate));
        }
        prev = Some((t, b, v));
        inflight.push((t, p["in_flight"].as_f64().unwrap_or(0.0)));
    }
    let lat = &report["latency_ms"];
    let bars: Vec<(&str, f64)> = ["p50", "p99", "p999", "max"]
        .iter()
        .map(|k| (*k, lat[*k].as_f64().unwrap_or(0.0)))
        .collect();
    let mismatches = report["verified"]["mismatches"]
        .as_array()
        .map_or(0, |m| m.len());
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hbcp run: {}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:820px;color:#222}}table{{border-collapse:collapse}}td,th{{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}}figure{{margin:1.5em 0}}figcaption{{font-weight:600;margin-bottom:.3em}}.bad{{color:#b00}}</style></head><body>
<h1>hbcp {}: {}</h1><table>"#,
        esc(&s("source")),
        esc(&s("command")),
        esc(&s("status"))
    );
    let rows = [
        ("source", s("source")),
        ("target", s("target")),
        ("started", s("started")),
        ("finished", s("finished")),
        ("exit code", format!("{}", n("exit_code"))),
        (
            "files",
            format!(
                "{} ({} copied, {} already there)",
                n("files"),
                n("files_copied"),
                n("files_skipped")
            ),
        ),
        ("bytes", format!("{:.1} MiB", n("bytes") / 1048576.0)),
        (
            "throughput",
            format!("{:.1} MiB/s", n("throughput_bytes_per_s") / 1048576.0),
        ),
        (
            "tasks / retries",
            format!("{} / {}", n("tasks"), n("retries")),
        ),
        (
            "verified",
            format!(
                "{} files, {mismatches} mismatches",
                report["verified"]["files"].as_f64().unwrap_or(0.0)
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = write!(html, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    html.push_str("</table>");
    html.push_str(&line_chart("Throughput over time", "MiB/s", &tput, "#2a6"));
    html.push_str(&line_chart(
        "Requests in flight",
        "requests",
        &inflight,
        "#a62",
    ));
    html.push_str(&bar_chart(
        &format!(
            "Request latency ({} requests)",
            lat["count"].as_u64().unwrap_or(0)
        ),
        &bars,
        &|v| format!("{v:.2} ms"),
    ));
    html.push_str(&by_operation(&report["latency_by_op_ms"]));
    if !failures.is_empty() || mismatches > 0 {
        html.push_str("<h2 class=\"bad\">Problems</h2><ul>");
        for f in &failures {
            let _ = write!(
                html,
                "<li>failed: {}: {}</li>",
                esc(f["key"].as_str().unwrap_or("")),
                esc(f["error"].as_str().unwrap_or(""))
            );
        }
        for m in report["verified"]["mismatches"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let _ = write!(
                html,
                "<li>{}: {}</li>",
                esc(m["kind"].as_str().unwrap_or("")),
                esc(m["key"].as_str().unwrap_or(""))
            );
        }
        html.push_str("</ul>");
    }
    html.push_str("</body></html>\n");
    html
}
