//! Git hosting services: commit statuses (GitHub, GitLab, Gitea, Bitbucket Cloud, Bitbucket
//! Server / Data Center, Azure DevOps) and GitHub `repository_dispatch`.
//!
//! The repository comes from the Provider's address, the clone URL of the repository
//! (`https://github.com/org/repo`, `ssh://git@github.com/org/repo.git`,
//! `git@github.com:org/repo.git`); the API is derived from its host the way Flux's clients
//! do it (GitHub Enterprise at `<host>/api/v3`, GitLab at `<host>/api/v4`, Gitea at
//! `<host>/api/v1`). Before setting a status, the existing statuses are read and nothing is
//! sent when the latest one with the same key already has the same state and description.

use reqwest::Url;
use serde_json::{Value, json};

use super::alerting::Auth;
use super::format::{self, Event, PROGRESSING};
use super::{Call, DeliveryError, ProviderError, ProviderSettings, Req, require_token};

/// The genre of Azure DevOps statuses set by Flux.
const AZURE_GENRE: &str = "fluxcd";

#[derive(Clone)]
pub(super) struct Git {
    kind: GitKind,
    /// A fixed status key (`commit_status` of the settings), else the default per event.
    status_override: Option<String>,
    provider_uid: String,
}

#[derive(Clone)]
enum GitKind {
    GitHub(Repo),
    GitHubDispatch(Repo),
    GitLab {
        api: Url,
        project: String,
        token: String,
    },
    Gitea(Repo),
    Bitbucket {
        api: Url,
        owner: String,
        repo: String,
        auth: Auth,
    },
    BitbucketServer {
        /// `<host><context path>/rest/api/latest`.
        api: Url,
        project: String,
        repo: String,
        auth: Auth,
        /// The address, sent as the build's URL like Flux does.
        address: String,
    },
    AzureDevOps {
        /// `<host>/<organisation>`.
        org: Url,
        project: String,
        repo: String,
        token: String,
    },
}

/// An `owner/repo` repository and the API serving it.
#[derive(Clone)]
struct Repo {
    api: Url,
    owner: String,
    repo: String,
    token: String,
}

