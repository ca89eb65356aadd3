//! Registry credentials from `kubernetes.io/dockerconfigjson` secrets.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use k8s_openapi::ByteString;
use serde::Deserialize;

use super::OciError;

/// The key of a `kubernetes.io/dockerconfigjson` secret holding the docker config JSON.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";

/// The key of a legacy `kubernetes.io/dockercfg` secret (a bare `{host: {auth}}` map).
pub const DOCKER_CFG_KEY: &str = ".dockercfg";

/// How to authenticate to a registry.
///
/// `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum OciAuth {
    /// No credentials (anonymous pulls; a token server may still hand out anonymous tokens).
    #[default]
    Anonymous,
    /// A user name and password (or token), sent as HTTP basic auth or exchanged for a
    /// bearer token, whichever the registry asks for.
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
}

impl fmt::Debug for OciAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// One entry of `auths`.
#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// An identity token (OAuth refresh token); used as the password with user `<token>`.
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

impl OciAuth {
    /// The credentials for `registry` (a host such as `ghcr.io` or `127.0.0.1:5000`) in the
    /// data of a `kubernetes.io/dockerconfigjson` secret (key `.dockerconfigjson`), or of a
    /// legacy `kubernetes.io/dockercfg` secret (key `.dockercfg`).
    ///
    /// Entries are matched by host: `ghcr.io`, `https://ghcr.io` and `https://ghcr.io/v1/`
    /// all match `ghcr.io`; `docker.io`, `index.docker.io` and `registry-1.docker.io` are
    /// one registry; a `*.example.com` entry matches one subdomain level. A secret without an
    /// entry for the registry gives [`OciAuth::Anonymous`], as in Flux.
    ///
    /// # Errors
    ///
    /// [`OciError::InvalidCredentials`] when the secret has neither key, the JSON is malformed,
    /// or the matching entry's `auth` is not base64 `user:password` (the message never quotes
    /// the secret).
    pub fn from_secret(
        data: &BTreeMap<String, ByteString>,
        registry: &str,
    ) -> Result<Self, OciError> {
        if let Some(json) = data.get(DOCKER_CONFIG_JSON_KEY) {
            return Self::from_docker_config_json(&json.0, registry);
        }
        if let Some(json) = data.get(DOCKER_CFG_KEY) {
            let auths: BTreeMap<String, AuthEntry> = serde_json::from_slice(&json.0)
                .map_err(|e| invalid(format!("`{DOCKER_CFG_KEY}` is not valid JSON: {e}")))?;
            return Self::from_auths(auths, registry);
        }
        Err(invalid(format!(
            "the secret has no `{DOCKER_CONFIG_JSON_KEY}` key; a `kubernetes.io/dockerconfigjson` \
             secret is expected"
        )))
    }

    /// The credentials for `registry` in a docker config JSON
    /// (`{"auths": {"<host>": {"auth": "<base64 user:pass>"}}}`); see [`OciAuth::from_secret`].
    ///
    /// # Errors
    ///
    /// As [`OciAuth::from_secret`].
    pub fn from_docker_config_json(json: &[u8], registry: &str) -> Result<Self, OciError> {
        let config: DockerConfig = serde_json::from_slice(json).map_err(|e| {
            // serde_json errors name a position and a category, never the content.
            invalid(format!("`{DOCKER_CONFIG_JSON_KEY}` is not valid JSON: {e}"))
        })?;
        Self::from_auths(config.auths, registry)
    }

    /// Whether credentials are present.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous)
    }

    fn from_auths(auths: BTreeMap<String, AuthEntry>, registry: &str) -> Result<Self, OciError> {
        let wanted = canonical_host(registry);
        let entry = auths
            .iter()
            .find(|(key, _)| canonical_host(&normalise_key(key)) == wanted)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(key, _)| wildcard_matches(&normalise_key(key), &wanted))
            });
        let Some((key, entry)) = entry else {
            return Ok(Self::Anonymous);
        };
        let key = normalise_key(key);
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| invalid(format!("the `auth` of `{key}` is not valid base64")))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| invalid(format!("the `auth` of `{key}` is not UTF-8")))?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                invalid(format!(
                    "the `auth` of `{key}` must be base64 of `user:password`"
                ))
            })?;
            return Ok(Self::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        if let Some(token) = entry.identity_token.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Self::Basic {
                username: "<token>".to_owned(),
                password: token.to_owned(),
            });
        }
        match (entry.username.as_deref(), entry.password.as_deref()) {
            (Some(username), Some(password)) if !username.is_empty() => Ok(Self::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(invalid(format!(
                "the entry for `{key}` has neither `auth` nor `username` and `password`"
            ))),
        }
    }

    /// The credentials in oci-client's form.
    pub(crate) fn to_registry_auth(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            Self::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone())
            }
        }
    }
}

