//! Resolving a Provider and its Secrets into [`ProviderSettings`], as Flux reads them.
//!
//! | source | keys |
//! |---|---|
//! | `spec` | `type`, `address`, `channel`, `username`, `timeout` (15s), `proxy` (deprecated) |
//! | `secretRef` | `address` (wins over `spec.address`), `token`, `username` (wins over `spec.username`), `password`, `headers` (YAML map), `proxy` (deprecated) |
//! | `proxySecretRef` | `address`, optional `username` and `password` (wins over both `proxy`s) |
//! | `certSecretRef` | `ca.crt`, `tls.crt`, `tls.key` (or the legacy `caFile`, `certFile`, `keyFile`); for the commit status types without one, `ca.crt` of `secretRef` |
//!
//! # Errors
//!
//! Messages name the Secret and the key, never a value: a URL, a token or a header may be a
//! secret itself.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};

use crate::api::v1beta3::{MAX_FIELD_LENGTH, Provider};
use crate::provider::ProviderSettings;

/// Why a Provider's settings cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A referenced Secret does not exist.
    #[error("secret '{namespace}/{name}' referenced by spec.{field} not found")]
    SecretNotFound {
        /// The referencing field: `secretRef`, `certSecretRef` or `proxySecretRef`.
        field: &'static str,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// A referenced Secret could not be read.
    #[error("cannot read secret '{namespace}/{name}' referenced by spec.{field}")]
    SecretRead {
        /// The referencing field.
        field: &'static str,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A key holds something unusable (not UTF-8, not a map, too long, not a URL).
    #[error("invalid key '{key}' in secret '{namespace}/{name}': {reason}")]
    InvalidKey {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key.
        key: &'static str,
        /// What is wrong, without the value.
        reason: &'static str,
    },
    /// A required key is missing.
    #[error("secret '{namespace}/{name}' referenced by spec.{field} has no '{key}' key")]
    MissingKey {
        /// The referencing field.
        field: &'static str,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key.
        key: &'static str,
    },
}

impl SettingsError {
    /// Whether the error is about a Secret that does not exist (yet): creating it fixes it.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::SecretNotFound { .. })
    }
}

/// The resourceVersions of the Secrets a Provider's settings were read from, in the order
/// `secretRef`, `certSecretRef`, `proxySecretRef`: `None` where nothing is referenced.
pub type SecretVersions = [Option<String>; 3];

/// Reads the Secrets of `provider` and returns its settings.
///
/// # Errors
///
/// [`SettingsError`] when a Secret is missing, unreadable or holds an unusable value.
pub async fn resolve(
    client: &Client,
    provider: &Provider,
) -> Result<ProviderSettings, SettingsError> {
    let namespace = provider.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let spec = &provider.spec;
    let secret = read(&api, &namespace, "secretRef", spec.secret_ref.as_ref()).await?;
    let certs = read(
        &api,
        &namespace,
        "certSecretRef",
        spec.cert_secret_ref.as_ref(),
    )
    .await?;
    let proxy = read(
        &api,
        &namespace,
        "proxySecretRef",
        spec.proxy_secret_ref.as_ref(),
    )
    .await?;
    settings_from(provider, secret.as_ref(), certs.as_ref(), proxy.as_ref())
}

async fn read(
    api: &Api<Secret>,
    namespace: &str,
    field: &'static str,
    reference: Option<&toolkit_sdk::api::LocalObjectReference>,
) -> Result<Option<Secret>, SettingsError> {
    let Some(reference) = reference else {
        return Ok(None);
    };
    match api.get_opt(&reference.name).await {
        Ok(Some(secret)) => Ok(Some(secret)),
        Ok(None) => Err(SettingsError::SecretNotFound {
            field,
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
        }),
        Err(source) => Err(SettingsError::SecretRead {
            field,
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
            source: Box::new(source),
        }),
    }
}

/// One Secret's keys, with errors that name it.
struct Keys<'a> {
    secret: &'a Secret,
}

impl Keys<'_> {
    fn bytes(&self, key: &str) -> Option<&[u8]> {
        self.secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .map(|v| v.0.as_slice())
    }

    fn text(&self, key: &'static str) -> Result<Option<String>, SettingsError> {
        match self.bytes(key) {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|_| self.invalid(key, "not valid UTF-8")),
        }
    }

    fn invalid(&self, key: &'static str, reason: &'static str) -> SettingsError {
        SettingsError::InvalidKey {
            namespace: self.secret.namespace().unwrap_or_default(),
            name: self.secret.name_any(),
            key,
            reason,
        }
    }

    fn first(&self, keys: [&str; 2]) -> Option<Vec<u8>> {
        keys.iter()
            .find_map(|key| self.bytes(key))
            .map(<[u8]>::to_vec)
    }
}

