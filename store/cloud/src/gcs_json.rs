//! Writing GCS through its JSON API: uploads, staged parts joined by `compose`, rewrites.
//!
//! object_store writes GCS through the XML API (object PUT, XML multipart uploads), which the
//! emulator hbcp is tested on refuses (fake-gcs-server#1164, #852), and its multipart uploads
//! could not be found again by a later process anyway. hbcp sends its GCS writes itself:
//! - a small file is one `POST …/upload/storage/v1/b/BUCKET/o?uploadType=media&name=NAME`
//!   (`uploadType=multipart` carrying `md5Hash` under `--put-md5`, which GCS checks on receipt);
//! - a large file is cut into parts, each uploaded by any worker as its own object
//!   `ROOT/.hbcp/gcs-parts/TAG/NNNNNNNN` (TAG = xxh3 of job, object name and size; NNNNNNNN the
//!   part index, fixed width), so a later process of the same job finds the parts already there
//!   (`has_part`: the part object exists with the expected size). The commit `compose`s them
//!   into the target (at most 32 sources per compose: a tree of composes for more), and only
//!   then is anything visible under the target's name; the part objects are deleted after it
//!   (and by `abort`). They live under the target root's `.hbcp/` folder, which the planner and
//!   the verifier never copy or judge, and the store's listing leaves `.hbcp/gcs-parts/` out.
//! - a server-side copy is a `rewriteTo` (repeated with its token until done).
//!
//! Reads, HEAD, listing and delete stay on object_store. The bearer token comes from
//! object_store's own GCP credential provider (empty under `disable_oauth`: an emulator); it is
//! sent as a header only and never logged. 404 → `NotFound`, 401/403 → `PermissionDenied`
//! naming the object's gs:// URL, 408/429/5xx → retryable `Remote` (the engine retries), any
//! other status fails at once.
//!
//! Checksums: GCS computes `md5Hash` and `crc32c` of every uploaded object; a composite object
//! has `crc32c` only. Under `--put-md5` the commit stores the whole file's MD5 (computed by the
//! engine from the source) as the object's custom metadata `hbcp-content-md5`, and
//! `content_md5` answers GCS's `md5Hash` when there is one, else that metadata. The listing
//! carries `md5Hash` too (`list_md5s`): the verifier's `service` way with no request per file.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use hbcp_store::redact::redact_text;
use hbcp_store::{Error, Result, Upload};
use md5::{Digest, Md5};
use object_store::gcp::GcpCredentialProvider;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Where part objects are staged, relative to the store root (inside hbcp's own `.hbcp/`).
pub(crate) const PARTS_DIR: &str = ".hbcp/gcs-parts";

/// Most source objects one `compose` takes.
const COMPOSE_MAX: usize = 32;

/// Requests in flight at once inside one commit or abort (composes of a tree level, deletes).
const FAN_OUT: usize = 8;

/// What [`GcsJson::list_md5s`] hands each listed object: name, size, `md5Hash`.
pub(crate) type ListedMd5<'a> = dyn FnMut(&str, u64, [u8; 16]) -> Result<()> + Send + 'a;

/// Custom metadata key of the whole file's MD5 on a composite object (`--put-md5`).
const MD5_META: &str = "hbcp-content-md5";

/// Percent-encode for a URL path segment or a query value: everything but unreserved
/// characters (a `/` of an object name too: the JSON API takes the name as one segment).
pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The staging tag of an upload: the same job writing the same object of the same size.
fn upload_tag(job: &str, object: &str, size: u64) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [job.as_bytes(), object.as_bytes(), &size.to_le_bytes()] {
        h.update(part);
        h.update(&[0]);
    }
    h.digest()
}

/// The name of part `index` under an upload's staging folder.
fn part_name(staging: &str, index: u32) -> String {
    format!("{staging}/{index:08}")
}

/// The part index of a staged object's name (relative to its staging folder), if it is a part.
fn index_of(rel: &str) -> Option<u32> {
    (rel.len() == 8 && rel.bytes().all(|b| b.is_ascii_digit()))
        .then(|| rel.parse().ok())
        .flatten()
}

