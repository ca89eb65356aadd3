//! Fetching one commit and writing its tree (and its submodules') into a folder.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::auth::GitAuth;
use super::commit::{CommitInfo, TagInfo, parse_commit, parse_tag};
use super::error::GitError;
use super::refs::{ResolvedRef, is_full_hash};
use super::transport::{Ctx, Session, boxed};
use super::url::{GitUrl, Scheme};
use crate::api::v1::GitCheckout;

/// How deep submodules of submodules are followed (as `go-git` does by default).
const MAX_SUBMODULE_DEPTH: usize = 10;

/// The local reference the fetched target is stored under in the throwaway repository.
const TARGET_REF: &str = "refs/ferroflux/target";

/// How to check out a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutOptions {
    /// How many commits of history to fetch: `1` (the default) fetches only the commit, `0`
    /// fetches the whole history.
    pub depth: u32,
    /// Directories (relative to the repository root, such as `deploy/prod`) to write; every
    /// file outside them is left out. Empty means the whole tree. Each must exist.
    pub sparse_checkout: Vec<String>,
    /// Also check out the submodules (recursively), each at the commit the tree records.
    pub recurse_submodules: bool,
    /// The time limit of the whole operation, submodules included (`spec.timeout`).
    pub timeout: Duration,
    /// The most bytes of file content to write, if limited.
    pub max_size: Option<u64>,
}

impl Default for CheckoutOptions {
    fn default() -> Self {
        Self {
            depth: 1,
            sparse_checkout: Vec::new(),
            recurse_submodules: false,
            timeout: Duration::from_secs(60),
            max_size: None,
        }
    }
}

/// Checks out `resolved` into `dest` (see [`super::checkout`]).
pub(crate) fn checkout(
    url: &GitUrl,
    auth: &GitAuth,
    resolved: &ResolvedRef,
    dest: &Path,
    options: &CheckoutOptions,
    ctx: &Ctx,
) -> Result<CommitInfo, GitError> {
    prepare_dest(dest)?;
    let sparse = normalize_sparse(&options.sparse_checkout)?;
    let session = Session::open(url, auth, ctx)?;

    let (target, commit_id) = fetch_target(&session, resolved, options.depth, ctx)?;
    let tag = match &resolved.tag {
        Some(name) => Some(tag_info(&session, name, target)?),
        None => None,
    };
    let raw = object_data(&session, commit_id, "commit")?;
    let hash = commit_id.to_string();
    let mut info = parse_commit(&hash, resolved.reference.clone(), &raw);
    let resolved_tag = match resolved.checkout {
        GitCheckout::SemVer(_) => resolved.tag.as_deref(),
        _ => None,
    };
    info.revision = resolved.checkout.revision(&hash, resolved_tag);
    info.tag = tag;

    let mut writer = TreeWriter {
        session: &session,
        dest,
        written: 0,
        max_size: options.max_size,
        commit: hash.clone(),
        ctx,
    };
    let tree = commit_tree(&session, commit_id)?;
    let mut gitlinks = Vec::new();
    writer.write_tree(tree, Path::new(""), &sparse, &mut gitlinks)?;
    for dir in &sparse {
        if !dest.join(dir).is_dir() {
            return Err(GitError::SparseCheckoutPathNotFound(
                dir.display().to_string(),
            ));
        }
    }
    if options.recurse_submodules && !gitlinks.is_empty() {
        let modules = read_gitmodules(&session, tree)?;
        let written = writer.written;
        checkout_submodules(
            url, auth, &modules, gitlinks, dest, options, written, 1, ctx,
        )?;
    }
    Ok(info)
}

