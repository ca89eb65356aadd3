//! The artifact store end to end: archive a tree, store it, serve it over real HTTP, and
//! fetch it back with the SDK's consumer side, so both sides agree on digest and tar format.

#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use source_controller::storage::{
    ArchiveLimits, Filter, ObjectKey, Retention, Storage, StorageError, serve,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use toolkit_sdk::api::Artifact;
use toolkit_sdk::artifact_fetch::{ArtifactFetcher, FetchError, FetchLimits, RetryPolicy};

/// A storage served over HTTP on a loopback port, advertised at that address.
struct Served {
    _dir: tempfile::TempDir,
    root: PathBuf,
    storage: Storage,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Served {
    async fn start(retention: Retention) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        fs::create_dir(&root).unwrap();
        let shutdown = CancellationToken::new();
        let server = serve(&root, "127.0.0.1:0".parse().unwrap(), shutdown.clone())
            .await
            .unwrap();
        let addr = server.local_addr();
        let storage = Storage::new(&root, addr.to_string())
            .unwrap()
            .with_retention(retention);
        Self {
            _dir: dir,
            root,
            storage,
            addr,
            shutdown,
        }
    }

    /// A scratch directory next to the storage root (outside it).
    fn scratch(&self, name: &str) -> PathBuf {
        let path = self.root.parent().unwrap().join(name);
        fs::create_dir_all(&path).unwrap();
        path
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn fetcher() -> ArtifactFetcher {
    let client = toolkit_sdk::tls::http_client_builder().build().unwrap();
    ArtifactFetcher::new(client, FetchLimits::default(), RetryPolicy::no_retries())
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("GitRepository", "apps", name).unwrap()
}

/// Archives `src` with Flux's rules and stores it as `file` under the object's lock.
async fn store(storage: &Storage, key: &ObjectKey, src: &Path, file: &str) -> Artifact {
    let storage = storage.clone();
    let lock = storage.lock(key).await;
    let key = key.clone();
    let src = src.to_path_buf();
    let file = file.to_owned();
    tokio::task::spawn_blocking(move || {
        let filter = Filter::for_source(&src, None).unwrap();
        let archive = storage
            .archive_dir(&key, &src, &filter, &ArchiveLimits::default())
            .unwrap();
        let revision = format!("main@sha1:{}", file.trim_end_matches(".tar.gz"));
        lock.store(archive, &file, &revision).unwrap()
    })
    .await
    .unwrap()
}

/// Sends one raw HTTP/1.1 request (so paths reach the server exactly as written) and returns
/// the status code, the headers (lower-case names) and the body.
async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the server answers")
        .unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_lowercase(), value.trim().to_owned())
        })
        .collect();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn stored_artifact_is_served_and_fetched_intact() {
    let served = Served::start(Retention::default()).await;
    let src = served.scratch("checkout");
    write(&src, "deploy/app.yaml", "kind: Deployment\n");
    write(&src, "deploy/base/kustomization.yaml", "resources: []\n");
    write(&src, "scripts/run.sh", "#!/bin/sh\necho hi\n");
    fs::set_permissions(
        src.join("scripts/run.sh"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    write(&src, ".git/HEAD", "ref: refs/heads/main\n");
    write(&src, ".github/workflows/ci.yaml", "on: push\n");
    write(&src, "docs/logo.png", "not really a png");
    symlink("../deploy/app.yaml", src.join("scripts/app.yaml")).unwrap();

    let key = key("podinfo");
    let artifact = store(&served.storage, &key, &src, "6b7aab8a.tar.gz").await;
    assert_eq!(artifact.path, "gitrepository/apps/podinfo/6b7aab8a.tar.gz");
    assert_eq!(
        artifact.url,
        format!(
            "http://{}/gitrepository/apps/podinfo/6b7aab8a.tar.gz",
            served.addr
        )
    );
    assert_eq!(artifact.revision, "main@sha1:6b7aab8a");
    let on_disk = fs::read(served.root.join(&artifact.path)).unwrap();
    assert_eq!(artifact.size, Some(i64::try_from(on_disk.len()).unwrap()));
    assert!(served.storage.exists(&artifact));
    served.storage.verify(&artifact).unwrap();

    // The consumer downloads it, checks the digest, and unpacks the same tree.
    let dest = served.scratch("consumer").join("podinfo");
    let fetched = fetcher().fetch_artifact(&artifact, &dest).await.unwrap();
    assert_eq!(Some(fetched.digest.as_str()), artifact.digest.as_deref());
    assert_eq!(
        fs::read_to_string(dest.join("deploy/app.yaml")).unwrap(),
        "kind: Deployment\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("deploy/base/kustomization.yaml")).unwrap(),
        "resources: []\n"
    );
    let mode = fs::metadata(dest.join("scripts/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        fs::read_link(dest.join("scripts/app.yaml")).unwrap(),
        Path::new("../deploy/app.yaml")
    );
    assert_eq!(
        fs::read_to_string(dest.join("scripts/app.yaml")).unwrap(),
        "kind: Deployment\n"
    );
    for excluded in [".git", ".github", "docs/logo.png"] {
        assert!(!dest.join(excluded).exists(), "{excluded} was archived");
    }
    // As in Flux, a directory whose files are all excluded stays, empty.
    assert_eq!(fs::read_dir(dest.join("docs")).unwrap().count(), 0);

    // Plain HTTP semantics: GET and HEAD with length and type.
    let url_path = format!("/{}", artifact.path);
    let (status, headers, body) = raw_request(served.addr, "GET", &url_path).await;
    assert_eq!(status, 200);
    assert_eq!(body, on_disk);
    assert_eq!(header(&headers, "content-type"), Some("application/gzip"));
    let length = on_disk.len().to_string();
    assert_eq!(header(&headers, "content-length"), Some(length.as_str()));
    let (status, headers, body) = raw_request(served.addr, "HEAD", &url_path).await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "content-length"), Some(length.as_str()));
    let (status, headers, _) = raw_request(served.addr, "POST", &url_path).await;
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));

    // Flux's `latest.tar.gz` link is served too.
    let lock = served.storage.lock(&key).await;
    let latest = lock.symlink(&artifact, "latest.tar.gz").unwrap();
    drop(lock);
    assert_eq!(
        latest,
        format!(
            "http://{}/gitrepository/apps/podinfo/latest.tar.gz",
            served.addr
        )
    );
    let (status, _, body) = raw_request(
        served.addr,
        "GET",
        "/gitrepository/apps/podinfo/latest.tar.gz",
    )
    .await;
    assert_eq!((status, body), (200, on_disk));
}

