//! Parsing of the endpoint URL forms of DESIGN.md into an [`Endpoint`].
//!
//! Parsing is pure (no I/O, no environment). Refusals carry the reason and the accepted form:
//! `adl://` (ADLS Gen1, retired) names `abfss://`; `wasb://` and `http://` need `--allow-http`.

use std::path::PathBuf;

use crate::redact::redact_url;
use crate::{Error, Result};

/// Which store a URL names, with the root prefix inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A local directory.
    Local(PathBuf),
    /// Azure Blob Storage (also reached for ADLS Gen2 `abfs[s]://`, whose blob endpoint serves
    /// the same data).
    Azure {
        /// Storage account name (may be empty for `az://`, then taken from the environment).
        account: String,
        /// Container / file system.
        container: String,
        /// Root prefix inside the container, without leading or trailing `/`.
        prefix: String,
        /// Named through the DFS endpoint (`abfs[s]://…dfs…`).
        dfs: bool,
        /// Plain HTTP (`wasb://`, `abfs://`, `http://`).
        insecure: bool,
        /// Host suffix after the account (`blob.core.windows.net`, sovereign clouds differ).
        host: Option<String>,
    },
    /// Amazon S3 or S3-compatible.
    S3 {
        /// Bucket.
        bucket: String,
        /// Root prefix.
        prefix: String,
    },
    /// Google Cloud Storage.
    Gcs {
        /// Bucket.
        bucket: String,
        /// Root prefix.
        prefix: String,
    },
    /// In-memory store (tests).
    Memory {
        /// Name of the memory store.
        name: String,
    },
}

impl Endpoint {
    /// Short name of the kind of store.
    pub fn scheme_name(&self) -> &'static str {
        match self {
            Endpoint::Local(_) => "local",
            Endpoint::Azure { dfs: true, .. } => "ADLS Gen2",
            Endpoint::Azure { .. } => "Azure Blob",
            Endpoint::S3 { .. } => "S3",
            Endpoint::Gcs { .. } => "GCS",
            Endpoint::Memory { .. } => "memory",
        }
    }
}

/// A parsed endpoint URL, with its printable (redacted) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// What it names.
    pub endpoint: Endpoint,
    /// The URL as given, with any secret (SAS signature, key) removed.
    pub display: String,
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl StoreUrl {
    /// True for a local path.
    pub fn is_local(&self) -> bool {
        matches!(self.endpoint, Endpoint::Local(_))
    }

    /// Parse one of the URL forms of DESIGN.md. `allow_http` permits `wasb://`, `abfs://` and
    /// `http://` (loopback emulators are always allowed).
    pub fn parse(s: &str, allow_http: bool) -> Result<StoreUrl> {
        let display = redact_url(s);
        let bad = |why: String| Error::BadUrl {
            url: display.clone(),
            why,
        };
        let Some((scheme, rest)) = s.split_once("://") else {
            if s.is_empty() {
                return Err(bad("empty path".into()));
            }
            return Ok(StoreUrl {
                endpoint: Endpoint::Local(PathBuf::from(s)),
                display,
            });
        };
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let endpoint = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad("expected file:///absolute/path".into()));
                }
                Endpoint::Local(PathBuf::from(rest))
            }
            "adl" => {
                return Err(bad(
                    "adl:// is Azure Data Lake Storage Gen1, which Microsoft retired in February 2024; \
                     copy from/to ADLS Gen2 with abfss://FILESYSTEM@ACCOUNT.dfs.core.windows.net/PATH"
                        .into(),
                ));
            }
            s @ ("wasb" | "wasbs" | "abfs" | "abfss") => {
                let insecure = s == "wasb" || s == "abfs";
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let Some((container, host)) = authority.split_once('@') else {
                    return Err(bad(format!(
                        "expected {s}://CONTAINER@ACCOUNT.{}.core.windows.net/PATH",
                        if s.starts_with("abfs") { "dfs" } else { "blob" }
                    )));
                };
                let (account, host_suffix) = split_account(host).ok_or_else(|| {
                    bad("expected the host ACCOUNT.blob.core.windows.net or ACCOUNT.dfs.core.windows.net".into())
                })?;
                if container.is_empty() || account.is_empty() {
                    return Err(bad("container and account must not be empty".into()));
                }
                let dfs = s.starts_with("abfs") || host_suffix.starts_with("dfs.");
                if insecure && !allow_http && !is_loopback(host) {
                    return Err(bad(format!(
                        "{s}:// is plain HTTP; use {s}s:// or pass --allow-http"
                    )));
                }
                Endpoint::Azure {
                    account: account.to_string(),
                    container: container.to_string(),
                    prefix: trim_slashes(path),
                    dfs,
                    insecure,
                    host: Some(host_suffix.to_string()),
                }
            }
            s @ ("https" | "http") => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                if s == "http" && !allow_http && !is_loopback(host) {
                    return Err(bad(
                        "http:// is plain HTTP; use https:// or pass --allow-http".into(),
                    ));
                }
                let (container, prefix) = path.split_once('/').unwrap_or((path, ""));
                if is_loopback(host) {
                    // Emulator form: http://127.0.0.1:10000/ACCOUNT/CONTAINER/PATH
                    let (account, after) = (container, prefix);
                    let (container, prefix) = after.split_once('/').unwrap_or((after, ""));
                    if account.is_empty() || container.is_empty() {
                        return Err(bad(
                            "expected http://HOST:PORT/ACCOUNT/CONTAINER/PATH".into()
                        ));
                    }
                    Endpoint::Azure {
                        account: account.to_string(),
                        container: container.to_string(),
                        prefix: trim_slashes(prefix),
                        dfs: false,
                        insecure: s == "http",
                        host: Some(host.to_string()),
                    }
                } else {
                    let (account, host_suffix) = split_account(host).ok_or_else(|| {
                        bad("expected https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH".into())
                    })?;
                    if container.is_empty() {
                        return Err(bad(
                            "expected https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH".into(),
                        ));
                    }
                    Endpoint::Azure {
                        account: account.to_string(),
                        container: container.to_string(),
                        prefix: trim_slashes(prefix),
                        dfs: host_suffix.starts_with("dfs."),
                        insecure: s == "http",
                        host: Some(host_suffix.to_string()),
                    }
                }
            }
            "az" | "azure" => {
                let (container, path) = rest.split_once('/').unwrap_or((rest, ""));
                if container.is_empty() {
                    return Err(bad("expected az://CONTAINER/PATH".into()));
                }
                Endpoint::Azure {
                    account: String::new(),
                    container: container.to_string(),
                    prefix: trim_slashes(path),
                    dfs: false,
                    insecure: false,
                    host: None,
                }
            }
            "s3" | "s3a" => {
                let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad("expected s3://BUCKET/PATH".into()));
                }
                Endpoint::S3 {
                    bucket: bucket.to_string(),
                    prefix: trim_slashes(path),
                }
            }
            "gs" | "gcs" => {
                let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad("expected gs://BUCKET/PATH".into()));
                }
                Endpoint::Gcs {
                    bucket: bucket.to_string(),
                    prefix: trim_slashes(path),
                }
            }
            "memory" => Endpoint::Memory {
                name: trim_slashes(rest),
            },
            other => {
                return Err(bad(format!(
                    "unknown scheme {other}://; expected a local path, file://, wasbs://, abfss://, \
                     https://ACCOUNT.blob.core.windows.net/, az://, s3:// or gs://"
                )));
            }
        };
        Ok(StoreUrl { endpoint, display })
    }
}

