//! The plain HTTP file server behind `--storage-addr`: consumers download artifacts from it.
//!
//! - `GET` and `HEAD` of a stored file answer `200` with `Content-Length` and a
//!   `Content-Type` of `application/gzip` for `.tar.gz`, `.tgz` and `.gz` files,
//!   `application/octet-stream` otherwise; the body is streamed from disk.
//! - Anything that is not a regular file inside the root answers `404`: directories (no
//!   listings), missing files, paths with `.`, `..` or empty components or with a component
//!   starting with a dot (staging files are hidden), percent-encoded variants of those (the
//!   path is decoded once, then checked), malformed escapes, and symlinks that resolve
//!   outside the root or to a hidden file. Symlinks inside the root (Flux's `latest.tar.gz`)
//!   are followed.
//! - Other methods answer `405` with `Allow: GET, HEAD`.
//!
//! Stored files are replaced by rename, so a download that has started keeps reading the
//! file it opened.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

/// The file server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The root directory is missing or unreadable.
    #[error("cannot serve {path}")]
    Root {
        /// The root directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr} (--storage-addr)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("the artifact file server failed")]
    Serve {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The running file server. Dropping it does not stop it: cancel the token given to
/// [`serve`], then [`wait`](Self::wait).
#[derive(Debug)]
pub struct FileServer {
    local_addr: SocketAddr,
    task: JoinHandle<Result<(), ServeError>>,
}

impl FileServer {
    /// The address the server listens on (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped (after cancellation, once in-flight responses are
    /// done).
    ///
    /// # Errors
    ///
    /// [`ServeError::Serve`] if it failed.
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Ok(()),
        }
    }
}

/// Serves the files under `root` on `addr` in the background until `shutdown` is
/// cancelled. Returns once the address is bound.
///
/// # Errors
///
/// [`ServeError::Root`] if `root` cannot be resolved, [`ServeError::Bind`] if `addr` cannot
/// be bound.
pub async fn serve(
    root: impl Into<PathBuf>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<FileServer, ServeError> {
    let app = router(root)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(addr = %local_addr, "serving artifacts");
    let task = tokio::spawn(async move {
        axum::serve(toolkit_sdk::net::no_delay(listener), app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| ServeError::Serve { source })
    });
    Ok(FileServer { local_addr, task })
}

/// The file server as a router, to mount elsewhere or serve on a listener of your own.
///
/// # Errors
///
/// [`ServeError::Root`] if `root` cannot be resolved to a directory.
pub fn router(root: impl Into<PathBuf>) -> Result<Router, ServeError> {
    let root = root.into();
    let canonical = std::fs::canonicalize(&root).map_err(|source| ServeError::Root {
        path: root.clone(),
        source,
    })?;
    Ok(Router::new()
        .fallback(handle)
        .with_state(Arc::new(canonical)))
}

async fn handle(State(root): State<Arc<PathBuf>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "method not allowed\n",
        )
            .into_response();
    }
    let Some(rel) = request_path(uri.path()) else {
        return not_found();
    };
    let Ok(resolved) = tokio::fs::canonicalize(root.join(&rel)).await else {
        return not_found();
    };
    match resolved.strip_prefix(root.as_path()) {
        Ok(inside) if !inside.as_os_str().is_empty() && !has_hidden_component(inside) => {}
        _ => return not_found(),
    }
    let Ok(file) = tokio::fs::File::open(&resolved).await else {
        return not_found();
    };
    let Ok(meta) = file.metadata().await else {
        return not_found();
    };
    if !meta.is_file() {
        return not_found();
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(ReaderStream::with_capacity(file, 64 * 1024))
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type(&resolved));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

/// The relative file path a request path names, or `None` if it is not a plain path of
/// non-hidden names once percent-decoded.
fn request_path(raw: &str) -> Option<PathBuf> {
    let decoded = percent_decode(raw.as_bytes())?;
    let decoded = String::from_utf8(decoded).ok()?;
    let rest = decoded.strip_prefix('/')?;
    let mut rel = PathBuf::new();
    for component in rest.split('/') {
        if component.is_empty()
            || component.starts_with('.')
            || component.contains('\0')
            || component.contains('\\')
        {
            return None;
        }
        rel.push(component);
    }
    Some(rel)
}

/// Decodes `%XX` escapes once; `None` for a malformed escape.
fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = hex_value(*bytes.next()?)?;
            let lo = hex_value(*bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn has_hidden_component(path: &Path) -> bool {
    path.components().any(|c| match c {
        Component::Normal(name) => name.as_encoded_bytes().first() == Some(&b'.'),
        _ => true,
    })
}

fn content_type(path: &Path) -> HeaderValue {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".gz") {
        HeaderValue::from_static("application/gzip")
    } else {
        HeaderValue::from_static("application/octet-stream")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_are_decoded_then_checked() {
        assert_eq!(
            request_path("/gitrepository/ns/n/a.tar.gz"),
            Some(PathBuf::from("gitrepository/ns/n/a.tar.gz"))
        );
        assert_eq!(request_path("/a%20b"), Some(PathBuf::from("a b")));
        assert_eq!(request_path("/a%2Fb"), Some(PathBuf::from("a/b")));
        // Double encoding is decoded once: a literal `%2e%2e` name, harmless.
        assert_eq!(request_path("/%252e%252e"), Some(PathBuf::from("%2e%2e")));
        for bad in [
            "",
            "/",
            "relative",
            "/a//b",
            "/a/",
            "/../etc/passwd",
            "/a/../b",
            "/./a",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc",
            "/a/%2e%2e%2f%2e%2e/x",
            "/..%2f..%2fetc",
            "/.staging-123",
            "/a%00b",
            "/a%5c..",
            "/bad%zz",
            "/bad%2",
            "/%ff",
        ] {
            assert_eq!(request_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(Path::new("a/b.tar.gz")), "application/gzip");
        assert_eq!(content_type(Path::new("b.tgz")), "application/gzip");
        assert_eq!(
            content_type(Path::new("index.yaml")),
            "application/octet-stream"
        );
    }
}
