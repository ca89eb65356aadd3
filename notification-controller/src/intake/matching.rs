//! Which Alerts an event goes to: Flux's rules, on Alerts compiled once per change.
//!
//! An Alert takes an event when it is not suspended and
//!
//! 1. one of its `eventSources` matches the involved object: same kind; same namespace (the
//!    Alert's when the source has none, any with `*`); same name or `*`; the event's severity
//!    is the Alert's, or the Alert's is `info`; and, when the source has `matchLabels`, the
//!    object carries every one of those labels;
//! 2. the message matches one `inclusionList` regex (when there is one);
//! 3. the message matches no `exclusionList` regex (exclusion wins).
//!
//! A regex that does not compile never matches (an invalid inclusion admits nothing through
//! it, an invalid exclusion excludes nothing); the Alert reconciler reports it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Resource, ResourceExt};
use regex::Regex;
use toolkit_sdk::events::{EventSeverity, FluxEvent};

use crate::api::v1beta3::{Alert, CrossNamespaceObjectReference};

/// An Alert prepared for matching: regexes compiled, references resolved.
#[derive(Debug)]
pub struct CompiledAlert {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion` it was compiled from.
    pub resource_version: String,
    /// A reference to the Alert, for Kubernetes Events about it.
    pub object_ref: ObjectReference,
    /// `spec.providerRef.name`.
    pub provider_name: String,
    /// `spec.eventSeverity`.
    pub severity: EventSeverity,
    /// `spec.eventSources`.
    pub sources: Vec<CrossNamespaceObjectReference>,
    /// `spec.inclusionList`, compiled; `None` for a pattern that does not compile.
    pub inclusion: Vec<Option<Regex>>,
    /// `spec.exclusionList`, compiled; `None` for a pattern that does not compile.
    pub exclusion: Vec<Option<Regex>>,
    /// `spec.eventMetadata`.
    pub event_metadata: BTreeMap<String, String>,
    /// `spec.summary`.
    pub summary: String,
    /// `spec.suspend`.
    pub suspended: bool,
}

/// Whether an Alert's sources match an event.
#[derive(Debug, PartialEq, Eq)]
pub enum SourceMatch<'a> {
    /// No source matches.
    No,
    /// A source without `matchLabels` matches.
    Yes,
    /// Only sources with `matchLabels` match by kind, namespace, name and severity: the object
    /// must carry all labels of one of these.
    IfLabels(Vec<&'a BTreeMap<String, String>>),
}

impl CompiledAlert {
    /// Compiles `alert`.
    pub fn compile(alert: &Alert) -> Self {
        let compile = |patterns: &[String]| {
            patterns
                .iter()
                .map(|p| Regex::new(p).ok())
                .collect::<Vec<_>>()
        };
        Self {
            namespace: alert.namespace().unwrap_or_default(),
            name: alert.name_any(),
            resource_version: alert.resource_version().unwrap_or_default(),
            object_ref: alert.object_ref(&()),
            provider_name: alert.spec.provider_ref.name.clone(),
            severity: alert.spec.event_severity,
            sources: alert.spec.event_sources.clone(),
            inclusion: compile(&alert.spec.inclusion_list),
            exclusion: compile(&alert.spec.exclusion_list),
            event_metadata: alert.spec.event_metadata.clone(),
            summary: alert.spec.summary.clone(),
            suspended: alert.spec.suspend,
        }
    }

    /// Whether the sources of this Alert match the event (rule 1 without the labels).
    pub fn source_match(&self, event: &FluxEvent) -> SourceMatch<'_> {
        let object = &event.involved_object;
        let kind = object.kind.as_deref().unwrap_or_default();
        let namespace = object.namespace.as_deref().unwrap_or_default();
        let name = object.name.as_deref().unwrap_or_default();
        if event.severity != self.severity && self.severity != EventSeverity::Info {
            return SourceMatch::No;
        }
        let mut with_labels = Vec::new();
        for source in &self.sources {
            let source_namespace = if source.namespace.is_empty() {
                self.namespace.as_str()
            } else {
                source.namespace.as_str()
            };
            if source.kind != kind
                || (source_namespace != "*" && source_namespace != namespace)
                || (source.name != "*" && source.name != name)
            {
                continue;
            }
            match &source.match_labels {
                Some(labels) if !labels.is_empty() => with_labels.push(labels),
                _ => return SourceMatch::Yes,
            }
        }
        if with_labels.is_empty() {
            SourceMatch::No
        } else {
            SourceMatch::IfLabels(with_labels)
        }
    }

    /// Whether the message passes `inclusionList` and `exclusionList` (rules 2 and 3).
    pub fn message_allowed(&self, message: &str) -> bool {
        let included = self.inclusion.is_empty()
            || self
                .inclusion
                .iter()
                .flatten()
                .any(|re| re.is_match(message));
        included
            && !self
                .exclusion
                .iter()
                .flatten()
                .any(|re| re.is_match(message))
    }

    /// `namespace/name`, for logs and messages.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Whether `labels` carry every pair of `required`.
pub fn labels_match(
    required: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    required
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(spec: serde_json::Value) -> CompiledAlert {
        let alert: Alert = serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
            "kind": "Alert",
            "metadata": {"name": "a", "namespace": "apps", "resourceVersion": "1"},
            "spec": spec
        }))
        .unwrap();
        CompiledAlert::compile(&alert)
    }

    fn event(kind: &str, namespace: &str, name: &str, severity: &str, message: &str) -> FluxEvent {
        serde_json::from_value(json!({
            "involvedObject": {"kind": kind, "namespace": namespace, "name": name},
            "severity": severity,
            "timestamp": "2026-01-02T03:04:05Z",
            "message": message,
            "reason": "Any",
            "reportingController": "test"
        }))
        .unwrap()
    }

    #[test]
    fn sources_match_by_kind_namespace_name_and_severity() {
        let a = alert(json!({
            "providerRef": {"name": "p"},
            "eventSources": [
                {"kind": "Kustomization", "name": "webapp"},
                {"kind": "GitRepository", "name": "*", "namespace": "flux-system"},
                {"kind": "HelmRelease", "name": "*", "namespace": "*"}
            ]
        }));
        let cases = [
            (event("Kustomization", "apps", "webapp", "info", "m"), true),
            (event("Kustomization", "apps", "webapp", "error", "m"), true),
            (event("Kustomization", "apps", "other", "info", "m"), false),
            (
                event("Kustomization", "other", "webapp", "info", "m"),
                false,
            ),
            (
                event("GitRepository", "flux-system", "any", "info", "m"),
                true,
            ),
            (event("GitRepository", "apps", "any", "info", "m"), false),
            (event("HelmRelease", "anywhere", "x", "info", "m"), true),
            (event("Bucket", "apps", "webapp", "info", "m"), false),
        ];
        for (e, want) in cases {
            let got = a.source_match(&e) == SourceMatch::Yes;
            assert_eq!(got, want, "{:?}", e.involved_object);
        }

        let errors_only = alert(json!({
            "providerRef": {"name": "p"},
            "eventSeverity": "error",
            "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }));
        assert_eq!(
            errors_only.source_match(&event("Kustomization", "apps", "x", "info", "m")),
            SourceMatch::No
        );
        assert_eq!(
            errors_only.source_match(&event("Kustomization", "apps", "x", "error", "m")),
            SourceMatch::Yes
        );
    }

    #[test]
    fn match_labels_are_left_to_the_caller() {
        let a = alert(json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "Kustomization", "name": "*", "matchLabels": {"team": "a"}}]
        }));
        let e = event("Kustomization", "apps", "x", "info", "m");
        let SourceMatch::IfLabels(required) = a.source_match(&e) else {
            panic!("labels expected");
        };
        let ok: BTreeMap<String, String> = [
            ("team".to_owned(), "a".to_owned()),
            ("x".to_owned(), "y".to_owned()),
        ]
        .into();
        let wrong: BTreeMap<String, String> = [("team".to_owned(), "b".to_owned())].into();
        assert!(labels_match(required[0], &ok));
        assert!(!labels_match(required[0], &wrong));
        assert!(!labels_match(required[0], &BTreeMap::new()));
    }

    #[test]
    fn exclusion_wins_over_inclusion_and_bad_patterns_match_nothing() {
        let a = alert(json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
            "inclusionList": ["^Applied", "(unclosed"],
            "exclusionList": ["podinfo", "[bad"]
        }));
        assert!(a.message_allowed("Applied revision main"));
        assert!(!a.message_allowed("Applied podinfo"));
        assert!(!a.message_allowed("Health check failed"));

        let no_lists = alert(json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }));
        assert!(no_lists.message_allowed("anything"));

        let only_bad_inclusion = alert(json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
            "inclusionList": ["(unclosed"]
        }));
        assert!(!only_bad_inclusion.message_allowed("anything"));
    }
}
