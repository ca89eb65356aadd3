//! Authentication and payload checks of a webhook request, one rule per Receiver type.
//!
//! Everything here is a pure function of the Receiver's spec, its Secret's data, the request
//! headers and the body, except the `gcr` type, whose token is checked against Google's
//! signing keys (see [`super::gcr`]).
//!
//! | type | authenticated by | event (filtered by `spec.events`) | body |
//! |---|---|---|---|
//! | `generic` | the secret path only | – | – |
//! | `generic-hmac` | `X-Signature: <algorithm>=<hex HMAC of the body>` (sha1, sha256 or sha512) | – | – |
//! | `github` | `X-Hub-Signature-256` (or `X-Hub-Signature`), HMAC of the body | `X-GitHub-Event`; `ping` is answered without reconciling | – |
//! | `gitlab` | `X-Gitlab-Token` equal to the token | `X-Gitlab-Event` | – |
//! | `bitbucket` | `X-Hub-Signature` (or `X-Hub-Signature-256`), HMAC of the body | `X-Event-Key` | – |
//! | `harbor` | `Authorization` equal to the token | – | – |
//! | `dockerhub` | the secret path only | – | JSON push payload |
//! | `quay` | the secret path only | – | JSON push payload |
//! | `gcr` | `Authorization: Bearer <Google-signed OIDC token>` | – | Pub/Sub push message |
//! | `nexus` | `X-Nexus-Webhook-Signature`: hex HMAC-SHA1 of the body | – | JSON payload |
//! | `acr` | the secret path only | – | JSON push payload |
//! | `cdevents` | the secret path only | `Ce-Type` | a CDEvent |
//!
//! Every secret comparison (signatures, tokens) is constant-time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::api::v1::{ReceiverSpec, ReceiverType};

/// The GitHub event that only checks that the webhook is set up.
pub const GITHUB_PING_EVENT: &str = "ping";

/// A request that passed the checks of its Receiver type.
#[derive(Debug, Clone, PartialEq)]
pub enum Verified {
    /// Reconcile the targets.
    Accept {
        /// The event type the sender declared, if the type has one.
        event: Option<String>,
        /// What the `resourceFilter` sees as `req` instead of the body, for types that wrap
        /// their event (the `gcr` Pub/Sub message is unwrapped).
        payload: Option<Value>,
    },
    /// A GitHub `ping`: answer 200 without reconciling anything.
    Ping,
}

/// Why a request was refused. The text is for the log only; it never holds secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The signature or token is missing or wrong (answered 401).
    #[error("{0}")]
    Unauthorized(String),
    /// The request is malformed or its event is not accepted (answered 400).
    #[error("{0}")]
    BadRequest(String),
    /// The Receiver cannot check requests as configured (answered 500).
    #[error("{0}")]
    Misconfigured(String),
}

/// The data of a Receiver's Secret the checks use.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The `token` key.
    pub token: &'a [u8],
}

