//! The artifact a source publishes in `status.artifact`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Validation pattern of [`Artifact::digest`]: `<algorithm>:<encoded>`, as in OCI digests.
pub const DIGEST_PATTERN: &str = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$";

/// The output of a source reconcile: a tarball stored and served over HTTP by the controller.
///
/// Consumers read it generically from `status.artifact` of any source kind, download
/// [`url`](Self::url), check the bytes against [`digest`](Self::digest), and report
/// [`revision`](Self::revision) as what they applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path of the file relative to the controller's storage root, for example
    /// `gitrepository/flux-system/podinfo/8f5f...c3.tar.gz`.
    pub path: String,

    /// HTTP address of the file as served by the controller. Its host part may change when
    /// the controller restarts with another advertised address.
    pub url: String,

    /// Human-readable identifier of the content, such as `main@sha1:<hash>`,
    /// `v1.0.0@sha1:<hash>`, `latest@sha256:<digest>` or `sha256:<digest>`.
    pub revision: String,

    /// Digest of the file as `<algorithm>:<hex>`, for example `sha256:9f86d0...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"))]
    pub digest: Option<String>,

    /// When the artifact was last written to storage.
    pub last_update_time: Time,

    /// Size of the file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,

    /// Extra information about the content (for example OCI annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Artifact {
    /// Whether the artifact holds the given revision.
    pub fn has_revision(&self, revision: &str) -> bool {
        self.revision == revision
    }

    /// Whether the artifact has the given digest (`<algorithm>:<hex>`, compared exactly).
    pub fn has_digest(&self, digest: &str) -> bool {
        self.digest.as_deref() == Some(digest)
    }

    /// The digest split into algorithm and encoded value, if a digest is set and well formed.
    pub fn digest_parts(&self) -> Option<(&str, &str)> {
        let (algorithm, encoded) = self.digest.as_deref()?.split_once(':')?;
        if algorithm.is_empty() || encoded.is_empty() {
            return None;
        }
        Some((algorithm, encoded))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Artifact {
        Artifact {
            path: "gitrepository/flux-system/podinfo/abc.tar.gz".into(),
            url: "http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/podinfo/abc.tar.gz".into(),
            revision: "main@sha1:1f2e3d4c".into(),
            digest: Some("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
            last_update_time: Time("2026-03-04T05:06:07Z".parse().unwrap()),
            size: Some(1024),
            metadata: Some([("org.opencontainers.image.source".into(), "https://example.com".into())].into()),
        }
    }

    #[test]
    fn serializes_with_flux_field_names() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            v,
            json!({
                "path": "gitrepository/flux-system/podinfo/abc.tar.gz",
                "url": "http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/podinfo/abc.tar.gz",
                "revision": "main@sha1:1f2e3d4c",
                "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "lastUpdateTime": "2026-03-04T05:06:07Z",
                "size": 1024,
                "metadata": {"org.opencontainers.image.source": "https://example.com"}
            })
        );
        let back: Artifact = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn omits_unset_optional_fields() {
        let a = Artifact {
            digest: None,
            size: None,
            metadata: None,
            ..sample()
        };
        let v = serde_json::to_value(&a).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["lastUpdateTime", "path", "revision", "url"]);
        let back: Artifact = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn rejects_missing_required_fields() {
        let err = serde_json::from_value::<Artifact>(json!({
            "path": "p", "url": "u", "lastUpdateTime": "2026-03-04T05:06:07Z"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("revision"), "{err}");
    }

    #[test]
    fn schema_marks_required_fields_and_digest_pattern() {
        let schema = serde_json::to_value(schemars::schema_for!(Artifact)).unwrap();
        let mut required: Vec<_> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        required.sort();
        assert_eq!(required, ["lastUpdateTime", "path", "revision", "url"]);
        assert_eq!(
            schema["properties"]["digest"]["pattern"],
            json!(DIGEST_PATTERN)
        );
    }

    #[test]
    fn digest_helpers() {
        let a = sample();
        assert!(a.has_revision("main@sha1:1f2e3d4c"));
        assert!(!a.has_revision("main@sha1:ffff"));
        assert!(a.has_digest(a.digest.as_deref().unwrap()));
        assert_eq!(a.digest_parts().map(|p| p.0), Some("sha256"));
        let none = Artifact {
            digest: None,
            ..sample()
        };
        assert_eq!(none.digest_parts(), None);
        assert!(!none.has_digest("sha256:00"));
        let bad = Artifact {
            digest: Some("sha256:".into()),
            ..sample()
        };
        assert_eq!(bad.digest_parts(), None);
    }
}
