//! Real Git servers for tests: bare repositories in a temporary folder, served over smart HTTP(S) by
//! `git http-backend` and over SSH by a real `sshd`, plus helpers that change the repositories the way a
//! user would (commit, tag, branch, force-push, push `refs/pull/1/head`).
//!
//! ```no_run
//! # fn demo() -> anyhow::Result<()> {
//! use e2e::git_server::{GitServer, HttpOptions};
//!
//! let server = GitServer::new()?;
//! let repo = server.create_repo("podinfo")?;
//! let wc = repo.working_copy()?;
//! let sha = wc.commit(&[("deploy/app.yaml", "kind: ConfigMap\n")], "first")?;
//! wc.tag("v1.0.0", &sha)?;
//! let http = server.serve_http(HttpOptions::default().basic_auth("flux", "s3cret"))?;
//! let url = http.url("podinfo"); // http://127.0.0.1:<port>/podinfo.git
//! # let _ = url; Ok(()) }
//! ```
//!
//! # Guarantees
//! - Every front-end ([`HttpGitServer`], [`SshGitServer`]) serves the same repositories, so a test can
//!   reach one repository with and without credentials, or over HTTP and SSH.
//! - Commits and tags made by [`WorkingCopy`] use a fixed author, committer and date
//!   ([`AUTHOR_NAME`], [`AUTHOR_EMAIL`], [`COMMIT_DATE`]): the same changes give the same shas on any machine.
//! - Repositories behave like common Git hosts: fetching a reachable commit by sha and partial clone
//!   filters are allowed, and pushes over HTTP are accepted (after authentication, when it is configured).
//! - Processes (`sshd`, the HTTP server thread, `git http-backend`) stop when their handle is dropped and
//!   die with the test process; the folder is removed when the last handle is dropped.
//!
//! # Caveats
//! - SSH logs in as the user that runs the tests (`root` in CI): sshd cannot switch to another user
//!   without one in `/etc/passwd`. Use [`SshGitServer::url`] rather than assuming `git@`.
//! - Working copies push through the file system, not through a front-end, so changing a repository
//!   needs no credentials and shows up in no request log.

mod http;
mod ssh;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use tempfile::TempDir;

pub use http::{Credential, HttpGitServer, HttpOptions, RequestRecord};
pub use ssh::{SshGitServer, SshKeyKind, SshKeyPair, SshOptions, generate_ssh_key, ssh_command};

/// The author and committer name of every commit and tag made by [`WorkingCopy`].
pub const AUTHOR_NAME: &str = "Ferroflux Test";
/// The author and committer e-mail of every commit and tag made by [`WorkingCopy`].
pub const AUTHOR_EMAIL: &str = "test@ferroflux.dev";
/// The author, committer and tagger date of [`WorkingCopy`] (Git's raw format: 2024-01-01T00:00:00Z).
pub const COMMIT_DATE: &str = "1704067200 +0000";
/// The branch that `HEAD` of a repository made by [`GitServer::create_repo`] points to (Flux's default).
pub const DEFAULT_BRANCH: &str = "master";

/// Lines appended to every bare repository's config, so it behaves like a common Git host.
const REPO_CONFIG: &str = "[uploadpack]\n\tallowFilter = true\n\tallowAnySHA1InWant = true\n\
[http]\n\treceivepack = true\n";

/// A folder of bare repositories and the front-ends that serve it.
#[derive(Debug, Clone)]
pub struct GitServer {
    root: Arc<TempDir>,
    repos: PathBuf,
}

impl GitServer {
    /// Creates an empty server folder (no front-end runs yet: see [`GitServer::serve_http`] and
    /// [`GitServer::serve_ssh`]).
    pub fn new() -> Result<Self> {
        Self::new_in(&std::env::temp_dir())
    }

    /// Like [`GitServer::new`], with the server folder created inside `parent` (so a long-lived
    /// server's data goes where its owner cleans up, such as the demo cluster's data folder).
    pub fn new_in(parent: &Path) -> Result<Self> {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let root = tempfile::Builder::new()
            .prefix("ferroflux-git-")
            .tempdir_in(parent)
            .context("cannot create the git server folder")?;
        let repos = root.path().join("repos");
        std::fs::create_dir_all(&repos)?;
        Ok(Self {
            root: Arc::new(root),
            repos,
        })
    }

    /// The folder that holds the bare repositories (`<name>.git` each).
    pub fn repos_dir(&self) -> &Path {
        &self.repos
    }