/// Checks a request for every type but `gcr` (which needs Google's keys; see
/// [`super::gcr::GoogleTokenVerifier`]).
pub fn verify(
    spec: &ReceiverSpec,
    credentials: Credentials<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, Rejected> {
    let token = credentials.token;
    match spec.type_ {
        ReceiverType::Generic => Ok(accept(None)),
        ReceiverType::GenericHmac => {
            let signature = header(headers, "x-signature")
                .ok_or_else(|| unauthorized("the X-Signature header is missing"))?;
            check_prefixed_hmac(signature, token, body)?;
            Ok(accept(None))
        }
        ReceiverType::GitHub => {
            let signature = header(headers, "x-hub-signature-256")
                .or_else(|| header(headers, "x-hub-signature"))
                .ok_or_else(|| unauthorized("the X-Hub-Signature-256 header is missing"))?;
            check_prefixed_hmac(signature, token, body)?;
            let event = header(headers, "x-github-event").unwrap_or_default();
            if event.eq_ignore_ascii_case(GITHUB_PING_EVENT) {
                return Ok(Verified::Ping);
            }
            filter_event(spec, "GitHub", event)
        }
        ReceiverType::GitLab => {
            let given = header(headers, "x-gitlab-token").unwrap_or_default();
            if !equal(given.as_bytes(), token) {
                return Err(unauthorized(
                    "the X-Gitlab-Token header value does not match the receiver token",
                ));
            }
            filter_event(
                spec,
                "GitLab",
                header(headers, "x-gitlab-event").unwrap_or_default(),
            )
        }
        ReceiverType::Bitbucket => {
            let signature = header(headers, "x-hub-signature-256")
                .or_else(|| header(headers, "x-hub-signature"))
                .ok_or_else(|| unauthorized("the X-Hub-Signature header is missing"))?;
            check_prefixed_hmac(signature, token, body)?;
            filter_event(
                spec,
                "Bitbucket server",
                header(headers, "x-event-key").unwrap_or_default(),
            )
        }
        ReceiverType::Harbor => {
            let given = header(headers, "authorization").unwrap_or_default();
            if !equal(given.as_bytes(), token) {
                return Err(unauthorized(
                    "the Harbor Authorization header value does not match the receiver token",
                ));
            }
            Ok(accept(None))
        }
        ReceiverType::DockerHub => {
            let payload: DockerHubPayload = decode(body, "DockerHub")?;
            tracing::info!(
                repository = %payload.repository.repo_url,
                tag = %payload.push_data.tag,
                "handling DockerHub event"
            );
            Ok(accept(None))
        }
        ReceiverType::Quay => {
            let payload: QuayPayload = decode(body, "Quay")?;
            tracing::info!(repository = %payload.docker_url, tags = ?payload.updated_tags, "handling Quay event");
            Ok(accept(None))
        }
        ReceiverType::Nexus => {
            let signature = header(headers, "x-nexus-webhook-signature")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| unauthorized("the Nexus signature is missing from the header"))?;
            let digest = hex::decode(signature.trim())
                .map_err(|_| unauthorized("invalid Nexus signature"))?;
            hmac_check(HashKind::Sha1, token, body, &digest)
                .map_err(|()| unauthorized("invalid Nexus signature"))?;
            let payload: NexusPayload = decode(body, "Nexus")?;
            tracing::info!(repository = %payload.repository_name, action = %payload.action, "handling Nexus event");
            Ok(accept(None))
        }
        ReceiverType::Acr => {
            let payload: AcrPayload = decode(body, "ACR")?;
            tracing::info!(
                repository = %payload.target.repository,
                tag = %payload.target.tag,
                action = %payload.action,
                "handling ACR event"
            );
            Ok(accept(None))
        }
        ReceiverType::CdEvents => {
            let event = header(headers, "ce-type").unwrap_or_default();
            check_cdevent(body)?;
            filter_event(spec, "CDEvent", event)
        }
        ReceiverType::Gcr => Err(Rejected::BadRequest(
            "gcr requests are checked by the Google token verifier".into(),
        )),
    }
}

/// Unwraps the event of a `gcr` Pub/Sub push message (`message.data`, base64 JSON with
/// `action`, `digest`, `tag`): the JSON the `resourceFilter` sees as `req`.
pub fn unwrap_gcr_payload(body: &[u8]) -> Result<Value, Rejected> {
    #[derive(Deserialize)]
    struct Push {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        data: String,
    }
    #[derive(Deserialize, serde::Serialize)]
    struct Data {
        #[serde(default)]
        action: String,
        #[serde(default)]
        digest: String,
        #[serde(default)]
        tag: String,
    }
    let push: Push = decode(body, "GCR")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(push.message.data.trim())
        .map_err(|_| {
            Rejected::BadRequest("cannot decode GCR webhook body: invalid base64".into())
        })?;
    let data: Data = serde_json::from_slice(&raw)
        .map_err(|e| Rejected::BadRequest(format!("cannot decode GCR webhook body: {e}")))?;
    tracing::info!(digest = %data.digest, tag = %data.tag, action = %data.action, "handling GCR event");
    serde_json::to_value(&data)
        .map_err(|e| Rejected::BadRequest(format!("cannot decode GCR webhook body: {e}")))
}

