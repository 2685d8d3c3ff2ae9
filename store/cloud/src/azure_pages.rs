//! Page blobs in hadoop-azure's format, read as Hadoop reads them.
//!
//! HBase on WASB keeps its WALs (the folders of `fs.azure.page.blob.dir`) as page blobs that
//! hadoop-azure writes in its own format: 512-byte pages, each opening with a 2-byte big-endian
//! count of the data bytes that follow (at most 510). The blob is preallocated, so its size is
//! not the file's: the file is the data of the pages written from offset 0 (the first page
//! range), and every page but the last is full (hadoop-azure rewrites a partial last page when
//! it appends). Its length is `(pages - 1) × 510` plus the last page's count
//! (`PageBlobInputStream.getPageBlobDataSize`). A page in the middle that is not full is not
//! Hadoop's format and is refused rather than guessed at.

use std::ops::Range;

use bytes::Bytes;

use crate::azure_blocks::Blocks;
use hbcp_store::{Error, Result};

/// Bytes of a page.
pub(crate) const PAGE: u64 = 512;
/// Bytes of the count that opens each page.
const HEADER: u64 = 2;
/// Most data bytes in a page.
pub(crate) const DATA: u64 = PAGE - HEADER;

/// What one HEAD (Get Blob Properties) says of a blob.
#[derive(Debug)]
pub(crate) struct BlobHead {
    pub(crate) size: u64,
    pub(crate) etag: Option<String>,
    pub(crate) modified: Option<std::time::SystemTime>,
    /// An HDInsight folder marker (`x-ms-meta-hdi_isfolder: true`).
    pub(crate) folder: bool,
    /// A page blob (`x-ms-blob-type: PageBlob`): hadoop-azure's WAL format.
    pub(crate) page: bool,
}

impl Blocks {
    /// Size, ETag, time, folder mark and blob type of `blob`, all from one HEAD; `None` when
    /// it does not exist.
    pub(crate) async fn head_blob(&self, blob: &str) -> Result<Option<BlobHead>> {
        Ok(self.properties(blob).await?.map(|h| {
            let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
            BlobHead {
                size: get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                etag: get("etag").map(str::to_string),
                modified: get("last-modified").and_then(|v| httpdate::parse_http_date(v).ok()),
                folder: get("x-ms-meta-hdi_isfolder").is_some_and(|v| v == "true"),
                page: get("x-ms-blob-type").is_some_and(|t| t.eq_ignore_ascii_case("PageBlob")),
            }
        }))
    }

    /// The raw bytes written from offset 0 of a page blob: the end of its first page range
    /// (Get Page Ranges), 0 when no page was written.
    pub(crate) async fn written_pages(&self, blob: &str) -> Result<u64> {
        let xml = self
            .send(
                "page ranges of",
                reqwest::Method::GET,
                blob,
                &[("comp", "pagelist")],
                vec![],
                vec![],
                Bytes::new(),
            )
            .await?;
        first_range_end(&xml).map_err(|why| Error::Remote {
            what: format!("page ranges of {}/{blob}", self.display_url()),
            message: why,
            status: None,
            retryable: false,
        })
    }
}

/// The end (exclusive) of the pages written from offset 0, from a Get Page Ranges answer: the
/// first range, which must start at 0, and any range that continues it; 0 for no range.
pub(crate) fn first_range_end(xml: &str) -> std::result::Result<u64, String> {
    let num = |tag: &str, from: usize| -> Option<(u64, usize)> {
        let open = format!("<{tag}>");
        let i = xml[from..].find(&open)? + from + open.len();
        let j = xml[i..].find('<')? + i;
        Some((xml[i..j].trim().parse().ok()?, j))
    };
    let mut at = 0;
    let mut end: Option<u64> = None;
    while let Some((start, next)) = num("Start", at) {
        let (last, next) = num("End", next).ok_or("a page range without its end")?;
        match end {
            None if start != 0 => {
                return Err(format!(
                    "the first written page starts at byte {start}, not 0: not a page blob hadoop-azure wrote"
                ));
            }
            Some(e) if start != e => break,
            _ => {}
        }
        if (last + 1) % PAGE != 0 {
            return Err(format!(
                "a page range ending at byte {last}: not whole pages"
            ));
        }
        end = Some(last + 1);
        at = next;
    }
    Ok(end.unwrap_or(0))
}

/// The file's length from the raw bytes written and the last written page.
pub(crate) fn file_len(written: u64, last_page: &[u8]) -> std::result::Result<u64, String> {
    if written == 0 {
        return Ok(0);
    }
    let count = page_count(last_page, written / PAGE - 1)?;
    Ok((written / PAGE - 1) * DATA + count)
}

