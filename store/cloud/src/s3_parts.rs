//! Finding the parts a killed run already uploaded to an S3 multipart upload.
//!
//! object_store starts, fills and completes multipart uploads, but cannot list them: a later
//! process has no way to reuse parts already sent. This module sends the two listing calls
//! itself, signed with AWS Signature Version 4 from object_store's own credential provider:
//! ListMultipartUploads (the open uploads of one key) and ListParts (their part numbers, sizes
//! and ETags). An upload whose parts have exactly the sizes the plan cuts is resumed: its parts
//! are trusted where the job journal says the range was sent, and the commit lists their ETags.

use std::fmt;
use std::time::{Duration, SystemTime};

use hbcp_store::redact::redact_text;
use hbcp_store::{Error, Result};
use hmac::{Hmac, Mac};
use object_store::aws::AwsCredentialProvider;
use sha2::{Digest, Sha256};

/// SHA-256 of an empty body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An open multipart upload of a key whose parts fit the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resumable {
    pub upload_id: String,
    /// ETag (as S3 returns it, quotes included) of each part already uploaded, by part index.
    pub etags: Vec<Option<String>>,
}

/// The listing side of a bucket's multipart uploads.
pub(crate) struct S3Parts {
    client: reqwest::Client,
    /// `https://s3.REGION.amazonaws.com` or the endpoint given, without a trailing slash.
    pub(crate) base: String,
    /// The bucket's name.
    pub(crate) bucket: String,
    /// `https://s3.REGION.amazonaws.com/BUCKET` or `ENDPOINT/BUCKET` (path-style).
    bucket_url: String,
    /// `/BUCKET`, or `/PATH/BUCKET` under an endpoint with a path.
    bucket_path: String,
    host: String,
    pub(crate) region: String,
    creds: AwsCredentialProvider,
    secrets: Vec<String>,
    display: String,
    /// What the retry policy saw on these requests (the store's own, shared).
    pub(crate) tally: std::sync::Arc<hbcp_store::retry::Tally>,
}

impl fmt::Debug for S3Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Parts")
            .field("bucket", &self.bucket_url)
            .finish_non_exhaustive()
    }
}

/// URI-encode as SigV4 wants it: everything but unreserved characters (and `/` in paths).
pub(crate) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of a time, in UTC: RFC 3339 (`2013-05-24T00:00:00Z`) without
/// its separators.
fn amz_dates(t: SystemTime) -> (String, String) {
    let stamp: String = humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    (stamp[..8].to_string(), stamp)
}

/// The `Authorization` header of a SigV4-signed request with an empty body.
#[allow(clippy::too_many_arguments)]
fn sigv4(
    key_id: &str,
    secret: &str,
    region: &str,
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(&str, String)],
    date: &str,
) -> String {
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    q.sort();
    let canonical_query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    h.sort();
    let canonical_headers: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let stamp = headers
        .iter()
        .find(|(k, _)| *k == "x-amz-date")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let canonical = format!(
        "{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{EMPTY_SHA256}"
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k = hmac(&k, region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let sig = hex(&hmac(&k, &to_sign));
    format!("AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={sig}")
}

/// Undo XML's escapes in a text node.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text of the first `<tag>` in `xml`.
pub(crate) fn field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let a = xml.find(&open)? + open.len();
    let b = xml[a..].find(&close)? + a;
    Some(unescape(&xml[a..b]))
}

/// The bodies of every `<tag>…</tag>` element.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(a) = rest.find(&open) {
        let after = &rest[a + open.len()..];
        let Some(b) = after.find(&close) else { break };
        out.push(&after[..b]);
        rest = &after[b + close.len()..];
    }
    out
}

