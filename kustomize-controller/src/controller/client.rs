//! The client a Kustomization's objects are applied with: the controller's own, one that
//! impersonates a ServiceAccount (`spec.serviceAccountName` or `--default-service-account`),
//! or one for another cluster (`spec.kubeConfig.secretRef`), impersonating as well when a
//! ServiceAccount is named.
//!
//! Impersonation is Kubernetes' own (`Impersonate-User: system:serviceaccount:<ns>:<name>`),
//! so every request is authorised as the ServiceAccount: a tenant applies only what its RBAC
//! allows. The controller itself needs the `impersonate` verb on `serviceaccounts`.
//!
//! Clients for the local cluster are cached per ServiceAccount (one connection pool each); a
//! remote cluster's client is built for each reconcile from the Secret, so a rotated
//! kubeconfig is picked up at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::apply::ApiCache;

/// The Secret keys a kubeconfig is read from when `secretRef.key` is not set, in order.
pub const KUBECONFIG_KEYS: [&str; 2] = ["value", "value.yaml"];

/// Why the client of a Kustomization could not be built. Messages never contain the
/// kubeconfig's content.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig Secret could not be read.
    #[error("cannot read the kubeconfig Secret '{namespace}/{name}'")]
    SecretRead {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The Secret does not exist.
    #[error("kubeconfig Secret '{namespace}/{name}' not found")]
    SecretNotFound {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
    },
    /// The Secret has none of the keys looked for.
    #[error("kubeconfig Secret '{namespace}/{name}' has no key {keys}")]
    KeyMissing {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The keys looked for, quoted.
        keys: String,
    },
    /// The kubeconfig does not parse or cannot be turned into a client.
    #[error("invalid kubeconfig in Secret '{namespace}/{name}'")]
    InvalidKubeconfig {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// What was wrong (the parser's message; never the file's content).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `kubeConfig.configMapRef` (workload identity) is not supported.
    #[error("spec.kubeConfig.configMapRef (workload identity) is not supported; use secretRef")]
    ConfigMapRefUnsupported,
    /// Neither `secretRef` nor `configMapRef` is set.
    #[error("spec.kubeConfig must set secretRef")]
    NoKubeConfigReference,
    /// A client could not be built from the controller's configuration.
    #[error("cannot build a client impersonating '{user}'")]
    Build {
        /// The impersonated user.
        user: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// Where and as whom a Kustomization's objects are applied.
#[derive(Clone)]
pub struct Target {
    /// The client to apply, prune and check health with.
    pub client: Client,
    /// The discovery cache of that cluster.
    pub cache: ApiCache,
    /// The impersonated user, if any.
    pub user: Option<String>,
    /// Whether the objects go to another cluster (`spec.kubeConfig`).
    pub remote: bool,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("user", &self.user)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// The user name Kubernetes gives the ServiceAccount `namespace/name`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Builds and caches the clients of Kustomizations. Cheap to clone.
#[derive(Clone)]
pub struct Clients {
    config: Config,
    client: Client,
    cache: ApiCache,
    impersonating: Arc<Mutex<HashMap<String, Client>>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    /// Clients derived from the controller's own `config` (and `client`, built from it), with
    /// the process's discovery cache for the local cluster.
    pub fn new(config: Config, client: Client, cache: ApiCache) -> Self {
        Self {
            config,
            client,
            cache,
            impersonating: Arc::default(),
        }
    }

    /// The controller's own client.
    pub fn own(&self) -> &Client {
        &self.client
    }

    /// The discovery cache of the local cluster.
    pub fn cache(&self) -> &ApiCache {
        &self.cache
    }

    /// The target of a Kustomization in `namespace` with the given ServiceAccount (already
    /// defaulted) and `spec.kubeConfig`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn target(
        &self,
        namespace: &str,
        service_account: Option<&str>,
        kube_config: Option<&toolkit_sdk::api::KubeConfigReference>,
    ) -> Result<Target, ClientError> {
        let user = service_account.map(|sa| service_account_user(namespace, sa));
        if let Some(reference) = kube_config {
            let mut config = self.remote_config(namespace, reference).await?;
            if let Some(user) = &user {
                config.auth_info.impersonate = Some(user.clone());
                config.auth_info.impersonate_groups = None;
            }
            let client = Client::try_from(config).map_err(|source| ClientError::Build {
                user: user.clone().unwrap_or_default(),
                source,
            })?;
            return Ok(Target {
                client,
                cache: ApiCache::new(),
                user,
                remote: true,
            });
        }
        let Some(user) = user else {
            return Ok(Target {
                client: self.client.clone(),
                cache: self.cache.clone(),
                user: None,
                remote: false,
            });
        };
        let client = self.impersonating_client(&user)?;
        Ok(Target {
            client,
            cache: self.cache.clone(),
            user: Some(user),
            remote: false,
        })
    }

    /// Whether the ServiceAccount `namespace/name` exists (checked before pruning on deletion,
    /// as Flux does: a deleted account cannot be impersonated).
    pub async fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        matches!(api.get_opt(name).await, Ok(Some(_)))
    }

    fn impersonating_client(&self, user: &str) -> Result<Client, ClientError> {
        let mut clients = self
            .impersonating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(user) {
            return Ok(client.clone());
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = None;
        let client = Client::try_from(config).map_err(|source| ClientError::Build {
            user: user.to_owned(),
            source,
        })?;
        clients.insert(user.to_owned(), client.clone());
        Ok(client)
    }

    async fn remote_config(
        &self,
        namespace: &str,
        reference: &toolkit_sdk::api::KubeConfigReference,
    ) -> Result<Config, ClientError> {
        let Some(secret_ref) = &reference.secret_ref else {
            return Err(if reference.config_map_ref.is_some() {
                ClientError::ConfigMapRefUnsupported
            } else {
                ClientError::NoKubeConfigReference
            });
        };
        let name = secret_ref.name.clone();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_opt(&name)
            .await
            .map_err(|source| ClientError::SecretRead {
                namespace: namespace.to_owned(),
                name: name.clone(),
                source,
            })?
            .ok_or_else(|| ClientError::SecretNotFound {
                namespace: namespace.to_owned(),
                name: name.clone(),
            })?;
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let keys: Vec<&str> = match secret_ref.key.as_deref() {
            Some(key) if !key.is_empty() => vec![key],
            _ => KUBECONFIG_KEYS.to_vec(),
        };
        let bytes =
            keys.iter()
                .find_map(|k| data.get(*k))
                .ok_or_else(|| ClientError::KeyMissing {
                    namespace: namespace.to_owned(),
                    name: name.clone(),
                    keys: keys
                        .iter()
                        .map(|k| format!("'{k}'"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                })?;
        let invalid =
            |source: Box<dyn std::error::Error + Send + Sync>| ClientError::InvalidKubeconfig {
                namespace: namespace.to_owned(),
                name: name.clone(),
                source,
            };
        let text = std::str::from_utf8(bytes).map_err(|e| invalid(Box::new(e)))?;
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| invalid(Box::new(e)))?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| invalid(Box::new(e)))
    }
}
