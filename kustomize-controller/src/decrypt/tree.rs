//! The ordered document tree SOPS works on, and its YAML, JSON and `serde_json` forms.
//!
//! SOPS hashes values in document order (the MAC) and binds each encrypted value to its key
//! path, so the tree keeps mapping order and the scalar types SOPS (Go) gives them.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};

/// One value of a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A mapping, in document order.
    Map(Vec<(String, Node)>),
    /// A sequence.
    List(Vec<Node>),
    /// UTF-8 text.
    Str(String),
    /// Bytes that are not UTF-8 text (a decrypted binary file, a `bytes` value).
    Bytes(Vec<u8>),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Null (SOPS neither encrypts nor hashes it).
    Null,
}

impl Node {
    /// The value of `key` in a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string value.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Removes `key` from a mapping and returns its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Node> {
        match self {
            Node::Map(entries) => {
                let index = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(index).1)
            }
            _ => None,
        }
    }

    /// From a `serde_json` value (whose mappings are sorted by key).
    pub(crate) fn from_json(value: serde_json::Value) -> Node {
        match value {
            serde_json::Value::Null => Node::Null,
            serde_json::Value::Bool(b) => Node::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Node::Int(i),
                None => Node::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Node::Str(s),
            serde_json::Value::Array(items) => {
                Node::List(items.into_iter().map(Node::from_json).collect())
            }
            serde_json::Value::Object(map) => Node::Map(
                map.into_iter()
                    .map(|(k, v)| (k, Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// To a `serde_json` value; fails on bytes that are not text or a non-finite float.
    pub(crate) fn into_json(self) -> Result<serde_json::Value, TreeError> {
        Ok(match self {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => serde_json::Value::Bool(b),
            Node::Int(i) => serde_json::Value::from(i),
            Node::Float(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .ok_or(TreeError::NonFiniteFloat)?,
            Node::Str(s) => serde_json::Value::String(s),
            Node::Bytes(_) => return Err(TreeError::NotText),
            Node::List(items) => serde_json::Value::Array(
                items
                    .into_iter()
                    .map(Node::into_json)
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k, v.into_json()?);
                }
                serde_json::Value::Object(map)
            }
        })
    }

    /// From a YAML value read by the kustomize engine (go-yaml's scalar typing, as SOPS reads).
    fn from_yaml(value: serde_yaml::Value) -> Result<Node, TreeError> {
        Ok(match value {
            serde_yaml::Value::Null => Node::Null,
            serde_yaml::Value::Bool(b) => Node::Bool(b),
            serde_yaml::Value::Number(n) => match n.as_i64() {
                Some(i) => Node::Int(i),
                None => Node::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_yaml::Value::String(s) => Node::Str(s),
            serde_yaml::Value::Sequence(items) => Node::List(
                items
                    .into_iter()
                    .map(Node::from_yaml)
                    .collect::<Result<_, _>>()?,
            ),
            serde_yaml::Value::Mapping(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let serde_yaml::Value::String(key) = k else {
                        return Err(TreeError::NonStringKey);
                    };
                    entries.push((key, Node::from_yaml(v)?));
                }
                Node::Map(entries)
            }
            serde_yaml::Value::Tagged(tagged) => Node::from_yaml(tagged.value)?,
        })
    }
}

/// Why a document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The YAML is malformed.
    #[error("invalid YAML")]
    Yaml(#[source] ferroflux_kustomize::Error),
    /// The JSON is malformed.
    #[error("invalid JSON")]
    Json(#[source] serde_json::Error),
    /// The document could not be written as YAML.
    #[error("cannot write YAML")]
    WriteYaml(#[source] serde_yaml::Error),
    /// The document could not be written as JSON.
    #[error("cannot write JSON")]
    WriteJson(#[source] serde_json::Error),
    /// A mapping key is not a string (SOPS supports string keys only).
    #[error("a mapping key is not a string; SOPS supports string keys only")]
    NonStringKey,
    /// The top of the document is not a mapping.
    #[error("the document is not a mapping")]
    NotAMapping,
    /// A decrypted value is not UTF-8 text where text is required.
    #[error("a decrypted value is not UTF-8 text")]
    NotText,
    /// A float that JSON cannot hold (NaN, infinity).
    #[error("a float value is not finite")]
    NonFiniteFloat,
}

/// The documents of a YAML stream (empty documents skipped).
pub(crate) fn parse_yaml(text: &str) -> Result<Vec<Node>, TreeError> {
    let documents = ferroflux_kustomize::loader::parse_documents(text, Path::new("sops-file"))
        .map_err(TreeError::Yaml)?;
    documents
        .into_iter()
        .filter(|d| !d.is_null())
        .map(Node::from_yaml)
        .collect()
}

/// A JSON document, keeping key order.
pub(crate) fn parse_json(text: &[u8]) -> Result<Node, TreeError> {
    serde_json::from_slice(text).map_err(TreeError::Json)
}

/// YAML documents, separated by `---`.
pub(crate) fn emit_yaml(documents: &[Node]) -> Result<Vec<u8>, TreeError> {
    let mut out = String::new();
    for (index, document) in documents.iter().enumerate() {
        if index > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(document).map_err(TreeError::WriteYaml)?);
    }
    Ok(out.into_bytes())
}

/// An indented JSON document.
pub(crate) fn emit_json(document: &Node) -> Result<Vec<u8>, TreeError> {
    let mut out = serde_json::to_vec_pretty(document).map_err(TreeError::WriteJson)?;
    out.push(b'\n');
    Ok(out)
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Node::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Str(s) => serializer.serialize_str(s),
            Node::Bytes(_) => Err(ser::Error::custom("a decrypted value is not UTF-8 text")),
            Node::Int(i) => serializer.serialize_i64(*i),
            Node::Float(f) => serializer.serialize_f64(*f),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Null => serializer.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        // Go reads a number that does not fit an int64 as a float.
        Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            // Go's JSON decoding keeps the last of duplicate keys.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_order_and_go_number_types() {
        let node =
            parse_json(br#"{"b": 1, "a": 1.5, "c": 18446744073709551615, "d": [true, null]}"#)
                .unwrap();
        let Node::Map(entries) = &node else { panic!() };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "d"]);
        assert_eq!(node.get("b"), Some(&Node::Int(1)));
        assert_eq!(node.get("a"), Some(&Node::Float(1.5)));
        assert!(matches!(node.get("c"), Some(Node::Float(_))));
        assert_eq!(
            node.get("d"),
            Some(&Node::List(vec![Node::Bool(true), Node::Null]))
        );
        let back = String::from_utf8(emit_json(&node).unwrap()).unwrap();
        assert!(back.find("\"b\"").unwrap() < back.find("\"a\"").unwrap());
    }

    #[test]
    fn yaml_keeps_order_and_go_yaml_types() {
        let docs = parse_yaml("z: 0644\na: '0644'\nm: {k: v}\n---\nx: 1\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].get("z"), Some(&Node::Int(420)));
        assert_eq!(docs[0].get("a"), Some(&Node::Str("0644".into())));
        let Node::Map(entries) = &docs[0] else {
            panic!()
        };
        assert_eq!(entries[0].0, "z");
        let text = String::from_utf8(emit_yaml(&docs).unwrap()).unwrap();
        assert!(text.contains("---\n"), "{text}");
        assert!(parse_yaml("1: a\n").is_err());
    }
}
