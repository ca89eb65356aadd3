//! Rewriting name references after renames.
//!
//! For every referent kind of the config's `nameReference` list, each field of a referrer that
//! holds such a name (a ConfigMap name in a Deployment's volumes, a ServiceAccount in a
//! RoleBinding's subjects, ...) is matched against the objects whose *previous* names include
//! that value, and rewritten to the object's current name (and, for `{name, namespace}`
//! mappings such as binding subjects or webhook services, its namespace).
//!
//! How a referent is chosen, as kustomize does it:
//! - only objects the referrer can see: in the referrer's (effective) namespace, cluster-scoped
//!   ones, and for a RoleBinding the namespaces of its ServiceAccount subjects (everything,
//!   for a cluster-scoped referrer);
//! - for a mapping with a `namespace`, objects originally in that namespace (or, when there
//!   are none, currently in it);
//! - a previous name equal to the value, a previous kind the backreference names, the kind and
//!   group in `roleRef` for `roleRef/name` fields, and the referrer's current namespace (unless
//!   the candidate is cluster-scoped or a ServiceAccount);
//! - among several, those whose recorded name prefixes and suffixes end like the referrer's;
//! - several left that are not interchangeable is an error.
//!
//! Call it once, after every rename of the whole build (all levels, generator hashes).

use std::collections::{HashMap, HashSet};

use serde_yaml::Value;

use super::Error;
use super::config::TransformerConfig;
use super::fieldspec::{FieldSpec, Gvk, selects, walk};
use super::scope::is_cluster_scoped;
use super::tracking::{
    CLUSTER_MARKER, effective_namespace, name_prefixes, name_suffixes, previous_ids,
    recorded_effective_namespace,
};
use crate::resource::{ResId, Resource};

/// What the rewriting needs to know about each object, read once before any change.
struct Info {
    current: ResId,
    cluster_scoped: bool,
    /// Effective current namespace (`default` when unset, the marker when cluster-scoped).
    namespace_eff: String,
    /// `metadata.namespace` as written (empty when unset).
    namespace_raw: String,
    previous: Vec<ResId>,
    /// Effective namespace of the original identity; `None` for cluster-scoped objects.
    original_namespace_eff: Option<String>,
    /// Group, version, kind of the original identity.
    original_gvk: (String, String, String),
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    /// For RoleBindings: namespaces of ServiceAccount subjects.
    binding_namespaces: HashSet<String>,
    /// `roleRef.apiGroup` and `roleRef.kind`, when both are present.
    role_ref: Option<(String, String)>,
}

impl Info {
    fn of(resource: &Resource) -> Self {
        let current = resource.id();
        let api_version = resource.api_version();
        let cluster_scoped = is_cluster_scoped(api_version, &current.kind);
        let namespace_eff =
            effective_namespace(api_version, &current.kind, current.namespace.as_deref())
                .to_string();
        let previous = previous_ids(resource);
        let (original_namespace_eff, original_gvk) = match previous.first() {
            Some(first) => {
                let ns = recorded_effective_namespace(first);
                (
                    (ns != CLUSTER_MARKER).then(|| ns.to_string()),
                    (
                        first.group.clone(),
                        first.version.clone(),
                        first.kind.clone(),
                    ),
                )
            }
            None => (
                (!cluster_scoped).then(|| namespace_eff.clone()),
                (
                    current.group.clone(),
                    current.version.clone(),
                    current.kind.clone(),
                ),
            ),
        };
        let mut binding_namespaces = HashSet::new();
        if current.kind == "RoleBinding"
            && let Some(Value::Sequence(subjects)) = resource.value.get("subjects")
        {
            for subject in subjects {
                if subject.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                    && let Some(ns) = subject.get("namespace").and_then(Value::as_str)
                {
                    binding_namespaces.insert(ns.to_string());
                }
            }
        }
        let role_ref = resource.value.get("roleRef").and_then(|r| {
            let group = super::fieldspec::scalar_text(r.get("apiGroup")?)?;
            let kind = super::fieldspec::scalar_text(r.get("kind")?)?;
            Some((group, kind))
        });
        Info {
            namespace_raw: current.namespace.clone().unwrap_or_default(),
            current,
            cluster_scoped,
            namespace_eff,
            previous,
            original_namespace_eff,
            original_gvk,
            prefixes: name_prefixes(resource),
            suffixes: name_suffixes(resource),
            binding_namespaces,
            role_ref,
        }
    }

