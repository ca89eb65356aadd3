//! The registry side of OCIRepository: find which manifest `spec.ref` points at, then pull
//! one layer of it, through [`oci_client`].
//!
//! A reconcile does it in two steps, so that an unchanged artifact costs one request:
//!
//! ```no_run
//! # async fn demo(dest: &std::path::Path) -> Result<(), source_controller::oci::OciError> {
//! use source_controller::api::v1::{OciLayerSelector, OciSelection};
//! use source_controller::oci::{self, OciAuth, OciOptions};
//! use toolkit_sdk::artifact_fetch::FetchLimits;
//!
//! let url = "oci://ghcr.io/stefanprodan/manifests/podinfo";
//! let selection = OciSelection::SemVer { range: ">=6.0.0".into(), filter: None };
//! let options = OciOptions::default();
//! // 1. Ask first: list tags / HEAD the manifest; nothing is downloaded.
//! let resolved = oci::resolve(url, &selection, &OciAuth::Anonymous, &options).await?;
//! println!("{}", resolved.revision); // 6.5.1@sha256:...
//! // 2. Pull only when `resolved.revision` differs from the stored artifact's.
//! let pulled = oci::pull(url, &resolved, &OciAuth::Anonymous, &options,
//!     &OciLayerSelector::default(), dest, &FetchLimits::default()).await?;
//! println!("{:?}", pulled.metadata); // the manifest's annotations
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - Selection follows Flux: `digest` > `semver` (with `semverFilter`) > `tag`, default tag
//!   `latest`; the revision is `<tag>@<digest>`, or the bare digest when pulled by digest
//!   (see [`OciSelection::revision`]).
//! - [`pull`] fetches the manifest by the digest [`resolve`] returned, so a tag moved in
//!   between cannot mix revisions.
//! - A layer is streamed to disk while its digest is computed, never held in memory; its
//!   declared size is checked against [`FetchLimits::max_download_bytes`] before it is
//!   requested. Extraction uses the SDK's hardened extractor (entry and size limits, no
//!   path or link escaping the destination) and replaces `dest` atomically.
//! - An image index is followed to its `linux/amd64` image (a child without a platform
//!   counts as `linux/amd64`), as Flux's go-containerregistry does; the revision keeps the
//!   index digest.
//! - `insecure: false` talks HTTPS only; `insecure: true` talks plain HTTP.
//! - Credentials never appear in errors or logs.
//!
//! # Caveats
//!
//! - The whole operation (`resolve`, or `pull` including extraction) is bounded by
//!   [`OciOptions::timeout`]. Extraction runs on the blocking pool: if the timeout fires
//!   while unpacking, unpacking still finishes in the background and may replace `dest`.
//! - Only static credentials ([`OciAuth`]) are supported; cloud workload identity, client
//!   certificates and custom CAs are not (yet).
//!
//! [`resolve`]: crate::oci::resolve
//! [`pull`]: crate::oci::pull
//! [`OciAuth`]: crate::oci::OciAuth
//! [`OciOptions::timeout`]: crate::oci::OciOptions::timeout
//! [`OciSelection::revision`]: crate::api::v1::OciSelection::revision
//! [`FetchLimits::max_download_bytes`]: toolkit_sdk::artifact_fetch::FetchLimits::max_download_bytes

mod auth;
mod error;
mod pull;
mod resolve;
mod url;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use toolkit_sdk::artifact_fetch::FetchLimits;

pub use self::auth::{DOCKER_CFG_KEY, DOCKER_CONFIG_JSON_KEY, OciAuth};
pub use self::error::OciError;
pub use self::url::{OciUrl, redact as redact_url};
use crate::api::v1::{OciLayerOperation, OciLayerSelector, OciSelection};

/// The platform picked from an image index, as Flux does.
pub const DEFAULT_PLATFORM: (&str, &str) = ("linux", "amd64");

/// How to talk to the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciOptions {
    /// Plain HTTP (`spec.insecure`); HTTPS only when false.
    pub insecure: bool,
    /// Time limit of one [`resolve`] or [`pull`] (`spec.timeout`, 60 s by default).
    pub timeout: Duration,
}

impl Default for OciOptions {
    fn default() -> Self {
        Self {
            insecure: false,
            timeout: Duration::from_secs(60),
        }
    }
}

impl OciOptions {
    /// Options with this `insecure` flag and timeout.
    pub fn new(insecure: bool, timeout: Duration) -> Self {
        Self { insecure, timeout }
    }
}

/// Which manifest `spec.ref` points at now: the result of [`resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The tag followed (the `semver` winner, `spec.ref.tag`, or `latest`); `None` when
    /// pulled by digest.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:<hex>`): of the index, when the tag names an index.
    pub digest: String,
    /// The revision Flux writes: `<tag>@<digest>`, or `<digest>` when pulled by digest.
    pub revision: String,
}

