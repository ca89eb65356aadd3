//! GitRepository end to end: a real API server, real Git servers (`git http-backend`), the
//! controller in-process with its own storage, artifacts downloaded over HTTP and checked
//! against their digest.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use anyhow::Result;
use e2e::git_server::{GitServer, HttpOptions};
use kube::api::DeleteParams;
use serde_json::json;
use source_controller::api::v1::GitRepository;
use support::{condition, dir_entries, env, env_without_controller, fetch, files, ready_is};

fn git_repository(name: &str, url: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut value = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": {"url": url, "interval": "10m"},
    });
    if let serde_json::Value::Object(extra) = spec {
        for (key, field) in extra {
            value["spec"][key] = field;
        }
    }
    value
}

fn artifact_revision(repo: &GitRepository) -> Option<&str> {
    repo.status
        .as_ref()?
        .artifact
        .as_ref()
        .map(|a| a.revision.as_str())
}

fn ready(repo: &GitRepository) -> bool {
    repo.status
        .as_ref()
        .is_some_and(|s| ready_is(&s.conditions, "True", "Succeeded"))
}

#[tokio::test]
async fn branch_head_becomes_an_artifact_served_over_http_and_an_unchanged_remote_costs_no_clone()
-> Result<()> {
    let env = env("gitrepo-ready").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("podinfo")?;
    let wc = repo.working_copy()?;
    let hash = wc.commit(
        &[
            ("deploy/app.yaml", "kind: ConfigMap\n"),
            ("README.md", "# podinfo\n"),
            ("logo.png", "not really a png"),
        ],
        "first commit\n\nwith a body",
    )?;
    let http = server.serve_http(HttpOptions::default())?;

    env.create::<GitRepository>(git_repository("podinfo", &http.url("podinfo"), json!({})))
        .await?;
    let revision = format!("master@sha1:{hash}");
    let repo_obj = env
        .wait_for::<GitRepository>("podinfo", "ready", |r| {
            ready(r) && artifact_revision(r) == Some(revision.as_str())
        })
        .await?;
    let status = repo_obj.status.clone().unwrap();
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(
        condition(&status.conditions, "Ready").unwrap().message,
        format!("stored artifact for revision '{revision}'")
    );
    let in_storage = condition(&status.conditions, "ArtifactInStorage").unwrap();
    assert_eq!(in_storage.status, "True");
    assert_eq!(status.observed_generation, 1);
    assert_eq!(
        artifact.path,
        format!("gitrepository/{}/podinfo/{hash}.tar.gz", env.ns.name)
    );
    assert_eq!(
        artifact.url,
        format!(
            "http://{}/{}",
            env.controller().advertised_addr(),
            artifact.path
        )
    );
    assert!(artifact.digest.as_deref().unwrap().starts_with("sha256:"));

    // The artifact is served, matches its digest, and leaves out Flux's default exclusions.
    let (_tmp, dir) = fetch(&artifact).await?;
    let content = files(&dir)?;
    assert_eq!(
        content.keys().collect::<Vec<_>>(),
        ["README.md", "deploy/app.yaml"]
    );
    assert_eq!(content["deploy/app.yaml"], "kind: ConfigMap\n");

    // Flux's event for a new artifact, with the commit's subject.
    let events = env.wait_event("podinfo", "NewArtifact").await?;
    assert_eq!(
        events[0].message.as_deref(),
        Some("stored artifact for commit 'first commit'")
    );
    let annotations = events[0].metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("source.toolkit.fluxcd.io/revision")
            .map(String::as_str),
        Some(revision.as_str())
    );

    // Nothing changed upstream: a requested reconcile neither clones nor writes an artifact,
    // and is fast.
    let stored_file = env.storage_path().join(&artifact.path);
    let modified = std::fs::metadata(&stored_file)?.modified()?;
    let (time_before, count_before) = env.reconcile_time("GitRepository", "podinfo");
    let token = env.request_reconcile::<GitRepository>("podinfo").await?;
    let after = env
        .wait_for::<GitRepository>("podinfo", "reconciled again", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(token.as_str())
        })
        .await?;
    let (time_after, count_after) = env.reconcile_time("GitRepository", "podinfo");
    assert_eq!(
        after.status.as_ref().unwrap().artifact,
        Some(artifact.clone())
    );
    // The new artifact produced exactly one event, Flux's NewArtifact with the digest too,
    // and neither reconcile a generic Ready event.
    let events = env.events("podinfo", "NewArtifact").await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count.unwrap_or(1), 1);
    assert_eq!(
        events[0]
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .get("source.toolkit.fluxcd.io/digest"),
        artifact.digest.as_ref()
    );
    assert!(env.events("podinfo", "Succeeded").await?.is_empty());
    assert_eq!(std::fs::metadata(&stored_file)?.modified()?, modified);
    assert_eq!(count_after, count_before + 1, "one more reconcile");
    let no_change = time_after - time_before;
    eprintln!("no-change reconcile took {:.1} ms", no_change * 1000.0);
    assert!(
        no_change < 0.5,
        "a reconcile without upstream changes took {no_change:.3}s"
    );
    Ok(())
}

