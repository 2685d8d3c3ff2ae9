//! Writing objects into fake-gcs-server (the GCS emulator that `scripts/gcs.sh` starts) through
//! its JSON upload API. The emulator does not take the XML API's object PUT that object_store
//! (and so hbcp) writes with, so tests of GCS as a source put their data in this way.
//! Plain HTTP/1.1 over a `TcpStream`: the emulator listens on 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

/// Upload `data` as object `name` of `bucket` on the emulator at `base` (`http://127.0.0.1:PORT`).
pub fn upload(base: &str, bucket: &str, name: &str, data: &[u8]) -> Result<(), String> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base}: expected http://HOST:PORT"))?
        .trim_end_matches('/');
    let mut conn = TcpStream::connect(hostport).map_err(|e| format!("connect {hostport}: {e}"))?;
    let head = format!(
        "POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name={} HTTP/1.1\r\n\
         Host: {hostport}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        encode(name),
        data.len()
    );
    conn.write_all(head.as_bytes())
        .and_then(|_| conn.write_all(data))
        .map_err(|e| format!("upload {name}: {e}"))?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .map_err(|e| format!("upload {name}: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    match answer.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!(
            "upload {name}: {}",
            answer.lines().next().unwrap_or("no answer")
        )),
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
