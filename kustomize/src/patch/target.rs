//! Patch targets: which resources a `target:` selector picks.
//!
//! Kustomize's rules, which [`Selector::matches`] follows:
//! - empty fields match anything;
//! - `group`, `version`, `kind`, `name` and `namespace` are regular expressions anchored at both
//!   ends (`app` does not pick `my-app`; `.*app` does; `(Deployment|StatefulSet)` picks both);
//!   `name` and `namespace` are tried against the resource's original value (before prefixes,
//!   suffixes and namespace changes) and then its current one;
//! - a resource without a namespace is in `default` for namespace matching; a cluster-scoped
//!   kind is in the pseudo-namespace `_non_namespaceable_` (so `.*` picks it, `default` does not);
//! - `labelSelector` / `annotationSelector` use Kubernetes selector syntax: `a=b`, `a==b`, `a!=b`,
//!   `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by commas (all must hold).

use regex::Regex;
use serde_yaml::Value;

use super::PatchError;
use super::schema;
use crate::kustomization;
use crate::resource::{ResId, Resource};

/// The namespace a resource without one is in, for matching.
const DEFAULT_NAMESPACE: &str = "default";

/// What kustomize matches a namespace pattern against for a cluster-scoped kind.
const NOT_A_NAMESPACE: &str = "_non_namespaceable_";

/// A compiled `target:` selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// API group pattern (`None`: any).
    pub group: Option<Pattern>,
    /// API version pattern (`None`: any).
    pub version: Option<Pattern>,
    /// Kind pattern (`None`: any).
    pub kind: Option<Pattern>,
    /// Name pattern as written, compiled anchored.
    pub name: Option<Pattern>,
    /// Namespace pattern as written, compiled anchored.
    pub namespace: Option<Pattern>,
    /// Requirements on `metadata.labels`.
    pub label_selector: Option<LabelSelector>,
    /// Requirements on `metadata.annotations`.
    pub annotation_selector: Option<LabelSelector>,
}

/// A group, version, kind, name or namespace regular expression, anchored at both ends as
/// kustomize does.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as written in the kustomization.
    pub source: String,
    regex: Regex,
}

/// A parsed Kubernetes label selector (also used for annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    /// All must hold.
    pub requirements: Vec<Requirement>,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the value is compared.
    pub operator: Operator,
    /// The values compared against (one for `=`, `!=`, `>`, `<`; none for `exists`).
    pub values: Vec<String>,
}

/// The operator of a [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `a=b` or `a==b`: the label is present with that value.
    Equals,
    /// `a!=b`: the label is absent or has another value.
    NotEquals,
    /// `a in (x,y)`: the label is present with one of the values.
    In,
    /// `a notin (x,y)`: the label is absent or has none of the values.
    NotIn,
    /// `a`: the label is present.
    Exists,
    /// `!a`: the label is absent.
    DoesNotExist,
    /// `a>1`: the label is an integer greater than the value.
    GreaterThan,
    /// `a<1`: the label is an integer less than the value.
    LessThan,
}