#[tokio::test]
async fn same_content_stores_the_same_digest_and_restores_atomically() {
    let served = Served::start(Retention::default()).await;
    let one = served.scratch("one");
    let two = served.scratch("two");
    write(&one, "a/b.yaml", "b\n");
    write(&one, "c.yaml", "c\n");
    write(&two, "c.yaml", "c\n");
    write(&two, "a/b.yaml", "b\n");
    fs::set_permissions(two.join("c.yaml"), fs::Permissions::from_mode(0o600)).unwrap();

    let first = store(&served.storage, &key("one"), &one, "rev1.tar.gz").await;
    let second = store(&served.storage, &key("two"), &two, "rev1.tar.gz").await;
    assert_eq!(first.digest, second.digest);
    assert_eq!(
        fs::read(served.root.join(&first.path)).unwrap(),
        fs::read(served.root.join(&second.path)).unwrap()
    );

    // Rebuilding under the same name (a changed ignore rule, say) replaces the file.
    write(&one, "c.yaml", "changed\n");
    let rebuilt = store(&served.storage, &key("one"), &one, "rev1.tar.gz").await;
    assert_eq!(rebuilt.path, first.path);
    assert_ne!(rebuilt.digest, first.digest);
    served.storage.verify(&rebuilt).unwrap();
    // No staging files are left in the object's directory.
    let names: Vec<String> = fs::read_dir(served.storage.object_dir(&key("one")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["rev1.tar.gz"]);
}

#[tokio::test]
async fn missing_or_corrupt_artifacts_are_detected() {
    let served = Served::start(Retention::default()).await;
    let src = served.scratch("src");
    write(&src, "app.yaml", "x\n");
    let artifact = store(&served.storage, &key("app"), &src, "abc.tar.gz").await;
    let path = served.root.join(&artifact.path);

    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    assert!(served.storage.exists(&artifact));
    let err = served.storage.verify(&artifact).unwrap_err();
    assert!(
        matches!(&err, StorageError::DigestMismatch { expected, .. } if Some(expected) == artifact.digest.as_ref()),
        "{err:?}"
    );

    // An artifact recorded in status but gone from disk (restart with an empty volume).
    fs::remove_file(&path).unwrap();
    assert!(!served.storage.exists(&artifact));
    assert!(served.storage.verify(&artifact).unwrap_err().is_not_found());
    let err = fetcher()
        .fetch_artifact(&artifact, &served.scratch("dest").join("app"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::NotFound { .. }), "{err:?}");
}

/// Sets a file's modification time to `secs_ago` seconds in the past.
fn age(path: &Path, secs_ago: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
        .unwrap();
}

#[tokio::test]
async fn garbage_collection_keeps_the_newest_records_and_the_current_one() {
    let served = Served::start(Retention {
        records: 2,
        ttl: Duration::from_secs(3600),
    })
    .await;
    let src = served.scratch("src");
    let key = key("gc");
    let mut artifacts = Vec::new();
    for (i, rev) in ["r1", "r2", "r3", "r4"].iter().enumerate() {
        write(&src, "app.yaml", rev);
        let artifact = store(&served.storage, &key, &src, &format!("{rev}.tar.gz")).await;
        // r1 oldest … r4 newest, all within the TTL.
        age(&served.root.join(&artifact.path), 100 - 10 * i as u64);
        artifacts.push(artifact);
    }
    let dir = served.storage.object_dir(&key);
    write(&dir, ".staging-old", "crash leftover");
    age(&dir.join(".staging-old"), 2 * 3600);
    write(&dir, ".staging-fresh", "being written");

    let lock = served.storage.lock(&key).await;
    let latest = lock.symlink(&artifacts[3], "latest.tar.gz").unwrap();
    // The current artifact is r2 (a rollback, say): it survives though older than r3.
    let removed = lock.garbage_collect(&artifacts[1]).unwrap();
    assert_eq!(
        removed,
        [
            "gitrepository/apps/gc/r1.tar.gz",
            "gitrepository/apps/gc/r3.tar.gz"
        ]
    );
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".staging-fresh", "latest.tar.gz", "r2.tar.gz", "r4.tar.gz"]
    );
    // Collected artifacts are gone from the server; kept ones are served.
    let served_status =
        async |path: &str| raw_request(served.addr, "GET", &format!("/{path}")).await.0;
    assert_eq!(served_status(&artifacts[0].path).await, 404);
    assert_eq!(served_status(&artifacts[1].path).await, 200);
    assert_eq!(served_status(&artifacts[3].path).await, 200);
    assert!(latest.ends_with("/gitrepository/apps/gc/latest.tar.gz"));
    assert_eq!(
        served_status("gitrepository/apps/gc/latest.tar.gz").await,
        200
    );

    // Running it again changes nothing.
    assert!(lock.garbage_collect(&artifacts[1]).unwrap().is_empty());
}

