//! The smart HTTP front-end: a small HTTP(S) server on 127.0.0.1 that runs `git http-backend` as a CGI
//! program for each request, streaming the request body to it and its output back.
//!
//! `git http-backend` itself inflates `Content-Encoding: gzip` request bodies (git compresses large
//! fetch negotiations), so bodies are passed through untouched with that header as
//! `HTTP_CONTENT_ENCODING`. The server runs on a thread and runtime of its own, so a test may block on
//! a `git` child process, even inside a current-thread tokio runtime, without starving it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use base64::Engine as _;
use futures::StreamExt as _;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_util::io::ReaderStream;

/// The realm in the `WWW-Authenticate` challenges.
const REALM: &str = "ferroflux-git";

/// How the HTTP front-end authenticates and whether it speaks TLS. The default serves everyone over
/// plain HTTP.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    basic_auth: Option<(String, String)>,
    bearer_token: Option<String>,
    tls: bool,
}

impl HttpOptions {
    /// Requires HTTP basic auth with this user and password (a bearer token, when also set, is
    /// accepted instead).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Requires `Authorization: Bearer <token>` (basic auth, when also set, is accepted instead).
    pub fn bearer_token(mut self, token: &str) -> Self {
        self.bearer_token = Some(token.to_string());
        self
    }

    /// Serves HTTPS with a certificate for `127.0.0.1` and `localhost` signed by a CA generated for
    /// this server (see [`HttpGitServer::ca_pem`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }
}

/// The credential a request was accepted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// HTTP basic auth as this user.
    Basic(String),
    /// The bearer token.
    Bearer,
}

/// One request the HTTP front-end answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET` or `POST`.
    pub method: String,
    /// The URL path (`/podinfo.git/info/refs`).
    pub path: String,
    /// The query string, if any (`service=git-upload-pack`).
    pub query: Option<String>,
    /// The `Git-Protocol` header (`version=2`), if sent.
    pub git_protocol: Option<String>,
    /// The `Content-Encoding` of the request body (`gzip`), if sent.
    pub content_encoding: Option<String>,
    /// The `Content-Length` of the request body; `None` for a streamed (chunked) body or none at all.
    pub content_length: Option<u64>,
    /// The credential that was accepted, when authentication is configured and passed.
    pub credential: Option<Credential>,
    /// The response status code.
    pub status: u16,
}

/// A running smart HTTP(S) front-end of a [`super::GitServer`]. Dropping it stops the server.
#[derive(Debug)]
pub struct HttpGitServer {
    base_url: String,
    port: u16,
    ca_pem: Option<String>,
    ca_file: Option<PathBuf>,
    log: PathBuf,
    requests: Arc<Mutex<Vec<RequestRecord>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _root: Arc<TempDir>,
}

impl HttpGitServer {
    /// The clone URL of repository `name`: `http://127.0.0.1:<port>/<name>.git` (`https` with TLS).
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.base_url)
    }

    /// `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) that signed the serving certificate, when serving HTTPS: what a
    /// `caFile` / `ca.crt` secret key holds.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The file holding [`HttpGitServer::ca_pem`] (for `git -c http.sslCAInfo=<file>`).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The stderr of `git http-backend` (to read when a request failed).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.requests
            .lock()
            .map(|records| records.clone())
            .unwrap_or_default()
    }
}

impl Drop for HttpGitServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What every request handler needs.
#[derive(Debug)]
struct Shared {
    project_root: PathBuf,
    port: u16,
    https: bool,
    basic_auth: Option<(String, String)>,
    bearer_token: Option<String>,
    log: PathBuf,
    requests: Arc<Mutex<Vec<RequestRecord>>>,
}