#[tokio::test]
async fn a_new_commit_becomes_a_new_revision_and_old_artifacts_are_collected() -> Result<()> {
    let env = env("gitrepo-new-commit").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    let wc = repo.working_copy()?;
    let first = wc.commit(&[("app.yaml", "v: 1\n")], "one")?;
    let http = server.serve_http(HttpOptions::default())?;

    env.create::<GitRepository>(git_repository(
        "app",
        &http.url("app"),
        json!({"ref": {"branch": "master"}}),
    ))
    .await?;
    let first_revision = format!("master@sha1:{first}");
    env.wait_for::<GitRepository>("app", "ready at the first commit", |r| {
        ready(r) && artifact_revision(r) == Some(first_revision.as_str())
    })
    .await?;

    let second = wc.commit(&[("app.yaml", "v: 2\n")], "two")?;
    env.request_reconcile::<GitRepository>("app").await?;
    let second_revision = format!("master@sha1:{second}");
    let updated = env
        .wait_for::<GitRepository>("app", "ready at the second commit", |r| {
            ready(r) && artifact_revision(r) == Some(second_revision.as_str())
        })
        .await?;
    let artifact = updated.status.unwrap().artifact.unwrap();
    let (_tmp, dir) = fetch(&artifact).await?;
    assert_eq!(files(&dir)?["app.yaml"], "v: 2\n");

    // Both artifacts are kept (retention: 2 records); neither is a staging file.
    let object_dir = env
        .storage_path()
        .join(format!("gitrepository/{}/app", env.ns.name));
    assert_eq!(dir_entries(&object_dir), {
        let mut want = vec![format!("{first}.tar.gz"), format!("{second}.tar.gz")];
        want.sort();
        want
    });
    Ok(())
}

/// The revision a GitRepository's artifact was built from, once it is Ready at `revision`.
async fn wait_for_revision(
    env: &support::Env,
    name: &str,
    revision: &str,
) -> Result<source_controller::api::v1::GitRepositoryStatus> {
    let repo = env
        .wait_for::<GitRepository>(name, &format!("ready at {revision}"), |r| {
            ready(r) && artifact_revision(r) == Some(revision)
        })
        .await?;
    Ok(repo.status.unwrap())
}

