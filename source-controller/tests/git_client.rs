//! The Git client against real servers: `git http-backend` over HTTP and HTTPS (with and without
//! auth) and `sshd`, started by `e2e::git_server`, and repositories changed the way users change
//! them (commits, tags, force-pushes, deleted branches, signed commits and tags).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use e2e::git_server::{GitServer, HttpOptions, Repo, SshKeyKind, WorkingCopy, generate_ssh_key};
use source_controller::api::v1::{GitCheckout, GitVerificationMode};
use source_controller::git::{
    self, CheckoutOptions, CommitInfo, GitAuth, GitError, RemoteRefs, ResolvedRef, TrustedKeys,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn secret(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

fn no_secret() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::new()
}

/// Every file under `dir` (relative path with `/`) and its content; symlinks as `-> target`.
fn files(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if meta.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

async fn refs_of(url: &str, auth: &GitAuth) -> RemoteRefs {
    git::remote_refs(url, auth, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("ls-remote {url}: {e:?}"))
}

/// Resolves `checkout` and checks it out into a fresh folder.
async fn check_out(
    url: &str,
    auth: &GitAuth,
    checkout: GitCheckout,
    options: &CheckoutOptions,
) -> Result<(ResolvedRef, CommitInfo, tempfile::TempDir), GitError> {
    // The reconciler's way: ask only for what the checkout can resolve to.
    let refs = git::remote_refs_for(url, auth, &checkout, TIMEOUT).await?;
    let resolved = git::resolve(&checkout, &refs)?;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("checkout");
    let commit = git::checkout(url, auth, &resolved, &dest, options).await?;
    Ok((resolved, commit, dir))
}

fn dest(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("checkout")
}

fn branch(name: &str) -> GitCheckout {
    GitCheckout::Branch(name.into())
}

/// A repository with history: what each test starts from.
struct Fixture {
    server: GitServer,
    repo: Repo,
    wc: WorkingCopy,
    /// master~1: deploy/app.yaml v1, tag v1.0.0 (lightweight).
    c1: String,
    /// master: deploy/app.yaml v2, annotated tag v1.1.0, tag v2.0.0-rc.1.
    c2: String,
    /// feature (from c1), also refs/pull/1/head.
    c3: String,
    /// The tag object of v1.1.0.
    tag_object: String,
}

fn fixture() -> Result<Fixture> {
    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    let mut wc = repo.working_copy()?;
    // An executable file and a symbolic link, written before the commit picks them up.
    std::fs::create_dir_all(wc.path().join("bin"))?;
    std::fs::create_dir_all(wc.path().join("deploy"))?;
    std::fs::write(wc.path().join("bin/run.sh"), "#!/bin/sh\necho hi\n")?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            wc.path().join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )?;
    }
    std::os::unix::fs::symlink("app.yaml", wc.path().join("deploy/link.yaml"))?;
    let c1 = wc.commit(
        &[
            ("deploy/app.yaml", "version: 1\n"),
            ("deploy/prod/kustomization.yaml", "resources: []\n"),
            ("README.md", "# app\n"),
        ],
        "first",
    )?;
    wc.tag("v1.0.0", &c1)?;
    wc.set_date("1704153600 +0000");
    let c2 = wc.commit(&[("deploy/app.yaml", "version: 2\n")], "second\n\nbody")?;
    let tag_object = wc.annotated_tag("v1.1.0", &c2, "release 1.1.0")?;
    wc.tag("v2.0.0-rc.1", &c2)?;
    wc.create_branch("feature", &c1)?;
    wc.checkout("feature")?;
    let c3 = wc.commit(&[("feature.txt", "on a branch\n")], "feature work")?;
    wc.push_ref("refs/pull/1/head", &c3)?;
    wc.checkout("master")?;
    Ok(Fixture {
        server,
        repo,
        wc,
        c1,
        c2,
        c3,
        tag_object,
    })
}