impl Git {
    /// The notifier for `settings`, `None` when the type is not a Git type.
    pub(super) fn new(settings: &ProviderSettings) -> Result<Option<Self>, ProviderError> {
        let t = settings.provider_type.as_str();
        if !matches!(
            t,
            "github"
                | "githubdispatch"
                | "gitlab"
                | "gitea"
                | "bitbucket"
                | "bitbucketserver"
                | "azuredevops"
        ) {
            return Ok(None);
        }
        let (host, id) = parse_git_address(t, &settings.address)?;
        let kind = match t {
            "github" | "githubdispatch" => {
                let (owner, repo) = owner_repo(t, &id)?;
                let api = if host.host_str() == Some("github.com") {
                    parse(t, "https://api.github.com")?
                } else {
                    join(&host, &["api", "v3"])
                };
                let repo = Repo {
                    api,
                    owner,
                    repo,
                    token: require_token(settings)?,
                };
                if t == "github" {
                    GitKind::GitHub(repo)
                } else {
                    GitKind::GitHubDispatch(repo)
                }
            }
            "gitlab" => GitKind::GitLab {
                api: join(&host, &["api", "v4"]),
                project: id,
                token: require_token(settings)?,
            },
            "gitea" => {
                let (owner, repo) = owner_repo(t, &id)?;
                GitKind::Gitea(Repo {
                    api: join(&host, &["api", "v1"]),
                    owner,
                    repo,
                    token: require_token(settings)?,
                })
            }
            "bitbucket" => {
                let (owner, repo) = owner_repo(t, &id)?;
                let token = require_token(settings)?;
                let (username, password) = token
                    .split_once(':')
                    .filter(|(u, p)| !u.is_empty() && !p.is_empty() && !p.contains(':'))
                    .ok_or_else(|| {
                        ProviderError::setting(
                            t,
                            "the token must have the form '<username>:<app password>'",
                        )
                    })?;
                let api = if host.host_str() == Some("bitbucket.org") {
                    parse(t, "https://api.bitbucket.org/2.0")?
                } else {
                    join(&host, &["2.0"])
                };
                GitKind::Bitbucket {
                    api,
                    owner,
                    repo,
                    auth: Auth::Basic(username.to_string(), password.to_string()),
                }
            }
            "bitbucketserver" => {
                // Clone URLs look like `<host>[/<context path>]/scm/<project>/<repo>.git`.
                let path = format!("/{id}");
                let at = path.rfind("/scm/").ok_or_else(|| {
                    ProviderError::address(t, "expected the http(s) clone URL of the repository, with '/scm/<project>/<repo>'")
                })?;
                let context_path = &path[..at];
                let (project, repo) = owner_repo(t, &path[at + 5..])?;
                let mut base = host.clone();
                base.set_path(context_path);
                let auth = match settings.token() {
                    Some(token) => Auth::Bearer(token.to_string()),
                    None => match settings.password.as_deref().filter(|p| !p.is_empty()) {
                        Some(password) if !settings.username.is_empty() => {
                            Auth::Basic(settings.username.clone(), password.to_string())
                        }
                        _ => {
                            return Err(ProviderError::setting(
                                t,
                                "credentials are required: a token, or a username and password",
                            ));
                        }
                    },
                };
                GitKind::BitbucketServer {
                    api: join(&base, &["rest", "api", "latest"]),
                    project,
                    repo,
                    auth,
                    address: settings.address.trim().to_string(),
                }
            }
            _ => {
                // `<org>/<project>/_git/<repo>`.
                let parts: Vec<&str> = id.split('/').collect();
                let [org, project, "_git", repo] = parts.as_slice() else {
                    return Err(ProviderError::address(
                        t,
                        "expected 'https://dev.azure.com/<organisation>/<project>/_git/<repository>'",
                    ));
                };
                GitKind::AzureDevOps {
                    org: join(&host, &[org]),
                    project: project.to_string(),
                    repo: repo.to_string(),
                    token: require_token(settings)?,
                }
            }
        };
        Ok(Some(Git {
            kind,
            status_override: settings
                .commit_status
                .clone()
                .filter(|s| !s.trim().is_empty()),
            provider_uid: settings.provider_uid.clone(),
        }))
    }

