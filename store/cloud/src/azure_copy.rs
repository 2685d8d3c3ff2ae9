//! Server-side copies into Azure Blob Storage (`--s2s`): Copy Blob From URL, one synchronous
//! request per blob of at most [`COPY_FROM_URL_MAX`] bytes, across containers and accounts.
//!
//! The target's service reads the source itself, so it needs a credential of the source that
//! travels in the request: the source URL's SAS (in the copy source URL) or an Entra bearer
//! token (`x-ms-copy-source-authorization`). A source opened with an account key has neither:
//! [`copy_source`] says so, and the engine streams the file instead. Larger blobs are copied
//! range by range with Put Block From URL ([`copy_block`]) into hbcp's own staged blocks, then
//! one Put Block List; Azurite 3.35 answers Put Block From URL 501, so there the engine falls
//! back to one Copy Blob From URL (up to [`COPY_FROM_URL_MAX`]) or to streaming.
//!
//! Both name the source version hbcp planned (`x-ms-source-if-match`, the ETag listed), so
//! that the service refuses (412) to copy a source changed since; Azurite 3.35 honours it on
//! Copy Blob From URL.

use hbcp_store::{CopySource, Error, Result};
use object_store::azure::AzureCredential;

use crate::azure_blocks::{Blocks, encode_path, encode_query};

/// The largest blob Copy Blob From URL copies (256 MiB); larger ones are streamed.
pub(crate) const COPY_FROM_URL_MAX: u64 = 256 << 20;

/// The copy source of `blob` in the container of `blocks`: its URL with the SAS, or with the
/// bearer token, the store reads it with; at `version` (its ETag) if given.
pub(crate) async fn copy_source(
    blocks: &Blocks,
    blob: &str,
    version: Option<&str>,
) -> Result<CopySource> {
    let cred = blocks
        .creds
        .get_credential()
        .await
        .map_err(|e| Error::Unsupported {
            what: format!("server-side copy from {blob}"),
            hint: format!("no credential for the source: {e}"),
        })?;
    let url = format!("{}/{}", blocks.container_url, encode_path(blob));
    let (url, auth) = match &*cred {
        AzureCredential::SASToken(pairs) => {
            let q: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v)))
                .collect();
            (format!("{url}?{}", q.join("&")), None)
        }
        AzureCredential::BearerToken(t) => (url, Some(format!("Bearer {t}"))),
        _ => {
            return Err(Error::Unsupported {
                what: format!("server-side copy from {blob}"),
                hint: "the source is read with an account key, which the target service \
                       cannot be given: put a read SAS on the source URL (or use Entra ID) \
                       for a server-side copy; the file is streamed instead"
                    .into(),
            });
        }
    };
    Ok(CopySource {
        service: "azure".into(),
        bucket: String::new(),
        object: blob.to_string(),
        url: Some(url),
        auth,
        version: version.map(str::to_string),
    })
}

/// The copy source URL of `src` and its `x-ms-copy-source*` and `x-ms-source-if-match` headers.
fn source_headers(what: &str, src: &CopySource) -> Result<Vec<(&'static str, String)>> {
    let Some(url) = &src.url else {
        return Err(Error::Unsupported {
            what: what.to_string(),
            hint: "the source gave no URL".into(),
        });
    };
    let mut ms = vec![("x-ms-copy-source", url.clone())];
    if let Some(a) = &src.auth {
        ms.push(("x-ms-copy-source-authorization", a.clone()));
    }
    if let Some(v) = &src.version {
        ms.push((
            "x-ms-source-if-match",
            format!("\"{}\"", v.trim_matches('"')),
        ));
    }
    Ok(ms)
}

/// Put Block From URL: `range` of `src` staged as block `block_id` of `blob`, read by the
/// service itself. The block is durable once this returns, as a Put Block's is.
pub(crate) async fn copy_block(
    blocks: &Blocks,
    blob: &str,
    block_id: &str,
    src: &CopySource,
    range: std::ops::Range<u64>,
) -> Result<()> {
    let mut ms = source_headers(&format!("server-side copy to {blob}"), src)?;
    ms.push((
        "x-ms-source-range",
        format!("bytes={}-{}", range.start, range.end - 1),
    ));
    blocks
        .send(
            "server-side copy of a part of",
            reqwest::Method::PUT,
            blob,
            &[("comp", "block"), ("blockid", block_id)],
            vec![],
            ms,
            bytes::Bytes::new(),
        )
        .await
        .map(|_| ())
}

/// Copy Blob From URL of `src` to `blob`, synchronous: when it returns, the blob is whole.
/// Returns the new blob's ETag.
pub(crate) async fn copy_from(
    blocks: &Blocks,
    blob: &str,
    src: &CopySource,
) -> Result<Option<String>> {
    let mut ms = source_headers(&format!("server-side copy to {blob}"), src)?;
    ms.push(("x-ms-requires-sync", "true".to_string()));
    let (_, headers) = blocks
        .send_raw(
            "server-side copy to",
            reqwest::Method::PUT,
            blob,
            &[],
            vec![],
            ms,
            bytes::Bytes::new(),
        )
        .await?;
    let status = headers
        .get("x-ms-copy-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status != "success" {
        return Err(Error::Remote {
            what: format!("server-side copy to {blob}"),
            message: format!("the copy is {status:?}, not done"),
            status: None,
            retryable: true,
        });
    }
    Ok(crate::azure_blocks::etag_of(&headers))
}