/// Fetches what `resolved` names; returns the fetched tip (a tag object for an annotated tag)
/// and the commit to check out.
fn fetch_target(
    session: &Session,
    resolved: &ResolvedRef,
    depth: u32,
    ctx: &Ctx,
) -> Result<(ObjectId, ObjectId), GitError> {
    let by_commit = matches!(resolved.checkout, GitCheckout::Commit { .. });
    if by_commit {
        let commit = parse_id(&resolved.commit)?;
        let spec = format!("+{commit}:{TARGET_REF}");
        match fetch(session, &[spec], depth, ctx) {
            Ok(()) if has_object(session, commit) => return Ok((commit, commit)),
            Ok(()) => {}
            Err(err) if !fetch_by_hash_refused(&err) => return Err(err),
            Err(_) => {}
        }
        // The server does not serve commits by hash: fetch the branch (or every branch) with
        // its history and look for the commit there.
        let spec = match &resolved.reference {
            Some(branch) => format!("+{branch}:refs/ferroflux/branch"),
            None => "+refs/heads/*:refs/ferroflux/heads/*".to_string(),
        };
        fetch(session, &[spec], 0, ctx)?;
        if has_object(session, commit) {
            return Ok((commit, commit));
        }
        return Err(GitError::RefNotFound {
            kind: "commit",
            name: resolved.commit.clone(),
            url: session.url.redacted(),
        });
    }
    let reference = resolved.reference.clone().ok_or_else(|| {
        GitError::InvalidReference("nothing to fetch: the reference is empty".to_string())
    })?;
    fetch(session, &[format!("+{reference}:{TARGET_REF}")], depth, ctx)?;
    let tip = session
        .repo
        .find_reference(TARGET_REF)
        .map_err(|_| GitError::RefNotFound {
            kind: ref_kind(&resolved.checkout),
            name: reference.clone(),
            url: session.url.redacted(),
        })?
        .id()
        .detach();
    let commit = peel_to_commit(session, tip)?;
    Ok((tip, commit))
}

fn ref_kind(checkout: &GitCheckout) -> &'static str {
    match checkout {
        GitCheckout::Branch(_) => "branch",
        GitCheckout::Tag(_) | GitCheckout::SemVer(_) => "tag",
        GitCheckout::Name(_) => "reference",
        GitCheckout::Commit { .. } => "commit",
    }
}

/// Whether a fetch failed because the server does not hand out objects by hash.
fn fetch_by_hash_refused(err: &GitError) -> bool {
    let text = error_text(err).to_lowercase();
    text.contains("not our ref")
        || text.contains("unadvertised object")
        || text.contains("want")
        || matches!(err, GitError::RefNotFound { .. } | GitError::Fetch { .. })
}

fn error_text(err: &GitError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Fetches `refspecs` into the session's repository.
fn fetch(session: &Session, refspecs: &[String], depth: u32, ctx: &Ctx) -> Result<(), GitError> {
    ctx.check()?;
    let remote = session.remote(refspecs)?;
    let connection = session.connect(&remote, ctx)?;
    let prepare = connection
        .prepare_fetch(
            gix::progress::Discard,
            gix::remote::ref_map::Options::default(),
        )
        .map_err(|e| session.classify(e, "fetch negotiation failed"))?;
    if prepare.ref_map().is_missing_required_mapping() {
        return Err(GitError::RefNotFound {
            kind: "reference",
            name: refspecs
                .first()
                .and_then(|s| s.trim_start_matches('+').split(':').next())
                .unwrap_or_default()
                .to_string(),
            url: session.url.redacted(),
        });
    }
    let prepare = match std::num::NonZeroU32::new(depth) {
        Some(depth) => prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth)),
        None => prepare,
    };
    prepare
        .receive(gix::progress::Discard, &ctx.interrupt)
        .map_err(|e| session.classify(e, "fetch failed"))?;
    ctx.check()
}

fn parse_id(hex: &str) -> Result<ObjectId, GitError> {
    if !is_full_hash(hex) {
        return Err(GitError::InvalidReference(format!(
            "'{hex}' is not a full commit hash"
        )));
    }
    ObjectId::from_hex(hex.as_bytes())
        .map_err(|_| GitError::InvalidReference(format!("'{hex}' is not a full commit hash")))
}

fn has_object(session: &Session, id: ObjectId) -> bool {
    session.repo.find_object(id).is_ok()
}

