//! Why a request to a cloud endpoint failed, as one [`Problem`] per condition on every cloud,
//! with the fix an operator can act on.
//!
//! The service's answer is read by its error code (Azure's `x-ms-error-code` / `<Code>`, S3's
//! `<Code>`, GCS's JSON `reason`) and its status; a transport failure by the causes in its
//! error chain (DNS, connection refused, TLS), which reqwest exposes only as text. Every
//! [`Error::Access`] built here says what was done where, why, and what to do; the binary maps
//! the class to an exit status in one place (`is_auth`, `is_endpoint`, `is_fatal`).

use hbcp_store::{Error, Problem};

/// Which cloud answered: the permissions and fixes are named in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cloud {
    Azure,
    S3,
    Gcs,
}

/// What a request needed the right to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    List,
    Read,
    Write,
    Delete,
    CreateContainer,
}

impl Op {
    /// The operation as hbcp's messages name it (`list`, `read`, `write part of`…).
    pub(crate) fn of(op: &str) -> Op {
        match op.split(' ').next().unwrap_or("") {
            "list" => Op::List,
            "read" | "head" | "properties" => Op::Read,
            "delete" => Op::Delete,
            "create" => Op::CreateContainer,
            _ => Op::Write,
        }
    }

    /// The permission this operation needs, as the operator grants it on `cloud`.
    pub(crate) fn permission(self, cloud: Cloud) -> String {
        match (cloud, self) {
            (Cloud::Azure, Op::List) => "List (SAS sp=l; Entra ID role Storage Blob Data Reader)",
            (Cloud::Azure, Op::Read) => "Read (SAS sp=r; Entra ID role Storage Blob Data Reader)",
            (Cloud::Azure, Op::Write) => {
                "Write (SAS sp=w; Entra ID role Storage Blob Data Contributor)"
            }
            (Cloud::Azure, Op::Delete) => {
                "Delete (SAS sp=d; Entra ID role Storage Blob Data Contributor)"
            }
            (Cloud::Azure, Op::CreateContainer) => {
                "to create containers (an account SAS with srt=c and sp=c, or Entra ID role \
                 Storage Blob Data Contributor on the account)"
            }
            (Cloud::S3, Op::List) => "s3:ListBucket",
            (Cloud::S3, Op::Read) => "s3:GetObject",
            (Cloud::S3, Op::Write) => "s3:PutObject",
            (Cloud::S3, Op::Delete) => "s3:DeleteObject",
            (Cloud::S3, Op::CreateContainer) => "s3:CreateBucket",
            (Cloud::Gcs, Op::List) => "storage.objects.list",
            (Cloud::Gcs, Op::Read) => "storage.objects.get",
            (Cloud::Gcs, Op::Write) => "storage.objects.create",
            (Cloud::Gcs, Op::Delete) => "storage.objects.delete",
            (Cloud::Gcs, Op::CreateContainer) => "storage.buckets.create",
        }
        .to_string()
    }
}

/// The text of an error and all its causes, `: `-joined (reqwest names DNS and TLS failures
/// only in the causes).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

/// A transport failure: the request never got an answer.
pub(crate) fn transport(text: &str) -> Option<Problem> {
    let t = text.to_ascii_lowercase();
    if t.contains("dns error")
        || t.contains("failed to lookup address")
        || t.contains("name or service not known")
        || t.contains("no address associated")
        || t.contains("nodename nor servname")
    {
        Some(Problem::Dns)
    } else if t.contains("connection refused") {
        Some(Problem::Refused)
    } else if t.contains("certificate")
        || t.contains("invalid peer")
        || t.contains("tls handshake")
        || t.contains("unknownissuer")
        || t.contains("handshake failure")
    {
        Some(Problem::Tls)
    } else {
        None
    }
}

