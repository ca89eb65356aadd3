//! Talking to a remote with gix: a throwaway bare repository per operation, HTTP(S) through
//! reqwest (rustls), SSH through the `ssh` program, the time limit, and turning gix's errors
//! into [`GitError`]s.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::protocol::handshake::Ref;
use gix::protocol::transport::client::blocking_io::Transport;
use gix::protocol::transport::client::blocking_io::http as gix_http;
use gix::protocol::transport::client::blocking_io::ssh as gix_ssh;
use gix::remote::Direction;
use tempfile::TempDir;

use super::auth::{GitAuth, HttpCredentials};
use super::error::{BoxError, GitError};
use super::refs::{RefTarget, RemoteRefs};
use super::url::{GitUrl, Scheme};

/// How long the caller waits past the deadline for the worker to report on its own, so the
/// error says what the transport saw (a refused connection) rather than only "timed out".
const GRACE: Duration = Duration::from_millis(250);
/// The memory for delta bases kept while reading a fetched pack (Git's own
/// `core.deltaBaseCacheLimit` is 96 MiB; a checkout's blobs are mostly small).
const DELTA_BASE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The time limit and the stop flag of one operation, shared with the worker thread.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) interrupt: Arc<AtomicBool>,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) operation: &'static str,
    pub(crate) url: String,
}

impl Ctx {
    /// Time left before the deadline (never zero, so it can be given to a client as a limit).
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10))
    }

    /// A [`GitError::Timeout`] for this operation.
    pub(crate) fn timeout_error(&self) -> GitError {
        GitError::Timeout {
            operation: self.operation,
            url: self.url.clone(),
            timeout: self.timeout,
        }
    }

    /// Fails when the deadline passed or the caller gave up.
    pub(crate) fn check(&self) -> Result<(), GitError> {
        if self.interrupt.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            Err(self.timeout_error())
        } else {
            Ok(())
        }
    }

    fn expired(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }
}

/// Runs the blocking `work` on tokio's blocking pool and returns within `timeout` (plus a
/// short grace): past it the caller gets [`GitError::Timeout`] and the worker is told to stop.
pub(crate) async fn run_with_timeout<T, F>(
    operation: &'static str,
    url: &GitUrl,
    timeout: Duration,
    work: F,
) -> Result<T, GitError>
where
    T: Send + 'static,
    F: FnOnce(&Ctx) -> Result<T, GitError> + Send + 'static,
{
    toolkit_sdk::tls::install_crypto_provider();
    let ctx = Ctx {
        interrupt: Arc::new(AtomicBool::new(false)),
        deadline: Instant::now() + timeout,
        timeout,
        operation,
        url: url.redacted(),
    };
    let worker_ctx = ctx.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let result = work(&worker_ctx);
        // Whatever failed after the deadline failed because of it (a client timeout, a killed
        // connection).
        match result {
            Err(GitError::Timeout { .. }) => Err(worker_ctx.timeout_error()),
            Err(_) if worker_ctx.expired() => Err(worker_ctx.timeout_error()),
            other => other,
        }
    });
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout + GRACE, handle).await;
    tracing::debug!(
        operation,
        url = %ctx.url,
        elapsed_ms = started.elapsed().as_millis() as u64,
        ok = matches!(outcome, Ok(Ok(Ok(_)))),
        "git operation finished"
    );
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(GitError::Fetch {
            url: ctx.url.clone(),
            source: format!("the Git worker failed: {join}").into(),
        }),
        Err(_) => {
            ctx.interrupt.store(true, Ordering::Relaxed);
            Err(ctx.timeout_error())
        }
    }
}

/// A throwaway bare repository and the files an operation needs (SSH key, known_hosts),
/// removed when dropped.
pub(crate) struct Session {
    pub(crate) repo: gix::Repository,
    pub(crate) url: GitUrl,
    gix_url: gix::Url,
    auth: GitAuth,
    ssh_command: Option<String>,
    ssh_log: Option<PathBuf>,
    /// Holds the repository and the SSH files; removed on drop.
    _dir: TempDir,
}