    /// Creates an empty bare repository `<name>.git` whose `HEAD` is [`DEFAULT_BRANCH`].
    ///
    /// `name` may contain slashes (`org/app`) but no `..`.
    pub fn create_repo(&self, name: &str) -> Result<Repo> {
        self.create_repo_with_head(name, DEFAULT_BRANCH)
    }

    /// Creates an empty bare repository `<name>.git` whose `HEAD` points to `branch`.
    pub fn create_repo_with_head(&self, name: &str, branch: &str) -> Result<Repo> {
        let path = self.repo_path(name)?;
        ensure!(!path.exists(), "repository {name} already exists");
        std::fs::create_dir_all(&path)?;
        run_git(
            &path,
            &["init", "--quiet", "--bare", "--initial-branch", branch],
        )?;
        let config = path.join("config");
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(REPO_CONFIG);
        std::fs::write(&config, text)?;
        Ok(Repo {
            name: name.to_string(),
            path,
            _root: self.root.clone(),
        })
    }

    /// A repository made earlier by [`GitServer::create_repo`].
    pub fn repo(&self, name: &str) -> Result<Repo> {
        let path = self.repo_path(name)?;
        ensure!(path.is_dir(), "repository {name} does not exist");
        Ok(Repo {
            name: name.to_string(),
            path,
            _root: self.root.clone(),
        })
    }

    /// Starts a smart HTTP front-end (`git http-backend` behind a small server on 127.0.0.1).
    pub fn serve_http(&self, options: HttpOptions) -> Result<HttpGitServer> {
        http::start(self.root.clone(), self.repos.clone(), options)
    }

    /// Starts an SSH front-end (a real `sshd` on 127.0.0.1) with an ed25519 host key and client key.
    pub fn serve_ssh(&self) -> Result<SshGitServer> {
        self.serve_ssh_with(SshOptions::default())
    }

    /// Starts an SSH front-end with the given key kinds.
    pub fn serve_ssh_with(&self, options: SshOptions) -> Result<SshGitServer> {
        ssh::start(self.root.clone(), &self.repos, options)
    }

    fn repo_path(&self, name: &str) -> Result<PathBuf> {
        let relative = Path::new(name);
        ensure!(
            !name.is_empty()
                && relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
            "invalid repository name {name:?}"
        );
        Ok(self.repos.join(format!("{name}.git")))
    }
}

/// One bare repository on a [`GitServer`].
#[derive(Debug, Clone)]
pub struct Repo {
    name: String,
    path: PathBuf,
    _root: Arc<TempDir>,
}

impl Repo {
    /// The name given at creation (the URL path without `.git`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bare repository folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clones the repository into a fresh temporary working copy (through the file system).
    pub fn working_copy(&self) -> Result<WorkingCopy> {
        WorkingCopy::clone_of(self)
    }

    /// The object a revision (`master`, `refs/tags/v1`, `v1^{commit}`, a sha) names in the repository.
    pub fn rev_parse(&self, rev: &str) -> Result<String> {
        run_git(&self.path, &["rev-parse", "--verify", "--quiet", rev])
            .with_context(|| format!("{rev} does not exist in {}", self.name))
    }

    /// Every ref of the repository and the object it points to (`refs/heads/master` -> sha).
    pub fn refs(&self) -> Result<BTreeMap<String, String>> {
        let out = run_git(
            &self.path,
            &["for-each-ref", "--format=%(refname) %(objectname)"],
        )?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, sha)| (name.to_string(), sha.to_string()))
            .collect())
    }

    /// Points `HEAD` (the branch a plain clone checks out) to `branch`.
    pub fn set_head(&self, branch: &str) -> Result<()> {
        run_git(
            &self.path,
            &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
        )?;
        Ok(())
    }

    /// The branch `HEAD` points to.
    pub fn head_branch(&self) -> Result<String> {
        run_git(&self.path, &["symbolic-ref", "--short", "HEAD"])
    }
}

/// A non-bare clone of a [`Repo`] that changes it like a user would: every method that changes history
/// pushes the result to the repository at once.
#[derive(Debug)]
pub struct WorkingCopy {
    dir: TempDir,
    date: String,
}

