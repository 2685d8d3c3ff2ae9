//! Parsing of the endpoint URL forms of docs/ARCHITECTURE.md into an [`Endpoint`].
//!
//! Parsing is pure (no I/O, no environment). Refusals carry the reason and the accepted form:
//! `adl://` (ADLS Gen1, retired) names `abfss://`; `wasb://` and `http://` need `--allow-http`;
//! `abfs://` is HTTPS, as Hadoop's ABFS driver makes it. A SAS query on an Azure URL
//! (`…/hbase?sv=…&sig=…`, AzCopy's habit) is kept as that endpoint's credential ([`Sas`]),
//! never shown: the printable form has its signature redacted.

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
        /// Plain HTTP (`wasb://`, `http://`).
        insecure: bool,
        /// Host suffix after the account (`blob.core.windows.net`, sovereign clouds differ).
        host: Option<String>,
        /// The SAS given in the URL's query: this endpoint's credential for every request.
        sas: Option<Sas>,
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

/// A shared access signature given in an Azure URL's query. Its `Debug` shows no value; the
/// signature is only handed to the request signer ([`Sas::pairs`]) and to the redactor.
#[derive(Clone, PartialEq, Eq)]
pub struct Sas {
    /// The query as given, without the `?`.
    query: String,
}

impl std::fmt::Debug for Sas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sas(REDACTED)")
    }
}

