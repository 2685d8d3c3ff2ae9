//! The service's MD5 of each object, from the listing (issue 19): the verifier's `service` way
//! without a HEAD per file. Azure's List Blobs carries each blob's `Content-MD5`; S3's
//! ListObjectsV2 carries the ETag, which is the MD5 of the object's bytes for a single-part
//! PutObject stored without SSE-KMS or SSE-C (32 hex digits; a multipart ETag ends in `-N`, and
//! an encrypted object's ETag is no MD5 of its bytes, so it never equals the MD5 hbcp computed
//! from the source, and that file is read back). GCS's JSON API listing carries `md5Hash`,
//! GCS's own MD5 of what it stored (none for a composite object, which is read back).

use hbcp_store::{EntryKind, Md5Sink, Result, Store};
use object_store::ObjectStore;
use object_store::multipart::MultipartStore;

use crate::CloudStore;

/// An S3 ETag as the MD5 of the object's bytes: 32 hex digits, nothing else.
pub(crate) fn s3_etag_md5(etag: &str) -> Option<[u8; 16]> {
    let e = etag.trim_matches('"');
    if e.len() != 32 || !e.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&e[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl<S: ObjectStore + MultipartStore> CloudStore<S> {
    /// [`Store::list_service_md5`] for this store.
    pub(crate) fn listed_md5s(&self, prefix: &str, sink: &Md5Sink<'_>) -> Result<bool> {
        if let Some(az) = &self.azure {
            // One flat listing, page after page (each page up to 5,000 blobs).
            let top = match (self.prefix.is_empty(), prefix.is_empty()) {
                (true, true) => None,
                (true, false) => Some(prefix.to_string()),
                (false, true) => Some(format!("{}/", self.prefix)),
                (false, false) => Some(format!("{}/{prefix}", self.prefix)),
            };
            let mut marker: Option<String> = None;
            loop {
                let page = self.block(az.list_page(
                    top.as_deref(),
                    false,
                    marker.as_deref(),
                    self.list_page_size,
                ))?;
                for b in page.blobs {
                    // A page blob's file is shorter than the blob: its MD5 is not the file's.
                    let (Some(md5), false, false) = (b.md5, b.page, b.folder) else {
                        continue;
                    };
                    if let Some(rel) = self.rel(&b.name).filter(|r| r.starts_with(prefix)) {
                        sink(rel, b.size, md5)?;
                    }
                }
                match page.next {
                    Some(n) => marker = Some(n),
                    None => return Ok(true),
                }
            }
        }
        if let Some(g) = &self.gcs {
            let top = match (self.prefix.is_empty(), prefix.is_empty()) {
                (true, _) => prefix.to_string(),
                (false, true) => format!("{}/", self.prefix),
                (false, false) => format!("{}/{prefix}", self.prefix),
            };
            self.block(g.list_md5s(&top, &mut |name, size, md5| {
                match self.rel(name).filter(|r| r.starts_with(prefix)) {
                    Some(rel) => sink(rel, size, md5),
                    None => Ok(()),
                }
            }))?;
            return Ok(true);
        }
        if self.kind == "s3" {
            self.list(prefix, &|e| {
                if e.kind == EntryKind::File {
                    if let Some(md5) = e.version.as_deref().and_then(s3_etag_md5) {
                        sink(&e.key, e.size, md5)?;
                    }
                }
                Ok(())
            })?;
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::s3_etag_md5;

    #[test]
    fn only_a_single_part_etag_is_an_md5() {
        let m = s3_etag_md5("\"d41d8cd98f00b204e9800998ecf8427e\"").unwrap();
        assert_eq!(m[0], 0xd4);
        assert_eq!(m[15], 0x7e);
        assert_eq!(s3_etag_md5("d41d8cd98f00b204e9800998ecf8427e"), Some(m));
        // Multipart, short, not hex, not ASCII.
        assert_eq!(s3_etag_md5("d41d8cd98f00b204e9800998ecf8427e-2"), None);
        assert_eq!(s3_etag_md5("d41d8cd98f00b204e9800998ecf842"), None);
        assert_eq!(s3_etag_md5("z41d8cd98f00b204e9800998ecf8427e"), None);
        assert_eq!(s3_etag_md5("é41d8cd98f00b204e9800998ecf8427"), None);
    }
}
