//! Providers: one notifier per Provider `spec.type`, each sending the request its service expects.
//!
//! [`notifier`] turns the resolved settings of a Provider ([`ProviderSettings`]: address,
//! channel, credentials from its secrets, TLS and proxy) into a [`Notifier`], checking
//! up front what the type needs (a valid address, a token, a channel). [`Notifier::send`]
//! then delivers one Flux event.
//!
//! Supported types ([`SUPPORTED_TYPES`]):
//!
//! - webhooks and chat: `generic`, `generic-hmac`, `slack`, `discord`, `rocket`, `msteams`,
//!   `googlechat`, `webex`, `telegram`, `matrix`, `lark`, `zulip`;
//! - alerting: `alertmanager`, `grafana`, `pagerduty`, `opsgenie`, `datadog`;
//! - Git commit statuses: `github`, `gitlab`, `gitea`, `bitbucket`, `bitbucketserver`,
//!   `azuredevops` ([`COMMIT_STATUS_TYPES`]), and `githubdispatch` (a `repository_dispatch`).
//!
//! Types that need a cloud SDK (`azureeventhub`, `googlepubsub`, `nats`, `sentry`, `otel`, ...)
//! are refused with [`ProviderError::UnsupportedType`], never silently dropped.
//!
//! # Guarantees
//!
//! - One HTTP client per [`Notifier`], built once with the CA, client certificate, proxy and
//!   time limit of the Provider; clones share it.
//! - Delivery is retried with exponential backoff on connection errors, timeouts, `429` and
//!   `5xx` answers ([`RetryPolicy`]); never on other `4xx` answers. All attempts of one
//!   [`Notifier::send`] together stay within the Provider's `timeout` (default 15s), the way
//!   Flux bounds a whole delivery.
//! - Errors never hold a token, password, secret header value, nor the address (webhook URLs
//!   are secrets themselves); what a remote answers is masked before it is quoted.
//! - Event metadata keys are read both prefixed with the involved object's API group
//!   (`kustomize.toolkit.fluxcd.io/revision`, as controllers send them) and bare (`revision`,
//!   as Flux hands them to notifiers); payloads show them bare, like Flux.
//! - Commit-status types set a status only for events carrying a revision
//!   (`originRevision` or `revision` metadata); other events send nothing and succeed. The
//!   status key is Flux's: `<kind>/<name>/<first segment of the Provider UID>`, lowercase, so
//!   a commit shows one status per object and cluster, updated in place.
//!
//! # Caveats
//!
//! - Chat and alerting types skip events that only signal a commit status update
//!   (`commit_status: update` metadata), like Flux.
//! - Ours, not Flux's: for `telegram`, a non-empty `address` replaces the Bot API base URL
//!   (`https://api.telegram.org`); for `bitbucket`, an address on a host other than
//!   `bitbucket.org` is taken as a Bitbucket-compatible API served at `<host>/2.0`.

mod alerting;
mod chat;
mod format;
mod git;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use toolkit_sdk::events::FluxEvent;

pub use format::commit_status_id;

/// Every Provider type [`notifier`] builds, in Flux's spelling.
pub const SUPPORTED_TYPES: &[&str] = &[
    "generic",
    "generic-hmac",
    "slack",
    "discord",
    "rocket",
    "msteams",
    "googlechat",
    "webex",
    "telegram",
    "matrix",
    "lark",
    "zulip",
    "alertmanager",
    "grafana",
    "pagerduty",
    "opsgenie",
    "datadog",
    "github",
    "gitlab",
    "gitea",
    "bitbucket",
    "bitbucketserver",
    "azuredevops",
    "githubdispatch",
];

/// The Provider types that set Git commit statuses; they act only on events with a revision.
pub const COMMIT_STATUS_TYPES: &[&str] = &[
    "github",
    "gitlab",
    "gitea",
    "bitbucket",
    "bitbucketserver",
    "azuredevops",
];