/// The raw data of object `id`, which must be of `kind` (`commit`, `tree`, `tag`, `blob`).
fn object_data(session: &Session, id: ObjectId, kind: &str) -> Result<Vec<u8>, GitError> {
    let object = session
        .repo
        .find_object(id)
        .map_err(|e| GitError::Checkout {
            commit: id.to_string(),
            source: boxed(e),
        })?;
    if object.kind.as_bytes() != kind.as_bytes() {
        return Err(GitError::Checkout {
            commit: id.to_string(),
            source: format!("object {id} is a {}, not a {kind}", object.kind).into(),
        });
    }
    Ok(object.data.clone())
}

/// Follows tag objects until a commit.
fn peel_to_commit(session: &Session, mut id: ObjectId) -> Result<ObjectId, GitError> {
    for _ in 0..16 {
        let object = session
            .repo
            .find_object(id)
            .map_err(|e| GitError::Checkout {
                commit: id.to_string(),
                source: boxed(e),
            })?;
        match object.kind {
            gix::object::Kind::Commit => return Ok(id),
            gix::object::Kind::Tag => {
                let tag = object.try_into_tag().map_err(|e| GitError::Checkout {
                    commit: id.to_string(),
                    source: boxed(e),
                })?;
                id = tag
                    .target_id()
                    .map_err(|e| GitError::Checkout {
                        commit: id.to_string(),
                        source: boxed(e),
                    })?
                    .detach();
            }
            other => {
                return Err(GitError::Checkout {
                    commit: id.to_string(),
                    source: format!("the reference points to a {other}, not a commit").into(),
                });
            }
        }
    }
    Err(GitError::Checkout {
        commit: id.to_string(),
        source: "too many nested tags".into(),
    })
}

/// The tag the checkout went through: annotated (with its signature) or lightweight.
fn tag_info(session: &Session, name: &str, tip: ObjectId) -> Result<TagInfo, GitError> {
    let object = session
        .repo
        .find_object(tip)
        .map_err(|e| GitError::Checkout {
            commit: tip.to_string(),
            source: boxed(e),
        })?;
    Ok(match object.kind {
        gix::object::Kind::Tag => parse_tag(name, &tip.to_string(), &object.data),
        _ => TagInfo::lightweight(name),
    })
}

fn commit_tree(session: &Session, commit: ObjectId) -> Result<ObjectId, GitError> {
    let commit_obj = session
        .repo
        .find_commit(commit)
        .map_err(|e| GitError::Checkout {
            commit: commit.to_string(),
            source: boxed(e),
        })?;
    commit_obj
        .tree_id()
        .map(|id| id.detach())
        .map_err(|e| GitError::Checkout {
            commit: commit.to_string(),
            source: boxed(e),
        })
}

/// A submodule recorded in a tree: its path and the commit it must be at.
struct Gitlink {
    path: PathBuf,
    commit: ObjectId,
}

/// Writes trees of one repository into the destination.
struct TreeWriter<'a> {
    session: &'a Session,
    dest: &'a Path,
    written: u64,
    max_size: Option<u64>,
    commit: String,
    ctx: &'a Ctx,
}

