//! `oci://<host>/<repository>` URLs.

use std::fmt;

use oci_client::Reference;

use super::OciError;
use crate::api::v1::OCI_URL_PREFIX;

/// A parsed OCIRepository `spec.url`: a registry host and a repository, no tag, no digest.
///
/// As in Flux, a URL without a host (`oci://org/app`) means Docker Hub, and a tag or digest
/// in the URL is refused (it belongs in `spec.ref`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OciUrl {
    registry: String,
    repository: String,
}

impl OciUrl {
    /// Parses `oci://<host>[:port]/<repository>`.
    ///
    /// # Errors
    ///
    /// [`OciError::InvalidUrl`] when the scheme is not `oci://`, the repository is missing
    /// or not a valid OCI name, or the URL ends in a tag or digest.
    pub fn parse(url: &str) -> Result<Self, OciError> {
        let invalid = |why: &str| OciError::InvalidUrl {
            url: redact(url),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix(OCI_URL_PREFIX)
            .ok_or_else(|| invalid("the scheme must be `oci://`"))?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || !rest.contains('/') {
            return Err(invalid("the repository is missing"));
        }
        if rest
            .split('/')
            .next()
            .is_some_and(|host| host.contains('@'))
        {
            return Err(invalid(
                "credentials in the URL are not supported; put them in the Secret named by spec.secretRef",
            ));
        }
        if rest.contains('@') {
            return Err(invalid("it must not contain a digest; use spec.ref.digest"));
        }
        let last = rest.rsplit('/').next().unwrap_or_default();
        if let Some((_, tag)) = last.split_once(':') {
            return Err(invalid(&format!(
                "it must not contain a tag; remove ':{tag}' and use spec.ref.tag"
            )));
        }
        let reference = Reference::try_from(rest).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self {
            registry: reference.registry().to_owned(),
            repository: reference.repository().to_owned(),
        })
    }

    /// The registry host as written (`ghcr.io`, `127.0.0.1:5000`; `docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository inside the registry (`org/app`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// A reference to `tag` in this repository.
    pub(crate) fn with_tag(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            self.repository.clone(),
            tag.to_owned(),
        )
    }

    /// A reference to the manifest `digest` in this repository.
    pub(crate) fn with_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.registry.clone(),
            self.repository.clone(),
            digest.to_owned(),
        )
    }
}

/// `url` without user info (`oci://user:secret@host/repo` -> `oci://host/repo`), for messages
/// about URLs that may not parse.
pub fn redact(url: &str) -> String {
    let Some(rest) = url.strip_prefix(OCI_URL_PREFIX) else {
        return url.to_owned();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{OCI_URL_PREFIX}{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

impl fmt::Display for OciUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_URL_PREFIX}{}/{}", self.registry, self.repository)
    }
}

/// Checks that `digest` is `sha256:<64 hex>` (or sha384/sha512 with their lengths).
pub(crate) fn check_digest(digest: &str) -> Result<(), OciError> {
    let invalid = |why: &str| OciError::InvalidDigest {
        digest: digest.to_owned(),
        why: why.to_owned(),
    };
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| invalid("expected `<algorithm>:<hex>`"))?;
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(invalid("the algorithm must be sha256, sha384 or sha512")),
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid(&format!(
            "expected {len} lowercase hexadecimal digits after `{algorithm}:`"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_registry_and_repository() {
        let cases = [
            ("oci://ghcr.io/org/app", "ghcr.io", "org/app"),
            ("oci://127.0.0.1:5000/org/app/", "127.0.0.1:5000", "org/app"),
            ("oci://localhost:5000/app", "localhost:5000", "app"),
            ("oci://org/app", "docker.io", "org/app"),
            (
                "oci://registry.example.com/a/b/c",
                "registry.example.com",
                "a/b/c",
            ),
        ];
        for (url, registry, repository) in cases {
            let parsed = OciUrl::parse(url).unwrap();
            assert_eq!(parsed.registry(), registry, "{url}");
            assert_eq!(parsed.repository(), repository, "{url}");
        }
        assert_eq!(
            OciUrl::parse("oci://127.0.0.1:5000/org/app")
                .unwrap()
                .to_string(),
            "oci://127.0.0.1:5000/org/app"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let cases = [
            ("https://ghcr.io/org/app", "scheme"),
            ("oci://", "repository is missing"),
            ("oci://ghcr.io", "repository is missing"),
            ("oci://ghcr.io/org/app:v1", "remove ':v1'"),
            ("oci://127.0.0.1:5000/app:latest", "remove ':latest'"),
            ("oci://ghcr.io/org/app@sha256:abc", "digest"),
            ("oci://ghcr.io/Org/App", "invalid reference format"),
        ];
        for (url, want) in cases {
            let err = OciUrl::parse(url).unwrap_err();
            assert!(matches!(err, OciError::InvalidUrl { .. }), "{url}: {err:?}");
            assert!(err.to_string().contains(want), "{url}: {err}");
            assert!(err.is_spec_error());
            assert_eq!(err.reason(), "URLInvalid");
        }
    }

    #[test]
    fn digests_are_checked() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(check_digest(&good).is_ok());
        for bad in [
            "sha256:abc".to_owned(),
            format!("md5:{}", "a".repeat(32)),
            "a".repeat(64),
            format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(
                matches!(check_digest(&bad), Err(OciError::InvalidDigest { .. })),
                "{bad}"
            );
        }
    }
}