/// `(upload id, initiated)` of the uploads of exactly `key` in a ListMultipartUploads page,
/// and the markers of the next page when it is truncated.
fn parse_uploads(xml: &str, key: &str) -> (Vec<(String, String)>, Option<(String, String)>) {
    let mut out = Vec::new();
    for u in elements(xml, "Upload") {
        if field(u, "Key").as_deref() == Some(key)
            && let Some(id) = field(u, "UploadId")
        {
            out.push((id, field(u, "Initiated").unwrap_or_default()));
        }
    }
    let next = (field(xml, "IsTruncated").as_deref() == Some("true"))
        .then(|| {
            Some((
                field(xml, "NextKeyMarker")?,
                field(xml, "NextUploadIdMarker")?,
            ))
        })
        .flatten();
    (out, next)
}

/// `(part number, size, etag)` of a ListParts page, and the next part-number marker.
fn parse_parts(xml: &str) -> (Vec<(u32, u64, String)>, Option<String>) {
    let mut out = Vec::new();
    for p in elements(xml, "Part") {
        if let (Some(n), Some(size), Some(etag)) =
            (field(p, "PartNumber"), field(p, "Size"), field(p, "ETag"))
            && let (Ok(n), Ok(size)) = (n.trim().parse(), size.trim().parse())
        {
            out.push((n, size, etag));
        }
    }
    let next = (field(xml, "IsTruncated").as_deref() == Some("true"))
        .then(|| field(xml, "NextPartNumberMarker"))
        .flatten();
    (out, next)
}

/// Which parts of a listed upload fit a file of `size` bytes cut into parts of `part_size`:
/// the ETag of each part whose number and size are the plan's.
fn fitting(parts: &[(u32, u64, String)], size: u64, part_size: u64) -> Vec<Option<String>> {
    let n = size.div_ceil(part_size.max(1)).max(1) as usize;
    let mut etags = vec![None; n];
    for (number, len, etag) in parts {
        let Some(i) = (*number as usize).checked_sub(1) else {
            continue;
        };
        if i >= n {
            continue;
        }
        let want = part_size.min(size - i as u64 * part_size);
        if *len == want {
            etags[i] = Some(etag.clone());
        }
    }
    etags
}

