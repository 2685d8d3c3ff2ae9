//! Server-side copies between S3 buckets of one endpoint (`--s2s`): CopyObject, signed with
//! the target's credential (which must be allowed to read the source bucket), one request
//! per object of at most [`COPY_OBJECT_MAX`] bytes; and UploadPartCopy, one range of the
//! source into one part of a multipart upload, for files the engine copies range by range.
//!
//! Both name the source version hbcp planned (`x-amz-copy-source-if-match`, the ETag listed),
//! so that S3 refuses (412) to copy a source changed since. moto 5 ignores that header (it
//! checks only `-if-none-match`, on CopyObject); the engine checks the source's version again
//! before it commits a file copied by ranges, which catches the change there too.
//!
//! S3 cannot be handed another endpoint's credential: a copy source on another endpoint or
//! region is refused here as unsupported, and the engine streams the file instead.

use hbcp_store::{CopySource, Error, Result};

use crate::s3_parts::{S3Parts, field, uri_encode};

/// The largest object CopyObject copies in one request (5 GiB); larger ones are streamed.
pub(crate) const COPY_OBJECT_MAX: u64 = 5 << 30;

/// The service name a copy source carries: the endpoint and region.
fn service(p: &S3Parts) -> String {
    format!("s3 {} {}", p.base, p.region)
}

/// The copy source of `object` (its full key in the bucket), at `version` (its ETag) if given.
pub(crate) fn copy_source(p: &S3Parts, object: &str, version: Option<&str>) -> CopySource {
    CopySource {
        service: service(p),
        bucket: p.bucket.clone(),
        object: object.to_string(),
        url: None,
        auth: None,
        version: version.map(str::to_string),
    }
}

/// The `x-amz-copy-source` header of `src`, with `x-amz-copy-source-if-match` when it names a
/// version; or [`Error::Unsupported`] when it lives on another endpoint or region.
fn source_headers(p: &S3Parts, key: &str, src: &CopySource) -> Result<Vec<(&'static str, String)>> {
    let mut h = vec![("x-amz-copy-source", source_header(p, key, src)?)];
    if let Some(v) = &src.version {
        h.push((
            "x-amz-copy-source-if-match",
            format!("\"{}\"", v.trim_matches('"')),
        ));
    }
    Ok(h)
}

/// The `x-amz-copy-source` value of `src`, or [`Error::Unsupported`] when it lives on another
/// endpoint or region.
fn source_header(p: &S3Parts, key: &str, src: &CopySource) -> Result<String> {
    if src.service != service(p) {
        return Err(Error::Unsupported {
            what: format!("server-side copy to {key}"),
            hint: "the source is another S3 endpoint or region, whose credential the target \
                   cannot use; the file is streamed instead"
                .into(),
        });
    }
    Ok(format!(
        "/{}/{}",
        uri_encode(&src.bucket, false),
        uri_encode(&src.object, true)
    ))
}

/// A copy's answer: CopyObject and UploadPartCopy may answer 200 and put their error in the
/// body. The body when it holds none.
fn checked(p: &S3Parts, key: &str, body: String) -> Result<String> {
    if body.contains("<Error>") {
        let code = field(&body, "Code").unwrap_or_default();
        return Err(p.fail(
            "server-side copy to",
            key,
            None,
            &format!("{code} in a 200 answer"),
        ));
    }
    Ok(body)
}

/// CopyObject of `src` to `object`; `key` names the file in errors. Returns the new object's
/// ETag, unquoted as a HEAD shows it.
pub(crate) async fn copy_from(
    p: &S3Parts,
    key: &str,
    object: &str,
    src: &CopySource,
) -> Result<Option<String>> {
    let headers = source_headers(p, key, src)?;
    let body = p
        .request(
            "server-side copy to",
            key,
            reqwest::Method::PUT,
            object,
            &[],
            headers,
        )
        .await?;
    let body = checked(p, key, body)?;
    Ok(crate::unquoted(field(&body, "ETag").as_deref()))
}

/// UploadPartCopy of `range` of `src` into part `index` (0-based) of the multipart upload
/// `upload_id` of `object`: the part's ETag, as CompleteMultipartUpload wants it.
pub(crate) async fn copy_part(
    p: &S3Parts,
    key: &str,
    object: &str,
    upload_id: &str,
    index: u32,
    src: &CopySource,
    range: std::ops::Range<u64>,
) -> Result<String> {
    let mut headers = source_headers(p, key, src)?;
    headers.push((
        "x-amz-copy-source-range",
        format!("bytes={}-{}", range.start, range.end - 1),
    ));
    let number = (index + 1).to_string();
    let body = p
        .request(
            "server-side copy of a part of",
            key,
            reqwest::Method::PUT,
            object,
            &[("partNumber", &number), ("uploadId", upload_id)],
            headers,
        )
        .await?;
    let body = checked(p, key, body)?;
    field(&body, "ETag").ok_or_else(|| {
        p.fail(
            "server-side copy of a part of",
            key,
            None,
            "no ETag in the UploadPartCopy answer",
        )
    })
}