/// Provider types of Flux v2.9 that need a cloud SDK or a non-HTTP protocol, not built yet.
const CLOUD_SDK_TYPES: &[&str] = &[
    "azureeventhub",
    "googlepubsub",
    "nats",
    "sentry",
    "otel",
    "incidentio",
    "ntfy",
    "mastodon",
    "githubpullrequestcomment",
    "gitlabmergerequestcomment",
    "giteapullrequestcomment",
];

/// Whether `provider_type` sets Git commit statuses (see [`COMMIT_STATUS_TYPES`]).
pub fn is_commit_status_type(provider_type: &str) -> bool {
    COMMIT_STATUS_TYPES.contains(&provider_type)
}

/// The default of `spec.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything a notifier needs from a Provider, its secrets and its certificates.
///
/// `Debug` shows which secrets are set, never their values.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// `spec.type`.
    pub provider_type: String,
    /// `spec.address`, or the secret's `address` key (the secret wins, as in Flux).
    pub address: String,
    /// `spec.channel`.
    pub channel: String,
    /// `spec.username`, or the secret's `username` key (the secret wins).
    pub username: String,
    /// The secret's `token` key.
    pub token: Option<String>,
    /// The secret's `password` key.
    pub password: Option<String>,
    /// The secret's `headers` key, parsed (sent by `generic` and `generic-hmac`).
    pub headers: BTreeMap<String, String>,
    /// The proxy URL (from `proxySecretRef`); credentials may be embedded in it.
    pub proxy: Option<String>,
    /// `ca.crt` of `certSecretRef` (PEM), trusted in addition to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// `tls.crt` of `certSecretRef` (PEM): a client certificate, with `client_key_pem`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// `tls.key` of `certSecretRef` (PEM).
    pub client_key_pem: Option<Vec<u8>>,
    /// `spec.timeout`: the time limit of one delivery, retries included.
    pub timeout: Duration,
    /// The commit status key to use instead of the default `<kind>/<name>/<uid prefix>`
    /// (Flux's `spec.commitStatusExpr`, evaluated by the caller); `None` for the default.
    pub commit_status: Option<String>,
    /// `metadata.uid` of the Provider: its first segment tells clusters apart in commit
    /// status keys (see [`commit_status_id`]).
    pub provider_uid: String,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            provider_type: String::new(),
            address: String::new(),
            channel: String::new(),
            username: String::new(),
            token: None,
            password: None,
            headers: BTreeMap::new(),
            proxy: None,
            ca_pem: None,
            client_cert_pem: None,
            client_key_pem: None,
            timeout: DEFAULT_TIMEOUT,
            commit_status: None,
            provider_uid: String::new(),
        }
    }
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("provider_type", &self.provider_type)
            .field("address_set", &!self.address.is_empty())
            .field("channel", &self.channel)
            .field("username", &self.username)
            .field("token_set", &self.token.is_some())
            .field("password_set", &self.password.is_some())
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("proxy_set", &self.proxy.is_some())
            .field("ca_set", &self.ca_pem.is_some())
            .field("client_cert_set", &self.client_cert_pem.is_some())
            .field("timeout", &self.timeout)
            .field("commit_status", &self.commit_status)
            .field("provider_uid", &self.provider_uid)
            .finish()
    }
}

impl ProviderSettings {
    /// Settings of `provider_type` at `address`, everything else at its default.
    pub fn new(provider_type: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            provider_type: provider_type.into(),
            address: address.into(),
            ..Self::default()
        }
    }

    /// The token, when set and not blank.
    fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// The values that must never show up in an error.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        secrets.extend(self.token().map(str::to_string));
        secrets.extend(self.password.clone().filter(|p| !p.is_empty()));
        secrets.extend(self.headers.values().filter(|v| v.len() >= 4).cloned());
        if let Some(proxy) = self.proxy.as_deref().and_then(|p| Url::parse(p).ok())
            && let Some(password) = proxy.password()
        {
            secrets.push(password.to_string());
        }
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        secrets
    }
}

