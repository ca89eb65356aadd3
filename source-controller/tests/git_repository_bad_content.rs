//! A repository whose content cannot become an artifact (too large for `--artifact-max-size`, a
//! symlink that points outside it) ends in Ready=False with a reason and a message a person can act
//! on, and the last good artifact stays recorded and served.
#![allow(clippy::unwrap_used)]

mod support;

use anyhow::Result;
use e2e::git_server::{GitServer, HttpOptions};
use serde_json::json;
use source_controller::api::v1::GitRepository;
use source_controller::controller::SourceController;
use source_controller::storage::ArchiveLimits;
use support::{Env, condition, env_without_controller, fetch, files, ready_is};

fn ready_at(repo: &GitRepository, revision: &str) -> bool {
    repo.status.as_ref().is_some_and(|s| {
        ready_is(&s.conditions, "True", "Succeeded")
            && s.artifact.as_ref().map(|a| a.revision.as_str()) == Some(revision)
    })
}

/// Starts the controller with artifacts limited to `max_size` bytes.
async fn start_with_limit(env: &mut Env, max_size: u64) -> Result<()> {
    let mut config = env.config();
    config.artifact_limits = ArchiveLimits::for_max_size(max_size);
    env.controller = Some(SourceController::start(config, env.client.clone()).await?);
    Ok(())
}

/// Creates GitRepository `name` for `url` and waits until it is Ready at `revision`; returns it.
async fn ready_repository(
    env: &Env,
    name: &str,
    url: &str,
    revision: &str,
) -> Result<GitRepository> {
    env.create::<GitRepository>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": {"url": url, "interval": "10m", "ref": {"branch": "master"}},
    }))
    .await?;
    env.wait_for::<GitRepository>(name, "ready at the first commit", |r| ready_at(r, revision))
        .await
}

/// Waits for Ready=False with `reason`, checks the message and that the good artifact stays.
async fn assert_fails_keeping(
    env: &Env,
    name: &str,
    reason: &str,
    message_part: &str,
    good: &GitRepository,
    good_file: (&str, &str),
) -> Result<()> {
    let failed = env
        .wait_for::<GitRepository>(name, "the bad commit to fail", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| ready_is(&s.conditions, "False", reason))
        })
        .await?;
    let status = failed.status.unwrap();
    let ready = condition(&status.conditions, "Ready").unwrap();
    assert!(ready.message.contains(message_part), "{}", ready.message);
    let good_artifact = good.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(status.artifact.as_ref(), Some(&good_artifact));
    let (_tmp, dir) = fetch(&good_artifact).await?;
    assert_eq!(files(&dir)?[good_file.0], good_file.1);
    Ok(())
}

#[tokio::test]
async fn a_repository_over_the_artifact_size_limit_fails_and_keeps_the_last_artifact() -> Result<()>
{
    let mut env = env_without_controller("gitrepo-too-large").await?;
    start_with_limit(&mut env, 16 * 1024).await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("big")?;
    let wc = repo.working_copy()?;
    let first = wc.commit(&[("app.yaml", "replicas: 1\n")], "small")?;
    let http = server.serve_http(HttpOptions::default())?;
    let good = ready_repository(
        &env,
        "big",
        &http.url("big"),
        &format!("master@sha1:{first}"),
    )
    .await?;

    // 256 KiB of content that does not compress: far over the 16 KiB limit.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: String = (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'!' + (state % 90) as u8)
        })
        .collect();
    wc.commit(&[("blob.txt", noise.as_str())], "too large")?;
    env.request_reconcile::<GitRepository>("big").await?;
    assert_fails_keeping(
        &env,
        "big",
        "ArchiveOperationFailed",
        "limit",
        &good,
        ("app.yaml", "replicas: 1\n"),
    )
    .await
}

#[tokio::test]
async fn a_symlink_out_of_the_repository_fails_and_keeps_the_last_artifact() -> Result<()> {
    let mut env = env_without_controller("gitrepo-symlink").await?;
    env.start().await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("links")?;
    let wc = repo.working_copy()?;
    let first = wc.commit(&[("app.yaml", "replicas: 1\n")], "good")?;
    let http = server.serve_http(HttpOptions::default())?;
    let good = ready_repository(
        &env,
        "links",
        &http.url("links"),
        &format!("master@sha1:{first}"),
    )
    .await?;

    std::os::unix::fs::symlink("/etc/passwd", wc.path().join("passwd"))?;
    wc.commit::<&str>(&[], "link out of the repository")?;
    env.request_reconcile::<GitRepository>("links").await?;
    assert_fails_keeping(
        &env,
        "links",
        "ArchiveOperationFailed",
        "points outside the repository",
        &good,
        ("app.yaml", "replicas: 1\n"),
    )
    .await
}
