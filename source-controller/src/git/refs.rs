//! The references of a remote (what `git ls-remote` prints) and how `spec.ref` resolves
//! against them.

use std::collections::BTreeMap;

use toolkit_sdk::semver::Constraint;

use super::error::GitError;
use crate::api::v1::GitCheckout;

/// What one remote reference points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTarget {
    /// The object the reference names: a commit, or the tag object of an annotated tag.
    pub object: String,
    /// For an annotated tag, the commit it finally points to (`<tag>^{}` in `ls-remote`).
    pub peeled: Option<String>,
}

impl RefTarget {
    /// The commit this reference checks out: the peeled target of an annotated tag, else the
    /// object itself.
    pub fn commit(&self) -> &str {
        self.peeled.as_deref().unwrap_or(&self.object)
    }

    /// The tag object, when this is an annotated tag.
    pub fn tag_object(&self) -> Option<&str> {
        self.peeled.as_ref().map(|_| self.object.as_str())
    }
}

/// The references a remote advertises, as listed by [`super::remote_refs`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteRefs {
    /// The URL they were listed from, without user info (for messages).
    pub url: String,
    /// The branch `HEAD` points to (`refs/heads/main`), when the remote says.
    pub head: Option<String>,
    refs: BTreeMap<String, RefTarget>,
}

impl RemoteRefs {
    /// Builds a listing from full reference names and their targets (for tests and callers
    /// that list references another way).
    pub fn new(
        url: impl Into<String>,
        head: Option<String>,
        refs: impl IntoIterator<Item = (String, RefTarget)>,
    ) -> Self {
        Self {
            url: url.into(),
            head,
            refs: refs.into_iter().collect(),
        }
    }

    /// The target of a full reference name (`refs/heads/main`, `refs/pull/1/head`).
    pub fn get(&self, name: &str) -> Option<&RefTarget> {
        self.refs.get(name)
    }

    /// The target of branch `name` (`refs/heads/<name>`).
    pub fn branch(&self, name: &str) -> Option<&RefTarget> {
        self.refs.get(&format!("refs/heads/{name}"))
    }

    /// The target of tag `name` (`refs/tags/<name>`).
    pub fn tag(&self, name: &str) -> Option<&RefTarget> {
        self.refs.get(&format!("refs/tags/{name}"))
    }

    /// Every reference, by full name, in name order (`HEAD` is not included).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RefTarget)> {
        self.refs
            .iter()
            .map(|(name, target)| (name.as_str(), target))
    }

    /// Branch names (without `refs/heads/`) and their targets.
    pub fn branches(&self) -> impl Iterator<Item = (&str, &RefTarget)> {
        self.with_prefix("refs/heads/")
    }

    /// Tag names (without `refs/tags/`) and their targets.
    pub fn tags(&self) -> impl Iterator<Item = (&str, &RefTarget)> {
        self.with_prefix("refs/tags/")
    }

    /// How many references there are.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether the remote advertised no reference (an empty repository).
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a RefTarget)> + 'a {
        self.refs
            .iter()
            .filter_map(move |(name, target)| Some((name.strip_prefix(prefix)?, target)))
    }
}

/// `spec.ref` resolved against a remote: what to fetch, which commit it is, and the revision
/// Flux reports for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// What was resolved (`spec.ref` after Flux's precedence).
    pub checkout: GitCheckout,
    /// The full reference to fetch (`refs/heads/main`, `refs/tags/v1.2.0`,
    /// `refs/pull/1/head`); `None` when a commit is fetched by hash alone.
    pub reference: Option<String>,
    /// The commit that is checked out.
    pub commit: String,
    /// The tag name, when the reference is a tag (`tag`, `semver`, or a `name` under
    /// `refs/tags/`).
    pub tag: Option<String>,
    /// The tag object, when that tag is annotated.
    pub tag_object: Option<String>,
    /// The revision as Flux writes it: `main@sha1:<hash>`, `v1.2.0@sha1:<hash>`,
    /// `refs/pull/1/head@sha1:<hash>` or `sha1:<hash>`.
    pub revision: String,
}

impl ResolvedRef {
    /// Whether an artifact made for `revision` is this commit checked out the same way: the
    /// cheap check that lets a reconciler skip the clone.
    pub fn is_same_revision(&self, revision: &str) -> bool {
        self.revision == revision
    }
}