/// The levels of a compose tree over `n` parts: each level lists its composes, each compose its
/// source indexes into the level below (level 0 sources are the parts). The last level has one
/// compose, whose output is the target.
fn compose_plan(n: usize) -> Vec<Vec<std::ops::Range<usize>>> {
    let mut levels = Vec::new();
    let mut width = n.max(1);
    loop {
        let groups: Vec<_> = (0..width)
            .step_by(COMPOSE_MAX)
            .map(|a| a..(a + COMPOSE_MAX).min(width))
            .collect();
        width = groups.len();
        levels.push(groups);
        if width == 1 {
            return levels;
        }
    }
}

/// The `message` of a JSON API error body, or the body itself (shortened).
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// One bucket's JSON API.
pub(crate) struct GcsJson {
    client: reqwest::Client,
    /// `https://storage.googleapis.com` or an emulator's `http://127.0.0.1:4443`.
    pub(crate) base: String,
    pub(crate) bucket: String,
    creds: GcpCredentialProvider,
    secrets: Vec<String>,
    /// Full object name of the staging folder (`PREFIX/.hbcp/gcs-parts`).
    parts_root: String,
    /// Store MD5s (`--put-md5`).
    put_md5: bool,
    /// What the retry policy saw on these requests (the store's own, shared).
    pub(crate) tally: Arc<hbcp_store::retry::Tally>,
}

impl fmt::Debug for GcsJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsJson")
            .field("base", &self.base)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// An HTTP request's method, URL and body, before authorisation.
#[derive(Clone)]
struct Req {
    method: reqwest::Method,
    url: String,
    content_type: Option<String>,
    body: Bytes,
}

impl GcsJson {
    pub(crate) fn new(
        base: &str,
        bucket: &str,
        creds: GcpCredentialProvider,
        secrets: Vec<String>,
        parts_root: String,
        put_md5: bool,
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
        Ok(GcsJson {
            client,
            base: base.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            creds,
            secrets,
            parts_root,
            put_md5,
            tally: Arc::default(),
        })
    }

    fn url_of(&self, object: &str) -> String {
        format!("gs://{}/{object}", self.bucket)
    }

    fn fail(&self, what: &str, object: &str, status: Option<u16>, msg: &str, retry: bool) -> Error {
        let refs: Vec<&str> = self.secrets.iter().map(|s| s.as_str()).collect();
        Error::Remote {
            what: format!("{what} {}", self.url_of(object)),
            message: redact_text(msg, &refs),
            status,
            retryable: retry,
        }
    }

    /// Send one request about `object` under the retry policy; the body of a 2xx answer.
    async fn send(&self, what: &str, object: &str, r: Req) -> Result<String> {
        crate::policy::retried(&self.tally, || self.send_once(what, object, r.clone())).await
    }

