//! Writing objects into fake-gcs-server (the GCS emulator that `scripts/gcs.sh` starts) through
//! its JSON upload API, and reading an object's metadata resource, independently of hbcp: tests
//! of GCS as a source put their data in this way, and tests of GCS as a target look at what hbcp
//! wrote (custom metadata, whether a part object is left).
//! Plain HTTP/1.1 over a `TcpStream`: the emulator listens on 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

/// Send one request to the emulator at `base` (`http://127.0.0.1:PORT`); the status and body.
fn request(
    base: &str,
    method: &str,
    path_query: &str,
    data: &[u8],
) -> Result<(u16, String), String> {
    request_with(base, method, path_query, &[], data)
}

/// [`request`] with more headers (`name: value` lines, each without its line end).
pub(crate) fn request_with(
    base: &str,
    method: &str,
    path_query: &str,
    headers: &[String],
    data: &[u8],
) -> Result<(u16, String), String> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base}: expected http://HOST:PORT"))?
        .trim_end_matches('/');
    let mut conn = TcpStream::connect(hostport).map_err(|e| format!("connect {hostport}: {e}"))?;
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let head = format!(
        "{method} {path_query} HTTP/1.1\r\n\
         Host: {hostport}\r\nContent-Type: application/octet-stream\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    );
    conn.write_all(head.as_bytes())
        .and_then(|_| conn.write_all(data))
        .map_err(|e| format!("{method} {path_query}: {e}"))?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .map_err(|e| format!("{method} {path_query}: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path_query}: no HTTP answer"))?;
    let body = answer.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

/// Upload `data` as object `name` of `bucket` on the emulator at `base` (`http://127.0.0.1:PORT`).
pub fn upload(base: &str, bucket: &str, name: &str, data: &[u8]) -> Result<(), String> {
    let pq = format!(
        "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
        encode(name)
    );
    match request(base, "POST", &pq, data)? {
        (200, _) => Ok(()),
        (s, body) => Err(format!("upload {name}: HTTP {s}: {body}")),
    }
}

/// The JSON API resource (metadata) of object `name`, as the emulator answers it; `None` when
/// there is no such object.
pub fn resource(base: &str, bucket: &str, name: &str) -> Result<Option<String>, String> {
    match request(
        base,
        "GET",
        &format!("/storage/v1/b/{bucket}/o/{}", encode(name)),
        b"",
    )? {
        (200, body) => Ok(Some(body)),
        (404, _) => Ok(None),
        (s, body) => Err(format!("metadata of {name}: HTTP {s}: {body}")),
    }
}

/// Upload every file under `root` as `PREFIX/RELATIVE/PATH`, and each empty folder as the
/// `.hbcp-empty-dir` marker hbcp keeps for one on GCS.
pub fn upload_tree(base: &str, bucket: &str, prefix: &str, root: &Path) -> Result<(), String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Option<std::path::PathBuf>)>) {
        let mut n = 0;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()).collect())
            .unwrap_or_default();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            n += 1;
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.path().is_dir() {
                walk(&e.path(), &r, out);
            } else {
                out.push((r, Some(e.path())));
            }
        }
        if n == 0 && !rel.is_empty() {
            out.push((format!("{rel}/.hbcp-empty-dir"), None));
        }
    }
    let mut objects = Vec::new();
    walk(root, "", &mut objects);
    for (rel, file) in objects {
        let data = match file {
            Some(p) => std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?,
            None => Vec::new(),
        };
        upload(base, bucket, &format!("{prefix}/{rel}"), &data)?;
    }
    Ok(())
}

/// Percent-encode a query value: everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_keep_percent_signs_and_slashes_literal() {
        assert_eq!(super::encode("WALs/a%2Cb c"), "WALs%2Fa%252Cb%20c");
    }
}