impl Sas {
    /// The query's parameters, percent-decoded, in their order (what the signer appends to
    /// each request).
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    /// One parameter, decoded (`se` the expiry, `sp` the permissions, `sr` the resource…).
    pub fn get(&self, name: &str) -> Option<String> {
        self.pairs()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The secret values to remove from any text: the signature as given and decoded.
    pub fn secrets(&self) -> Vec<String> {
        let mut v = Vec::new();
        for kv in self.query.split('&') {
            if let Some((k, raw)) = kv.split_once('=') {
                if k.eq_ignore_ascii_case("sig") {
                    v.push(raw.to_string());
                    v.push(percent_decode(raw));
                }
            }
        }
        v.push(self.query.clone());
        v
    }

    /// An account SAS (`ss=`, `srt=`) rather than a service SAS of one container.
    pub fn is_account_sas(&self) -> bool {
        self.get("srt").is_some()
    }
}

/// Decode `%XX` escapes of a URL query component (`+` stays `+`: a SAS signature's `+` is
/// always sent as `%2B`). A malformed escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(h);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The SAS of an Azure URL's query, if it has one. A query that is not a SAS, or a SAS whose
/// signature hbcp itself redacted (copied from a plan or a resume line), is refused.
fn sas_of(url: &str) -> std::result::Result<Option<Sas>, String> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let query = query.split('#').next().unwrap_or("");
    if query.is_empty() {
        return Ok(None);
    }
    let sas = Sas {
        query: query.to_string(),
    };
    match sas.get("sig") {
        None => {
            let names: Vec<String> = sas.pairs().into_iter().map(|(k, _)| k).collect();
            Err(format!(
                "the query ({}) is not a SAS token: an Azure URL's query must be a shared access \
                 signature (…?sv=…&sp=…&se=…&sig=…), or leave the query out",
                names.join(", ")
            ))
        }
        Some(s) if s == "REDACTED" => Err(
            "its SAS signature reads REDACTED: hbcp never stores or prints a secret, so a URL \
             copied from a plan, a report or a resume line lacks it; put the real SAS back"
                .into(),
        ),
        Some(_) => Ok(Some(sas)),
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

    /// Parse one of the URL forms of docs/ARCHITECTURE.md. `allow_http` permits `wasb://`, `abfs://` and
    /// `http://` (loopback emulators are always allowed).
    pub fn parse(s: &str, allow_http: bool) -> Result<StoreUrl> {
        let s_full = s;
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
                // Hadoop's ABFS driver talks HTTPS for abfs:// too (fs.azure.always.use.https
                // defaults to true); only wasb:// is plain HTTP.
                let insecure = s == "wasb";
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
                    return Err(bad(
                        "wasb:// is plain HTTP (the account key or SAS would cross the network \
                         in the clear with every request); use wasbs://, or pass --allow-http"
                            .into(),
                    ));
                }
                Endpoint::Azure {
                    account: account.to_string(),
                    container: container.to_string(),
                    prefix: trim_slashes(path),
                    dfs,
                    insecure,
                    host: Some(host_suffix.to_string()),
                    sas: sas_of(s_full).map_err(bad)?,
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
                        sas: sas_of(s_full).map_err(bad)?,
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
                        sas: sas_of(s_full).map_err(bad)?,
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
                    sas: sas_of(s_full).map_err(bad)?,
                }
            }
            "s3" | "s3a" | "gs" | "gcs" if s_full.contains('?') => {
                return Err(bad(format!(
                    "a query is not understood on {scheme}:// URLs: hbcp takes S3 and GCS \
                     credentials from the environment; leave the query out"
                )));
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

    fn sas(url: &str) -> Option<Sas> {
        match StoreUrl::parse(url, false).unwrap().endpoint {
            Endpoint::Azure { sas, .. } => sas,
            e => panic!("{url}: {e:?}"),
        }
    }

    #[test]
    fn a_sas_on_every_azure_url_form_is_that_endpoints_credential() {
        let q = "sv=2021-08-06&sp=rl&se=2099-01-01T00%3A00%3A00Z&sr=c&sig=AbC%2Bd%2F%3D";
        for base in [
            "https://acct.blob.core.windows.net/c/hbase",
            "wasbs://c@acct.blob.core.windows.net/hbase",
            "abfss://c@acct.dfs.core.windows.net/hbase",
            "abfs://c@acct.dfs.core.windows.net/hbase",
            "http://127.0.0.1:10000/devstoreaccount1/c/hbase",
            "az://c/hbase",
        ] {
            let url = format!("{base}?{q}");
            let s = sas(&url).unwrap_or_else(|| panic!("{url}: no SAS"));
            assert_eq!(s.get("sig").as_deref(), Some("AbC+d/="), "{url}");
            assert_eq!(s.get("se").as_deref(), Some("2099-01-01T00:00:00Z"));
            assert_eq!(s.get("sp").as_deref(), Some("rl"));
            assert!(!s.is_account_sas());
            assert_eq!(s.pairs().len(), 5);
            let u = StoreUrl::parse(&url, false).unwrap();
            assert!(!u.display.contains("AbC"), "{}", u.display);
            assert!(!format!("{u:?}").contains("AbC"), "{u:?}");
            assert!(s.secrets().iter().any(|x| x == "AbC%2Bd%2F%3D"));
            assert!(s.secrets().iter().any(|x| x == "AbC+d/="));
        }
        assert_eq!(sas("https://acct.blob.core.windows.net/c/hbase"), None);
        assert_eq!(sas("https://acct.blob.core.windows.net/c/hbase?"), None);
    }

    #[test]
    fn a_query_that_is_not_a_usable_sas_is_refused_with_what_to_do() {
        let e = StoreUrl::parse(
            "https://acct.blob.core.windows.net/c/p?comp=list&x=1",
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a SAS") && e.contains("comp, x"), "{e}");
        let e = StoreUrl::parse(
            "wasbs://c@acct.blob.core.windows.net/p?sv=1&sig=REDACTED",
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("put the real SAS back"), "{e}");
        let e = StoreUrl::parse("s3://b/p?X-Amz-Signature=abc", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not understood") && !e.contains("abc"), "{e}");
    }

    #[test]
    fn abfs_is_https_as_hadoop_makes_it_and_wasb_needs_allow_http() {
        let abfs = StoreUrl::parse("abfs://fs@acct.dfs.core.windows.net/hbase", false).unwrap();
        assert!(
            matches!(
                abfs.endpoint,
                Endpoint::Azure {
                    insecure: false,
                    dfs: true,
                    ..
                }
            ),
            "{abfs:?}"
        );
        let e = StoreUrl::parse("wasb://c@acct.blob.core.windows.net/hbase", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wasb:// is plain HTTP") && e.contains("use wasbs://"),
            "{e}"
        );
        let wasb = StoreUrl::parse("wasb://c@acct.blob.core.windows.net/hbase", true).unwrap();
        assert!(matches!(
            wasb.endpoint,
            Endpoint::Azure { insecure: true, .. }
        ));
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
