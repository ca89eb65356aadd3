//! The webhook endpoint of Receivers (`--receiverAddr`, Flux's `:9292`): a request to a
//! Receiver's `status.webhookPath` that passes the checks of its type asks every target to
//! reconcile now, by setting `reconcile.fluxcd.io/requestedAt` on it.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), notification_controller::receiver::ReceiverServerError> {
//! use notification_controller::receiver::{ReceiverServerConfig, ReceiverState, serve};
//! use tokio_util::sync::CancellationToken;
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9292").await.map_err(
//!     notification_controller::receiver::ReceiverServerError::Bind,
//! )?;
//! let state = ReceiverState::new(client, ReceiverServerConfig::new("notification-controller"))?;
//! serve(listener, state, CancellationToken::new()).await
//! # }
//! ```
//!
//! # Handling of a request
//!
//! Any method on `/hook/<digest>` (as Flux):
//!
//! 1. The Receiver whose `status.webhookPath` equals the path is looked up in an in-memory
//!    index fed by a watch of Receivers (no API call). None: **404** with an empty body, the
//!    same answer as for any other unknown path, so the answer does not tell which paths
//!    exist. Before the first list of Receivers has loaded: **503**.
//! 2. A suspended Receiver, or one that is not `Ready`: **503** (as Flux).
//! 3. The body is read up to [`MAX_BODY_BYTES`] (Flux's 3 MiB): larger, **413**.
//! 4. The Receiver's Secret is read (`token`; for `gcr` also `email` and `audience`). Missing:
//!    **500**.
//! 5. The request is checked by the rules of its type (see [`verify`]): a missing or wrong
//!    signature or token is **401**; a malformed payload or an event not in `spec.events` is
//!    **400**. A GitHub `ping` with a good signature is **200** without reconciling anything.
//! 6. Every target (see [`targets`]) that passes `spec.resourceFilter` gets the annotation
//!    `reconcile.fluxcd.io/requestedAt: <now, RFC 3339 with nanoseconds>`. If any target could
//!    not be annotated (missing object, unknown kind, filter error), the others still are and
//!    the answer is **500**; otherwise **200**.
//!
//! Bodies of error answers are short fixed texts; the reasons are in the log (with the
//! Receiver's namespace and name, never the token).
//!
//! # Caveats
//!
//! - Flux answers 400 for every failed check (including signatures and oversized bodies);
//!   this server answers 401 and 413 for those, which webhook senders show more clearly.
//! - Flux also reconciles on a GitHub `ping` when `ping` is in `spec.events`; here a ping only
//!   checks the setup.

pub mod gcr;
pub mod index;
pub mod targets;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use toolkit_sdk::cel::Expression;
use toolkit_sdk::conditions;

use self::gcr::{GOOGLE_CERTS_URL, GoogleTokenVerifier};
use self::index::ReceiverIndex;
use self::targets::Annotator;
use self::verify::{Credentials, Rejected, Verified};
use crate::api::v1::{Receiver, ReceiverType, TOKEN_KEY, WEBHOOK_PATH_PREFIX};

/// The largest request body accepted (Flux's limit: 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The Secret key holding the service account a `gcr` token must be issued for.
pub const GCR_EMAIL_KEY: &str = "email";

/// The Secret key holding the audience a `gcr` token must be issued for.
pub const GCR_AUDIENCE_KEY: &str = "audience";

/// How the webhook server runs.
#[derive(Debug, Clone)]
pub struct ReceiverServerConfig {
    /// Field manager of the annotation patches (the controller's name).
    pub controller_name: String,
    /// Only Receivers in this namespace are served (`--watch-all-namespaces=false`); all
    /// namespaces when `None`.
    pub namespace: Option<String>,
    /// Only Receivers matching this label selector are served (`--watch-label-selector`).
    pub label_selector: Option<String>,
    /// Refuse targets outside the Receiver's namespace (`--no-cross-namespace-refs`).
    pub no_cross_namespace_refs: bool,
    /// The largest body accepted; [`MAX_BODY_BYTES`] by default.
    pub max_body_bytes: usize,
    /// Where Google's token signing keys are fetched for `gcr` Receivers;
    /// [`GOOGLE_CERTS_URL`] by default.
    pub google_certs_url: String,
}

