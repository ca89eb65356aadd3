//! The error type of artifact fetching.

use std::io;

use super::digest::DigestParseError;
use crate::conditions::reasons;
use crate::error::ReconcileError;

/// Why an artifact could not be fetched, verified or unpacked.
///
/// URLs in these errors have their user information, query and fragment removed, so a token
/// carried in a URL never reaches a log line, an event or a status message.
///
/// [`FetchError::is_retryable`] tells whether trying again later, unchanged, can succeed.
/// In a reconcile step, `?` turns a `FetchError` into a [`ReconcileError`]: see the
/// [`From`] implementation for the classes and reasons.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered 404.
    ///
    /// The source has not produced this artifact yet (or it was garbage collected after a
    /// newer revision replaced it): requeue and read the source's status again; this is not a
    /// failure of the consumer.
    #[error(
        "artifact {url} was not found (HTTP 404): the source has not produced it yet or it was \
         garbage collected; waiting for the source to report a current artifact"
    )]
    NotFound {
        /// The artifact URL, without credentials or query.
        url: String,
    },

    /// The server answered with a status other than success or 404 (after retries for 5xx).
    #[error("artifact server answered HTTP {status} for {url}")]
    Http {
        /// The artifact URL, without credentials or query.
        url: String,
        /// The HTTP status of the last attempt.
        status: reqwest::StatusCode,
    },

    /// The connection failed, timed out or broke during the download (after retries).
    #[error("cannot download artifact {url}")]
    Transport {
        /// The artifact URL, without credentials or query.
        url: String,
        /// The client error (its own copy of the URL removed).
        #[source]
        source: reqwest::Error,
    },

    /// The artifact URL cannot be used for an HTTP request.
    #[error("artifact URL {url} is not a valid http(s) URL")]
    InvalidUrl {
        /// The URL as given, without credentials or query where they could be located.
        url: String,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The downloaded bytes do not hash to the expected digest; nothing was unpacked.
    #[error(
        "artifact {url} does not match its digest: expected {expected}, got {actual}; \
         the artifact may have been replaced while it was downloaded"
    )]
    DigestMismatch {
        /// The artifact URL, without credentials or query.
        url: String,
        /// The digest the source reported.
        expected: String,
        /// The digest of the bytes received, in the same algorithm.
        actual: String,
    },

    /// The expected digest is malformed or uses an algorithm other than sha256/384/512.
    #[error("cannot verify the artifact against digest `{digest}`")]
    UnsupportedDigest {
        /// The digest string as given.
        digest: String,
        /// What is wrong with it.
        #[source]
        source: DigestParseError,
    },

    /// The download is larger than [`FetchLimits::max_download_bytes`](super::FetchLimits).
    #[error("artifact {url} is larger than the download limit of {limit} bytes")]
    TooLarge {
        /// The artifact URL, without credentials or query.
        url: String,
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },

    /// The archive has more entries than [`FetchLimits::max_entries`](super::FetchLimits).
    #[error("artifact archive has more than {limit} entries")]
    TooManyEntries {
        /// The limit that was exceeded.
        limit: u64,
    },

    /// The archive unpacks to more than
    /// [`FetchLimits::max_extracted_bytes`](super::FetchLimits).
    #[error("artifact archive unpacks to more than {limit} bytes")]
    ExtractedTooLarge {
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },

    /// An archive entry would land outside the destination, or is otherwise refused.
    #[error("artifact archive entry `{path}` is refused: {why}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        path: String,
        /// Why it was refused.
        why: String,
    },

    /// The download is not a well-formed gzip-compressed tar archive.
    #[error("artifact is not a valid gzip-compressed tar archive")]
    CorruptArchive {
        /// What the decoder or the tar reader found wrong.
        #[source]
        source: io::Error,
    },

    /// A local file system operation failed.
    #[error("{context}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },
}

impl FetchError {
    /// Whether fetching the same URL again later, with nothing else changed, may succeed.
    ///
    /// True for a missing artifact (the source may publish it), connection problems, server
    /// errors (5xx), `408 Request Timeout`, `429 Too Many Requests`, a digest mismatch (the
    /// artifact may have been replaced mid-download) and local I/O errors (a full disk may be
    /// cleaned up). False for everything that is a property of the artifact or of the
    /// request itself: other 4xx answers, an unusable digest or URL, oversized, corrupt or
    /// unsafe archives. Those need a new artifact (a new source revision), which triggers a
    /// new reconcile anyway.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NotFound { .. }
            | Self::Transport { .. }
            | Self::DigestMismatch { .. }
            | Self::Io { .. } => true,
            Self::Http { status, .. } => is_retryable_status(*status),
            Self::InvalidUrl { .. }
            | Self::UnsupportedDigest { .. }
            | Self::TooLarge { .. }
            | Self::TooManyEntries { .. }
            | Self::ExtractedTooLarge { .. }
            | Self::UnsafeEntry { .. }
            | Self::CorruptArchive { .. } => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn unsafe_entry(path: impl Into<String>, why: impl Into<String>) -> Self {
        Self::UnsafeEntry {
            path: path.into(),
            why: why.into(),
        }
    }
}