/// Why a Provider cannot be turned into a notifier. Messages never quote secrets or the address.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The type is unknown, or needs a cloud SDK that is not built yet.
    #[error("provider type '{provider_type}' is not supported: {reason}")]
    UnsupportedType {
        /// `spec.type`.
        provider_type: String,
        /// Why, for people.
        reason: String,
    },
    /// The type needs an address and none was given.
    #[error(
        "provider type '{provider_type}' needs an address (spec.address or the secret's 'address' key)"
    )]
    MissingAddress {
        /// `spec.type`.
        provider_type: String,
    },
    /// The address is not an absolute http(s) URL, or not the URL shape the type needs.
    #[error("invalid address for provider type '{provider_type}': {reason}")]
    InvalidAddress {
        /// `spec.type`.
        provider_type: String,
        /// What is wrong, without the address itself.
        reason: String,
    },
    /// A setting the type needs is missing or malformed (token, channel, username, ...).
    #[error("provider type '{provider_type}': {reason}")]
    InvalidSetting {
        /// `spec.type`.
        provider_type: String,
        /// What is missing or wrong, without secret values.
        reason: String,
    },
    /// The proxy URL cannot be parsed.
    #[error("invalid proxy URL")]
    InvalidProxy(#[source] reqwest::Error),
    /// `ca.crt`, `tls.crt` or `tls.key` is not valid PEM.
    #[error("invalid TLS material in certSecretRef: {what}")]
    InvalidCertificate {
        /// Which part.
        what: &'static str,
        /// The parse error.
        #[source]
        source: reqwest::Error,
    },
    /// A header from the secret's `headers` key cannot be sent.
    #[error("invalid header '{name}' in the secret's 'headers' key")]
    InvalidHeader {
        /// The header name.
        name: String,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl ProviderError {
    fn setting(provider_type: &str, reason: impl Into<String>) -> Self {
        Self::InvalidSetting {
            provider_type: provider_type.to_string(),
            reason: reason.into(),
        }
    }

    fn address(provider_type: &str, reason: impl Into<String>) -> Self {
        Self::InvalidAddress {
            provider_type: provider_type.to_string(),
            reason: reason.into(),
        }
    }
}

/// Why one event was not delivered. Messages never hold tokens, passwords or addresses.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The service answered with an error status (after retries when it was 429 or 5xx).
    #[error("{provider}: the service answered HTTP {status} after {attempts} attempt(s){}", quote(.body))]
    Status {
        /// `spec.type`.
        provider: String,
        /// The last HTTP status.
        status: u16,
        /// Requests made.
        attempts: u32,
        /// The start of the answer's body, masked.
        body: String,
    },
    /// The request could not be made (connection refused, TLS, time limit), after retries.
    #[error("{provider}: the request failed after {attempts} attempt(s)")]
    Transport {
        /// `spec.type`.
        provider: String,
        /// Requests made.
        attempts: u32,
        /// The last failure (its URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The time limit of the delivery ran out between attempts.
    #[error(
        "{provider}: gave up after {attempts} attempt(s), the time limit of {timeout:?} was reached"
    )]
    TimedOut {
        /// `spec.type`.
        provider: String,
        /// Requests made.
        attempts: u32,
        /// The Provider's timeout.
        timeout: Duration,
    },
    /// The service accepted the request but refused the message (e.g. Slack's `ok: false`).
    #[error("{provider}: the service refused the message: {reason}")]
    Refused {
        /// `spec.type`.
        provider: String,
        /// What it said, masked.
        reason: String,
    },
    /// The event cannot be expressed for this service (e.g. a revision without a commit hash).
    #[error("{provider}: cannot send this event: {reason}")]
    InvalidEvent {
        /// `spec.type`.
        provider: String,
        /// Why.
        reason: String,
    },
}

fn quote(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl DeliveryError {
    /// Requests made before giving up (0 when none was made).
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Status { attempts, .. }
            | Self::Transport { attempts, .. }
            | Self::TimedOut { attempts, .. } => *attempts,
            Self::Refused { .. } => 1,
            Self::InvalidEvent { .. } => 0,
        }
    }
}

