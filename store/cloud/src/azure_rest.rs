//! The few Azure Blob REST calls object_store does not make: creating a container, and block
//! uploads with hbcp's own block IDs (see [`crate::azure_blocks`]). Signed with SharedKey
//! (HMAC-SHA256 over the canonical request) when an account key is known.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) const VERSION: &str = "2021-08-06";

/// The SharedKey signature of a request (Blob service, version 2015-02-21+).
/// `std_headers` holds the standard headers that are signed by position (`content-length`,
/// `content-md5`, `content-type`); `headers` the `x-ms-*` ones; `url_path` is the request's
/// URL path as sent (percent-encoded); `query` the decoded query parameters.
pub(crate) fn shared_key_signature(
    key_b64: &str,
    account: &str,
    method: &str,
    url_path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Result<String, String> {
    shared_key_signature_std(key_b64, account, method, url_path, query, &[], headers)
}

pub(crate) fn shared_key_signature_std(
    key_b64: &str,
    account: &str,
    method: &str,
    url_path: &str,
    query: &[(&str, &str)],
    std_headers: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .map_err(|_| "the account key is not base64".to_string())?;
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    ms.sort();
    let canon_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut q: Vec<(String, &str)> = query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    q.sort();
    let mut resource = format!("/{account}{url_path}");
    for (k, v) in q {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let std = |name: &str| -> &str {
        std_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .filter(|v| !(name == "content-length" && *v == "0"))
            .unwrap_or("")
    };
    // VERB, Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since, If-Match,
    // If-None-Match, If-Unmodified-Since, Range, then the x-ms headers and the resource.
    let to_sign = format!(
        "{method}\n\n\n{}\n{}\n{}\n\n\n\n\n\n\n{canon_headers}{resource}",
        std("content-length"),
        std("content-md5"),
        std("content-type"),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(to_sign.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Create `container` under the account endpoint `base` (`https://ACCOUNT.blob.core.windows.net`
/// or `http://127.0.0.1:10000/devstoreaccount1`). Returns true if it was created, false if it
/// existed already.
pub(crate) fn create_container(
    base: &str,
    account: &str,
    container: &str,
    key: Option<&str>,
) -> Result<bool, (Option<u16>, String)> {
    let url = format!(
        "{}/{container}?restype=container",
        base.trim_end_matches('/')
    );
    let url_path = {
        let after = base.split_once("://").map(|x| x.1).unwrap_or(base);
        let path = after.find('/').map(|i| &after[i..]).unwrap_or("");
        format!("{}/{container}", path.trim_end_matches('/'))
    };
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (None, e.to_string()))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| (None, e.to_string()))?;
        let mut req = client
            .put(&url)
            .header("x-ms-date", &date)
            .header("x-ms-version", VERSION)
            .header("content-length", "0");
        if let Some(k) = key {
            let sig = shared_key_signature(
                k,
                account,
                "PUT",
                &url_path,
                &[("restype", "container")],
                &[("x-ms-date", &date), ("x-ms-version", VERSION)],
            )
            .map_err(|e| (None, e))?;
            req = req.header("authorization", format!("SharedKey {account}:{sig}"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| (None, format!("request failed: {e}")))?;
        match resp.status().as_u16() {
            201 => Ok(true),
            409 => Ok(false),
            s => {
                let body = resp.text().await.unwrap_or_default();
                let code = body
                    .split("<Code>")
                    .nth(1)
                    .and_then(|r| r.split("</Code>").next())
                    .unwrap_or("");
                Err((Some(s), format!("HTTP {s} {code}")))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_stable_and_depends_on_every_part() {
        let key =
            base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef0123456789abcdef");
        let a = shared_key_signature(
            &key,
            "acct",
            "PUT",
            "/c",
            &[("restype", "container")],
            &[("x-ms-date", "d"), ("x-ms-version", VERSION)],
        )
        .unwrap();
        let b = shared_key_signature(
            &key,
            "acct",
            "PUT",
            "/c",
            &[("restype", "container")],
            &[("x-ms-version", VERSION), ("x-ms-date", "d")],
        )
        .unwrap();
        assert_eq!(a, b, "header order does not matter");
        let c = shared_key_signature(
            &key,
            "acct",
            "PUT",
            "/d",
            &[("restype", "container")],
            &[("x-ms-date", "d"), ("x-ms-version", VERSION)],
        )
        .unwrap();
        assert_ne!(a, c);
        assert!(shared_key_signature("not base64!", "a", "PUT", "/c", &[], &[]).is_err());
    }
}