/// The reconcile outcome of a failed fetch, so a step can write `fetcher.fetch(..).await?`.
///
/// - [`FetchError::NotFound`] is [`waiting`](ReconcileError::waiting): the source has not
///   published the artifact yet (or replaced it with a newer one); the consumer retries after
///   the dependency requeue interval, and the event is informational.
/// - Everything else is [`transient`](ReconcileError::transient): connection problems and
///   server errors go away by themselves, and a digest mismatch, an oversized, corrupt or
///   unsafe archive is fixed by the next artifact the source publishes, so the object is
///   retried with backoff rather than stalled.
///
/// The reason is always `ArtifactFailed`, as in Flux's kustomize-controller and
/// helm-controller. The message is this error's text and the error itself is the source, so
/// [`ReconcileError::detailed_message`] shows the whole chain once.
impl From<FetchError> for ReconcileError {
    fn from(err: FetchError) -> Self {
        let message = err.to_string();
        let base = match err {
            FetchError::NotFound { .. } => {
                ReconcileError::waiting(reasons::ARTIFACT_FAILED, message)
            }
            _ => ReconcileError::transient(reasons::ARTIFACT_FAILED, message),
        };
        base.with_source(err)
    }
}

/// Statuses worth asking again for later.
fn is_retryable_status(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// `url` without user information, query and fragment, fit for logs and status messages.
///
/// When `url` does not parse, everything from the first `?` or `#` is dropped and so is
/// anything before an `@` in what looks like the authority.
pub(crate) fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = reqwest::Url::parse(url) {
        // Both fail only for URLs that cannot carry credentials at all; nothing to remove then.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        parsed.set_query(None);
        parsed.set_fragment(None);
        return parsed.to_string();
    }
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_credentials_query_and_fragment() {
        let cases = [
            (
                "http://user:secret@source-controller.flux-system/gitrepository/ns/name/sha.tar.gz?token=abc#frag",
                "http://source-controller.flux-system/gitrepository/ns/name/sha.tar.gz",
            ),
            (
                "https://example.com:8443/a.tar.gz",
                "https://example.com:8443/a.tar.gz",
            ),
            // Unparseable (bad port): the string fallback still strips the secrets.
            (
                "http://user:secret@host:99999/a.tar.gz?sig=xyz",
                "http://host:99999/a.tar.gz",
            ),
            ("not a url?key=1", "not a url"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }

    #[test]
    fn reconcile_errors_wait_for_missing_artifacts_and_retry_the_rest() {
        use crate::error::ErrorClass;

        let missing = ReconcileError::from(FetchError::NotFound {
            url: "http://sc/a.tar.gz".into(),
        });
        assert_eq!(missing.class(), ErrorClass::Waiting);
        assert_eq!(missing.reason(), "ArtifactFailed");
        assert!(missing.message().contains("http://sc/a.tar.gz"));

        let corrupt = ReconcileError::from(FetchError::CorruptArchive {
            source: io::Error::other("invalid gzip header"),
        });
        assert_eq!(corrupt.class(), ErrorClass::Transient);
        assert_eq!(corrupt.reason(), "ArtifactFailed");
        assert_eq!(
            corrupt.detailed_message(),
            "artifact is not a valid gzip-compressed tar archive: invalid gzip header"
        );

        for err in [
            FetchError::unsafe_entry("../x", "contains a `..` component"),
            FetchError::ExtractedTooLarge { limit: 1 },
            FetchError::DigestMismatch {
                url: String::new(),
                expected: "sha256:00".into(),
                actual: "sha256:11".into(),
            },
        ] {
            let reconcile = ReconcileError::from(err);
            assert_eq!(reconcile.class(), ErrorClass::Transient);
            assert_eq!(reconcile.reason(), "ArtifactFailed");
        }
    }

    #[test]
    fn retryability_follows_the_status_class() {
        let http = |code: u16| FetchError::Http {
            url: String::new(),
            status: reqwest::StatusCode::from_u16(code).unwrap_or_default(),
        };
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!http(403).is_retryable());
        assert!(FetchError::NotFound { url: String::new() }.is_retryable());
        assert!(!FetchError::unsafe_entry("../x", "escapes").is_retryable());
        assert!(!FetchError::ExtractedTooLarge { limit: 1 }.is_retryable());
    }
}