impl Session {
    /// Creates the repository (isolated from the machine's Git configuration) and, for SSH,
    /// writes the identity and known_hosts with mode 0600 into a private folder.
    pub(crate) fn open(url: &GitUrl, auth: &GitAuth, ctx: &Ctx) -> Result<Self, GitError> {
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-git-")
            .tempdir()
            .map_err(|e| GitError::io("cannot create a temporary folder for Git", e))?;
        let repo_dir = dir.path().join("repo.git");
        let mut repo = gix::ThreadSafeRepository::init_opts(
            &repo_dir,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .map_err(|e| GitError::Fetch {
            url: url.redacted(),
            source: format!("cannot create the local repository: {e}").into(),
        })?
        .to_thread_local();
        // Most blobs of a fetched pack are deltas against other blobs, in chains up to 50
        // long; without a cache of delta bases, reading every file of a checkout inflates
        // each chain again from its start (most of the time of a large checkout).
        repo.objects.set_pack_cache(|| {
            Box::new(gix::odb::pack::cache::lru::StaticLinkedList::<64>::new(
                DELTA_BASE_CACHE_BYTES,
            ))
        });

        let (gix_url, ssh_command, ssh_log) = match url.scheme {
            Scheme::Ssh => {
                let ssh = auth.ssh.as_ref().ok_or_else(|| {
                    GitError::InvalidCredentials(
                        "invalid 'ssh' auth option: 'identity' is required".to_string(),
                    )
                })?;
                let identity = dir.path().join("identity");
                let known_hosts = dir.path().join("known_hosts");
                let log = dir.path().join("ssh.log");
                write_private(&identity, &ssh.identity)?;
                write_private(&known_hosts, &ssh.known_hosts)?;
                let command = ssh_command(&identity, &known_hosts, &log, ctx.remaining());
                (
                    parse_gix_url(&url.with_user(Some(&ssh.user)), url)?,
                    Some(command),
                    Some(log),
                )
            }
            Scheme::Http | Scheme::Https => {
                if auth.ssh.is_some() {
                    return Err(GitError::InvalidUrl {
                        url: url.redacted(),
                        reason: "SSH credentials need an ssh:// URL".to_string(),
                    });
                }
                (parse_gix_url(&url.redacted(), url)?, None, None)
            }
        };
        Ok(Self {
            repo,
            url: url.clone(),
            gix_url,
            auth: auth.clone(),
            ssh_command,
            ssh_log,
            _dir: dir,
        })
    }

    /// A remote for this URL with `refspecs` to fetch and no automatic tag following.
    pub(crate) fn remote(&self, refspecs: &[String]) -> Result<gix::Remote<'_>, GitError> {
        let remote = self
            .repo
            .remote_at(self.gix_url.clone())
            .map_err(|e| self.classify(e, "cannot configure the remote"))?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        if refspecs.is_empty() {
            return Ok(remote);
        }
        remote
            .with_refspecs(refspecs.iter().map(String::as_str), Direction::Fetch)
            .map_err(|e| GitError::InvalidReference(format!("invalid refspec: {e}")))
    }

