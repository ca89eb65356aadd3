//! Resolving `spec.ref` to a manifest digest: the cheap "ask first" step.

use std::collections::BTreeSet;

use regex::Regex;
use toolkit_sdk::semver::Constraint;

use super::{OciError, Registry, Resolved};
use crate::api::v1::OciSelection;

/// Tags asked for per page of the tag list.
const TAGS_PAGE: usize = 1000;

/// Pages of tags read at most (a registry that ignores `last` would otherwise loop).
const MAX_TAG_PAGES: usize = 100;

pub(super) async fn resolve(
    registry: &Registry,
    selection: &OciSelection,
) -> Result<Resolved, OciError> {
    let (tag, digest) = match selection {
        OciSelection::Digest(digest) => (None, digest.clone()),
        OciSelection::Tag(tag) => (Some(tag.clone()), manifest_digest(registry, tag).await?),
        OciSelection::SemVer { range, filter } => {
            let filter = filter
                .as_deref()
                .map(|f| {
                    Regex::new(f).map_err(|source| OciError::InvalidSemverFilter {
                        filter: f.to_owned(),
                        source: Box::new(source),
                    })
                })
                .transpose()?;
            // Refuse a bad range before asking the registry anything.
            latest_matching(range, &[])?;
            let tags = list_tags(registry).await?;
            let listed = tags.len();
            let candidates: Vec<&str> = tags
                .iter()
                .map(String::as_str)
                .filter(|t| filter.as_ref().is_none_or(|re| re.is_match(t)))
                .collect();
            let tag =
                latest_matching(range, &candidates)?.ok_or_else(|| OciError::NoMatchingTag {
                    registry: registry.url.registry().to_owned(),
                    repository: registry.url.repository().to_owned(),
                    range: range.clone(),
                    filter: filter.as_ref().map(|re| re.as_str().to_owned()),
                    tags: listed,
                })?;
            let digest = manifest_digest(registry, &tag).await?;
            (Some(tag), digest)
        }
    };
    let revision = selection.revision(&digest, tag.as_deref());
    tracing::debug!(
        url = %registry.url,
        revision = %revision,
        "resolved OCI artifact"
    );
    Ok(Resolved {
        tag,
        digest,
        revision,
    })
}

/// `HEAD` of the tag's manifest (a `GET` when no digest header comes back).
async fn manifest_digest(registry: &Registry, tag: &str) -> Result<String, OciError> {
    let reference = registry.url.with_tag(tag);
    let digest = registry
        .client
        .fetch_manifest_digest(&reference, &registry.registry_auth)
        .await
        .map_err(|e| registry.error(e, &format!("tag '{tag}'")))?;
    super::url::check_digest(&digest).map_err(|_| OciError::Registry {
        registry: registry.url.registry().to_owned(),
        status: None,
        message: format!("the registry answered an invalid digest for tag '{tag}'"),
    })?;
    Ok(digest)
}

/// Every tag of the repository, following pagination.
async fn list_tags(registry: &Registry) -> Result<Vec<String>, OciError> {
    let reference = registry.url.with_tag("latest");
    let mut seen = BTreeSet::new();
    let mut tags = Vec::new();
    let mut last: Option<String> = None;
    for _ in 0..MAX_TAG_PAGES {
        let page = registry
            .client
            .list_tags(
                &reference,
                &registry.registry_auth,
                Some(TAGS_PAGE),
                last.as_deref(),
            )
            .await
            .map_err(|e| registry.error(e, "repository"))?;
        let before = tags.len();
        for tag in page.tags {
            if seen.insert(tag.clone()) {
                tags.push(tag);
            }
        }
        if page_is_last(tags.len() - before, TAGS_PAGE) {
            break;
        }
        last = tags.last().cloned();
    }
    Ok(tags)
}

/// A page shorter than asked for (or one that added nothing new) ends the listing.
fn page_is_last(new_tags: usize, page_size: usize) -> bool {
    new_tags == 0 || new_tags < page_size
}

/// The highest tag within `range` among `tags`, by SemVer precedence (Masterminds rules, as
/// Flux picks it); `Ok(None)` when none matches. Tags that are not versions are skipped.
fn latest_matching(range: &str, tags: &[&str]) -> Result<Option<String>, OciError> {
    let constraint = Constraint::parse(range).map_err(|e| OciError::InvalidSemver {
        range: range.to_owned(),
        why: e.to_string(),
    })?;
    Ok(constraint
        .latest_matching(tags.iter().copied())
        .map(|(tag, _)| tag.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_stops_on_a_short_or_repeated_page() {
        assert!(page_is_last(0, 1000));
        assert!(page_is_last(3, 1000));
        assert!(!page_is_last(1000, 1000));
    }
}
