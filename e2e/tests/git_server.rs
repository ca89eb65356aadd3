//! The test Git servers, exercised with the real `git` and `ssh` clients: clone over smart HTTP(S) with
//! and without credentials, over SSH with a pinned host key, and the working-copy helpers as a client
//! sees them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

use e2e::git_server::{
    Credential, GitServer, HttpOptions, SshKeyKind, SshOptions, generate_ssh_key, git_command,
    ssh_command,
};
use tempfile::TempDir;

/// Runs the git client with `config` (`key=value`, passed as `-c`) and `envs`.
fn git(dir: &Path, config: &[&str], envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = git_command();
    cmd.current_dir(dir);
    for c in config {
        cmd.args(["-c", c]);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

/// Clones `url` into a fresh folder; returns the folder (the clone is `<folder>/c`) and git's output.
fn clone(url: &str, config: &[&str], envs: &[(&str, &str)]) -> (TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let out = git(dir.path(), config, envs, &["clone", "--quiet", url, "c"]);
    (dir, out)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "git failed: {}", stderr(out));
}

fn head_of(clone: &TempDir) -> String {
    let out = git(&clone.path().join("c"), &[], &[], &["rev-parse", "HEAD"]);
    assert_ok(&out);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn read(clone: &TempDir, path: &str) -> String {
    std::fs::read_to_string(clone.path().join("c").join(path)).unwrap()
}

/// `git ls-remote` as a map from ref name to sha.
fn ls_remote(url: &str, config: &[&str]) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let out = git(dir.path(), config, &[], &["ls-remote", url]);
    assert_ok(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (name.to_string(), sha.to_string()))
        .collect()
}

#[test]
fn http_clone_without_auth_serves_what_was_pushed() {
    let started = Instant::now();
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("org/app").unwrap();
    let http = server.serve_http(HttpOptions::default()).unwrap();
    eprintln!("git HTTP server started in {:?}", started.elapsed());

    let wc = repo.working_copy().unwrap();
    let sha = wc
        .commit(&[("deploy/app.yaml", "kind: ConfigMap\n")], "first")
        .unwrap();
    assert_eq!(repo.rev_parse("refs/heads/master").unwrap(), sha);

    let url = http.url("org/app");
    assert_eq!(url, format!("http://127.0.0.1:{}/org/app.git", http.port()));
    let (dst, out) = clone(&url, &[], &[]);
    assert_ok(&out);
    assert_eq!(head_of(&dst), sha);
    assert_eq!(read(&dst, "deploy/app.yaml"), "kind: ConfigMap\n");

    let requests = http.requests();
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.path == "/org/app.git/info/refs"
            && r.query.as_deref() == Some("service=git-upload-pack")
            && r.git_protocol.as_deref() == Some("version=2")
            && r.status == 200),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.path == "/org/app.git/git-upload-pack"),
        "{requests:#?}"
    );
    assert!(requests.iter().all(|r| r.credential.is_none()));

    let (_, missing) = clone(&http.url("org/nope"), &[], &[]);
    assert!(!missing.status.success());
    assert_eq!(http.requests().last().unwrap().status, 404);
}

#[tokio::test]
async fn http_basic_auth_requires_the_right_password() {
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("app").unwrap();
    let sha = repo
        .working_copy()
        .unwrap()
        .commit(&[("a.txt", "a")], "first")
        .unwrap();
    let http = server
        .serve_http(HttpOptions::default().basic_auth("flux", "s3cret"))
        .unwrap();
    let with_user = |user: &str| http.url("app").replacen("://", &format!("://{user}@"), 1);

    let (dst, out) = clone(&with_user("flux:s3cret"), &[], &[]);
    assert_ok(&out);
    assert_eq!(head_of(&dst), sha);
    assert!(
        http.requests()
            .iter()
            .any(|r| r.credential == Some(Credential::Basic("flux".into())) && r.status == 200)
    );

    let (_, wrong) = clone(&with_user("flux:nope"), &[], &[]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("Authentication failed"),
        "{}",
        stderr(&wrong)
    );

    let (_, anonymous) = clone(&http.url("app"), &[], &[]);
    assert!(!anonymous.status.success());

    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{}/info/refs?service=git-upload-pack",
            http.url("app")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"ferroflux-git\""
    );
}

