//! Artifact fetching against a real HTTP server on 127.0.0.1, with archives built here.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;
use tar::{EntryType, Header};
use toolkit_sdk::artifact_fetch::{
    ArtifactFetcher, FetchError, FetchLimits, FetchedArtifact, RetryPolicy,
};

// ---------------------------------------------------------------------------------------
// A tiny artifact server.

#[derive(Clone)]
enum Reply {
    /// 200 with this body (and a Content-Length).
    Body(Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// 200 with a chunked body that never ends.
    Endless,
}

#[derive(Default)]
struct Routes {
    /// Replies per path, in order; the last one repeats.
    replies: Mutex<HashMap<String, VecDeque<Reply>>>,
    hits: Mutex<HashMap<String, usize>>,
}

struct Server {
    base: String,
    routes: Arc<Routes>,
}

impl Server {
    async fn start() -> Self {
        let routes = Arc::new(Routes::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&routes));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, routes }
    }

    /// Serves `replies` at `path` and returns its URL.
    fn serve(&self, path: &str, replies: Vec<Reply>) -> String {
        self.routes
            .replies
            .lock()
            .unwrap()
            .insert(path.to_owned(), replies.into());
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.routes
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

async fn handle(State(routes): State<Arc<Routes>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *routes.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let reply = {
        let mut replies = routes.replies.lock().unwrap();
        match replies.get_mut(&path) {
            Some(queue) if queue.len() > 1 => queue.pop_front(),
            Some(queue) => queue.front().cloned(),
            None => None,
        }
    };
    match reply {
        Some(Reply::Body(body)) => body.into_response(),
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::Endless) => {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            Body::from_stream(futures::stream::repeat_with(move || {
                Ok::<_, std::io::Error>(chunk.clone())
            }))
            .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Archives, written header by header so that hostile entries can be crafted too.

struct Tarball {
    builder: tar::Builder<Vec<u8>>,
}

impl Tarball {
    fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with exactly this path, bypassing the tar crate's path checks.
    fn raw(
        mut self,
        path: &str,
        kind: EntryType,
        mode: u32,
        link: Option<&str>,
        data: impl Read,
        size: u64,
    ) -> Self {
        let mut header = Header::new_gnu();
        let name = &mut header.as_gnu_mut().unwrap().name;
        assert!(path.len() <= name.len(), "test paths must fit the header");
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(0);
        if let Some(link) = link {
            header.set_link_name_literal(link).unwrap();
        }
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    fn file(self, path: &str, contents: &str) -> Self {
        self.file_mode(path, contents, 0o644)
    }

    fn file_mode(self, path: &str, contents: &str, mode: u32) -> Self {
        let size = contents.len() as u64;
        self.raw(
            path,
            EntryType::Regular,
            mode,
            None,
            contents.as_bytes(),
            size,
        )
    }

    fn dir(self, path: &str) -> Self {
        self.raw(path, EntryType::Directory, 0o755, None, std::io::empty(), 0)
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        self.raw(
            path,
            EntryType::Symlink,
            0o777,
            Some(target),
            std::io::empty(),
            0,
        )
    }

    fn hardlink(self, path: &str, target: &str) -> Self {
        self.raw(
            path,
            EntryType::Link,
            0o644,
            Some(target),
            std::io::empty(),
            0,
        )
    }

    fn fifo(self, path: &str) -> Self {
        self.raw(path, EntryType::Fifo, 0o644, None, std::io::empty(), 0)
    }

    fn zeros(self, path: &str, size: u64) -> Self {
        self.raw(
            path,
            EntryType::Regular,
            0o644,
            None,
            std::io::repeat(0).take(size),
            size,
        )
    }

    /// A file whose path is too long for the header, written the usual way (GNU long name).
    fn long_file(mut self, path: &str, contents: &str) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(contents.len() as u64);
        self.builder
            .append_data(&mut header, path, contents.as_bytes())
            .unwrap();
        self
    }

    fn gz(self) -> Vec<u8> {
        let tar = self.builder.into_inner().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, &tar).unwrap();
        encoder.finish().unwrap()
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

fn fetcher_with(limits: FetchLimits) -> ArtifactFetcher {
    let client = toolkit_sdk::tls::http_client_builder().build().unwrap();
    ArtifactFetcher::new(client, limits, fast_retries())
}

fn fetcher() -> ArtifactFetcher {
    fetcher_with(FetchLimits::default())
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        Self { dir }
    }

    /// Where artifacts are unpacked: `<tmp>/work/app`.
    fn dest(&self) -> PathBuf {
        self.dir.path().join("work/app")
    }

    /// A directory next to `work/` that no entry may reach.
    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Names in `work/` (the destination and any temporary leftovers).
    fn work_entries(&self) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(self.dir.path().join("work"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(
            fs::read_dir(self.outside()).unwrap().count(),
            0,
            "something escaped"
        );
        assert!(!self.dir.path().join("x").exists(), "something escaped");
        assert!(
            !self.dir.path().join("work/x").exists(),
            "something escaped"
        );
    }
}

/// A first, good extraction that a failing fetch must leave alone.
async fn previous_extraction(server: &Server, ws: &Workspace) -> FetchedArtifact {
    let body = Tarball::new().file("previous.yaml", "kind: Old\n").gz();
    let url = server.serve("/previous.tar.gz", vec![Reply::Body(body.clone())]);
    fetcher()
        .fetch(&url, Some(&sha256(&body)), &ws.dest())
        .await
        .unwrap()
}

fn assert_previous_intact(ws: &Workspace) {
    let dest = ws.dest();
    assert_eq!(
        fs::read_to_string(dest.join("previous.yaml")).unwrap(),
        "kind: Old\n"
    );
    assert_eq!(
        fs::read_dir(&dest).unwrap().count(),
        1,
        "destination changed"
    );
    assert_eq!(ws.work_entries(), ["app"], "temporary files left behind");
}

/// Serves `body`, fetches it over a previous extraction, and returns the error.
async fn fetch_fails(body: Vec<u8>, limits: FetchLimits) -> (FetchError, Workspace) {
    let server = Server::start().await;
    let ws = Workspace::new();
    previous_extraction(&server, &ws).await;
    let url = server.serve("/bad.tar.gz", vec![Reply::Body(body.clone())]);
    let err = fetcher_with(limits)
        .fetch(&url, Some(&sha256(&body)), &ws.dest())
        .await
        .unwrap_err();
    assert_previous_intact(&ws);
    ws.assert_outside_untouched();
    (err, ws)
}

fn assert_unsafe(err: &FetchError, entry: &str) {
    match err {
        FetchError::UnsafeEntry { path, .. } => assert_eq!(path, entry, "{err}"),
        other => panic!("expected UnsafeEntry for {entry}, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

// ---------------------------------------------------------------------------------------
// Success.

/// A path longer than the 100 bytes a tar header holds.
static LONG_PATH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("charts/{}/values.yaml", "sub/".repeat(40)));

#[tokio::test]
async fn unpacks_files_dirs_modes_and_links() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let body = Tarball::new()
        .dir("./")
        .dir("./deploy/")
        .file("./deploy/app.yaml", "kind: Deployment\n")
        .file("./deploy/base/kustomization.yaml", "resources: []\n") // parent not listed
        .file_mode("./bin/run.sh", "#!/bin/sh\n", 0o700)
        .file_mode("./private.txt", "p", 0o600)
        .file_mode("./setuid", "s", 0o4755)
        .symlink("./deploy/base/app.yaml", "../app.yaml")
        .symlink("./current", "deploy")
        .hardlink("./deploy/copy.yaml", "deploy/app.yaml")
        .fifo("./pipe")
        .long_file(&LONG_PATH, "long\n")
        .gz();
    let url = server.serve(
        "/gitrepository/ns/app/abc.tar.gz",
        vec![Reply::Body(body.clone())],
    );

    let fetched = fetcher()
        .fetch(&url, Some(&sha256(&body)), &ws.dest())
        .await
        .unwrap();

    assert_eq!(fetched.path, ws.dest());
    assert_eq!(fetched.digest, sha256(&body));
    assert_eq!(fetched.size_bytes, body.len() as u64);
    assert_eq!(fetched.entries, 12);
    let dest = ws.dest();
    let read = |p: &str| fs::read_to_string(dest.join(p)).unwrap();
    let mode = |p: &str| {
        fs::symlink_metadata(dest.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(read("deploy/app.yaml"), "kind: Deployment\n");
    assert_eq!(read("deploy/base/kustomization.yaml"), "resources: []\n");
    assert_eq!(read("deploy/base/app.yaml"), "kind: Deployment\n"); // through the symlink
    assert_eq!(read("current/app.yaml"), "kind: Deployment\n");
    assert_eq!(read("deploy/copy.yaml"), "kind: Deployment\n");
    assert_eq!(read("bin/run.sh"), "#!/bin/sh\n");
    assert_eq!(read(&LONG_PATH), "long\n");
    // Only the executable bit survives; everything is readable.
    assert_eq!(mode("bin/run.sh"), 0o755);
    assert_eq!(mode("private.txt"), 0o644);
    assert_eq!(mode("setuid"), 0o755);
    assert_eq!(mode("deploy/app.yaml"), 0o644);
    assert_eq!(mode("deploy"), 0o755);
    assert_eq!(mode("deploy/base"), 0o755);
    assert_eq!(
        fs::read_link(dest.join("current")).unwrap(),
        Path::new("deploy")
    );
    // Devices and FIFOs are skipped, not created.
    assert!(fs::symlink_metadata(dest.join("pipe")).is_err());
    assert_eq!(ws.work_entries(), ["app"]);
}

#[tokio::test]
async fn a_new_artifact_replaces_the_previous_extraction() {
    let server = Server::start().await;
    let ws = Workspace::new();
    previous_extraction(&server, &ws).await;
    let body = Tarball::new().file("new.yaml", "kind: New\n").gz();
    let url = server.serve("/new.tar.gz", vec![Reply::Body(body.clone())]);

    fetcher()
        .fetch(&url, Some(&sha256(&body)), &ws.dest())
        .await
        .unwrap();

    assert_eq!(
        fs::read_to_string(ws.dest().join("new.yaml")).unwrap(),
        "kind: New\n"
    );
    assert!(!ws.dest().join("previous.yaml").exists());
    assert_eq!(ws.work_entries(), ["app"]);
}

#[tokio::test]
async fn other_digest_algorithms_and_no_digest_are_accepted() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let body = Tarball::new().file("a", "a").gz();
    let url = server.serve("/a.tar.gz", vec![Reply::Body(body.clone())]);

    let sha512 = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&body)));
    let fetched = fetcher()
        .fetch(&url, Some(&sha512), &ws.dest())
        .await
        .unwrap();
    assert_eq!(fetched.digest, sha512);

    let sha384 = format!(
        "sha384:{}",
        hex::encode(sha2::Sha384::digest(&body)).to_uppercase()
    );
    let fetched = fetcher()
        .fetch(&url, Some(&sha384), &ws.dest())
        .await
        .unwrap();
    assert_eq!(fetched.digest, sha384.to_lowercase());

    let fetched = fetcher().fetch(&url, None, &ws.dest()).await.unwrap();
    assert_eq!(fetched.digest, sha256(&body));
}

// ---------------------------------------------------------------------------------------
// HTTP outcomes and retries.

#[tokio::test]
async fn not_found_means_wait_for_the_source() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let url = server.serve("/gone.tar.gz", vec![Reply::Status(404)]);

    let err = fetcher().fetch(&url, None, &ws.dest()).await.unwrap_err();

    assert!(matches!(err, FetchError::NotFound { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        server.hits("/gone.tar.gz"),
        1,
        "a 404 is not retried in place"
    );
    assert!(!ws.dest().exists());
    assert!(ws.work_entries().is_empty(), "temporary files left behind");
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let body = Tarball::new().file("ok.yaml", "ok").gz();
    let url = server.serve(
        "/flaky.tar.gz",
        vec![
            Reply::Status(503),
            Reply::Status(503),
            Reply::Body(body.clone()),
        ],
    );

    let fetched = fetcher()
        .fetch(&url, Some(&sha256(&body)), &ws.dest())
        .await
        .unwrap();

    assert_eq!(server.hits("/flaky.tar.gz"), 3);
    assert_eq!(fetched.digest, sha256(&body));
    assert_eq!(fs::read_to_string(ws.dest().join("ok.yaml")).unwrap(), "ok");
}

#[tokio::test]
async fn server_errors_give_up_after_max_attempts() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let url = server.serve("/down.tar.gz", vec![Reply::Status(500)]);

    let err = fetcher().fetch(&url, None, &ws.dest()).await.unwrap_err();

    assert!(
        matches!(err, FetchError::Http { status, .. } if status.as_u16() == 500),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(server.hits("/down.tar.gz"), 4);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let url = server.serve("/bad-request.tar.gz", vec![Reply::Status(400)]);

    let err = fetcher().fetch(&url, None, &ws.dest()).await.unwrap_err();

    assert!(
        matches!(err, FetchError::Http { status, .. } if status.as_u16() == 400),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.hits("/bad-request.tar.gz"), 1);
}

#[tokio::test]
async fn connection_refused_is_a_retried_transport_error() {
    // A port that was just free: nothing listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ws = Workspace::new();

    let err = fetcher()
        .fetch(
            &format!("http://127.0.0.1:{port}/a.tar.gz"),
            None,
            &ws.dest(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, FetchError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(ws.work_entries().is_empty());
}

#[tokio::test]
async fn errors_never_show_credentials_or_query() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let url = format!("http://fluxuser:s3cr3t@127.0.0.1:{port}/missing.tar.gz?token=t0k3n");

    let err = fetcher().fetch(&url, None, &ws.dest()).await.unwrap_err();

    let shown = format!("{err} / {err:?}");
    assert!(matches!(err, FetchError::NotFound { .. }), "{err:?}");
    assert!(shown.contains("/missing.tar.gz"), "{shown}");
    for secret in ["s3cr3t", "fluxuser", "t0k3n"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
}

// ---------------------------------------------------------------------------------------
// Verification and limits.

#[tokio::test]
async fn digest_mismatch_extracts_nothing() {
    let server = Server::start().await;
    let ws = Workspace::new();
    previous_extraction(&server, &ws).await;
    let body = Tarball::new().file("evil.yaml", "x").gz();
    let url = server.serve("/swapped.tar.gz", vec![Reply::Body(body.clone())]);
    let expected = sha256(b"something else");

    let err = fetcher()
        .fetch(&url, Some(&expected), &ws.dest())
        .await
        .unwrap_err();

    match &err {
        FetchError::DigestMismatch {
            expected: e,
            actual,
            ..
        } => {
            assert_eq!(e, &expected);
            assert_eq!(actual, &sha256(&body));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(
        server.hits("/swapped.tar.gz"),
        1,
        "a mismatch is not retried in place"
    );
    assert_previous_intact(&ws);
}

#[tokio::test]
async fn unusable_digest_is_refused_before_downloading() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let url = server.serve("/a.tar.gz", vec![Reply::Body(Tarball::new().gz())]);

    let err = fetcher()
        .fetch(
            &url,
            Some("md5:d41d8cd98f00b204e9800998ecf8427e"),
            &ws.dest(),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(err, FetchError::UnsupportedDigest { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("md5:"), "{err}");
    assert_eq!(server.hits("/a.tar.gz"), 0);
}

#[tokio::test]
async fn garbage_is_a_corrupt_archive() {
    let (err, _ws) = fetch_fails(b"this is not gzip at all".to_vec(), FetchLimits::default()).await;
    assert!(matches!(err, FetchError::CorruptArchive { .. }), "{err:?}");

    // Valid gzip around something that is not a tar archive.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &[0x42; 2048]).unwrap();
    let (err, _ws) = fetch_fails(encoder.finish().unwrap(), FetchLimits::default()).await;
    assert!(matches!(err, FetchError::CorruptArchive { .. }), "{err:?}");
}

#[tokio::test]
async fn too_many_entries_is_refused() {
    let mut tarball = Tarball::new();
    for i in 0..6 {
        tarball = tarball.file(&format!("f{i}"), "x");
    }
    let limits = FetchLimits {
        max_entries: 5,
        ..FetchLimits::default()
    };
    let (err, _ws) = fetch_fails(tarball.gz(), limits).await;
    assert!(
        matches!(err, FetchError::TooManyEntries { limit: 5 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_small_archive_that_inflates_past_the_limit_is_refused() {
    let body = Tarball::new().zeros("bomb", 16 * 1024 * 1024).gz();
    assert!(
        body.len() < 64 * 1024,
        "the test archive should be small: {}",
        body.len()
    );
    let limits = FetchLimits {
        max_extracted_bytes: 1024 * 1024,
        ..FetchLimits::default()
    };
    let (err, _ws) = fetch_fails(body, limits).await;
    assert!(
        matches!(err, FetchError::ExtractedTooLarge { limit: 1_048_576 }),
        "{err:?}"
    );

    // Many files that each fit but add up past the limit.
    let mut tarball = Tarball::new();
    for i in 0..5 {
        tarball = tarball.zeros(&format!("part{i}"), 300 * 1024);
    }
    let limits = FetchLimits {
        max_extracted_bytes: 1024 * 1024,
        ..FetchLimits::default()
    };
    let (err, _ws) = fetch_fails(tarball.gz(), limits).await;
    assert!(
        matches!(err, FetchError::ExtractedTooLarge { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_tar_metadata_is_refused_without_buffering_it() {
    // A 4 MiB "long name" that the tar reader would otherwise hold in memory.
    let long_name = vec![b'a'; 4 * 1024 * 1024];
    let body = Tarball::new()
        .raw(
            "././@LongLink",
            EntryType::GNULongName,
            0o644,
            None,
            long_name.as_slice(),
            long_name.len() as u64,
        )
        .file("f", "x")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert!(matches!(err, FetchError::CorruptArchive { .. }), "{err:?}");
}

#[tokio::test]
async fn a_download_over_the_limit_is_refused() {
    let server = Server::start().await;
    let ws = Workspace::new();
    previous_extraction(&server, &ws).await;
    let limits = FetchLimits {
        max_download_bytes: 1024,
        ..FetchLimits::default()
    };

    // Announced by Content-Length.
    let url = server.serve("/big.tar.gz", vec![Reply::Body(vec![0; 4096])]);
    let err = fetcher_with(limits.clone())
        .fetch(&url, None, &ws.dest())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 1024, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.hits("/big.tar.gz"), 1);

    // Not announced, and never ending: the download must stop on its own.
    let url = server.serve("/endless.tar.gz", vec![Reply::Endless]);
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        fetcher_with(limits).fetch(&url, None, &ws.dest()),
    )
    .await
    .expect("the download did not stop at the limit")
    .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 1024, .. }),
        "{err:?}"
    );
    assert_previous_intact(&ws);
}

// ---------------------------------------------------------------------------------------
// Entries that try to escape.

#[tokio::test]
async fn parent_dir_entries_are_refused() {
    let body = Tarball::new()
        .file("ok.yaml", "ok")
        .file("../x", "escaped")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "../x");

    let body = Tarball::new().file("a/../../x", "escaped").gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "a/../../x");
}

#[tokio::test]
async fn absolute_entries_are_refused() {
    // The absolute path points at a real place this test can check.
    let target = tempfile::tempdir().unwrap();
    let absolute = format!("{}/x", target.path().display());
    let body = Tarball::new().file(&absolute, "escaped").gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, &absolute);
    assert!(!target.path().join("x").exists());
}

#[tokio::test]
async fn symlink_to_an_absolute_path_then_writing_through_it_is_refused() {
    let body = Tarball::new()
        .symlink("link", "/etc")
        .file("link/passwd", "root::0:0::/:/bin/sh\n")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "link");

    // Same shape, aimed at a directory the test can inspect.
    let outside = tempfile::tempdir().unwrap();
    let body = Tarball::new()
        .symlink("link", &outside.path().display().to_string())
        .file("link/planted", "x")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "link");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn relative_symlinks_leaving_the_root_are_refused() {
    let body = Tarball::new().symlink("link", "../../x").gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "link");

    // Deep enough to look harmless from its own directory, still one level too many.
    let body = Tarball::new().symlink("a/b/link", "../../../outside").gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "a/b/link");

    // `..` after a name: counted lexically `a/link -> d/../x` stays inside, but `a/d` is a
    // symlink to the root, so the `..` would climb out of it.
    let body = Tarball::new()
        .symlink("a/d", "..")
        .symlink("a/link", "d/../x")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "a/link");
}

#[tokio::test]
async fn nothing_is_written_through_a_symlink_even_one_pointing_inside() {
    // The classic escape is "symlink, then a file below it"; never following any symlink
    // while writing closes it whatever the symlink points to.
    let body = Tarball::new()
        .dir("sub")
        .symlink("link", "sub")
        .file("link/file", "x")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "link/file");
    assert!(err.to_string().contains("symlink `link`"), "{err}");

    // A file entry replacing a symlink replaces the link itself, not its target.
    let server = Server::start().await;
    let ws = Workspace::new();
    let body = Tarball::new()
        .file("target", "original")
        .symlink("name", "target")
        .file("name", "replacement")
        .gz();
    let url = server.serve("/replace.tar.gz", vec![Reply::Body(body.clone())]);
    fetcher()
        .fetch(&url, Some(&sha256(&body)), &ws.dest())
        .await
        .unwrap();
    let dest = ws.dest();
    assert_eq!(fs::read_to_string(dest.join("target")).unwrap(), "original");
    assert_eq!(
        fs::read_to_string(dest.join("name")).unwrap(),
        "replacement"
    );
    assert!(
        !fs::symlink_metadata(dest.join("name"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test]
async fn hard_links_leaving_the_root_are_refused() {
    let body = Tarball::new().hardlink("link", "../outside/secret").gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "link");

    let body = Tarball::new().hardlink("link", "/etc/passwd").gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "link");

    // Through a symlink that points outside is refused at the symlink already; through one
    // that points inside is refused at the hard link.
    let body = Tarball::new()
        .file("real/file", "x")
        .symlink("alias", "real")
        .hardlink("link", "alias/file")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "link");
}

#[tokio::test]
async fn a_directory_entry_cannot_replace_a_symlink() {
    let body = Tarball::new()
        .symlink("dir", ".")
        .dir("dir")
        .file("dir/f", "x")
        .gz();
    let (err, _ws) = fetch_fails(body, FetchLimits::default()).await;
    assert_unsafe(&err, "dir");
}

// ---------------------------------------------------------------------------------------
// Straight from `status.artifact`.

fn artifact(url: &str, digest: Option<String>, size: Option<i64>) -> toolkit_sdk::api::Artifact {
    toolkit_sdk::api::Artifact {
        path: "gitrepository/apps/podinfo/abc.tar.gz".into(),
        url: url.to_owned(),
        revision: "main@sha1:0123456789abcdef0123456789abcdef01234567".into(),
        digest,
        last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ),
        size,
        metadata: None,
    }
}

#[tokio::test]
async fn fetches_what_status_artifact_describes() {
    let server = Server::start().await;
    let ws = Workspace::new();
    let body = Tarball::new().file("app.yaml", "kind: App\n").gz();
    let url = server.serve("/abc.tar.gz", vec![Reply::Body(body.clone())]);

    let status = artifact(&url, Some(sha256(&body)), Some(body.len() as i64));
    let fetched = fetcher().fetch_artifact(&status, &ws.dest()).await.unwrap();
    assert_eq!(fetched.digest, sha256(&body));
    assert_eq!(
        fs::read_to_string(ws.dest().join("app.yaml")).unwrap(),
        "kind: App\n"
    );

    // The digest in the status is enforced.
    let wrong = artifact(&url, Some(sha256(b"other")), None);
    let err = fetcher()
        .fetch_artifact(&wrong, &ws.dest())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::DigestMismatch { .. }), "{err:?}");

    // A reported size over the limit is refused before any request.
    let hits = server.hits("/abc.tar.gz");
    let huge = artifact(&url, None, Some(10 * 1024 * 1024 * 1024));
    let err = fetcher()
        .fetch_artifact(&huge, &ws.dest())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
    assert_eq!(server.hits("/abc.tar.gz"), hits);
}

#[test]
fn a_local_archive_unpacks_with_the_same_rules() {
    let ws = Workspace::new();
    let good = ws.dir.path().join("good.tar.gz");
    fs::write(
        &good,
        Tarball::new().file("deploy/app.yaml", "kind: App\n").gz(),
    )
    .unwrap();
    let unpacked =
        toolkit_sdk::artifact_fetch::unpack(&good, &ws.dest(), &FetchLimits::default()).unwrap();
    assert_eq!(unpacked.path, ws.dest());
    assert_eq!(
        fs::read_to_string(ws.dest().join("deploy/app.yaml")).unwrap(),
        "kind: App\n"
    );

    // An escaping entry is refused and the previous tree stays in place.
    let bad = ws.dir.path().join("bad.tar.gz");
    fs::write(&bad, Tarball::new().file("../x", "escaped").gz()).unwrap();
    let err =
        toolkit_sdk::artifact_fetch::unpack(&bad, &ws.dest(), &FetchLimits::default()).unwrap_err();
    assert_unsafe(&err, "../x");
    ws.assert_outside_untouched();
    assert!(ws.dest().join("deploy/app.yaml").is_file());
}
