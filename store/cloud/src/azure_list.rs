//! List Blobs with `include=metadata`, straight on the Blob REST API.
//!
//! object_store's Azure listing drops each blob's metadata, so telling HDInsight's folder
//! markers (0-byte blobs with `hdi_isfolder=true`) from empty files took one HEAD per 0-byte
//! blob: a root of a million empty files was a million extra requests. Asking the listing for
//! the metadata answers it in the page itself. ADLS Gen2 directories (`ResourceType`
//! `directory`, on accounts with a hierarchical namespace) are folders too.
//!
//! Names come back byte-exact: XML entities are resolved, and a name the service sent
//! percent-encoded (`<Name Encoded="true">`, for characters XML cannot carry) is decoded.

use std::time::SystemTime;

use hbcp_store::Result;
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::azure_blocks::Blocks;

/// One blob of a listing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedBlob {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) etag: Option<String>,
    pub(crate) modified: Option<SystemTime>,
    /// An HDInsight folder marker (`hdi_isfolder=true`) or an ADLS Gen2 directory.
    pub(crate) folder: bool,
    /// A page blob (`BlobType` `PageBlob`): WASB's WALs, in hadoop-azure's page format.
    pub(crate) page: bool,
    /// The blob's `Content-MD5` property: computed by the service over what a Put Blob stored
    /// (or set by the writer of a Put Block List); `None` when absent or not 16 bytes.
    pub(crate) md5: Option<[u8; 16]>,
}

/// One page of List Blobs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ListPage {
    pub(crate) blobs: Vec<ListedBlob>,
    /// Common prefixes of a delimited listing, exactly as the service sent them (each ends in
    /// the delimiter: `hbase/data/`, and for a name holding `//`, `hbase/data//`).
    pub(crate) prefixes: Vec<String>,
    /// The marker of the next page, if there is one.
    pub(crate) next: Option<String>,
}

impl Blocks {
    /// One page of the container's blobs under `prefix` (a full blob-name prefix), with their
    /// metadata; `delimited` groups names at the next `/` into prefixes.
    pub(crate) async fn list_page(
        &self,
        prefix: Option<&str>,
        delimited: bool,
        marker: Option<&str>,
        max_results: Option<usize>,
    ) -> Result<ListPage> {
        let max = max_results.map(|m| m.to_string());
        let mut query: Vec<(&str, &str)> = vec![
            ("restype", "container"),
            ("comp", "list"),
            ("include", "metadata"),
        ];
        if let Some(p) = prefix {
            query.push(("prefix", p));
        }
        if delimited {
            query.push(("delimiter", "/"));
        }
        if let Some(m) = marker {
            query.push(("marker", m));
        }
        if let Some(m) = &max {
            query.push(("maxresults", m));
        }
        let body = self
            .send_container("list", reqwest::Method::GET, &query)
            .await?;
        parse_list(&body).map_err(|why| hbcp_store::Error::Remote {
            what: format!("list {}", self.display_url()),
            message: format!("the service's List Blobs answer is not understood: {why}"),
            status: None,
            retryable: true,
        })
    }
}

/// Parse a List Blobs answer.
pub(crate) fn parse_list(xml: &str) -> std::result::Result<ListPage, String> {
    let mut reader = Reader::from_str(xml);
    let mut page = ListPage::default();
    // The open elements, outermost first.
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut encoded = false;
    let mut blob: Option<ListedBlob> = None;
    let mut prefix: Option<String> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                text.clear();
                if name == "Name" {
                    encoded = e
                        .try_get_attribute("Encoded")
                        .ok()
                        .flatten()
                        .is_some_and(|a| a.value.as_ref() == b"true");
                }
                let parent = path.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (Some("Blobs"), "Blob") => {
                        blob = Some(ListedBlob {
                            name: String::new(),
                            size: 0,
                            etag: None,
                            modified: None,
                            folder: false,
                            page: false,
                            md5: None,
                        })
                    }
                    (Some("Blobs"), "BlobPrefix") => prefix = Some(String::new()),
                    _ => {}
                }
                path.push(name);
            }
            Event::Empty(_) => {}
            Event::Text(t) => {
                let s = t.decode().map_err(|e| e.to_string())?;
                text.push_str(&s);
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| e.to_string())?;
                text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    text.push(match name.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(format!("unknown entity &{other};")),
                    });
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let parent = path.last().map(String::as_str);
                let value = std::mem::take(&mut text);
                match (parent, name.as_str()) {
                    (Some("Blob"), "Name") => {
                        if let Some(b) = blob.as_mut() {
                            b.name = if encoded {
                                percent_decode(&value)?
                            } else {
                                value
                            };
                        }
                    }
                    (Some("BlobPrefix"), "Name") => {
                        let v = if encoded {
                            percent_decode(&value)?
                        } else {
                            value
                        };
                        prefix = Some(v);
                    }
                    (Some("Properties"), field) => {
                        if let Some(b) = blob.as_mut() {
                            match field {
                                "Content-Length" => {
                                    b.size = value.trim().parse().map_err(|_| {
                                        format!("Content-Length {value:?} of {:?}", b.name)
                                    })?
                                }
                                "Etag" => b.etag = Some(value.trim().to_string()),
                                "Last-Modified" => {
                                    b.modified = httpdate::parse_http_date(value.trim()).ok()
                                }
                                "ResourceType" if value.trim() == "directory" => b.folder = true,
                                "BlobType" if value.trim() == "PageBlob" => b.page = true,
                                "Content-MD5" => b.md5 = md5_of(value.trim()),
                                _ => {}
                            }
                        }
                    }
                    (Some("Metadata"), key) if key.eq_ignore_ascii_case("hdi_isfolder") => {
                        if let Some(b) = blob.as_mut() {
                            if value.trim() == "true" {
                                b.folder = true;
                            }
                        }
                    }
                    (Some("Blobs"), "Blob") => {
                        if let Some(b) = blob.take() {
                            page.blobs.push(b);
                        }
                    }
                    (Some("Blobs"), "BlobPrefix") => {
                        if let Some(p) = prefix.take() {
                            page.prefixes.push(p);
                        }
                    }
                    (Some("EnumerationResults"), "NextMarker") if !value.is_empty() => {
                        page.next = Some(value);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(format!("the answer ends inside <{}>", path.join("><")));
    }
    Ok(page)
}