    /// Connects `remote` with this session's transport, credentials and time limit.
    pub(crate) fn connect<'r>(
        &self,
        remote: &'r gix::Remote<'r>,
        ctx: &Ctx,
    ) -> Result<Connection<'r>, GitError> {
        let connection = match &self.ssh_command {
            Some(command) => {
                let transport = gix_ssh::connect(
                    self.gix_url.clone(),
                    gix::protocol::transport::Protocol::V2,
                    gix_ssh::connect::Options {
                        command: Some(command.into()),
                        disallow_shell: false,
                        kind: Some(gix_ssh::ProgramKind::Ssh),
                    },
                    false,
                )
                .map_err(|e| self.classify(e, "cannot start ssh"))?;
                let transport: Box<dyn Transport + Send> = Box::new(transport);
                remote.to_connection_with_transport(transport)
            }
            None => remote
                .connect(Direction::Fetch)
                .map_err(|e| self.classify(e, "cannot connect"))?
                .with_transport_options(Box::new(self.http_options(ctx)?)),
        };
        let basic = match &self.auth.http {
            Some(HttpCredentials::Basic { username, password }) => {
                Some((username.clone(), password.clone()))
            }
            _ => None,
        };
        // Our credentials or none: never the machine's credential helpers or a prompt.
        Ok(
            connection.with_credentials(move |action| match (action, &basic) {
                (gix::credentials::helper::Action::Get(context), Some((username, password))) => {
                    Ok(Some(gix::credentials::protocol::Outcome {
                        identity: gix::sec::identity::Account {
                            username: username.clone(),
                            password: password.clone(),
                            oauth_refresh_token: None,
                        },
                        next: context.into(),
                    }))
                }
                _ => Ok(None),
            }),
        )
    }

    /// The HTTP options: reqwest configured with the CA, the time limit, and a bearer token.
    fn http_options(&self, ctx: &Ctx) -> Result<gix_http::Options, GitError> {
        let ca = match &self.auth.ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
                GitError::InvalidCredentials("'ca.crt' does not hold a PEM certificate".into())
            })?,
            None => Vec::new(),
        };
        let timeout = ctx.remaining();
        let configure_client: Box<gix_http::reqwest::ConfigureClientFn> =
            Box::new(move |builder: reqwest::blocking::ClientBuilder| {
                toolkit_sdk::tls::install_crypto_provider();
                // Without a CA of its own, the process-wide TLS configuration spares
                // loading the system's root certificates for every fetch.
                let builder = match toolkit_sdk::tls::shared_client_config() {
                    Some(config) if ca.is_empty() => builder.tls_backend_preconfigured(config),
                    _ => builder.tls_certs_merge(ca.clone()),
                };
                Ok(builder
                    .connect_timeout(timeout.min(Duration::from_secs(30)))
                    .timeout(timeout))
            });
        let bearer = match &self.auth.http {
            Some(HttpCredentials::Bearer(token)) => Some(token.clone()),
            _ => None,
        };
        let configure_request: Option<Box<gix_http::reqwest::ConfigureRequestFn>> =
            bearer.map(|token| {
                let header = http::HeaderValue::from_str(&format!("Bearer {token}")).ok();
                Box::new(move |request: &mut reqwest::blocking::Request| {
                    let mut value = header.clone().ok_or_else(|| {
                        gix::error::message("the bearer token is not a valid header value")
                    })?;
                    value.set_sensitive(true);
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, value);
                    Ok(())
                }) as Box<gix_http::reqwest::ConfigureRequestFn>
            });
        let backend = gix_http::reqwest::Options {
            configure_client: Some(configure_client),
            configure_request,
        };
        Ok(gix_http::Options {
            follow_redirects: gix_http::options::FollowRedirects::Initial,
            connect_timeout: Some(timeout.min(Duration::from_secs(30))),
            backend: Some(Arc::new(Mutex::new(backend))),
            ..gix_http::Options::default()
        })
    }

    /// Turns a gix error into the most precise [`GitError`], reading the ssh log when there
    /// is one. `what` describes the step for errors that fit no other variant.
    pub(crate) fn classify(
        &self,
        err: impl std::error::Error + Send + Sync + 'static,
        what: &str,
    ) -> GitError {
        let ssh_log = self
            .ssh_log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        classify(&self.url.redacted(), err, &ssh_log, what)
    }
}

/// A connection to the remote.
pub(crate) type Connection<'r> =
    gix::remote::Connection<'r, 'static, 'r, Box<dyn Transport + Send>>;

/// Lists the remote's references: all of them without `refspecs`, else (with protocol v2)
/// only those under the refspecs' sources.
pub(crate) fn list_refs(
    url: &GitUrl,
    auth: &GitAuth,
    refspecs: &[String],
    ctx: &Ctx,
) -> Result<RemoteRefs, GitError> {
    let session = Session::open(url, auth, ctx)?;
    let remote = session.remote(refspecs)?;
    let connection = session.connect(&remote, ctx)?;
    let (ref_map, _handshake) = connection
        .ref_map(
            gix::progress::Discard,
            gix::remote::ref_map::Options {
                prefix_from_spec_as_filter_on_remote: !refspecs.is_empty(),
                ..Default::default()
            },
        )
        .map_err(|e| session.classify(e, "listing references failed"))?;
    ctx.check()?;
    Ok(to_remote_refs(&url.redacted(), &ref_map.remote_refs))
}