impl S3Parts {
    /// `endpoint`: `AWS_ENDPOINT_URL` when set (path-style requests), else AWS in `region`.
    pub(crate) fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        creds: AwsCredentialProvider,
        secrets: Vec<String>,
        display: String,
        allow_http: bool,
    ) -> Result<Self> {
        let base = match endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        let (scheme_less, host) = match base.split_once("://") {
            Some((_, rest)) => (rest, rest.split('/').next().unwrap_or("").to_string()),
            None => (base.as_str(), String::new()),
        };
        let base_path = scheme_less
            .find('/')
            .map(|i| &scheme_less[i..])
            .unwrap_or("")
            .to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .https_only(!allow_http)
            .build()
            .map_err(|e| Error::Remote {
                what: "http client".into(),
                message: e.to_string(),
                status: None,
                retryable: false,
            })?;
        Ok(S3Parts {
            client,
            base: base.clone(),
            bucket: bucket.to_string(),
            bucket_url: format!("{base}/{}", uri_encode(bucket, false)),
            bucket_path: format!("{base_path}/{}", uri_encode(bucket, false)),
            host,
            region: region.to_string(),
            creds,
            secrets,
            display,
            tally: Default::default(),
        })
    }

    pub(crate) fn fail(&self, what: &str, key: &str, status: Option<u16>, msg: &str) -> Error {
        let refs: Vec<&str> = self.secrets.iter().map(|s| s.as_str()).collect();
        Error::Remote {
            what: format!("{what} {}/{key}", self.display.trim_end_matches('/')),
            message: redact_text(msg, &refs),
            status,
            retryable: status.is_none_or(hbcp_store::retry::status_may_pass),
        }
    }

    /// A signed GET of `object` (empty for the bucket itself) with `query`; the body of a 2xx.
    /// Errors name `key`.
    async fn get(
        &self,
        what: &str,
        key: &str,
        object: &str,
        query: &[(&str, &str)],
    ) -> Result<String> {
        self.request(what, key, reqwest::Method::GET, object, query, vec![])
            .await
    }

    /// A signed request without a body: `method` on `object` (empty for the bucket itself)
    /// with `query` and the signed `extra` headers; the body of a 2xx. Errors name `key`.
    /// Sent under the retry policy, signed afresh each try.
    pub(crate) async fn request(
        &self,
        what: &str,
        key: &str,
        method: reqwest::Method,
        object: &str,
        query: &[(&str, &str)],
        extra: Vec<(&'static str, String)>,
    ) -> Result<String> {
        crate::policy::retried(&self.tally, || {
            self.request_once(what, key, method.clone(), object, query, extra.clone())
        })
        .await
    }

    /// One try of [`S3Parts::request`].
    async fn request_once(
        &self,
        what: &str,
        key: &str,
        method: reqwest::Method,
        object: &str,
        query: &[(&str, &str)],
        extra: Vec<(&'static str, String)>,
    ) -> Result<String> {
        let method_has_body = matches!(method, reqwest::Method::PUT | reqwest::Method::POST);
        let cred = self
            .creds
            .get_credential()
            .await
            .map_err(|e| self.fail(what, key, None, &format!("credential: {e}")))?;
        let (date, stamp) = amz_dates(SystemTime::now());
        let mut path = self.bucket_path.clone();
        let mut url = self.bucket_url.clone();
        if !object.is_empty() {
            let enc = uri_encode(object, true);
            path = format!("{path}/{enc}");
            url = format!("{url}/{enc}");
        }
        let q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut headers = vec![
            ("host", self.host.clone()),
            ("x-amz-content-sha256", EMPTY_SHA256.to_string()),
            ("x-amz-date", stamp),
        ];
        if let Some(t) = &cred.token {
            headers.push(("x-amz-security-token", t.clone()));
        }
        headers.extend(extra);
        let authz = sigv4(
            &cred.key_id,
            &cred.secret_key,
            &self.region,
            method.as_str(),
            &path,
            &q,
            &headers,
            &date,
        );
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    uri_encode(k, false)
                } else {
                    format!("{}={}", uri_encode(k, false), uri_encode(v, false))
                }
            })
            .collect();
        if !qs.is_empty() {
            url = format!("{url}?{}", qs.join("&"));
        }
        let mut req = self
            .client
            .request(method, &url)
            .header("authorization", authz);
        for (k, v) in &headers {
            if *k != "host" {
                req = req.header(*k, v);
            }
        }
        if method_has_body {
            req = req.body(Vec::new());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.fail(what, key, None, &e.to_string()))?;
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-amz-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .text()
            .await
            .map_err(|e| self.fail(what, key, Some(status), &e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let code = field(&body, "Code").unwrap_or_default();
        tracing::debug!(target: "hbcp::s3", %status, %code, %request_id, "{what} {key}");
        Err(hbcp_store::retry::asked_to_wait(
            self.fail(
                what,
                key,
                Some(status),
                &format!("HTTP {status} {code} (x-amz-request-id {request_id})"),
            ),
            retry_after.as_deref(),
        ))
    }

    /// The open multipart upload of `key` (full key in the bucket) whose parts fit a file of
    /// `size` bytes cut into `part_size` parts, with the most such parts; `None` if there is none.
    pub(crate) async fn find(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
    ) -> Result<Option<Resumable>> {
        let mut uploads = Vec::new();
        let mut marker: Option<(String, String)> = None;
        for _ in 0..100 {
            let mut q = vec![("uploads", ""), ("prefix", key)];
            if let Some((k, u)) = &marker {
                q.push(("key-marker", k));
                q.push(("upload-id-marker", u));
            }
            let body = self.get("list uploads of", key, "", &q).await?;
            let (mut page, next) = parse_uploads(&body, key);
            uploads.append(&mut page);
            match next {
                Some(n) => marker = Some(n),
                None => break,
            }
        }
        // Newest first: a later attempt of the job wins a tie.
        uploads.sort_by(|a, b| b.1.cmp(&a.1));
        let mut best: Option<Resumable> = None;
        let mut best_n = 0;
        for (id, _) in uploads.into_iter().take(8) {
            let mut parts = Vec::new();
            let mut marker: Option<String> = None;
            for _ in 0..20 {
                let mut q = vec![("uploadId", id.as_str())];
                if let Some(m) = &marker {
                    q.push(("part-number-marker", m));
                }
                let body = match self.get("list parts of", key, key, &q).await {
                    Ok(b) => b,
                    // Completed or aborted since it was listed.
                    Err(Error::Remote {
                        status: Some(404), ..
                    }) => break,
                    Err(e) => return Err(e),
                };
                let (mut page, next) = parse_parts(&body);
                parts.append(&mut page);
                match next {
                    Some(n) => marker = Some(n),
                    None => break,
                }
            }
            let etags = fitting(&parts, size, part_size);
            let n = etags.iter().filter(|e| e.is_some()).count();
            if n > best_n {
                best_n = n;
                best = Some(Resumable {
                    upload_id: id,
                    etags,
                });
            }
        }
        match &best {
            Some(r) => tracing::debug!(
                target: "hbcp::s3",
                "{key}: continuing upload {} with {best_n} of {} parts already sent",
                r.upload_id,
                r.etags.len()
            ),
            None => tracing::debug!(target: "hbcp::s3", "{key}: no open upload to continue"),
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_example_of_the_aws_documentation() {
        // The published "GET Bucket (List Objects)" example of SigV4 header authentication.
        let headers = vec![
            ("host", "examplebucket.s3.amazonaws.com".to_string()),
            ("x-amz-content-sha256", EMPTY_SHA256.to_string()),
            ("x-amz-date", "20130524T000000Z".to_string()),
        ];
        let q = vec![
            ("max-keys".to_string(), "2".to_string()),
            ("prefix".to_string(), "J".to_string()),
        ];
        let a = sigv4(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "GET",
            "/",
            &q,
            &headers,
            "20130524",
        );
        assert_eq!(
            a,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24
        assert_eq!(amz_dates(t), ("20130524".into(), "20130524T000000Z".into()));
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(amz_dates(t).1, "20000229T010101Z");
    }

    #[test]
    fn parses_uploads_of_exactly_the_key_and_the_next_page() {
        let xml = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>\
            <NextKeyMarker>a/b%2Cc</NextKeyMarker><NextUploadIdMarker>u3</NextUploadIdMarker>\
            <Upload><Key>a/b%2Cc</Key><UploadId>u1</UploadId><Initiated>2026-01-01T00:00:00Z</Initiated></Upload>\
            <Upload><Key>a/b%2Cc.tmp</Key><UploadId>u2</UploadId></Upload>\
            <Upload><Key>a/b%2Cc</Key><UploadId>u&amp;3</UploadId></Upload></ListMultipartUploadsResult>";
        let (ups, next) = parse_uploads(xml, "a/b%2Cc");
        assert_eq!(
            ups,
            vec![
                ("u1".to_string(), "2026-01-01T00:00:00Z".to_string()),
                ("u&3".to_string(), String::new())
            ]
        );
        assert_eq!(next, Some(("a/b%2Cc".into(), "u3".into())));
    }

    #[test]
    fn only_parts_of_the_planned_sizes_fit() {
        let xml = "<ListPartsResult><IsTruncated>false</IsTruncated>\
            <Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag><Size>10</Size></Part>\
            <Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag><Size>9</Size></Part>\
            <Part><PartNumber>3</PartNumber><ETag>\"e3\"</ETag><Size>5</Size></Part>\
            <Part><PartNumber>4</PartNumber><ETag>\"e4\"</ETag><Size>5</Size></Part>\
            </ListPartsResult>";
        let (parts, next) = parse_parts(xml);
        assert_eq!(next, None);
        assert_eq!(parts[0], (1, 10, "\"e1\"".to_string()));
        // 25 bytes in parts of 10: 10, 10, 5. Part 2 is short, part 4 is beyond the file.
        assert_eq!(
            fitting(&parts, 25, 10),
            vec![Some("\"e1\"".into()), None, Some("\"e3\"".into())]
        );
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("a b/%2C=ü", true), "a%20b/%252C%3D%C3%BC");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