impl WorkingCopy {
    fn clone_of(repo: &Repo) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-wc-")
            .tempdir()
            .context("cannot create a working copy folder")?;
        let path = repo.path.to_string_lossy().into_owned();
        run_git(dir.path(), &["clone", "--quiet", &path, "."])?;
        let wc = Self {
            dir,
            date: COMMIT_DATE.to_string(),
        };
        // A clone of an empty repository has an unborn HEAD; point it to the repository's branch.
        if wc
            .git(&["rev-parse", "--verify", "--quiet", "HEAD"])
            .is_err()
        {
            let branch = repo.head_branch()?;
            wc.git(&["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")])?;
        }
        Ok(wc)
    }

    /// The working copy folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Changes the author, committer and tagger date of what is made next (Git's date formats, such as
    /// `"1704153600 +0000"` or `"2024-01-02T00:00:00Z"`).
    pub fn set_date(&mut self, date: &str) {
        self.date = date.to_string();
    }

    /// Runs `git args...` in the working copy with the fixed identity and date; returns trimmed stdout.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        let mut cmd = git_command();
        cmd.current_dir(self.path())
            .env("GIT_AUTHOR_DATE", &self.date)
            .env("GIT_COMMITTER_DATE", &self.date)
            .args(args);
        output_of(cmd, args)
    }

    /// Writes `files` (path relative to the root, content), commits every change with `message` on the
    /// current branch and pushes the branch. Returns the new commit sha. An empty `files` makes an empty
    /// commit.
    pub fn commit<C: AsRef<[u8]>>(&self, files: &[(&str, C)], message: &str) -> Result<String> {
        for (path, content) in files {
            let full = self.file_path(path)?;
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&full, content.as_ref())
                .with_context(|| format!("cannot write {}", full.display()))?;
        }
        self.commit_all_and_push(message)
    }

    /// Removes `paths` (files or folders), commits with `message` and pushes the current branch.
    pub fn remove(&self, paths: &[&str], message: &str) -> Result<String> {
        for path in paths {
            self.file_path(path)?;
        }
        let mut args = vec!["rm", "--quiet", "-r", "--"];
        args.extend_from_slice(paths);
        self.git(&args)?;
        self.commit_all_and_push(message)
    }

    /// Switches to `branch`: the local branch if there is one, else the remote's, else a new branch at
    /// the current commit (pushed by the next [`WorkingCopy::commit`]).
    pub fn checkout(&self, branch: &str) -> Result<()> {
        let local = format!("refs/heads/{branch}");
        let remote = format!("refs/remotes/origin/{branch}");
        if self.has_ref(&local) {
            self.git(&["checkout", "--quiet", branch])?;
        } else if self.has_ref(&remote) {
            self.git(&["checkout", "--quiet", "-b", branch, &remote])?;
        } else {
            self.git(&["checkout", "--quiet", "-b", branch])?;
        }
        Ok(())
    }

    /// Creates branch `name` at `target` (a sha or ref) and pushes it.
    pub fn create_branch(&self, name: &str, target: &str) -> Result<()> {
        self.git(&["branch", name, target])?;
        self.push(&[&format!("refs/heads/{name}:refs/heads/{name}")])
    }

    /// Points branch `name` at `target`, here and in the repository (`git push --force`), as after a
    /// history rewrite.
    pub fn force_push_branch(&self, name: &str, target: &str) -> Result<()> {
        let sha = self.rev_parse(&format!("{target}^{{commit}}"))?;
        if self.current_branch().ok().as_deref() == Some(name) {
            self.git(&["reset", "--quiet", "--hard", &sha])?;
        } else {
            self.git(&["branch", "--force", name, &sha])?;
        }
        self.push(&["--force", &format!("{sha}:refs/heads/{name}")])
    }

    /// Deletes branch `name` from the repository (and here, unless it is checked out).
    pub fn delete_branch(&self, name: &str) -> Result<()> {
        self.push(&["--delete", &format!("refs/heads/{name}")])?;
        if self.current_branch().ok().as_deref() != Some(name)
            && self.has_ref(&format!("refs/heads/{name}"))
        {
            self.git(&["branch", "--quiet", "-D", name])?;
        }
        Ok(())
    }

    /// Creates or moves the lightweight tag `name` to `target` and pushes it.
    pub fn tag(&self, name: &str, target: &str) -> Result<()> {
        self.git(&["tag", "--force", name, target])?;
        self.push(&["--force", &format!("refs/tags/{name}:refs/tags/{name}")])
    }

    /// Creates or moves the annotated tag `name` to `target` with `message` and pushes it. Returns the
    /// sha of the tag object (not of the commit it points to).
    pub fn annotated_tag(&self, name: &str, target: &str, message: &str) -> Result<String> {
        self.git(&["tag", "--force", "--annotate", "-m", message, name, target])?;
        self.push(&["--force", &format!("refs/tags/{name}:refs/tags/{name}")])?;
        self.rev_parse(&format!("refs/tags/{name}"))
    }

    /// Deletes tag `name` here and in the repository.
    pub fn delete_tag(&self, name: &str) -> Result<()> {
        self.push(&["--delete", &format!("refs/tags/{name}")])?;
        if self.has_ref(&format!("refs/tags/{name}")) {
            self.git(&["tag", "--delete", name])?;
        }
        Ok(())
    }

    /// Sets any ref of the repository (`refs/pull/1/head`, `refs/merge-requests/1/head`) to `target`,
    /// with `git push --force`.
    pub fn push_ref(&self, refname: &str, target: &str) -> Result<()> {
        ensure!(
            refname.starts_with("refs/"),
            "{refname} is not a full ref name"
        );
        let sha = self.rev_parse(target)?;
        self.push(&["--force", &format!("{sha}:{refname}")])
    }

    /// Records a submodule at `path` that points to commit `commit` of the repository at `url` (no
    /// clone is made), commits with `message` and pushes the current branch.
    pub fn add_submodule(
        &self,
        path: &str,
        url: &str,
        commit: &str,
        message: &str,
    ) -> Result<String> {
        // An unpopulated submodule is an empty folder; without it `git add --all` would drop the entry.
        std::fs::create_dir_all(self.file_path(path)?)?;
        let section = format!("submodule.{path}");
        self.git(&[
            "config",
            "--file",
            ".gitmodules",
            &format!("{section}.path"),
            path,
        ])?;
        self.git(&[
            "config",
            "--file",
            ".gitmodules",
            &format!("{section}.url"),
            url,
        ])?;
        self.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{commit},{path}"),
        ])?;
        self.commit_all_and_push(message)
    }

    /// The sha of the current commit.
    pub fn head(&self) -> Result<String> {
        self.rev_parse("HEAD")
    }

    /// The object a revision names here.
    pub fn rev_parse(&self, rev: &str) -> Result<String> {
        self.git(&["rev-parse", "--verify", "--quiet", rev])
            .with_context(|| format!("{rev} does not exist in the working copy"))
    }

    /// The checked-out branch.
    pub fn current_branch(&self) -> Result<String> {
        self.git(&["symbolic-ref", "--short", "HEAD"])
    }

    fn commit_all_and_push(&self, message: &str) -> Result<String> {
        self.git(&["add", "--all"])?;
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message])?;
        let branch = self
            .current_branch()
            .context("the working copy has no branch checked out")?;
        self.push(&[&format!("HEAD:refs/heads/{branch}")])?;
        self.head()
    }

    fn push(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["push", "--quiet", "origin"];
        all.extend_from_slice(args);
        self.git(&all)?;
        Ok(())
    }

    fn has_ref(&self, name: &str) -> bool {
        self.git(&["rev-parse", "--verify", "--quiet", name])
            .is_ok()
    }

    fn file_path(&self, path: &str) -> Result<PathBuf> {
        let relative = Path::new(path);
        ensure!(
            !path.is_empty()
                && relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
            "{path:?} is not a relative path inside the working copy"
        );
        Ok(self.path().join(relative))
    }
}

/// A `git` command that ignores the machine's and the user's Git config and `GIT_SSL_*` settings,
/// never prompts, uses no proxy and commits as [`AUTHOR_NAME`] at [`COMMIT_DATE`]. Tests use it for the client side (`clone`,
/// `ls-remote`) so that nothing from the machine changes the outcome.
pub fn git_command() -> Command {
    let mut cmd = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_SSL_NO_VERIFY",
        "GIT_SSL_CERT",
        "GIT_SSL_KEY",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_AUTHOR_DATE", COMMIT_DATE)
        .env("GIT_COMMITTER_DATE", COMMIT_DATE)
        .stdin(Stdio::null());
    cmd
}

/// Runs `git args...` in `dir` with [`git_command`]; returns trimmed stdout.
fn run_git(dir: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = git_command();
    cmd.current_dir(dir).args(args);
    output_of(cmd, args)
}

fn output_of(mut cmd: Command, args: &[&str]) -> Result<String> {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().context("cannot run git (is it installed?)")?;
    if !status.success() {
        bail!(
            "git {} failed ({status}): {}",
            args.join(" "),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).trim().to_string())
}
