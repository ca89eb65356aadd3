//! Credentials for a Git remote, read from a Flux credentials secret.

use std::collections::BTreeMap;
use std::fmt;

use super::error::GitError;
use super::url::{GitUrl, Scheme};

/// The user name of SSH URLs that name none (`ssh://host/repo`), as Git hosts expect.
pub const DEFAULT_SSH_USER: &str = "git";

/// How to authenticate to one Git remote: built from the `spec.secretRef` secret of a
/// GitRepository with [`GitAuth::from_secret`].
///
/// `Debug` prints which kind of credentials are present, never their values.
#[derive(Clone, Default)]
pub struct GitAuth {
    pub(crate) http: Option<HttpCredentials>,
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) ssh: Option<SshCredentials>,
}

/// HTTP(S) credentials.
#[derive(Clone)]
pub(crate) enum HttpCredentials {
    /// `Authorization: Basic`.
    Basic { username: String, password: String },
    /// `Authorization: Bearer`.
    Bearer(String),
}

/// SSH credentials: a private key and the host keys to trust.
#[derive(Clone)]
pub(crate) struct SshCredentials {
    /// The login user: the URL's, or [`DEFAULT_SSH_USER`].
    pub(crate) user: String,
    /// The private key, decrypted, in the format `ssh` reads (OpenSSH or PEM).
    pub(crate) identity: Vec<u8>,
    /// `known_hosts` lines.
    pub(crate) known_hosts: Vec<u8>,
}

impl GitAuth {
    /// No credentials: anonymous HTTP(S) with the system's trusted CAs. (SSH always needs a
    /// secret; see [`GitAuth::from_secret`].)
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Reads Flux's keys of a credentials secret for `url`; pass an empty map when the object
    /// has no `secretRef` (it is then validated the same way).
    ///
    /// - `https://` / `http://`: `bearerToken` (takes precedence), else `username` and
    ///   `password` (user info in the URL fills in what the secret leaves out; a password
    ///   needs a username); `ca.crt` (or the legacy `caFile`, when `ca.crt` is absent) adds a
    ///   trusted CA to the system ones.
    /// - `ssh://`: `identity` (a private key, OpenSSH or PEM) and `known_hosts` are required;
    ///   `password` decrypts an encrypted OpenSSH `identity`. The login user is the URL's, or
    ///   [`DEFAULT_SSH_USER`]. (`identity.pub` is accepted and not needed.)
    ///
    /// # Errors
    /// [`GitError::InvalidUrl`] for an unsupported URL, [`GitError::InvalidCredentials`]
    /// naming the missing or malformed key (never its value).
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>, url: &str) -> Result<Self, GitError> {
        let url = GitUrl::parse(url)?;
        let text = |key: &str| -> Result<Option<String>, GitError> {
            match data.get(key) {
                None => Ok(None),
                Some(bytes) => String::from_utf8(bytes.clone())
                    .map(Some)
                    .map_err(|_| GitError::InvalidCredentials(format!("'{key}' is not UTF-8"))),
            }
        };
        match url.scheme {
            Scheme::Ssh => {
                let identity = data
                    .get("identity")
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| missing("ssh", "identity"))?;
                let known_hosts = data
                    .get("known_hosts")
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| missing("ssh", "known_hosts"))?;
                let passphrase = text("password")?.filter(|p| !p.is_empty());
                let identity = decrypt_identity(identity, passphrase.as_deref())?;
                let user = url
                    .user
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| DEFAULT_SSH_USER.to_string());
                Ok(Self {
                    http: None,
                    ca_pem: None,
                    ssh: Some(SshCredentials {
                        user,
                        identity,
                        known_hosts: known_hosts.clone(),
                    }),
                })
            }
            Scheme::Http | Scheme::Https => {
                let ca_pem = ["ca.crt", "caFile"]
                    .iter()
                    .find_map(|key| data.get(*key).filter(|v| !v.is_empty()))
                    .cloned();
                if let Some(ca) = &ca_pem {
                    validate_ca(ca)?;
                }
                let http = if data.contains_key("bearerToken") {
                    let token = text("bearerToken")?.unwrap_or_default();
                    Some(HttpCredentials::Bearer(token.trim().to_string()))
                } else {
                    let username = text("username")?
                        .filter(|u| !u.is_empty())
                        .or_else(|| url.user.clone())
                        .unwrap_or_default();
                    let password = text("password")?
                        .filter(|p| !p.is_empty())
                        .or_else(|| url.password.clone())
                        .unwrap_or_default();
                    if username.is_empty() && !password.is_empty() {
                        return Err(GitError::InvalidCredentials(format!(
                            "invalid '{}' auth option: 'password' requires 'username' to be set",
                            url.scheme.as_str()
                        )));
                    }
                    (!username.is_empty()).then_some(HttpCredentials::Basic { username, password })
                };
                Ok(Self {
                    http,
                    ca_pem,
                    ssh: None,
                })
            }
        }
    }

    /// HTTP basic auth (for callers that do not read a secret).
    pub fn basic(username: &str, password: &str) -> Self {
        Self {
            http: Some(HttpCredentials::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }),
            ..Self::default()
        }
    }

    /// An `Authorization: Bearer` token (for callers that do not read a secret).
    pub fn bearer(token: &str) -> Self {
        Self {
            http: Some(HttpCredentials::Bearer(token.to_string())),
            ..Self::default()
        }
    }

    /// Whether any credential or CA is set.
    pub fn is_anonymous(&self) -> bool {
        self.http.is_none() && self.ca_pem.is_none() && self.ssh.is_none()
    }

    /// What kind of credentials these are, for logs: `anonymous`, `basic`, `bearer` or `ssh`.
    pub fn kind(&self) -> &'static str {
        match (&self.http, &self.ssh) {
            (_, Some(_)) => "ssh",
            (Some(HttpCredentials::Basic { .. }), _) => "basic",
            (Some(HttpCredentials::Bearer(_)), _) => "bearer",
            (None, None) => "anonymous",
        }
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitAuth")
            .field("kind", &self.kind())
            .field("custom_ca", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

fn missing(transport: &str, key: &str) -> GitError {
    GitError::InvalidCredentials(format!(
        "invalid '{transport}' auth option: '{key}' is required"
    ))
}

/// Checks that `ca.crt` holds at least one PEM certificate.
fn validate_ca(pem: &[u8]) -> Result<(), GitError> {
    match reqwest::Certificate::from_pem_bundle(pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        _ => Err(GitError::InvalidCredentials(
            "'ca.crt' does not hold a PEM certificate".to_string(),
        )),
    }
}

/// Returns the identity in a form `ssh` reads without a passphrase: an encrypted OpenSSH key
/// is decrypted with `passphrase`; other keys are kept as they are.
fn decrypt_identity(identity: &[u8], passphrase: Option<&str>) -> Result<Vec<u8>, GitError> {
    let invalid = |what: &str| GitError::InvalidCredentials(format!("'identity' {what}"));
    let text = std::str::from_utf8(identity).map_err(|_| invalid("is not a PEM private key"))?;
    if !text.contains("-----BEGIN ") || !text.contains("PRIVATE KEY-----") {
        return Err(invalid("is not a PEM private key"));
    }
    if !text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        if text.contains("ENCRYPTED") {
            return Err(invalid(
                "is an encrypted PEM key; only encrypted OpenSSH keys can be decrypted with 'password'",
            ));
        }
        return Ok(normalize_newline(identity));
    }
    let key = ssh_key::PrivateKey::from_openssh(text)
        .map_err(|_| invalid("is not a valid OpenSSH private key"))?;
    if !key.is_encrypted() {
        return Ok(normalize_newline(identity));
    }
    let passphrase = passphrase.ok_or_else(|| {
        GitError::InvalidCredentials(
            "'identity' is encrypted and the secret has no 'password'".to_string(),
        )
    })?;
    let decrypted = key
        .decrypt(passphrase)
        .map_err(|_| invalid("cannot be decrypted with 'password'"))?;
    let pem = decrypted
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|_| invalid("cannot be re-encoded"))?;
    Ok(pem.as_bytes().to_vec())
}

