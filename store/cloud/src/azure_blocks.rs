//! Block-blob uploads with hbcp's own block IDs, straight on the Blob REST API.
//!
//! object_store stages a multipart upload under random block IDs, which a later run cannot
//! find again. hbcp names every block after the job, the blob and the part index
//! (fixed length, as Azure requires for all blocks of one blob), so a resumed job asks the
//! service which of its blocks are already staged (Get Block List, uncommitted) and sends only
//! the missing ones; one Put Block List commits the blob, and only then is it visible.
//!
//! With `--put-md5` every block carries a transactional Content-MD5 (checked by the service on
//! receipt) and the committed blob gets the whole file's MD5 as its Content-MD5 property, so that
//! Azure's own tools can check it; a small blob sent in one Put Blob carries Content-MD5 too.
//! Every Put Block carries its transactional CRC-64 ([`crate::azure_crc64`]): a blob whose
//! every block this upload sent so, committed as exactly hbcp's block list, is the verifier's
//! `transport` way ([`Upload::transport_checked`]).
//!
//! Every request is signed by object_store's own [`AzureAuthorizer`] with the credential of
//! the store's provider (`MicrosoftAzure::credentials()`): an account key (SharedKey), a SAS
//! (the URL's or the environment's), or an Entra ID bearer token (service principal, workload
//! identity, managed identity, Azure CLI). So each hand-written request (blocks, listing,
//! container checks) carries the very credential object_store's requests carry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hbcp_store::redact::redact_text;
use hbcp_store::{Error, Problem, Result, Upload};
use md5::{Digest, Md5};
use object_store::azure::{AzureAuthorizer, AzureCredentialProvider};
use object_store::client::{HttpRequest, HttpRequestBody};
use reqwest::header::{HeaderName, HeaderValue};

use crate::classify::{self, Cloud, Op};

/// The Blob service version of hbcp's own requests.
pub(crate) const VERSION: &str = "2021-08-06";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A container's block-blob endpoint.
pub(crate) struct Blocks {
    client: reqwest::Client,
    /// `https://ACCOUNT.blob.core.windows.net/CONTAINER` or an emulator's
    /// `http://127.0.0.1:10000/devstoreaccount1/CONTAINER`, without a trailing slash.
    pub(crate) container_url: String,
    account: String,
    /// The container's name, for messages.
    container: String,
    /// The store's credential provider (object_store's).
    pub(crate) creds: AzureCredentialProvider,
    secrets: Vec<String>,
    /// Store Content-MD5 (`--put-md5`).
    pub(crate) put_md5: bool,
    display: String,
    /// What the retry policy saw on these requests (the store's own, shared).
    pub(crate) tally: Arc<hbcp_store::retry::Tally>,
}

impl fmt::Debug for Blocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocks")
            .field("container", &self.container_url)
            .finish_non_exhaustive()
    }
}

/// Percent-encode a blob name for a URL path: everything but unreserved characters and `/`.
pub(crate) fn encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn encode_query(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for &b in v.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The block ID of part `index` of `blob` written by `job` for a file of `size` bytes: fixed
/// length (all block IDs of a blob must have the same length), base64 as the API wants it.
pub(crate) fn block_id(job: &str, blob: &str, size: u64, index: u32) -> String {
    B64.encode(format!(
        "hbcp{:016x}{index:08x}",
        upload_tag(job, blob, size)
    ))
}

fn upload_tag(job: &str, blob: &str, size: u64) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(job.as_bytes());
    h.update(&[0]);
    h.update(blob.as_bytes());
    h.update(&[0]);
    h.update(&size.to_le_bytes());
    h.digest()
}

/// The part index of a block ID of this upload's tag, if it is one of ours.
fn index_of(id_b64: &str, tag: u64) -> Option<u32> {
    let raw = B64.decode(id_b64.trim()).ok()?;
    let s = std::str::from_utf8(&raw).ok()?;
    let rest = s.strip_prefix(&format!("hbcp{tag:016x}"))?;
    if rest.len() != 8 {
        return None;
    }
    u32::from_str_radix(rest, 16).ok()
}