#[tokio::test]
async fn garbage_collection_removes_expired_artifacts_but_never_the_current_one() {
    let served = Served::start(Retention {
        records: 10,
        ttl: Duration::from_secs(60),
    })
    .await;
    let src = served.scratch("src");
    let key = key("ttl");
    let mut artifacts = Vec::new();
    for (rev, secs_ago) in [("old", 300), ("current", 200), ("recent", 5)] {
        write(&src, "app.yaml", rev);
        let artifact = store(&served.storage, &key, &src, &format!("{rev}.tar.gz")).await;
        age(&served.root.join(&artifact.path), secs_ago);
        artifacts.push(artifact);
    }
    let lock = served.storage.lock(&key).await;
    let removed = lock.garbage_collect(&artifacts[1]).unwrap();
    assert_eq!(removed, ["gitrepository/apps/ttl/old.tar.gz"]);
    assert!(served.storage.exists(&artifacts[1]));
    assert!(served.storage.exists(&artifacts[2]));

    // Zero records: only the current artifact remains.
    let strict = Storage::new(&served.root, "h")
        .unwrap()
        .with_retention(Retention {
            records: 0,
            ttl: Duration::from_secs(3600),
        });
    let removed = strict
        .lock(&key)
        .await
        .garbage_collect(&artifacts[1])
        .unwrap();
    assert_eq!(removed, ["gitrepository/apps/ttl/recent.tar.gz"]);
    assert!(strict.exists(&artifacts[1]));
}