impl TreeWriter<'_> {
    fn fail(&self, source: impl Into<super::error::BoxError>) -> GitError {
        GitError::Checkout {
            commit: self.commit.clone(),
            source: source.into(),
        }
    }

    fn write_tree(
        &mut self,
        tree_id: ObjectId,
        prefix: &Path,
        sparse: &[PathBuf],
        gitlinks: &mut Vec<Gitlink>,
    ) -> Result<(), GitError> {
        self.ctx.check()?;
        let tree = self
            .session
            .repo
            .find_tree(tree_id)
            .map_err(|e| self.fail(boxed(e)))?;
        let decoded = tree.decode().map_err(|e| self.fail(boxed(e)))?;
        let entries: Vec<(EntryKind, Vec<u8>, ObjectId)> = decoded
            .entries
            .iter()
            .map(|e| (e.mode.kind(), e.filename.to_vec(), e.oid.to_owned()))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for (kind, name, oid) in entries {
            // Git refuses these names; a crafted tree could use them to write outside `dest`
            // (through `..`, or a symlink and a folder of the same name).
            if name.is_empty()
                || name == b"."
                || name == b".."
                || name.contains(&b'/')
                || name.contains(&0)
                || name.eq_ignore_ascii_case(b".git")
                || !seen.insert(name.clone())
            {
                return Err(self.fail(format!(
                    "unsafe or repeated path {:?} in the tree",
                    String::from_utf8_lossy(&name)
                )));
            }
            let name = std::ffi::OsStr::from_bytes(&name);
            let relative = prefix.join(name);
            match sparse_match(&relative, sparse, kind == EntryKind::Tree) {
                SparseMatch::Excluded => continue,
                SparseMatch::Included | SparseMatch::Ancestor => {}
            }
            let full = self.dest.join(&relative);
            match kind {
                EntryKind::Tree => {
                    std::fs::create_dir(&full).map_err(|e| {
                        GitError::io(format!("cannot create {}", relative.display()), e)
                    })?;
                    self.write_tree(oid, &relative, sparse, gitlinks)?;
                }
                EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link => {
                    if sparse_match(&relative, sparse, false) == SparseMatch::Ancestor {
                        continue;
                    }
                    let object = self
                        .session
                        .repo
                        .find_object(oid)
                        .map_err(|e| self.fail(boxed(e)))?;
                    self.written += object.data.len() as u64;
                    if let Some(limit) = self.max_size
                        && self.written > limit
                    {
                        return Err(GitError::TooLarge { limit });
                    }
                    write_entry(&full, kind, &object.data).map_err(|e| {
                        GitError::io(format!("cannot write {}", relative.display()), e)
                    })?;
                }
                EntryKind::Commit => {
                    std::fs::create_dir(&full).map_err(|e| {
                        GitError::io(format!("cannot create {}", relative.display()), e)
                    })?;
                    gitlinks.push(Gitlink {
                        path: relative,
                        commit: oid,
                    });
                }
            }
        }
        Ok(())
    }
}

fn write_entry(path: &Path, kind: EntryKind, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    match kind {
        EntryKind::Link => {
            let target = String::from_utf8_lossy(data).into_owned();
            std::os::unix::fs::symlink(target, path)
        }
        _ => {
            let mode = if kind == EntryKind::BlobExecutable {
                0o755
            } else {
                0o644
            };
            // `create_new` never follows or replaces what is already there.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(path)?;
            file.write_all(data)?;
            // The process umask may have cleared bits of `mode`.
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(mode))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SparseMatch {
    /// Inside a selected directory (or no selection).
    Included,
    /// A directory on the way to a selected one: descend, but write no files here.
    Ancestor,
    /// Outside every selected directory.
    Excluded,
}

fn sparse_match(path: &Path, sparse: &[PathBuf], is_dir: bool) -> SparseMatch {
    if sparse.is_empty() || sparse.iter().any(|dir| path.starts_with(dir)) {
        return SparseMatch::Included;
    }
    if is_dir && sparse.iter().any(|dir| dir.starts_with(path)) {
        return SparseMatch::Ancestor;
    }
    SparseMatch::Excluded
}

/// `./deploy/`, `deploy` and `/deploy` all select `deploy`; `.` or an empty entry selects
/// everything.
fn normalize_sparse(dirs: &[String]) -> Result<Vec<PathBuf>, GitError> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut path = PathBuf::new();
        for component in Path::new(dir.trim()).components() {
            match component {
                Component::Normal(part) => path.push(part),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(GitError::InvalidReference(format!(
                        "sparse checkout directory '{dir}' leaves the repository"
                    )));
                }
            }
        }
        if path.as_os_str().is_empty() {
            return Ok(Vec::new());
        }
        out.push(path);
    }
    Ok(out)
}

fn prepare_dest(dest: &Path) -> Result<(), GitError> {
    std::fs::create_dir_all(dest)
        .map_err(|e| GitError::io(format!("cannot create {}", dest.display()), e))?;
    let mut entries = std::fs::read_dir(dest)
        .map_err(|e| GitError::io(format!("cannot read {}", dest.display()), e))?;
    if entries.next().is_some() {
        return Err(GitError::io(
            format!("checkout folder {} is not empty", dest.display()),
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ));
    }
    Ok(())
}