impl Pattern {
    /// Compiles `source` anchored (`^(?:source)$`).
    pub fn new(source: &str) -> Result<Self, PatchError> {
        let regex = Regex::new(&format!("^(?:{source})$")).map_err(|e| PatchError::Regex {
            pattern: source.to_string(),
            source: e,
        })?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// `Some(s)` unless `s` is empty (kustomize treats an empty field as absent).
fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

impl Selector {
    /// Compiles a selector as read from a kustomization (`target:` of `patches`).
    pub fn new(raw: &kustomization::Selector) -> Result<Self, PatchError> {
        let pattern = |s: &Option<String>| non_empty(s.as_deref()).map(Pattern::new).transpose();
        Ok(Self {
            group: pattern(&raw.group)?,
            version: pattern(&raw.version)?,
            kind: pattern(&raw.kind)?,
            name: non_empty(raw.name.as_deref())
                .map(Pattern::new)
                .transpose()?,
            namespace: non_empty(raw.namespace.as_deref())
                .map(Pattern::new)
                .transpose()?,
            label_selector: non_empty(raw.label_selector.as_deref())
                .map(LabelSelector::parse)
                .transpose()?,
            annotation_selector: non_empty(raw.annotation_selector.as_deref())
                .map(LabelSelector::parse)
                .transpose()?,
        })
    }

    /// Compiles a selector from its YAML form (a mapping with `group`, `version`, `kind`, `name`,
    /// `namespace`, `labelSelector`, `annotationSelector`; unknown fields are refused).
    pub fn from_value(value: &Value) -> Result<Self, PatchError> {
        let raw: kustomization::Selector = serde_yaml::from_value(value.clone())
            .map_err(|e| PatchError::Selector(e.to_string()))?;
        Self::new(&raw)
    }

    /// Whether the selector picks `res` (see the module docs for the rules).
    pub fn matches(&self, res: &Resource) -> bool {
        let current = res.id();
        let original = &res.original_id;
        if let Some(pattern) = &self.namespace {
            let namespaced = is_namespaced(&current);
            let effective = |id: &ResId| -> String {
                if !namespaced {
                    return NOT_A_NAMESPACE.to_string();
                }
                id.namespace
                    .clone()
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
            };
            let hit = |id: &ResId| pattern.is_match(&effective(id));
            if !hit(original) && !hit(&current) {
                return false;
            }
        }
        if let Some(pattern) = &self.name
            && !pattern.is_match(&original.name)
            && !pattern.is_match(&current.name)
        {
            return false;
        }
        let hit =
            |want: &Option<Pattern>, have: &str| want.as_ref().is_none_or(|p| p.is_match(have));
        if !hit(&self.group, &current.group)
            || !hit(&self.version, &current.version)
            || !hit(&self.kind, &current.kind)
        {
            return false;
        }
        let metadata = res.value.get("metadata");
        if let Some(selector) = &self.label_selector
            && !selector.matches(metadata.and_then(|m| m.get("labels")))
        {
            return false;
        }
        if let Some(selector) = &self.annotation_selector
            && !selector.matches(metadata.and_then(|m| m.get("annotations")))
        {
            return false;
        }
        true
    }
}

/// Whether a kind is namespaced (kinds unknown to the built-in schema, such as custom resources,
/// are taken as namespaced, as kustomize does).
fn is_namespaced(id: &ResId) -> bool {
    let api_version = if id.group.is_empty() {
        id.version.clone()
    } else {
        format!("{}/{}", id.group, id.version)
    };
    schema::built_in()
        .is_namespaced(&api_version, &id.kind)
        .unwrap_or(true)
}

impl LabelSelector {
    /// Parses a selector in Kubernetes syntax. An empty selector matches everything.
    pub fn parse(text: &str) -> Result<Self, PatchError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(bad_selector(text, "empty requirement"));
            }
            requirements.push(Requirement::parse(part).map_err(|why| bad_selector(text, &why))?);
        }
        Ok(Self { requirements })
    }

    /// Whether `labels` (a mapping, or absent) satisfies every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let lookup = |key: &str| -> Option<String> {
            let value = labels?.get(key)?;
            Some(match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                _ => return None,
            })
        };
        self.requirements.iter().all(|r| r.matches(lookup(&r.key)))
    }
}

fn bad_selector(text: &str, why: &str) -> PatchError {
    PatchError::Selector(format!("cannot parse selector {text:?}: {why}"))
}

