//! GitRepository inputs that cannot produce an artifact, through the controller: a malformed
//! URL, an unknown tag, a SemVer range that matches no tag, a host that never answers. Each
//! ends in `Ready=False` with Flux's reason and a message naming what to fix, `Stalled=True`
//! only where retrying cannot help, and the last good artifact still recorded and served.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use anyhow::Result;
use e2e::git_server::{GitServer, HttpOptions, WorkingCopy};
use serde_json::{Value, json};
use source_controller::api::v1::GitRepository;
use support::{Env, condition, env, fetch, files, is_stalled, ready_is, ready_now, silent_host};

/// A repository with one commit holding `app.yaml`, served over smart HTTP.
struct Remote {
    _server: GitServer,
    wc: WorkingCopy,
    url: String,
    first: String,
    _http: e2e::git_server::HttpGitServer,
}

fn remote() -> Result<Remote> {
    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    let wc = repo.working_copy()?;
    let first = wc.commit(&[("app.yaml", "replicas: 1\n")], "first")?;
    let http = server.serve_http(HttpOptions::default())?;
    Ok(Remote {
        url: http.url("app"),
        _server: server,
        wc,
        first,
        _http: http,
    })
}

/// Creates GitRepository `name` with `spec` and waits until it is Ready at `revision`.
async fn ready_repository(
    env: &Env,
    name: &str,
    spec: Value,
    revision: &str,
) -> Result<GitRepository> {
    let mut value = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": {"interval": "10m"},
    });
    if let Value::Object(fields) = spec {
        for (key, field) in fields {
            value["spec"][key] = field;
        }
    }
    env.create::<GitRepository>(value).await?;
    env.wait_for::<GitRepository>(name, "ready with a first artifact", |r| {
        r.status.as_ref().is_some_and(|s| {
            ready_is(&s.conditions, "True", "Succeeded")
                && s.artifact.as_ref().map(|a| a.revision.as_str()) == Some(revision)
        })
    })
    .await
}

/// Waits until `Ready=False` with `reason` for the current generation; returns the object.
async fn failed_with(env: &Env, name: &str, reason: &str) -> Result<GitRepository> {
    env.wait_for::<GitRepository>(name, &format!("Ready=False {reason}"), |r| {
        r.status
            .as_ref()
            .is_some_and(|s| ready_now(r, &s.conditions, "False", reason))
    })
    .await
}

/// The `Ready` message of a failed object, checked to contain every one of `parts`;
/// `FetchFailed` must say the same, and `Stalled` must be `stalled`.
fn check_failure(failed: &GitRepository, reason: &str, parts: &[&str], stalled: bool) -> String {
    let status = failed.status.as_ref().unwrap();
    let ready = condition(&status.conditions, "Ready").unwrap();
    for part in parts {
        assert!(
            ready.message.contains(part),
            "{part:?} not in the Ready message: {}",
            ready.message
        );
    }
    let fetch_failed = condition(&status.conditions, "FetchFailed").unwrap();
    assert_eq!(fetch_failed.status, "True");
    assert_eq!(fetch_failed.reason, reason);
    assert_eq!(
        is_stalled(&status.conditions),
        stalled,
        "Stalled for {reason}: {:?}",
        condition(&status.conditions, "Stalled")
    );
    ready.message.clone()
}

/// The last good artifact is still in the status and served with its content.
async fn assert_keeps(failed: &GitRepository, good: &GitRepository) -> Result<()> {
    let good_artifact = good.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(
        failed.status.as_ref().unwrap().artifact.as_ref(),
        Some(&good_artifact),
        "the last good artifact is no longer recorded"
    );
    let (_tmp, dir) = fetch(&good_artifact).await?;
    assert_eq!(files(&dir)?["app.yaml"], "replicas: 1\n");
    Ok(())
}

#[tokio::test]
async fn a_malformed_url_stalls_with_url_invalid_and_keeps_the_last_artifact() -> Result<()> {
    let env = env("gitrepo-bad-url").await?;
    let remote = remote()?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": remote.url}),
        &format!("master@sha1:{}", remote.first),
    )
    .await?;

    // Both pass the CRD's `^(http|https|ssh)://.*$` and can never work: a space in the host,
    // and a port out of range. Messages show URLs without their user info.
    for (url, shown, why) in [
        (
            "https://exa mple.com/org/app.git",
            "https://exa mple.com/org/app.git",
            "invalid host",
        ),
        (
            "ssh://git@example.com:99999/org/app.git",
            "ssh://example.com:99999/org/app.git",
            "invalid port",
        ),
    ] {
        env.patch::<GitRepository>("app", json!({"spec": {"url": url}}))
            .await?;
        let failed = failed_with(&env, "app", "URLInvalid").await?;
        check_failure(&failed, "URLInvalid", &[shown, why], true);
        assert_keeps(&failed, &good).await?;
    }

    // Stalled means no retries: the reconcile count stays put while the object waits for a
    // spec change.
    let (_, count) = env.reconcile_time("GitRepository", "app");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, later) = env.reconcile_time("GitRepository", "app");
    assert_eq!(later, count, "a stalled object was retried");
    Ok(())
}

