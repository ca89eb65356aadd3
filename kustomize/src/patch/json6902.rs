//! JSON 6902 patches: a list of `add`, `remove`, `replace`, `move`, `copy` and `test` operations
//! addressed by JSON pointers (RFC 6901).
//!
//! The text may be JSON (`[{"op": ...}]`) or YAML (`- op: ...`). Behaviour follows the library
//! kustomize uses (evanphx/json-patch v5 with its default options):
//! - `add` sets a map key (replacing it if present) or inserts into a list at an index
//!   (`0..=len`), `-` appending; the parent must exist;
//! - `remove` needs the location to exist; `replace` needs its parent, and a list index in range
//!   (a missing map key is added);
//! - list indices may be negative, counting from the end (`-1` is the last element; for `add`,
//!   `-1` appends);
//! - `test` passes when the value is equal; a missing location equals a `null` value;
//! - the empty path `""` is the whole document; `~1` stands for `/` and `~0` for `~` in a token.
//!
//! Errors name the operation (its position in the list, its op and its path).

use serde_yaml::{Mapping, Value};

use super::PatchError;

/// One JSON 6902 operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// What to do.
    pub op: Op,
    /// The JSON pointer it applies to.
    pub path: String,
    /// The source pointer of `move` and `copy`.
    pub from: Option<String>,
    /// The value of `add`, `replace` and `test` (`None` when the operation has none: `null`).
    pub value: Option<Value>,
}

/// The kind of a JSON 6902 [`Operation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Add a map key or insert a list element.
    Add,
    /// Remove a map key or list element.
    Remove,
    /// Replace an existing value.
    Replace,
    /// Remove the value at `from` and add it at `path`.
    Move,
    /// Add a copy of the value at `from` at `path`.
    Copy,
    /// Fail unless the value at `path` equals `value`.
    Test,
}

impl Op {
    /// The name used in patches (`add`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
            Op::Move => "move",
            Op::Copy => "copy",
            Op::Test => "test",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "add" => Op::Add,
            "remove" => Op::Remove,
            "replace" => Op::Replace,
            "move" => Op::Move,
            "copy" => Op::Copy,
            "test" => Op::Test,
            _ => return None,
        })
    }
}

/// Parses a JSON 6902 patch from JSON or YAML text.
pub fn parse(text: &str) -> Result<Vec<Operation>, PatchError> {
    let value: Value = serde_yaml::from_str(text).map_err(PatchError::Parse)?;
    from_value(&value)
}

/// Reads a JSON 6902 patch from a parsed value (a list of operation mappings).
pub fn from_value(value: &Value) -> Result<Vec<Operation>, PatchError> {
    let invalid = |message: String| PatchError::InvalidJson6902(message);
    let Value::Sequence(items) = value else {
        return Err(invalid("expected a list of operations".into()));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let Value::Mapping(map) = item else {
                return Err(invalid(format!("operation {index} is not a mapping")));
            };
            let text = |key: &str| -> Result<Option<String>, PatchError> {
                match map.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(invalid(format!(
                        "operation {index}: `{key}` must be a string"
                    ))),
                }
            };
            let name =
                text("op")?.ok_or_else(|| invalid(format!("operation {index} has no `op`")))?;
            let op = Op::parse(&name)
                .ok_or_else(|| invalid(format!("operation {index}: unknown op {name:?}")))?;
            let path = text("path")?
                .ok_or_else(|| invalid(format!("operation {index} ({name}) has no `path`")))?;
            let from = text("from")?;
            if matches!(op, Op::Move | Op::Copy) && from.is_none() {
                return Err(invalid(format!(
                    "operation {index} ({name} {path}) has no `from`"
                )));
            }
            Ok(Operation {
                op,
                path,
                from,
                value: map.get("value").cloned(),
            })
        })
        .collect()
}

/// Applies `operations` to `document` in order. On error the document may be partly patched.
pub fn apply(document: &mut Value, operations: &[Operation]) -> Result<(), PatchError> {
    for (index, operation) in operations.iter().enumerate() {
        apply_one(document, operation).map_err(|failure| match failure {
            Failure::TestFailed => PatchError::TestFailed {
                index,
                path: operation.path.clone(),
            },
            Failure::Missing { path, reason } => PatchError::PathNotFound {
                index,
                op: operation.op.as_str().to_string(),
                path,
                reason,
            },
        })?;
    }
    Ok(())
}