/// Converts the advertised references.
pub(crate) fn to_remote_refs(url: &str, refs: &[Ref]) -> RemoteRefs {
    let mut head = None;
    let mut entries = Vec::with_capacity(refs.len());
    for r in refs {
        match r {
            Ref::Direct {
                full_ref_name,
                object,
            } => entries.push((
                full_ref_name.to_string(),
                RefTarget {
                    object: object.to_string(),
                    peeled: None,
                },
            )),
            Ref::Peeled {
                full_ref_name,
                tag,
                object,
            } => entries.push((
                full_ref_name.to_string(),
                RefTarget {
                    object: tag.to_string(),
                    peeled: Some(object.to_string()),
                },
            )),
            Ref::Symbolic {
                full_ref_name,
                target,
                tag,
                object,
            } => {
                if full_ref_name == "HEAD" {
                    head = Some(target.to_string());
                } else {
                    entries.push((
                        full_ref_name.to_string(),
                        RefTarget {
                            object: tag.map_or_else(|| object.to_string(), |t| t.to_string()),
                            peeled: tag.map(|_| object.to_string()),
                        },
                    ));
                }
            }
            Ref::Unborn {
                full_ref_name,
                target,
            } => {
                if full_ref_name == "HEAD" {
                    head = Some(target.to_string());
                }
            }
        }
    }
    RemoteRefs::new(url, head, entries)
}

/// The `ssh` command line: only the secret's key and host keys, no configuration, agent or
/// prompt, and messages to `log` instead of stderr.
fn ssh_command(identity: &Path, known_hosts: &Path, log: &Path, timeout: Duration) -> String {
    // Rounded up, so the operation's own deadline fires first.
    let connect_timeout = timeout.as_secs_f64().ceil().clamp(1.0, 300.0) as u64;
    let options = [
        "IdentitiesOnly=yes".to_string(),
        format!("IdentityFile={}", identity.display()),
        "IdentityAgent=none".to_string(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "GlobalKnownHostsFile=/dev/null".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
        "CheckHostIP=no".to_string(),
        "UpdateHostKeys=no".to_string(),
        "BatchMode=yes".to_string(),
        "PasswordAuthentication=no".to_string(),
        "KbdInteractiveAuthentication=no".to_string(),
        "ControlMaster=no".to_string(),
        "ControlPath=none".to_string(),
        "ProxyCommand=none".to_string(),
        format!("ConnectTimeout={connect_timeout}"),
        "ServerAliveInterval=10".to_string(),
        "ServerAliveCountMax=3".to_string(),
        "LogLevel=ERROR".to_string(),
    ];
    let mut command = String::from("ssh -F /dev/null");
    for option in options {
        command.push_str(" -o ");
        command.push_str(&shell_quote(&option));
    }
    command.push_str(" -E ");
    command.push_str(&shell_quote(&log.display().to_string()));
    command
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn write_private(path: &Path, content: &[u8]) -> Result<(), GitError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| GitError::io(format!("cannot write {}", path.display()), e))?;
    file.write_all(content)
        .map_err(|e| GitError::io(format!("cannot write {}", path.display()), e))
}

fn parse_gix_url(text: &str, url: &GitUrl) -> Result<gix::Url, GitError> {
    gix::url::parse(gix::bstr::BStr::new(text)).map_err(|e| GitError::InvalidUrl {
        url: url.redacted(),
        reason: e.to_string(),
    })
}

pub(crate) fn boxed(err: impl std::error::Error + Send + Sync + 'static) -> BoxError {
    Box::new(err)
}

