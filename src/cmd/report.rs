//! `hbcp report FILE.json --html OUT.html`: a report written by `--report`, as one HTML page.

use hbcp_job::{Exit, errln, usage};

use crate::cli::ReportArgs;

/// Read the report, check it is hbcp's, write the page (atomically: a temporary file, renamed).
pub(crate) fn run(a: &ReportArgs) -> anyhow::Result<Exit> {
    use anyhow::Context;
    let text = match std::fs::read(&a.json) {
        Ok(t) => t,
        Err(e) => return usage(format!("report {}: {e}", a.json.display())),
    };
    let v: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            return usage(format!(
                "report {}: not a JSON report written by --report ({e})",
                a.json.display()
            ));
        }
    };
    if v.get("source").is_none() || v.get("latency_ms").is_none() {
        return usage(format!(
            "report {}: not an hbcp report (no source or latency_ms)",
            a.json.display()
        ));
    }
    let tmp = a.html.with_extension("html.tmp");
    std::fs::write(&tmp, crate::html::render(&v))
        .and_then(|_| std::fs::rename(&tmp, &a.html))
        .with_context(|| format!("writing {}", a.html.display()))?;
    errln!("hbcp: wrote {}", a.html.display());
    Ok(Exit::Ok)
}