/// Reads `.gitmodules` at the root of `tree`: submodule path to URL.
fn read_gitmodules(
    session: &Session,
    tree: ObjectId,
) -> Result<BTreeMap<String, String>, GitError> {
    let tree_obj = session
        .repo
        .find_tree(tree)
        .map_err(|e| GitError::Checkout {
            commit: tree.to_string(),
            source: boxed(e),
        })?;
    let decoded = tree_obj.decode().map_err(|e| GitError::Checkout {
        commit: tree.to_string(),
        source: boxed(e),
    })?;
    let Some(entry) = decoded
        .entries
        .iter()
        .find(|e| e.filename == ".gitmodules" && e.mode.is_blob())
    else {
        return Ok(BTreeMap::new());
    };
    let id = entry.oid.to_owned();
    let data = object_data(session, id, "blob")?;
    Ok(parse_gitmodules(&String::from_utf8_lossy(&data)))
}

/// Parses the `path` and `url` of each `[submodule "..."]` section.
pub(crate) fn parse_gitmodules(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_submodule = false;
    let mut path: Option<String> = None;
    let mut url: Option<String> = None;
    let mut flush = |path: &mut Option<String>, url: &mut Option<String>| {
        if let (Some(p), Some(u)) = (path.take(), url.take()) {
            out.insert(p, u);
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            flush(&mut path, &mut url);
            in_submodule = line
                .trim_start_matches('[')
                .trim_start()
                .starts_with("submodule");
            continue;
        }
        if !in_submodule {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"').to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "path" => path = Some(value.trim_end_matches('/').to_string()),
                "url" => url = Some(value),
                _ => {}
            }
        }
    }
    flush(&mut path, &mut url);
    out
}

/// Checks out each submodule (recursively) into its folder under `dest`.
#[allow(clippy::too_many_arguments)]
fn checkout_submodules(
    parent_url: &GitUrl,
    auth: &GitAuth,
    modules: &BTreeMap<String, String>,
    gitlinks: Vec<Gitlink>,
    dest: &Path,
    options: &CheckoutOptions,
    mut written: u64,
    depth: usize,
    ctx: &Ctx,
) -> Result<u64, GitError> {
    if depth > MAX_SUBMODULE_DEPTH {
        return Ok(written);
    }
    for link in gitlinks {
        let path = link.path.display().to_string();
        let wrap = |source: GitError| GitError::Submodule {
            path: path.clone(),
            source: Box::new(source),
        };
        let url_text = modules.get(&path).ok_or_else(|| {
            wrap(GitError::InvalidUrl {
                url: String::new(),
                reason: "no URL for it in .gitmodules".to_string(),
            })
        })?;
        let url = parent_url.join_submodule(url_text).map_err(wrap)?;
        let sub_auth = submodule_auth(parent_url, auth, &url).map_err(wrap)?;
        let session = Session::open(&url, &sub_auth, ctx).map_err(wrap)?;
        let spec = format!("+{}:{TARGET_REF}", link.commit);
        let fetched = fetch(&session, &[spec], 1, ctx);
        if !has_object(&session, link.commit) {
            if let Err(err) = fetched
                && !fetch_by_hash_refused(&err)
            {
                return Err(wrap(err));
            }
            fetch(
                &session,
                &["+refs/heads/*:refs/ferroflux/heads/*".to_string()],
                0,
                ctx,
            )
            .map_err(wrap)?;
            if !has_object(&session, link.commit) {
                return Err(wrap(GitError::RefNotFound {
                    kind: "commit",
                    name: link.commit.to_string(),
                    url: url.redacted(),
                }));
            }
        }
        let sub_dest = dest.join(&link.path);
        let mut writer = TreeWriter {
            session: &session,
            dest: &sub_dest,
            written,
            max_size: options.max_size,
            commit: link.commit.to_string(),
            ctx,
        };
        let tree = commit_tree(&session, link.commit).map_err(wrap)?;
        let mut nested = Vec::new();
        writer
            .write_tree(tree, Path::new(""), &[], &mut nested)
            .map_err(wrap)?;
        written = writer.written;
        if !nested.is_empty() {
            let nested_modules = read_gitmodules(&session, tree).map_err(wrap)?;
            written = checkout_submodules(
                &url,
                &sub_auth,
                &nested_modules,
                nested,
                &sub_dest,
                options,
                written,
                depth + 1,
                ctx,
            )
            .map_err(wrap)?;
        }
    }
    Ok(written)
}

