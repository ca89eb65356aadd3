//! The name-suffix content hash, byte for byte as kustomize computes it.
//!
//! kustomize encodes a small map of the object as JSON the way Go's `encoding/json` does (keys
//! sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped), takes the SHA-256 of it, and keeps the
//! first ten hex digits with `0 1 3 a e` mapped to `g h k m t` (so the suffix never reads as a
//! number and has fewer vowels to spell words with).
//!
//! - ConfigMap: `{"binaryData": ..., "data": ..., "kind": "ConfigMap", "name": ...}`, with
//!   `binaryData` only when it is a mapping;
//! - Secret: `{"data": ..., "kind": "Secret", "name": ..., "stringData": ..., "type": ...}`, with
//!   `stringData` only when it is a mapping.
//!
//! A missing `data` or `type` counts as the empty string. `name` is always the empty string:
//! kustomize looks it up under a path no object has, so the name never changes the hash (and a
//! prefix or suffix added before the hash does not either).

use serde_yaml::Value;
use sha2::{Digest, Sha256};

/// Why a hash cannot be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Only ConfigMaps and Secrets are hashed.
    #[error("cannot hash an object of kind {kind:?}: only ConfigMap and Secret are hashed")]
    UnsupportedKind {
        /// The object's kind.
        kind: String,
    },
}

/// The suffix kustomize appends to a generated object's name (`<name>-<suffix>`): ten
/// characters derived from the object's kind and data (and `type` for a Secret).
///
/// # Errors
///
/// [`HashError::UnsupportedKind`] for anything but a ConfigMap or a Secret.
pub fn hash_suffix(object: &Value) -> Result<String, HashError> {
    let encoded = hash_input(object)?;
    let digest = hex::encode(Sha256::digest(encoded.as_bytes()));
    Ok(digest
        .chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect())
}

/// The JSON text kustomize hashes for `object`.
///
/// # Errors
///
/// [`HashError::UnsupportedKind`] for anything but a ConfigMap or a Secret.
pub fn hash_input(object: &Value) -> Result<String, HashError> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    // kustomize looks the name up as one field literally called `metadata/name`, which no
    // object has: the name always hashes as the empty string.
    let name = Json::Text(String::new());
    let mut fields: Vec<(&str, Json)> = Vec::new();
    match kind {
        "ConfigMap" => {
            fields.push(("data", field(object.get("data"))));
            if let Some(binary) = object.get("binaryData").filter(|v| !is_scalar(v)) {
                fields.push(("binaryData", Json::Value(binary)));
            }
        }
        "Secret" => {
            fields.push(("data", field(object.get("data"))));
            fields.push(("type", field(object.get("type"))));
            if let Some(string_data) = object.get("stringData").filter(|v| !is_scalar(v)) {
                fields.push(("stringData", Json::Value(string_data)));
            }
        }
        other => {
            return Err(HashError::UnsupportedKind {
                kind: other.to_string(),
            });
        }
    }
    fields.push(("kind", Json::Text(kind.to_string())));
    fields.push(("name", name));
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(&mut out, key);
        out.push(':');
        match value {
            Json::Text(text) => write_string(&mut out, text),
            Json::Value(value) => write_json(&mut out, value),
        }
    }
    out.push('}');
    Ok(out)
}

enum Json<'a> {
    Text(String),
    Value(&'a Value),
}

fn is_scalar(value: &Value) -> bool {
    !matches!(
        value,
        Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_)
    )
}

/// A looked-up field as kustomize's hasher sees it: absent is `""`, a scalar is its text, a
/// mapping is itself.
fn field(value: Option<&Value>) -> Json<'_> {
    match value {
        None => Json::Text(String::new()),
        Some(v) if is_scalar(v) => Json::Text(scalar_text(v)),
        Some(v) => Json::Value(v),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// Writes `value` as Go's `encoding/json` writes the same data decoded into `interface{}`:
/// mapping keys sorted, numbers as float64.
fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => write_string(out, s),
        Value::Sequence(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Mapping(map) => {
            let mut entries: Vec<(String, &Value)> =
                map.iter().map(|(k, v)| (key_text(k), v)).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_json(out, value);
            }
            out.push('}');
        }
        Value::Tagged(tagged) => write_json(out, &tagged.value),
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => scalar_text(other),
    }
}

/// A JSON number as Go prints a float64: shortest digits, plain notation between 1e-6 and 1e21,
/// else `1e+21` / `1e-7`.
fn go_number(n: &serde_yaml::Number) -> String {
    let Some(f) = n.as_f64().filter(|f| f.is_finite()) else {
        // Go cannot encode these (kustomize would fail); keep the text.
        return n.to_string();
    };
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{f}");
    }
    let text = format!("{f:e}");
    match text.split_once('e') {
        Some((mantissa, exp)) if exp.starts_with('-') => format!("{mantissa}e{exp}"),
        Some((mantissa, exp)) => format!("{mantissa}e+{exp:0>2}"),
        None => text,
    }
}

/// Writes a JSON string the way Go's `encoding/json` does with HTML escaping on.
fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => {
                let b = c as u32 as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
