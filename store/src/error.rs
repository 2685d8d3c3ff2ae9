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

    /// Whether the same request may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Remote { retryable, .. } => *retryable,
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

    /// Whether the whole job must stop (no point going on with other files).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::NoSpace { .. } | Error::BadUrl { .. })
    }

    /// Whether the service asked us to slow down: HTTP 429, or 503 (Azure's ServerBusy, S3's
    /// SlowDown), by the status, not the words of the message.
    pub fn is_throttle(&self) -> bool {
        matches!(
            self,
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
        match self {
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

    /// Whether this means the object is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}