    /// One try of [`GcsJson::send`].
    async fn send_once(&self, what: &str, object: &str, r: Req) -> Result<String> {
        let cred =
            self.creds.get_credential().await.map_err(|e| {
                self.fail(what, object, None, &format!("GCS credential: {e}"), false)
            })?;
        // Sized for large parts: 60 s plus a second per MiB.
        let timeout = Duration::from_secs(60 + (r.body.len() as u64 >> 20));
        let mut req = self
            .client
            .request(r.method, &r.url)
            .timeout(timeout)
            .header("content-length", r.body.len().to_string());
        if !cred.bearer.is_empty() {
            req = req.bearer_auth(&cred.bearer);
        }
        if let Some(ct) = &r.content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(r.body).send().await.map_err(|e| {
            let msg = if e.is_timeout() {
                format!("timed out after {} s", timeout.as_secs())
            } else {
                // Without the URL: it names the object already, and the error's own copy of it
                // would only repeat it.
                format!("request failed: {}", e.without_url())
            };
            self.fail(what, object, None, &msg, true)
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.map_err(|e| {
            let msg = format!("reading the answer: {}", e.without_url());
            self.fail(what, object, Some(status), &msg, true)
        })?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let detail = format!("HTTP {status} {}", error_message(&text));
        tracing::debug!(target: "hbcp::gcs", "{what} {}: {detail}", self.url_of(object));
        match status {
            404 => Err(Error::NotFound {
                key: self.url_of(object),
            }),
            // Refused as on every other cloud: the endpoint's problem (a credential refused, a
            // permission lacking), which stops the run, not one file's.
            401 | 403 => {
                let refs: Vec<&str> = self.secrets.iter().map(|s| s.as_str()).collect();
                let op = crate::classify::Op::of(what);
                let problem = crate::classify::gcs(status, &text, op, &self.bucket)
                    .expect("401 and 403 are classified");
                Err(crate::classify::access(
                    format!("{what} {}", self.url_of(object)),
                    problem,
                    redact_text(&detail, &refs),
                    crate::classify::Cloud::Gcs,
                ))
            }
            s => Err(hbcp_store::retry::asked_to_wait(
                self.fail(
                    what,
                    object,
                    Some(s),
                    &detail,
                    hbcp_store::retry::status_may_pass(s),
                ),
                retry_after.as_deref(),
            )),
        }
    }

    fn object_url(&self, object: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(&self.bucket),
            encode(object)
        )
    }

    /// Upload `data` as `object` in one request. With `md5`, GCS checks the bytes against it.
    pub(crate) async fn upload(
        &self,
        what: &str,
        object: &str,
        data: Bytes,
        md5: bool,
    ) -> Result<()> {
        let base = format!(
            "{}/upload/storage/v1/b/{}/o",
            self.base,
            encode(&self.bucket)
        );
        let req = if md5 {
            let meta = serde_json::json!({
                "name": object,
                "md5Hash": B64.encode(Md5::digest(&data)),
            });
            let boundary = format!("hbcp{:016x}", xxhash_rust::xxh3::xxh3_64(&data));
            let mut body = Vec::with_capacity(data.len() + 512);
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n\
                     --{boundary}\r\ncontent-type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(&data);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            Req {
                method: reqwest::Method::POST,
                url: format!("{base}?uploadType=multipart"),
                content_type: Some(format!("multipart/related; boundary={boundary}")),
                body: Bytes::from(body),
            }
        } else {
            Req {
                method: reqwest::Method::POST,
                url: format!("{base}?uploadType=media&name={}", encode(object)),
                content_type: Some("application/octet-stream".into()),
                body: data,
            }
        };
        match self.send(what, object, req).await {
            Ok(_) => Ok(()),
            // A 404 on an upload means the bucket does not exist (never that a source changed).
            Err(Error::NotFound { .. }) => Err(self.fail(
                what,
                object,
                Some(404),
                "HTTP 404: the bucket does not exist",
                false,
            )),
            Err(e) => Err(e),
        }
    }

    /// A whole small file (checked against its MD5 on receipt under `--put-md5`).
    pub(crate) async fn put(&self, object: &str, data: Bytes) -> Result<()> {
        self.upload("write", object, data, self.put_md5).await
    }

    /// A small object written only if its generation is `generation` (`0`: only if absent), as
    /// GCS checks it on receipt: the new generation, or `None` when the condition failed.
    pub(crate) async fn put_if_generation(
        &self,
        object: &str,
        data: Bytes,
        generation: &str,
    ) -> Result<Option<String>> {
        let req = Req {
            method: reqwest::Method::POST,
            url: format!(
                "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}&ifGenerationMatch={}",
                self.base,
                encode(&self.bucket),
                encode(object),
                encode(generation)
            ),
            content_type: Some("application/octet-stream".into()),
            body: data,
        };
        match self.send("write", object, req).await {
            Ok(text) => {
                let r: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    self.fail("write", object, None, &format!("not JSON: {e}"), false)
                })?;
                Ok(Some(generation_of(&r)))
            }
            Err(Error::Remote {
                status: Some(412), ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A small object's bytes and generation, `None` when there is no such object.
    pub(crate) async fn get_with_generation(
        &self,
        object: &str,
    ) -> Result<Option<(Vec<u8>, String)>> {
        let Some(r) = self.resource(object).await? else {
            return Ok(None);
        };
        let generation = generation_of(&r);
        let req = Req {
            method: reqwest::Method::GET,
            url: format!(
                "{}?alt=media&ifGenerationMatch={}",
                self.object_url(object),
                encode(&generation)
            ),
            content_type: None,
            body: Bytes::new(),
        };
        match self.send("read", object, req).await {
            Ok(text) => Ok(Some((text.into_bytes(), generation))),
            // Replaced or removed between the two requests: the caller reads again.
            Err(Error::NotFound { .. })
            | Err(Error::Remote {
                status: Some(412), ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's metadata resource (JSON), `None` when there is no such object.
    async fn resource(&self, object: &str) -> Result<Option<serde_json::Value>> {
        let req = Req {
            method: reqwest::Method::GET,
            url: self.object_url(object),
            content_type: None,
            body: Bytes::new(),
        };
        match self.send("metadata of", object, req).await {
            Ok(t) => serde_json::from_str(&t).map(Some).map_err(|e| {
                self.fail(
                    "metadata of",
                    object,
                    None,
                    &format!("not JSON: {e}"),
                    false,
                )
            }),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GCS's `md5Hash` of the object, else the MD5 hbcp stored with a composite one.
    pub(crate) async fn content_md5(&self, object: &str) -> Result<Option<[u8; 16]>> {
        self.md5(object, true).await
    }

    /// GCS's own `md5Hash` of the object (computed by the service over what it stored; a
    /// composite object has none).
    pub(crate) async fn service_md5(&self, object: &str) -> Result<Option<[u8; 16]>> {
        self.md5(object, false).await
    }

    async fn md5(&self, object: &str, ours_too: bool) -> Result<Option<[u8; 16]>> {
        let Some(r) = self.resource(object).await? else {
            return Ok(None);
        };
        let b64 = r["md5Hash"]
            .as_str()
            .or_else(|| ours_too.then(|| r["metadata"][MD5_META].as_str()).flatten());
        Ok(b64
            .and_then(|v| B64.decode(v.trim()).ok())
            .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok()))
    }

    /// Delete `object`; one that is already gone is fine.
    async fn delete(&self, object: &str) -> Result<()> {
        let req = Req {
            method: reqwest::Method::DELETE,
            url: self.object_url(object),
            content_type: None,
            body: Bytes::new(),
        };
        match self.send("delete", object, req).await {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `(name, size)` of every object whose name starts with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        self.list_items(
            prefix,
            "name%2Csize",
            "list staged parts",
            &mut |name, size, _| {
                out.push((name.to_string(), size));
                Ok(())
            },
        )
        .await?;
        Ok(out)
    }

    /// `(name, size, md5Hash)` of every object whose name starts with `prefix` and has an
    /// `md5Hash` (GCS's own, over what it stored: a composite object has none, and the MD5
    /// hbcp stored with one in its metadata is not taken), page by page, into `sink`.
    pub(crate) async fn list_md5s(&self, prefix: &str, sink: &mut ListedMd5<'_>) -> Result<()> {
        self.list_items(
            prefix,
            "name%2Csize%2Cmd5Hash",
            "list",
            &mut |name, size, item| {
                let md5 = item["md5Hash"]
                    .as_str()
                    .and_then(|v| B64.decode(v.trim()).ok())
                    .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok());
                match md5 {
                    Some(m) => sink(name, size, m),
                    None => Ok(()),
                }
            },
        )
        .await
    }

    /// Every object whose name starts with `prefix`, with the resource `fields` asked for
    /// (URL-encoded, `name` and `size` among them), page by page: `each(name, size, item)`.
    async fn list_items(
        &self,
        prefix: &str,
        fields: &str,
        what: &str,
        each: &mut (dyn FnMut(&str, u64, &serde_json::Value) -> Result<()> + Send),
    ) -> Result<()> {
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/storage/v1/b/{}/o?prefix={}&fields=items({fields})%2CnextPageToken",
                self.base,
                encode(&self.bucket),
                encode(prefix)
            );
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", encode(t)));
            }
            let req = Req {
                method: reqwest::Method::GET,
                url,
                content_type: None,
                body: Bytes::new(),
            };
            let text = match self.send(what, prefix, req).await {
                Ok(t) => t,
                Err(Error::NotFound { .. }) => {
                    return Err(self.fail(
                        what,
                        prefix,
                        Some(404),
                        "HTTP 404: the bucket does not exist",
                        false,
                    ));
                }
                Err(e) => return Err(e),
            };
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| self.fail(what, prefix, None, &format!("not JSON: {e}"), false))?;
            for item in v["items"].as_array().into_iter().flatten() {
                let size = match &item["size"] {
                    serde_json::Value::String(s) => s.parse().ok(),
                    n => n.as_u64(),
                };
                if let (Some(name), Some(size)) = (item["name"].as_str(), size) {
                    each(name, size, item)?;
                }
            }
            match v["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(()),
            }
        }
    }

    /// Compose `sources` (in order) into `dest`; its size as GCS answers it.
    async fn compose(&self, sources: &[String], dest: &str, md5: Option<[u8; 16]>) -> Result<u64> {
        let mut destination = serde_json::json!({"contentType": "application/octet-stream"});
        if let Some(m) = md5 {
            destination["metadata"] = serde_json::json!({ MD5_META: B64.encode(m) });
        }
        let body = serde_json::json!({
            "sourceObjects": sources.iter().map(|s| serde_json::json!({"name": s})).collect::<Vec<_>>(),
            "destination": destination,
        });
        let req = Req {
            method: reqwest::Method::POST,
            url: format!("{}/compose", self.object_url(dest)),
            content_type: Some("application/json".into()),
            body: Bytes::from(body.to_string()),
        };
        let text = self.send("commit", dest, req).await.map_err(|e| match e {
            // A missing source: a part was deleted under the upload.
            Error::NotFound { .. } => self.fail(
                "commit",
                dest,
                Some(404),
                "a staged part object is missing",
                false,
            ),
            e => e,
        })?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Ok(match &v["size"] {
            serde_json::Value::String(s) => s.parse().unwrap_or(0),
            n => n.as_u64().unwrap_or(0),
        })
    }

    /// Server-side copy of `from` to `to` (a rewrite, repeated until GCS says it is done).
    pub(crate) async fn rewrite(&self, from: &str, to: &str) -> Result<()> {
        self.rewrite_from(&self.bucket, from, None, to).await
    }

    /// Server-side copy of `from` in bucket `from_bucket` (this bucket or another one the
    /// credential may read) to `to` in this bucket; of generation `generation` of `from` only,
    /// when given (`sourceGeneration`, and `ifSourceGenerationMatch`: GCS answers 404 or 412
    /// when the source has another generation by then; fake-gcs-server checks only the first).
    pub(crate) async fn rewrite_from(
        &self,
        from_bucket: &str,
        from: &str,
        generation: Option<&str>,
        to: &str,
    ) -> Result<()> {
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/storage/v1/b/{}/o/{}/rewriteTo/b/{}/o/{}",
                self.base,
                encode(from_bucket),
                encode(from),
                encode(&self.bucket),
                encode(to)
            );
            let mut query = Vec::new();
            if let Some(g) = generation {
                query.push(format!("sourceGeneration={}", encode(g)));
                query.push(format!("ifSourceGenerationMatch={}", encode(g)));
            }
            if let Some(t) = &token {
                query.push(format!("rewriteToken={}", encode(t)));
            }
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query.join("&"));
            }
            let req = Req {
                method: reqwest::Method::POST,
                url,
                content_type: Some("application/json".into()),
                body: Bytes::from_static(b"{}"),
            };
            let text = self.send("copy", from, req).await?;
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if v["done"].as_bool().unwrap_or(true) {
                return Ok(());
            }
            match v["rewriteToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => {
                    return Err(self.fail(
                        "copy",
                        from,
                        None,
                        "rewrite not done and no token",
                        false,
                    ));
                }
            }
        }
    }

    /// Begin (or resume) the staged upload of `object`, `size` bytes in parts of `part_size`.
    pub(crate) fn begin(
        self: &Arc<Self>,
        handle: &tokio::runtime::Handle,
        key: &str,
        object: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> Result<GcsUpload> {
        let staging = format!("{}/{:016x}", self.parts_root, upload_tag(job, object, size));
        let mut staged = HashMap::new();
        for (name, len) in handle.block_on(self.list(&format!("{staging}/")))? {
            if let Some(i) = name.strip_prefix(&format!("{staging}/")).and_then(index_of) {
                staged.insert(i, len);
            }
        }
        Ok(GcsUpload {
            gcs: self.clone(),
            handle: handle.clone(),
            key: key.to_string(),
            object: object.to_string(),
            staging,
            size,
            parts: size.div_ceil(part_size.max(1)).max(1) as u32,
            staged,
            md5: Mutex::new(None),
        })
    }

    /// Delete every object named in `names`, a few at a time.
    async fn delete_all(&self, names: Vec<String>) -> Result<()> {
        futures::stream::iter(names)
            .map(|n| async move { self.delete(&n).await })
            .buffer_unordered(FAN_OUT)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }
}

