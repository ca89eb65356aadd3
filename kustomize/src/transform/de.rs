//! Strict deserializers for kustomization fields that kustomize declares as strings.
//!
//! kustomize refuses `newTag: 1.2` or `commonLabels: {version: 1}` ("cannot unmarshal number
//! into ... of type string") while serde_yaml would turn the plain scalar into a string. Use
//! these with `#[serde(deserialize_with = ...)]` to refuse numbers and booleans the same way.
//! (Spellings that are booleans only in YAML 1.1, such as `yes`, still pass as strings.)

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "array",
        Value::Mapping(_) => "object",
        Value::Tagged(_) => "tagged value",
    }
}

/// A string; numbers, booleans and anything else are refused. `null` reads as empty.
pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        other => Err(D::Error::custom(format!(
            "cannot unmarshal {} into a string field",
            describe(&other)
        ))),
    }
}

/// A map of strings to strings (keys may be any scalar, as in kustomize; values must be
/// strings). `null` reads as empty.
pub fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let map = match value {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Mapping(map) => map,
        other => {
            return Err(D::Error::custom(format!(
                "cannot unmarshal {} into a map of strings",
                describe(&other)
            )));
        }
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let key = match key {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(D::Error::custom(format!(
                    "cannot use {} as a map key",
                    describe(&other)
                )));
            }
        };
        match value {
            Value::String(s) => {
                out.insert(key, s);
            }
            Value::Null => {
                out.insert(key, String::new());
            }
            other => {
                return Err(D::Error::custom(format!(
                    "cannot unmarshal {} into the string value of {key:?}",
                    describe(&other)
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "string")]
        s: String,
        #[serde(default, deserialize_with = "string_map")]
        m: BTreeMap<String, String>,
    }

    #[test]
    fn numbers_and_booleans_are_refused() {
        let t: T = serde_yaml::from_str("s: \"1.2\"\nm: {a: b, 1: c}\n").unwrap();
        assert_eq!(t.s, "1.2");
        assert_eq!(t.m.get("1").map(String::as_str), Some("c"));
        assert!(serde_yaml::from_str::<T>("s: 1.2\n").is_err());
        assert!(serde_yaml::from_str::<T>("m: {a: true}\n").is_err());
        assert!(serde_yaml::from_str::<T>("m: {a: 1}\n").is_err());
    }
}