#[tokio::test]
async fn remove_all_deletes_everything_of_a_deleted_object() {
    let served = Served::start(Retention::default()).await;
    let src = served.scratch("src");
    write(&src, "app.yaml", "x\n");
    let gone = store(&served.storage, &key("gone"), &src, "a.tar.gz").await;
    let kept = store(&served.storage, &key("kept"), &src, "a.tar.gz").await;

    let lock = served.storage.lock(&key("gone")).await;
    lock.symlink(&gone, "latest.tar.gz").unwrap();
    assert!(lock.remove_all().unwrap());
    assert!(!served.storage.object_dir(&key("gone")).exists());
    assert!(!lock.remove_all().unwrap());
    assert!(served.storage.exists(&kept));

    let err = fetcher()
        .fetch_artifact(&gone, &served.scratch("dest").join("gone"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::NotFound { .. }), "{err:?}");
    fetcher()
        .fetch_artifact(&kept, &served.scratch("dest").join("kept"))
        .await
        .unwrap();
}

#[tokio::test]
async fn path_traversal_and_hidden_files_are_not_served() {
    let served = Served::start(Retention::default()).await;
    let outside = served.root.parent().unwrap();
    fs::write(outside.join("secret.txt"), "top secret").unwrap();
    let src = served.scratch("src");
    write(&src, "app.yaml", "x\n");
    let artifact = store(&served.storage, &key("app"), &src, "a.tar.gz").await;
    let dir = served.storage.object_dir(&key("app"));
    // A symlink planted in the storage that leads out of it.
    symlink("../../../../secret.txt", dir.join("escape.tar.gz")).unwrap();
    symlink(outside, served.root.join("up")).unwrap();
    fs::write(dir.join(".staging-123"), "partial").unwrap();

    let (status, _, body) = raw_request(served.addr, "GET", &format!("/{}", artifact.path)).await;
    assert_eq!(status, 200);
    assert!(!body.is_empty());
    for path in [
        "/../secret.txt",
        "/gitrepository/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/gitrepository/apps/app/..%2f..%2f..%2f..%2fsecret.txt",
        "/gitrepository/apps/app/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/gitrepository/apps/app/escape.tar.gz",
        "/up/secret.txt",
        "/gitrepository/apps/app/.staging-123",
        "/gitrepository/apps/app/%2estaging-123",
        "/gitrepository/apps/app",
        "/gitrepository/apps/app/",
        "/gitrepository/",
        "/",
        "/gitrepository/apps/app/missing.tar.gz",
        "/gitrepository//apps/app/a.tar.gz",
        "/gitrepository/apps/app/a.tar.gz%00",
        "/gitrepository/apps/app/a.tar.gz%zz",
    ] {
        let (status, _, body) = raw_request(served.addr, "GET", path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            !String::from_utf8_lossy(&body).contains("top secret"),
            "{path}"
        );
    }
    // A query string does not change the file served.
    let (status, _, _) = raw_request(served.addr, "GET", &format!("/{}?x=1", artifact.path)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn oversized_and_unsafe_trees_are_refused_without_touching_the_current_artifact() {
    let served = Served::start(Retention::default()).await;
    let src = served.scratch("src");
    write(&src, "app.yaml", "x\n");
    let key = key("app");
    let good = store(&served.storage, &key, &src, "good.tar.gz").await;

    symlink("/etc/passwd", src.join("passwd")).unwrap();
    let filter = Filter::for_source(&src, None).unwrap();
    let err = served
        .storage
        .archive_dir(&key, &src, &filter, &ArchiveLimits::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "symlink passwd points outside the repository (target /etc/passwd)"
    );
    fs::remove_file(src.join("passwd")).unwrap();

    write(&src, "big.yaml", &"y".repeat(10_000));
    let err = served
        .storage
        .archive_dir(
            &key,
            &src,
            &filter,
            &ArchiveLimits {
                max_content_bytes: 5_000,
                ..ArchiveLimits::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("5000 bytes"), "{err}");

    served.storage.verify(&good).unwrap();
    let names: Vec<String> = fs::read_dir(served.storage.object_dir(&key))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["good.tar.gz"]);
}
