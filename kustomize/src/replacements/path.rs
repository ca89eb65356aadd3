//! kustomize's field paths: parsing, and finding (or creating) the fields they name.
//!
//! # Syntax
//!
//! A path is split on `.`:
//! - `\.` is a literal dot inside a segment (`metadata.labels.app\.kubernetes\.io/name`);
//! - a segment opening with `[` runs to the next segment closing with `]`, dots included; if it
//!   holds no `=` the brackets are dropped, which is how a key with dots is written
//!   (`metadata.annotations.[config.kubernetes.io/local-config]`);
//! - `[field=value]` picks the elements of a list whose `field` matches `value`; `[=value]` the
//!   elements that match `value` themselves. When writing (targets), `value` is an unanchored
//!   regular expression; when reading (the source), it must equal the element's text;
//! - a non-negative number indexes a list (for targets, the index one past the end appends when
//!   `create` is on); `-` is the last element (source only);
//! - `*` is every element of a list (targets only);
//! - anything else is a mapping key.
//!
//! A bracketed segment with dots but no `=`, e.g. `[a]`, stays bracketed and is refused when
//! reached, as kustomize refuses it.

use regex::Regex;
use serde_yaml::{Mapping, Value};

use super::ReplacementError;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Field(String),
    /// A list index (`0`).
    Index(usize),
    /// The last element of a list (`-`).
    Last,
    /// Every element of a list (`*`).
    Wildcard,
    /// List elements whose `field` (or, when empty, the element itself) matches `value`.
    Match {
        /// The field of each element to compare; empty for a list of scalars.
        field: String,
        /// The value (a regular expression for targets).
        value: String,
    },
    /// A bracketed segment without `=`: refused when reached.
    InvalidList(String),
}