/// How one delivery is retried.
///
/// Defaults: up to 4 retries after the first attempt, waiting 1s, 2s, 4s, 8s (doubling,
/// capped at 30s); a `Retry-After` answer to `429`/`503` is honoured when it fits. The
/// Provider's timeout bounds everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles for each further retry.
    pub min_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        self.min_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff)
    }
}

/// Sends events to one Provider. Cheap to clone: clones share one HTTP client.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("provider_type", &self.inner.transport.provider)
            .finish_non_exhaustive()
    }
}

struct Inner {
    kind: Kind,
    transport: Transport,
}

/// The per-type configuration, checked once by [`notifier`].
enum Kind {
    Chat(chat::Chat),
    Alerting(alerting::Alerting),
    Git(git::Git),
}

/// Builds the notifier for a Provider.
///
/// # Errors
///
/// [`ProviderError::UnsupportedType`] for unknown types and types that need a cloud SDK;
/// [`ProviderError::MissingAddress`] / [`ProviderError::InvalidAddress`] when the address
/// is missing or not what the type needs (e.g. a Git repository URL for commit statuses);
/// [`ProviderError::InvalidSetting`] when the type needs a token, channel or credentials
/// that are missing; TLS and proxy errors when `certSecretRef` / the proxy are malformed.
pub fn notifier(settings: ProviderSettings) -> Result<Notifier, ProviderError> {
    let provider_type = settings.provider_type.as_str();
    let kind = if let Some(chat) = chat::Chat::new(&settings)? {
        Kind::Chat(chat)
    } else if let Some(alerting) = alerting::Alerting::new(&settings)? {
        Kind::Alerting(alerting)
    } else if let Some(git) = git::Git::new(&settings)? {
        Kind::Git(git)
    } else if CLOUD_SDK_TYPES.contains(&provider_type) {
        return Err(ProviderError::UnsupportedType {
            provider_type: provider_type.to_string(),
            reason: "it needs a cloud SDK or protocol that Ferroflux does not include yet".into(),
        });
    } else {
        return Err(ProviderError::UnsupportedType {
            provider_type: provider_type.to_string(),
            reason: format!("unknown type; supported: {}", SUPPORTED_TYPES.join(", ")),
        });
    };
    let transport = Transport::new(&settings)?;
    Ok(Notifier {
        inner: Arc::new(Inner { kind, transport }),
    })
}

impl Notifier {
    /// The Provider type this notifier sends to.
    pub fn provider_type(&self) -> &str {
        &self.inner.transport.provider
    }

    /// The same notifier with another retry policy (same HTTP client).
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        let Inner { kind, transport } = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                kind: shared.kind.clone(),
                transport: shared.transport.clone(),
            },
        };
        Notifier {
            inner: Arc::new(Inner {
                kind,
                transport: Transport { retry, ..transport },
            }),
        }
    }

    /// Sends one event.
    ///
    /// Events the type does not act on (a commit-status type and an event without a
    /// revision, a `Progressing` event for types that skip it, a commit status update for
    /// chat types) send nothing and return `Ok`.
    ///
    /// # Errors
    ///
    /// A [`DeliveryError`] when the service could not be reached or refused the message
    /// after the retries the [`RetryPolicy`] and the Provider's timeout allow.
    pub async fn send(&self, event: &FluxEvent) -> Result<(), DeliveryError> {
        self.send_with_status_id(event, None).await
    }

    /// Like [`send`](Self::send), with the commit status key for this event (what the
    /// Provider's `spec.commitStatusExpr` gave); `None` keeps the default key. Only the Git
    /// commit status types use it.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn send_with_status_id(
        &self,
        event: &FluxEvent,
        status_id: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let event = format::Event::new(event);
        let mut call = Call::new(&self.inner.transport);
        match &self.inner.kind {
            Kind::Chat(chat) => chat.send(&mut call, &event).await,
            Kind::Alerting(alerting) => alerting.send(&mut call, &event).await,
            Kind::Git(git) => git.send(&mut call, &event, status_id).await,
        }
    }
}