/// The settings of `provider` given the Secrets it references (pure; see [`resolve`]).
///
/// # Errors
///
/// [`SettingsError`] for unusable Secret values.
pub fn settings_from(
    provider: &Provider,
    secret: Option<&Secret>,
    certs: Option<&Secret>,
    proxy: Option<&Secret>,
) -> Result<ProviderSettings, SettingsError> {
    let spec = &provider.spec;
    let mut settings = ProviderSettings {
        provider_type: spec.type_.as_str().to_owned(),
        address: spec.address.trim().to_owned(),
        channel: spec.channel.clone(),
        username: spec.username.clone(),
        timeout: spec.timeout(),
        provider_uid: provider.uid().unwrap_or_default(),
        proxy: Some(spec.proxy.trim().to_owned()).filter(|p| !p.is_empty()),
        ..ProviderSettings::default()
    };
    if let Some(secret) = secret {
        let keys = Keys { secret };
        if let Some(address) = keys.text("address")? {
            if address.len() > MAX_FIELD_LENGTH as usize {
                return Err(keys.invalid("address", "longer than 2048 bytes"));
            }
            settings.address = address;
        }
        if let Some(proxy) = keys.text("proxy")? {
            check_proxy(&proxy).map_err(|reason| keys.invalid("proxy", reason))?;
            settings.proxy = Some(proxy);
        }
        if let Some(headers) = keys.bytes("headers") {
            let parsed: BTreeMap<String, String> =
                serde_yaml::from_slice(headers).map_err(|_| {
                    keys.invalid("headers", "expected a YAML map of header names to values")
                })?;
            settings.headers = parsed;
        }
        settings.token = keys.text("token")?.filter(|t| !t.is_empty());
        if let Some(username) = keys.text("username")?.filter(|u| !u.is_empty()) {
            settings.username = username;
        }
        settings.password = keys
            .bytes("password")
            .map(|p| {
                std::str::from_utf8(p)
                    .map(str::to_owned)
                    .map_err(|_| keys.invalid("password", "not valid UTF-8"))
            })
            .transpose()?;
        if certs.is_none() && spec.type_.is_commit_status() {
            settings.ca_pem = keys.first(["ca.crt", "caFile"]);
        }
    }
    if let Some(certs) = certs {
        let keys = Keys { secret: certs };
        settings.ca_pem = keys.first(["ca.crt", "caFile"]);
        settings.client_cert_pem = keys.first(["tls.crt", "certFile"]);
        settings.client_key_pem = keys.first(["tls.key", "keyFile"]);
    }
    if let Some(proxy) = proxy {
        let keys = Keys { secret: proxy };
        let Some(address) = keys.text("address")?.filter(|a| !a.is_empty()) else {
            return Err(SettingsError::MissingKey {
                field: "proxySecretRef",
                namespace: proxy.namespace().unwrap_or_default(),
                name: proxy.name_any(),
                key: "address",
            });
        };
        let mut url = check_proxy(&address).map_err(|reason| keys.invalid("address", reason))?;
        let username = keys.text("username")?.unwrap_or_default();
        let password = keys.text("password")?.unwrap_or_default();
        if !username.is_empty() || !password.is_empty() {
            url.set_username(&username)
                .map_err(|()| keys.invalid("username", "cannot be used in a proxy URL"))?;
            url.set_password(Some(&password))
                .map_err(|()| keys.invalid("password", "cannot be used in a proxy URL"))?;
        }
        settings.proxy = Some(url.to_string());
    }
    Ok(settings)
}

/// Parses a proxy address: an absolute `http` or `https` URL.
fn check_proxy(address: &str) -> Result<reqwest::Url, &'static str> {
    let url = reqwest::Url::parse(address).map_err(|_| "not a valid URL")?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err("the scheme must be http or https"),
    }
}