/// The credentials of a submodule: the superproject's over SSH (the host is checked against
/// the same `known_hosts`, and a key proves nothing to a host it was not meant for), and over
/// HTTP(S) only to the superproject's host (a password or token never goes to another host,
/// which is then tried anonymously, with the same trusted CA).
fn submodule_auth(parent: &GitUrl, auth: &GitAuth, url: &GitUrl) -> Result<GitAuth, GitError> {
    match url.scheme {
        Scheme::Ssh => match &auth.ssh {
            Some(ssh) => {
                let mut sub = auth.clone();
                if let Some(user) = url.user.as_ref().filter(|u| !u.is_empty()) {
                    let mut ssh = ssh.clone();
                    ssh.user = user.clone();
                    sub.ssh = Some(ssh);
                }
                Ok(sub)
            }
            None => Err(GitError::InvalidCredentials(
                "the submodule URL is ssh:// but the secret has no SSH identity".to_string(),
            )),
        },
        Scheme::Http | Scheme::Https => {
            if auth.ssh.is_some() {
                return Ok(GitAuth::anonymous());
            }
            let mut sub = auth.clone();
            if url.host != parent.host || url.port != parent.port {
                sub.http = None;
            }
            Ok(sub)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn submodule_credentials_stay_on_their_host() {
        let parent = GitUrl::parse("https://git.example.com/org/app.git").unwrap();
        let auth = GitAuth::basic("flux", "pw");
        let same = GitUrl::parse("https://git.example.com/org/lib.git").unwrap();
        let other = GitUrl::parse("https://elsewhere.example.com/lib.git").unwrap();
        assert_eq!(
            submodule_auth(&parent, &auth, &same).unwrap().kind(),
            "basic"
        );
        assert_eq!(
            submodule_auth(&parent, &auth, &other).unwrap().kind(),
            "anonymous"
        );
        let ssh = GitUrl::parse("ssh://git@git.example.com/lib.git").unwrap();
        assert!(submodule_auth(&parent, &auth, &ssh).is_err());
    }

    #[test]
    fn gitmodules() {
        let text = "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n# comment\n[core]\n\turl = nope\n[submodule \"other\"]\n  url = \"https://h/o.git\"\n  path = o/\n";
        let modules = parse_gitmodules(text);
        assert_eq!(modules.len(), 2);
        assert_eq!(modules["vendor/lib"], "../lib.git");
        assert_eq!(modules["o"], "https://h/o.git");
    }

    #[test]
    fn sparse_selection() {
        let sparse = normalize_sparse(&["./deploy/prod/".into(), "/apps".into()]).unwrap();
        assert_eq!(
            sparse,
            vec![PathBuf::from("deploy/prod"), PathBuf::from("apps")]
        );
        assert_eq!(
            sparse_match(Path::new("deploy"), &sparse, true),
            SparseMatch::Ancestor
        );
        assert_eq!(
            sparse_match(Path::new("deploy/dev"), &sparse, true),
            SparseMatch::Excluded
        );
        assert_eq!(
            sparse_match(Path::new("deploy/prod/a.yaml"), &sparse, false),
            SparseMatch::Included
        );
        assert_eq!(
            sparse_match(Path::new("README.md"), &sparse, false),
            SparseMatch::Excluded
        );
        assert!(normalize_sparse(&["../x".into()]).is_err());
        assert!(normalize_sparse(&[".".into()]).unwrap().is_empty());
    }
}