/// One staged upload: part objects, joined by compose at commit.
pub(crate) struct GcsUpload {
    gcs: Arc<GcsJson>,
    handle: tokio::runtime::Handle,
    key: String,
    /// The target's full object name.
    object: String,
    /// Full object name of this upload's staging folder.
    staging: String,
    size: u64,
    parts: u32,
    /// Parts already staged by an earlier run: index → size.
    staged: HashMap<u32, u64>,
    md5: Mutex<Option<[u8; 16]>>,
}

impl fmt::Debug for GcsUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsUpload")
            .field("key", &self.key)
            .field("staged", &self.staged.len())
            .finish_non_exhaustive()
    }
}

impl GcsUpload {
    /// Compose the parts into the target, through a tree of intermediate composites when there
    /// are more than 32. Returns the names of the intermediates made.
    async fn compose_tree(&self, md5: Option<[u8; 16]>) -> Result<Vec<String>> {
        let g = &self.gcs;
        let levels = compose_plan(self.parts as usize);
        let mut below: Vec<String> = (0..self.parts)
            .map(|i| part_name(&self.staging, i))
            .collect();
        let mut made = Vec::new();
        for (l, groups) in levels.iter().enumerate() {
            if l + 1 == levels.len() {
                let size = g.compose(&below, &self.object, md5).await?;
                if size != self.size {
                    // Never leave a wrong file visible.
                    let _ = g.delete(&self.object).await;
                    return Err(g.fail(
                        "commit",
                        &self.object,
                        None,
                        &format!("composed {size} bytes, expected {}", self.size),
                        false,
                    ));
                }
                break;
            }
            let names: Vec<String> = (0..groups.len())
                .map(|j| format!("{}/c{l}-{j:08}", self.staging))
                .collect();
            futures::stream::iter(groups.iter().zip(&names))
                .map(|(r, name)| g.compose(&below[r.clone()], name, None))
                .buffer_unordered(FAN_OUT)
                .try_collect::<Vec<u64>>()
                .await?;
            made.extend(names.iter().cloned());
            below = names;
        }
        Ok(made)
    }
}

