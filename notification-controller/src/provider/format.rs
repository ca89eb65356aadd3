//! What every provider derives from an event: the object's names, bare metadata keys, the
//! revision's commit hash, the status description, and a few text formats.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use toolkit_sdk::events::{EventSeverity, FluxEvent};

/// The event group of Flux (`event.toolkit.fluxcd.io`): metadata under it is read bare too.
const EVENT_GROUP: &str = "event.toolkit.fluxcd.io";

/// The `Progressing` reason: commit-status and some alerting types skip these events.
pub(super) const PROGRESSING: &str = "Progressing";

/// An event as notifiers see it: the original, plus metadata with bare keys.
pub(super) struct Event<'a> {
    pub(super) raw: &'a FluxEvent,
    /// Metadata with the involved object's group (and Flux's event group) stripped from the
    /// keys, and the internal `token` key removed, as Flux hands it to notifiers.
    pub(super) metadata: BTreeMap<String, String>,
}

impl<'a> Event<'a> {
    pub(super) fn new(raw: &'a FluxEvent) -> Self {
        let group = object_group(raw);
        let object_prefix = (!group.is_empty()).then(|| format!("{group}/"));
        let event_prefix = format!("{EVENT_GROUP}/");
        let mut bare = BTreeMap::new();
        let mut from_event_group = BTreeMap::new();
        let mut from_object_group = BTreeMap::new();
        for (key, value) in &raw.metadata {
            if let Some(prefix) = &object_prefix
                && let Some(stripped) = key.strip_prefix(prefix.as_str())
            {
                if stripped != "token" {
                    from_object_group.insert(stripped.to_string(), value.clone());
                }
            } else if let Some(stripped) = key.strip_prefix(event_prefix.as_str()) {
                from_event_group.insert(stripped.to_string(), value.clone());
            } else {
                bare.insert(key.clone(), value.clone());
            }
        }
        // Lowest to highest precedence, as Flux combines them.
        let mut metadata = bare;
        metadata.extend(from_event_group);
        metadata.extend(from_object_group);
        Self { raw, metadata }
    }

    pub(super) fn kind(&self) -> &str {
        self.raw.involved_object.kind.as_deref().unwrap_or_default()
    }

    pub(super) fn name(&self) -> &str {
        self.raw.involved_object.name.as_deref().unwrap_or_default()
    }

    pub(super) fn namespace(&self) -> &str {
        self.raw
            .involved_object
            .namespace
            .as_deref()
            .unwrap_or_default()
    }

    pub(super) fn uid(&self) -> &str {
        self.raw.involved_object.uid.as_deref().unwrap_or_default()
    }

    pub(super) fn is_error(&self) -> bool {
        self.raw.severity == EventSeverity::Error
    }

    pub(super) fn severity(&self) -> &'static str {
        self.raw.severity.as_str()
    }

    pub(super) fn has_reason(&self, reason: &str) -> bool {
        self.raw.reason == reason
    }

    /// `kustomization/webapp.apps`: the lowercase kind, the name and the namespace.
    pub(super) fn object_name(&self) -> String {
        format!(
            "{}/{}.{}",
            self.kind().to_lowercase(),
            self.name(),
            self.namespace()
        )
    }

    /// Whether the event only signals a commit status update (`commit_status: update`).
    pub(super) fn is_commit_status_update(&self) -> bool {
        self.metadata.get("commit_status").map(String::as_str) == Some("update")
    }

    /// The revision the event is about: `originRevision`, else `revision`.
    pub(super) fn revision(&self) -> Option<&str> {
        self.metadata
            .get("originRevision")
            .or_else(|| self.metadata.get("revision"))
            .map(String::as_str)
            .filter(|r| !r.is_empty())
    }

    /// The event with its metadata keys bare, as JSON (the `generic` payload).
    pub(super) fn to_json(&self) -> serde_json::Value {
        let mut event = self.raw.clone();
        event.metadata = self.metadata.clone();
        serde_json::to_value(&event).unwrap_or(serde_json::Value::Null)
    }

    /// The timestamp as Unix seconds (0 when it cannot be parsed).
    pub(super) fn unix_seconds(&self) -> i64 {
        self.raw
            .timestamp
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .unwrap_or_default()
    }

    /// The timestamp the way Go prints a UTC time: `2025-01-02 03:04:05 +0000 UTC`.
    pub(super) fn go_time(&self) -> String {
        match self.raw.timestamp.parse::<jiff::Timestamp>() {
            Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
            Err(_) => self.raw.timestamp.clone(),
        }
    }

    /// `reconciliation succeeded` for `ReconciliationSucceeded`: the status description.
    pub(super) fn description(&self) -> String {
        split_camel_case(&self.raw.reason).join(" ").to_lowercase()
    }
}