/// What [`pull`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// Where the content is: the directory the layer was extracted into, or the file the
    /// layer was copied to (the `dest` passed in).
    pub path: PathBuf,
    /// What was done with the layer.
    pub operation: OciLayerOperation,
    /// The image manifest's annotations, for `status.artifact.metadata` (empty map when the
    /// manifest has none).
    pub metadata: BTreeMap<String, String>,
    /// The digest of the image manifest the layer came from (differs from
    /// [`Resolved::digest`] when that is an image index).
    pub manifest_digest: String,
    /// The layer's digest (verified).
    pub layer_digest: String,
    /// The layer's media type.
    pub layer_media_type: String,
    /// The layer's size in bytes (compressed, as stored in the registry).
    pub layer_size: u64,
    /// Number of tar entries extracted (`None` for `copy`).
    pub entries: Option<u64>,
}

/// Finds the manifest `selection` points at in the repository `url` (`oci://host/repo`).
///
/// A tag (`spec.ref.tag` or `latest`) costs one `HEAD` of the manifest (a `GET` when the
/// registry sends no digest header); a SemVer range lists the tags first; a digest is
/// returned as it is, without a request, as Flux does (a missing digest shows up in
/// [`pull`]).
///
/// # Errors
///
/// [`OciError`]: an invalid URL, digest, range or filter; refused credentials; a missing
/// repository or tag; no tag in the range; an unreachable registry or a timeout.
pub async fn resolve(
    url: &str,
    selection: &OciSelection,
    auth: &OciAuth,
    options: &OciOptions,
) -> Result<Resolved, OciError> {
    let url = OciUrl::parse(url)?;
    if let OciSelection::Digest(digest) = selection {
        url::check_digest(digest)?;
    }
    let registry = Registry::connect(&url, auth, options)?;
    with_timeout(&url, "resolving the artifact", options.timeout, async {
        resolve::resolve(&registry, selection).await
    })
    .await
}

/// Pulls the layer `selector` chooses from the manifest `resolved` names, into `dest`.
///
/// - `extract` (the default): `dest` becomes a directory holding the unpacked tarball; an
///   existing `dest` is replaced only once the new tree is complete.
/// - `copy`: `dest` becomes a file holding the layer blob as stored in the registry
///   (written to a temporary file next to it, then renamed).
///
/// The layer is the first one whose media type equals `selector.media_type`, or the first
/// layer without one. `dest`'s parent directory is created if missing and holds the
/// temporary files.
///
/// # Errors
///
/// [`OciError`]: the registry errors of [`resolve`], plus a missing manifest or blob, an
/// index without a `linux/amd64` image, no layers or none of the media type, a layer that
/// is not a tarball (extract), limits exceeded, unsafe entries, a digest mismatch, or a
/// local I/O error. On error, `dest` is left as it was.
pub async fn pull(
    url: &str,
    resolved: &Resolved,
    auth: &OciAuth,
    options: &OciOptions,
    selector: &OciLayerSelector,
    dest: &Path,
    limits: &FetchLimits,
) -> Result<Pulled, OciError> {
    let url = OciUrl::parse(url)?;
    url::check_digest(&resolved.digest)?;
    let registry = Registry::connect(&url, auth, options)?;
    with_timeout(&url, "pulling the artifact", options.timeout, async {
        pull::pull(&registry, &resolved.digest, selector, dest, limits).await
    })
    .await
}

/// One repository on one registry, with the credentials to use there.
pub(crate) struct Registry {
    pub(crate) client: Client,
    pub(crate) url: OciUrl,
    pub(crate) auth: OciAuth,
    pub(crate) registry_auth: oci_client::secrets::RegistryAuth,
    pub(crate) timeout: Duration,
}

impl Registry {
    /// A client for `url` with `auth`, from the process-wide [`ClientPool`].
    fn connect(url: &OciUrl, auth: &OciAuth, options: &OciOptions) -> Result<Self, OciError> {
        let client = ClientPool::global().client(url, auth, options)?;
        Ok(Self {
            client,
            url: url.clone(),
            auth: auth.clone(),
            registry_auth: auth.to_registry_auth(),
            timeout: options.timeout,
        })
    }

