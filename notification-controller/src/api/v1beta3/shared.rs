//! Serde and schema helpers shared by the v1beta3 kinds.

use schemars::Schema;

/// The value of `status.observedGeneration` before the first reconcile finished.
pub(crate) fn never_observed() -> i64 {
    -1
}

/// Whether a boolean flag is unset (`false`): such flags are left out of the JSON, as Go's
/// `omitempty` does.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// Schema transform that removes a `default` schemars derived from a serde default, where
/// Flux has no default on the property itself.
pub(crate) fn without_default(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("default");
    }
}