/// The resourceVersions of the Secrets `provider` references, as `lookup` knows them
/// (`Some("")` for a referenced Secret that `lookup` does not know).
pub fn secret_versions(
    provider: &Provider,
    lookup: impl Fn(&str) -> Option<String>,
) -> SecretVersions {
    let spec = &provider.spec;
    [
        spec.secret_ref.as_ref(),
        spec.cert_secret_ref.as_ref(),
        spec.proxy_secret_ref.as_ref(),
    ]
    .map(|reference| reference.map(|r| lookup(&r.name).unwrap_or_default()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(spec: serde_json::Value) -> Provider {
        serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
            "kind": "Provider",
            "metadata": {"name": "p", "namespace": "ns", "uid": "1234-5678"},
            "spec": spec
        }))
        .unwrap()
    }

    fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
        let data: BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "stringData": {},
            "data": data.into_iter().map(|(k, v)| (k, base64_of(&v))).collect::<BTreeMap<_, _>>()
        }))
        .unwrap()
    }

    fn base64_of(value: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(value)
    }

    #[test]
    fn spec_only() {
        let p = provider(
            json!({"type": "slack", "address": " https://hooks/x ", "channel": "c", "timeout": "30s"}),
        );
        let s = settings_from(&p, None, None, None).unwrap();
        assert_eq!(s.provider_type, "slack");
        assert_eq!(s.address, "https://hooks/x");
        assert_eq!(s.channel, "c");
        assert_eq!(s.timeout, std::time::Duration::from_secs(30));
        assert_eq!(s.provider_uid, "1234-5678");
        assert_eq!(s.token, None);
        assert_eq!(s.proxy, None);
    }

    #[test]
    fn secret_wins_and_fills_credentials() {
        let p = provider(
            json!({"type": "generic", "address": "https://spec", "username": "spec-user", "proxy": "http://spec-proxy:3128"}),
        );
        let s = secret(
            "creds",
            &[
                ("address", "https://secret\n"),
                ("token", "t0k3n"),
                ("username", "u"),
                ("password", "p w"),
                ("headers", "X-A: one\nX-B: two\n"),
            ],
        );
        let settings = settings_from(&p, Some(&s), None, None).unwrap();
        assert_eq!(settings.address, "https://secret");
        assert_eq!(settings.token.as_deref(), Some("t0k3n"));
        assert_eq!(settings.username, "u");
        assert_eq!(settings.password.as_deref(), Some("p w"));
        assert_eq!(settings.headers.get("X-B").map(String::as_str), Some("two"));
        assert_eq!(settings.proxy.as_deref(), Some("http://spec-proxy:3128"));
    }

    #[test]
    fn proxy_secret_embeds_credentials_and_wins() {
        let p = provider(json!({"type": "generic", "proxy": "http://spec-proxy:3128"}));
        let proxy = secret(
            "proxy",
            &[
                ("address", "http://proxy:8080"),
                ("username", "me"),
                ("password", "s3cret"),
            ],
        );
        let settings = settings_from(&p, None, None, Some(&proxy)).unwrap();
        assert_eq!(
            settings.proxy.as_deref(),
            Some("http://me:s3cret@proxy:8080/")
        );

        let no_address = secret("proxy", &[("username", "me")]);
        let err = settings_from(&p, None, None, Some(&no_address)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret 'ns/proxy' referenced by spec.proxySecretRef has no 'address' key"
        );
    }

    #[test]
    fn certificates_and_legacy_keys() {
        let p = provider(json!({"type": "generic"}));
        let certs = secret(
            "tls",
            &[("caFile", "CA"), ("tls.crt", "CRT"), ("tls.key", "KEY")],
        );
        let s = settings_from(&p, None, Some(&certs), None).unwrap();
        assert_eq!(s.ca_pem.as_deref(), Some(b"CA".as_slice()));
        assert_eq!(s.client_cert_pem.as_deref(), Some(b"CRT".as_slice()));
        assert_eq!(s.client_key_pem.as_deref(), Some(b"KEY".as_slice()));

        // Commit status types read ca.crt from secretRef when there is no certSecretRef.
        let github = provider(json!({"type": "github", "address": "https://github.com/o/r"}));
        let creds = secret("creds", &[("token", "t"), ("ca.crt", "CA2")]);
        let s = settings_from(&github, Some(&creds), None, None).unwrap();
        assert_eq!(s.ca_pem.as_deref(), Some(b"CA2".as_slice()));
        let s = settings_from(&p, Some(&creds), None, None).unwrap();
        assert_eq!(s.ca_pem, None);
    }

    #[test]
    fn bad_values_name_the_key_not_the_value() {
        let p = provider(json!({"type": "generic"}));
        let bad_headers = secret("creds", &[("headers", "- not-a-map-s3cret")]);
        let err = settings_from(&p, Some(&bad_headers), None, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("'headers'") && text.contains("ns/creds"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");

        let bad_proxy = secret("creds", &[("proxy", "socks5://s3cret@x")]);
        let err = settings_from(&p, Some(&bad_proxy), None, None).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn versions_follow_the_references() {
        let p = provider(
            json!({"type": "generic", "secretRef": {"name": "a"}, "proxySecretRef": {"name": "missing"}}),
        );
        let versions = secret_versions(&p, |name| (name == "a").then(|| "7".to_owned()));
        assert_eq!(versions, [Some("7".to_owned()), None, Some(String::new())]);
    }
}