fn invalid(why: String) -> OciError {
    OciError::InvalidCredentials { why }
}

/// `https://host/v1/` -> `host`.
fn normalise_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    host.to_ascii_lowercase()
}

/// Docker Hub's many names as one.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    }
}

/// `*.example.com` matches `a.example.com` (one label, as the Kubernetes keyring does).
fn wildcard_matches(pattern: &str, host: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    host.strip_suffix(suffix)
        .and_then(|label| label.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(key: &str, value: &serde_json::Value) -> BTreeMap<String, ByteString> {
        BTreeMap::from([(key.to_owned(), ByteString(value.to_string().into_bytes()))])
    }

    fn basic(user: &str, password: &str) -> OciAuth {
        OciAuth::Basic {
            username: user.into(),
            password: password.into(),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn credentials_are_found_by_registry_host() {
        let config = json!({"auths": {
            "127.0.0.1:5000": {"auth": b64("flux:s3cret")},
            "https://ghcr.io/v1/": {"username": "bot", "password": "tok"},
            "https://index.docker.io/v1/": {"auth": b64("hub:pw:with:colons")},
            "*.example.com": {"auth": b64("wild:card")},
            "token.example.org": {"identitytoken": "refresh"}
        }});
        let data = secret(DOCKER_CONFIG_JSON_KEY, &config);
        let cases = [
            ("127.0.0.1:5000", basic("flux", "s3cret")),
            ("ghcr.io", basic("bot", "tok")),
            ("docker.io", basic("hub", "pw:with:colons")),
            ("index.docker.io", basic("hub", "pw:with:colons")),
            ("registry.example.com", basic("wild", "card")),
            ("token.example.org", basic("<token>", "refresh")),
            ("a.b.example.com", OciAuth::Anonymous),
            ("127.0.0.1:5001", OciAuth::Anonymous),
            ("quay.io", OciAuth::Anonymous),
        ];
        for (registry, want) in cases {
            assert_eq!(
                OciAuth::from_secret(&data, registry).unwrap(),
                want,
                "{registry}"
            );
        }
    }

    #[test]
    fn legacy_dockercfg_is_read() {
        let data = secret(DOCKER_CFG_KEY, &json!({"quay.io": {"auth": b64("u:p")}}));
        assert_eq!(
            OciAuth::from_secret(&data, "quay.io").unwrap(),
            basic("u", "p")
        );
    }

    #[test]
    fn broken_secrets_are_reported_without_their_content() {
        let cases = [
            secret("username", &json!("x")),
            BTreeMap::from([(
                DOCKER_CONFIG_JSON_KEY.to_owned(),
                ByteString(b"{not json s3cret".to_vec()),
            )]),
            secret(
                DOCKER_CONFIG_JSON_KEY,
                &json!({"auths": {"ghcr.io": {"auth": "!!s3cret!!"}}}),
            ),
            secret(
                DOCKER_CONFIG_JSON_KEY,
                &json!({"auths": {"ghcr.io": {"auth": b64("nocolons3cret")}}}),
            ),
            secret(
                DOCKER_CONFIG_JSON_KEY,
                &json!({"auths": {"ghcr.io": {"username": "u"}}}),
            ),
        ];
        for data in cases {
            let err = OciAuth::from_secret(&data, "ghcr.io").unwrap_err();
            assert!(
                matches!(err, OciError::InvalidCredentials { .. }),
                "{err:?}"
            );
            assert!(!err.to_string().contains("s3cret"), "{err}");
            assert_eq!(err.reason(), "AuthenticationFailed");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", basic("flux", "s3cret"));
        assert!(
            shown.contains("flux") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