/// An Azure answer: `code` is the error code (`x-ms-error-code` or the body's `<Code>`),
/// `auth_detail` the body's `<AuthenticationErrorDetail>` or `<Message>`; `container` names the
/// container for a 404 of the container itself.
pub(crate) fn azure(
    status: u16,
    code: &str,
    auth_detail: &str,
    op: Op,
    container: &str,
) -> Option<Problem> {
    let d = auth_detail.to_ascii_lowercase();
    match (status, code) {
        (404, "ContainerNotFound") => Some(Problem::NoContainer {
            name: format!("container {container}"),
        }),
        (_, "AuthenticationFailed") => Some(
            if d.contains("expir") || d.contains("time frame") || d.contains("not yet valid") {
                Problem::Expired
            } else if d.contains("date header") || d.contains("too old") {
                Problem::ClockSkew
            } else {
                Problem::Unauthenticated
            },
        ),
        (_, "NoAuthenticationInformation") => Some(Problem::NoCredential),
        (_, "InvalidAuthenticationInfo") => {
            Some(if d.contains("expired") || d.contains("lifetime") {
                Problem::Expired
            } else {
                Problem::Unauthenticated
            })
        }
        // Azurite's answer to a signature that does not match (Azure's is AuthenticationFailed).
        (_, "AuthorizationFailure") if d.contains("failed to authenticate") => {
            Some(Problem::Unauthenticated)
        }
        (
            _,
            "AuthorizationPermissionMismatch"
            | "AuthorizationResourceTypeMismatch"
            | "AuthorizationServiceMismatch"
            | "AuthorizationFailure"
            | "AuthorizationProtocolMismatch"
            | "AuthorizationSourceIPMismatch",
        ) => Some(Problem::Forbidden {
            permission: op.permission(Cloud::Azure),
        }),
        (401, _) => Some(Problem::Unauthenticated),
        (403, _) => Some(Problem::Forbidden {
            permission: op.permission(Cloud::Azure),
        }),
        _ => None,
    }
}

/// An S3 answer by its `<Code>`.
pub(crate) fn s3(status: u16, code: &str, op: Op, bucket: &str) -> Option<Problem> {
    match (status, code) {
        (_, "NoSuchBucket") => Some(Problem::NoContainer {
            name: format!("bucket {bucket}"),
        }),
        (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken") => {
            Some(Problem::Unauthenticated)
        }
        (_, "ExpiredToken" | "TokenRefreshRequired") => Some(Problem::Expired),
        (_, "RequestTimeTooSkewed") => Some(Problem::ClockSkew),
        (401, _) => Some(Problem::Unauthenticated),
        (403, _) => Some(Problem::Forbidden {
            permission: op.permission(Cloud::S3),
        }),
        _ => None,
    }
}

/// A GCS answer.
pub(crate) fn gcs(status: u16, text: &str, op: Op, bucket: &str) -> Option<Problem> {
    match status {
        404 if text.contains("bucket does not exist") || text.contains("NoSuchBucket") => {
            Some(Problem::NoContainer {
                name: format!("bucket {bucket}"),
            })
        }
        401 => Some(Problem::Unauthenticated),
        403 => Some(Problem::Forbidden {
            permission: op.permission(Cloud::Gcs),
        }),
        _ => None,
    }
}

/// A credential that could not be had at all (none configured, or the provider failed: the
/// instance metadata service unreachable, a token endpoint that refused).
pub(crate) fn credential_failure(text: &str) -> Option<Problem> {
    let t = text.to_ascii_lowercase();
    let about_credential = t.contains("credential")
        || t.contains("token")
        || t.contains("imds")
        || t.contains("metadata")
        || t.contains("169.254.169.254");
    if !about_credential {
        return None;
    }
    if t.contains("169.254.169.254") || t.contains("imds") || t.contains("metadata") {
        // The last link of the chain (the cloud's instance metadata service) did not answer:
        // nothing earlier in the chain was configured.
        Some(Problem::NoCredential)
    } else if t.contains("aadsts") || t.contains("invalid_client") || t.contains("unauthorized") {
        Some(Problem::Unauthenticated)
    } else {
        None
    }
}

/// A short detail for a credential that could not be had: which link of the chain failed,
/// without the chain's whole text.
pub(crate) fn credential_detail(text: &str) -> String {
    if text.contains("169.254.169.254") {
        "no instance identity answered at the metadata service 169.254.169.254".into()
    } else if text.to_ascii_lowercase().contains("aadsts") {
        let code = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.starts_with("AADSTS"))
            .unwrap_or("AADSTS");
        format!("Entra ID refused the sign-in ({code})")
    } else {
        String::new()
    }
}