/// The uncommitted blocks of a Get Block List answer: (name, size).
fn parse_uncommitted(xml: &str) -> Vec<(String, u64)> {
    let Some(start) = xml.find("<UncommittedBlocks>") else {
        return Vec::new();
    };
    let section = &xml[start..];
    let section = &section[..section
        .find("</UncommittedBlocks>")
        .unwrap_or(section.len())];
    let mut out = Vec::new();
    for block in section.split("<Block>").skip(1) {
        let field = |tag: &str| {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            let a = block.find(&open)? + open.len();
            let b = block[a..].find(&close)? + a;
            Some(block[a..b].to_string())
        };
        if let (Some(name), Some(size)) = (field("Name"), field("Size")) {
            if let Ok(size) = size.trim().parse() {
                out.push((name, size));
            }
        }
    }
    out
}

impl Blocks {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        container_url: String,
        account: String,
        container: String,
        creds: AzureCredentialProvider,
        secrets: Vec<String>,
        put_md5: bool,
        display: String,
        allow_http: bool,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .https_only(!allow_http)
            .build()
            .map_err(|e| Error::Remote {
                what: "http client".into(),
                message: e.to_string(),
                status: None,
                retryable: false,
            })?;
        Ok(Blocks {
            client,
            container_url: container_url.trim_end_matches('/').to_string(),
            account,
            container,
            creds,
            secrets,
            put_md5,
            display,
            tally: Arc::default(),
        })
    }

    fn redact(&self, s: &str) -> String {
        let refs: Vec<&str> = self.secrets.iter().map(|s| s.as_str()).collect();
        redact_text(s, &refs)
    }

    /// Send one request for `blob`; `what` names the operation in errors. Returns the body of
    /// a 2xx answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send(
        &self,
        what: &str,
        method: reqwest::Method,
        blob: &str,
        query: &[(&str, &str)],
        std_headers: Vec<(&'static str, String)>,
        ms_headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Result<String> {
        self.send_raw(what, method, blob, query, std_headers, ms_headers, body)
            .await
            .map(|(b, _)| b)
    }

    /// [`Blocks::send`], with the answer's headers too; sent under the retry policy.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_raw(
        &self,
        what: &str,
        method: reqwest::Method,
        blob: &str,
        query: &[(&str, &str)],
        std_headers: Vec<(&'static str, String)>,
        ms_headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Result<(String, reqwest::header::HeaderMap)> {
        crate::policy::retried(&self.tally, || {
            self.send_once(
                what,
                method.clone(),
                blob,
                query,
                std_headers.clone(),
                ms_headers.clone(),
                body.clone(),
            )
        })
        .await
    }

    /// One try of [`Blocks::send_raw`]: signed afresh.
    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        what: &str,
        method: reqwest::Method,
        blob: &str,
        query: &[(&str, &str)],
        mut std_headers: Vec<(&'static str, String)>,
        ms_headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Result<(String, reqwest::header::HeaderMap)> {
        // An empty blob name addresses the container itself (List Blobs, its creation).
        let mut url = if blob.is_empty() {
            self.container_url.clone()
        } else {
            format!("{}/{}", self.container_url, encode_path(blob))
        };
        if !query.is_empty() {
            url.push('?');
            let parts: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v)))
                .collect();
            url.push_str(&parts.join("&"));
        }
        if body.is_empty() && method == reqwest::Method::PUT {
            std_headers.push(("content-length", "0".into()));
        } else if !body.is_empty() {
            std_headers.push(("content-length", body.len().to_string()));
        }
        // The request as object_store's signer sees it: method, URL, the headers it signs.
        let mut req = HttpRequest::new(HttpRequestBody::empty());
        *req.method_mut() = method.clone();
        *req.uri_mut() = url
            .parse()
            .map_err(|e| self.fail(what, blob, None, &format!("bad request URL: {e}"), false))?;
        let headers = req.headers_mut();
        headers.insert("x-ms-version", HeaderValue::from_static(VERSION));
        for (k, v) in std_headers.iter().chain(ms_headers.iter()) {
            let v = HeaderValue::from_str(v)
                .map_err(|e| self.fail(what, blob, None, &format!("header {k}: {e}"), false))?;
            headers.insert(HeaderName::from_static(k), v);
        }
        let cred = self.creds.get_credential().await.map_err(|e| {
            let text = self.redact(&classify::chain(&e));
            match classify::credential_failure(&text).or_else(|| classify::transport(&text)) {
                Some(p) => self.access(what, blob, p, classify::credential_detail(&text)),
                None => self.fail(what, blob, None, &format!("credential: {text}"), true),
            }
        })?;
        AzureAuthorizer::new(&cred, &self.account)
            .try_authorize(&mut req)
            .map_err(|e| self.fail(what, blob, None, &format!("signing: {e}"), false))?;
        // Sized for large parts: 60 s plus a second per MiB. A container request (List Blobs)
        // gets object_store's 300 s: a service may take long to fill a delimited page of a
        // huge container.
        let timeout = if blob.is_empty() {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(60 + (body.len() as u64 >> 20))
        };
        let resp = self
            .client
            .request(method, req.uri().to_string())
            .headers(req.headers().clone())
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let text = self.redact(&classify::chain(&e));
                if e.is_timeout() {
                    self.fail(
                        what,
                        blob,
                        None,
                        &format!("timed out after {} s", timeout.as_secs()),
                        true,
                    )
                } else if let Some(p) = classify::transport(&text) {
                    self.access(what, blob, p, String::new())
                } else {
                    self.fail(what, blob, None, &format!("request failed: {text}"), true)
                }
            })?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let request_id = header("x-ms-request-id");
        let header_code = header("x-ms-error-code");
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| {
            self.fail(
                what,
                blob,
                Some(status),
                &format!("reading the answer: {e}"),
                true,
            )
        })?;
        if (200..300).contains(&status) {
            return Ok((text, headers));
        }
        let code = if header_code.is_empty() {
            classify::xml_field(&text, "Code").to_string()
        } else {
            header_code
        };
        let auth_detail = match classify::xml_field(&text, "AuthenticationErrorDetail") {
            "" => classify::xml_field(&text, "Message"),
            d => d,
        };
        let detail = if request_id.is_empty() {
            format!("HTTP {status} {code}")
        } else {
            format!("HTTP {status} {code}, request id {request_id}")
        };
        tracing::debug!(
            target: "hbcp::azure",
            "{what} {}: {detail}: {}",
            self.target_of(blob),
            self.redact(auth_detail)
        );
        if let Some(p) = classify::azure(status, &code, auth_detail, Op::of(what), &self.container)
        {
            return Err(self.access(what, blob, p, self.redact(&detail)));
        }
        match status {
            404 => Err(Error::NotFound { key: blob.into() }),
            s => Err(hbcp_store::retry::asked_to_wait(
                self.fail(
                    what,
                    blob,
                    Some(s),
                    &detail,
                    hbcp_store::retry::status_may_pass(s),
                ),
                headers.get("retry-after").and_then(|v| v.to_str().ok()),
            )),
        }
    }

    fn access(&self, what: &str, blob: &str, problem: Problem, detail: String) -> Error {
        classify::access(
            format!("{what} {}", self.target_of(blob)),
            problem,
            detail,
            Cloud::Azure,
        )
    }

    /// The blob's URL (without any query), or the URL as the user gave it (redacted) for the
    /// container itself.
    fn target_of(&self, blob: &str) -> String {
        if blob.is_empty() {
            crate::url_base(&self.display).to_string()
        } else {
            format!("{}/{blob}", self.container_url)
        }
    }

    /// Whether the container exists, found with a one-entry listing under `prefix` (which the
    /// credential must be allowed anyway: hbcp lists what it copies or verifies). When it is
    /// missing and `create`, it is created with the same credential: true then. A container
    /// that exists is never created again.
    pub(crate) async fn check_container(&self, prefix: Option<&str>, create: bool) -> Result<bool> {
        match self.list_page(prefix, false, None, Some(1)).await {
            Ok(_) => Ok(false),
            Err(Error::Access {
                problem: Problem::NoContainer { .. },
                ..
            }) if create => {
                match self
                    .send_container("create", reqwest::Method::PUT, &[("restype", "container")])
                    .await
                {
                    Ok(_) => Ok(true),
                    // Created by someone else since the listing.
                    Err(Error::Remote {
                        status: Some(409), ..
                    }) => Ok(false),
                    Err(Error::Access {
                        what,
                        problem: Problem::Forbidden { permission },
                        detail,
                        ..
                    }) => Err(Error::Access {
                        what,
                        problem: Problem::Forbidden { permission },
                        detail,
                        fix: format!(
                            "container {} does not exist and this credential may not create it \
                             (a container SAS never can): create it first (az storage container \
                             create --name {}), or use a credential that may",
                            self.container, self.container
                        ),
                    }),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Prove the credential may write under `prefix` without making anything visible: one
    /// block of one byte is staged (Put Block) for a blob that is never committed. The service
    /// drops uncommitted blocks after a week; no listing shows them.
    pub(crate) async fn probe_write(&self, prefix: &str) -> Result<()> {
        let blob = if prefix.is_empty() {
            format!(".hbcp/probe-{}", std::process::id())
        } else {
            format!("{prefix}/.hbcp/probe-{}", std::process::id())
        };
        let id = B64.encode("hbcp-probe");
        self.send(
            "write",
            reqwest::Method::PUT,
            &blob,
            &[("comp", "block"), ("blockid", &id)],
            vec![],
            vec![],
            Bytes::from_static(b"\0"),
        )
        .await
        .map(|_| ())
    }

    /// A request to the container itself (List Blobs); returns the body of a 2xx answer.
    pub(crate) async fn send_container(
        &self,
        what: &str,
        method: reqwest::Method,
        query: &[(&str, &str)],
    ) -> Result<String> {
        self.send(what, method, "", query, vec![], vec![], Bytes::new())
            .await
    }

    /// The container's URL as the user gave it, for messages.
    pub(crate) fn display_url(&self) -> &str {
        self.display.trim_end_matches('/')
    }

    fn fail(
        &self,
        what: &str,
        blob: &str,
        status: Option<u16>,
        msg: &str,
        retryable: bool,
    ) -> Error {
        Error::Remote {
            what: format!("{what} {}", self.target_of(blob)),
            message: self.redact(msg),
            status,
            retryable,
        }
    }

    /// Delete Blob; a blob that is not there is no error.
    pub(crate) async fn delete_blob(&self, blob: &str) -> Result<()> {
        match self
            .send(
                "delete",
                reqwest::Method::DELETE,
                blob,
                &[],
                vec![],
                vec![],
                Bytes::new(),
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Put Blob: a whole small blob in one request, with its Content-MD5. Returns the new
    /// blob's ETag (unquoted, as a HEAD's entry shows it).
    pub(crate) async fn put_blob(&self, blob: &str, data: Bytes) -> Result<Option<String>> {
        let md5 = B64.encode(Md5::digest(&data));
        self.send_raw(
            "write",
            reqwest::Method::PUT,
            blob,
            &[],
            vec![("content-md5", md5)],
            vec![("x-ms-blob-type", "BlockBlob".into())],
            data,
        )
        .await
        .map(|(_, headers)| etag_of(&headers))
    }

    /// The blob's properties (the headers of Get Blob Properties); `None` when there is no blob.
    pub(crate) async fn properties(
        &self,
        blob: &str,
    ) -> Result<Option<reqwest::header::HeaderMap>> {
        match self
            .send_raw(
                "properties of",
                reqwest::Method::HEAD,
                blob,
                &[],
                vec![],
                vec![],
                Bytes::new(),
            )
            .await
        {
            Ok((_, headers)) => Ok(Some(headers)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The blob's Content-MD5 property, if it has one (None also when there is no blob).
    pub(crate) async fn content_md5(&self, blob: &str) -> Result<Option<[u8; 16]>> {
        Ok(self.properties(blob).await?.and_then(|headers| {
            headers
                .get("content-md5")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| B64.decode(v.trim()).ok())
                .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
        }))
    }

    /// The uncommitted blocks staged for `blob` (empty when there is no such blob).
    async fn uncommitted(&self, blob: &str) -> Result<Vec<(String, u64)>> {
        match self
            .send(
                "list staged blocks of",
                reqwest::Method::GET,
                blob,
                &[("comp", "blocklist"), ("blocklisttype", "uncommitted")],
                vec![],
                vec![],
                Bytes::new(),
            )
            .await
        {
            Ok(xml) => Ok(parse_uncommitted(&xml)),
            Err(Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Begin (or resume) the staged upload of `blob`, `size` bytes in parts of `part_size`.
    pub(crate) fn begin(
        self: &Arc<Self>,
        handle: &tokio::runtime::Handle,
        key: &str,
        blob: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> Result<AzureUpload> {
        let tag = upload_tag(job, blob, size);
        let mut staged = HashMap::new();
        for (name, len) in handle.block_on(self.uncommitted(blob))? {
            if let Some(i) = index_of(&name, tag) {
                staged.insert(i, len);
            }
        }
        let parts = size.div_ceil(part_size.max(1)).max(1) as u32;
        Ok(AzureUpload {
            blocks: self.clone(),
            handle: handle.clone(),
            key: key.to_string(),
            blob: blob.to_string(),
            job: job.to_string(),
            size,
            part_size,
            parts,
            staged,
            md5: Mutex::new(None),
            copied: std::sync::atomic::AtomicBool::new(false),
            sent: Mutex::new(std::collections::HashSet::new()),
        })
    }
}

/// One staged block-blob upload.
pub(crate) struct AzureUpload {
    blocks: Arc<Blocks>,
    handle: tokio::runtime::Handle,
    key: String,
    blob: String,
    job: String,
    size: u64,
    part_size: u64,
    parts: u32,
    /// Our blocks already staged by an earlier run: index → size.
    staged: HashMap<u32, u64>,
    md5: Mutex<Option<[u8; 16]>>,
    /// A block was staged by Put Block From URL: the commit checks the staged sizes first.
    copied: std::sync::atomic::AtomicBool,
    /// The parts this upload staged by Put Block with their CRC-64, which the service checked.
    sent: Mutex<std::collections::HashSet<u32>>,
}

impl AzureUpload {
    /// Blocks staged by the service from a URL are checked before they are committed: each
    /// of ours staged with exactly its range's length. An emulator that answers Put Block From
    /// URL 201 without honouring `x-ms-source-range` (Azurite 3.35 under hbcp's API version)
    /// is refused as not supporting it, so that the engine copies the file another way.
    fn check_copied_blocks(&self) -> Result<()> {
        let tag = upload_tag(&self.job, &self.blob, self.size);
        let mut got: HashMap<u32, u64> = HashMap::new();
        for (name, len) in self.handle.block_on(self.blocks.uncommitted(&self.blob))? {
            if let Some(i) = index_of(&name, tag) {
                got.insert(i, len);
            }
        }
        for i in 0..self.parts {
            let start = i as u64 * self.part_size;
            let want = self.part_size.min(self.size - start);
            if got.get(&i) != Some(&want) {
                return Err(Error::Unsupported {
                    what: format!("server-side copy of part {i} of {}", self.key),
                    hint: format!(
                        "the service staged {:?} bytes for a range of {want}",
                        got.get(&i)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The ETag header of a write's answer, unquoted (as [`crate::unquoted`] gives a HEAD's).
pub(crate) fn etag_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    crate::unquoted(headers.get("etag").and_then(|v| v.to_str().ok()))
}

impl fmt::Debug for AzureUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureUpload")
            .field("key", &self.key)
            .field("staged", &self.staged.len())
            .finish_non_exhaustive()
    }
}

impl Upload for AzureUpload {
    fn put_part(&self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.put_part_bytes(index, offset, Bytes::copy_from_slice(data))
    }

    fn put_part_bytes(&self, index: u32, _offset: u64, data: Bytes) -> Result<()> {
        let id = block_id(&self.job, &self.blob, self.size, index);
        let std = if self.blocks.put_md5 {
            vec![("content-md5", B64.encode(Md5::digest(&data)))]
        } else {
            vec![]
        };
        let crc = vec![("x-ms-content-crc64", crate::azure_crc64::header(&data))];
        self.handle
            .block_on(self.blocks.send(
                "write part of",
                reqwest::Method::PUT,
                &self.blob,
                &[("comp", "block"), ("blockid", &id)],
                std,
                crc,
                data,
            ))
            .map(|_| {
                self.sent.lock().unwrap().insert(index);
            })
            .map_err(|e| match e {
                // A 404 on Put Block means the container went away.
                Error::NotFound { .. } => Error::Remote {
                    what: format!("write part {index} of {}", self.key),
                    message: "the container does not exist".into(),
                    status: Some(404),
                    retryable: false,
                },
                e => e,
            })
    }

    fn put_part_from(
        &self,
        index: u32,
        src: &hbcp_store::CopySource,
        range: std::ops::Range<u64>,
    ) -> Result<()> {
        if src.service != "azure" {
            return Err(Error::Unsupported {
                what: format!("server-side copy to {}", self.key),
                hint: "the source is not Azure; streamed".into(),
            });
        }
        let id = block_id(&self.job, &self.blob, self.size, index);
        crate::not_served(
            self.handle.block_on(crate::azure_copy::copy_block(
                &self.blocks,
                &self.blob,
                &id,
                src,
                range,
            )),
            || format!("server-side copy of part {index} of {}", self.key),
        )?;
        self.copied
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn commit(&self) -> Result<Option<String>> {
        if self.copied.load(std::sync::atomic::Ordering::Relaxed) {
            self.check_copied_blocks()?;
        }
        let mut xml = String::with_capacity(64 + self.parts as usize * 64);
        xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for i in 0..self.parts {
            xml.push_str("<Latest>");
            xml.push_str(&block_id(&self.job, &self.blob, self.size, i));
            xml.push_str("</Latest>");
        }
        xml.push_str("</BlockList>");
        let mut ms = vec![];
        if let Some(m) = *self.md5.lock().unwrap() {
            ms.push(("x-ms-blob-content-md5", B64.encode(m)));
        }
        self.handle
            .block_on(self.blocks.send_raw(
                "commit",
                reqwest::Method::PUT,
                &self.blob,
                &[("comp", "blocklist")],
                vec![("content-type", "application/xml".into())],
                ms,
                Bytes::from(xml),
            ))
            .map(|(_, headers)| etag_of(&headers))
    }

    fn abort(&self) -> Result<()> {
        // Uncommitted blocks cannot be deleted one by one: the service drops them at the
        // blob's next commit or after seven days. A later run of the same job reuses them.
        Ok(())
    }

    fn is_resumed(&self) -> bool {
        !self.staged.is_empty()
    }

    fn has_part(&self, index: u32, len: u64) -> bool {
        self.staged.get(&index) == Some(&len)
    }

    fn wants_md5(&self) -> bool {
        self.blocks.put_md5
    }

    fn set_md5(&self, md5: [u8; 16]) {
        *self.md5.lock().unwrap() = Some(md5);
    }

    fn transport_checked(&self) -> bool {
        // The commit named blocks 0..parts in order; each must have been sent here.
        !self.copied.load(std::sync::atomic::Ordering::Relaxed)
            && self.sent.lock().unwrap().len() == self.parts as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_are_fixed_length_deterministic_and_ours() {
        let a = block_id("job1", "data/t/r/f/x", 100, 0);
        let b = block_id("job1", "data/t/r/f/x", 100, 12345);
        assert_eq!(a.len(), b.len());
        assert_eq!(a, block_id("job1", "data/t/r/f/x", 100, 0));
        assert_ne!(a, block_id("job2", "data/t/r/f/x", 100, 0));
        assert_ne!(a, block_id("job1", "data/t/r/f/x", 101, 0));
        let tag = upload_tag("job1", "data/t/r/f/x", 100);
        assert_eq!(index_of(&b, tag), Some(12345));
        assert_eq!(index_of(&b, tag ^ 1), None);
        assert_eq!(index_of("bm90IG91cnM=", tag), None);
    }

    #[test]
    fn uncommitted_blocks_are_parsed_and_committed_ones_ignored() {
        let xml = "<?xml version=\"1.0\"?><BlockList><CommittedBlocks><Block><Name>Y29t</Name>\
            <Size>5</Size></Block></CommittedBlocks><UncommittedBlocks><Block><Name>YQ==</Name>\
            <Size>7</Size></Block><Block><Name>Yg==</Name><Size>9</Size></Block>\
            </UncommittedBlocks></BlockList>";
        assert_eq!(
            parse_uncommitted(xml),
            vec![("YQ==".to_string(), 7), ("Yg==".to_string(), 9)]
        );
        assert!(parse_uncommitted("<BlockList><UncommittedBlocks /></BlockList>").is_empty());
    }

    #[test]
    fn paths_are_percent_encoded_byte_exact() {
        assert_eq!(
            encode_path("WALs/rs%2C16020%2C1/a b=c#1"),
            "WALs/rs%252C16020%252C1/a%20b%3Dc%231"
        );
        assert_eq!(encode_path("é"), "%C3%A9");
        assert_eq!(encode_query("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