pub(super) fn start(
    root: Arc<TempDir>,
    project_root: PathBuf,
    options: HttpOptions,
) -> Result<HttpGitServer> {
    crate::install_crypto_provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot bind a loopback port for the git HTTP server")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let dir = root.path().join(format!("http-{port}"));
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("http-backend.log");

    let (acceptor, ca_pem, ca_file) = if options.tls {
        let (acceptor, ca_pem) = tls_acceptor()?;
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, &ca_pem)?;
        (Some(acceptor), Some(ca_pem), Some(ca_file))
    } else {
        (None, None, None)
    };
    let scheme = if options.tls { "https" } else { "http" };
    let requests = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(Shared {
        project_root,
        port,
        https: options.tls,
        basic_auth: options.basic_auth,
        bearer_token: options.bearer_token,
        log: log.clone(),
        requests: requests.clone(),
    });

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("git-http-{port}"))
        .spawn(move || serve(listener, acceptor, shared, stop_rx))
        .context("cannot start the git HTTP server thread")?;
    Ok(HttpGitServer {
        base_url: format!("{scheme}://127.0.0.1:{port}"),
        port,
        ca_pem,
        ca_file,
        log,
        requests,
        stop: Some(stop_tx),
        thread: Some(thread),
        _root: root,
    })
}

