//! The store error type. Each variant carries the key or URL it is about; callers classify
//! errors with methods ([`Error::is_retryable`], [`Error::is_fatal`]), never by their text.

use std::io;

/// Result with the store error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the storage layer. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL that does not parse or is refused.
    #[error("bad URL {url}: {why}")]
    BadUrl {
        /// The URL, redacted.
        url: String,
        /// What was expected.
        why: String,
    },
    /// A key that is not a safe relative path.
    #[error("unsafe key {key:?}: {why}")]
    BadKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        why: String,
    },
    /// The key does not exist.
    #[error("{key}: not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The object changed since it was listed (ETag / size / mtime differ).
    #[error("{key}: changed at the source since it was listed ({why})")]
    Changed {
        /// The key.
        key: String,
        /// What differs.
        why: String,
    },
    /// The store holds fewer bytes than asked for.
    #[error("{key}: short read at byte {offset}: wanted {wanted} more bytes")]
    ShortRead {
        /// The key.
        key: String,
        /// Where the read stopped.
        offset: u64,
        /// Bytes missing.
        wanted: u64,
    },
    /// A local I/O error.
    #[error("{path}: {op}: {source}")]
    Io {
        /// Path or key concerned.
        path: String,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Access denied by the service or the OS.
    #[error("{what}: permission denied{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    PermissionDenied {
        /// Key or URL.
        what: String,
        /// Service detail, redacted.
        detail: Option<String>,
    },
    /// A remote call failed.
    #[error("{what}: {message}")]
    Remote {
        /// Operation and key, redacted.
        what: String,
        /// Message, redacted.
        message: String,
        /// HTTP status, when there is one.
        status: Option<u16>,
        /// Whether retrying may help.
        retryable: bool,
    },
    /// Not supported by this endpoint or this build.
    #[error("{what} not supported: {hint}")]
    Unsupported {
        /// What was asked.
        what: String,
        /// What to do instead.
        hint: String,
    },
    /// The target device is full.
    #[error("{path}: no space left on device")]
    NoSpace {
        /// Where the write failed.
        path: String,
    },
    /// An endpoint that cannot be used as asked: unreachable, or a credential that is missing,
    /// refused or lacks a permission. One line: what was done where, why, and what to do.
    #[error("{what}: {problem}{}; {fix}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Access {
        /// Operation and URL (redacted).
        what: String,
        /// The cause, classified.
        problem: Problem,
        /// The service's own words (error code, request id), redacted; may be empty.
        detail: String,
        /// The likely fix.
        fix: String,
    },
    /// A failure the retry policy ([`crate::retry`]) tried `tries` times without success: the
    /// last one. It is classified as that failure is (retryable by a later run, a throttle…),
    /// but no loop above the policy tries it again.
    #[error("{last} (tried {tries} times)")]
    Exhausted {
        /// Requests sent.
        tries: u32,
        /// The last failure.
        last: Box<Error>,
    },
    /// A throttle answer (429, 503) whose `Retry-After` header asked for `wait`: made by a
    /// sender ([`crate::retry::asked_to_wait`]) and taken apart by the retry policy, which waits
    /// that long; classified as `last` is.
    #[error("{last}")]
    RetryAfter {
        /// The wait the service asked for.
        wait: std::time::Duration,
        /// The answer.
        last: Box<Error>,
    },
}