impl Upload for GcsUpload {
    fn put_part(&self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.put_part_bytes(index, offset, Bytes::copy_from_slice(data))
    }

    fn put_part_bytes(&self, index: u32, _offset: u64, data: Bytes) -> Result<()> {
        let name = part_name(&self.staging, index);
        self.handle.block_on(
            self.gcs
                .upload("write part of", &name, data, self.gcs.put_md5),
        )
    }

    fn commit(&self) -> Result<Option<String>> {
        let md5 = *self.md5.lock().unwrap();
        let made = self.handle.block_on(self.compose_tree(md5))?;
        // The file is whole and visible; the staged objects are only a cost now.
        let mut names: Vec<String> = (0..self.parts)
            .map(|i| part_name(&self.staging, i))
            .collect();
        names.extend(made);
        if let Err(e) = self.handle.block_on(self.gcs.delete_all(names)) {
            tracing::warn!(
                target: "hbcp::gcs",
                "{} committed, but its staged parts under gs://{}/{}/ were not all deleted: {e}",
                self.key,
                self.gcs.bucket,
                self.staging
            );
        }
        // The compose answer's ETag is not the kind a HEAD shows: no token (the engine asks).
        Ok(None)
    }

    fn abort(&self) -> Result<()> {
        let g = &self.gcs;
        self.handle.block_on(async {
            let names = g
                .list(&format!("{}/", self.staging))
                .await?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            g.delete_all(names).await
        })
    }

