//! Secret redaction: the one place that turns a URL or a message into something safe to print.
//!
//! SAS query strings, `sig=`, account keys and bearer tokens are replaced with `REDACTED`
//! before any text leaves the storage layer.

/// Query parameters whose values are secrets (SAS and similar).
const SECRET_PARAMS: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "skoid",
    "sktid",
    "token",
    "access_token",
    "code",
    "client_secret",
    "accountkey",
    "sharedaccesssignature",
];

/// Redact secrets in a URL: userinfo passwords and secret query parameters.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(q) = query {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                    format!("{k}=REDACTED")
                }
                _ => kv.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

fn redact_userinfo(base: &str) -> String {
    if let Some((scheme, rest)) = base.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((user, host)) = authority.rsplit_once('@') {
            if let Some((name, _pw)) = user.split_once(':') {
                return format!(
                    "{scheme}://{name}:REDACTED@{host}{}",
                    &rest[authority_end..]
                );
            }
        }
    }
    base.to_string()
}

/// Remove known secret values from free text (an error message from a service, say).
/// `secrets` are the literal values in use (keys, SAS tokens); each is replaced wherever it
/// appears, and so are `sig=` parameters and `Authorization` header values.
pub fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s, "REDACTED");
        }
    }
    // sig=... up to the next & or whitespace or quote.
    let mut result = String::with_capacity(out.len());
    let lower = out.to_ascii_lowercase();
    let mut i = 0;
    while i < out.len() {
        let rest = &lower[i..];
        let hit = SECRET_PARAMS.iter().find(|p| {
            rest.starts_with(&format!("{p}="))
                && (i == 0 || matches!(out.as_bytes()[i - 1], b'?' | b'&' | b' ' | b'"' | b'\''))
        });
        if let Some(p) = hit {
            result.push_str(&out[i..i + p.len() + 1]);
            result.push_str("REDACTED");
            i += p.len() + 1;
            while i < out.len() && !matches!(out.as_bytes()[i], b'&' | b' ' | b'"' | b'\'' | b'\n')
            {
                i += 1;
            }
            continue;
        }
        let ch = out[i..].chars().next().unwrap_or(' ');
        result.push(ch);
        i += ch.len_utf8();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_and_passwords_are_removed() {
        let r = redact_url("https://a.blob.core.windows.net/c?sv=1&sig=abc%2Fdef&se=2");
        assert_eq!(
            r,
            "https://a.blob.core.windows.net/c?sv=1&sig=REDACTED&se=2"
        );
        let r = redact_url("s3://user:pa55word@host/b");
        assert!(!r.contains("pa55word"));
    }

    #[test]
    fn free_text_loses_known_secrets_and_sig() {
        let t = redact_text(
            "GET https://x/c?sig=ZZZ&sp=r failed; key=MYKEYVALUE",
            &["MYKEYVALUE"],
        );
        assert!(!t.contains("ZZZ") && !t.contains("MYKEYVALUE"), "{t}");
    }
}