    /// Whether `self` (a referrer) can refer to `target` at all.
    fn can_see(&self, target: &Info) -> bool {
        self.cluster_scoped
            || target.cluster_scoped
            || target.namespace_eff == self.namespace_eff
            || self.binding_namespaces.contains(&target.namespace_raw)
    }
}

/// One field to fix in one referrer.
struct Task<'a> {
    spec: &'a FieldSpec,
    target: &'a Gvk,
}

/// Rewrites every name reference of the config's `nameReference` list to the current names of
/// the objects referred to (see the module docs for how a referent is chosen).
///
/// Call it once for the whole build, after all renames (prefixes, suffixes and namespaces of
/// every level, and generator hash suffixes).
///
/// # Errors
///
/// [`Error::AmbiguousReference`] when a reference matches several objects that differ, and
/// [`Error::Field`] when a reference field cannot be walked or holds something that is neither
/// a name nor a `{name, namespace}` mapping.
pub fn fix_name_references(
    resources: &mut [Resource],
    config: &TransformerConfig,
) -> Result<(), Error> {
    let infos: Vec<Info> = resources.iter().map(Info::of).collect();

    // Objects by previous name, in build order.
    let mut by_previous_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, info) in infos.iter().enumerate() {
        let mut seen: HashSet<&str> = HashSet::new();
        for id in &info.previous {
            if seen.insert(id.name.as_str()) {
                by_previous_name
                    .entry(id.name.as_str())
                    .or_default()
                    .push(i);
            }
        }
    }

    // Which fields of which referrers may need a fix.
    let mut tasks: Vec<Vec<Task<'_>>> = (0..resources.len()).map(|_| Vec::new()).collect();
    for backref in &config.name_reference {
        for spec in &backref.referrers {
            for (i, info) in infos.iter().enumerate() {
                let (group, version, kind) = &info.original_gvk;
                if selects(&spec.gvk, group, version, kind) {
                    tasks[i].push(Task {
                        spec,
                        target: &backref.gvk,
                    });
                }
            }
        }
    }

    for (i, resource) in resources.iter_mut().enumerate() {
        let referrer = &infos[i];
        for task in &tasks[i] {
            let fixer = Fixer {
                infos: &infos,
                by_previous_name: &by_previous_name,
                referrer,
                task,
            };
            // The referrer's own kind was checked above; walk the path only.
            let spec = FieldSpec {
                gvk: Gvk::default(),
                path: task.spec.path.clone(),
                create: false,
            };
            let mut outcome: Result<(), Error> = Ok(());
            let walked = walk(
                &mut resource.value,
                &spec,
                None,
                &mut |node: &mut Value| match fixer.set(node) {
                    Ok(()) => Ok(()),
                    Err(Fault::Ambiguous(e)) => {
                        outcome = Err(e);
                        Err("ambiguous reference".to_string())
                    }
                    Err(Fault::Field(reason)) => Err(reason),
                },
            );
            outcome?;
            walked.map_err(|e| Error::Field {
                transformer: "nameReference",
                path: task.spec.path.clone(),
                id: Box::new(referrer.current.clone()),
                reason: e.0,
            })?;
        }
    }
    Ok(())
}

enum Fault {
    Ambiguous(Error),
    Field(String),
}

struct Fixer<'a> {
    infos: &'a [Info],
    by_previous_name: &'a HashMap<&'a str, Vec<usize>>,
    referrer: &'a Info,
    task: &'a Task<'a>,
}