#[test]
fn http_bearer_token_is_accepted_and_checked() {
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("app").unwrap();
    let sha = repo
        .working_copy()
        .unwrap()
        .commit(&[("a.txt", "a")], "first")
        .unwrap();
    let http = server
        .serve_http(HttpOptions::default().bearer_token("tok-123"))
        .unwrap();

    let (dst, out) = clone(
        &http.url("app"),
        &["http.extraHeader=Authorization: Bearer tok-123"],
        &[],
    );
    assert_ok(&out);
    assert_eq!(head_of(&dst), sha);
    assert!(
        http.requests()
            .iter()
            .any(|r| r.credential == Some(Credential::Bearer))
    );

    let (_, wrong) = clone(
        &http.url("app"),
        &["http.extraHeader=Authorization: Bearer tok-124"],
        &[],
    );
    assert!(!wrong.status.success());
    assert!(http.requests().iter().any(|r| r.status == 401));
}

#[test]
fn https_needs_the_generated_ca() {
    let started = Instant::now();
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("app").unwrap();
    let http = server.serve_http(HttpOptions::default().tls()).unwrap();
    eprintln!("git HTTPS server started in {:?}", started.elapsed());
    let sha = repo
        .working_copy()
        .unwrap()
        .commit(&[("a.txt", "a")], "first")
        .unwrap();

    assert!(http.url("app").starts_with("https://127.0.0.1:"));
    let ca_pem = http.ca_pem().unwrap();
    assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // The PEM alone (as a secret would carry it) is enough to trust the server.
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("ca.crt");
    std::fs::write(&ca, ca_pem).unwrap();

    let trust = format!("http.sslCAInfo={}", ca.display());
    let (dst, out) = clone(&http.url("app"), &[&trust], &[]);
    assert_ok(&out);
    assert_eq!(head_of(&dst), sha);

    let (_, untrusted) = clone(&http.url("app"), &[], &[]);
    assert!(!untrusted.status.success());
    assert!(
        stderr(&untrusted).to_lowercase().contains("certificate"),
        "{}",
        stderr(&untrusted)
    );
}

#[test]
fn http_gzip_negotiation_and_authenticated_push() {
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("many").unwrap();
    let wc = repo.working_copy().unwrap();
    // 40 branches on 40 commits: the fetch request lists 40 wants, which git sends gzipped.
    let mut refspecs = vec!["push".to_string(), "--quiet".into(), "origin".into()];
    for i in 0..40 {
        wc.git(&["commit", "--quiet", "--allow-empty", "-m", &format!("c{i}")])
            .unwrap();
        refspecs.push(format!("HEAD:refs/heads/branch-{i}"));
    }
    refspecs.push("HEAD:refs/heads/master".into());
    wc.git(&refspecs.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();

    let http = server
        .serve_http(HttpOptions::default().basic_auth("bot", "pw"))
        .unwrap();
    let url = http.url("many").replacen("://", "://bot:pw@", 1);
    let (dst, out) = clone(&url, &[], &[]);
    assert_ok(&out);
    assert!(
        http.requests().iter().any(|r| r.method == "POST"
            && r.content_encoding.as_deref() == Some("gzip")
            && r.status == 200),
        "{:#?}",
        http.requests()
    );

    // Push back through the server, as image automation does; 200 KB that do not compress make a pack
    // larger than git's post buffer, so the body is streamed without a Content-Length.
    let clone_dir = dst.path().join("c");
    let mut state = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    std::fs::write(clone_dir.join("new.txt"), &noise).unwrap();
    assert_ok(&git(&clone_dir, &[], &[], &["add", "new.txt"]));
    assert_ok(&git(
        &clone_dir,
        &[],
        &[],
        &["commit", "-q", "-m", "pushed"],
    ));
    assert_ok(&git(
        &clone_dir,
        &["http.postBuffer=65536"],
        &[],
        &["push", "-q", "origin", "master"],
    ));
    assert_eq!(repo.rev_parse("master").unwrap(), head_of(&dst));
    let wc = repo.working_copy().unwrap();
    assert_eq!(std::fs::read(wc.path().join("new.txt")).unwrap(), noise);
    assert!(
        http.requests()
            .iter()
            .any(|r| r.path == "/many.git/git-receive-pack"
                && r.content_length.is_none()
                && r.status == 200),
        "{:#?}",
        http.requests()
    );
}

#[test]
fn ssh_clone_with_key_and_known_hosts() {
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("app").unwrap();
    let sha = repo
        .working_copy()
        .unwrap()
        .commit(&[("a.txt", "over ssh")], "first")
        .unwrap();
    let started = Instant::now();
    let ssh = server.serve_ssh().unwrap();
    eprintln!("sshd started in {:?}", started.elapsed());

    assert_eq!(
        ssh.url("app"),
        format!("ssh://{}@127.0.0.1:{}/app.git", ssh.user(), ssh.port())
    );
    assert!(
        ssh.known_hosts()
            .starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", ssh.port()))
    );
    let identity = &ssh.identity().private_key;
    assert!(identity.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));

    // Only what a secret would carry: the private key and the known_hosts line.
    let secret = tempfile::tempdir().unwrap();
    let key = secret.path().join("identity");
    std::fs::write(&key, identity).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let known_hosts = secret.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", ssh.known_hosts())).unwrap();
    let command = ssh_command(&key, &known_hosts);
    let (dst, out) = clone(&ssh.url("app"), &[], &[("GIT_SSH_COMMAND", &command)]);
    assert_ok(&out);
    assert_eq!(head_of(&dst), sha);
    assert_eq!(read(&dst, "a.txt"), "over ssh");

    // The ready-made command works the same.
    let (_, out) = clone(
        &ssh.url("app"),
        &[],
        &[("GIT_SSH_COMMAND", &ssh.git_ssh_command())],
    );
    assert_ok(&out);
}