fn accept(event: Option<String>) -> Verified {
    Verified::Accept {
        event,
        payload: None,
    }
}

fn unauthorized(message: &str) -> Rejected {
    Rejected::Unauthorized(message.to_owned())
}

/// The value of a header, if present and valid text.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Constant-time equality (the length is not secret).
fn equal(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// Accepts `event` if `spec.events` does.
fn filter_event(spec: &ReceiverSpec, sender: &str, event: &str) -> Result<Verified, Rejected> {
    if !spec.accepts_event(event) {
        return Err(Rejected::BadRequest(format!(
            "the {sender} event '{event}' is not authorised"
        )));
    }
    tracing::info!(event, "handling {sender} event");
    Ok(accept(Some(event.to_owned())))
}

/// Checks a `<algorithm>=<hex>` signature (GitHub's format: `sha1`, `sha256` or `sha512`)
/// of `body` keyed with `key`.
pub fn check_prefixed_hmac(signature: &str, key: &[u8], body: &[u8]) -> Result<(), Rejected> {
    let (algorithm, hex_digest) = signature
        .trim()
        .split_once('=')
        .ok_or_else(|| unauthorized("the signature is not of the form <algorithm>=<hex>"))?;
    let digest =
        hex::decode(hex_digest).map_err(|_| unauthorized("the signature is not hexadecimal"))?;
    let checked = match algorithm {
        "sha1" => hmac_check(HashKind::Sha1, key, body, &digest),
        "sha256" => hmac_check(HashKind::Sha256, key, body, &digest),
        "sha512" => hmac_check(HashKind::Sha512, key, body, &digest),
        _ => {
            return Err(Rejected::Unauthorized(format!(
                "unsupported signature algorithm '{algorithm}'"
            )));
        }
    };
    checked.map_err(|()| unauthorized("the payload signature does not match"))
}

/// The hash functions of HMAC signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashKind {
    Sha1,
    Sha256,
    Sha512,
}

/// Verifies an HMAC in constant time.
fn hmac_check(kind: HashKind, key: &[u8], body: &[u8], expected: &[u8]) -> Result<(), ()> {
    macro_rules! check {
        ($digest:ty) => {{
            let mut mac = <Hmac<$digest> as Mac>::new_from_slice(key).map_err(|_| ())?;
            mac.update(body);
            mac.verify_slice(expected).map_err(|_| ())
        }};
    }
    match kind {
        HashKind::Sha1 => check!(sha1::Sha1),
        HashKind::Sha256 => check!(sha2::Sha256),
        HashKind::Sha512 => check!(sha2::Sha512),
    }
}

/// Decodes a JSON payload, or says which sender's payload is malformed.
fn decode<'a, T: Deserialize<'a>>(body: &'a [u8], sender: &str) -> Result<T, Rejected> {
    serde_json::from_slice(body)
        .map_err(|e| Rejected::BadRequest(format!("cannot decode {sender} webhook payload: {e}")))
}

#[derive(Deserialize)]
struct DockerHubPayload {
    #[serde(default)]
    push_data: DockerHubPush,
    #[serde(default)]
    repository: DockerHubRepository,
}

#[derive(Deserialize, Default)]
struct DockerHubPush {
    #[serde(default)]
    tag: String,
}

#[derive(Deserialize, Default)]
struct DockerHubRepository {
    #[serde(default)]
    repo_url: String,
}

