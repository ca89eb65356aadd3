//! `source.toolkit.fluxcd.io/v1`: the kinds whose output is an artifact.
//!
//! Field names, defaults, validation, printer columns, short names and categories are those of
//! Flux v2.9. Defaults Flux writes in Go code rather than in the CRD are exposed as methods
//! (`spec.checkout()`, `spec.timeout()`, ...), so a controller never re-implements them.
//!
//! Revisions are formatted as Flux formats them, so that consumers comparing revision strings
//! (Kustomizations, notification providers, `flux` CLI users) see the same values:
//!
//! | source | revision |
//! |---|---|
//! | Git branch `main` | `main@sha1:<hash>` |
//! | Git tag or SemVer range resolved to `v1.2.3` | `v1.2.3@sha1:<hash>` |
//! | Git `ref.name: refs/pull/1/head` | `refs/pull/1/head@sha1:<hash>` |
//! | Git `ref.commit` alone | `sha1:<hash>` |
//! | OCI tag `latest` | `latest@sha256:<digest>` |
//! | OCI `ref.digest` | `sha256:<digest>` |

mod git_repository;
mod oci_repository;
mod shared;

pub use git_repository::{
    DEFAULT_BRANCH, GitCheckout, GitProvider, GitRepository, GitRepositoryInclude,
    GitRepositoryRef, GitRepositorySpec, GitRepositoryStatus, GitRepositoryVerification,
    GitVerificationMode, git_absolute_revision, git_hash_digest, git_hash_from_revision,
    git_revision,
};
pub use oci_repository::{
    DEFAULT_TAG, OCI_URL_PREFIX, OciLayerOperation, OciLayerSelector, OciProvider, OciRepository,
    OciRepositoryRef, OciRepositorySpec, OciRepositoryStatus, OciRepositoryVerification,
    OciSelection, OciVerificationProvider, OidcIdentityMatch, oci_revision,
};
pub use shared::{DEFAULT_TIMEOUT, TIMEOUT_PATTERN};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod crd_tests {
    //! The generated CRDs carry the facts Flux users and tools rely on.

    use serde_json::{Value, json};
    use toolkit_sdk::api::INTERVAL_PATTERN;

    use super::*;

    fn crd_json(kind: &str) -> Value {
        let crd = match kind {
            "GitRepository" => GitRepository::flux_crd(),
            "OCIRepository" => OciRepository::flux_crd(),
            other => panic!("unknown kind {other}"),
        };
        serde_json::to_value(crd).unwrap()
    }

    fn schema(crd: &Value) -> &Value {
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    }

    fn columns(crd: &Value) -> Vec<(String, String)> {
        crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["jsonPath"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Every `nullable` key anywhere in a JSON document.
    fn count_nullable(value: &Value) -> usize {
        match value {
            Value::Object(map) => {
                usize::from(map.contains_key("nullable"))
                    + map.values().map(count_nullable).sum::<usize>()
            }
            Value::Array(items) => items.iter().map(count_nullable).sum(),
            _ => 0,
        }
    }

    #[test]
    fn names_columns_and_subresources_match_flux() {
        let ready = r#".status.conditions[?(@.type=="Ready")].status"#.to_owned();
        let status = r#".status.conditions[?(@.type=="Ready")].message"#.to_owned();
        let url = ".spec.url".to_owned();
        let age = ".metadata.creationTimestamp".to_owned();
        let cases = [
            (
                "GitRepository",
                "gitrepositories.source.toolkit.fluxcd.io",
                "gitrepo",
                vec![
                    ("URL".to_owned(), url.clone()),
                    ("Age".to_owned(), age.clone()),
                    ("Ready".to_owned(), ready.clone()),
                    ("Status".to_owned(), status.clone()),
                ],
            ),
            (
                "OCIRepository",
                "ocirepositories.source.toolkit.fluxcd.io",
                "ocirepo",
                vec![
                    ("URL".to_owned(), url),
                    ("Ready".to_owned(), ready),
                    ("Status".to_owned(), status),
                    ("Age".to_owned(), age),
                ],
            ),
        ];
        for (kind, name, short, want_columns) in cases {
            let crd = crd_json(kind);
            assert_eq!(crd["metadata"]["name"], json!(name));
            assert_eq!(
                crd["metadata"]["annotations"],
                json!({"kustomize.toolkit.fluxcd.io/substitute": "disabled"})
            );
            let names = &crd["spec"]["names"];
            assert_eq!(names["kind"], json!(kind));
            assert_eq!(names["shortNames"], json!([short]));
            assert_eq!(
                names["categories"],
                json!(["all", "fluxcd", "fluxcd-sources"])
            );
            assert_eq!(crd["spec"]["scope"], json!("Namespaced"));
            let version = &crd["spec"]["versions"][0];
            assert_eq!(version["name"], json!("v1"));
            assert_eq!(version["storage"], json!(true));
            assert_eq!(version["subresources"], json!({"status": {}}));
            assert_eq!(columns(&crd), want_columns, "{kind}");
            assert_eq!(count_nullable(&crd), 0, "{kind} has nullable fields");
            assert_eq!(schema(&crd).get("title"), None);
            assert_eq!(
                schema(&crd)["properties"]["status"]["default"],
                json!({"observedGeneration": -1})
            );
            assert_eq!(
                schema(&crd)["properties"]["status"]["properties"]["observedGeneration"]
                    .get("default"),
                None
            );
        }
    }

    #[test]
    fn git_repository_validation_and_defaults_match_flux() {
        let crd = crd_json("GitRepository");
        let spec = &schema(&crd)["properties"]["spec"];
        let props = &spec["properties"];
        assert_eq!(spec["required"], json!(["interval", "url"]));
        assert_eq!(props["url"]["pattern"], json!("^(http|https|ssh)://.*$"));
        assert_eq!(props["interval"]["pattern"], json!(INTERVAL_PATTERN));
        assert_eq!(props["timeout"]["pattern"], json!(TIMEOUT_PATTERN));
        assert_eq!(props["timeout"]["default"], json!("60s"));
        assert_eq!(
            props["provider"]["enum"],
            json!(["generic", "aws", "azure", "github"])
        );
        assert_eq!(props["provider"].get("default"), None);
        assert_eq!(props["suspend"].get("default"), None);
        assert_eq!(
            props["verify"]["properties"]["mode"]["enum"],
            json!(["head", "HEAD", "Tag", "TagAndHEAD"])
        );
        assert_eq!(
            props["verify"]["properties"]["mode"]["default"],
            json!("HEAD")
        );
        assert_eq!(props["verify"]["required"], json!(["secretRef"]));
        assert_eq!(props["include"]["items"]["required"], json!(["repository"]));
        assert_eq!(
            spec["x-kubernetes-validations"],
            json!([{
                "rule": "!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))",
                "message": "serviceAccountName can only be set when provider is 'azure' or 'aws'"
            }])
        );
        let status = &schema(&crd)["properties"]["status"]["properties"];
        assert_eq!(
            status["sourceVerificationMode"],
            json!({
                "description": status["sourceVerificationMode"]["description"],
                "type": "string"
            })
        );
        for artifact in [&status["artifact"], &status["includedArtifacts"]["items"]] {
            assert_eq!(
                artifact["required"],
                json!(["digest", "lastUpdateTime", "path", "revision", "url"])
            );
        }
        let condition = &status["conditions"]["items"]["properties"];
        assert_eq!(
            condition["status"]["enum"],
            json!(["True", "False", "Unknown"])
        );
        assert_eq!(condition["message"]["maxLength"], json!(32768));
        assert_eq!(condition["reason"]["minLength"], json!(1));
    }

    #[test]
    fn oci_repository_validation_and_defaults_match_flux() {
        let crd = crd_json("OCIRepository");
        let spec = &schema(&crd)["properties"]["spec"];
        let props = &spec["properties"];
        assert_eq!(spec["required"], json!(["interval", "url"]));
        assert_eq!(spec.get("x-kubernetes-validations"), None);
        assert_eq!(props["url"]["pattern"], json!("^oci://.*$"));
        assert_eq!(props["interval"]["pattern"], json!(INTERVAL_PATTERN));
        assert_eq!(props["timeout"]["pattern"], json!(TIMEOUT_PATTERN));
        assert_eq!(props["timeout"]["default"], json!("60s"));
        assert_eq!(
            props["provider"]["enum"],
            json!(["generic", "aws", "azure", "gcp"])
        );
        assert_eq!(props["provider"]["default"], json!("generic"));
        assert_eq!(
            props["layerSelector"]["properties"]["operation"]["enum"],
            json!(["extract", "copy"])
        );
        assert_eq!(
            props["ref"]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["digest", "semver", "semverFilter", "tag"]
        );
        let verify = &props["verify"];
        assert_eq!(verify["required"], json!(["provider"]));
        assert_eq!(
            verify["properties"]["provider"]["enum"],
            json!(["cosign", "notation"])
        );
        assert_eq!(verify["properties"]["provider"]["default"], json!("cosign"));
        assert_eq!(
            verify["properties"]["matchOIDCIdentity"]["items"]["required"],
            json!(["issuer", "subject"])
        );
        assert!(verify["properties"]["trustedRootSecretRef"].is_object());
        for field in ["insecure", "suspend"] {
            assert_eq!(
                props[field],
                json!({
                    "description": props[field]["description"],
                    "type": "boolean"
                })
            );
        }
        let status = &schema(&crd)["properties"]["status"]["properties"];
        assert_eq!(
            status["observedLayerSelector"]["properties"]["operation"]["enum"],
            json!(["extract", "copy"])
        );
        assert_eq!(status["url"]["type"], json!("string"));
    }
}