/// Parses `text` and applies it to `document`.
pub fn apply_text(document: &mut Value, text: &str) -> Result<(), PatchError> {
    apply(document, &parse(text)?)
}

enum Failure {
    TestFailed,
    Missing { path: String, reason: String },
}

fn missing(path: &str, reason: impl Into<String>) -> Failure {
    Failure::Missing {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The reference tokens of a pointer, unescaped. `None` for a pointer that does not start
/// with `/` (other than the empty pointer).
fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// The text a mapping key is addressed by.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn map_key<'a>(map: &'a Mapping, token: &str) -> Option<&'a Value> {
    map.keys().find(|k| key_text(k).as_deref() == Some(token))
}

/// A list index as evanphx/json-patch reads it: an integer, negative ones counting back from
/// `size` (the list's length, or one more for `add`); it must land in `0..size`.
fn index(token: &str, size: usize) -> Result<usize, String> {
    let number: i64 = token
        .parse()
        .map_err(|_| format!("{token:?} is not a list index"))?;
    let size_i = i64::try_from(size).unwrap_or(i64::MAX);
    let resolved = if number < 0 { number + size_i } else { number };
    if resolved < 0 || resolved >= size_i {
        return Err(format!("index {token} is out of range"));
    }
    usize::try_from(resolved).map_err(|_| format!("{token:?} is not a list index"))
}

/// The value at `tokens`, if any.
fn get<'a>(document: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    let mut current = document;
    for token in tokens {
        current = match current {
            Value::Mapping(map) => map.get(map_key(map, token)?)?,
            Value::Sequence(items) => items.get(index(token, items.len()).ok()?)?,
            Value::Tagged(tagged) => return get(&tagged.value, std::slice::from_ref(token)),
            _ => return None,
        };
    }
    Some(current)
}

/// The container holding the last token of `tokens`.
fn parent_mut<'a>(
    document: &'a mut Value,
    tokens: &[String],
    pointer: &str,
) -> Result<&'a mut Value, Failure> {
    let mut current = document;
    let Some((_, parents)) = tokens.split_last() else {
        return Err(missing(pointer, "the document has no parent"));
    };
    for (depth, token) in parents.iter().enumerate() {
        let here = || format!("/{}", escape_tokens(&parents[..=depth]));
        current = match current {
            Value::Mapping(map) => {
                let key = map_key(map, token)
                    .cloned()
                    .ok_or_else(|| missing(pointer, format!("{} does not exist", here())))?;
                map.get_mut(&key)
                    .ok_or_else(|| missing(pointer, format!("{} does not exist", here())))?
            }
            Value::Sequence(items) => {
                let at = index(token, items.len())
                    .map_err(|why| missing(pointer, format!("at {}: {why}", here())))?;
                &mut items[at]
            }
            _ => {
                return Err(missing(pointer, format!("{} is inside a scalar", here())));
            }
        };
    }
    Ok(current)
}

fn escape_tokens(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| t.replace('~', "~0").replace('/', "~1"))
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_pointer(pointer: &str) -> Result<Vec<String>, Failure> {
    tokens(pointer).ok_or_else(|| missing(pointer, "a JSON pointer must start with `/`"))
}

fn add(document: &mut Value, pointer: &str, value: Value) -> Result<(), Failure> {
    let tokens = parse_pointer(pointer)?;
    let Some(last) = tokens.last() else {
        *document = value;
        return Ok(());
    };
    match parent_mut(document, &tokens, pointer)? {
        Value::Mapping(map) => {
            let key = map_key(map, last)
                .cloned()
                .unwrap_or_else(|| Value::from(last.as_str()));
            map.insert(key, value);
            Ok(())
        }
        Value::Sequence(items) => {
            let at = if last == "-" {
                items.len()
            } else {
                index(last, items.len() + 1).map_err(|why| missing(pointer, why))?
            };
            items.insert(at, value);
            Ok(())
        }
        _ => Err(missing(pointer, "the parent is not a map or a list")),
    }
}