#[tokio::test]
async fn force_pushed_branches_moved_tags_and_deleted_branches_reach_the_status() -> Result<()> {
    let env = env("gitrepo-history").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    let wc = repo.working_copy()?;
    let c1 = wc.commit(&[("app.yaml", "v: 1\n")], "one")?;
    let c2 = wc.commit(&[("app.yaml", "v: 2\n")], "two")?;
    wc.create_branch("feature", &c2)?;
    wc.tag("stable", &c1)?;
    let http = server.serve_http(HttpOptions::default())?;

    env.create::<GitRepository>(git_repository(
        "branch",
        &http.url("app"),
        json!({"ref": {"branch": "feature"}}),
    ))
    .await?;
    env.create::<GitRepository>(git_repository(
        "tag",
        &http.url("app"),
        json!({"ref": {"tag": "stable"}}),
    ))
    .await?;
    let branch_at_c2 = wait_for_revision(&env, "branch", &format!("feature@sha1:{c2}")).await?;
    wait_for_revision(&env, "tag", &format!("stable@sha1:{c1}")).await?;

    // A force-push that rewinds the branch: the artifact follows it back to the old content.
    wc.force_push_branch("feature", &c1)?;
    env.request_reconcile::<GitRepository>("branch").await?;
    let rewound = wait_for_revision(&env, "branch", &format!("feature@sha1:{c1}")).await?;
    let rewound_artifact = rewound.artifact.unwrap();
    assert_ne!(
        rewound_artifact.digest,
        branch_at_c2.artifact.unwrap().digest
    );
    let (_tmp, dir) = fetch(&rewound_artifact).await?;
    assert_eq!(files(&dir)?["app.yaml"], "v: 1\n");

    // A tag moved to another commit is a new revision.
    wc.tag("stable", &c2)?;
    env.request_reconcile::<GitRepository>("tag").await?;
    let moved = wait_for_revision(&env, "tag", &format!("stable@sha1:{c2}")).await?;
    let (_tmp, dir) = fetch(moved.artifact.as_ref().unwrap()).await?;
    assert_eq!(files(&dir)?["app.yaml"], "v: 2\n");

    // The branch is deleted: the object fails with the branch named, and the last artifact
    // stays recorded and served.
    wc.delete_branch("feature")?;
    env.request_reconcile::<GitRepository>("branch").await?;
    let failed = env
        .wait_for::<GitRepository>("branch", "failing on the deleted branch", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| ready_is(&s.conditions, "False", "GitOperationFailed"))
        })
        .await?;
    let status = failed.status.unwrap();
    let message = &condition(&status.conditions, "Ready").unwrap().message;
    assert!(message.contains("feature"), "{message}");
    assert_eq!(status.artifact.as_ref(), Some(&rewound_artifact));
    let (_tmp, dir) = fetch(&rewound_artifact).await?;
    assert_eq!(files(&dir)?["app.yaml"], "v: 1\n");
    Ok(())
}

#[tokio::test]
async fn a_commit_that_changes_only_excluded_files_keeps_the_digest() -> Result<()> {
    let env = env("gitrepo-digest").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    let wc = repo.working_copy()?;
    let first = wc.commit(&[("app.yaml", "v: 1\n"), ("README.md", "one\n")], "one")?;
    let http = server.serve_http(HttpOptions::default())?;
    env.create::<GitRepository>(git_repository("app", &http.url("app"), json!({})))
        .await?;
    let one = wait_for_revision(&env, "app", &format!("master@sha1:{first}")).await?;
    let one = one.artifact.unwrap();

    // Only a file of Flux's default exclusions changes: a new revision, the same content.
    let second = wc.commit(&[(".github/workflows/ci.yaml", "on: push\n")], "ci")?;
    env.request_reconcile::<GitRepository>("app").await?;
    let two = wait_for_revision(&env, "app", &format!("master@sha1:{second}")).await?;
    let two = two.artifact.unwrap();
    assert_eq!(two.digest, one.digest, "same content, same digest");

    // A change to a file that is archived changes the digest.
    let third = wc.commit(&[("README.md", "two\n")], "docs")?;
    env.request_reconcile::<GitRepository>("app").await?;
    let three = wait_for_revision(&env, "app", &format!("master@sha1:{third}")).await?;
    assert_ne!(three.artifact.unwrap().digest, one.digest);
    Ok(())
}