    pub(super) async fn send(
        &self,
        call: &mut Call<'_>,
        event: &Event<'_>,
        status_id: Option<&str>,
    ) -> Result<(), DeliveryError> {
        if let GitKind::GitHubDispatch(repo) = &self.kind {
            if event.is_commit_status_update() {
                return Ok(());
            }
            let url = join(&repo.api, &["repos", &repo.owner, &repo.repo, "dispatches"]);
            let payload = json!({
                "event_type": format!("{}/{}.{}", event.kind(), event.name(), event.namespace()),
                "client_payload": event.to_json(),
            });
            call.execute(github_headers(Req::post(url).json(&payload), &repo.token))
                .await?;
            return Ok(());
        }

        // Commit statuses: only for events about a revision.
        let Some(revision) = event.revision() else {
            return Ok(());
        };
        let sha = format::commit_hash(revision)
            .ok_or_else(|| call.invalid_event(format!("no commit hash in revision '{revision}'")))?
            .to_string();
        let progressing = event.has_reason(PROGRESSING);
        if progressing && !matches!(self.kind, GitKind::Gitea(_)) {
            return Ok(());
        }
        let id = status_id
            .map(str::to_owned)
            .or_else(|| self.status_override.clone())
            .unwrap_or_else(|| format::commit_status_id(&self.provider_uid, event.raw));
        let description = event.description();
        let error = event.is_error();

        match &self.kind {
            GitKind::GitHub(repo) => {
                let state = if error { "failure" } else { "success" };
                let mut list = join(
                    &repo.api,
                    &[
                        "repos",
                        &repo.owner,
                        &repo.repo,
                        "commits",
                        &sha,
                        "statuses",
                    ],
                );
                list.query_pairs_mut().append_pair("per_page", "50");
                let existing = call
                    .execute(github_headers(Req::get(list), &repo.token))
                    .await?;
                if latest_matches(
                    &existing.json(),
                    "context",
                    &id,
                    &[("state", state), ("description", &description)],
                ) {
                    return Ok(());
                }
                let url = join(
                    &repo.api,
                    &["repos", &repo.owner, &repo.repo, "statuses", &sha],
                );
                let payload = json!({"state": state, "context": id, "description": description});
                call.execute(github_headers(Req::post(url).json(&payload), &repo.token))
                    .await?;
            }
            GitKind::GitLab {
                api,
                project,
                token,
            } => {
                let state = if error { "failed" } else { "success" };
                let mut list = join(
                    api,
                    &[
                        "projects",
                        project,
                        "repository",
                        "commits",
                        &sha,
                        "statuses",
                    ],
                );
                list.query_pairs_mut().append_pair("name", &id);
                let existing = call
                    .execute(Req::get(list).header("private-token", token))
                    .await?;
                if latest_matches(
                    &existing.json(),
                    "name",
                    &id,
                    &[("status", state), ("description", &description)],
                ) {
                    return Ok(());
                }
                let url = join(api, &["projects", project, "statuses", &sha]);
                let payload = json!({"state": state, "name": id, "description": description});
                call.execute(Req::post(url).json(&payload).header("private-token", token))
                    .await?;
            }
            GitKind::Gitea(repo) => {
                let state = match (progressing, error) {
                    (true, _) => "pending",
                    (false, true) => "failure",
                    (false, false) => "success",
                };
                let auth = format!("token {}", repo.token);
                let mut list = join(
                    &repo.api,
                    &["repos", &repo.owner, &repo.repo, "statuses", &sha],
                );
                list.query_pairs_mut()
                    .append_pair("page", "1")
                    .append_pair("limit", "50");
                let existing = call
                    .execute(Req::get(list).header("authorization", &auth))
                    .await?;
                if latest_matches(
                    &existing.json(),
                    "context",
                    &id,
                    &[("status", state), ("description", &description)],
                ) {
                    return Ok(());
                }
                let url = join(
                    &repo.api,
                    &["repos", &repo.owner, &repo.repo, "statuses", &sha],
                );
                let payload = json!({
                    "state": state, "target_url": "", "description": description, "context": id,
                });
                call.execute(Req::post(url).json(&payload).header("authorization", &auth))
                    .await?;
            }
            GitKind::Bitbucket {
                api,
                owner,
                repo,
                auth,
            } => {
                let state = if error { "FAILED" } else { "SUCCESSFUL" };
                // Keys are limited to 40 characters: Flux sends the SHA-1 of the status ID.
                let key = format::sha1_hex(id.as_bytes());
                let base = join(
                    api,
                    &[
                        "repositories",
                        owner,
                        repo,
                        "commit",
                        &sha,
                        "statuses",
                        "build",
                    ],
                );
                let existing = call
                    .execute(auth.apply(Req::get(join(&base, &[&key])).allow_not_found()))
                    .await?;
                if existing.status.is_success()
                    && fields_match(
                        &existing.json(),
                        &[
                            ("state", state),
                            ("name", &id),
                            ("description", &description),
                        ],
                    )
                {
                    return Ok(());
                }
                let payload = json!({
                    "state": state, "key": key, "name": id, "description": description,
                    "url": "https://bitbucket.org",
                });
                call.execute(auth.apply(Req::post(base).json(&payload)))
                    .await?;
            }
            GitKind::BitbucketServer {
                api,
                project,
                repo,
                auth,
                address,
            } => {
                let state = if error { "FAILED" } else { "SUCCESSFUL" };
                let key = format::sha1_hex(id.as_bytes());
                let name = format!(
                    "{} [{description}]",
                    format!("{}/{}", event.kind(), event.name()).to_lowercase()
                );
                let url = join(
                    api,
                    &[
                        "projects", project, "repos", repo, "commits", &sha, "builds",
                    ],
                );
                let mut get = url.clone();
                get.query_pairs_mut().append_pair("key", &key);
                let existing = call
                    .execute(bitbucket_server_headers(
                        auth.apply(Req::get(get).allow_not_found()),
                    ))
                    .await?;
                if existing.status.is_success()
                    && fields_match(
                        &existing.json(),
                        &[
                            ("key", &key),
                            ("state", state),
                            ("description", &description),
                            ("name", &name),
                        ],
                    )
                {
                    return Ok(());
                }
                let payload = json!({
                    "key": key, "state": state, "url": address, "description": description, "name": name,
                });
                call.execute(bitbucket_server_headers(
                    auth.apply(Req::post(url).json(&payload)),
                ))
                .await?;
            }
            GitKind::AzureDevOps {
                org,
                project,
                repo,
                token,
            } => {
                let state = if error { "error" } else { "succeeded" };
                let mut url = join(
                    org,
                    &[
                        project,
                        "_apis",
                        "git",
                        "repositories",
                        repo,
                        "commits",
                        &sha,
                        "statuses",
                    ],
                );
                url.query_pairs_mut().append_pair("api-version", "6.0");
                let existing = call.execute(Req::get(url.clone()).basic("", token)).await?;
                if azure_duplicate(&existing.json(), &id, state, &description) {
                    return Ok(());
                }
                let payload = json!({
                    "state": state,
                    "description": description,
                    "context": {"genre": AZURE_GENRE, "name": id},
                });
                call.execute(Req::post(url).json(&payload).basic("", token))
                    .await?;
            }
            GitKind::GitHubDispatch(_) => {}
        }
        Ok(())
    }
}