#[tokio::test]
async fn http_remote_refs_lists_branches_tags_and_head() -> Result<()> {
    let f = fixture()?;
    let http = f.server.serve_http(HttpOptions::default())?;
    let refs = refs_of(&http.url("app"), &GitAuth::anonymous()).await;
    assert_eq!(refs.head.as_deref(), Some("refs/heads/master"));
    assert_eq!(refs.branch("master").unwrap().commit(), f.c2);
    assert_eq!(refs.branch("feature").unwrap().commit(), f.c3);
    assert_eq!(refs.get("refs/pull/1/head").unwrap().commit(), f.c3);
    assert_eq!(refs.tag("v1.0.0").unwrap().object, f.c1);
    assert_eq!(refs.tag("v1.0.0").unwrap().peeled, None);
    let annotated = refs.tag("v1.1.0").unwrap();
    assert_eq!(annotated.object, f.tag_object);
    assert_eq!(annotated.peeled.as_deref(), Some(f.c2.as_str()));
    assert_eq!(
        refs.branches().map(|(n, _)| n).collect::<Vec<_>>(),
        ["feature", "master"]
    );
    assert_eq!(
        refs.tags().map(|(n, _)| n).collect::<Vec<_>>(),
        ["v1.0.0", "v1.1.0", "v2.0.0-rc.1"]
    );
    // The remote agrees with git itself.
    for (name, sha) in f.repo.refs()? {
        assert_eq!(refs.get(&name).unwrap().object, sha, "{name}");
    }
    assert_eq!(refs.url, http.url("app"));

    // Asking for what one checkout needs lists only that.
    let auth = GitAuth::anonymous();
    let url = http.url("app");
    let names = |refs: &RemoteRefs| refs.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
    let only = git::remote_refs_for(&url, &auth, &branch("feature"), TIMEOUT).await?;
    assert_eq!(names(&only), ["refs/heads/feature"]);
    let only = git::remote_refs_for(&url, &auth, &GitCheckout::SemVer("*".into()), TIMEOUT).await?;
    assert_eq!(
        names(&only),
        [
            "refs/tags/v1.0.0",
            "refs/tags/v1.1.0",
            "refs/tags/v2.0.0-rc.1"
        ]
    );
    assert_eq!(
        only.tag("v1.1.0").unwrap().peeled.as_deref(),
        Some(f.c2.as_str())
    );
    let only = git::remote_refs_for(
        &url,
        &auth,
        &GitCheckout::Name("refs/pull/1/head".into()),
        TIMEOUT,
    )
    .await?;
    assert_eq!(names(&only), ["refs/pull/1/head"]);
    Ok(())
}

#[tokio::test]
async fn http_checkout_of_every_ref_kind() -> Result<()> {
    let f = fixture()?;
    let http = f.server.serve_http(HttpOptions::default())?;
    let url = http.url("app");
    let auth = GitAuth::anonymous();
    let opts = CheckoutOptions::default();

    // Default branch (master): files, modes and symlinks as committed.
    let (resolved, commit, dir) = check_out(&url, &auth, branch("master"), &opts).await?;
    assert_eq!(resolved.revision, format!("master@sha1:{}", f.c2));
    assert_eq!(commit.hash, f.c2);
    assert_eq!(commit.revision, resolved.revision);
    assert_eq!(commit.summary(), "second");
    assert_eq!(commit.message, "second\n\nbody\n");
    assert_eq!(
        commit.author.as_ref().unwrap().email,
        e2e::git_server::AUTHOR_EMAIL
    );
    assert_eq!(commit.signature, None);
    assert_eq!(commit.tag, None);
    let tree = files(&dest(&dir));
    assert_eq!(tree["deploy/app.yaml"], "version: 2\n");
    assert_eq!(tree["deploy/link.yaml"], "-> app.yaml");
    assert!(!dest(&dir).join(".git").exists());
    assert!(!tree.contains_key("feature.txt"));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &str| {
            std::fs::metadata(dest(&dir).join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert_eq!(mode("README.md"), 0o644);
    }

    // A lightweight tag.
    let (resolved, commit, dir) =
        check_out(&url, &auth, GitCheckout::Tag("v1.0.0".into()), &opts).await?;
    assert_eq!(resolved.revision, format!("v1.0.0@sha1:{}", f.c1));
    assert_eq!(commit.hash, f.c1);
    let tag = commit.tag.as_ref().unwrap();
    assert_eq!((tag.name.as_str(), tag.object.as_deref()), ("v1.0.0", None));
    assert_eq!(files(&dest(&dir))["deploy/app.yaml"], "version: 1\n");

    // An annotated tag: the commit it points to, and the tag object with its message.
    let (resolved, commit, dir) =
        check_out(&url, &auth, GitCheckout::Tag("v1.1.0".into()), &opts).await?;
    assert_eq!(resolved.revision, format!("v1.1.0@sha1:{}", f.c2));
    assert_eq!(commit.hash, f.c2);
    let tag = commit.tag.as_ref().unwrap();
    assert_eq!(tag.object.as_deref(), Some(f.tag_object.as_str()));
    assert_eq!(tag.message, "release 1.1.0\n");
    assert_eq!(
        tag.tagger.as_ref().unwrap().name,
        e2e::git_server::AUTHOR_NAME
    );
    assert_eq!(files(&dest(&dir))["deploy/app.yaml"], "version: 2\n");

    // A SemVer range: the highest release tag in range (pre-releases excluded).
    let (resolved, commit, _dir) = check_out(
        &url,
        &auth,
        GitCheckout::SemVer(">=1.0.0 <2.0.0".into()),
        &opts,
    )
    .await?;
    assert_eq!(resolved.tag.as_deref(), Some("v1.1.0"));
    assert_eq!(resolved.revision, format!("v1.1.0@sha1:{}", f.c2));
    assert_eq!(commit.revision, resolved.revision);
    let (resolved, _, _dir) =
        check_out(&url, &auth, GitCheckout::SemVer("1.0.x".into()), &opts).await?;
    assert_eq!(resolved.revision, format!("v1.0.0@sha1:{}", f.c1));
    let (resolved, _, _dir) =
        check_out(&url, &auth, GitCheckout::SemVer(">=2.0.0-0".into()), &opts).await?;
    assert_eq!(resolved.tag.as_deref(), Some("v2.0.0-rc.1"));
    let err = check_out(&url, &auth, GitCheckout::SemVer("~3".into()), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::NoMatchingTag { .. }), "{err}");

    // A commit by hash, alone and with its branch.
    let commit_only = GitCheckout::Commit {
        commit: f.c3.clone(),
        branch: None,
        name: None,
    };
    let (resolved, commit, dir) = check_out(&url, &auth, commit_only, &opts).await?;
    assert_eq!(resolved.revision, format!("sha1:{}", f.c3));
    assert_eq!(commit.hash, f.c3);
    assert_eq!(files(&dest(&dir))["feature.txt"], "on a branch\n");
    let with_branch = GitCheckout::Commit {
        commit: f.c1.clone(),
        branch: Some("master".into()),
        name: None,
    };
    let (resolved, commit, dir) = check_out(&url, &auth, with_branch, &opts).await?;
    assert_eq!(resolved.revision, format!("master@sha1:{}", f.c1));
    assert_eq!(commit.hash, f.c1);
    assert_eq!(files(&dest(&dir))["deploy/app.yaml"], "version: 1\n");

    // A full reference name, such as a pull request head.
    let (resolved, commit, dir) = check_out(
        &url,
        &auth,
        GitCheckout::Name("refs/pull/1/head".into()),
        &opts,
    )
    .await?;
    assert_eq!(resolved.revision, format!("refs/pull/1/head@sha1:{}", f.c3));
    assert_eq!(commit.hash, f.c3);
    assert!(files(&dest(&dir)).contains_key("feature.txt"));
    Ok(())
}

