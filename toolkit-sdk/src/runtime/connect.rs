//! Connecting to the Kubernetes API server at startup, failing fast and clearly.
//!
//! # Guarantees
//! [`connect`] either returns a client that has answered a version probe, or an error within
//! roughly the configured timeout (default 10s) that names the kubeconfig (or in-cluster
//! configuration) and the server URL it tried, and what to check. It never hangs on a server
//! that does not answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Default bound on loading the configuration plus the version probe.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the client configuration comes from and how long to wait for the server.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// An explicit kubeconfig file. `None` infers like `kubectl`: `$KUBECONFIG`, then
    /// `~/.kube/config`, then the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Bound on the whole connection attempt.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Why the controller could not connect to the Kubernetes API server.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No usable client configuration.
    #[error(
        "cannot load a Kubernetes client configuration from {tried}; point KUBECONFIG (or \
         --kubeconfig) at a valid kubeconfig file, or run the controller inside a cluster"
    )]
    Config {
        /// The configuration source(s) that were tried.
        tried: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error or could not be reached.
    #[error(
        "cannot reach the Kubernetes API server at {server} (configured by {tried}); check that \
         the server is running and that the kubeconfig points at it"
    )]
    Unreachable {
        /// The server URL.
        server: String,
        /// The configuration source.
        tried: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The server did not answer in time.
    #[error(
        "the Kubernetes API server at {server} (configured by {tried}) did not answer within \
         {timeout:?}; check that the server is running and reachable from here"
    )]
    Timeout {
        /// The server URL.
        server: String,
        /// The configuration source.
        tried: String,
        /// The bound that was exceeded.
        timeout: Duration,
    },
}

/// Builds a client from the inferred configuration (or `kubeconfig`) and checks that the API
/// server answers, with [`DEFAULT_CONNECT_TIMEOUT`].
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ConnectError> {
    connect_with(&ConnectOptions {
        kubeconfig: kubeconfig.map(Path::to_path_buf),
        ..ConnectOptions::default()
    })
    .await
}

/// [`connect`] with explicit options.
pub async fn connect_with(options: &ConnectOptions) -> Result<Client, ConnectError> {
    crate::tls::install_crypto_provider();
    let tried = describe_source(options.kubeconfig.as_deref());
    let config = match tokio::time::timeout(options.timeout, load_config(options)).await {
        Ok(result) => result.map_err(|source| ConnectError::Config {
            tried: tried.clone(),
            source,
        })?,
        Err(_) => {
            return Err(ConnectError::Config {
                tried,
                source: format!("loading took longer than {:?}", options.timeout).into(),
            });
        }
    };
    let server = config.cluster_url.to_string();
    let mut config = config;
    config.connect_timeout = Some(options.timeout);
    let client = Client::try_from(config).map_err(|source| ConnectError::Config {
        tried: tried.clone(),
        source: Box::new(source),
    })?;
    match tokio::time::timeout(options.timeout, client.apiserver_version()).await {
        Ok(Ok(version)) => {
            tracing::info!(%server, version = %version.git_version, "connected to the Kubernetes API server");
            Ok(client)
        }
        Ok(Err(source)) => Err(ConnectError::Unreachable {
            server,
            tried,
            source,
        }),
        Err(_) => Err(ConnectError::Timeout {
            server,
            tried,
            timeout: options.timeout,
        }),
    }
}

async fn load_config(
    options: &ConnectOptions,
) -> Result<Config, Box<dyn std::error::Error + Send + Sync>> {
    match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)?;
            Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
        }
        None => Ok(Config::infer().await?),
    }
}

/// A person-readable name for the configuration source `connect` will use.
fn describe_source(explicit: Option<&Path>) -> String {
    if let Some(path) = explicit {
        return format!("kubeconfig {}", path.display());
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return format!("kubeconfig {} (from $KUBECONFIG)", value.to_string_lossy());
    }
    let default = std::env::home_dir().map(|h| h.join(".kube").join("config"));
    match default {
        Some(path) if path.exists() => format!("kubeconfig {}", path.display()),
        Some(path) => format!(
            "the in-cluster service account (no $KUBECONFIG, no {})",
            path.display()
        ),
        None => "the in-cluster service account (no $KUBECONFIG, no home directory)".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn kubeconfig_for(server: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
             users:\n- name: u\n  user:\n    token: t\n"
        );
        std::fs::write(file.path(), yaml).unwrap();
        file
    }

    #[tokio::test]
    async fn missing_kubeconfig_names_the_file() {
        let path = Path::new("/nonexistent/ferroflux/kubeconfig");
        let err = connect(Some(path)).await.err().unwrap();
        assert!(matches!(err, ConnectError::Config { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/ferroflux/kubeconfig"), "{text}");
        assert!(text.contains("KUBECONFIG"), "{text}");
    }

    #[tokio::test]
    async fn refused_connection_fails_fast_and_names_the_server() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        let file = kubeconfig_for(&server);
        let started = Instant::now();
        let err = connect(Some(file.path())).await.err().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert!(matches!(err, ConnectError::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains(&file.path().display().to_string()), "{text}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        // Accepts connections but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let file = kubeconfig_for(&format!("http://{addr}"));
        let options = ConnectOptions {
            kubeconfig: Some(file.path().to_path_buf()),
            timeout: Duration::from_millis(500),
        };
        let started = Instant::now();
        let err = connect_with(&options).await.err().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert!(matches!(err, ConnectError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