#[tokio::test]
async fn rejected_credentials_fail_with_the_reason_while_the_last_artifact_stays_served()
-> Result<()> {
    let env = env("gitrepo-auth").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("private")?;
    let wc = repo.working_copy()?;
    let first = wc.commit(&[("secret.yaml", "a: 1\n")], "one")?;
    let http = server.serve_http(HttpOptions::default().basic_auth("flux", "s3cret"))?;
    env.secret("git-auth", &[("username", "flux"), ("password", "s3cret")])
        .await?;

    env.create::<GitRepository>(git_repository(
        "private",
        &http.url("private"),
        json!({"secretRef": {"name": "git-auth"}}),
    ))
    .await?;
    let first_revision = format!("master@sha1:{first}");
    let good = env
        .wait_for::<GitRepository>("private", "ready with credentials", |r| {
            ready(r) && artifact_revision(r) == Some(first_revision.as_str())
        })
        .await?;
    let good_artifact = good.status.unwrap().artifact.unwrap();

    // The password is rotated on the server side only: the remote now rejects the secret.
    env.update_secret("git-auth", &[("username", "flux"), ("password", "wrong")])
        .await?;
    wc.commit(&[("secret.yaml", "a: 2\n")], "two")?;
    env.request_reconcile::<GitRepository>("private").await?;
    let failed = env
        .wait_for::<GitRepository>("private", "failing authentication", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| ready_is(&s.conditions, "False", "GitOperationFailed"))
        })
        .await?;
    let status = failed.status.unwrap();
    let ready = condition(&status.conditions, "Ready").unwrap();
    assert!(
        ready
            .message
            .starts_with("failed to checkout and determine revision"),
        "{}",
        ready.message
    );
    assert!(
        ready.message.contains("authentication"),
        "{}",
        ready.message
    );
    assert!(
        !ready.message.contains("wrong"),
        "the password leaked: {}",
        ready.message
    );
    let fetch_failed = condition(&status.conditions, "FetchFailed").unwrap();
    assert_eq!(fetch_failed.status, "True");
    assert_eq!(fetch_failed.reason, "GitOperationFailed");

    // The last good artifact is still recorded and served.
    assert_eq!(status.artifact.as_ref(), Some(&good_artifact));
    let (_tmp, dir) = fetch(&good_artifact).await?;
    assert_eq!(files(&dir)?["secret.yaml"], "a: 1\n");
    Ok(())
}