impl Clone for Kind {
    fn clone(&self) -> Self {
        match self {
            Kind::Chat(c) => Kind::Chat(c.clone()),
            Kind::Alerting(a) => Kind::Alerting(a.clone()),
            Kind::Git(g) => Kind::Git(g.clone()),
        }
    }
}

/// The HTTP client of one notifier, with its retry policy and the secrets to mask.
#[derive(Clone)]
struct Transport {
    provider: String,
    client: reqwest::Client,
    retry: RetryPolicy,
    timeout: Duration,
    secrets: Arc<Vec<String>>,
}

impl Transport {
    fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let own_tls = settings.ca_pem.is_some() || settings.client_cert_pem.is_some();
        let mut builder = if own_tls {
            // The shared builder comes with a preconfigured TLS backend that would ignore
            // the CA and the client certificate: start from reqwest's, with the same defaults.
            toolkit_sdk::tls::install_crypto_provider();
            reqwest::Client::builder()
                .user_agent(toolkit_sdk::tls::USER_AGENT)
                .connect_timeout(toolkit_sdk::tls::CONNECT_TIMEOUT)
                .read_timeout(toolkit_sdk::tls::READ_TIMEOUT)
        } else {
            toolkit_sdk::tls::http_client_builder()
        };
        if let Some(proxy) = settings.proxy.as_deref().filter(|p| !p.trim().is_empty()) {
            let proxy = reqwest::Proxy::all(proxy.trim())
                .map_err(|e| ProviderError::InvalidProxy(e.without_url()))?;
            builder = builder.proxy(proxy);
        }
        if let Some(ca) = &settings.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca).map_err(|source| {
                ProviderError::InvalidCertificate {
                    what: "ca.crt",
                    source,
                }
            })?;
            if certs.is_empty() {
                return Err(ProviderError::setting(
                    &settings.provider_type,
                    "'ca.crt' of certSecretRef holds no PEM certificate",
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        match (&settings.client_cert_pem, &settings.client_key_pem) {
            (Some(cert), Some(key)) => {
                let mut pem = cert.clone();
                pem.push(b'\n');
                pem.extend_from_slice(key);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|source| {
                    ProviderError::InvalidCertificate {
                        what: "tls.crt/tls.key",
                        source,
                    }
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(ProviderError::setting(
                    &settings.provider_type,
                    "certSecretRef must hold both 'tls.crt' and 'tls.key' for a client certificate",
                ));
            }
        }
        let client = builder.build().map_err(ProviderError::Client)?;
        Ok(Self {
            provider: settings.provider_type.clone(),
            client,
            retry: RetryPolicy::default(),
            timeout: if settings.timeout.is_zero() {
                DEFAULT_TIMEOUT
            } else {
                settings.timeout
            },
            secrets: Arc::new(settings.secrets()),
        })
    }

    /// `text` with every secret replaced by `*****`.
    fn mask(&self, text: &str) -> String {
        let mut masked = text.to_string();
        for secret in self.secrets.iter() {
            masked = masked.replace(secret.as_str(), "*****");
        }
        masked
    }
}

/// One request, rebuilt for every attempt.
#[derive(Clone, Debug)]
struct Req {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    /// Treat `404 Not Found` as an answer rather than an error (lookups of existing statuses).
    allow_not_found: bool,
}

impl Req {
    fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            allow_not_found: false,
        }
    }

    fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    fn post(url: Url) -> Self {
        Self::new(Method::POST, url)
    }

    /// Sets a header; values built from settings were validated when the notifier was built,
    /// anything else that is not a valid header value is dropped.
    fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            let mut value = value;
            if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("dd-api-key")
            {
                value.set_sensitive(true);
            }
            self.headers.insert(HeaderName::from_static(name), value);
        }
        self
    }

    fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    fn basic(self, username: &str, password: &str) -> Self {
        self.header("authorization", &format::basic_auth(username, password))
    }

    fn json(mut self, value: &serde_json::Value) -> Self {
        // Serialising a `Value` cannot fail.
        self.body = Some(serde_json::to_vec(value).unwrap_or_default());
        self.header("content-type", "application/json")
    }

    fn allow_not_found(mut self) -> Self {
        self.allow_not_found = true;
        self
    }
}

