//! Patches: strategic merge patch, JSON 6902 patches, and the selectors that pick their targets.
//!
//! - [`smp`] merges a strategic merge patch into an object the way kustomize does (kyaml's merge
//!   semantics), using the merge keys and strategies in [`schema`].
//! - [`json6902`] parses and applies RFC 6902 operation lists.
//! - [`target`] parses a `target:` selector and tells which resources it picks.
//! - [`schema`] holds the strategic-merge metadata of the built-in kinds, generated from the OpenAPI
//!   document of a real kube-apiserver by `cargo xtask gen-patch-schema` and committed as data.
//!
//! How a build applies one `patches:` entry, as kustomize does:
//! 1. [`parse_patch`] the text (inline or from the file): strategic merge or JSON 6902;
//! 2. with a `target:`, compile it with [`Selector::new`] and take every resource it
//!    [matches](Selector::matches); a strategic merge patch without a target applies to the
//!    resource with its own kind, name and namespace (a JSON 6902 patch needs a target);
//! 3. strategic merge: [`apply_strategic_merge`] on each (options from the entry's
//!    `allowNameChange` / `allowKindChange`); [`Outcome::Deleted`] removes the resource;
//!    JSON 6902: [`json6902::apply`] on each.

pub mod json6902;
pub mod schema;
pub mod smp;
pub mod target;

pub use json6902::Operation;
pub use schema::{PatchSchema, SchemaNode};
pub use smp::{Outcome, SmpOptions, apply_strategic_merge, is_delete_patch, strategic_merge};
pub use target::Selector;

use serde::Deserialize;
use serde_yaml::Value;

/// A patch as written in `patches:` (inline or in a file), once its form is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// Strategic merge patches: one object per YAML document.
    Strategic(Vec<Value>),
    /// A JSON 6902 operation list.
    Json6902(Vec<Operation>),
}

/// Tells a strategic merge patch from a JSON 6902 one, as kustomize does: YAML documents that are
/// all mappings make strategic merge patches; a single list (YAML or JSON) makes a JSON 6902
/// patch. Empty documents are skipped; anything else is an error.
pub fn parse_patch(text: &str) -> Result<Patch, PatchError> {
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(PatchError::Parse)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    if documents.iter().all(Value::is_mapping) && !documents.is_empty() {
        return Ok(Patch::Strategic(documents));
    }
    match documents.as_slice() {
        [list @ Value::Sequence(_)] => Ok(Patch::Json6902(json6902::from_value(list)?)),
        [] => Err(PatchError::Strategic("the patch is empty".into())),
        _ => Err(PatchError::Strategic(
            "the patch is neither strategic merge (YAML objects) nor JSON 6902 (one list of operations)"
                .into(),
        )),
    }
}

/// What can go wrong parsing or applying a patch or a selector.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch text is neither valid YAML nor JSON.
    #[error("cannot parse the patch")]
    Parse(#[source] serde_yaml::Error),
    /// A JSON 6902 patch is not a list of operations, or an operation is malformed.
    #[error("invalid JSON 6902 patch: {0}")]
    InvalidJson6902(String),
    /// A JSON 6902 `test` operation found a different value.
    #[error("JSON 6902 operation {index} (test {path}): the value differs")]
    TestFailed {
        /// Position of the operation in the list (0-based).
        index: usize,
        /// Its `path`.
        path: String,
    },
    /// A JSON 6902 operation names a location that does not exist.
    #[error("JSON 6902 operation {index} ({op} {path}): {reason}")]
    PathNotFound {
        /// Position of the operation in the list (0-based).
        index: usize,
        /// The operation (`add`, `remove`, ...).
        op: String,
        /// The pointer that could not be resolved.
        path: String,
        /// Which part is missing and why.
        reason: String,
    },
    /// A strategic merge patch cannot be applied (bad directive, wrong shape).
    #[error("strategic merge patch: {0}")]
    Strategic(String),
    /// A `target:` selector is malformed (bad regex, bad label selector, unknown field).
    #[error("invalid patch target: {0}")]
    Selector(String),
    /// A selector regex does not compile.
    #[error("invalid regular expression {pattern:?} in patch target")]
    Regex {
        /// The pattern as written.
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: regex::Error,
    },
    /// The OpenAPI document or the committed schema data cannot be read.
    #[error("patch schema: {0}")]
    Schema(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strategic_and_json_patches_are_told_apart() {
        let Patch::Strategic(docs) =
            parse_patch("apiVersion: v1\nkind: ConfigMap\n---\n---\nkind: Secret\n").unwrap()
        else {
            panic!("not strategic")
        };
        assert_eq!(docs.len(), 2);
        let Patch::Json6902(ops) = parse_patch("- op: remove\n  path: /a\n").unwrap() else {
            panic!("not JSON 6902")
        };
        assert_eq!(ops[0].op, json6902::Op::Remove);
        assert!(matches!(
            parse_patch(r#"[{"op": "add", "path": "/a", "value": 1}]"#).unwrap(),
            Patch::Json6902(_)
        ));
        assert!(parse_patch("").is_err());
        assert!(parse_patch("- a\n---\nkind: X\n").is_err());
        let error = parse_patch("kind: [\n").unwrap_err();
        assert!(matches!(error, PatchError::Parse(_)));
    }
}