/// Splits `path` as kustomize does (see the module docs).
pub fn split(path: &str) -> Vec<String> {
    // Split on '.', joining back pieces whose dot was escaped with a backslash.
    let mut pieces: Vec<String> = Vec::new();
    for piece in path.split('.') {
        match pieces.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(piece);
            }
            _ => pieces.push(piece.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        let piece = &pieces[i];
        if piece.starts_with('[') && !piece.ends_with(']') {
            let mut bracketed = vec![piece.clone()];
            while i + 1 < pieces.len() {
                i += 1;
                bracketed.push(pieces[i].clone());
                if pieces[i].ends_with(']') {
                    break;
                }
            }
            let joined = bracketed.join(".");
            if joined.contains('=') {
                out.push(joined);
            } else {
                out.push(joined.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else {
            out.push(piece.clone());
        }
        i += 1;
    }
    out
}

/// Parses `path` into segments.
pub fn parse(path: &str) -> Vec<Segment> {
    split(path)
        .into_iter()
        .map(|part| {
            if let Ok(index) = part.parse::<i64>()
                && let Ok(index) = usize::try_from(index)
            {
                return Segment::Index(index);
            }
            if part.len() >= 2 && part.starts_with('[') && part.ends_with(']') {
                let inner = &part[1..part.len() - 1];
                return match inner.split_once('=') {
                    Some((field, value)) => Segment::Match {
                        field: field.to_string(),
                        value: value.to_string(),
                    },
                    None => Segment::InvalidList(part),
                };
            }
            match part.as_str() {
                "*" => Segment::Wildcard,
                "-" => Segment::Last,
                _ => Segment::Field(part),
            }
        })
        .collect()
}

fn list_error() -> ReplacementError {
    ReplacementError::InvalidPath {
        message: "list path element must contain fieldName=fieldValue for element to match"
            .to_string(),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Mapping(_) => "MappingNode",
        Value::Sequence(_) => "SequenceNode",
        _ => "ScalarNode",
    }
}

fn wrong_kind(expected: &str, found: &Value) -> ReplacementError {
    ReplacementError::InvalidPath {
        message: format!(
            "wrong node kind: expected {expected} but got {}",
            kind_name(found)
        ),
    }
}

/// The value at `path` in `object`, read as kustomize reads a replacement source: no wildcard,
/// `[k=v]` compares exactly. `None` when a step finds nothing.
///
/// # Errors
///
/// A `*` or a bracketed segment without `=`.
pub fn lookup<'a>(
    object: &'a Value,
    path: &[Segment],
) -> Result<Option<&'a Value>, ReplacementError> {
    let mut current = object;
    for segment in path {
        let next = match segment {
            Segment::Field(name) => current.as_mapping().and_then(|m| m.get(name.as_str())),
            Segment::Index(i) => current.as_sequence().and_then(|s| s.get(*i)),
            Segment::Last => current.as_sequence().and_then(|s| s.last()),
            Segment::Wildcard => {
                return Err(ReplacementError::InvalidPath {
                    message: "wildcard is not supported in a replacement source".to_string(),
                });
            }
            Segment::InvalidList(_) => return Err(list_error()),
            Segment::Match { field, value } => current.as_sequence().and_then(|items| {
                items.iter().find(|item| {
                    let compared = if field.is_empty() {
                        Some(*item)
                    } else {
                        item.as_mapping().and_then(|m| m.get(field.as_str()))
                    };
                    compared.is_some_and(|v| is_scalar(v) && scalar_text(v) == *value)
                })
            }),
        };
        match next {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// How a missing target field is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// Do not create.
    No,
    /// Create; the leaf is a scalar.
    Scalar,
    /// Create; the leaf is a mapping.
    Mapping,
    /// Create; the leaf is a list.
    Sequence,
}

/// A field found by [`visit`]: the value, and whether it is a scalar created (untagged) by the
/// walk, whose type then follows from the text written into it.
pub struct Found<'a> {
    /// The field's value.
    pub value: &'a mut Value,
    /// Created by the walk as an untyped scalar.
    pub untyped: bool,
}

/// Walks `path` in `object` as kustomize's path matcher does for replacement targets, creating
/// missing parts when `create` says so, and calls `found` on each field reached. Returns how
/// many fields were reached.
///
/// # Errors
///
/// A step through a value of the wrong shape (a key in a list or scalar, an index or `*` in a
/// mapping or scalar), an index past the end, a bad regular expression, a bracketed segment
/// without `=`, or an error of `found`.
pub fn visit(
    object: &mut Value,
    path: &[Segment],
    create: CreateKind,
    found: &mut dyn FnMut(Found<'_>) -> Result<(), ReplacementError>,
) -> Result<usize, ReplacementError> {
    visit_inner(object, path, create, false, found)
}

/// The kind of node to create for the step after the current one.
fn node_for(next: Option<&Segment>, create: CreateKind) -> (Value, bool) {
    match next {
        Some(Segment::Match { .. } | Segment::Index(_) | Segment::InvalidList(_)) => {
            (Value::Sequence(Vec::new()), false)
        }
        Some(_) => (Value::Mapping(Mapping::new()), false),
        None => match create {
            CreateKind::Mapping => (Value::Mapping(Mapping::new()), false),
            CreateKind::Sequence => (Value::Sequence(Vec::new()), false),
            CreateKind::Scalar | CreateKind::No => (Value::Null, true),
        },
    }
}

fn visit_inner(
    object: &mut Value,
    path: &[Segment],
    create: CreateKind,
    untyped: bool,
    found: &mut dyn FnMut(Found<'_>) -> Result<(), ReplacementError>,
) -> Result<usize, ReplacementError> {
    let Some((segment, rest)) = path.split_first() else {
        found(Found {
            value: object,
            untyped,
        })?;
        return Ok(1);
    };
    match segment {
        Segment::Field(name) => {
            let Value::Mapping(map) = object else {
                return Err(wrong_kind("MappingNode", object));
            };
            let key = Value::from(name.as_str());
            let mut created = false;
            if !map.contains_key(&key) {
                if create == CreateKind::No {
                    return Ok(0);
                }
                let (node, is_untyped) = node_for(rest.first(), create);
                map.insert(key.clone(), node);
                created = is_untyped;
            }
            match map.get_mut(&key) {
                Some(child) => visit_inner(child, rest, create, created, found),
                None => Ok(0),
            }
        }
        Segment::Index(index) => {
            let Value::Sequence(items) = object else {
                return Err(wrong_kind("SequenceNode", object));
            };
            let mut created = false;
            if items.len() == *index && create != CreateKind::No {
                let (node, is_untyped) = node_for(rest.first(), create);
                items.push(node);
                created = is_untyped;
            }
            let len = items.len();
            match items.get_mut(*index) {
                Some(child) => visit_inner(child, rest, create, created, found),
                None => Err(ReplacementError::InvalidPath {
                    message: format!("index {index} specified but only {len} elements found"),
                }),
            }
        }
        Segment::Last => Err(ReplacementError::InvalidPath {
            message: "'-' is not supported in a replacement target".to_string(),
        }),
        Segment::Wildcard => {
            let Value::Sequence(items) = object else {
                return Err(wrong_kind("SequenceNode", object));
            };
            let mut count = 0;
            for item in items {
                count += visit_inner(item, rest, create, false, found)?;
            }
            Ok(count)
        }
        Segment::InvalidList(_) => Err(list_error()),
        Segment::Match { field, value } => {
            let Value::Sequence(items) = object else {
                return Err(wrong_kind("SequenceNode", object));
            };
            let regex = Regex::new(value).map_err(|err| ReplacementError::InvalidPath {
                message: format!("invalid regular expression {value:?}: {err}"),
            })?;
            let matches = |item: &Value| -> bool {
                let compared = if field.is_empty() {
                    Some(item)
                } else {
                    item.as_mapping().and_then(|m| m.get(field.as_str()))
                };
                compared.is_some_and(|v| regex.is_match(&node_text(v)))
            };
            let mut count = 0;
            let mut any = false;
            for item in items.iter_mut() {
                if matches(item) {
                    any = true;
                    count += visit_inner(item, rest, create, false, found)?;
                }
            }
            if any || create == CreateKind::No {
                return Ok(count);
            }
            // Nothing matched: append an element that does, and walk into it.
            let new_value = resolve_plain(value);
            let element = if field.is_empty() {
                new_value
            } else {
                let mut map = Mapping::new();
                map.insert(Value::from(field.as_str()), new_value);
                Value::Mapping(map)
            };
            items.push(element);
            let untyped_leaf = field.is_empty() && rest.is_empty();
            match items.last_mut() {
                Some(item) => visit_inner(item, rest, create, untyped_leaf, found),
                None => Ok(0),
            }
        }
    }
}

/// Whether `value` is a scalar (not a mapping or list).
pub fn is_scalar(value: &Value) -> bool {
    match value {
        Value::Mapping(_) | Value::Sequence(_) => false,
        Value::Tagged(tagged) => is_scalar(&tagged.value),
        _ => true,
    }
}

/// The text of a scalar as kustomize holds it (`7`, `true`, `nginx:1.2`); empty for a null or a
/// mapping or list.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => scalar_text(&t.value),
        Value::Null | Value::Mapping(_) | Value::Sequence(_) => String::new(),
    }
}

/// A scalar as its YAML text (what kustomize compares `[k=v]` regexes against): a string that
/// would read back as another type is quoted.
fn node_text(value: &Value) -> String {
    match value {
        Value::String(s) if !matches!(resolve_plain(s), Value::String(_)) => format!("\"{s}\""),
        Value::Null => "null".to_string(),
        other => scalar_text(other),
    }
}

/// The value of an unquoted YAML scalar with this text, as Go's yaml.v3 resolves it: null,
/// booleans, integers (decimal, `0x`, `0o`, `0b`, leading-zero octal, `_` separators), floats,
/// else a string.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Number(f64::INFINITY.into());
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Number(f64::NEG_INFINITY.into()),
        ".nan" | ".NaN" | ".NAN" => return Value::Number(f64::NAN.into()),
        _ => {}
    }
    let first = text.as_bytes().first().copied().unwrap_or(b' ');
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return Value::String(text.to_string());
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(n) = parse_go_int(&plain) {
        return n;
    }
    let float_like = {
        let digits = plain.trim_start_matches(['+', '-']);
        let (mantissa, exponent) = match digits.find(['e', 'E']) {
            Some(at) => (&digits[..at], Some(&digits[at + 1..])),
            None => (digits, None),
        };
        let mantissa_ok = match mantissa.split_once('.') {
            Some((int, frac)) => {
                (int.is_empty() && !frac.is_empty() || !int.is_empty())
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.bytes().all(|b| b.is_ascii_digit())
            }
            None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
        };
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        });
        mantissa_ok && exponent_ok
    };
    if float_like && let Ok(f) = plain.parse::<f64>() {
        return Value::Number(f.into());
    }
    Value::String(text.to_string())
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseUint`: optional sign, `0x`/`0o`/`0b` prefixes,
/// a leading `0` for octal.
fn parse_go_int(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, body) = if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude)
            .ok()
            .map(|m| -m)
            .or_else(|| (magnitude == 1u64 << 63).then_some(i64::MIN))?;
        Some(Value::Number(value.into()))
    } else {
        Some(Value::Number(magnitude.into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn splits_like_kustomize() {
        assert_eq!(
            split("spec.template.spec.containers.[name=com.foo.app].image"),
            [
                "spec",
                "template",
                "spec",
                "containers",
                "[name=com.foo.app]",
                "image"
            ]
        );
        assert_eq!(
            split("metadata.annotations.[config.kubernetes.io/local-config]"),
            [
                "metadata",
                "annotations",
                "config.kubernetes.io/local-config"
            ]
        );
        assert_eq!(
            split(r"metadata.labels.a\.b"),
            ["metadata", "labels", "a.b"]
        );
        assert_eq!(split("metadata.labels.[q]"), ["metadata", "labels", "[q]"]);
        assert_eq!(
            parse("a.0.*.-.[=x].[k=v=w].[q]"),
            [
                Segment::Field("a".into()),
                Segment::Index(0),
                Segment::Wildcard,
                Segment::Last,
                Segment::Match {
                    field: String::new(),
                    value: "x".into()
                },
                Segment::Match {
                    field: "k".into(),
                    value: "v=w".into()
                },
                Segment::InvalidList("[q]".into()),
            ]
        );
        assert_eq!(parse("-1"), [Segment::Field("-1".into())]);
    }

    #[test]
    fn resolves_plain_scalars_like_yaml_v3() {
        let v = |t: &str| resolve_plain(t);
        assert_eq!(v(""), Value::Null);
        assert_eq!(v("3"), Value::Number(3.into()));
        assert_eq!(v("-3"), Value::Number((-3).into()));
        assert_eq!(v("0x1F"), Value::Number(31.into()));
        assert_eq!(v("0755"), Value::Number(493.into()));
        assert_eq!(v("1_000"), Value::Number(1000.into()));
        assert_eq!(v("1.5"), Value::Number(1.5.into()));
        assert_eq!(v(".5"), Value::Number(0.5.into()));
        assert_eq!(v("1e3"), Value::Number(1000.0.into()));
        assert_eq!(v("True"), Value::Bool(true));
        assert_eq!(v("yes"), Value::from("yes"));
        assert_eq!(v("nginx:1.2"), Value::from("nginx:1.2"));
        assert_eq!(v("1.2.3"), Value::from("1.2.3"));
        assert_eq!(v("-"), Value::from("-"));
        assert_eq!(v("0x"), Value::from("0x"));
    }
}