/// Resolves `checkout` against the references of a remote with Flux's precedence: a commit,
/// then a full reference name, then the highest tag within a SemVer range, then a tag, then a
/// branch.
///
/// A commit is taken as written (it must be a full 40- or 64-character hash); with a branch,
/// the branch must exist too. The remote's `HEAD` is never used: without `spec.ref` the
/// checkout is the `master` branch, as in Flux.
///
/// # Errors
/// [`GitError::RefNotFound`] for a branch, tag or reference the remote does not have,
/// [`GitError::NoMatchingTag`] when no tag is a version within the range,
/// [`GitError::InvalidSemver`] for a range that does not parse, and
/// [`GitError::InvalidReference`] for a commit that is not a full hash.
pub fn resolve(checkout: &GitCheckout, refs: &RemoteRefs) -> Result<ResolvedRef, GitError> {
    let url = &refs.url;
    let not_found = |kind: &'static str, name: &str| GitError::RefNotFound {
        kind,
        name: name.to_string(),
        url: url.clone(),
    };
    let (reference, commit, tag, tag_object) = match checkout {
        GitCheckout::Commit {
            commit,
            branch,
            name: _,
        } => {
            let commit = commit.trim().to_ascii_lowercase();
            if !is_full_hash(&commit) {
                return Err(GitError::InvalidReference(format!(
                    "commit '{commit}' is not a full SHA-1 (40 hex digits) or SHA-256 hash"
                )));
            }
            let reference = match branch {
                Some(branch) => {
                    refs.branch(branch)
                        .ok_or_else(|| not_found("branch", branch))?;
                    Some(format!("refs/heads/{branch}"))
                }
                None => None,
            };
            (reference, commit, None, None)
        }
        GitCheckout::Name(name) => {
            let target = refs.get(name).ok_or_else(|| not_found("reference", name))?;
            let tag = name.strip_prefix("refs/tags/").map(str::to_string);
            let tag_object = tag
                .as_ref()
                .and_then(|_| target.tag_object())
                .map(str::to_string);
            (
                Some(name.clone()),
                target.commit().to_string(),
                tag,
                tag_object,
            )
        }
        GitCheckout::SemVer(range) => {
            let constraint =
                Constraint::parse(range).map_err(|source| GitError::InvalidSemver {
                    range: range.clone(),
                    source,
                })?;
            let (tag, _) = constraint
                .latest_matching(refs.tags().map(|(name, _)| name))
                .ok_or_else(|| GitError::NoMatchingTag {
                    range: range.clone(),
                    url: url.clone(),
                })?;
            let target = refs.tag(tag).ok_or_else(|| not_found("tag", tag))?;
            (
                Some(format!("refs/tags/{tag}")),
                target.commit().to_string(),
                Some(tag.to_string()),
                target.tag_object().map(str::to_string),
            )
        }
        GitCheckout::Tag(tag) => {
            let target = refs.tag(tag).ok_or_else(|| not_found("tag", tag))?;
            (
                Some(format!("refs/tags/{tag}")),
                target.commit().to_string(),
                Some(tag.clone()),
                target.tag_object().map(str::to_string),
            )
        }
        GitCheckout::Branch(branch) => {
            let target = refs
                .branch(branch)
                .ok_or_else(|| not_found("branch", branch))?;
            (
                Some(format!("refs/heads/{branch}")),
                target.commit().to_string(),
                None,
                None,
            )
        }
    };
    let resolved_tag = match checkout {
        GitCheckout::SemVer(_) => tag.as_deref(),
        _ => None,
    };
    let revision = checkout.revision(&commit, resolved_tag);
    Ok(ResolvedRef {
        checkout: checkout.clone(),
        reference,
        commit,
        tag,
        tag_object,
        revision,
    })
}