/// Splits at commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of letters, digits,
/// `-`, `_`, `.`, starting and ending with a letter or digit.
fn check_key(key: &str) -> Result<(), String> {
    let name = key.rsplit_once('/').map_or(
        key,
        |(prefix, name)| {
            if prefix.is_empty() { "" } else { name }
        },
    );
    if !is_label_value(name) || name.is_empty() || name.len() > 63 {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(())
}

/// Whether `value` is a valid label value (empty allowed).
fn is_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    value.len() <= 63
        && value.starts_with(alnum)
        && value.ends_with(alnum)
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_value(value: &str) -> Result<String, String> {
    if is_label_value(value) {
        Ok(value.to_string())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

impl Requirement {
    fn parse(part: &str) -> Result<Self, String> {
        if let Some(key) = part.strip_prefix('!') {
            let key = key.trim();
            check_key(key)?;
            return Ok(Self {
                key: key.to_string(),
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            });
        }
        // Set-based: `key in (a,b)` / `key notin (a,b)`.
        let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
        if let [key, rest] = words[..] {
            let rest = rest.trim_start();
            let (operator, list) = if let Some(list) = rest.strip_prefix("notin") {
                (Operator::NotIn, list)
            } else if let Some(list) = rest.strip_prefix("in") {
                (Operator::In, list)
            } else {
                (Operator::Exists, "")
            };
            if operator != Operator::Exists {
                let list = list.trim();
                let inner = list
                    .strip_prefix('(')
                    .and_then(|l| l.strip_suffix(')'))
                    .ok_or_else(|| format!("expected a parenthesised list in {part:?}"))?;
                check_key(key)?;
                let values = inner
                    .split(',')
                    .map(|v| check_value(v.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Self {
                    key: key.to_string(),
                    operator,
                    values,
                });
            }
        }
        for (token, operator) in [
            ("==", Operator::Equals),
            ("!=", Operator::NotEquals),
            ("=", Operator::Equals),
            (">", Operator::GreaterThan),
            ("<", Operator::LessThan),
        ] {
            if let Some((key, value)) = part.split_once(token) {
                let key = key.trim();
                check_key(key)?;
                let value = value.trim();
                if matches!(operator, Operator::GreaterThan | Operator::LessThan)
                    && value.parse::<i64>().is_err()
                {
                    return Err(format!("{value:?} is not an integer in {part:?}"));
                }
                return Ok(Self {
                    key: key.to_string(),
                    operator,
                    values: vec![check_value(value)?],
                });
            }
        }
        check_key(part)?;
        Ok(Self {
            key: part.to_string(),
            operator: Operator::Exists,
            values: Vec::new(),
        })
    }

    fn matches(&self, value: Option<String>) -> bool {
        let number = |s: &str| s.parse::<i64>().ok();
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(&v)),
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.contains(&v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(want)) = (
                    value.as_deref().and_then(number),
                    self.values.first().and_then(|v| number(v)),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The expected selections are what `kubectl kustomize` v5.5 picked for the same targets.

    use super::*;

    const RESOURCES: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  labels: {tier: front, env: prod}
  annotations: {owner: team-a}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: my-web
  namespace: other
  labels: {tier: back}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: web
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web2
  namespace: default
  labels: {env: "7"}
"#;

    fn resources() -> Vec<Resource> {
        serde_yaml::Deserializer::from_str(RESOURCES)
            .map(|doc| {
                let value = <Value as serde::Deserialize>::deserialize(doc).unwrap();
                Resource::new(value, "res.yaml")
            })
            .collect()
    }

    /// `kind/name` of the resources `target` (YAML flow mapping) picks.
    fn picked(target: &str) -> Vec<String> {
        let selector = Selector::from_value(&serde_yaml::from_str(target).unwrap()).unwrap();
        resources()
            .iter()
            .filter(|r| selector.matches(r))
            .map(|r| format!("{}/{}", r.kind(), r.name()))
            .collect()
    }

    #[test]
    fn names_are_anchored_regular_expressions() {
        assert_eq!(picked("{name: web}"), ["ConfigMap/web", "ClusterRole/web"]);
        assert_eq!(
            picked("{name: 'w.*'}"),
            ["ConfigMap/web", "ClusterRole/web", "ConfigMap/web2"]
        );
        assert_eq!(
            picked("{name: '.*web'}"),
            ["ConfigMap/web", "ConfigMap/my-web", "ClusterRole/web"]
        );
        assert_eq!(
            picked("{name: 'web|my-web'}"),
            ["ConfigMap/web", "ConfigMap/my-web", "ClusterRole/web"]
        );
    }

    #[test]
    fn namespaces_default_and_cluster_scope() {
        assert_eq!(
            picked("{namespace: default}"),
            ["ConfigMap/web", "ConfigMap/web2"]
        );
        assert_eq!(picked("{namespace: other}"), ["ConfigMap/my-web"]);
        assert_eq!(picked("{namespace: 'o.*'}"), ["ConfigMap/my-web"]);
        assert_eq!(picked("{namespace: '_.*'}"), ["ClusterRole/web"]);
        assert_eq!(picked("{namespace: '.*'}").len(), 4);
        assert_eq!(picked("{namespace: ''}").len(), 4);
    }

    #[test]
    fn group_version_kind_are_anchored_patterns() {
        assert_eq!(
            picked("{kind: ConfigMap, version: v1}"),
            ["ConfigMap/web", "ConfigMap/my-web", "ConfigMap/web2"]
        );
        assert_eq!(
            picked("{group: rbac.authorization.k8s.io}"),
            ["ClusterRole/web"]
        );
        assert_eq!(picked("{kind: Config}"), Vec::<String>::new());
        assert_eq!(
            picked("{kind: '(ClusterRole|Secret)'}"),
            ["ClusterRole/web"]
        );
        assert_eq!(
            picked("{name: web, kind: ''}"),
            ["ConfigMap/web", "ClusterRole/web"]
        );
    }

    #[test]
    fn label_selectors() {
        assert_eq!(
            picked("{labelSelector: 'tier in (front, back)'}"),
            ["ConfigMap/web", "ConfigMap/my-web"]
        );
        assert_eq!(
            picked("{labelSelector: '!tier'}"),
            ["ClusterRole/web", "ConfigMap/web2"]
        );
        assert_eq!(
            picked("{labelSelector: 'tier!=front'}"),
            ["ConfigMap/my-web", "ClusterRole/web", "ConfigMap/web2"]
        );
        assert_eq!(
            picked("{labelSelector: 'tier notin (front),!env'}"),
            ["ConfigMap/my-web", "ClusterRole/web"]
        );
        assert_eq!(
            picked("{labelSelector: 'tier,env=prod'}"),
            ["ConfigMap/web"]
        );
        assert_eq!(picked("{labelSelector: 'tier = front'}"), ["ConfigMap/web"]);
        assert_eq!(picked("{labelSelector: 'env==7'}"), ["ConfigMap/web2"]);
        assert_eq!(picked("{labelSelector: 'env>5'}"), ["ConfigMap/web2"]);
        assert_eq!(picked("{labelSelector: 'env<9'}"), ["ConfigMap/web2"]);
        assert_eq!(
            picked("{labelSelector: 'tier in ()'}"),
            Vec::<String>::new()
        );
        assert_eq!(picked("{labelSelector: ''}").len(), 4);
    }

    #[test]
    fn annotation_selectors() {
        assert_eq!(
            picked("{annotationSelector: 'owner=team-a'}"),
            ["ConfigMap/web"]
        );
        assert_eq!(picked("{annotationSelector: 'owner'}"), ["ConfigMap/web"]);
    }

    /// A resource is picked by the name and namespace it had before prefixes and namespace
    /// changes, as well as by its current ones.
    #[test]
    fn original_and_current_identity_both_match() {
        let mut resource = resources().remove(0);
        resource.set_name("pre-web");
        resource.set_namespace("moved");
        let by = |target: &str| {
            Selector::from_value(&serde_yaml::from_str(target).unwrap())
                .unwrap()
                .matches(&resource)
        };
        assert!(by("{name: web, namespace: default}"));
        assert!(by("{name: pre-web, namespace: moved}"));
        assert!(!by("{name: other}"));
    }

    #[test]
    fn bad_selectors_are_errors() {
        let error = |target: &str| {
            Selector::from_value(&serde_yaml::from_str(target).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(error("{name: '['}").contains("invalid regular expression \"[\""));
        assert!(error("{labelSelector: 'a b c'}").contains("cannot parse selector"));
        assert!(error("{labelSelector: 'a in x'}").contains("parenthesised list"));
        assert!(error("{labelSelector: 'a>b'}").contains("not an integer"));
        assert!(error("{labelSelector: 'a,,b'}").contains("empty requirement"));
        assert!(error("{kindd: X}").contains("unknown field"));
    }

    #[test]
    fn parsed_requirements() {
        let selector = LabelSelector::parse("a in (x, y),b!=c,!d,e").unwrap();
        assert_eq!(
            selector.requirements,
            [
                Requirement {
                    key: "a".into(),
                    operator: Operator::In,
                    values: vec!["x".into(), "y".into()],
                },
                Requirement {
                    key: "b".into(),
                    operator: Operator::NotEquals,
                    values: vec!["c".into()],
                },
                Requirement {
                    key: "d".into(),
                    operator: Operator::DoesNotExist,
                    values: vec![],
                },
                Requirement {
                    key: "e".into(),
                    operator: Operator::Exists,
                    values: vec![],
                },
            ]
        );
        let prefixed = LabelSelector::parse("app.kubernetes.io/name=web").unwrap();
        assert_eq!(prefixed.requirements[0].key, "app.kubernetes.io/name");
    }
}