/// Picks the [`GitError`] that says best what `err` (anything in its chain) means.
fn classify(
    url: &str,
    err: impl std::error::Error + Send + Sync + 'static,
    ssh_log: &str,
    what: &str,
) -> GitError {
    let url = url.to_string();
    let mut texts = Vec::new();
    let mut io_kinds = Vec::new();
    let mut reqwest_timeout = false;
    let mut reqwest_connect = false;
    let mut tls = false;
    {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut depth = 0;
        while let Some(e) = current {
            texts.push(e.to_string());
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                io_kinds.push(io.kind());
            }
            if let Some(r) = e.downcast_ref::<reqwest::Error>() {
                reqwest_timeout |= r.is_timeout();
                reqwest_connect |= r.is_connect();
            }
            if e.downcast_ref::<rustls::Error>().is_some() {
                tls = true;
            }
            current = e.source();
            depth += 1;
            if depth > 64 {
                break;
            }
        }
    }
    if let Some(gix_err) = (&err as &dyn std::error::Error).downcast_ref::<gix::Error>() {
        for e in gix_err.iter_errors() {
            texts.push(e.to_string());
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                io_kinds.push(io.kind());
            }
            if let Some(r) = e.downcast_ref::<reqwest::Error>() {
                reqwest_timeout |= r.is_timeout();
                reqwest_connect |= r.is_connect();
            }
            if e.downcast_ref::<rustls::Error>().is_some() {
                tls = true;
            }
        }
    }
    let all = format!("{}\n{}", texts.join("\n"), ssh_log).to_lowercase();
    let has = |needle: &str| all.contains(needle);

    if has("host key verification failed")
        || has("remote host identification has changed")
        || has("no matching host key")
    {
        return GitError::HostKeyMismatch { url };
    }
    if has("permission denied")
        || has("authentication required")
        || has("authenticationrequired")
        || has("will not send credentials")
        || has("no credentials were returned")
        || has("http status 401")
        || has("http status 403")
        || has("too many authentication failures")
        || io_kinds.contains(&std::io::ErrorKind::PermissionDenied)
    {
        return GitError::AuthenticationFailed {
            url,
            source: Some(boxed(err)),
        };
    }
    if tls
        || has("invalid peer certificate")
        || has("unknownissuer")
        || has("certificate verify failed")
        || has("invalidcertificate")
    {
        return GitError::CertificateInvalid {
            url,
            source: Some(boxed(err)),
        };
    }
    if has("http status 404")
        || has("does not appear to be a git repository")
        || has("repository not found")
        || has("not a git repository")
    {
        return GitError::RepositoryNotFound { url };
    }
    if reqwest_timeout || has("timed out") || io_kinds.contains(&std::io::ErrorKind::TimedOut) {
        // The client's limits are derived from the operation's: [`run_with_timeout`] fills
        // in the operation and the limit.
        return GitError::Timeout {
            operation: "",
            url,
            timeout: Duration::ZERO,
        };
    }
    if reqwest_connect
        || has("connection refused")
        || has("could not resolve")
        || has("resolve hostname")
        || has("connect to host")
        || has("connection reset")
        || has("connection closed")
        || has("broken pipe")
        || has("no route to host")
        || has("network is unreachable")
        || has("dns error")
        || has("http status 5")
        || io_kinds.iter().any(|k| {
            matches!(
                k,
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::NotConnected
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::NotFound
            )
        })
    {
        return GitError::RemoteUnreachable {
            url,
            source: Some(boxed(err)),
        };
    }
    GitError::Fetch {
        url,
        source: format!("{what}: {}", texts.first().cloned().unwrap_or_default()).into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ssh_command_is_hermetic_and_quoted() {
        let cmd = ssh_command(
            Path::new("/tmp/a b/identity"),
            Path::new("/tmp/kh"),
            Path::new("/tmp/log"),
            Duration::from_secs(7),
        );
        assert!(cmd.starts_with("ssh -F /dev/null "));
        assert!(cmd.contains("'IdentityFile=/tmp/a b/identity'"));
        assert!(cmd.contains("'StrictHostKeyChecking=yes'"));
        assert!(cmd.contains("'ConnectTimeout=7'"));
        assert!(cmd.contains("'BatchMode=yes'"));
        assert!(cmd.ends_with("-E '/tmp/log'"));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn classification_of_transport_messages() {
        let io = |kind, msg: &str| std::io::Error::new(kind, msg.to_string());
        let url = "ssh://host/repo";
        assert!(matches!(
            classify(
                url,
                io(std::io::ErrorKind::Other, "eof"),
                "Host key verification failed.\n",
                "x"
            ),
            GitError::HostKeyMismatch { .. }
        ));
        assert!(matches!(
            classify(
                url,
                io(
                    std::io::ErrorKind::PermissionDenied,
                    "Permission denied (publickey)."
                ),
                "",
                "x"
            ),
            GitError::AuthenticationFailed { .. }
        ));
        assert!(matches!(
            classify(
                url,
                io(std::io::ErrorKind::ConnectionRefused, "refused"),
                "",
                "x"
            ),
            GitError::RemoteUnreachable { .. }
        ));
        assert!(matches!(
            classify(
                url,
                io(std::io::ErrorKind::Other, "Received HTTP status 404"),
                "",
                "x"
            ),
            GitError::RepositoryNotFound { .. }
        ));
        assert!(matches!(
            classify(url, io(std::io::ErrorKind::Other, "something odd"), "", "x"),
            GitError::Fetch { .. }
        ));
    }
}