/// A full SHA-1 or SHA-256 object name in lowercase hex.
pub(crate) fn is_full_hash(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64)
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";
    const T: &str = "4444444444444444444444444444444444444444";

    fn direct(object: &str) -> RefTarget {
        RefTarget {
            object: object.into(),
            peeled: None,
        }
    }

    fn refs() -> RemoteRefs {
        RemoteRefs::new(
            "https://example.com/repo",
            Some("refs/heads/main".into()),
            [
                ("refs/heads/master".to_string(), direct(A)),
                ("refs/heads/main".to_string(), direct(B)),
                ("refs/tags/v1.0.0".to_string(), direct(A)),
                (
                    "refs/tags/v1.1.0".to_string(),
                    RefTarget {
                        object: T.into(),
                        peeled: Some(B.into()),
                    },
                ),
                ("refs/tags/v2.0.0-rc.1".to_string(), direct(C)),
                ("refs/tags/latest".to_string(), direct(C)),
                ("refs/pull/1/head".to_string(), direct(C)),
            ],
        )
    }

    fn resolved(checkout: GitCheckout) -> ResolvedRef {
        resolve(&checkout, &refs()).unwrap()
    }

    #[test]
    fn branches_tags_and_names() {
        let r = resolved(GitCheckout::Branch("main".into()));
        assert_eq!(r.reference.as_deref(), Some("refs/heads/main"));
        assert_eq!(r.commit, B);
        assert_eq!(r.revision, format!("main@sha1:{B}"));
        assert_eq!(r.tag, None);

        let r = resolved(GitCheckout::Tag("v1.0.0".into()));
        assert_eq!(r.revision, format!("v1.0.0@sha1:{A}"));
        assert_eq!(
            (r.tag.as_deref(), r.tag_object.as_deref()),
            (Some("v1.0.0"), None)
        );

        let r = resolved(GitCheckout::Tag("v1.1.0".into()));
        assert_eq!(
            r.commit, B,
            "an annotated tag checks out the commit it points to"
        );
        assert_eq!(r.tag_object.as_deref(), Some(T));
        assert_eq!(r.revision, format!("v1.1.0@sha1:{B}"));

        let r = resolved(GitCheckout::Name("refs/pull/1/head".into()));
        assert_eq!(r.revision, format!("refs/pull/1/head@sha1:{C}"));
        assert_eq!(r.tag, None);

        let r = resolved(GitCheckout::Name("refs/tags/v1.1.0".into()));
        assert_eq!(r.revision, format!("refs/tags/v1.1.0@sha1:{B}"));
        assert_eq!(r.tag.as_deref(), Some("v1.1.0"));
        assert_eq!(r.tag_object.as_deref(), Some(T));
    }

    #[test]
    fn semver_picks_the_highest_tag_in_range() {
        let r = resolved(GitCheckout::SemVer(">=1.0.0".into()));
        assert_eq!(r.tag.as_deref(), Some("v1.1.0"));
        assert_eq!(r.revision, format!("v1.1.0@sha1:{B}"));
        assert_eq!(r.tag_object.as_deref(), Some(T));

        let r = resolved(GitCheckout::SemVer(">=2.0.0-0".into()));
        assert_eq!(r.tag.as_deref(), Some("v2.0.0-rc.1"));

        let err = resolve(&GitCheckout::SemVer(">=3.0.0".into()), &refs()).unwrap_err();
        assert!(matches!(err, GitError::NoMatchingTag { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "no tag in https://example.com/repo matches the SemVer range '>=3.0.0'"
        );
        let err = resolve(&GitCheckout::SemVer("not a range".into()), &refs()).unwrap_err();
        assert!(matches!(err, GitError::InvalidSemver { .. }) && err.is_stalled());
    }

    #[test]
    fn commits() {
        let r = resolved(GitCheckout::Commit {
            commit: C.to_uppercase(),
            branch: None,
            name: None,
        });
        assert_eq!((r.reference, r.commit.as_str()), (None, C));
        assert_eq!(r.revision, format!("sha1:{C}"));

        let r = resolved(GitCheckout::Commit {
            commit: C.into(),
            branch: Some("main".into()),
            name: None,
        });
        assert_eq!(r.reference.as_deref(), Some("refs/heads/main"));
        assert_eq!(r.revision, format!("main@sha1:{C}"));

        let r = resolved(GitCheckout::Commit {
            commit: C.into(),
            branch: None,
            name: Some("refs/pull/1/head".into()),
        });
        assert_eq!(r.revision, format!("refs/pull/1/head@sha1:{C}"));

        let err = resolve(
            &GitCheckout::Commit {
                commit: "abc123".into(),
                branch: None,
                name: None,
            },
            &refs(),
        )
        .unwrap_err();
        assert!(matches!(err, GitError::InvalidReference(_)) && err.is_stalled());

        let err = resolve(
            &GitCheckout::Commit {
                commit: C.into(),
                branch: Some("gone".into()),
                name: None,
            },
            &refs(),
        )
        .unwrap_err();
        assert!(matches!(err, GitError::RefNotFound { kind: "branch", .. }));
    }

    #[test]
    fn unknown_references() {
        for (checkout, kind) in [
            (GitCheckout::Branch("nope".into()), "branch"),
            (GitCheckout::Tag("v9".into()), "tag"),
            (GitCheckout::Name("refs/pull/9/head".into()), "reference"),
        ] {
            let err = resolve(&checkout, &refs()).unwrap_err();
            assert!(
                matches!(err, GitError::RefNotFound { kind: k, .. } if k == kind),
                "{err}"
            );
            assert!(err.is_retryable() && !err.is_stalled());
        }
        let err = resolve(&GitCheckout::Branch("nope".into()), &refs()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "branch 'nope' not found in https://example.com/repo"
        );
    }

    #[test]
    fn same_revision_check() {
        let r = resolved(GitCheckout::Branch("main".into()));
        assert!(r.is_same_revision(&format!("main@sha1:{B}")));
        assert!(!r.is_same_revision(&format!("main@sha1:{A}")));
    }
}