#[tokio::test]
async fn unknown_refs_are_ref_not_found() -> Result<()> {
    let f = fixture()?;
    let http = f.server.serve_http(HttpOptions::default())?;
    let url = http.url("app");
    let refs = refs_of(&url, &GitAuth::anonymous()).await;
    for (checkout, kind) in [
        (branch("nope"), "branch"),
        (GitCheckout::Tag("v9.9.9".into()), "tag"),
        (GitCheckout::Name("refs/pull/2/head".into()), "reference"),
    ] {
        let err = git::resolve(&checkout, &refs).unwrap_err();
        assert!(
            matches!(&err, GitError::RefNotFound { kind: k, .. } if *k == kind),
            "{err:?}"
        );
    }
    // A commit the remote does not have.
    let missing = GitCheckout::Commit {
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        branch: None,
        name: None,
    };
    let err = check_out(
        &url,
        &GitAuth::anonymous(),
        missing,
        &CheckoutOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, GitError::RefNotFound { kind: "commit", .. }),
        "{err:?}"
    );
    // A repository that does not exist.
    let err = git::remote_refs(&http.url("missing"), &GitAuth::anonymous(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitError::RepositoryNotFound { .. }),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn force_pushed_deleted_and_moved_refs() -> Result<()> {
    let f = fixture()?;
    let http = f.server.serve_http(HttpOptions::default())?;
    let url = http.url("app");
    let auth = GitAuth::anonymous();
    let opts = CheckoutOptions::default();

    let (before, _, _) = check_out(&url, &auth, branch("feature"), &opts).await?;
    assert_eq!(before.commit, f.c3);

    // A rewritten branch: the new tip, whose history no longer holds the old one.
    let mut wc = f.repo.working_copy()?;
    wc.set_date("1704240000 +0000");
    wc.checkout("feature")?;
    wc.force_push_branch("feature", &f.c1)?;
    let rewritten = wc.commit(&[("feature.txt", "rewritten\n")], "rewrite")?;
    let (after, commit, dir) = check_out(&url, &auth, branch("feature"), &opts).await?;
    assert_eq!(after.commit, rewritten);
    assert_ne!(after.revision, before.revision);
    assert_eq!(commit.hash, rewritten);
    assert_eq!(files(&dest(&dir))["feature.txt"], "rewritten\n");
    assert!(!after.is_same_revision(&before.revision));

    // A deleted branch.
    f.wc.delete_branch("feature")?;
    let refs = refs_of(&url, &auth).await;
    let err = git::resolve(&branch("feature"), &refs).unwrap_err();
    assert!(
        matches!(err, GitError::RefNotFound { kind: "branch", .. }),
        "{err:?}"
    );
    assert!(err.is_retryable() && !err.is_stalled());

    // A moved tag.
    f.wc.tag("v1.0.0", &f.c2)?;
    let (moved, commit, dir) =
        check_out(&url, &auth, GitCheckout::Tag("v1.0.0".into()), &opts).await?;
    assert_eq!(moved.revision, format!("v1.0.0@sha1:{}", f.c2));
    assert_eq!(commit.hash, f.c2);
    assert_eq!(files(&dest(&dir))["deploy/app.yaml"], "version: 2\n");
    Ok(())
}

#[tokio::test]
async fn http_basic_auth() -> Result<()> {
    let f = fixture()?;
    let http = f
        .server
        .serve_http(HttpOptions::default().basic_auth("flux", "s3cret"))?;
    let url = http.url("app");

    let good = GitAuth::from_secret(
        &secret(&[("username", b"flux"), ("password", b"s3cret")]),
        &url,
    )?;
    let (resolved, commit, dir) =
        check_out(&url, &good, branch("master"), &CheckoutOptions::default()).await?;
    assert_eq!(commit.hash, f.c2);
    assert_eq!(resolved.revision, format!("master@sha1:{}", f.c2));
    assert!(files(&dest(&dir)).contains_key("deploy/app.yaml"));
    assert!(
        http.requests()
            .iter()
            .any(|r| r.credential == Some(e2e::git_server::Credential::Basic("flux".into())))
    );

    let wrong = GitAuth::from_secret(
        &secret(&[("username", b"flux"), ("password", b"wrong-password")]),
        &url,
    )?;
    let err = git::remote_refs(&url, &wrong, TIMEOUT).await.unwrap_err();
    assert!(
        matches!(err, GitError::AuthenticationFailed { .. }),
        "{err:?}"
    );
    assert!(err.is_auth());
    let chain = format!("{err} {:?}", err);
    assert!(!chain.contains("wrong-password"), "{chain}");

    let err = git::remote_refs(&url, &GitAuth::anonymous(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitError::AuthenticationFailed { .. }),
        "{err:?}"
    );

    // Credentials in the URL work too, and never show in messages.
    let with_userinfo = url.replace("http://", "http://flux:s3cret@");
    let auth = GitAuth::from_secret(&no_secret(), &with_userinfo)?;
    let refs = refs_of(&with_userinfo, &auth).await;
    assert_eq!(refs.branch("master").unwrap().commit(), f.c2);
    assert!(!refs.url.contains("s3cret"));
    Ok(())
}

#[tokio::test]
async fn http_bearer_token() -> Result<()> {
    let f = fixture()?;
    let http = f
        .server
        .serve_http(HttpOptions::default().bearer_token("t0ken"))?;
    let url = http.url("app");
    let auth = GitAuth::from_secret(&secret(&[("bearerToken", b"t0ken")]), &url)?;
    let (_, commit, _dir) =
        check_out(&url, &auth, branch("master"), &CheckoutOptions::default()).await?;
    assert_eq!(commit.hash, f.c2);
    assert!(
        http.requests()
            .iter()
            .all(|r| r.credential == Some(e2e::git_server::Credential::Bearer)),
        "{:?}",
        http.requests()
    );
    let wrong = GitAuth::from_secret(&secret(&[("bearerToken", b"nope")]), &url)?;
    let err = git::remote_refs(&url, &wrong, TIMEOUT).await.unwrap_err();
    assert!(
        matches!(err, GitError::AuthenticationFailed { .. }),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn https_with_a_custom_ca() -> Result<()> {
    let f = fixture()?;
    let https = f
        .server
        .serve_http(HttpOptions::default().tls().basic_auth("flux", "s3cret"))?;
    let url = https.url("app");
    assert!(url.starts_with("https://"));
    let ca = https.ca_pem().unwrap().as_bytes();

    let auth = GitAuth::from_secret(
        &secret(&[
            ("username", b"flux"),
            ("password", b"s3cret"),
            ("ca.crt", ca),
        ]),
        &url,
    )?;
    let (_, commit, dir) =
        check_out(&url, &auth, branch("master"), &CheckoutOptions::default()).await?;
    assert_eq!(commit.hash, f.c2);
    assert!(files(&dest(&dir)).contains_key("deploy/app.yaml"));

    // The legacy key name.
    let legacy = GitAuth::from_secret(
        &secret(&[
            ("username", b"flux"),
            ("password", b"s3cret"),
            ("caFile", ca),
        ]),
        &url,
    )?;
    refs_of(&url, &legacy).await;

    // Without the CA the server is not trusted.
    let untrusted = GitAuth::from_secret(
        &secret(&[("username", b"flux"), ("password", b"s3cret")]),
        &url,
    )?;
    let err = git::remote_refs(&url, &untrusted, TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitError::CertificateInvalid { .. }),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn ssh_with_identity_and_known_hosts() -> Result<()> {
    let f = fixture()?;
    let ssh = f.server.serve_ssh()?;
    let url = ssh.url("app");
    let identity = ssh.identity().private_key.as_bytes().to_vec();
    let known_hosts = ssh.known_hosts().as_bytes().to_vec();
    let auth = GitAuth::from_secret(
        &secret(&[
            ("identity", &identity),
            ("identity.pub", ssh.identity().public_key.as_bytes()),
            ("known_hosts", &known_hosts),
        ]),
        &url,
    )?;
    let refs = refs_of(&url, &auth).await;
    assert_eq!(refs.branch("master").unwrap().commit(), f.c2);
    assert_eq!(
        refs.tag("v1.1.0").unwrap().peeled.as_deref(),
        Some(f.c2.as_str())
    );

    let (resolved, commit, dir) = check_out(
        &url,
        &auth,
        GitCheckout::Tag("v1.1.0".into()),
        &CheckoutOptions::default(),
    )
    .await?;
    assert_eq!(resolved.revision, format!("v1.1.0@sha1:{}", f.c2));
    assert_eq!(
        commit.tag.unwrap().object.as_deref(),
        Some(f.tag_object.as_str())
    );
    assert_eq!(files(&dest(&dir))["deploy/app.yaml"], "version: 2\n");

    // A host key that is not the server's.
    let other = generate_ssh_key(SshKeyKind::Ed25519, "other-host")?;
    let wrong_hosts = format!(
        "[127.0.0.1]:{} {}\n",
        ssh.port(),
        other.public_key_without_comment()
    );
    let auth = GitAuth::from_secret(
        &secret(&[
            ("identity", &identity),
            ("known_hosts", wrong_hosts.as_bytes()),
        ]),
        &url,
    )?;
    let err = git::remote_refs(&url, &auth, TIMEOUT).await.unwrap_err();
    assert!(matches!(err, GitError::HostKeyMismatch { .. }), "{err:?}");

    // An identity the server does not know.
    let stranger = generate_ssh_key(SshKeyKind::Ed25519, "stranger")?;
    let auth = GitAuth::from_secret(
        &secret(&[
            ("identity", stranger.private_key.as_bytes()),
            ("known_hosts", &known_hosts),
        ]),
        &url,
    )?;
    let err = git::remote_refs(&url, &auth, TIMEOUT).await.unwrap_err();
    assert!(
        matches!(err, GitError::AuthenticationFailed { .. }),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn ssh_identity_encrypted_with_a_password() -> Result<()> {
    let f = fixture()?;
    let ssh = f.server.serve_ssh()?;
    let url = ssh.url("app");
    let key = generate_ssh_key(SshKeyKind::Ed25519, "encrypted")?;
    ssh.authorize_key(&key.public_key)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("id");
    std::fs::write(&path, &key.private_key)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    let status = Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", "pass phrase", "-P", "", "-f"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .status()?;
    ensure!(status.success(), "ssh-keygen -p failed");
    let encrypted = std::fs::read(&path)?;
    let known_hosts = ssh.known_hosts().as_bytes();

    let auth = GitAuth::from_secret(
        &secret(&[
            ("identity", &encrypted),
            ("known_hosts", known_hosts),
            ("password", b"pass phrase"),
        ]),
        &url,
    )?;
    assert_eq!(
        refs_of(&url, &auth)
            .await
            .branch("master")
            .unwrap()
            .commit(),
        f.c2
    );

    let err = GitAuth::from_secret(
        &secret(&[
            ("identity", &encrypted),
            ("known_hosts", known_hosts),
            ("password", b"wrong"),
        ]),
        &url,
    )
    .unwrap_err();
    assert!(matches!(err, GitError::InvalidCredentials(_)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn sparse_checkout_writes_only_the_chosen_directories() -> Result<()> {
    let f = fixture()?;
    let http = f.server.serve_http(HttpOptions::default())?;
    let url = http.url("app");
    let opts = CheckoutOptions {
        sparse_checkout: vec!["./deploy/prod/".into()],
        ..CheckoutOptions::default()
    };
    let (_, commit, dir) = check_out(&url, &GitAuth::anonymous(), branch("master"), &opts).await?;
    assert_eq!(commit.hash, f.c2);
    assert_eq!(
        files(&dest(&dir)).into_keys().collect::<Vec<_>>(),
        ["deploy/prod/kustomization.yaml"]
    );

    let opts = CheckoutOptions {
        sparse_checkout: vec!["deploy".into(), "missing".into()],
        ..CheckoutOptions::default()
    };
    let err = check_out(&url, &GitAuth::anonymous(), branch("master"), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitError::SparseCheckoutPathNotFound(ref d) if d == "missing"),
        "{err:?}"
    );

    // A size limit counts file content.
    let opts = CheckoutOptions {
        max_size: Some(10),
        ..CheckoutOptions::default()
    };
    let err = check_out(&url, &GitAuth::anonymous(), branch("master"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::TooLarge { limit: 10 }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn submodules_are_checked_out_recursively_when_asked() -> Result<()> {
    let server = GitServer::new()?;
    let http = server.serve_http(HttpOptions::default().basic_auth("flux", "s3cret"))?;
    // lib <- nested (a submodule of lib) ; app has lib as a submodule.
    let nested = server.create_repo("nested")?;
    let nested_wc = nested.working_copy()?;
    let nested_commit = nested_wc.commit(&[("deep.txt", "deep\n")], "nested")?;
    let lib = server.create_repo("lib")?;
    let lib_wc = lib.working_copy()?;
    lib_wc.commit(&[("lib.txt", "lib v1\n")], "lib")?;
    let lib_commit = lib_wc.add_submodule(
        "vendor/nested",
        "../nested.git",
        &nested_commit,
        "add nested",
    )?;
    lib_wc.commit(&[("lib.txt", "lib v2 (not recorded)\n")], "later")?;
    let app = server.create_repo("app")?;
    let app_wc = app.working_copy()?;
    app_wc.commit(&[("app.txt", "app\n")], "app")?;
    let app_commit =
        app_wc.add_submodule("modules/lib", &http.url("lib"), &lib_commit, "add lib")?;

    let url = http.url("app");
    let auth = GitAuth::basic("flux", "s3cret");
    let (_, commit, dir) =
        check_out(&url, &auth, branch("master"), &CheckoutOptions::default()).await?;
    assert_eq!(commit.hash, app_commit);
    let tree = files(&dest(&dir));
    assert_eq!(tree.keys().collect::<Vec<_>>(), [".gitmodules", "app.txt"]);
    assert!(dest(&dir).join("modules/lib").is_dir());

    let opts = CheckoutOptions {
        recurse_submodules: true,
        ..CheckoutOptions::default()
    };
    let (_, _, dir) = check_out(&url, &auth, branch("master"), &opts).await?;
    let tree = files(&dest(&dir));
    assert_eq!(
        tree["modules/lib/lib.txt"], "lib v1\n",
        "the recorded commit, not the tip"
    );
    assert_eq!(tree["modules/lib/vendor/nested/deep.txt"], "deep\n");
    Ok(())
}

/// A TCP server that accepts connections and never answers.
fn silent_listener() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[tokio::test]
async fn a_host_that_never_answers_times_out_on_time() -> Result<()> {
    let (listener, port) = silent_listener();
    // Accept and hold connections, send nothing.
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    let listener = listener.try_clone()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let timeout = Duration::from_secs(2);
    let margin = Duration::from_millis(1500);

    let url = format!("http://127.0.0.1:{port}/app.git");
    let started = Instant::now();
    let err = git::remote_refs(&url, &GitAuth::anonymous(), timeout)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(took >= timeout && took < timeout + margin, "{took:?}");

    // Over SSH too (the banner never comes).
    let key = generate_ssh_key(SshKeyKind::Ed25519, "k")?;
    let url = format!("ssh://git@127.0.0.1:{port}/app.git");
    let auth = GitAuth::from_secret(
        &secret(&[
            ("identity", key.private_key.as_bytes()),
            (
                "known_hosts",
                format!("[127.0.0.1]:{port} {}\n", key.public_key_without_comment()).as_bytes(),
            ),
        ]),
        &url,
    )?;
    let started = Instant::now();
    let err = git::remote_refs(&url, &auth, timeout).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert!(took < timeout + margin, "{took:?}");

    // And a checkout.
    let resolved = git::resolve(
        &branch("master"),
        &RemoteRefs::new(
            "x",
            None,
            [(
                "refs/heads/master".to_string(),
                git::RefTarget {
                    object: "0123456789abcdef0123456789abcdef01234567".into(),
                    peeled: None,
                },
            )],
        ),
    )?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let err = git::checkout(
        &format!("http://127.0.0.1:{port}/app.git"),
        &GitAuth::anonymous(),
        &resolved,
        &dir.path().join("out"),
        &CheckoutOptions {
            timeout,
            ..CheckoutOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < timeout + margin);
    // A closed port is unreachable, not a timeout.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let err = git::remote_refs(
        &format!("http://127.0.0.1:{closed}/app.git"),
        &GitAuth::anonymous(),
        timeout,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::RemoteUnreachable { .. }), "{err:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// A throwaway GnuPG home with one ed25519 signing key.
struct Gpg {
    home: tempfile::TempDir,
    /// A `gpg.program` for git that uses this home.
    program: PathBuf,
    fingerprint: String,
}

impl Gpg {
    fn new(name: &str) -> Result<Self> {
        let home = tempfile::Builder::new().prefix("gnupg-").tempdir()?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))?;
        }
        let program = home.path().join("gpg.sh");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\nexec gpg --homedir '{}' --batch --pinentry-mode loopback --passphrase '' \"$@\"\n",
                home.path().display()
            ),
        )?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))?;
        }
        let run = |args: &[&str]| -> Result<String> {
            let out = Command::new(&program).args(args).output()?;
            ensure!(
                out.status.success(),
                "gpg {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        run(&[
            "--quick-gen-key",
            &format!("{name} <{name}@ferroflux.dev>"),
            "ed25519",
            "sign",
            "never",
        ])?;
        let listing = run(&["--with-colons", "--list-keys"])?;
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .context("no fingerprint")?
            .to_string();
        Ok(Self {
            home,
            program,
            fingerprint,
        })
    }

    fn key_id(&self) -> String {
        self.fingerprint[self.fingerprint.len() - 16..].to_string()
    }

    fn public_key(&self) -> Result<Vec<u8>> {
        let out = Command::new(&self.program)
            .args(["--armor", "--export", &self.fingerprint])
            .output()?;
        ensure!(out.status.success());
        let _ = self.home.path();
        Ok(out.stdout)
    }

    fn git_config(&self) -> Vec<String> {
        vec![
            "-c".into(),
            format!("gpg.program={}", self.program.display()),
            "-c".into(),
            format!("user.signingkey={}", self.fingerprint),
        ]
    }
}

/// An SSH signing key as a file, for `gpg.format=ssh`.
struct SshSigner {
    _dir: tempfile::TempDir,
    key_file: PathBuf,
    public_key: String,
}

impl SshSigner {
    fn new() -> Result<Self> {
        let key = generate_ssh_key(SshKeyKind::Ed25519, "signer")?;
        let dir = tempfile::tempdir()?;
        let key_file = dir.path().join("signing_key");
        std::fs::write(&key_file, &key.private_key)?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Self {
            _dir: dir,
            key_file,
            public_key: key.public_key,
        })
    }

    fn git_config(&self) -> Vec<String> {
        vec![
            "-c".into(),
            "gpg.format=ssh".into(),
            "-c".into(),
            format!("user.signingkey={}", self.key_file.display()),
        ]
    }

    fn fingerprint(&self) -> Result<String> {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(self.public_key.as_bytes())?;
                child.wait_with_output()
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .split_whitespace()
            .nth(1)
            .context("no fingerprint")?
            .to_string())
    }
}

/// Runs git in the working copy with extra `-c` options.
fn git_with(wc: &WorkingCopy, config: &[String], args: &[&str]) -> Result<String> {
    let mut all: Vec<&str> = config.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    wc.git(&all)
}

/// Makes a signed commit on master and a signed annotated tag `tag` on it; pushes both.
fn signed_commit_and_tag(
    wc: &WorkingCopy,
    config: &[String],
    file: &str,
    tag: &str,
) -> Result<String> {
    std::fs::write(wc.path().join(file), "signed\n")?;
    wc.git(&["add", "--all"])?;
    git_with(
        wc,
        config,
        &["commit", "--quiet", "-S", "-m", &format!("signed {file}")],
    )?;
    git_with(
        wc,
        config,
        &["tag", "-s", "-m", &format!("signed tag {tag}"), tag],
    )?;
    wc.git(&[
        "push",
        "--quiet",
        "origin",
        "HEAD:refs/heads/master",
        &format!("refs/tags/{tag}"),
    ])?;
    wc.head()
}

#[tokio::test]
async fn pgp_signatures_of_commits_and_tags() -> Result<()> {
    let f = fixture()?;
    let http = f.server.serve_http(HttpOptions::default())?;
    let url = http.url("app");
    let signer = Gpg::new("signer")?;
    let stranger = Gpg::new("stranger")?;
    let sha = signed_commit_and_tag(&f.wc, &signer.git_config(), "pgp.txt", "v3.0.0")?;

    let trusted = TrustedKeys::from_secret(&secret(&[
        ("author.asc", &signer.public_key()?),
        ("not-a-key.asc", b"garbage"),
    ]))?;
    let untrusted = TrustedKeys::from_secret(&secret(&[("other.asc", &stranger.public_key()?)]))?;

    let (_, commit, _dir) = check_out(
        &url,
        &GitAuth::anonymous(),
        GitCheckout::SemVer(">=3".into()),
        &CheckoutOptions::default(),
    )
    .await?;
    assert_eq!(commit.hash, sha);
    assert!(
        commit
            .signature
            .as_deref()
            .unwrap()
            .starts_with("-----BEGIN PGP SIGNATURE-----")
    );

    let verified = git::verify(&commit, GitVerificationMode::TagAndHead, &trusted)?;
    assert_eq!(
        verified.commit_key.as_deref(),
        Some(signer.key_id().as_str())
    );
    assert_eq!(verified.tag_key.as_deref(), Some(signer.key_id().as_str()));
    let verified = git::verify(&commit, GitVerificationMode::Head, &trusted)?;
    assert_eq!(verified.tag_key, None);

    for mode in [
        GitVerificationMode::Head,
        GitVerificationMode::Tag,
        GitVerificationMode::TagAndHead,
    ] {
        let err = git::verify(&commit, mode, &untrusted).unwrap_err();
        assert!(
            matches!(err, GitError::VerificationFailed { .. }),
            "{err:?}"
        );
    }

    // A tampered payload no longer verifies.
    let mut tampered = commit.clone();
    tampered.signed_payload.extend_from_slice(b"tampered");
    assert!(git::verify(&tampered, GitVerificationMode::Head, &trusted).is_err());

    // An unsigned commit, and a lightweight tag, fail.
    let (_, unsigned, _dir) = check_out(
        &url,
        &GitAuth::anonymous(),
        GitCheckout::Tag("v1.0.0".into()),
        &CheckoutOptions::default(),
    )
    .await?;
    let err = git::verify(&unsigned, GitVerificationMode::Head, &trusted).unwrap_err();
    assert!(err.to_string().contains("not signed"), "{err}");
    let err = git::verify(&unsigned, GitVerificationMode::Tag, &trusted).unwrap_err();
    assert!(err.to_string().contains("lightweight"), "{err}");
    Ok(())
}

#[tokio::test]
async fn ssh_signatures_of_commits_and_tags() -> Result<()> {
    let f = fixture()?;
    let ssh = f.server.serve_ssh()?;
    let url = ssh.url("app");
    let auth = GitAuth::from_secret(
        &secret(&[
            ("identity", ssh.identity().private_key.as_bytes()),
            ("known_hosts", ssh.known_hosts().as_bytes()),
        ]),
        &url,
    )?;
    let signer = SshSigner::new()?;
    let stranger = SshSigner::new()?;
    let sha = signed_commit_and_tag(&f.wc, &signer.git_config(), "ssh.txt", "v4.0.0")?;

    let (resolved, commit, _dir) = check_out(
        &url,
        &auth,
        GitCheckout::Name("refs/tags/v4.0.0".into()),
        &CheckoutOptions::default(),
    )
    .await?;
    assert_eq!(commit.hash, sha);
    assert_eq!(resolved.revision, format!("refs/tags/v4.0.0@sha1:{sha}"));
    assert!(
        commit
            .signature
            .as_deref()
            .unwrap()
            .starts_with("-----BEGIN SSH SIGNATURE-----")
    );

    let trusted = TrustedKeys::from_secret(&secret(&[(
        "authors",
        format!("# the release team\n{}\n", signer.public_key).as_bytes(),
    )]))?;
    let verified = git::verify(&commit, GitVerificationMode::TagAndHead, &trusted)?;
    let fingerprint = signer.fingerprint()?;
    assert!(fingerprint.starts_with("SHA256:"));
    assert_eq!(verified.commit_key.as_deref(), Some(fingerprint.as_str()));
    assert_eq!(verified.tag_key.as_deref(), Some(fingerprint.as_str()));

    let untrusted =
        TrustedKeys::from_secret(&secret(&[("k.pub", stranger.public_key.as_bytes())]))?;
    let err = git::verify(&commit, GitVerificationMode::Head, &untrusted).unwrap_err();
    assert!(
        matches!(err, GitError::VerificationFailed { .. }),
        "{err:?}"
    );
    let err = git::verify(&commit, GitVerificationMode::Tag, &untrusted).unwrap_err();
    assert!(err.to_string().contains("tag 'v4.0.0'"), "{err}");

    // PGP keys do not verify SSH signatures, and the other way round.
    let gpg = Gpg::new("pgp-only")?;
    let pgp_only = TrustedKeys::from_secret(&secret(&[("a.asc", &gpg.public_key()?)]))?;
    assert!(git::verify(&commit, GitVerificationMode::Head, &pgp_only).is_err());
    let _ = f.c1;
    Ok(())
}

#[tokio::test]
async fn a_crafted_tree_cannot_write_outside_the_checkout() -> Result<()> {
    let server = GitServer::new()?;
    let repo = server.create_repo("evil")?;
    let wc = repo.working_copy()?;
    wc.commit(&[("README.md", "hi\n")], "first")?;
    // A tree with a symlink `evil` -> <outside> and a folder also named `evil` holding `f`:
    // Git never makes one, `git mktree` does, and a naive checkout would write `<outside>/f`.
    let outside = tempfile::tempdir()?;
    let hash = |data: &str| -> Result<String> {
        let mut child = e2e::git_server::git_command()
            .current_dir(wc.path())
            .args(["hash-object", "-w", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(data.as_bytes())?;
        }
        Ok(String::from_utf8(child.wait_with_output()?.stdout)?
            .trim()
            .to_string())
    };
    let mktree = |lines: &str| -> Result<String> {
        let mut child = e2e::git_server::git_command()
            .current_dir(wc.path())
            .args(["mktree"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(lines.as_bytes())?;
        }
        Ok(String::from_utf8(child.wait_with_output()?.stdout)?
            .trim()
            .to_string())
    };
    let link = hash(&outside.path().display().to_string())?;
    let file = hash("pwned\n")?;
    let inner = mktree(&format!("100644 blob {file}\tf\n"))?;
    let root = mktree(&format!(
        "120000 blob {link}\tevil\n040000 tree {inner}\tevil\n"
    ))?;
    let commit = wc.git(&["commit-tree", &root, "-m", "crafted"])?;
    wc.git(&[
        "push",
        "--quiet",
        "--force",
        "origin",
        &format!("{commit}:refs/heads/master"),
    ])?;

    let http = server.serve_http(HttpOptions::default())?;
    let err = check_out(
        &http.url("evil"),
        &GitAuth::anonymous(),
        branch("master"),
        &CheckoutOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::Checkout { .. }), "{err:?}");
    assert!(!outside.path().join("f").exists());
    assert_eq!(std::fs::read_dir(outside.path())?.count(), 0);
    Ok(())
}