/// `ssh` refuses a key file without a final newline.
fn normalize_newline(key: &[u8]) -> Vec<u8> {
    let mut key = key.to_vec();
    if !key.ends_with(b"\n") {
        key.push(b'\n');
    }
    key
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn https_basic_bearer_and_url_user_info() {
        let auth = GitAuth::from_secret(
            &secret(&[("username", "flux"), ("password", "s3cret")]),
            "https://example.com/org/repo",
        )
        .unwrap();
        assert_eq!(auth.kind(), "basic");

        let auth = GitAuth::from_secret(
            &secret(&[
                ("bearerToken", "tok"),
                ("username", "flux"),
                ("password", "x"),
            ]),
            "https://example.com/org/repo",
        )
        .unwrap();
        assert_eq!(auth.kind(), "bearer");

        let auth = GitAuth::from_secret(&secret(&[]), "https://user:pw@example.com/repo").unwrap();
        assert!(matches!(
            auth.http,
            Some(HttpCredentials::Basic { ref username, ref password }) if username == "user" && password == "pw"
        ));

        let auth = GitAuth::from_secret(&secret(&[]), "http://example.com/repo").unwrap();
        assert!(auth.is_anonymous());
    }

    #[test]
    fn password_without_username_is_rejected_without_echoing_it() {
        let err = GitAuth::from_secret(
            &secret(&[("password", "hunter2")]),
            "https://example.com/repo",
        )
        .unwrap_err();
        assert!(matches!(err, GitError::InvalidCredentials(_)));
        assert!(
            err.is_retryable() && !err.is_stalled(),
            "a Secret fix needs no new generation"
        );
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn ssh_requires_identity_and_known_hosts() {
        let err = GitAuth::from_secret(&secret(&[]), "ssh://git@example.com/repo").unwrap_err();
        assert!(err.to_string().contains("'identity' is required"), "{err}");
        let err = GitAuth::from_secret(
            &secret(&[(
                "identity",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
            )]),
            "ssh://git@example.com/repo",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("'known_hosts' is required"),
            "{err}"
        );
        let err = GitAuth::from_secret(
            &secret(&[
                ("identity", "not a key"),
                ("known_hosts", "example.com ssh-ed25519 AAAA"),
            ]),
            "ssh://git@example.com/repo",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("not a key"));
    }

    #[test]
    fn invalid_ca_and_urls() {
        let err = GitAuth::from_secret(
            &secret(&[("ca.crt", "garbage")]),
            "https://example.com/repo",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ca.crt"), "{err}");
        for url in [
            "git@github.com:org/repo.git",
            "ftp://example.com/repo",
            "",
            "https://",
        ] {
            assert!(
                matches!(
                    GitAuth::from_secret(&secret(&[]), url),
                    Err(GitError::InvalidUrl { .. })
                ),
                "{url:?}"
            );
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let auth = GitAuth::basic("flux", "hunter2");
        let printed = format!("{auth:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("flux"),
            "{printed}"
        );
        assert!(printed.contains("basic"));
    }
}