/// An answer: status and the start of the body.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The largest part of an answer that is read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// One delivery: all its requests share the deadline.
struct Call<'a> {
    transport: &'a Transport,
    deadline: Instant,
}

impl<'a> Call<'a> {
    fn new(transport: &'a Transport) -> Self {
        Self {
            transport,
            deadline: Instant::now() + transport.timeout,
        }
    }

    fn invalid_event(&self, reason: impl Into<String>) -> DeliveryError {
        DeliveryError::InvalidEvent {
            provider: self.transport.provider.clone(),
            reason: reason.into(),
        }
    }

    fn refused(&self, reason: &str) -> DeliveryError {
        DeliveryError::Refused {
            provider: self.transport.provider.clone(),
            reason: self.transport.mask(reason),
        }
    }

    /// Sends `req`, retrying as the policy allows; `Ok` for 2xx (and 404 when allowed).
    async fn execute(&mut self, req: Req) -> Result<Resp, DeliveryError> {
        let t = self.transport;
        let mut attempts = 0u32;
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(DeliveryError::TimedOut {
                    provider: t.provider.clone(),
                    attempts,
                    timeout: t.timeout,
                });
            }
            attempts += 1;
            let mut builder = t
                .client
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone())
                .timeout(remaining);
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            let (failure, retry_after) = match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let body = read_limited(response).await;
                    if status.is_success()
                        || (req.allow_not_found && status == StatusCode::NOT_FOUND)
                    {
                        return Ok(Resp { status, body });
                    }
                    let error = DeliveryError::Status {
                        provider: t.provider.clone(),
                        status: status.as_u16(),
                        attempts,
                        body: excerpt(&t.mask(&String::from_utf8_lossy(&body))),
                    };
                    if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(error) => {
                    if error.is_builder() {
                        return Err(DeliveryError::Transport {
                            provider: t.provider.clone(),
                            attempts,
                            source: error.without_url(),
                        });
                    }
                    (
                        DeliveryError::Transport {
                            provider: t.provider.clone(),
                            attempts,
                            source: error.without_url(),
                        },
                        None,
                    )
                }
            };
            if attempts > t.retry.max_retries {
                return Err(failure);
            }
            let wait = retry_after
                .filter(|w| *w <= t.retry.max_backoff)
                .unwrap_or_else(|| t.retry.backoff(attempts - 1));
            if Instant::now() + wait >= self.deadline {
                return Err(failure);
            }
            tracing::debug!(
                provider = %t.provider,
                attempt = attempts,
                wait_ms = wait.as_millis() as u64,
                "notification delivery failed, retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn read_limited(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    body
}

/// The first 200 characters of an answer, on one line.
fn excerpt(text: &str) -> String {
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut cut: String = one_line.chars().take(200).collect();
    if one_line.chars().count() > 200 {
        cut.push('…');
    }
    cut
}