#[tokio::test]
async fn a_missing_secret_and_an_unknown_branch_are_reported() -> Result<()> {
    let env = env("gitrepo-errors").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("repo")?;
    repo.working_copy()?.commit(&[("a.yaml", "a\n")], "one")?;
    let http = server.serve_http(HttpOptions::default())?;

    env.create::<GitRepository>(git_repository(
        "no-branch",
        &http.url("repo"),
        json!({"ref": {"branch": "does-not-exist"}}),
    ))
    .await?;
    env.create::<GitRepository>(git_repository(
        "no-secret",
        &http.url("repo"),
        json!({"secretRef": {"name": "missing"}}),
    ))
    .await?;

    let no_branch = env
        .wait_for::<GitRepository>("no-branch", "failing", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| ready_is(&s.conditions, "False", "GitOperationFailed"))
        })
        .await?;
    let status = no_branch.status.unwrap();
    let message = &condition(&status.conditions, "Ready").unwrap().message;
    assert!(message.contains("does-not-exist"), "{message}");
    assert!(status.artifact.is_none());
    assert_eq!(
        condition(&status.conditions, "FetchFailed").unwrap().status,
        "True"
    );

    let no_secret = env
        .wait_for::<GitRepository>("no-secret", "failing", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| ready_is(&s.conditions, "False", "AuthenticationFailed"))
        })
        .await?;
    let status = no_secret.status.unwrap();
    let message = &condition(&status.conditions, "Ready").unwrap().message;
    assert!(
        message.contains(&format!("'{}/missing'", env.ns.name)),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn includes_are_copied_into_their_path_once_available() -> Result<()> {
    let env = env("gitrepo-include").await?;
    let server = GitServer::new()?;
    let app = server.create_repo("app")?;
    app.working_copy()?
        .commit(&[("deploy/app.yaml", "app\n")], "app")?;
    let lib = server.create_repo("lib")?;
    lib.working_copy()?.commit(
        &[("manifests/lib.yaml", "lib\n"), ("other/x.yaml", "x\n")],
        "lib",
    )?;
    let http = server.serve_http(HttpOptions::default())?;

    // The included GitRepository does not exist yet.
    env.create::<GitRepository>(git_repository(
        "app",
        &http.url("app"),
        json!({"include": [{"repository": {"name": "lib"}, "fromPath": "manifests", "toPath": "vendor/lib"}]}),
    ))
    .await?;
    let waiting = env
        .wait_for::<GitRepository>("app", "waiting for its include", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| ready_is(&s.conditions, "False", "NotFound"))
        })
        .await?;
    let unavailable = condition(
        &waiting.status.as_ref().unwrap().conditions,
        "IncludeUnavailable",
    )
    .unwrap();
    assert_eq!(unavailable.status, "True");
    assert!(
        unavailable.message.contains("'lib'"),
        "{}",
        unavailable.message
    );

    env.create::<GitRepository>(git_repository("lib", &http.url("lib"), json!({})))
        .await?;
    let lib_ready = env.wait_for::<GitRepository>("lib", "ready", ready).await?;
    let app_ready = env
        .wait_for::<GitRepository>("app", "ready with its include", ready)
        .await?;
    let status = app_ready.status.unwrap();
    assert!(condition(&status.conditions, "IncludeUnavailable").is_none());
    assert_eq!(
        status.included_artifacts,
        vec![lib_ready.status.unwrap().artifact.unwrap()]
    );
    assert_eq!(status.observed_include.len(), 1);
    let (_tmp, dir) = fetch(status.artifact.as_ref().unwrap()).await?;
    let content = files(&dir)?;
    assert_eq!(
        content.keys().collect::<Vec<_>>(),
        ["deploy/app.yaml", "vendor/lib/lib.yaml"]
    );
    Ok(())
}

#[tokio::test]
async fn ignore_rules_shape_the_artifact_and_a_changed_ignore_rebuilds_it() -> Result<()> {
    let env = env("gitrepo-ignore").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("mono")?;
    let hash = repo.working_copy()?.commit(
        &[
            ("deploy/app.yaml", "app\n"),
            ("deploy/secret.enc", "enc\n"),
            ("docs/guide.md", "guide\n"),
            (".sourceignore", "*.enc\n"),
        ],
        "mono",
    )?;
    let http = server.serve_http(HttpOptions::default())?;

    env.create::<GitRepository>(git_repository("mono", &http.url("mono"), json!({})))
        .await?;
    let first = env
        .wait_for::<GitRepository>("mono", "ready", ready)
        .await?;
    let first_artifact = first.status.unwrap().artifact.unwrap();
    let (_tmp, dir) = fetch(&first_artifact).await?;
    assert_eq!(
        files(&dir)?.keys().collect::<Vec<_>>(),
        [".sourceignore", "deploy/app.yaml", "docs/guide.md"]
    );

    env.patch::<GitRepository>("mono", json!({"spec": {"ignore": "/*\n!/deploy\n"}}))
        .await?;
    let second = env
        .wait_for::<GitRepository>("mono", "rebuilt with spec.ignore", |r| {
            ready(r)
                && r.status.as_ref().and_then(|s| s.observed_ignore.as_deref())
                    == Some("/*\n!/deploy\n")
        })
        .await?;
    let second_artifact = second.status.unwrap().artifact.unwrap();
    assert_eq!(second_artifact.revision, format!("master@sha1:{hash}"));
    assert_ne!(second_artifact.digest, first_artifact.digest);
    // As in Flux, spec.ignore comes after the .sourceignore files and wins: `!/deploy`
    // brings back everything below deploy/, the `*.enc` file included.
    let (_tmp2, dir) = fetch(&second_artifact).await?;
    assert_eq!(
        files(&dir)?.keys().collect::<Vec<_>>(),
        ["deploy/app.yaml", "deploy/secret.enc"]
    );
    Ok(())
}