fn remove(document: &mut Value, pointer: &str) -> Result<Value, Failure> {
    let tokens = parse_pointer(pointer)?;
    let Some(last) = tokens.last() else {
        return Err(missing(pointer, "cannot remove the whole document"));
    };
    match parent_mut(document, &tokens, pointer)? {
        Value::Mapping(map) => {
            let key = map_key(map, last)
                .cloned()
                .ok_or_else(|| missing(pointer, format!("no key {last:?}")))?;
            map.shift_remove(&key)
                .ok_or_else(|| missing(pointer, format!("no key {last:?}")))
        }
        Value::Sequence(items) => {
            let at = index(last, items.len()).map_err(|why| missing(pointer, why))?;
            Ok(items.remove(at))
        }
        _ => Err(missing(pointer, "the parent is not a map or a list")),
    }
}

fn replace(document: &mut Value, pointer: &str, value: Value) -> Result<(), Failure> {
    let tokens = parse_pointer(pointer)?;
    let Some(last) = tokens.last() else {
        *document = value;
        return Ok(());
    };
    match parent_mut(document, &tokens, pointer)? {
        Value::Mapping(map) => {
            // As in the library kustomize uses, replacing a missing key adds it.
            let key = map_key(map, last)
                .cloned()
                .unwrap_or_else(|| Value::from(last.as_str()));
            map.insert(key, value);
            Ok(())
        }
        Value::Sequence(items) => {
            let at = index(last, items.len()).map_err(|why| missing(pointer, why))?;
            items[at] = value;
            Ok(())
        }
        _ => Err(missing(pointer, "the parent is not a map or a list")),
    }
}

/// JSON equality: numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    let k = key_text(k);
                    y.iter()
                        .any(|(k2, v2)| key_text(k2) == k && json_equal(v, v2))
                })
        }
        (Value::Tagged(x), _) => json_equal(&x.value, b),
        (_, Value::Tagged(y)) => json_equal(a, &y.value),
        _ => a == b,
    }
}