impl Fixer<'_> {
    fn set(&self, node: &mut Value) -> Result<(), Fault> {
        match node {
            Value::Null => Ok(()),
            Value::Mapping(_) => self.set_mapping(node),
            Value::Sequence(items) => {
                for item in items.iter_mut() {
                    match item {
                        Value::Null => {}
                        Value::Mapping(_) => self.set_mapping(item)?,
                        Value::Sequence(_) => {
                            return Err(Fault::Field(
                                "expected a name or a map of strings in the list".to_string(),
                            ));
                        }
                        _ => self.set_scalar(item)?,
                    }
                }
                Ok(())
            }
            Value::Tagged(tagged) => self.set(&mut tagged.value),
            _ => self.set_scalar(node),
        }
    }

    fn set_scalar(&self, node: &mut Value) -> Result<(), Fault> {
        let Some(old) = super::fieldspec::scalar_text(node) else {
            return Ok(());
        };
        let candidates = self.visible_with_previous_name(&old, None);
        let Some(referral) = self.select(&old, candidates, false)? else {
            return Ok(());
        };
        let new = &self.infos[referral].current.name;
        if *new != old {
            *node = Value::String(new.clone());
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Value) -> Result<(), Fault> {
        let Value::Mapping(map) = node else {
            return Ok(());
        };
        let Some(old) = map.get("name") else {
            return Err(Fault::Field(
                "path config error; no 'name' field in node".to_string(),
            ));
        };
        let old = super::fieldspec::scalar_text(old).unwrap_or_default();
        let namespace = map
            .get("namespace")
            .map(|ns| super::fieldspec::scalar_text(ns).unwrap_or_default());
        let candidates = self.visible_with_previous_name(&old, namespace.as_deref());
        let Some(referral) = self.select(&old, candidates, true)? else {
            return Ok(());
        };
        let info = &self.infos[referral];
        if info.current.name == old && info.namespace_raw.is_empty() {
            return Ok(());
        }
        map.insert(Value::from("name"), Value::from(info.current.name.as_str()));
        if !info.namespace_raw.is_empty() {
            map.insert(
                Value::from("namespace"),
                Value::from(info.namespace_raw.as_str()),
            );
        }
        Ok(())
    }

    /// Objects the referrer can see (restricted to a namespace when the reference names one)
    /// that once had the name `old`, in build order.
    fn visible_with_previous_name(&self, old: &str, namespace: Option<&str>) -> Vec<usize> {
        let visible: Vec<usize> = self
            .by_previous_name
            .get(old)
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&j| self.referrer.can_see(&self.infos[j]))
                    .collect()
            })
            .unwrap_or_default();
        let Some(namespace) = namespace else {
            return visible;
        };
        // Candidates originally in that namespace if the referrer sees any object originally
        // there at all, else those currently there.
        let any_originally_there = self.infos.iter().any(|t| {
            t.original_namespace_eff.as_deref() == Some(namespace) && self.referrer.can_see(t)
        });
        if any_originally_there {
            visible
                .into_iter()
                .filter(|&j| self.infos[j].original_namespace_eff.as_deref() == Some(namespace))
                .collect()
        } else {
            visible
                .into_iter()
                .filter(|&j| {
                    let t = &self.infos[j];
                    !t.cluster_scoped && t.namespace_eff == namespace
                })
                .collect()
        }
    }

    /// kustomize's choice among candidates (all already share the previous name `old`).
    fn select(
        &self,
        old: &str,
        candidates: Vec<usize>,
        compare_namespaces: bool,
    ) -> Result<Option<usize>, Fault> {
        let target = self.task.target;
        let role_ref = if self.task.spec.path.ends_with("roleRef/name") {
            self.referrer.role_ref.as_ref()
        } else {
            None
        };
        let referrer = self.referrer;
        let mut candidates: Vec<usize> = candidates
            .into_iter()
            .filter(|&j| {
                let t = &self.infos[j];
                t.previous
                    .iter()
                    .any(|id| selects(target, &id.group, &id.version, &id.kind))
            })
            .filter(|&j| {
                role_ref.is_none_or(|(group, kind)| {
                    let selector = Gvk {
                        group: group.clone(),
                        version: String::new(),
                        kind: kind.clone(),
                    };
                    self.infos[j]
                        .previous
                        .iter()
                        .any(|id| selects(&selector, &id.group, &id.version, &id.kind))
                })
            })
            .filter(|&j| {
                let t = &self.infos[j];
                referrer.cluster_scoped
                    || t.cluster_scoped
                    || t.current.kind == "ServiceAccount"
                    || t.namespace_eff == referrer.namespace_eff
            })
            .collect();
        if candidates.len() == 1 {
            return Ok(Some(candidates[0]));
        }
        candidates.retain(|&j| affixes_match(&self.infos[j], referrer, true));
        if candidates.len() > 1 {
            candidates.retain(|&j| affixes_match(&self.infos[j], referrer, false));
        }
        match candidates.len() {
            0 => Ok(None),
            1 => Ok(Some(candidates[0])),
            _ => {
                let first = &self.infos[candidates[0]];
                let interchangeable = candidates.iter().all(|&j| {
                    let t = &self.infos[j];
                    t.current.name == first.current.name
                        && (!compare_namespaces || t.namespace_raw == first.namespace_raw)
                });
                if interchangeable {
                    return Ok(Some(candidates[0]));
                }
                Err(Fault::Ambiguous(Error::AmbiguousReference {
                    name: old.to_string(),
                    path: self.task.spec.path.clone(),
                    referrer: Box::new(referrer.current.clone()),
                    candidates: candidates
                        .iter()
                        .map(|&j| self.infos[j].current.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }))
            }
        }
    }
}