#[tokio::test]
async fn an_unknown_tag_fails_and_keeps_the_last_artifact() -> Result<()> {
    let env = env("gitrepo-bad-tag").await?;
    let remote = remote()?;
    remote.wc.tag("v1.0.0", &remote.first)?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": remote.url, "ref": {"tag": "v1.0.0"}}),
        &format!("v1.0.0@sha1:{}", remote.first),
    )
    .await?;

    env.patch::<GitRepository>("app", json!({"spec": {"ref": {"tag": "v9.9.9"}}}))
        .await?;
    let failed = failed_with(&env, "app", "GitOperationFailed").await?;
    // A push of the tag can fix it: retried, not stalled.
    check_failure(
        &failed,
        "GitOperationFailed",
        &["tag 'v9.9.9' not found", &remote.url],
        false,
    );
    assert_keeps(&failed, &good).await?;

    // Once the tag is pushed, the retry picks it up without any change to the object.
    let second = remote
        .wc
        .commit(&[("app.yaml", "replicas: 2\n")], "second")?;
    remote.wc.tag("v9.9.9", &second)?;
    let revision = format!("v9.9.9@sha1:{second}");
    env.wait_for::<GitRepository>("app", "ready at the pushed tag", |r| {
        r.status.as_ref().is_some_and(|s| {
            ready_is(&s.conditions, "True", "Succeeded")
                && s.artifact.as_ref().map(|a| a.revision.as_str()) == Some(revision.as_str())
        })
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_semver_range_matching_no_tag_fails_and_keeps_the_last_artifact() -> Result<()> {
    let env = env("gitrepo-bad-semver").await?;
    let remote = remote()?;
    remote.wc.tag("v1.2.0", &remote.first)?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": remote.url, "ref": {"semver": ">=1.0.0"}}),
        &format!("v1.2.0@sha1:{}", remote.first),
    )
    .await?;

    env.patch::<GitRepository>("app", json!({"spec": {"ref": {"semver": ">=9.0.0"}}}))
        .await?;
    let failed = failed_with(&env, "app", "GitOperationFailed").await?;
    // A new tag can fix it: retried, not stalled.
    check_failure(
        &failed,
        "GitOperationFailed",
        &[">=9.0.0", &remote.url],
        false,
    );
    assert_keeps(&failed, &good).await?;
    Ok(())
}

#[tokio::test]
async fn a_host_that_never_answers_fails_after_spec_timeout_and_keeps_the_last_artifact()
-> Result<()> {
    let env = env("gitrepo-silent-host").await?;
    let remote = remote()?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": remote.url}),
        &format!("master@sha1:{}", remote.first),
    )
    .await?;
    let silent = silent_host()?;
    let url = format!("http://{}/org/app.git", silent.addr);

    let started = Instant::now();
    env.patch::<GitRepository>("app", json!({"spec": {"url": url, "timeout": "2s"}}))
        .await?;
    let failed = failed_with(&env, "app", "GitOperationFailed").await?;
    let elapsed = started.elapsed();
    eprintln!("a silent host failed the reconcile after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(2),
        "failed before the 2s timeout ({elapsed:?}): not a timeout"
    );
    assert!(
        elapsed < Duration::from_secs(2 + 8),
        "spec.timeout 2s not honoured: failed after {elapsed:?}"
    );
    let message = check_failure(&failed, "GitOperationFailed", &[&url], false);
    assert!(message.contains("timed out"), "{message}");
    assert_keeps(&failed, &good).await?;
    Ok(())
}

#[tokio::test]

async fn a_malformed_url_never_shows_its_password() -> Result<()> {
    let env = env("gitrepo-bad-url-secret").await?;
    let remote = remote()?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": remote.url}),
        &format!("master@sha1:{}", remote.first),
    )
    .await?;

    // Userinfo with a reserved character left unescaped, and one escaped as it should be
    // but in a URL broken elsewhere: neither password may appear anywhere in the status.
    for url in [
        "https://flux:pa/ss-w0rd@example.com/org/app.git",
        "https://flux:pa%2Fss-w0rd@exa mple.com/org/app.git",
    ] {
        env.patch::<GitRepository>("app", json!({"spec": {"url": url}}))
            .await?;
        let failed = failed_with(&env, "app", "URLInvalid").await?;
        let message = check_failure(&failed, "URLInvalid", &["invalid"], true);
        let status = serde_json::to_string(&failed.status)?;
        assert!(
            !status.contains("ss-w0rd"),
            "the password of {url} leaked into the status: {message}"
        );
        assert_keeps(&failed, &good).await?;
    }
    Ok(())
}