fn page_count(page: &[u8], index: u64) -> std::result::Result<u64, String> {
    let c = page
        .get(..2)
        .map(|b| u64::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| format!("page {index} is cut short"))?;
    if c > DATA {
        return Err(format!(
            "page {index} says it holds {c} bytes (at most {DATA}): not hadoop-azure's page format"
        ));
    }
    Ok(c)
}

/// The raw pages that hold `range` of the file.
pub(crate) fn raw_range(range: &Range<u64>) -> Range<u64> {
    (range.start / DATA) * PAGE..range.end.div_ceil(DATA) * PAGE
}

/// `range` of a file of `len` bytes, from `raw`, the pages [`raw_range`] names.
pub(crate) fn decode(
    raw: &[u8],
    range: &Range<u64>,
    len: u64,
) -> std::result::Result<Vec<u8>, String> {
    let first = range.start / DATA;
    let last_of_file = len.div_ceil(DATA).saturating_sub(1);
    let mut out = Vec::with_capacity((range.end - range.start) as usize);
    for (i, page) in raw.chunks(PAGE as usize).enumerate() {
        let index = first + i as u64;
        let count = page_count(page, index)?;
        let want = if index == last_of_file {
            len - index * DATA
        } else {
            DATA
        };
        if count != want || page.len() < (HEADER + count) as usize {
            return Err(format!(
                "page {index} holds {count} bytes where the file's length says {want}: the blob changed, or is not hadoop-azure's page format"
            ));
        }
        let data = &page[HEADER as usize..(HEADER + count) as usize];
        let at = index * DATA;
        let from = range.start.max(at) - at;
        let to = range.end.min(at + count) - at;
        if from < to {
            out.extend_from_slice(&data[from as usize..to as usize]);
        }
    }
    if out.len() as u64 != range.end - range.start {
        return Err(format!(
            "the pages hold {} of the {} bytes asked for",
            out.len(),
            range.end - range.start
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file written as hadoop-azure writes it: full pages, then a partial one.
    fn pages(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in data.chunks(DATA as usize) {
            out.extend_from_slice(&(c.len() as u16).to_be_bytes());
            out.extend_from_slice(c);
            out.resize(out.len().div_ceil(PAGE as usize) * PAGE as usize, 0);
        }
        out
    }

    #[test]
    fn every_range_of_a_paged_file_decodes_to_the_file() {
        for n in [1usize, 509, 510, 511, 1020, 1021, 5000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let raw = pages(&data);
            let last = &raw[raw.len() - PAGE as usize..];
            let len = file_len(raw.len() as u64, last).unwrap();
            assert_eq!(len, n as u64);
            for (a, b) in [
                (0, n),
                (0, 1),
                (n - 1, n),
                (n / 3, n / 2 + 1),
                (509.min(n - 1), n),
            ] {
                let r = a as u64..b as u64;
                let rr = raw_range(&r);
                let got = decode(&raw[rr.start as usize..rr.end as usize], &r, len).unwrap();
                assert_eq!(got, &data[a..b], "{n}: {r:?}");
            }
        }
    }

    #[test]
    fn pages_not_in_hadoops_format_are_refused() {
        let data = vec![1u8; 1500];
        let mut raw = pages(&data);
        // A short page in the middle.
        raw[512..514].copy_from_slice(&100u16.to_be_bytes());
        assert!(decode(&raw, &(0..1500), 1500).is_err());
        raw[512..514].copy_from_slice(&600u16.to_be_bytes());
        assert!(decode(&raw, &(0..1500), 1500).is_err());
        assert!(file_len(512, &[0x03, 0x00]).is_err());
        assert_eq!(first_range_end("<PageList></PageList>").unwrap(), 0);
        assert_eq!(
            first_range_end(
                "<PageList><PageRange><Start>0</Start><End>1023</End></PageRange></PageList>"
            )
            .unwrap(),
            1024
        );
        assert!(
            first_range_end(
                "<PageList><PageRange><Start>512</Start><End>1023</End></PageRange></PageList>"
            )
            .is_err()
        );
        // Ranges that continue each other are one; a gap ends the file.
        let two = "<PageList><PageRange><Start>0</Start><End>511</End></PageRange><PageRange><Start>512</Start><End>1023</End></PageRange><PageRange><Start>4096</Start><End>4607</End></PageRange></PageList>";
        assert_eq!(first_range_end(two).unwrap(), 1024);
    }
}
