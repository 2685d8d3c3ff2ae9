//! Server-side copies between S3 buckets of one endpoint (`--s2s`): CopyObject, signed with
//! the target's credential (which must be allowed to read the source bucket), one request
//! per object of at most [`COPY_OBJECT_MAX`] bytes.
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

/// The copy source of `object` (its full key in the bucket).
pub(crate) fn copy_source(p: &S3Parts, object: &str) -> CopySource {
    CopySource {
        service: service(p),
        bucket: p.bucket.clone(),
        object: object.to_string(),
        url: None,
        auth: None,
    }
}

/// CopyObject of `src` to `object`; `key` names the file in errors.
pub(crate) async fn copy_from(
    p: &S3Parts,
    key: &str,
    object: &str,
    src: &CopySource,
) -> Result<()> {
    if src.service != service(p) {
        return Err(Error::Unsupported {
            what: format!("server-side copy to {key}"),
            hint: "the source is another S3 endpoint or region, whose credential the target \
                   cannot use; the file is streamed instead"
                .into(),
        });
    }
    let source = format!(
        "/{}/{}",
        uri_encode(&src.bucket, false),
        uri_encode(&src.object, true)
    );
    let body = p
        .request(
            "server-side copy to",
            key,
            reqwest::Method::PUT,
            object,
            &[],
            vec![("x-amz-copy-source", source)],
        )
        .await?;
    // CopyObject may answer 200 and put its error in the body.
    if body.contains("<Error>") {
        let code = field(&body, "Code").unwrap_or_default();
        return Err(p.fail(
            "server-side copy to",
            key,
            None,
            &format!("{code} in a 200 answer"),
        ));
    }
    Ok(())
}