/// The fix for `problem` on `cloud`.
pub(crate) fn fix(problem: &Problem, cloud: Cloud) -> String {
    match (problem, cloud) {
        (Problem::Dns, Cloud::Azure) => {
            "check the account name in the URL, and this machine's DNS and proxy settings \
             (HTTPS_PROXY)"
                .into()
        }
        (Problem::Dns, _) => {
            "check the endpoint's host name, and this machine's DNS and proxy settings \
             (HTTPS_PROXY)"
                .into()
        }
        (Problem::Refused, _) => "nothing listens at that host and port: check the endpoint \
             (--azure-endpoint, AWS_ENDPOINT_URL, an emulator that is not running)"
            .into(),
        (Problem::Tls, _) => "the server's certificate is not trusted here: behind a \
             TLS-inspecting proxy, point SSL_CERT_FILE at a file with the proxy's CA \
             certificate"
            .into(),
        (Problem::NoCredential, Cloud::Azure) => "put a SAS in the URL (…/hbase?sv=…&sig=…), \
             or set AZURE_STORAGE_ACCOUNT_KEY, or Entra ID: AZURE_CLIENT_ID + AZURE_TENANT_ID + \
             AZURE_CLIENT_SECRET (service principal), AZURE_FEDERATED_TOKEN_FILE (workload \
             identity), `az login` (Azure CLI), or a managed identity (user-assigned: \
             AZURE_CLIENT_ID or AZURE_MSI_RESOURCE_ID); `hbcp auth URL` shows which is used"
            .into(),
        (Problem::NoCredential, Cloud::S3) => "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (and AWS_SESSION_TOKEN for temporary ones), or run where an instance or container \
             role provides them"
            .into(),
        (Problem::NoCredential, Cloud::Gcs) => "set GOOGLE_SERVICE_ACCOUNT to a service-account \
             key file (or GOOGLE_APPLICATION_CREDENTIALS), or run where a GCE service account \
             provides one"
            .into(),
        (Problem::Unauthenticated, Cloud::Azure) => "check that the key, SAS or token is for \
             this account and container (a SAS signed for another container or account, or a \
             token for another audience, is refused), or make a new one"
            .into(),
        (Problem::Unauthenticated, _) => {
            "check that the credential belongs to this account and is typed whole".into()
        }
        (Problem::Expired, _) => {
            "make a new SAS or token (with an expiry after the copy ends) and run again".into()
        }
        (Problem::ClockSkew, _) => "set this machine's clock right (NTP) and run again".into(),
        (Problem::Forbidden { .. }, Cloud::Azure) => "grant it (a new SAS with that permission, \
             or the role on the container), or use a credential that has it"
            .into(),
        (Problem::Forbidden { .. }, _) => {
            "grant it to the credential in use, or use a credential that has it".into()
        }
        (Problem::NoContainer { .. }, Cloud::Azure) => {
            "check the container name, or create it (az storage container create)".into()
        }
        (Problem::NoContainer { .. }, _) => "check the bucket name, or create it".into(),
        (_, _) => "see `hbcp auth URL`".into(),
    }
}

/// The one-line error for `problem`.
pub(crate) fn access(what: String, problem: Problem, detail: String, cloud: Cloud) -> Error {
    let fix = fix(&problem, cloud);
    Error::Access {
        what,
        problem,
        detail,
        fix,
    }
}

/// The text of `<tag>…</tag>` in an XML error body.
pub(crate) fn xml_field<'a>(body: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    body.split(open.as_str())
        .nth(1)
        .and_then(|r| r.split(close.as_str()).next())
        .unwrap_or("")
}

