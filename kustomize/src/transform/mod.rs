//! The built-in transformers (namespace, name prefix/suffix, labels, annotations, images,
//! replicas) and the rewriting of name references after renames.
//!
//! Every function works in place on the resources of one kustomization level and takes the
//! [`TransformerConfig`] of that level (start from [`TransformerConfig::builtin`], merge the
//! level's `configurations:` and `crds:`, and the configs accumulated from its bases).
//!
//! # Order of calls (what kustomize does)
//!
//! For each kustomization, after its resources, generators and components are accumulated:
//!
//! 1. `patchesStrategicMerge`, then `patches` (KB);
//! 2. [`set_namespace`] (if `namespace:` is set);
//! 3. [`add_name_prefix`] (if `namePrefix:` is not empty), then [`add_name_suffix`]
//!    (if `nameSuffix:` is not empty);
//! 4. [`add_labels`] with `labels:` and `commonLabels:` (one call does both, in kustomize's
//!    order);
//! 5. [`add_annotations`] with `commonAnnotations:`;
//! 6. `patchesJson6902` (KB);
//! 7. [`set_replicas`] with `replicas:`;
//! 8. [`set_images`] with `images:`;
//! 9. `replacements` (KC).
//!
//! Then, only once, for the top-level kustomization after all levels are done:
//!
//! 10. the generator content-hash suffixes (KC; call [`record_previous_id`] on a resource
//!     right before renaming it, so its old name is remembered);
//! 11. [`fix_name_references`] with the merged config of the whole build;
//! 12. [`strip_build_annotations`] before output (it removes the bookkeeping annotations
//!     the steps above keep under `internal.config.kubernetes.io/`).
//!
//! # Bookkeeping
//!
//! As kustomize does, renames are remembered in annotations of the object itself
//! (`internal.config.kubernetes.io/previousNames`, `previousNamespaces`, `previousKinds`,
//! `prefixes`, `suffixes`), so they travel with the object through every level and survive
//! patches. [`previous_ids`] reads them. When a resource has none but its
//! [`Resource::original_id`](crate::Resource::original_id) differs from its current identity, the original id is used.

mod config;
pub mod de;
mod fieldspec;
mod images;
mod labels;
mod name_reference;
mod namespace;
mod prefix_suffix;
mod replicas;
mod scope;
mod tracking;

pub use config::{NameBackReference, TransformerConfig};
pub use fieldspec::{FieldSpec, Gvk, split_path};
pub use images::{Image, set_images};
pub use labels::{Label, add_annotations, add_labels};
pub use name_reference::fix_name_references;
pub use namespace::{NamespaceOptions, RoleBindingSubjects, set_namespace};
pub use prefix_suffix::{add_name_prefix, add_name_suffix};
pub use replicas::{Replica, set_replicas};
pub use scope::is_cluster_scoped;
pub use tracking::{
    BUILD_ANNOTATIONS, name_prefixes, name_suffixes, previous_ids, record_previous_id,
    strip_build_annotations,
};

use crate::resource::ResId;

/// Why a transformer failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field spec's path ran into a value it cannot walk or set (e.g. a scalar where a
    /// mapping was expected).
    #[error("{transformer}: considering field '{path}' of {id}: {reason}")]
    Field {
        /// The transformer (`namespace`, `labels`, ...).
        transformer: &'static str,
        /// The field spec's path.
        path: String,
        /// The object.
        id: Box<ResId>,
        /// What was wrong.
        reason: String,
    },
    /// Setting the namespace made two objects identical.
    #[error("namespace transformation produces ID conflict: {id} appears more than once")]
    NamespaceConflict {
        /// The duplicated identity.
        id: Box<ResId>,
    },
    /// A `replicas:` entry matches no object.
    #[error("resource with name {name} does not match a config with the following GVK [{kinds}]")]
    ReplicaTargetNotFound {
        /// The entry's name.
        name: String,
        /// The kinds the replica field specs cover.
        kinds: String,
    },
    /// A name reference matches several objects that are not interchangeable.
    #[error(
        "found multiple possible referrals for '{name}' in field '{path}' of {referrer}: {candidates}"
    )]
    AmbiguousReference {
        /// The name found in the referrer.
        name: String,
        /// The field holding it.
        path: String,
        /// The referrer.
        referrer: Box<ResId>,
        /// The candidates, comma-separated.
        candidates: String,
    },
    /// A `namespace` transformer option is not one kustomize knows.
    #[error(
        "invalid value {0:?} for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
    )]
    InvalidRoleBindingSubjects(String),
    /// Two field specs name the same field with different `create` flags.
    #[error("conflicting fieldspecs in {list}: '{path}'")]
    ConflictingFieldSpecs {
        /// The list (`commonLabels`, ...).
        list: &'static str,
        /// The field spec's path.
        path: String,
    },
    /// A `configurations:` file is not a transformer configuration.
    #[error("invalid transformer configuration")]
    Configuration {
        /// The parse error.
        #[source]
        source: serde_yaml::Error,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests_support {
    //! Helpers for the table tests: objects from YAML streams, comparison of parsed values
    //! (mapping order does not matter, as in the corpus comparison).

    use serde::Deserialize;
    use serde_yaml::Value;

    use crate::resource::Resource;

    /// The documents of a YAML stream.
    pub(crate) fn values(stream: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(stream)
            .map(|doc| Value::deserialize(doc).unwrap())
            .filter(|v| !v.is_null())
            .collect()
    }

    /// The documents of a YAML stream as resources.
    pub(crate) fn resources(stream: &str) -> Vec<Resource> {
        values(stream)
            .into_iter()
            .map(|v| Resource::new(v, "test"))
            .collect()
    }

    /// Asserts that `actual` (without the build's bookkeeping annotations) holds the same
    /// objects as `expected`, in any order (kustomize's output order is the build's business).
    #[track_caller]
    pub(crate) fn assert_same_objects(actual: &[Resource], expected: &str) {
        let mut clean = actual.to_vec();
        super::strip_build_annotations(&mut clean);
        let key = |v: &Value| {
            format!(
                "{}/{}/{}",
                v["kind"].as_str().unwrap_or_default(),
                v["metadata"]["namespace"].as_str().unwrap_or_default(),
                v["metadata"]["name"].as_str().unwrap_or_default()
            )
        };
        let mut got: Vec<Value> = clean.into_iter().map(|r| r.value).collect();
        let mut want = values(expected);
        got.sort_by_key(key);
        want.sort_by_key(key);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                g,
                w,
                "object differs\n--- got:\n{}\n--- want:\n{}",
                serde_yaml::to_string(g).unwrap(),
                serde_yaml::to_string(w).unwrap()
            );
        }
        assert_eq!(got.len(), want.len(), "number of objects");
    }

    /// Asserts that `actual` (without the build's bookkeeping annotations) equals the objects
    /// of `expected`, in order.
    #[track_caller]
    pub(crate) fn assert_resources(actual: &[Resource], expected: &str) {
        let mut clean = actual.to_vec();
        super::strip_build_annotations(&mut clean);
        let got: Vec<Value> = clean.into_iter().map(|r| r.value).collect();
        let want = values(expected);
        if got != want {
            let show = |vs: &[Value]| {
                vs.iter()
                    .map(|v| serde_yaml::to_string(v).unwrap())
                    .collect::<Vec<_>>()
                    .join("---\n")
            };
            panic!(
                "objects differ\n--- got:\n{}\n--- want:\n{}",
                show(&got),
                show(&want)
            );
        }
    }
}