#[test]
fn ssh_refuses_an_unknown_host_key_and_an_unknown_client_key() {
    let server = GitServer::new().unwrap();
    server.create_repo("app").unwrap();
    let ssh = server.serve_ssh().unwrap();
    let files = tempfile::tempdir().unwrap();

    // known_hosts pins another key for the same host and port.
    let other_host = generate_ssh_key(SshKeyKind::Ed25519, "other-host").unwrap();
    let wrong_known_hosts = files.path().join("wrong_known_hosts");
    std::fs::write(
        &wrong_known_hosts,
        format!(
            "[127.0.0.1]:{} {}\n",
            ssh.port(),
            other_host.public_key_without_comment()
        ),
    )
    .unwrap();
    let command = ssh_command(&ssh.identity_file(), &wrong_known_hosts);
    let (_, out) = clone(&ssh.url("app"), &[], &[("GIT_SSH_COMMAND", &command)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );

    // An empty known_hosts: the host is unknown, and strict checking refuses it.
    let empty = files.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let command = ssh_command(&ssh.identity_file(), &empty);
    let (_, out) = clone(&ssh.url("app"), &[], &[("GIT_SSH_COMMAND", &command)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Host key verification failed"));

    // A client key that is not authorized, until it is.
    let stranger = generate_ssh_key(SshKeyKind::Ed25519, "stranger").unwrap();
    let key = files.path().join("stranger");
    std::fs::write(&key, &stranger.private_key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let command = ssh_command(&key, &ssh.known_hosts_file());
    let (_, out) = clone(&ssh.url("app"), &[], &[("GIT_SSH_COMMAND", &command)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    ssh.authorize_key(&stranger.public_key).unwrap();
    let (_, out) = clone(&ssh.url("app"), &[], &[("GIT_SSH_COMMAND", &command)]);
    assert_ok(&out);
}

#[test]
fn ssh_serves_git_only() {
    let server = GitServer::new().unwrap();
    let ssh = server.serve_ssh().unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "{} -p {} {}@127.0.0.1 id",
        ssh.git_ssh_command(),
        ssh.port(),
        ssh.user()
    ));
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("uid="));
    // Logged in (the key and host key were accepted), then git-shell refused the command.
    assert!(
        stderr(&out).contains("unrecognized command 'id'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ssh_with_rsa_host_key_and_ecdsa_client_key() {
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("app").unwrap();
    let sha = repo
        .working_copy()
        .unwrap()
        .commit(&[("a.txt", "a")], "first")
        .unwrap();
    let ssh = server
        .serve_ssh_with(SshOptions {
            host_key: SshKeyKind::Rsa,
            client_key: SshKeyKind::EcdsaP256,
        })
        .unwrap();
    assert!(
        ssh.known_hosts()
            .starts_with(&format!("[127.0.0.1]:{} ssh-rsa ", ssh.port()))
    );
    assert!(
        ssh.identity()
            .public_key
            .starts_with("ecdsa-sha2-nistp256 ")
    );
    let (dst, out) = clone(
        &ssh.url("app"),
        &[],
        &[("GIT_SSH_COMMAND", &ssh.git_ssh_command())],
    );
    assert_ok(&out);
    assert_eq!(head_of(&dst), sha);
}

#[test]
fn working_copy_changes_refs_like_a_user() {
    let server = GitServer::new().unwrap();
    let repo = server.create_repo("app").unwrap();
    let http = server.serve_http(HttpOptions::default()).unwrap();
    let url = http.url("app");
    let wc = repo.working_copy().unwrap();

    let c1 = wc.commit(&[("a.txt", "1")], "one").unwrap();
    let c2 = wc.commit(&[("a.txt", "2")], "two").unwrap();
    wc.tag("v1.0.0", &c1).unwrap();
    let tag_object = wc.annotated_tag("v2.0.0", &c2, "release 2").unwrap();
    assert_ne!(tag_object, c2);
    wc.create_branch("feature", &c1).unwrap();
    wc.push_ref("refs/pull/1/head", &c2).unwrap();

    let refs = ls_remote(&url, &[]);
    assert_eq!(refs["HEAD"], c2);
    assert_eq!(refs["refs/heads/master"], c2);
    assert_eq!(refs["refs/heads/feature"], c1);
    assert_eq!(refs["refs/tags/v1.0.0"], c1);
    assert_eq!(refs["refs/tags/v2.0.0"], tag_object);
    assert_eq!(refs["refs/tags/v2.0.0^{}"], c2);
    assert_eq!(refs["refs/pull/1/head"], c2);

    // Move both tags, rewrite master, delete a branch and a tag.
    wc.tag("v1.0.0", &c2).unwrap();
    wc.annotated_tag("v2.0.0", &c1, "moved").unwrap();
    wc.force_push_branch("master", &c1).unwrap();
    wc.delete_branch("feature").unwrap();
    let refs = ls_remote(&url, &[]);
    assert_eq!(refs["refs/tags/v1.0.0"], c2);
    assert_eq!(refs["refs/tags/v2.0.0^{}"], c1);
    assert_eq!(refs["refs/heads/master"], c1);
    assert!(!refs.contains_key("refs/heads/feature"));

    // The next commit builds on the rewritten branch.
    let c3 = wc.commit(&[("b.txt", "3")], "three").unwrap();
    assert_eq!(wc.rev_parse(&format!("{c3}^")).unwrap(), c1);
    wc.delete_tag("v1.0.0").unwrap();
    let refs = ls_remote(&url, &[]);
    assert_eq!(refs["refs/heads/master"], c3);
    assert!(!refs.contains_key("refs/tags/v1.0.0"));

    // A branch made by checkout is pushed by its first commit; remove() deletes files.
    wc.checkout("dev").unwrap();
    let c4 = wc.remove(&["a.txt"], "drop a").unwrap();
    assert_eq!(repo.rev_parse("refs/heads/dev").unwrap(), c4);
    let (dst, out) = clone(&url, &[], &[]);
    assert_ok(&out);
    assert_eq!(head_of(&dst), c3, "HEAD stays on master");
    let out = git(
        &dst.path().join("c"),
        &[],
        &[],
        &["ls-tree", "--name-only", "origin/dev"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b.txt");
}

#[test]
fn commits_have_the_same_sha_everywhere() {
    let make = || {
        let server = GitServer::new().unwrap();
        let wc = server.create_repo("app").unwrap().working_copy().unwrap();
        let c1 = wc.commit(&[("a.txt", "hello\n")], "first").unwrap();
        let c2 = wc.commit(&[("dir/b.txt", "world\n")], "second").unwrap();
        let tag = wc.annotated_tag("v1", &c2, "v1").unwrap();
        (c1, c2, tag)
    };
    let first = make();
    assert_eq!(first, make());
    // Fixed author, committer and date: the sha is a constant of the content.
    assert_eq!(first.0, "305e5e00f191154bdb98ab7d24a52d895ccfcc74");
}

#[test]
fn default_branch_and_submodules() {
    let server = GitServer::new().unwrap();
    let lib = server.create_repo("lib").unwrap();
    let lib_sha = lib
        .working_copy()
        .unwrap()
        .commit(&[("lib.txt", "lib")], "lib")
        .unwrap();
    let app = server.create_repo_with_head("app", "main").unwrap();
    assert_eq!(app.head_branch().unwrap(), "main");
    let http = server.serve_http(HttpOptions::default()).unwrap();

    let wc = app.working_copy().unwrap();
    assert_eq!(wc.current_branch().unwrap(), "main");
    wc.commit(&[("app.txt", "app")], "app").unwrap();
    let sha = wc
        .add_submodule("vendor/lib", &http.url("lib"), &lib_sha, "add lib")
        .unwrap();
    assert_eq!(app.refs().unwrap()["refs/heads/main"], sha);

    let dir = tempfile::tempdir().unwrap();
    let out = git(
        dir.path(),
        &[],
        &[],
        &[
            "clone",
            "--quiet",
            "--recurse-submodules",
            &http.url("app"),
            "c",
        ],
    );
    assert_ok(&out);
    let root = dir.path().join("c");
    assert_eq!(
        std::fs::read_to_string(root.join("vendor/lib/lib.txt")).unwrap(),
        "lib"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("app.txt")).unwrap(),
        "app"
    );
}
