//! `spec.driftIgnoreRules`: fields of existing objects that drift detection and the apply
//! leave to someone else (an autoscaler's `/spec/replicas`, a CA bundle a webhook injects).
//!
//! For an object that already exists, every ignored path of the desired object takes the value
//! the live object has there, or is left out when the live object has none. The dry-run then
//! sees no difference on those fields and the apply writes back what is already there, so the
//! other writer keeps its value and Flux's own earlier value is not restored. An object that
//! does not exist yet is created with the fields as the source has them.

use ferroflux_kustomize::patch::target::{LabelSelector, Pattern};
use serde_json::Value;

use crate::api::v1::{DriftIgnoreRule, Selector};

/// A `spec.driftIgnoreRules[]` entry, checked and ready to match objects.
#[derive(Clone, Debug)]
pub struct IgnoreRule {
    /// Each path as its unescaped JSON pointer tokens.
    paths: Vec<Vec<String>>,
    target: Option<Target>,
}

/// Which objects a rule applies to: every set field must match.
#[derive(Clone, Debug)]
struct Target {
    group: Option<Pattern>,
    version: Option<Pattern>,
    kind: Option<Pattern>,
    name: Option<Pattern>,
    namespace: Option<Pattern>,
    labels: Option<LabelSelector>,
    annotations: Option<LabelSelector>,
}

impl IgnoreRule {
    /// Checks `rule`: each path must be a JSON pointer below the root (`/spec/replicas`), each
    /// regular expression and selector must parse.
    ///
    /// # Errors
    /// A message naming the offending path or pattern.
    pub fn compile(rule: &DriftIgnoreRule) -> Result<Self, String> {
        if rule.paths.is_empty() {
            return Err("paths must not be empty".to_owned());
        }
        let paths = rule
            .paths
            .iter()
            .map(|path| parse_pointer(path))
            .collect::<Result<_, _>>()?;
        let target = rule.target.as_ref().map(Target::compile).transpose()?;
        Ok(Self { paths, target })
    }

    /// Compiles every rule of `spec.driftIgnoreRules`.
    ///
    /// # Errors
    /// The first rule that does not compile, with its index.
    pub fn compile_all(rules: &[DriftIgnoreRule]) -> Result<Vec<Self>, String> {
        rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                Self::compile(rule).map_err(|why| format!("spec.driftIgnoreRules[{index}]: {why}"))
            })
            .collect()
    }

    fn applies_to(&self, object: &Value) -> bool {
        self.target.as_ref().is_none_or(|t| t.matches(object))
    }
}

impl Target {
    fn compile(selector: &Selector) -> Result<Self, String> {
        let pattern = |field: &str, source: &Option<String>| {
            source
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| Pattern::new(s).map_err(|e| format!("target.{field}: {e}")))
                .transpose()
        };
        let selector_of = |field: &str, source: &Option<String>| {
            source
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| LabelSelector::parse(s).map_err(|e| format!("target.{field}: {e}")))
                .transpose()
        };
        Ok(Self {
            group: pattern("group", &selector.group)?,
            version: pattern("version", &selector.version)?,
            kind: pattern("kind", &selector.kind)?,
            name: pattern("name", &selector.name)?,
            namespace: pattern("namespace", &selector.namespace)?,
            labels: selector_of("labelSelector", &selector.label_selector)?,
            annotations: selector_of("annotationSelector", &selector.annotation_selector)?,
        })
    }

    fn matches(&self, object: &Value) -> bool {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        let api_version = text("/apiVersion").unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let field = |pattern: &Option<Pattern>, value: &str| {
            pattern.as_ref().is_none_or(|p| p.is_match(value))
        };
        let metadata_selector = |selector: &Option<LabelSelector>, pointer: &str| {
            selector.as_ref().is_none_or(|s| {
                let map = object
                    .pointer(pointer)
                    .and_then(|m| serde_yaml::to_value(m).ok());
                s.matches(map.as_ref())
            })
        };
        field(&self.group, group)
            && field(&self.version, version)
            && field(&self.kind, text("/kind").unwrap_or_default())
            && field(&self.name, text("/metadata/name").unwrap_or_default())
            && field(
                &self.namespace,
                text("/metadata/namespace").unwrap_or_default(),
            )
            && metadata_selector(&self.labels, "/metadata/labels")
            && metadata_selector(&self.annotations, "/metadata/annotations")
    }
}