#[tokio::test]
async fn an_artifact_missing_after_a_restart_is_rebuilt_and_deletion_removes_the_artifacts()
-> Result<()> {
    let mut env = env("gitrepo-restart").await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    repo.working_copy()?.commit(&[("a.yaml", "a\n")], "one")?;
    let http = server.serve_http(HttpOptions::default())?;

    env.create::<GitRepository>(git_repository("app", &http.url("app"), json!({})))
        .await?;
    let before = env.wait_for::<GitRepository>("app", "ready", ready).await?;
    let artifact = before.status.unwrap().artifact.unwrap();

    // The volume is emptied while the controller is down (a new pod with an emptyDir).
    env.stop().await?;
    std::fs::remove_dir_all(env.storage_path().join("gitrepository"))?;
    env.start().await?;
    let file = env.storage_path().join(&artifact.path);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the artifact was not rebuilt"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The file is written before the status is patched: wait for the status that
    // records the restarted controller's address, not the one left from before.
    let advertised = format!("http://{}/", env.controller().advertised_addr());
    let after = env
        .wait_for::<GitRepository>("app", "ready at the new address", |repo| {
            ready(repo)
                && repo
                    .status
                    .as_ref()
                    .and_then(|s| s.artifact.as_ref())
                    .is_some_and(|a| a.url.starts_with(&advertised))
        })
        .await?;
    let rebuilt = after.status.unwrap().artifact.unwrap();
    assert_eq!(rebuilt.digest, artifact.digest, "archives are reproducible");
    assert_eq!(rebuilt.url, format!("{advertised}{}", rebuilt.path));
    fetch(&rebuilt).await?;

    // Deleting the object removes its artifacts.
    env.api::<GitRepository>()
        .delete("app", &DeleteParams::default())
        .await?;
    env.wait_gone::<GitRepository>("app").await?;
    assert!(
        !env.storage_path()
            .join(format!("gitrepository/{}/app", env.ns.name))
            .exists()
    );
    Ok(())
}

/// Applies the RBAC of `config/rbac` that source-controller's ServiceAccount gets.
async fn apply_install_rbac(client: &kube::Client) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use kube::api::{Api, Patch, PatchParams};

    let params = PatchParams::apply("source-controller-rbac-test").force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "flux-system",
            &params,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}})),
        )
        .await?;
    let rbac = e2e::repo_root().join("config/rbac");
    for file in [
        "source-controller.yaml",
        "source-controller-leader-election.yaml",
        "leader_election_role.yaml",
    ] {
        let text = std::fs::read_to_string(rbac.join(file))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let mut value: serde_json::Value = serde::Deserialize::deserialize(document)?;
            let name = value["metadata"]["name"].as_str().unwrap().to_owned();
            match value["kind"].as_str().unwrap() {
                "ClusterRole" => {
                    Api::<ClusterRole>::all(client.clone())
                        .patch(&name, &params, &Patch::Apply(&value))
                        .await?;
                }
                "ClusterRoleBinding" => {
                    Api::<ClusterRoleBinding>::all(client.clone())
                        .patch(&name, &params, &Patch::Apply(&value))
                        .await?;
                }
                "Role" => {
                    value["metadata"]["namespace"] = json!("flux-system");
                    Api::<Role>::namespaced(client.clone(), "flux-system")
                        .patch(&name, &params, &Patch::Apply(&value))
                        .await?;
                }
                "RoleBinding" => {
                    value["metadata"]["namespace"] = json!("flux-system");
                    Api::<RoleBinding>::namespaced(client.clone(), "flux-system")
                        .patch(&name, &params, &Patch::Apply(&value))
                        .await?;
                }
                other => anyhow::bail!("unexpected {other} in {file}"),
            }
        }
    }
    Ok(())
}