fn apply_one(document: &mut Value, operation: &Operation) -> Result<(), Failure> {
    let path = operation.path.as_str();
    let value = || operation.value.clone().unwrap_or(Value::Null);
    let from = operation.from.as_deref().unwrap_or_default();
    match operation.op {
        Op::Add => add(document, path, value()),
        Op::Remove => remove(document, path).map(drop),
        Op::Replace => replace(document, path, value()),
        Op::Move => {
            if from == path {
                return Ok(());
            }
            if path.starts_with(&format!("{from}/")) {
                return Err(missing(path, format!("cannot move {from} into itself")));
            }
            let moved = remove(document, from).map_err(|failure| match failure {
                Failure::Missing { reason, .. } => missing(from, reason),
                other => other,
            })?;
            add(document, path, moved)
        }
        Op::Copy => {
            let source = get(document, &parse_pointer(from)?)
                .cloned()
                .ok_or_else(|| missing(from, "the `from` location does not exist"))?;
            add(document, path, source)
        }
        Op::Test => {
            let tokens = parse_pointer(path)?;
            if tokens.len() > 1 {
                // The parent must exist even when the value may be missing.
                let parent = &tokens[..tokens.len() - 1];
                if get(document, parent).is_none() {
                    return Err(missing(path, "the parent does not exist"));
                }
            }
            let found = get(document, &tokens);
            let wanted = operation.value.as_ref().unwrap_or(&Value::Null);
            let equal = match found {
                None => wanted.is_null(),
                Some(found) => json_equal(found, wanted),
            };
            if equal {
                Ok(())
            } else {
                Err(Failure::TestFailed)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Expected documents and failures are what `kubectl kustomize` v5.5 gave for the same patches.

    use super::*;

    const DOC: &str = r#"
metadata:
  annotations:
    a/b: x
    t~n: y
spec:
  replicas: 1
  containers:
  - name: a
    image: a
    args: [x, y, z]
"#;

    fn patched(patch: &str) -> Result<Value, PatchError> {
        let mut doc: Value = serde_yaml::from_str(DOC).unwrap();
        apply_text(&mut doc, patch)?;
        Ok(doc)
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn add_at_index_end_and_negative() {
        let doc = patched(
            r#"[{"op":"add","path":"/spec/containers/0/args/-","value":"end"},
                {"op":"add","path":"/spec/containers/0/args/0","value":"start"},
                {"op":"add","path":"/spec/containers/0/args/-1","value":"neg"}]"#,
        )
        .unwrap();
        assert_eq!(
            doc["spec"]["containers"][0]["args"],
            yaml("[start, x, y, z, end, neg]")
        );
    }

    #[test]
    fn yaml_operations_escapes_move_and_copy() {
        let doc = patched(
            "- op: replace\n  path: /metadata/annotations/a~1b\n  value: slash\n\
             - op: remove\n  path: /metadata/annotations/t~0n\n\
             - op: copy\n  from: /spec/replicas\n  path: /spec/minReadySeconds\n\
             - op: move\n  from: /spec/containers/0/image\n  path: /metadata/annotations/img\n",
        )
        .unwrap();
        assert_eq!(
            doc,
            yaml(
                "metadata: {annotations: {a/b: slash, img: a}}\n\
                 spec: {replicas: 1, minReadySeconds: 1, containers: [{name: a, args: [x, y, z]}]}"
            )
        );
    }

    #[test]
    fn negative_indices_for_replace_and_remove() {
        let doc =
            patched(r#"[{"op":"replace","path":"/spec/containers/0/args/-1","value":"last"}]"#)
                .unwrap();
        assert_eq!(doc["spec"]["containers"][0]["args"], yaml("[x, y, last]"));
        let doc = patched(r#"[{"op":"remove","path":"/spec/containers/0/args/-1"}]"#).unwrap();
        assert_eq!(doc["spec"]["containers"][0]["args"], yaml("[x, y]"));
    }

    #[test]
    fn replace_of_a_missing_key_adds_it() {
        let doc = patched(r#"[{"op":"replace","path":"/spec/nothere","value":1}]"#).unwrap();
        assert_eq!(doc["spec"]["nothere"], yaml("1"));
    }

    #[test]
    fn tests_pass_on_equal_and_on_missing_null() {
        let doc = patched(
            r#"[{"op":"test","path":"/spec/replicas","value":1.0},
                {"op":"test","path":"/spec/missing","value":null},
                {"op":"test","path":"/spec/containers/0","value":{"name":"a","image":"a","args":["x","y","z"]}}]"#,
        );
        assert_eq!(doc.unwrap(), yaml(DOC));
    }

    #[test]
    fn failures_name_the_operation() {
        let error = patched(r#"[{"op":"test","path":"/spec/replicas","value":1},{"op":"test","path":"/spec/replicas","value":2}]"#)
            .unwrap_err();
        assert!(
            matches!(error, PatchError::TestFailed { index: 1, .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "JSON 6902 operation 1 (test /spec/replicas): the value differs"
        );

        let error = patched(r#"[{"op":"remove","path":"/spec/nothere"}]"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "JSON 6902 operation 0 (remove /spec/nothere): no key \"nothere\""
        );
        let error = patched(r#"[{"op":"add","path":"/spec/no/deeper","value":1}]"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "JSON 6902 operation 0 (add /spec/no/deeper): /spec/no does not exist"
        );
        let error = patched(r#"[{"op":"add","path":"/spec/containers/0/args/5","value":"x"}]"#)
            .unwrap_err();
        assert!(
            error.to_string().contains("index 5 is out of range"),
            "{error}"
        );
        let error = patched(r#"[{"op":"move","from":"/spec/gone","path":"/spec/x"}]"#).unwrap_err();
        assert!(error.to_string().contains("(move /spec/gone)"), "{error}");
        let error = patched(r#"[{"op":"copy","from":"/spec/gone","path":"/spec/x"}]"#).unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
        let error = patched(r#"[{"op":"add","path":"spec","value":1}]"#).unwrap_err();
        assert!(error.to_string().contains("must start with `/`"), "{error}");
    }

    #[test]
    fn malformed_patches() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert!(error(r#"[{"op":"bogus","path":"/spec"}]"#).contains("unknown op \"bogus\""));
        assert!(error(r#"[{"path":"/spec"}]"#).contains("has no `op`"));
        assert!(error(r#"[{"op":"add"}]"#).contains("has no `path`"));
        assert!(error(r#"[{"op":"move","path":"/a"}]"#).contains("has no `from`"));
        assert!(error(r#"{"op":"add"}"#).contains("expected a list"));
        assert!(matches!(parse("[{"), Err(PatchError::Parse(_))));
    }

    #[test]
    fn whole_document_and_moves_inside_itself() {
        let mut doc = yaml("a: 1");
        apply_text(&mut doc, r#"[{"op":"replace","path":"","value":{"b":2}}]"#).unwrap();
        assert_eq!(doc, yaml("b: 2"));
        let error =
            apply_text(&mut doc, r#"[{"op":"move","from":"/b","path":"/b/c"}]"#).unwrap_err();
        assert!(error.to_string().contains("into itself"), "{error}");
    }
}