    /// Turns an oci-client error into ours; `what` names the object asked for (`tag 'v1'`).
    pub(crate) fn error(&self, err: OciDistributionError, what: &str) -> OciError {
        let registry = self.url.registry().to_owned();
        let repository = self.url.repository().to_owned();
        let denied = || OciError::AuthenticationFailed {
            registry: registry.clone(),
            repository: repository.clone(),
            with_credentials: !self.auth.is_anonymous(),
        };
        let not_found = || OciError::NotFound {
            registry: registry.clone(),
            repository: repository.clone(),
            what: what.to_owned(),
        };
        match err {
            OciDistributionError::RequestError(e) => {
                if e.is_timeout() {
                    OciError::Timeout {
                        registry,
                        operation: "a registry request",
                        after: self.timeout,
                    }
                } else {
                    OciError::Unreachable {
                        registry,
                        source: Box::new(e),
                    }
                }
            }
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => denied(),
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    not_found()
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    denied()
                } else {
                    let message = envelope
                        .errors
                        .iter()
                        .map(|e| format!("{:?}: {}", e.code, e.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let status = codes
                        .iter()
                        .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
                        .then_some(429);
                    OciError::Registry {
                        registry,
                        status,
                        message,
                    }
                }
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                404 => not_found(),
                401 | 403 => denied(),
                _ => OciError::Registry {
                    registry,
                    status: Some(code),
                    message: format!("HTTP {code}: {}", truncate(&message, 200)),
                },
            },
            OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => OciError::DigestMismatch {
                what: "manifest",
                expected,
                actual,
            },
            OciDistributionError::IoError(e) => OciError::Unreachable {
                registry,
                source: Box::new(e),
            },
            other => OciError::Registry {
                registry,
                status: None,
                message: other.to_string(),
            },
        }
    }
}

/// Runs `fut`, turning an elapsed `limit` into [`OciError::Timeout`].
async fn with_timeout<T>(
    url: &OciUrl,
    operation: &'static str,
    limit: Duration,
    fut: impl Future<Output = Result<T, OciError>>,
) -> Result<T, OciError> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(OciError::Timeout {
            registry: url.registry().to_owned(),
            operation,
            after: limit,
        })
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// oci-client clients kept for reuse, so that a thousand OCIRepositories on one registry do
/// not each build an HTTP client (and load the system's root certificates) per reconcile.
///
/// oci-client remembers the tokens it obtained for the credentials it was used with, so a
/// client is shared only between calls with the same credentials: they are part of the key
/// (as a SHA-256 fingerprint, never in clear), with the registry, the protocol and the time
/// limit.
struct ClientPool {
    clients: std::sync::Mutex<HashMap<PoolKey, (Client, u64)>>,
    uses: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    registry: String,
    insecure: bool,
    timeout: Duration,
    credentials: [u8; 32],
}

impl ClientPool {
    /// Clients kept at most; the least recently used one goes first.
    const CAPACITY: usize = 128;

    fn global() -> &'static Self {
        static POOL: std::sync::OnceLock<ClientPool> = std::sync::OnceLock::new();
        POOL.get_or_init(|| Self {
            clients: std::sync::Mutex::new(HashMap::new()),
            uses: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn client(
        &self,
        url: &OciUrl,
        auth: &OciAuth,
        options: &OciOptions,
    ) -> Result<Client, OciError> {
        use sha2::Digest as _;
        let credentials = match auth {
            OciAuth::Anonymous => sha2::Sha256::digest(b"anonymous"),
            OciAuth::Basic { username, password } => {
                let mut hasher = sha2::Sha256::new();
                hasher.update(b"basic\0");
                hasher.update(username.as_bytes());
                hasher.update(b"\0");
                hasher.update(password.as_bytes());
                hasher.finalize()
            }
        };
        let key = PoolKey {
            registry: url.registry().to_owned(),
            insecure: options.insecure,
            timeout: options.timeout,
            credentials: credentials.into(),
        };
        let stamp = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((client, last_used)) = clients.get_mut(&key) {
            *last_used = stamp;
            return Ok(client.clone());
        }
        let client = new_client(url, options)?;
        if clients.len() >= Self::CAPACITY
            && let Some(oldest) = clients
                .iter()
                .min_by_key(|(_, (_, last_used))| *last_used)
                .map(|(key, _)| key.clone())
        {
            clients.remove(&oldest);
        }
        clients.insert(key, (client.clone(), stamp));
        Ok(client)
    }
}

/// A new oci-client client for the protocol and time limit of `options`.
fn new_client(url: &OciUrl, options: &OciOptions) -> Result<Client, OciError> {
    toolkit_sdk::tls::install_crypto_provider();
    let config = ClientConfig {
        protocol: if options.insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(options.timeout.min(toolkit_sdk::tls::CONNECT_TIMEOUT)),
        read_timeout: Some(options.timeout),
        user_agent: toolkit_sdk::tls::USER_AGENT,
        max_concurrent_download: 1,
        ..ClientConfig::default()
    };
    Client::try_from(config).map_err(|e| OciError::Unreachable {
        registry: url.registry().to_owned(),
        source: Box::new(e),
    })
}