fn github_headers(req: Req, token: &str) -> Req {
    req.bearer(token)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
}

fn bitbucket_server_headers(req: Req) -> Req {
    req.header("x-atlassian-token", "no-check")
        .header("x-requested-with", "XMLHttpRequest")
}

/// Whether the first status in `list` whose `key_field` is `key` has all `fields` equal.
fn latest_matches(
    list: &Option<Value>,
    key_field: &str,
    key: &str,
    fields: &[(&str, &str)],
) -> bool {
    let Some(Value::Array(statuses)) = list else {
        return false;
    };
    statuses
        .iter()
        .find(|s| s.get(key_field).and_then(Value::as_str) == Some(key))
        .is_some_and(|s| fields_match(&Some(s.clone()), fields))
}

fn fields_match(object: &Option<Value>, fields: &[(&str, &str)]) -> bool {
    object.as_ref().is_some_and(|o| {
        fields
            .iter()
            .all(|(field, want)| o.get(*field).and_then(Value::as_str) == Some(*want))
    })
}

fn azure_duplicate(list: &Option<Value>, name: &str, state: &str, description: &str) -> bool {
    let Some(statuses) = list
        .as_ref()
        .and_then(|l| l.get("value"))
        .and_then(Value::as_array)
    else {
        return false;
    };
    statuses
        .iter()
        .find(|s| {
            let context = s.get("context");
            context.and_then(|c| c.get("name")).and_then(Value::as_str) == Some(name)
                && context.and_then(|c| c.get("genre")).and_then(Value::as_str) == Some(AZURE_GENRE)
        })
        .is_some_and(|s| {
            s.get("state").and_then(Value::as_str) == Some(state)
                && s.get("description").and_then(Value::as_str) == Some(description)
        })
}

/// `base` with `segments` appended, each percent-encoded as one path segment.
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

fn parse(provider_type: &str, url: &str) -> Result<Url, ProviderError> {
    Url::parse(url).map_err(|e| ProviderError::address(provider_type, e.to_string()))
}

