//! The `gcr` Receiver type: Google Pub/Sub push requests carry an OIDC ID token signed by
//! Google in `Authorization: Bearer <token>`.
//!
//! The token is checked as Google documents for authenticated push subscriptions: an RS256
//! signature by one of Google's published keys (fetched from the certificates URL, cached for
//! an hour and fetched again when a token names an unknown key), the issuer
//! `accounts.google.com` (with or without `https://`), the audience from the Secret's
//! `audience` key, an expiry in the future, and the service account from the Secret's `email`
//! key with `email_verified: true`.
//!
//! # Caveats
//!
//! Google's keys are fetched over the network from [`GOOGLE_CERTS_URL`]; a controller without
//! egress to Google cannot accept `gcr` requests (they are refused, nothing is reconciled).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

use super::verify::Rejected;

/// Where Google publishes the keys that sign its OIDC ID tokens (JWK set).
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The issuers Google writes into its ID tokens.
const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];

/// How long fetched keys are trusted before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(3600);

/// The shortest time between two fetches triggered by an unknown key id.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Clock skew tolerated on the token's expiry.
const LEEWAY_SECONDS: i64 = 30;

/// Checks Google-signed OIDC ID tokens; shared by every request (keys are cached).
#[derive(Debug)]
pub struct GoogleTokenVerifier {
    certs_url: String,
    http: reqwest::Client,
    keys: Mutex<KeyCache>,
}

#[derive(Debug, Default)]
struct KeyCache {
    fetched: Option<Instant>,
    keys: HashMap<String, RsaKey>,
}

#[derive(Debug, Clone)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: String,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    #[serde(default)]
    kid: String,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    aud: Audience,
    #[serde(default)]
    exp: i64,
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(list) => list.iter().any(|a| a == wanted),
            Audience::None => false,
        }
    }
}

impl GoogleTokenVerifier {
    /// A verifier that fetches keys from `certs_url` (normally [`GOOGLE_CERTS_URL`]).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(certs_url: impl Into<String>) -> Result<Self, reqwest::Error> {
        toolkit_sdk::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            certs_url: certs_url.into(),
            http,
            keys: Mutex::new(KeyCache::default()),
        })
    }

    /// Checks the `Authorization` header of a push request against the expected `audience`
    /// and service account `email`.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        audience: &str,
        email: &str,
    ) -> Result<(), Rejected> {
        let unauthorized = |m: &str| Rejected::Unauthorized(format!("invalid ID token: {m}"));
        let token = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Rejected::Unauthorized("the Authorization header is missing or malformed".into())
            })?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unauthorized("not a JWT"));
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| unauthorized("not base64url"))
        };
        let head: JwtHeader = serde_json::from_slice(&decode(header)?)
            .map_err(|_| unauthorized("malformed header"))?;
        if head.alg != "RS256" {
            return Err(unauthorized(&format!(
                "unsupported algorithm '{}'",
                head.alg
            )));
        }
        let key = self.key(&head.kid).await?;
        let signed = &token[..header.len() + 1 + payload.len()];
        ring::signature::RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &decode(signature)?,
        )
        .map_err(|_| unauthorized("bad signature"))?;

        let claims: Claims = serde_json::from_slice(&decode(payload)?)
            .map_err(|_| unauthorized("malformed claims"))?;
        if !GOOGLE_ISSUERS.contains(&claims.iss.as_str()) {
            return Err(unauthorized(&format!(
                "issuer is '{}', want 'accounts.google.com'",
                claims.iss
            )));
        }
        if !claims.aud.contains(audience) {
            return Err(unauthorized("audience does not match"));
        }
        if claims.exp + LEEWAY_SECONDS < jiff::Timestamp::now().as_second() {
            return Err(unauthorized("token expired"));
        }
        if !bool::from(claims.email.as_bytes().ct_eq(email.as_bytes())) {
            return Err(unauthorized(&format!(
                "token email is '{}', want '{email}'",
                claims.email
            )));
        }
        if !claims.email_verified {
            return Err(unauthorized("token email is not verified"));
        }
        Ok(())
    }

    /// The key `kid`, fetching the key set when it is stale or does not have it.
    async fn key(&self, kid: &str) -> Result<RsaKey, Rejected> {
        let mut cache = self.keys.lock().await;
        let stale = cache.fetched.is_none_or(|t| t.elapsed() > KEYS_TTL);
        let unknown = !cache.keys.contains_key(kid)
            && cache.fetched.is_none_or(|t| t.elapsed() > REFETCH_INTERVAL);
        if stale || unknown {
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                Err(error) => {
                    tracing::error!(url = %self.certs_url, %error, "cannot fetch Google's token signing keys");
                    if cache.keys.is_empty() {
                        return Err(Rejected::Misconfigured(
                            "cannot fetch Google's token signing keys".into(),
                        ));
                    }
                }
            }
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            Rejected::Unauthorized("invalid ID token: signed by an unknown key".into())
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, RsaKey>, reqwest::Error> {
        let set: JwkSet = self
            .http
            .get(&self.certs_url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(set
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA")
            .filter_map(|k| {
                let n = URL_SAFE_NO_PAD.decode(k.n.trim_end_matches('=')).ok()?;
                let e = URL_SAFE_NO_PAD.decode(k.e.trim_end_matches('=')).ok()?;
                Some((k.kid, RsaKey { n, e }))
            })
            .collect())
    }
}