/// A base64 `Content-MD5` as 16 bytes; `None` when empty or not an MD5.
pub(crate) fn md5_of(b64: &str) -> Option<[u8; 16]> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    raw.try_into().ok()
}

/// Decode `%XX` escapes (a name the service marked `Encoded="true"`).
fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in encoded name {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("encoded name {s:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="c">
  <Prefix>hbase/</Prefix><MaxResults>3</MaxResults><Delimiter>/</Delimiter>
  <Blobs>
    <Blob><Name>hbase/WALs/rs1%2C16020%2C1 &amp; &lt;x&gt;</Name>
      <Properties><Last-Modified>Tue, 01 Dec 2026 14:00:00 GMT</Last-Modified>
        <Etag>0x8DB1</Etag><Content-Length>42</Content-Length><BlobType>BlockBlob</BlobType>
        <Content-MD5 />
      </Properties><Metadata /></Blob>
    <Blob><Name>hbase/data/empty-dir</Name>
      <Properties><Content-Length>0</Content-Length><Etag>"0x8DB2"</Etag></Properties>
      <Metadata><hdi_isfolder>true</hdi_isfolder><other>x</other></Metadata></Blob>
    <Blob><Name>hbase/empty-file</Name>
      <Properties><Content-Length>0</Content-Length><BlobType>PageBlob</BlobType>
        <Content-MD5>1B2M2Y8AsgTpgAmY7PhCfg==</Content-MD5></Properties>
      <Metadata><hdi_isfolder>false</hdi_isfolder></Metadata></Blob>
    <Blob><Name Encoded="true">hbase/%EF%BF%BEodd</Name>
      <Properties><Content-Length>1</Content-Length><ResourceType>file</ResourceType>
        <Content-MD5>AAEC</Content-MD5></Properties></Blob>
    <Blob><Name>hbase/gen2-dir</Name>
      <Properties><Content-Length>0</Content-Length><ResourceType>directory</ResourceType></Properties></Blob>
    <BlobPrefix><Name>hbase/data/</Name></BlobPrefix>
  </Blobs>
  <NextMarker>2!72!MDAwMDE</NextMarker>
</EnumerationResults>"#;

    #[test]
    fn a_page_gives_names_byte_exact_sizes_markers_prefixes_and_the_next_marker() {
        let p = parse_list(PAGE).unwrap();
        let names: Vec<&str> = p.blobs.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "hbase/WALs/rs1%2C16020%2C1 & <x>",
                "hbase/data/empty-dir",
                "hbase/empty-file",
                "hbase/\u{fffe}odd",
                "hbase/gen2-dir",
            ]
        );
        assert_eq!(p.blobs[0].size, 42);
        assert_eq!(p.blobs[0].etag.as_deref(), Some("0x8DB1"));
        assert_eq!(
            p.blobs[0].modified,
            Some(httpdate::parse_http_date("Tue, 01 Dec 2026 14:00:00 GMT").unwrap())
        );
        let folders: Vec<bool> = p.blobs.iter().map(|b| b.folder).collect();
        assert_eq!(folders, [false, true, false, false, true]);
        let pages: Vec<bool> = p.blobs.iter().map(|b| b.page).collect();
        assert_eq!(
            pages,
            [false, false, true, false, false],
            "BlobType PageBlob"
        );
        // The service's MD5 where the page gives one of 16 bytes (here the empty file's).
        let md5s: Vec<Option<String>> = p
            .blobs
            .iter()
            .map(|b| {
                b.md5
                    .map(|m| m.iter().map(|x| format!("{x:02x}")).collect())
            })
            .collect();
        assert_eq!(
            md5s,
            [
                None,
                None,
                Some("d41d8cd98f00b204e9800998ecf8427e".into()),
                None,
                None
            ]
        );
        assert_eq!(p.prefixes, ["hbase/data/"]);
        assert_eq!(p.next.as_deref(), Some("2!72!MDAwMDE"));
    }

    #[test]
    fn a_last_page_has_no_marker_and_a_broken_answer_is_an_error() {
        let last = "<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>";
        assert_eq!(parse_list(last).unwrap(), ListPage::default());
        let e = parse_list("<EnumerationResults><Blobs><Blob><Name>x").unwrap_err();
        assert!(e.contains("ends inside"), "{e}");
        let e = parse_list(
            "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties>\
             <Content-Length>many</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        )
        .unwrap_err();
        assert!(e.contains("Content-Length") && e.contains("\"x\""), "{e}");
    }
}