/// The API group of the involved object (`""` for the core group).
fn object_group(event: &FluxEvent) -> &str {
    match event.involved_object.api_version.as_deref() {
        Some(api_version) => api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or_default(),
        None => "",
    }
}

/// The commit status key Flux uses by default: `<kind>/<name>/<first segment of the Provider
/// UID>`, lowercase. One key per object and cluster (each cluster has its own Provider UID),
/// so a commit shows one status per Kustomization, updated in place.
pub fn commit_status_id(provider_uid: &str, event: &FluxEvent) -> String {
    let kind = event.involved_object.kind.as_deref().unwrap_or_default();
    let name = event.involved_object.name.as_deref().unwrap_or_default();
    let uid_prefix = provider_uid.split('-').next().unwrap_or_default();
    format!("{kind}/{name}/{uid_prefix}").to_lowercase()
}

/// The commit hash of a revision: `main@sha1:<hash>`, `sha1:<hash>`, `main/<hash>` or `<hash>`.
pub(super) fn commit_hash(revision: &str) -> Option<&str> {
    let after_at = revision.rsplit_once('@').map_or(revision, |(_, r)| r);
    let hash = match after_at.split_once(':') {
        Some((_algorithm, hash)) => hash,
        None => after_at.rsplit_once('/').map_or(after_at, |(_, h)| h),
    };
    (hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit())).then_some(hash)
}

