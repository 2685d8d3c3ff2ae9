//! `hbcp auth URL`: which credential a URL would use (its kind and source, never its value),
//! and what it may do under the root: list, write, read and delete are each probed with a
//! small temporary object that is removed after. Exit 0 when every permission the job needs is
//! granted, 2 otherwise (naming each one missing and how to grant it).

use anyhow::Result;
use hbcp_store_cloud::Probed;

use crate::commands::{cloud_options, parse_url};
use crate::spec::AuthSpec;
use crate::{Exit, usage};

/// Run `hbcp auth`.
pub fn auth(a: AuthSpec) -> Result<Exit> {
    let url = parse_url(&a.url, "URL", a.allow_http)?;
    let opts = cloud_options(false, a.allow_http)?;
    if let Some(note) = hbcp_store_cloud::url_sas_overrides(&url) {
        errln!("hbcp: {note}");
    }
    let report = match hbcp_store_cloud::probe(&url, &opts) {
        Ok(r) => r,
        Err(e) if e.is_fatal() || e.is_endpoint() => return usage(e.to_string()),
        Err(e) => return Err(e.into()),
    };
    outln!("endpoint: {} ({})", url.display, url.endpoint.scheme_name());
    match &report.credential {
        Some(c) => outln!("credential: {}, from {}", c.kind, c.source),
        None => outln!("credential: none needed (local disk)"),
    }
    let needed: &[&str] = if a.read_only {
        &["list", "read"]
    } else {
        &["list", "write", "read", "delete"]
    };
    let mut missing = Vec::new();
    for (perm, found) in &report.checks {
        let need = needed.contains(perm);
        let (word, text) = match found {
            Probed::Granted(t) => ("granted", t.as_str()),
            Probed::Missing(t) => ("MISSING", t.as_str()),
            Probed::Untested(t) => ("untested", t.as_str()),
        };
        if need && !matches!(found, Probed::Granted(_)) {
            missing.push(*perm);
        }
        outln!(
            "{perm:<7} {word:<8} {text}{}",
            if need {
                ""
            } else {
                " (not needed with --read-only)"
            }
        );
    }
    if let Some(k) = &report.left_behind {
        errln!(
            "hbcp: the probe object {k} could not be removed (no delete permission); remove it by hand"
        );
    }
    if missing.is_empty() {
        outln!(
            "verdict: every permission {} needs is granted",
            if a.read_only { "a source" } else { "a target" }
        );
        Ok(Exit::Ok)
    } else {
        outln!("verdict: missing {}", missing.join(", "));
        errln!(
            "hbcp: {}: the credential lacks {} (see above)",
            url.display,
            missing.join(", ")
        );
        Ok(Exit::Usage)
    }
}