impl ReceiverServerConfig {
    /// Flux's defaults for the controller `controller_name`: every namespace, no selector,
    /// cross-namespace targets allowed, 3 MiB bodies.
    pub fn new(controller_name: impl Into<String>) -> Self {
        Self {
            controller_name: controller_name.into(),
            namespace: None,
            label_selector: None,
            no_cross_namespace_refs: false,
            max_body_bytes: MAX_BODY_BYTES,
            google_certs_url: GOOGLE_CERTS_URL.to_owned(),
        }
    }
}

/// Why the webhook server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverServerError {
    /// The listening socket could not be bound.
    #[error("cannot bind the receiver address")]
    Bind(#[source] std::io::Error),
    /// Serving failed.
    #[error("the receiver server failed")]
    Serve(#[source] std::io::Error),
    /// The HTTP client for Google's keys could not be built.
    #[error("cannot build the HTTP client for Google's token signing keys")]
    HttpClient(#[source] reqwest::Error),
}

/// Everything a request needs: the Receiver index, the client, the annotator. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReceiverState {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: ReceiverServerConfig,
    index: ReceiverIndex,
    annotator: Annotator,
    google: GoogleTokenVerifier,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverState")
            .field("config", &self.config)
            .field("receivers", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl ReceiverState {
    /// The state of a server using `client` (the controller's identity) and `config`.
    ///
    /// # Errors
    /// When the HTTP client for Google's keys cannot be built.
    pub fn new(client: Client, config: ReceiverServerConfig) -> Result<Self, ReceiverServerError> {
        let annotator = Annotator::new(
            client.clone(),
            config.controller_name.clone(),
            config.no_cross_namespace_refs,
        );
        let google = GoogleTokenVerifier::new(config.google_certs_url.clone())
            .map_err(ReceiverServerError::HttpClient)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                index: ReceiverIndex::default(),
                annotator,
                google,
            }),
        })
    }

    /// Whether the first list of Receivers has loaded (before that, hooks are answered 503).
    pub fn is_synced(&self) -> bool {
        self.inner.index.is_synced()
    }

    /// The index of Receivers by webhook path.
    pub fn index(&self) -> &ReceiverIndex {
        &self.inner.index
    }
}

/// Serves webhooks on `listener` until `shutdown` is cancelled, watching Receivers meanwhile.
/// In-flight requests finish before this returns.
///
/// # Errors
/// When the server fails to accept connections.
pub async fn serve(
    listener: TcpListener,
    state: ReceiverState,
    shutdown: CancellationToken,
) -> Result<(), ReceiverServerError> {
    let inner = &state.inner;
    let watch = tokio::spawn(inner.index.clone().run(
        inner.client.clone(),
        inner.config.namespace.clone(),
        inner.config.label_selector.clone(),
    ));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "receiver server listening");
    }
    let result = axum::serve(toolkit_sdk::net::no_delay(listener), router(state.clone()))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(ReceiverServerError::Serve);
    watch.abort();
    result
}

/// The routes: `/hook/{digest}` and an empty 404 for everything else.
fn router(state: ReceiverState) -> Router {
    Router::new()
        .route("/hook/{digest}", any(handle))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
}