/// When a SAS expires: `se` as Azure writes it (`2026-12-31`, `2026-12-31T23:59Z`,
/// `2026-12-31T23:59:59Z`, with optional fractional seconds), in seconds since the epoch.
pub(crate) fn sas_time(se: &str) -> Option<i64> {
    let se = se.trim().trim_end_matches('Z');
    let (date, time) = se.split_once('T').unwrap_or((se, "00:00:00"));
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next().unwrap_or("");
    let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (
        t.next()??,
        t.next().flatten().unwrap_or(0),
        t.next().flatten().unwrap_or(0),
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_times_in_every_form_azure_writes() {
        assert_eq!(sas_time("1970-01-01"), Some(0));
        assert_eq!(sas_time("2001-01-01T00:00:00Z"), Some(978_307_200));
        assert_eq!(sas_time("2001-01-01T00:00Z"), Some(978_307_200));
        assert_eq!(sas_time("2024-02-29T12:34:56.789Z"), Some(1_709_210_096));
        assert_eq!(sas_time("2099-13-01"), None);
        assert_eq!(sas_time("soon"), None);
    }

    #[test]
    fn the_same_condition_is_the_same_problem_on_every_cloud() {
        let dns = "error sending request for url (https://nosuchacct.blob.core.windows.net/c): \
                   client error (Connect): dns error: failed to lookup address information: \
                   Name or service not known";
        assert_eq!(transport(dns), Some(Problem::Dns));
        assert_eq!(
            transport(
                "client error (Connect): tcp connect error: Connection refused (os error 111)"
            ),
            Some(Problem::Refused)
        );
        assert_eq!(
            transport("invalid peer certificate: UnknownIssuer"),
            Some(Problem::Tls)
        );
        assert_eq!(transport("connection reset by peer"), None);
        let expired = azure(
            403,
            "AuthenticationFailed",
            "Signed expiry time [Mon, 01 Jan 2001 00:00:00 GMT] must be after signed start time",
            Op::Write,
            "c",
        );
        assert_eq!(expired, Some(Problem::Expired));
        assert_eq!(
            s3(400, "ExpiredToken", Op::Write, "b"),
            Some(Problem::Expired)
        );
        assert_eq!(
            azure(
                403,
                "AuthenticationFailed",
                "Signature did not match",
                Op::List,
                "c"
            ),
            Some(Problem::Unauthenticated)
        );
        assert_eq!(
            s3(403, "SignatureDoesNotMatch", Op::List, "b"),
            Some(Problem::Unauthenticated)
        );
        let Some(Problem::Forbidden { permission }) =
            azure(403, "AuthorizationPermissionMismatch", "", Op::Write, "c")
        else {
            panic!()
        };
        assert!(permission.contains("sp=w"), "{permission}");
        assert_eq!(
            s3(403, "AccessDenied", Op::Write, "b"),
            Some(Problem::Forbidden {
                permission: "s3:PutObject".into()
            })
        );
        assert_eq!(
            azure(404, "ContainerNotFound", "", Op::List, "c"),
            Some(Problem::NoContainer {
                name: "container c".into()
            })
        );
        assert_eq!(
            s3(404, "NoSuchBucket", Op::List, "b"),
            Some(Problem::NoContainer {
                name: "bucket b".into()
            })
        );
        assert_eq!(
            azure(
                403,
                "AuthenticationFailed",
                "Request date header too old",
                Op::Read,
                "c"
            ),
            Some(Problem::ClockSkew)
        );
        assert_eq!(
            s3(403, "RequestTimeTooSkewed", Op::Read, "b"),
            Some(Problem::ClockSkew)
        );
        assert_eq!(azure(404, "BlobNotFound", "", Op::Read, "c"), None);
    }

    #[test]
    fn every_problem_says_what_to_do() {
        for p in [
            Problem::Dns,
            Problem::Refused,
            Problem::Tls,
            Problem::NoCredential,
            Problem::Unauthenticated,
            Problem::Expired,
            Problem::ClockSkew,
            Problem::Forbidden {
                permission: "x".into(),
            },
            Problem::NoContainer { name: "c".into() },
        ] {
            for c in [Cloud::Azure, Cloud::S3, Cloud::Gcs] {
                let e = access("write https://a/c/k".into(), p.clone(), String::new(), c);
                let line = e.to_string();
                assert!(
                    !line.contains('\n') && !line.contains("hbcp auth URL`\n"),
                    "{line}"
                );
                assert!(line.starts_with("write https://a/c/k: "), "{line}");
                assert!(e.is_fatal() && e.is_endpoint(), "{line}");
                assert_ne!(fix(&p, c), "see `hbcp auth URL`", "{p:?} {c:?}");
            }
        }
    }
}