/// Why an endpoint cannot be used, classified from the transport error or the service's
/// answer. The same condition is the same `Problem` on every cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The host name does not resolve.
    Dns,
    /// Nothing accepts connections at that host and port.
    Refused,
    /// The TLS handshake failed (a certificate not trusted, most often).
    Tls,
    /// No credential was found for the endpoint.
    NoCredential,
    /// The service did not accept the credential (a bad signature, a token for another
    /// audience, a key of another account).
    Unauthenticated,
    /// The SAS or token has expired or is not valid yet.
    Expired,
    /// The service says this machine's clock is too far off.
    ClockSkew,
    /// The credential is accepted but lacks a permission.
    Forbidden {
        /// The permission, named as the operator grants it.
        permission: String,
    },
    /// The container or bucket does not exist.
    NoContainer {
        /// Its name.
        name: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Dns => f.write_str("the host name does not resolve (DNS)"),
            Problem::Refused => f.write_str("connection refused"),
            Problem::Tls => f.write_str("the TLS handshake failed"),
            Problem::NoCredential => f.write_str("no credential found"),
            Problem::Unauthenticated => f.write_str("the service refused the credential"),
            Problem::Expired => f.write_str("the credential has expired or is not valid yet"),
            Problem::ClockSkew => f.write_str("this machine's clock is too far off"),
            Problem::Forbidden { permission } => {
                write!(f, "the credential lacks the permission {permission}")
            }
            Problem::NoContainer { name } => write!(f, "{name} does not exist"),
        }
    }
}

impl Error {
    /// Wrap an I/O error with its path; ENOSPC and EACCES become their own variants.
    pub fn io(path: impl Into<String>, op: &'static str, source: io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::NoSpace { path },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                what: path,
                detail: Some(op.to_string()),
            },
            _ => Error::Io { path, op, source },
        }
    }

    /// The failure itself: the last one inside [`Error::Exhausted`] (and the answer inside
    /// [`Error::RetryAfter`]), else this one. Every classifier judges it.
    pub fn cause(&self) -> &Error {
        match self {
            Error::Exhausted { last, .. } | Error::RetryAfter { last, .. } => last.cause(),
            e => e,
        }
    }

    /// Whether the same request may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        match self.cause() {
            Error::Remote { retryable, .. } => *retryable,
            // A name server or a service that does not answer may be back in a moment.
            Error::Access {
                problem: Problem::Dns | Problem::Refused,
                ..
            } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }

    /// Whether the whole job must stop (no point going on with other files): a full disk, a
    /// bad URL, an endpoint that cannot be reached or a credential that does not do.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.cause(),
            Error::NoSpace { .. } | Error::BadUrl { .. } | Error::Access { .. }
        )
    }

    /// Whether this is a credential or permission problem (missing, refused, expired, clock
    /// skew, a permission lacking): found before the first write, it is bad input (exit 2).
    pub fn is_auth(&self) -> bool {
        match self.cause() {
            Error::PermissionDenied { .. } => true,
            Error::Access { problem, .. } => !matches!(
                problem,
                Problem::Dns | Problem::Refused | Problem::Tls | Problem::NoContainer { .. }
            ),
            _ => false,
        }
    }

    /// Whether the endpoint cannot be used at all as named (unreachable, credential, missing
    /// container): found before the first write, it is bad input (exit 2).
    pub fn is_endpoint(&self) -> bool {
        matches!(
            self.cause(),
            Error::Access { .. } | Error::PermissionDenied { .. }
        )
    }

    /// Whether the service asked us to slow down: HTTP 429, or 503 (Azure's ServerBusy, S3's
    /// SlowDown), by the status, not the words of the message.
    pub fn is_throttle(&self) -> bool {
        matches!(
            self.cause(),
            Error::Remote {
                status: Some(429 | 503),
                ..
            }
        )
    }

    /// Whether the request itself is wrong or refused (a bad URL or key, access denied, a
    /// name that cannot be used): neither retrying nor resuming helps until the operator
    /// changes something. A service or network failure (HTTP 5xx, a reset, a timeout) is not.
    pub fn is_bad_input(&self) -> bool {
        match self.cause() {
            Error::BadUrl { .. } | Error::BadKey { .. } | Error::PermissionDenied { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::NotFound
            ),
            Error::Remote { status, .. } => matches!(status, Some(400 | 401 | 403 | 404)),
            _ => false,
        }
    }

    /// Whether the retry policy gave up on this failure (see [`Error::Exhausted`]).
    pub fn is_exhausted(&self) -> bool {
        matches!(self, Error::Exhausted { .. })
    }

    /// Whether this means the object is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self.cause(), Error::NotFound { .. })
    }
}