/// Gives every path ignored for `desired` the value `live` has there, or removes it from
/// `desired` when `live` has none (see the module docs). Returns whether `desired` changed.
pub fn keep_live_values(rules: &[IgnoreRule], desired: &mut Value, live: &Value) -> bool {
    // Which rules apply is decided on the object as built, before any path is changed.
    let applicable: Vec<&IgnoreRule> = rules.iter().filter(|r| r.applies_to(desired)).collect();
    let mut changed = false;
    for rule in applicable {
        for tokens in &rule.paths {
            changed |= match lookup(live, tokens) {
                Some(value) => {
                    let value = value.clone();
                    set(desired, tokens, value)
                }
                None => remove(desired, tokens),
            };
        }
    }
    changed
}

/// RFC 6901: `/a/b~1c` is `["a", "b/c"]`; the whole document (`""`) is refused.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "path '{pointer}' is not a JSON pointer (it must start with '/')"
        ));
    };
    rest.split('/')
        .map(|token| {
            if token.contains('~') && !valid_escapes(token) {
                return Err(format!(
                    "path '{pointer}' has an invalid escape in '{token}' (only ~0 and ~1)"
                ));
            }
            Ok(token.replace("~1", "/").replace("~0", "~"))
        })
        .collect()
}

fn valid_escapes(token: &str) -> bool {
    let bytes = token.as_bytes();
    bytes
        .iter()
        .enumerate()
        .all(|(i, b)| *b != b'~' || matches!(bytes.get(i + 1), Some(b'0' | b'1')))
}

fn index_of(token: &str, len: usize) -> Option<usize> {
    // RFC 6901 forbids leading zeros; "-" (past the end) never names an existing element.
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    token.parse::<usize>().ok().filter(|i| *i < len)
}

fn lookup<'a>(value: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(value, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => index_of(token, items.len()).map(|i| &items[i]),
        _ => None,
    })
}

