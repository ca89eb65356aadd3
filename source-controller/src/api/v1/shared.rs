//! Pieces shared by the `source.toolkit.fluxcd.io/v1` kinds.

use std::time::Duration;

use schemars::Schema;

/// Validation pattern Flux puts on the `timeout` fields of the source kinds: like the interval
/// pattern, but without the `h` unit (a timeout is at most minutes).
pub const TIMEOUT_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// The timeout of remote operations (clone, pull) when `spec.timeout` is not set. The API
/// server fills in `60s`, so this only matters for objects that bypass defaulting.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The value of `status.observedGeneration` before the first reconcile finished.
pub(crate) fn never_observed() -> i64 {
    -1
}

/// Whether a boolean flag is unset (`false`): such flags are left out of the JSON, as Go's
/// `omitempty` does.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// Schema transform that removes a `default` schemars derived from a serde default.
///
/// Used where Flux defaults a value in Go code (or on the enclosing object) but not on the
/// property itself, so the API server must not fill it in.
pub(crate) fn without_default(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("default");
    }
}

/// Adds `name` to the `required` list of an object schema (once).
pub(crate) fn require_property(schema: &mut Schema, name: &str) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let required = object
        .entry("required")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let Some(list) = required.as_array_mut()
        && !list.iter().any(|v| v == name)
    {
        list.push(name.into());
    }
}