/// Whether the candidate's recorded prefixes and suffixes end like the referrer's (with
/// `allow_empty`, an empty list on either side matches anything).
fn affixes_match(candidate: &Info, referrer: &Info, allow_empty: bool) -> bool {
    let check = |a: &[String], b: &[String]| {
        (allow_empty && (a.is_empty() || b.is_empty())) || same_ending(a, b)
    };
    check(&candidate.prefixes, &referrer.prefixes) && check(&candidate.suffixes, &referrer.suffixes)
}

/// Whether the shorter list equals the end of the longer one (two empty lists match; an empty
/// and a non-empty one do not).
fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.is_empty();
    }
    long.ends_with(short)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transform::tests_support::{assert_same_objects, resources};
    use crate::transform::{
        NamespaceOptions, add_name_prefix, add_name_suffix, record_previous_id, set_namespace,
    };

    fn level(res: &mut [Resource], namespace: &str, prefix: &str, suffix: &str) {
        let config = TransformerConfig::builtin();
        set_namespace(res, namespace, &NamespaceOptions::default(), config).unwrap();
        add_name_prefix(res, prefix, config).unwrap();
        add_name_suffix(res, suffix, config).unwrap();
    }

    // kustomization: {namePrefix: p-, nameSuffix: -s, namespace: ns, resources: [input.yaml]}
    #[test]
    fn every_builtin_reference_follows_prefix_suffix_and_namespace() {
        let mut res = resources(include_str!("testdata/name_reference_basic/input.yaml"));
        level(&mut res, "ns", "p-", "-s");
        fix_name_references(&mut res, TransformerConfig::builtin()).unwrap();
        assert_same_objects(
            &res,
            include_str!("testdata/name_reference_basic/expected.yaml"),
        );
    }

    const BASE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: dep}\nspec:\n  template:\n    spec:\n      volumes:\n      - {name: a, configMap: {name: cm}}\n";

    fn dep(name: &str, namespace: Option<&str>, cm: &str) -> String {
        let ns = namespace
            .map(|n| format!(", namespace: {n}"))
            .unwrap_or_default();
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}{ns}}}\nspec:\n  template:\n    spec:\n      volumes:\n      - {{name: a, configMap: {{name: {cm}}}}}\n"
        )
    }

    // The same base twice under different prefixes: each Deployment keeps its own ConfigMap.
    // a: {namePrefix: a-, resources: [../base]}, b: {namePrefix: b-, ...}, top: [a, b].
    #[test]
    fn prefixes_tell_apart_copies_of_one_base() {
        let mut a = resources(BASE);
        level(&mut a, "", "a-", "");
        let mut b = resources(BASE);
        level(&mut b, "", "b-", "");
        let mut all: Vec<Resource> = a.into_iter().chain(b).collect();
        fix_name_references(&mut all, TransformerConfig::builtin()).unwrap();
        let expected = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a-cm}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: b-cm}}\n---\n{}---\n{}",
            dep("a-dep", None, "a-cm"),
            dep("b-dep", None, "b-cm")
        );
        assert_same_objects(&all, &expected);
    }

    // a: {namespace: ns-x}, b: {namespace: ns-y}, top: {namePrefix: t-, resources: [a, b]}.
    #[test]
    fn namespaces_tell_apart_copies_of_one_base() {
        let mut a = resources(BASE);
        level(&mut a, "ns-x", "", "");
        let mut b = resources(BASE);
        level(&mut b, "ns-y", "", "");
        let mut all: Vec<Resource> = a.into_iter().chain(b).collect();
        level(&mut all, "", "t-", "");
        fix_name_references(&mut all, TransformerConfig::builtin()).unwrap();
        let expected = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: t-cm, namespace: ns-x}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: t-cm, namespace: ns-y}}\n---\n{}---\n{}",
            dep("t-dep", Some("ns-x"), "t-cm"),
            dep("t-dep", Some("ns-y"), "t-cm")
        );
        assert_same_objects(&all, &expected);
    }

    // a: {namePrefix: a-, resources: [../base]}; top: {namePrefix: t-, resources: [a, dep.yaml]}
    // where dep.yaml refers to the ConfigMap by its original, intermediate and final names.
    #[test]
    fn any_earlier_name_of_the_referent_is_recognised() {
        let mut a = resources(BASE);
        level(&mut a, "", "a-", "");
        let top = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: top}\nspec:\n  template:\n    spec:\n      volumes:\n      - {name: a, configMap: {name: a-cm}}\n      - {name: b, configMap: {name: cm}}\n      - {name: c, configMap: {name: t-a-cm}}\n";
        let mut all: Vec<Resource> = a.into_iter().chain(resources(top)).collect();
        level(&mut all, "", "t-", "");
        fix_name_references(&mut all, TransformerConfig::builtin()).unwrap();
        let expected = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: t-a-cm}}\n---\n{}---\n{}",
            dep("t-a-dep", None, "t-a-cm"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: t-top}\nspec:\n  template:\n    spec:\n      volumes:\n      - {name: a, configMap: {name: t-a-cm}}\n      - {name: b, configMap: {name: t-a-cm}}\n      - {name: c, configMap: {name: t-a-cm}}\n"
        );
        assert_same_objects(&all, &expected);
    }

    // base: {configMapGenerator: [{name: cfg, literals: [a=b]}], resources: [dep.yaml]};
    // top: {namePrefix: p-, namespace: prod, resources: [base]}. The hash suffix comes last.
    #[test]
    fn generator_hash_suffixes_are_followed() {
        let mut all = resources(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: b}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: dep}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: x\n        envFrom:\n        - configMapRef: {name: cfg}\n",
        );
        level(&mut all, "prod", "p-", "");
        record_previous_id(&mut all[0]);
        let hashed = format!("{}-4h2mbtbbt6", all[0].name());
        all[0].set_name(&hashed);
        fix_name_references(&mut all, TransformerConfig::builtin()).unwrap();
        assert_same_objects(
            &all,
            "apiVersion: v1\ndata: {a: b}\nkind: ConfigMap\nmetadata: {name: p-cfg-4h2mbtbbt6, namespace: prod}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: p-dep, namespace: prod}\nspec:\n  template:\n    spec:\n      containers:\n      - envFrom:\n        - configMapRef: {name: p-cfg-4h2mbtbbt6}\n        image: x\n        name: c\n",
        );
    }

    // a: {namespace: ns-a, namePrefix: a-}, b: {namespace: ns-b, namePrefix: b-} over a base
    // with ServiceAccount sa; top: {namePrefix: t-, resources: [a, b, crb.yaml]} where the
    // ClusterRoleBinding names subject `sa` without a namespace: kubectl kustomize fails with
    // "found multiple possible referrals".
    #[test]
    fn an_ambiguous_reference_is_an_error() {
        let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n";
        let mut a = resources(sa);
        level(&mut a, "ns-a", "a-", "");
        let mut b = resources(sa);
        level(&mut b, "ns-b", "b-", "");
        let crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: crb}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects:\n- {kind: ServiceAccount, name: sa}\n";
        let mut all: Vec<Resource> = a.into_iter().chain(b).chain(resources(crb)).collect();
        level(&mut all, "", "t-", "");
        let err = fix_name_references(&mut all, TransformerConfig::builtin()).unwrap_err();
        let Error::AmbiguousReference { candidates, .. } = &err else {
            panic!("unexpected error {err}");
        };
        assert!(
            candidates.contains("t-a-sa") && candidates.contains("t-b-sa"),
            "{err}"
        );
    }

    // Objects see only their own namespace (ServiceAccounts and cluster-scoped objects
    // excepted), RoleBindings also their subjects' namespaces, `roleRef` picks by kind, and
    // `{name, namespace}` references follow both. See testdata/name_reference_scopes/README.md.
    #[test]
    fn references_respect_namespaces_and_role_ref_kinds() {
        let mut xx = resources(include_str!("testdata/name_reference_scopes/xx.yaml"));
        level(&mut xx, "ns-x", "x-", "");
        let mut yy = resources(include_str!("testdata/name_reference_scopes/yy.yaml"));
        level(&mut yy, "ns-y", "y-", "");
        let mut all: Vec<Resource> = xx.into_iter().chain(yy).collect();
        fix_name_references(&mut all, TransformerConfig::builtin()).unwrap();
        assert_same_objects(
            &all,
            include_str!("testdata/name_reference_scopes/expected.yaml"),
        );
    }

    #[test]
    fn same_ending_compares_the_outermost_entries() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(same_ending(&s(&[]), &s(&[])));
        assert!(!same_ending(&s(&[]), &s(&["a-"])));
        assert!(same_ending(&s(&["a-", "b-"]), &s(&["b-"])));
        assert!(!same_ending(&s(&["a-", "b-"]), &s(&["a-"])));
    }
}