/// The web host (`https://host[:port]`) and the repository path (`org/repo`) of a Git URL.
///
/// SSH URLs (`ssh://git@host/org/repo.git`, `git@host:org/repo.git`) map to `https://host`.
fn parse_git_address(provider_type: &str, address: &str) -> Result<(Url, String), ProviderError> {
    let address = address.trim();
    if address.is_empty() {
        return Err(ProviderError::MissingAddress {
            provider_type: provider_type.to_string(),
        });
    }
    let invalid = |reason: &str| ProviderError::address(provider_type, reason.to_string());
    let (host, path) = if !address.contains("://") {
        // scp-like: `[user@]host:path`.
        let (user_host, path) = address
            .split_once(':')
            .ok_or_else(|| invalid("expected the URL of a Git repository"))?;
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        (
            parse(provider_type, &format!("https://{host}"))?,
            path.to_string(),
        )
    } else {
        let url = Url::parse(address)
            .map_err(|e| invalid(&format!("not a URL of a Git repository ({e})")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("the URL has no host"))?;
        let base = match url.scheme() {
            "ssh" => format!("https://{host}"),
            "http" | "https" => match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            },
            other => {
                return Err(invalid(&format!(
                    "the scheme must be http, https or ssh, not '{other}'"
                )));
            }
        };
        (parse(provider_type, &base)?, url.path().to_string())
    };
    let id = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .to_string();
    if id.is_empty() {
        return Err(invalid("the URL names no repository"));
    }
    Ok((host, id))
}

/// `owner/repo` split in two.
fn owner_repo(provider_type: &str, id: &str) -> Result<(String, String), ProviderError> {
    match id.split('/').collect::<Vec<_>>().as_slice() {
        [owner, repo] if !owner.is_empty() && !repo.is_empty() => {
            Ok((owner.to_string(), repo.to_string()))
        }
        _ => Err(ProviderError::address(
            provider_type,
            format!("expected a repository '<owner>/<repository>', got '{id}'"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn git_addresses_in_every_form() {
        for (address, host, id) in [
            (
                "https://github.com/org/repo",
                "https://github.com/",
                "org/repo",
            ),
            (
                "https://github.com/org/repo.git",
                "https://github.com/",
                "org/repo",
            ),
            (
                "ssh://git@github.com/org/repo.git",
                "https://github.com/",
                "org/repo",
            ),
            (
                "git@github.com:org/repo.git",
                "https://github.com/",
                "org/repo",
            ),
            (
                "http://127.0.0.1:8080/group/sub/repo",
                "http://127.0.0.1:8080/",
                "group/sub/repo",
            ),
        ] {
            let (h, i) = parse_git_address("github", address).unwrap();
            assert_eq!((h.as_str(), i.as_str()), (host, id), "{address}");
        }
        assert!(parse_git_address("github", "https://github.com/").is_err());
        assert!(parse_git_address("github", "ftp://github.com/a/b").is_err());
    }

    #[test]
    fn api_urls_follow_the_host() {
        let settings = |t: &str, address: &str| ProviderSettings {
            token: Some("u:p".into()),
            ..ProviderSettings::new(t, address)
        };
        let git = Git::new(&settings("github", "https://github.com/org/repo"))
            .unwrap()
            .unwrap();
        let GitKind::GitHub(repo) = git.kind else {
            panic!()
        };
        assert_eq!(repo.api.as_str(), "https://api.github.com/");

        let git = Git::new(&settings("github", "https://ghe.example.com/org/repo"))
            .unwrap()
            .unwrap();
        let GitKind::GitHub(repo) = git.kind else {
            panic!()
        };
        assert_eq!(repo.api.as_str(), "https://ghe.example.com/api/v3");

        let git = Git::new(&settings(
            "bitbucketserver",
            "https://bb.example.com/ctx/scm/proj/repo.git",
        ))
        .unwrap()
        .unwrap();
        let GitKind::BitbucketServer {
            api, project, repo, ..
        } = git.kind
        else {
            panic!()
        };
        assert_eq!(api.as_str(), "https://bb.example.com/ctx/rest/api/latest");
        assert_eq!((project.as_str(), repo.as_str()), ("proj", "repo"));

        assert!(
            Git::new(&settings(
                "azuredevops",
                "https://dev.azure.com/org/proj/repo"
            ))
            .is_err()
        );
        let err = Git::new(&ProviderSettings {
            token: Some("no-colon".into()),
            ..ProviderSettings::new("bitbucket", "https://bitbucket.org/o/r")
        })
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("<username>:<app password>"),
            "{err}"
        );
        assert!(!err.to_string().contains("no-colon"), "{err}");
    }
}
