//! Secret redaction: the one place that turns a URL or a message into something safe to print.
//!
//! SAS query strings, `sig=`, account keys, `Authorization` header values and bearer tokens
//! are replaced with `REDACTED` before any text leaves the storage layer; so are the values of
//! the environment variables that hold secrets ([`env_secrets`]).

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

/// Environment variables whose values are secrets (keys, SAS tokens, client secrets, session
/// tokens): their values are redacted wherever they appear.
pub const SECRET_ENV: &[&str] = &[
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// The values of [`SECRET_ENV`] set in this process's environment, of at least 8 characters:
/// a shorter value (an emulator's `testing`) is no secret, and replacing it everywhere would
/// damage paths and words in what is printed (a resume line among them).
pub fn env_secrets() -> Vec<String> {
    SECRET_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| v.len() >= 8)
        .collect()
}

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
/// appears, and so are secret query parameters (`sig=`…), `Authorization` header values and
/// `Bearer` tokens.
pub fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        let s = s.trim();
        if s.len() >= 4 {
            out = out.replace(s, "REDACTED");
            // A SAS token given with its leading '?' or percent-encoded in a URL.
            let bare = s.trim_start_matches('?');
            if bare.len() >= 4 && bare != s {
                out = out.replace(bare, "REDACTED");
            }
        }
    }
    let out = redact_after(&out, &|rest, prev| {
        SECRET_PARAMS
            .iter()
            .find(|p| {
                rest.starts_with(*p)
                    && rest[p.len()..].starts_with('=')
                    && prev.is_none_or(|b| matches!(b, b'?' | b'&' | b' ' | b'"' | b'\''))
            })
            .map(|p| p.len() + 1)
    });
    // `Authorization: SharedKey acct:sig`, `authorization=Bearer …`: the whole value.
    let out = redact_after(&out, &|rest, prev| {
        let name = "authorization";
        (rest.starts_with(name) && prev.is_none_or(|b| !b.is_ascii_alphanumeric()))
            .then(|| {
                let after = &rest[name.len()..];
                let sep = after.len() - after.trim_start_matches(['"', '\'', ':', '=', ' ']).len();
                (sep > 0).then_some(name.len() + sep)
            })
            .flatten()
    });
    redact_after(&out, &|rest, prev| {
        (rest.starts_with("bearer ") && prev.is_none_or(|b| !b.is_ascii_alphanumeric()))
            .then_some("bearer ".len())
    })
}

/// Replace what follows each match of `at` (given the lowercased rest of the text and the byte
/// before it, it returns the length of the name to keep) up to the end of the value (`&`,
/// whitespace, a quote, a comma) with `REDACTED`.
fn redact_after(text: &str, at: &dyn Fn(&str, Option<u8>) -> Option<usize>) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut result = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if let Some(n) = at(&lower[i..], i.checked_sub(1).map(|j| bytes[j])) {
            result.push_str(&text[i..i + n]);
            i += n;
            // A header value such as "SharedKey acct:sig" or "Bearer tok" keeps its scheme.
            let word_end = text[i..]
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | ','))
                .map_or(text.len(), |e| i + e);
            let scheme = &lower[i..word_end];
            if matches!(
                scheme,
                "sharedkey" | "bearer" | "basic" | "sharedaccesssignature"
            ) && text[word_end..].starts_with(' ')
            {
                result.push_str(&text[i..=word_end]);
                i = word_end + 1;
            }
            result.push_str("REDACTED");
            while i < text.len()
                && !matches!(
                    bytes[i],
                    b'&' | b' ' | b'"' | b'\'' | b'\n' | b'\r' | b',' | b'\t'
                )
            {
                i += 1;
            }
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
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

    #[test]
    fn header_values_and_bearer_tokens_are_removed() {
        let t = redact_text(
            "request failed: Authorization: SharedKey devstoreaccount1:c2VjcmV0 x-ms-date: now",
            &[],
        );
        assert_eq!(
            t,
            "request failed: Authorization: SharedKey REDACTED x-ms-date: now"
        );
        let t = redact_text(
            "headers {\"authorization\": \"Bearer eyJ0eXAi.abc.def\"}",
            &[],
        );
        assert!(!t.contains("eyJ0eXAi"), "{t}");
        let t = redact_text("token refresh: bearer eyJhbGciOi.x.y expired", &[]);
        assert_eq!(t, "token refresh: bearer REDACTED expired");
        // Words that merely contain the names stay.
        let t = redact_text("an unauthorized request; the bearers", &[]);
        assert_eq!(t, "an unauthorized request; the bearers");
    }

    #[test]
    fn a_sas_token_given_with_its_question_mark_is_removed_without_it() {
        let t = redact_text(
            "https://a/c?sv=1&se=2&sp=r&xx=SECRETVALUE",
            &["?sv=1&se=2&sp=r&xx=SECRETVALUE"],
        );
        assert!(!t.contains("SECRETVALUE"), "{t}");
    }
}
