//! One TLS stack for the whole process: rustls with the `ring` crypto provider.
//!
//! Every HTTPS client in a Ferroflux controller (kube, reqwest, and anything built on them)
//! speaks TLS through rustls. rustls needs a *crypto provider* (the code that does the actual
//! hashing, signing and key exchange), and it picks one in one of two ways: from its own
//! crate features when exactly one provider is compiled in, or from a process-wide default
//! that someone installed explicitly.
//!
//! Ferroflux builds reqwest with `rustls-no-provider`, so reqwest never chooses a provider
//! itself: it uses the process default and fails to build a client when there is none. kube
//! is built with `ring`. Installing ring as the process default once, early, means both (and
//! any other rustls user in the same process) share one provider instead of compiling and
//! mixing two, and no client creation depends on which library happened to initialise first.
//!
//! Call [`install_crypto_provider`] before creating any TLS client, or simply build HTTP
//! clients from [`http_client_builder`], which does it for you.

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

/// The `User-Agent` header every Ferroflux HTTP client sends: `ferroflux/<crate version>`.
pub const USER_AGENT: &str = concat!("ferroflux/", env!("CARGO_PKG_VERSION"));

/// How long [`http_client_builder`] waits for a TCP (and TLS) connection to be established.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`http_client_builder`] waits for *each* read on an open connection.
///
/// It is an inactivity timeout, reset after every successful read, so a slow but moving
/// download of a large artifact is never cut off; a peer that stops sending is.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs rustls' `ring` crypto provider as the process-wide default.
///
/// Idempotent and thread-safe: call it from `main`, from library constructors and from tests
/// as often as convenient; only the first call does any work. If a default provider was
/// already installed by other code (possibly a different one), that provider is kept: the
/// process has exactly one default either way, which is all clients need.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // `Err` only means a default is already in place; that is the state we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A [`reqwest::ClientBuilder`] with Ferroflux's defaults, to share across the project.
///
/// It installs the crypto provider first ([`install_crypto_provider`]), and sets the
/// [`USER_AGENT`], a [`CONNECT_TIMEOUT`] and a per-read [`READ_TIMEOUT`]. There is no
/// overall request timeout, because artifact downloads may legitimately take long; add one
/// with [`reqwest::ClientBuilder::timeout`] for short API calls.
///
/// Its TLS configuration is the process-wide [`shared_client_config`] (the system's roots,
/// loaded once), so trust settings added to this builder (`tls_certs_merge`, `identity`, ...)
/// have no effect: start from [`http_client_builder_with_own_tls`] for a custom CA or a client
/// certificate.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let builder = http_client_builder_with_own_tls();
    match shared_client_config() {
        Some(config) => builder.tls_backend_preconfigured(config),
        None => builder,
    }
}

/// [`http_client_builder`] without the shared TLS configuration: reqwest builds its own from
/// the trust settings given to the builder (and reads the system's roots again).
pub fn http_client_builder_with_own_tls() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
}

/// A rustls client configuration that trusts the system's root certificates, built once per
/// process and cloned for every client that needs no other trust settings.
///
/// reqwest, left to itself, reads and parses every certificate under `/etc/ssl/certs` each
/// time a client is built: with a client per reconcile, that was half of a controller's CPU.
/// Clones share the verifier and its root store. ALPN offers HTTP/2 and HTTP/1.1, as reqwest
/// does. `None` when the platform verifier cannot be built (then reqwest's own defaults
/// apply, and fail the same way).
pub fn shared_client_config() -> Option<rustls::ClientConfig> {
    static CONFIG: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_crypto_provider();
            let provider = rustls::crypto::CryptoProvider::get_default()?.clone();
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).ok()?;
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Some(config)
        })
        .clone()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_across_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(install_crypto_provider))
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn builder_produces_a_working_client() {
        // Building fails when reqwest (built without a provider) finds no default provider.
        http_client_builder().build().unwrap();
        assert!(USER_AGENT.starts_with("ferroflux/"));
    }
}
