//! What happens to an event payload before it is matched: validation, metadata clean-up, and
//! the key duplicates are recognised by. Pure functions, as Flux's event server does them.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use toolkit_sdk::events::FluxEvent;

/// The API group of Flux events: metadata keys under it (`event.toolkit.fluxcd.io/...`) are set
/// by whoever emits the event and are always kept.
pub const EVENT_GROUP: &str = "event.toolkit.fluxcd.io";

/// Metadata key of the revision an event is about.
pub const REVISION_KEY: &str = "revision";
/// Metadata key of the revision of the origin of an artifact (a source's source).
pub const ORIGIN_REVISION_KEY: &str = "originRevision";
/// Metadata key of a token that makes otherwise identical events distinct; never forwarded.
pub const TOKEN_KEY: &str = "token";
/// Metadata key of an artifact checksum; dropped, notifications do not use it.
pub const CHECKSUM_KEY: &str = "checksum";
/// Metadata key of an artifact digest; dropped, notifications do not use it.
pub const DIGEST_KEY: &str = "digest";

/// Why an event payload was refused (answered `400 Bad Request`).
#[derive(Debug, thiserror::Error)]
pub enum InvalidEvent {
    /// The body is not JSON, or lacks a required field, or a field has the wrong type.
    #[error("invalid event payload")]
    Malformed(#[source] serde_json::Error),
    /// A field that identifies the object is empty.
    #[error("invalid event payload: involvedObject.{0} must not be empty")]
    EmptyField(&'static str),
}

/// Parses and validates an event payload: every field of Flux's `Event` but `metadata` and
/// `reportingInstance` is required, and the involved object needs a kind and a name.
///
/// # Errors
///
/// [`InvalidEvent`] naming what is wrong.
pub fn parse(body: &[u8]) -> Result<FluxEvent, InvalidEvent> {
    let event: FluxEvent = serde_json::from_slice(body).map_err(InvalidEvent::Malformed)?;
    let object = &event.involved_object;
    if object.kind.as_deref().unwrap_or_default().is_empty() {
        return Err(InvalidEvent::EmptyField("kind"));
    }
    if object.name.as_deref().unwrap_or_default().is_empty() {
        return Err(InvalidEvent::EmptyField("name"));
    }
    Ok(event)
}

/// The API group of an `apiVersion` (`kustomize.toolkit.fluxcd.io/v1` gives
/// `kustomize.toolkit.fluxcd.io`, the core `v1` gives the empty string).
pub fn group_of(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or_default()
}

/// The API group of the event's involved object.
pub fn object_group(event: &FluxEvent) -> &str {
    group_of(
        event
            .involved_object
            .api_version
            .as_deref()
            .unwrap_or_default(),
    )
}

/// Keeps only the metadata keys prefixed with [`EVENT_GROUP`] or the object's API group, and
/// drops the object group's `checksum` and `digest` (compared without case), as Flux does.
pub fn clean_metadata(event: &mut FluxEvent) {
    let object_prefix = format!("{}/", object_group(event));
    let event_prefix = format!("{EVENT_GROUP}/");
    let checksum = format!("{object_prefix}{CHECKSUM_KEY}");
    let digest = format!("{object_prefix}{DIGEST_KEY}");
    event.metadata.retain(|key, _| {
        (key.starts_with(&event_prefix) || key.starts_with(&object_prefix))
            && !key.eq_ignore_ascii_case(&checksum)
            && !key.eq_ignore_ascii_case(&digest)
    });
}

/// Removes the internal `token` metadata of the object group, which must not reach a Provider.
/// Call it after [`event_key`].
pub fn remove_internal_metadata(event: &mut FluxEvent) {
    let token = format!("{}/{TOKEN_KEY}", object_group(event));
    event.metadata.remove(&token);
}

/// The identity of an event for duplicate detection, Flux's: the SHA-256 of the involved
/// object's name, namespace and kind, the message, and the object group's `originRevision`,
/// `revision` and `token` metadata when present. Severity and reason are not part of it.
pub fn event_key(event: &FluxEvent) -> [u8; 32] {
    let object = &event.involved_object;
    let group = object_group(event);
    let mut key = String::with_capacity(96 + event.message.len());
    key.push_str("event/name=");
    key.push_str(object.name.as_deref().unwrap_or_default());
    key.push_str("/namespace=");
    key.push_str(object.namespace.as_deref().unwrap_or_default());
    key.push_str("/kind=");
    key.push_str(object.kind.as_deref().unwrap_or_default());
    key.push_str("/message=");
    key.push_str(&event.message);
    for (label, name) in [
        ("originRevision", ORIGIN_REVISION_KEY),
        ("revision", REVISION_KEY),
        ("token", TOKEN_KEY),
    ] {
        if let Some(value) = event.metadata.get(&format!("{group}/{name}")) {
            key.push('/');
            key.push_str(label);
            key.push('=');
            key.push_str(value);
        }
    }
    Sha256::digest(key.as_bytes()).into()
}

/// A metadata key that was set by more than one source while combining (see
/// [`combine_metadata`]); the last source won.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataConflict {
    /// The unprefixed key.
    pub key: String,
    /// The sources that set it, lowest precedence first.
    pub sources: Vec<&'static str>,
}

/// The metadata a Provider receives: unprefixed keys combined, from lowest to highest
/// precedence, from the event's [`EVENT_GROUP`] keys, the Alert's `eventMetadata`, the Alert's
/// `summary` (key `summary`), and the event's object-group keys (Flux RFC 0008). Returns the
/// metadata and the keys set by more than one source.
pub fn combine_metadata(
    event: &FluxEvent,
    alert_metadata: &BTreeMap<String, String>,
    summary: &str,
) -> (BTreeMap<String, String>, Vec<MetadataConflict>) {
    const FROM_EVENT_GROUP: &str = "involved object annotations";
    const FROM_ALERT_METADATA: &str = "Alert object .spec.eventMetadata";
    const FROM_ALERT_SUMMARY: &str = "Alert object .spec.summary";
    const FROM_OBJECT_GROUP: &str = "involved object controller metadata";

    let mut metadata = BTreeMap::new();
    let mut sources: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut set = |key: &str, value: &str, source: &'static str| {
        metadata.insert(key.to_owned(), value.to_owned());
        sources.entry(key.to_owned()).or_default().push(source);
    };
    let event_prefix = format!("{EVENT_GROUP}/");
    for (key, value) in &event.metadata {
        if let Some(key) = key.strip_prefix(&event_prefix) {
            set(key, value, FROM_EVENT_GROUP);
        }
    }
    for (key, value) in alert_metadata {
        set(key, value, FROM_ALERT_METADATA);
    }
    if !summary.is_empty() {
        set("summary", summary, FROM_ALERT_SUMMARY);
    }
    let object_prefix = format!("{}/", object_group(event));
    for (key, value) in &event.metadata {
        if let Some(key) = key.strip_prefix(&object_prefix) {
            set(key, value, FROM_OBJECT_GROUP);
        }
    }
    let conflicts = sources
        .into_iter()
        .filter(|(_, sources)| sources.len() > 1)
        .map(|(key, sources)| MetadataConflict { key, sources })
        .collect();
    (metadata, conflicts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(metadata: serde_json::Value) -> FluxEvent {
        serde_json::from_value(json!({
            "involvedObject": {
                "kind": "Kustomization", "namespace": "apps", "name": "webapp",
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1"
            },
            "severity": "info",
            "timestamp": "2026-01-02T03:04:05Z",
            "message": "Applied revision: main@sha1:0123",
            "reason": "ReconciliationSucceeded",
            "metadata": metadata,
            "reportingController": "kustomize-controller"
        }))
        .unwrap()
    }

    #[test]
    fn parse_accepts_flux_payloads_and_names_missing_fields() {
        let body = serde_json::to_vec(&event(json!({}))).unwrap();
        let parsed = parse(&body).unwrap();
        assert_eq!(parsed.reason, "ReconciliationSucceeded");
        assert_eq!(parsed.reporting_instance, "");

        let err = parse(b"{not json").unwrap_err();
        assert!(matches!(err, InvalidEvent::Malformed(_)), "{err}");

        let mut value = serde_json::to_value(event(json!({}))).unwrap();
        value.as_object_mut().unwrap().remove("reason");
        let err = parse(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("missing field `reason`"), "{source}");

        let mut value = serde_json::to_value(event(json!({}))).unwrap();
        value["severity"] = json!("fatal");
        assert!(parse(&serde_json::to_vec(&value).unwrap()).is_err());

        let mut value = serde_json::to_value(event(json!({}))).unwrap();
        value["involvedObject"]["name"] = json!("");
        let err = parse(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid event payload: involvedObject.name must not be empty"
        );
    }

    #[test]
    fn clean_metadata_keeps_the_two_groups_without_checksum_and_digest() {
        let mut e = event(json!({
            "kustomize.toolkit.fluxcd.io/revision": "main@sha1:0123",
            "kustomize.toolkit.fluxcd.io/Digest": "sha256:aa",
            "kustomize.toolkit.fluxcd.io/checksum": "aa",
            "event.toolkit.fluxcd.io/env": "prod",
            "source.toolkit.fluxcd.io/revision": "other",
            "plain": "x"
        }));
        clean_metadata(&mut e);
        assert_eq!(
            e.metadata.keys().collect::<Vec<_>>(),
            [
                "event.toolkit.fluxcd.io/env",
                "kustomize.toolkit.fluxcd.io/revision"
            ]
        );
    }

    #[test]
    fn key_ignores_severity_and_reason_but_not_revision_or_token() {
        let base = event(json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:1"}));
        let mut other_reason = base.clone();
        other_reason.reason = "Progressing".into();
        other_reason.severity = toolkit_sdk::events::EventSeverity::Error;
        assert_eq!(event_key(&base), event_key(&other_reason));

        let other_revision = event(json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:2"}));
        assert_ne!(event_key(&base), event_key(&other_revision));

        let with_token = event(json!({
            "kustomize.toolkit.fluxcd.io/revision": "main@sha1:1",
            "kustomize.toolkit.fluxcd.io/token": "t1"
        }));
        assert_ne!(event_key(&base), event_key(&with_token));

        let mut other_message = base.clone();
        other_message.message.push('!');
        assert_ne!(event_key(&base), event_key(&other_message));

        let mut other_object = base.clone();
        other_object.involved_object.namespace = Some("other".into());
        assert_ne!(event_key(&base), event_key(&other_object));
    }

    #[test]
    fn token_is_removed_before_forwarding() {
        let mut e = event(json!({
            "kustomize.toolkit.fluxcd.io/token": "t1",
            "kustomize.toolkit.fluxcd.io/revision": "r"
        }));
        remove_internal_metadata(&mut e);
        assert_eq!(
            e.metadata.keys().collect::<Vec<_>>(),
            ["kustomize.toolkit.fluxcd.io/revision"]
        );
    }

    #[test]
    fn metadata_precedence_follows_rfc_0008() {
        let e = event(json!({
            "event.toolkit.fluxcd.io/env": "from-event",
            "event.toolkit.fluxcd.io/team": "a-team",
            "kustomize.toolkit.fluxcd.io/revision": "main@sha1:1",
            "kustomize.toolkit.fluxcd.io/env": "from-object"
        }));
        let alert: BTreeMap<String, String> = [
            ("env".to_owned(), "from-alert".to_owned()),
            ("cluster".to_owned(), "eu-1".to_owned()),
            ("summary".to_owned(), "from-metadata".to_owned()),
        ]
        .into();
        let (metadata, conflicts) = combine_metadata(&e, &alert, "from-summary");
        assert_eq!(
            metadata,
            BTreeMap::from([
                ("cluster".to_owned(), "eu-1".to_owned()),
                ("env".to_owned(), "from-object".to_owned()),
                ("revision".to_owned(), "main@sha1:1".to_owned()),
                ("summary".to_owned(), "from-summary".to_owned()),
                ("team".to_owned(), "a-team".to_owned()),
            ])
        );
        assert_eq!(
            conflicts.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
            ["env", "summary"]
        );
        assert_eq!(conflicts[0].sources.len(), 3);
    }

    #[test]
    fn groups() {
        assert_eq!(
            group_of("kustomize.toolkit.fluxcd.io/v1"),
            "kustomize.toolkit.fluxcd.io"
        );
        assert_eq!(group_of("v1"), "");
    }
}