#[derive(Deserialize)]
struct QuayPayload {
    #[serde(default)]
    docker_url: String,
    #[serde(default)]
    updated_tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NexusPayload {
    #[serde(default)]
    action: String,
    #[serde(default)]
    repository_name: String,
}

#[derive(Deserialize)]
struct AcrPayload {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: AcrTarget,
}

#[derive(Deserialize, Default)]
struct AcrTarget {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: String,
}

/// Checks that the body is a CDEvent: a JSON object with a `context` (`id`, `source`,
/// `type` of the form `dev.cdevents.<subject>.<predicate>.<version>`, `version`,
/// `timestamp`) and a `subject` object.
fn check_cdevent(body: &[u8]) -> Result<(), Rejected> {
    let invalid = |what: &str| Rejected::BadRequest(format!("unable to validate CDEvent: {what}"));
    let event: Value =
        serde_json::from_slice(body).map_err(|e| invalid(&format!("not JSON: {e}")))?;
    let context = event
        .get("context")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the 'context' object is missing"))?;
    for field in ["id", "source", "type", "version", "timestamp"] {
        match context.get(field).and_then(Value::as_str) {
            Some(v) if !v.is_empty() => {}
            _ => return Err(invalid(&format!("'context.{field}' is missing or empty"))),
        }
    }
    let type_ = context
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !type_.starts_with("dev.cdevents.") || type_.split('.').count() < 5 {
        return Err(invalid(&format!("'{type_}' is not a CDEvents type")));
    }
    if !event.get("subject").is_some_and(Value::is_object) {
        return Err(invalid("the 'subject' object is missing"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;
    use toolkit_sdk::api::LocalObjectReference;

    const TOKEN: &[u8] = b"s3cret";

    fn spec(type_: ReceiverType, events: &[&str]) -> ReceiverSpec {
        ReceiverSpec {
            type_,
            interval: None,
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            resources: vec![],
            resource_filter: None,
            secret_ref: LocalObjectReference {
                name: "token".into(),
            },
            suspend: false,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn sign(kind: HashKind, key: &[u8], body: &[u8]) -> String {
        macro_rules! mac {
            ($digest:ty) => {{
                let mut mac = <Hmac<$digest> as Mac>::new_from_slice(key).unwrap();
                mac.update(body);
                hex::encode(mac.finalize().into_bytes())
            }};
        }
        match kind {
            HashKind::Sha1 => mac!(sha1::Sha1),
            HashKind::Sha256 => mac!(sha2::Sha256),
            HashKind::Sha512 => mac!(sha2::Sha512),
        }
    }

    fn run(
        spec: &ReceiverSpec,
        pairs: &[(&'static str, &str)],
        body: &[u8],
    ) -> Result<Verified, Rejected> {
        verify(spec, Credentials { token: TOKEN }, &headers(pairs), body)
    }

    fn is_unauthorized(r: Result<Verified, Rejected>) -> bool {
        matches!(r, Err(Rejected::Unauthorized(_)))
    }

    fn is_bad_request(r: Result<Verified, Rejected>) -> bool {
        matches!(r, Err(Rejected::BadRequest(_)))
    }

    #[test]
    fn generic_accepts_anything() {
        assert!(run(&spec(ReceiverType::Generic, &[]), &[], b"not json").is_ok());
    }

    #[test]
    fn generic_hmac_accepts_each_algorithm_and_refuses_the_rest() {
        let body = br#"{"hello":"world"}"#;
        let s = spec(ReceiverType::GenericHmac, &[]);
        for signature in [
            format!("sha1={}", sign(HashKind::Sha1, TOKEN, body)),
            format!("sha256={}", sign(HashKind::Sha256, TOKEN, body)),
            format!("sha512={}", sign(HashKind::Sha512, TOKEN, body)),
        ] {
            assert!(
                run(&s, &[("x-signature", &signature)], body).is_ok(),
                "{signature}"
            );
        }
        let wrong_key = format!("sha256={}", sign(HashKind::Sha256, b"other", body));
        let other_body = format!("sha256={}", sign(HashKind::Sha256, TOKEN, b"{}"));
        let md5 = format!("md5={}", sign(HashKind::Sha256, TOKEN, body));
        for signature in [
            wrong_key.as_str(),
            other_body.as_str(),
            md5.as_str(),
            "sha256=zz",
            "sha256",
            "",
        ] {
            assert!(
                is_unauthorized(run(&s, &[("x-signature", signature)], body)),
                "{signature}"
            );
        }
        assert!(is_unauthorized(run(&s, &[], body)));
    }

    #[test]
    fn github_signature_event_filter_and_ping() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig256 = format!("sha256={}", sign(HashKind::Sha256, TOKEN, body));
        let sig1 = format!("sha1={}", sign(HashKind::Sha1, TOKEN, body));
        let s = spec(ReceiverType::GitHub, &["push"]);

        let ok = run(
            &s,
            &[("x-hub-signature-256", &sig256), ("x-github-event", "push")],
            body,
        );
        assert_eq!(
            ok,
            Ok(Verified::Accept {
                event: Some("push".into()),
                payload: None
            })
        );
        // The legacy SHA-1 header is accepted when the SHA-256 one is absent.
        assert!(
            run(
                &s,
                &[("x-hub-signature", &sig1), ("x-github-event", "Push")],
                body
            )
            .is_ok()
        );
        // Ping is answered whatever the event filter says, once the signature is good.
        assert_eq!(
            run(
                &s,
                &[("x-hub-signature-256", &sig256), ("x-github-event", "ping")],
                body
            ),
            Ok(Verified::Ping)
        );
        assert!(is_bad_request(run(
            &s,
            &[
                ("x-hub-signature-256", &sig256),
                ("x-github-event", "issues")
            ],
            body
        )));
        let bad = format!("sha256={}", sign(HashKind::Sha256, b"nope", body));
        assert!(is_unauthorized(run(
            &s,
            &[("x-hub-signature-256", &bad), ("x-github-event", "ping")],
            body
        )));
        assert!(is_unauthorized(run(
            &s,
            &[("x-github-event", "push")],
            body
        )));
    }

    #[test]
    fn gitlab_token_and_events() {
        let s = spec(ReceiverType::GitLab, &["Push Hook"]);
        assert!(
            run(
                &s,
                &[
                    ("x-gitlab-token", "s3cret"),
                    ("x-gitlab-event", "Push Hook")
                ],
                b"{}"
            )
            .is_ok()
        );
        assert!(is_unauthorized(run(
            &s,
            &[("x-gitlab-token", "s3cre"), ("x-gitlab-event", "Push Hook")],
            b"{}"
        )));
        assert!(is_unauthorized(run(
            &s,
            &[("x-gitlab-event", "Push Hook")],
            b"{}"
        )));
        assert!(is_bad_request(run(
            &s,
            &[
                ("x-gitlab-token", "s3cret"),
                ("x-gitlab-event", "Tag Push Hook")
            ],
            b"{}"
        )));
    }

    #[test]
    fn bitbucket_signature_and_event_key() {
        let body = b"{}";
        let sig = format!("sha256={}", sign(HashKind::Sha256, TOKEN, body));
        let s = spec(ReceiverType::Bitbucket, &["repo:refs_changed"]);
        assert!(
            run(
                &s,
                &[
                    ("x-hub-signature", &sig),
                    ("x-event-key", "repo:refs_changed")
                ],
                body
            )
            .is_ok()
        );
        assert!(is_bad_request(run(
            &s,
            &[("x-hub-signature", &sig), ("x-event-key", "pr:opened")],
            body
        )));
        assert!(is_unauthorized(run(
            &s,
            &[("x-event-key", "repo:refs_changed")],
            body
        )));
    }

    #[test]
    fn harbor_authorization_header() {
        let s = spec(ReceiverType::Harbor, &[]);
        assert!(run(&s, &[("authorization", "s3cret")], b"{}").is_ok());
        assert!(is_unauthorized(run(
            &s,
            &[("authorization", "Bearer s3cret")],
            b"{}"
        )));
        assert!(is_unauthorized(run(&s, &[], b"{}")));
    }

    #[test]
    fn registry_payloads_must_be_json() {
        for (type_, good) in [
            (
                ReceiverType::DockerHub,
                json!({"push_data": {"tag": "v1"}, "repository": {"repo_url": "https://hub.docker.com/r/org/app"}}),
            ),
            (
                ReceiverType::Quay,
                json!({"docker_url": "quay.io/org/app", "updated_tags": ["v1"]}),
            ),
            (
                ReceiverType::Acr,
                json!({"action": "push", "target": {"repository": "app", "tag": "v1"}}),
            ),
        ] {
            let s = spec(type_, &[]);
            assert!(run(&s, &[], good.to_string().as_bytes()).is_ok(), "{type_}");
            assert!(is_bad_request(run(&s, &[], b"{not json")), "{type_}");
        }
        // A field of the wrong type is malformed, as with Go's decoder.
        let s = spec(ReceiverType::DockerHub, &[]);
        assert!(is_bad_request(run(
            &s,
            &[],
            br#"{"push_data": {"tag": 1}}"#
        )));
    }

    #[test]
    fn nexus_sha1_signature() {
        let body = br#"{"action":"CREATED","repositoryName":"maven"}"#;
        let s = spec(ReceiverType::Nexus, &[]);
        let sig = sign(HashKind::Sha1, TOKEN, body);
        assert!(run(&s, &[("x-nexus-webhook-signature", &sig)], body).is_ok());
        let bad = sign(HashKind::Sha1, b"x", body);
        assert!(is_unauthorized(run(
            &s,
            &[("x-nexus-webhook-signature", &bad)],
            body
        )));
        assert!(is_unauthorized(run(&s, &[], body)));
        let sig = sign(HashKind::Sha1, TOKEN, b"{oops");
        assert!(is_bad_request(run(
            &s,
            &[("x-nexus-webhook-signature", &sig)],
            b"{oops"
        )));
    }

    #[test]
    fn cdevents_schema_and_type_filter() {
        let event = json!({
            "context": {
                "version": "0.4.1",
                "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
                "source": "/event/source/123",
                "type": "dev.cdevents.change.merged.0.2.0",
                "timestamp": "2023-03-20T14:27:05.315384Z"
            },
            "subject": {"id": "mySubject123", "source": "/event/source/123", "content": {}}
        });
        let s = spec(
            ReceiverType::CdEvents,
            &["dev.cdevents.change.merged.0.2.0"],
        );
        let body = event.to_string();
        assert!(
            run(
                &s,
                &[("ce-type", "dev.cdevents.change.merged.0.2.0")],
                body.as_bytes()
            )
            .is_ok()
        );
        assert!(is_bad_request(run(
            &s,
            &[("ce-type", "dev.cdevents.change.abandoned.0.2.0")],
            body.as_bytes()
        )));
        let mut no_subject = event.clone();
        no_subject.as_object_mut().unwrap().remove("subject");
        assert!(is_bad_request(run(
            &s,
            &[("ce-type", "dev.cdevents.change.merged.0.2.0")],
            no_subject.to_string().as_bytes()
        )));
        let mut wrong_type = event;
        wrong_type["context"]["type"] = json!("com.example.thing");
        assert!(is_bad_request(run(
            &spec(ReceiverType::CdEvents, &[]),
            &[],
            wrong_type.to_string().as_bytes()
        )));
    }

    #[test]
    fn gcr_message_is_unwrapped() {
        let data = base64::engine::general_purpose::STANDARD.encode(
            br#"{"action":"INSERT","digest":"gcr.io/p/app@sha256:ab","tag":"gcr.io/p/app:v1"}"#,
        );
        let body = json!({"message": {"data": data, "messageId": "1"}, "subscription": "s"});
        let req = unwrap_gcr_payload(body.to_string().as_bytes()).unwrap();
        assert_eq!(req["tag"], "gcr.io/p/app:v1");
        assert_eq!(req["action"], "INSERT");
        assert!(unwrap_gcr_payload(br#"{"message": {"data": "%%%"}}"#).is_err());
        assert!(unwrap_gcr_payload(b"[]").is_err());
    }
}