/// The server thread: its own runtime, until `stop` fires or the handle is gone.
fn serve(
    listener: std::net::TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("git-http-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("[e2e] cannot start the git HTTP server runtime: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("[e2e] cannot use the git HTTP server socket: {e}");
                return;
            }
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let result = match acceptor {
            None => {
                // Without TCP_NODELAY a response's body waits for the client's delayed ACK of
                // its head (40 ms on Linux), which would dominate every Git request timed here.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tokio::select! {
                    result = axum::serve(listener, app).into_future() => result,
                    _ = stop => Ok(()),
                }
            }
            Some(acceptor) => {
                let listener = TlsListener::start(listener, acceptor);
                tokio::select! {
                    result = axum::serve(listener, app).into_future() => result,
                    _ = stop => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            eprintln!("[e2e] the git HTTP server stopped: {e}");
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let mut record = new_record(&request);
    let response = match shared.authorize(request.headers()) {
        Ok(credential) => {
            record.credential = credential.clone();
            match run_cgi(&shared, request, credential.as_ref()).await {
                Ok(response) => response,
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response(),
            }
        }
        Err(()) => shared.challenge(),
    };
    record.status = response.status().as_u16();
    if let Ok(mut records) = shared.requests.lock() {
        records.push(record);
    }
    response
}

fn new_record(request: &Request) -> RequestRecord {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    RequestRecord {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        query: request.uri().query().map(str::to_string),
        git_protocol: header("git-protocol"),
        content_encoding: header("content-encoding"),
        content_length: header("content-length").and_then(|v| v.parse().ok()),
        credential: None,
        status: 0,
    }
}

impl Shared {
    /// `Ok(None)` when no authentication is configured, `Ok(Some(_))` when the request passed it.
    fn authorize(&self, headers: &HeaderMap) -> Result<Option<Credential>, ()> {
        if self.basic_auth.is_none() && self.bearer_token.is_none() {
            return Ok(None);
        }
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(())?;
        let (scheme, rest) = value.split_once(' ').ok_or(())?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic")
            && let Some((user, password)) = &self.basic_auth
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest)
            && decoded == format!("{user}:{password}").as_bytes()
        {
            return Ok(Some(Credential::Basic(user.clone())));
        }
        if scheme.eq_ignore_ascii_case("bearer") && self.bearer_token.as_deref() == Some(rest) {
            return Ok(Some(Credential::Bearer));
        }
        Err(())
    }

    fn challenge(&self) -> Response {
        let mut response = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
        let headers = response.headers_mut();
        let schemes = [
            ("Basic", self.basic_auth.is_some()),
            ("Bearer", self.bearer_token.is_some()),
        ];
        for (scheme, _) in schemes.iter().filter(|(_, on)| *on) {
            if let Ok(value) = HeaderValue::from_str(&format!("{scheme} realm=\"{REALM}\"")) {
                headers.append(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Runs `git http-backend` for one request (RFC 3875 environment), streaming both bodies.
async fn run_cgi(
    shared: &Shared,
    request: Request,
    credential: Option<&Credential>,
) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&shared.log)?;
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &shared.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_SOFTWARE", "ferroflux-e2e")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("SERVER_NAME", "127.0.0.1")
        .env("SERVER_PORT", shared.port.to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("SCRIPT_NAME", "")
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        // http-backend accepts pushes only from an authenticated user unless told otherwise; the
        // repositories allow them (http.receivepack), and this names who pushed.
        .env(
            "REMOTE_USER",
            match credential {
                Some(Credential::Basic(user)) => user.as_str(),
                Some(Credential::Bearer) => "bearer",
                None => "anonymous",
            },
        );
    if shared.https {
        cmd.env("HTTPS", "on");
    }
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        if name == CONTENT_TYPE {
            cmd.env("CONTENT_TYPE", value);
        } else if name == CONTENT_LENGTH {
            cmd.env("CONTENT_LENGTH", value);
        } else if name != AUTHORIZATION {
            let var = format!(
                "HTTP_{}",
                name.as_str().to_ascii_uppercase().replace('-', "_")
            );
            cmd.env(var, value);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("cannot run git http-backend")?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        bail!("git http-backend has no stdin or stdout");
    };

    // Request body -> CGI stdin, concurrently with reading its output.
    tokio::spawn(async move {
        let mut body = body.into_data_stream();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });

    let mut reader = BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut response = Response::builder();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            bail!(
                "git http-backend ended before its headers; see {}",
                shared.log.display()
            );
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad CGI header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = StatusCode::from_bytes(code.as_bytes())
                .with_context(|| format!("bad CGI status {value:?}"))?;
        } else {
            response = response.header(name, value);
        }
    }
    // Reap the child once it is done; the response streams from its stdout meanwhile.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(response
        .status(status)
        .body(Body::from_stream(ReaderStream::new(reader)))?)
}

/// Accepts TCP connections and completes TLS handshakes concurrently, handing finished streams to axum.
struct TlsListener {
    streams: mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: tokio::net::TcpListener, acceptor: TlsAcceptor) -> Self {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (tx, streams) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // A client that rejects our certificate simply goes away.
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Self { streams, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.streams.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A fresh CA and a serving certificate for 127.0.0.1 / localhost; returns the acceptor and the CA PEM.
fn tls_acceptor() -> Result<(TlsAcceptor, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ferroflux-git-test-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "ferroflux-git-server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer)?;

    let chain = vec![cert.der().clone()];
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, private)?;
    Ok((TlsAcceptor::from(Arc::new(config)), ca_pem))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn shared(basic: Option<(&str, &str)>, bearer: Option<&str>) -> Shared {
        Shared {
            project_root: PathBuf::new(),
            port: 0,
            https: false,
            basic_auth: basic.map(|(u, p)| (u.to_string(), p.to_string())),
            bearer_token: bearer.map(str::to_string),
            log: PathBuf::new(),
            requests: Arc::default(),
        }
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_and_bearer_are_checked_exactly() {
        let both = shared(Some(("flux", "pw")), Some("tok"));
        // "flux:pw"
        assert_eq!(
            both.authorize(&with_auth("Basic Zmx1eDpwdw==")),
            Ok(Some(Credential::Basic("flux".into())))
        );
        // "flux:px"
        assert_eq!(both.authorize(&with_auth("Basic Zmx1eDpweA==")), Err(()));
        assert_eq!(
            both.authorize(&with_auth("bearer tok")),
            Ok(Some(Credential::Bearer))
        );
        assert_eq!(both.authorize(&with_auth("Bearer tok2")), Err(()));
        assert_eq!(both.authorize(&HeaderMap::new()), Err(()));
        assert_eq!(
            shared(None, None).authorize(&with_auth("Bearer x")),
            Ok(None)
        );
    }

    #[test]
    fn challenge_names_each_configured_scheme() {
        let response = shared(Some(("u", "p")), Some("t")).challenge();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<_> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            challenges,
            [
                format!("Basic realm=\"{REALM}\""),
                format!("Bearer realm=\"{REALM}\"")
            ]
        );
    }
}