/// An answer with a short fixed body.
fn answer(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

async fn handle(
    State(state): State<ReceiverState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inner = &state.inner;
    if !inner.index.is_synced() {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "not ready\n");
    }
    let path = format!("{WEBHOOK_PATH_PREFIX}{digest}");
    let Some(receiver) = inner.index.get(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let name = receiver.name_any();
    let namespace = receiver.namespace().unwrap_or_default();

    if receiver.spec.suspend {
        tracing::warn!(%namespace, %name, "request refused: the receiver is suspended");
        return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable\n");
    }
    let ready = receiver
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_ready(&s.conditions));
    if !ready {
        tracing::warn!(%namespace, %name, "request refused: the receiver is not ready");
        return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable\n");
    }

    let body = match read_body(&headers, body, inner.config.max_body_bytes).await {
        Ok(body) => body,
        Err(status) => {
            tracing::warn!(%namespace, %name, status = status.as_u16(), "request body refused");
            return answer(status, "request body refused\n");
        }
    };

    let secret = match read_secret(&inner.client, &receiver).await {
        Ok(secret) => secret,
        Err(message) => {
            tracing::error!(%namespace, %name, error = %message, "unable to validate payload");
            return answer(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
        }
    };

    let verdict = match verify_request(inner, &receiver, &secret, &headers, &body).await {
        Ok(v) => v,
        Err(rejected) => {
            tracing::warn!(%namespace, %name, error = %rejected, "unable to validate payload");
            return match rejected {
                Rejected::Unauthorized(_) => answer(StatusCode::UNAUTHORIZED, "unauthorized\n"),
                Rejected::BadRequest(_) => answer(StatusCode::BAD_REQUEST, "bad request\n"),
                Rejected::Misconfigured(_) => {
                    answer(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
                }
            };
        }
    };
    let payload = match verdict {
        Verified::Ping => {
            tracing::info!(%namespace, %name, "GitHub ping handled; nothing to reconcile");
            return StatusCode::OK.into_response();
        }
        Verified::Accept { payload, .. } => payload,
    };

    let filter = match receiver.spec.resource_filter() {
        None => None,
        Some(source) => match Expression::compile(source) {
            Ok(expression) => Some(expression),
            Err(error) => {
                tracing::error!(%namespace, %name, %error, "unable to create resource filter");
                return answer(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
            }
        },
    };
    let request = match (&filter, payload) {
        (None, _) => Value::Null,
        (Some(_), Some(payload)) => payload,
        (Some(_), None) => match request_json(&headers, &body) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(%namespace, %name, %error, "failed to parse request body as JSON");
                return answer(StatusCode::BAD_REQUEST, "bad request\n");
            }
        },
    };

    let now = jiff::Timestamp::now().to_string();
    let (annotated, errors) = inner
        .annotator
        .request_reconcile(&receiver, filter.as_ref(), &request, &now)
        .await;
    if errors.is_empty() {
        tracing::info!(%namespace, %name, annotated, "reconciliation requested");
        StatusCode::OK.into_response()
    } else {
        for error in &errors {
            tracing::error!(%namespace, %name, %error, "unable to request reconciliation");
        }
        answer(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
    }
}

/// Reads the body up to `limit` bytes; 413 beyond, 400 if the client broke off.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, StatusCode> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        if buf.len() + chunk.len() > limit {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// The Receiver's Secret data. The error text names the Secret, never its content.
async fn read_secret(
    client: &Client,
    receiver: &Receiver,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let namespace = receiver.namespace().unwrap_or_default();
    let name = &receiver.spec.secret_ref.name;
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = api
        .get(name)
        .await
        .map_err(|e| format!("unable to read secret '{namespace}/{name}': {e}"))?;
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    if !data.contains_key(TOKEN_KEY) {
        return Err(format!(
            "invalid '{namespace}/{name}' secret data: required field '{TOKEN_KEY}'"
        ));
    }
    Ok(data)
}

/// Runs the checks of the Receiver's type.
async fn verify_request(
    inner: &Inner,
    receiver: &Receiver,
    secret: &BTreeMap<String, Vec<u8>>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, Rejected> {
    let token = secret.get(TOKEN_KEY).map(Vec::as_slice).unwrap_or_default();
    if receiver.spec.type_ != ReceiverType::Gcr {
        return verify::verify(&receiver.spec, Credentials { token }, headers, body);
    }
    let text = |key: &str| {
        secret
            .get(key)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Rejected::Misconfigured(format!(
                    "invalid secret data: required field '{key}' for GCR receiver"
                ))
            })
    };
    let email = text(GCR_EMAIL_KEY)?;
    let audience = text(GCR_AUDIENCE_KEY)?;
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    inner.google.verify(authorization, audience, email).await?;
    let payload = verify::unwrap_gcr_payload(body)?;
    Ok(Verified::Accept {
        event: None,
        payload: Some(payload),
    })
}

/// The body as the `req` of the resource filter: its JSON when the Content-Type says JSON,
/// else an empty object (as Flux).
fn request_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, serde_json::Error> {
    let is_json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            })
        });
    if !is_json {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn request_json_only_for_json_bodies() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            request_json(&headers, b"not json").unwrap(),
            serde_json::json!({})
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(
            request_json(&headers, br#"{"a":1}"#).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert!(request_json(&headers, b"{").is_err());
    }

    #[tokio::test]
    async fn bodies_are_capped() {
        let headers = HeaderMap::new();
        let ok = read_body(&headers, Body::from(vec![1u8; 10]), 10).await;
        assert_eq!(ok.unwrap().len(), 10);
        let big = read_body(&headers, Body::from(vec![1u8; 11]), 10).await;
        assert_eq!(big.unwrap_err(), StatusCode::PAYLOAD_TOO_LARGE);
        let mut declared = HeaderMap::new();
        declared.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("11"));
        let big = read_body(&declared, Body::empty(), 10).await;
        assert_eq!(big.unwrap_err(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