fn trim_slashes(s: &str) -> String {
    s.trim_matches('/').to_string()
}

/// `acct.blob.core.windows.net` → (`acct`, `blob.core.windows.net`).
fn split_account(host: &str) -> Option<(&str, &str)> {
    let (account, suffix) = host.split_once('.')?;
    if suffix.starts_with("blob.") || suffix.starts_with("dfs.") {
        Some((account, suffix))
    } else {
        None
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let h = if let Some(stripped) = h.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        h.split(':').next().unwrap_or("")
    };
    h == "localhost" || h.starts_with("127.") || h == "::1"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(url: &str) -> (String, String, String, bool) {
        match StoreUrl::parse(url, false).unwrap().endpoint {
            Endpoint::Azure {
                account,
                container,
                prefix,
                dfs,
                ..
            } => (account, container, prefix, dfs),
            e => panic!("{url}: {e:?}"),
        }
    }

    #[test]
    fn every_design_url_form_parses() {
        assert_eq!(
            azure("wasbs://c@acct.blob.core.windows.net/hbase"),
            ("acct".into(), "c".into(), "hbase".into(), false)
        );
        assert_eq!(
            azure("abfss://fs@acct.dfs.core.windows.net/a/hbase/"),
            ("acct".into(), "fs".into(), "a/hbase".into(), true)
        );
        assert_eq!(
            azure("https://acct.blob.core.windows.net/c/p/q"),
            ("acct".into(), "c".into(), "p/q".into(), false)
        );
        assert_eq!(
            azure("az://c/p"),
            ("".into(), "c".into(), "p".into(), false)
        );
        assert_eq!(
            StoreUrl::parse("s3://b/x/y", false).unwrap().endpoint,
            Endpoint::S3 {
                bucket: "b".into(),
                prefix: "x/y".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("gs://b", false).unwrap().endpoint,
            Endpoint::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///tmp/x", false).unwrap().endpoint,
            Endpoint::Local("/tmp/x".into())
        );
        assert_eq!(
            StoreUrl::parse("./rel", false).unwrap().endpoint,
            Endpoint::Local("./rel".into())
        );
    }

    #[test]
    fn refusals_say_why_and_what_instead() {
        let e = StoreUrl::parse("adl://store.azuredatalakestore.net/hbase", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("retired") && e.contains("abfss://"), "{e}");
        let e = StoreUrl::parse("wasb://c@acct.blob.core.windows.net/x", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--allow-http"), "{e}");
        assert!(StoreUrl::parse("wasb://c@acct.blob.core.windows.net/x", true).is_ok());
        assert!(StoreUrl::parse("ftp://x/y", false).is_err());
        assert!(StoreUrl::parse("wasbs://acct.blob.core.windows.net/x", false).is_err());
    }

    #[test]
    fn sas_signature_never_in_display() {
        let u = StoreUrl::parse(
            "https://acct.blob.core.windows.net/c/p?sv=2022&sig=SECRETSIG%3D&se=x",
            false,
        )
        .unwrap();
        assert!(!u.display.contains("SECRETSIG"), "{}", u.display);
        assert!(!format!("{u:?}").contains("SECRETSIG"));
    }
}
