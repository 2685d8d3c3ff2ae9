//! Blobs written into Azurite (`scripts/azurite.sh`) exactly as named, without hbcp's key checks:
//! names such as `a//b` or `d/` that other tools (the Azure portal, Storage Explorer) write and
//! that hbcp's listings must survive, though hbcp itself never writes them. Signed with the
//! emulator's published `devstoreaccount1` key by object_store's SharedKey authorizer; sent as
//! plain HTTP/1.1 (the emulator listens on 127.0.0.1 only).

use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
use object_store::client::{HttpRequest, HttpRequestBody};

/// The storage emulator's published key of `devstoreaccount1` (public, not a secret).
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Put `data` as the block blob `name` under `root`, an Azurite URL of `devstoreaccount1`
/// (`http://127.0.0.1:PORT/devstoreaccount1/CONTAINER[/PREFIX]`, whose path names the
/// container and folder byte for byte, as hbcp reads it); the container must exist.
pub fn put_blob_as_named(root: &str, name: &str, data: &[u8]) -> Result<(), String> {
    let rest = root
        .strip_prefix("http://")
        .ok_or_else(|| format!("{root}: expected http://HOST:PORT/devstoreaccount1/…"))?;
    let (hostport, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{root}: no container"))?;
    // The container and prefix are names as hbcp takes them from the URL, byte for byte
    // (`hb%2Case` is a folder of that name): encoded like the blob's own name.
    let (account, under) = path
        .trim_end_matches('/')
        .split_once('/')
        .ok_or_else(|| format!("{root}: no container"))?;
    let path = format!("/{account}/{}/{}", encode(under), encode(name));
    let url = format!("http://{hostport}{path}");
    let mut req = HttpRequest::new(HttpRequestBody::empty());
    *req.method_mut() = http::Method::PUT;
    *req.uri_mut() = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let h = req.headers_mut();
    h.insert("x-ms-version", http::HeaderValue::from_static("2021-08-06"));
    h.insert(
        "x-ms-blob-type",
        http::HeaderValue::from_static("BlockBlob"),
    );
    h.insert(
        "content-type",
        http::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert("content-length", http::HeaderValue::from(data.len()));
    let key = AzureAccessKey::try_new(EMULATOR_KEY).map_err(|e| e.to_string())?;
    AzureAuthorizer::new(&AzureCredential::AccessKey(key), "devstoreaccount1")
        .try_authorize(&mut req)
        .map_err(|e| format!("signing: {e}"))?;
    let headers: Vec<String> = req
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "content-length" | "content-type"))
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
        .collect();
    let base = format!("http://{hostport}");
    match crate::gcs_emulator::request_with(&base, "PUT", &path, &headers, data)? {
        (201, _) => Ok(()),
        (s, body) => Err(format!("put {name}: HTTP {s}: {body}")),
    }
}

/// A blob name as one URL path, byte-exact: `/` kept, everything but unreserved characters
/// percent-encoded.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