/// Splits `HealthCheckFailed` into `Health`, `Check`, `Failed` (and `PDFLoader` into `PDF`,
/// `Loader`): runs of one character class, with an upper-case letter that starts a lower-case
/// run moved onto it.
pub(super) fn split_camel_case(text: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in text.chars() {
        let current = class(c);
        match runs.last_mut() {
            Some(run) if current == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = current;
    }
    for i in 0..runs.len().saturating_sub(1) {
        let starts_upper = runs[i].first().is_some_and(|c| c.is_uppercase());
        let next_lower = runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if starts_upper
            && next_lower
            && let Some(moved) = runs[i].pop()
        {
            runs[i + 1].insert(0, moved);
        }
    }
    runs.into_iter()
        .filter(|run| !run.is_empty())
        .map(|run| run.into_iter().collect())
        .collect()
}

/// Escapes the characters Telegram's MarkdownV2 reserves.
pub(super) fn telegram_escape(text: &str) -> String {
    const RESERVED: &str = "\\.-_[]()~>`#+=|{}!*";
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if RESERVED.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Markdown post Flux sends to Zulip: a heading, the object, the message, the metadata.
pub(super) fn markdown_post(event: &Event<'_>) -> String {
    let emoji = if event.is_error() { "⚠️" } else { "ℹ️" };
    let mut metadata = String::new();
    for (key, value) in &event.metadata {
        if key != "change_request" {
            metadata.push_str(&format!("* `{key}`: {value}\n"));
        }
    }
    format!(
        "## Flux Status\n\n{emoji} {}/{}/{}\n\n{}\n\nMetadata:\n{metadata}",
        event.kind(),
        event.namespace(),
        event.name(),
        event.raw.message
    )
}

/// `Basic <base64(username:password)>`.
pub(super) fn basic_auth(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// Lowercase hex SHA-1 of `text` (Bitbucket keys are limited to 40 characters).
pub(super) fn sha1_hex(text: &[u8]) -> String {
    hex::encode(Sha1::digest(text))
}

/// Upper-cases the first letter of every space-separated word (Go's `strings.Title`).
pub(super) fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_word_start = true;
    for c in text.chars() {
        if at_word_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = c.is_whitespace();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn event(metadata: &[(&str, &str)]) -> FluxEvent {
        FluxEvent {
            involved_object: ObjectReference {
                kind: Some("Kustomization".into()),
                name: Some("WebApp".into()),
                namespace: Some("apps".into()),
                api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
                uid: Some("uid-1".into()),
                ..Default::default()
            },
            severity: EventSeverity::Info,
            timestamp: "2025-01-02T03:04:05Z".into(),
            message: "Applied".into(),
            reason: "ReconciliationSucceeded".into(),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: String::new(),
        }
    }

    #[test]
    fn metadata_keys_are_bare_and_the_object_group_wins() {
        let raw = event(&[
            ("kustomize.toolkit.fluxcd.io/revision", "main@sha1:abc1234"),
            ("kustomize.toolkit.fluxcd.io/token", "internal"),
            ("event.toolkit.fluxcd.io/revision", "loses"),
            ("env", "prod"),
            ("other.io/key", "kept"),
        ]);
        let e = Event::new(&raw);
        assert_eq!(e.metadata.get("revision").unwrap(), "main@sha1:abc1234");
        assert_eq!(e.metadata.get("env").unwrap(), "prod");
        assert_eq!(e.metadata.get("other.io/key").unwrap(), "kept");
        assert!(!e.metadata.contains_key("token"));
        assert_eq!(e.revision(), Some("main@sha1:abc1234"));
    }

    #[test]
    fn origin_revision_comes_first() {
        let raw = event(&[
            ("revision", "main@sha1:1111111"),
            ("originRevision", "sha1:2222222"),
        ]);
        assert_eq!(Event::new(&raw).revision(), Some("sha1:2222222"));
    }

    #[test]
    fn commit_hash_from_every_revision_form() {
        let hash = "0123456789abcdef0123456789abcdef01234567";
        for rev in [
            format!("main@sha1:{hash}"),
            format!("refs/pull/1/head@sha1:{hash}"),
            format!("sha1:{hash}"),
            format!("main/{hash}"),
            hash.to_string(),
        ] {
            assert_eq!(commit_hash(&rev), Some(hash), "{rev}");
        }
        assert_eq!(commit_hash("latest@sha256:zzz"), None);
        assert_eq!(commit_hash("v1.0.0"), None);
    }

    #[test]
    fn status_id_and_description_match_flux() {
        let raw = event(&[]);
        assert_eq!(
            commit_status_id("0c9c2e41-d2f9-4f9b-9c41-7d5b4f7a1d2e", &raw),
            "kustomization/webapp/0c9c2e41"
        );
        assert_eq!(Event::new(&raw).description(), "reconciliation succeeded");
        assert_eq!(
            split_camel_case("PDFLoader HealthCheckFailed"),
            ["PDF", "Loader", " ", "Health", "Check", "Failed"]
        );
    }

    #[test]
    fn telegram_escaping_covers_markdown_v2() {
        assert_eq!(
            telegram_escape("a.b-c_d[e](f)!*`#"),
            "a\\.b\\-c\\_d\\[e\\]\\(f\\)\\!\\*\\`\\#"
        );
        assert_eq!(telegram_escape("x\\y"), "x\\\\y");
    }

    #[test]
    fn go_time_and_title_case() {
        let raw = event(&[]);
        assert_eq!(Event::new(&raw).go_time(), "2025-01-02 03:04:05 +0000 UTC");
        assert_eq!(Event::new(&raw).unix_seconds(), 1_735_787_045);
        assert_eq!(
            title_case("reconciliationSucceeded"),
            "ReconciliationSucceeded"
        );
    }
}