/// Sets `tokens` in `value` to `new`, creating missing objects on the way (but never array
/// elements). Returns whether anything changed.
fn set(value: &mut Value, tokens: &[String], new: Value) -> bool {
    let Some((last, parents)) = tokens.split_last() else {
        return false;
    };
    let mut node = value;
    for token in parents {
        node = match node {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new())),
            Value::Array(items) => match index_of(token, items.len()) {
                Some(i) => &mut items[i],
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Value::Object(map) => map.insert(last.clone(), new.clone()).as_ref() != Some(&new),
        Value::Array(items) => match index_of(last, items.len()) {
            Some(i) if items[i] != new => {
                items[i] = new;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Removes `tokens` from `value` if it is there (an array element is removed, shifting the
/// rest). Returns whether anything changed.
fn remove(value: &mut Value, tokens: &[String]) -> bool {
    let Some((last, parents)) = tokens.split_last() else {
        return false;
    };
    let mut node = value;
    for token in parents {
        node = match node {
            Value::Object(map) => match map.get_mut(token) {
                Some(child) => child,
                None => return false,
            },
            Value::Array(items) => match index_of(token, items.len()) {
                Some(i) => &mut items[i],
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Value::Object(map) => map.remove(last).is_some(),
        Value::Array(items) => match index_of(last, items.len()) {
            Some(i) => {
                items.remove(i);
                true
            }
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(paths: &[&str], target: Option<Value>) -> IgnoreRule {
        IgnoreRule::compile(&DriftIgnoreRule {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            target: target.map(|t| serde_json::from_value(t).unwrap()),
        })
        .unwrap()
    }

    fn deployment(replicas: i64, labels: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "labels": labels},
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}
            }
        })
    }

    #[test]
    fn an_ignored_field_takes_the_live_value_and_the_rest_stays_desired() {
        let rules = [rule(
            &["/spec/replicas"],
            Some(json!({"kind": "Deployment"})),
        )];
        let mut desired = deployment(2, json!({}));
        desired["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
        let live = deployment(5, json!({}));
        assert!(keep_live_values(&rules, &mut desired, &live));
        assert_eq!(desired["spec"]["replicas"], json!(5));
        assert_eq!(
            desired["spec"]["template"]["spec"]["containers"][0]["image"],
            json!("web:2")
        );
        // Already equal: nothing to change.
        assert!(!keep_live_values(&rules, &mut desired, &live));
    }

    #[test]
    fn a_field_the_live_object_lacks_is_left_out() {
        let rules = [rule(&["/metadata/annotations/example.com~1injected"], None)];
        let mut desired = deployment(1, json!({}));
        desired["metadata"]["annotations"] = json!({"example.com/injected": "from-git", "a": "b"});
        let live = deployment(1, json!({}));
        assert!(keep_live_values(&rules, &mut desired, &live));
        assert_eq!(desired["metadata"]["annotations"], json!({"a": "b"}));

        // And one the desired object lacks is added with the live value.
        let mut live = deployment(1, json!({}));
        live["metadata"]["annotations"] = json!({"example.com/injected": "by-webhook"});
        let mut desired = deployment(1, json!({}));
        assert!(keep_live_values(&rules, &mut desired, &live));
        assert_eq!(
            desired["metadata"]["annotations"]["example.com/injected"],
            json!("by-webhook")
        );
    }

    #[test]
    fn targets_match_by_kind_name_namespace_and_labels() {
        let live = deployment(5, json!({"autoscaled": "true"}));
        let cases = [
            (json!({"kind": "StatefulSet"}), false),
            (
                json!({"kind": "Deploy.*", "group": "apps", "version": "v1"}),
                true,
            ),
            (json!({"group": "batch"}), false),
            (json!({"name": "web", "namespace": "apps"}), true),
            (json!({"name": "api"}), false),
            (json!({"labelSelector": "autoscaled=true"}), true),
            (json!({"labelSelector": "autoscaled in (false)"}), false),
            (json!({"annotationSelector": "!paused"}), true),
        ];
        for (target, applies) in cases {
            let rules = [rule(&["/spec/replicas"], Some(target.clone()))];
            let mut desired = deployment(2, json!({"autoscaled": "true"}));
            keep_live_values(&rules, &mut desired, &live);
            let expected = if applies { 5 } else { 2 };
            assert_eq!(desired["spec"]["replicas"], json!(expected), "{target}");
        }
    }

    #[test]
    fn array_elements_are_addressed_by_index_and_never_created() {
        let rules = [rule(
            &["/spec/template/spec/containers/0/image", "/spec/items/3"],
            None,
        )];
        let mut desired = deployment(1, json!({}));
        let mut live = deployment(1, json!({}));
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:pinned");
        keep_live_values(&rules, &mut desired, &live);
        assert_eq!(
            desired["spec"]["template"]["spec"]["containers"][0]["image"],
            json!("web:pinned")
        );
        assert!(desired["spec"].get("items").is_none());
    }

    #[test]
    fn bad_rules_are_refused_with_the_offender() {
        let compile = |paths: &[&str], target: Option<Value>| {
            IgnoreRule::compile_all(&[DriftIgnoreRule {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                target: target.map(|t| serde_json::from_value(t).unwrap()),
            }])
            .unwrap_err()
        };
        assert!(compile(&["spec/replicas"], None).contains("must start with '/'"));
        assert!(compile(&["/a~2b"], None).contains("invalid escape"));
        assert!(compile(&[], None).contains("paths must not be empty"));
        let err = compile(&["/spec"], Some(json!({"kind": "Deploy("})));
        assert!(
            err.starts_with("spec.driftIgnoreRules[0]: target.kind"),
            "{err}"
        );
        let err = compile(&["/spec"], Some(json!({"labelSelector": "a in"})));
        assert!(err.contains("target.labelSelector"), "{err}");
    }
}
