//! Server-side copies into Azure Blob Storage (`--s2s`): Copy Blob From URL, one synchronous
//! request per blob of at most [`COPY_FROM_URL_MAX`] bytes, across containers and accounts.
//!
//! The target's service reads the source itself, so it needs a credential of the source that
//! travels in the request: the source URL's SAS (in the copy source URL) or an Entra bearer
//! token (`x-ms-copy-source-authorization`). A source opened with an account key has neither:
//! [`copy_source`] says so, and the engine streams the file instead. Put Block From URL (for
//! larger blobs) is not sent: Azurite answers it 501, so it could not be tested here.

use hbcp_store::{CopySource, Error, Result};
use object_store::azure::AzureCredential;

use crate::azure_blocks::{Blocks, encode_path, encode_query};

/// The largest blob Copy Blob From URL copies (256 MiB); larger ones are streamed.
pub(crate) const COPY_FROM_URL_MAX: u64 = 256 << 20;

/// The copy source of `blob` in the container of `blocks`: its URL with the SAS, or with the
/// bearer token, the store reads it with.
pub(crate) async fn copy_source(blocks: &Blocks, blob: &str) -> Result<CopySource> {
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
    })
}

/// Copy Blob From URL of `src` to `blob`, synchronous: when it returns, the blob is whole.
pub(crate) async fn copy_from(blocks: &Blocks, blob: &str, src: &CopySource) -> Result<()> {
    let Some(url) = &src.url else {
        return Err(Error::Unsupported {
            what: format!("server-side copy to {blob}"),
            hint: "the source gave no URL".into(),
        });
    };
    let mut ms = vec![
        ("x-ms-copy-source", url.clone()),
        ("x-ms-requires-sync", "true".to_string()),
    ];
    if let Some(a) = &src.auth {
        ms.push(("x-ms-copy-source-authorization", a.clone()));
    }
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
    Ok(())
}