/// Parses an absolute http(s) URL; the error names the type, never the address.
fn parse_http_url(provider_type: &str, address: &str) -> Result<Url, ProviderError> {
    let address = address.trim();
    if address.is_empty() {
        return Err(ProviderError::MissingAddress {
            provider_type: provider_type.to_string(),
        });
    }
    let url = Url::parse(address)
        .map_err(|e| ProviderError::address(provider_type, format!("not an absolute URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ProviderError::address(
            provider_type,
            format!("the scheme must be http or https, not '{}'", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ProviderError::address(provider_type, "the URL has no host"));
    }
    Ok(url)
}

/// The address, or `default` when it is empty.
fn parse_http_url_or(
    provider_type: &str,
    address: &str,
    default: &str,
) -> Result<Url, ProviderError> {
    if address.trim().is_empty() {
        parse_http_url(provider_type, default)
    } else {
        parse_http_url(provider_type, address)
    }
}

/// The token, or an error naming the type.
fn require_token(settings: &ProviderSettings) -> Result<String, ProviderError> {
    settings.token().map(str::to_string).ok_or_else(|| {
        ProviderError::setting(
            &settings.provider_type,
            "a token is required (the 'token' key of spec.secretRef)",
        )
    })
}

/// The channel, or an error naming the type and what the channel means for it.
fn require_channel(settings: &ProviderSettings, meaning: &str) -> Result<String, ProviderError> {
    let channel = settings.channel.trim();
    if channel.is_empty() {
        return Err(ProviderError::setting(
            &settings.provider_type,
            format!("spec.channel is required ({meaning})"),
        ));
    }
    Ok(channel.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_cloud_types_are_refused_with_a_clear_message() {
        let err = notifier(ProviderSettings::new(
            "carrier-pigeon",
            "https://example.com",
        ))
        .unwrap_err();
        assert!(matches!(err, ProviderError::UnsupportedType { .. }));
        assert!(err.to_string().contains("carrier-pigeon"), "{err}");
        assert!(err.to_string().contains("slack"), "{err}");

        let err = notifier(ProviderSettings::new("azureeventhub", "Endpoint=sb://x")).unwrap_err();
        assert!(err.to_string().contains("cloud SDK"), "{err}");
    }

    #[test]
    fn every_supported_type_is_recognised() {
        for t in SUPPORTED_TYPES {
            let settings = ProviderSettings {
                token: Some("user:secret-token".into()),
                password: Some("pw".into()),
                username: "bot".into(),
                channel: "chan/topic".into(),
                ..ProviderSettings::new(
                    *t,
                    match *t {
                        "bitbucketserver" => "https://bb.example.com/scm/proj/repo.git",
                        "azuredevops" => "https://dev.azure.com/org/proj/_git/repo",
                        _ => "https://example.com/org/repo",
                    },
                )
            };
            let built = notifier(settings);
            assert!(built.is_ok(), "{t}: {:?}", built.err());
        }
    }

    #[test]
    fn bad_addresses_are_refused_without_echoing_them() {
        let err = notifier(ProviderSettings::new("slack", "not a url/s3cr3t")).unwrap_err();
        assert!(matches!(err, ProviderError::InvalidAddress { .. }), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");

        let err = notifier(ProviderSettings::new("msteams", "")).unwrap_err();
        assert!(matches!(err, ProviderError::MissingAddress { .. }), "{err}");

        let err = notifier(ProviderSettings::new("generic", "ftp://example.com/x")).unwrap_err();
        assert!(err.to_string().contains("http or https"), "{err}");
    }

    #[test]
    fn types_that_need_a_token_say_so() {
        for t in [
            "generic-hmac",
            "github",
            "gitlab",
            "opsgenie",
            "datadog",
            "telegram",
        ] {
            let settings = ProviderSettings {
                channel: "123".into(),
                ..ProviderSettings::new(t, "https://example.com/org/repo")
            };
            let err = notifier(settings).unwrap_err();
            assert!(err.to_string().contains("token"), "{t}: {err}");
        }
    }

    #[test]
    fn settings_debug_hides_secrets() {
        let settings = ProviderSettings {
            token: Some("tok-123456".into()),
            password: Some("pw-123456".into()),
            headers: BTreeMap::from([("X-Key".to_string(), "hdr-123456".to_string())]),
            ..ProviderSettings::new("generic", "https://hooks.example.com/secret-path")
        };
        let shown = format!("{settings:?}");
        for secret in ["tok-123456", "pw-123456", "hdr-123456", "secret-path"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0), Duration::from_secs(1));
        assert_eq!(policy.backoff(3), Duration::from_secs(8));
        assert_eq!(policy.backoff(10), Duration::from_secs(30));
    }
}