    fn is_resumed(&self) -> bool {
        !self.staged.is_empty()
    }

    fn has_part(&self, index: u32, len: u64) -> bool {
        self.staged.get(&index) == Some(&len)
    }

    fn wants_md5(&self) -> bool {
        self.gcs.put_md5
    }

    fn set_md5(&self, md5: [u8; 16]) {
        *self.md5.lock().unwrap() = Some(md5);
    }
}

/// The `generation` of an object resource (a string in GCS's JSON; a number in some emulators).
fn generation_of(r: &serde_json::Value) -> String {
    match &r["generation"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compose_tree_takes_at_most_32_sources_per_compose_and_ends_in_one() {
        for n in [1usize, 2, 31, 32, 33, 64, 65, 1024, 1025, 10_000] {
            let levels = compose_plan(n);
            let mut width = n;
            for groups in &levels {
                assert!(groups.iter().all(|g| !g.is_empty() && g.len() <= 32), "{n}");
                // The groups of a level cover the level below exactly, in order.
                assert_eq!(groups.first().unwrap().start, 0, "{n}");
                assert_eq!(groups.last().unwrap().end, width, "{n}");
                assert!(groups.windows(2).all(|w| w[0].end == w[1].start), "{n}");
                width = groups.len();
            }
            assert_eq!(width, 1, "{n}: ends in one compose");
        }
        assert_eq!(compose_plan(32).len(), 1);
        assert_eq!(compose_plan(33).len(), 2);
        assert_eq!(compose_plan(1025).len(), 3);
    }

    #[test]
    fn part_names_are_fixed_width_and_only_parts_parse_back() {
        assert_eq!(
            part_name("r/.hbcp/gcs-parts/00ff", 7),
            "r/.hbcp/gcs-parts/00ff/00000007"
        );
        assert_eq!(index_of("00000007"), Some(7));
        assert_eq!(index_of("c0-00000001"), None);
        assert_eq!(index_of("0000007"), None);
        let a = upload_tag("job", "data/x", 10);
        assert_eq!(a, upload_tag("job", "data/x", 10));
        assert_ne!(a, upload_tag("job2", "data/x", 10));
        assert_ne!(a, upload_tag("job", "data/x", 11));
        assert_ne!(a, upload_tag("job", "data/y", 10));
    }

    #[test]
    fn names_are_encoded_as_one_segment_byte_exact() {
        assert_eq!(
            encode("WALs/rs%2C1/a b=c#ü"),
            "WALs%2Frs%252C1%2Fa%20b%3Dc%23%C3%BC"
        );
        assert_eq!(
            error_message(r#"{"error":{"code":403,"message":"denied"}}"#),
            "denied"
        );
        assert_eq!(error_message("plain"), "plain");
    }
}