/// Whether the ServiceAccount `flux-system/source-controller` may `verb` `resource`.
async fn service_account_may(
    client: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
) -> Result<bool> {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    use kube::api::{Api, PostParams};

    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": "system:serviceaccount:flux-system:source-controller",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:flux-system", "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace},
        }
    }))?;
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[tokio::test]
async fn the_install_rbac_is_all_the_controller_needs() -> Result<()> {
    let mut env = env_without_controller("gitrepo-rbac").await?;
    apply_install_rbac(&env.client).await?;
    let cluster = e2e::cluster().await?;
    let account = cluster
        .service_account_client("flux-system", "source-controller")
        .await?;
    env.start_as(account).await?;

    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    repo.working_copy()?.commit(&[("a.yaml", "a\n")], "one")?;
    let http = server.serve_http(HttpOptions::default().basic_auth("flux", "pw"))?;
    env.secret("auth", &[("username", "flux"), ("password", "pw")])
        .await?;
    env.create::<GitRepository>(git_repository(
        "app",
        &http.url("app"),
        json!({"secretRef": {"name": "auth"}}),
    ))
    .await?;
    let obj = env.wait_for::<GitRepository>("app", "ready", ready).await?;
    assert_eq!(
        obj.metadata.finalizers,
        Some(vec!["finalizers.fluxcd.io".to_owned()])
    );
    env.wait_event("app", "NewArtifact").await?;
    env.api::<GitRepository>()
        .delete("app", &DeleteParams::default())
        .await?;
    env.wait_gone::<GitRepository>("app").await?;

    // Leader election in its own namespace, and nothing more than it needs elsewhere.
    let admin = &env.client;
    for verb in ["get", "create", "update"] {
        assert!(
            service_account_may(admin, verb, "coordination.k8s.io", "leases", "flux-system")
                .await?,
            "{verb} leases"
        );
    }
    assert!(
        !service_account_may(admin, "create", "coordination.k8s.io", "leases", "default").await?
    );
    assert!(!service_account_may(admin, "create", "", "secrets", &env.ns.name).await?);
    assert!(
        !service_account_may(
            admin,
            "delete",
            "source.toolkit.fluxcd.io",
            "gitrepositories",
            &env.ns.name
        )
        .await?
    );
    assert!(!service_account_may(admin, "get", "", "configmaps", &env.ns.name).await?);
    Ok(())
}

#[tokio::test]
async fn the_binary_serves_artifacts_and_stops_cleanly_on_sigterm() -> Result<()> {
    let env = env_without_controller("gitrepo-binary").await?;
    let cluster = e2e::cluster().await?;
    let server = GitServer::new()?;
    let repo = server.create_repo("app")?;
    let hash = repo.working_copy()?.commit(&[("a.yaml", "a\n")], "one")?;
    let http = server.serve_http(HttpOptions::default())?;

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_source-controller"))
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig_path().display()
        ))
        .arg("--watch-all-namespaces=false")
        .arg(format!("--storage-path={}", env.storage_path().display()))
        .args([
            "--storage-addr=127.0.0.1:0",
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--log-encoding=console",
        ])
        .env("RUNTIME_NAMESPACE", &env.ns.name)
        .env_remove("STORAGE_ADV_ADDR")
        .spawn()?;
    env.create::<GitRepository>(git_repository("app", &http.url("app"), json!({})))
        .await?;
    let revision = format!("master@sha1:{hash}");
    let ready_obj = env.wait_for::<GitRepository>("app", "ready", ready).await;
    let result = async {
        let obj = ready_obj?;
        let artifact = obj.status.unwrap().artifact.unwrap();
        assert_eq!(artifact.revision, revision);
        let (_tmp, dir) = fetch(&artifact).await?;
        assert_eq!(files(&dir)?["a.yaml"], "a\n");
        anyhow::Ok(())
    }
    .await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("the controller did not stop within 30s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    result?;
    assert!(status.success(), "exit status {status}");
    Ok(())
}
