//! The SSH front-end: a real `sshd` on a loopback port with a generated host key, public-key
//! authentication only, and a per-key forced command that serves nothing but git.
//!
//! sshd runs as the current user (`StrictModes no`, `UsePAM no`, its pid file and keys in the server
//! folder), so it can only log in that user. Each authorized key carries
//! `restrict,command="<folder>/git-serve"`: the script runs `git-shell` in the repository folder after
//! turning the absolute path git asks for (`'/podinfo.git'`) into a relative one, so URLs read
//! `ssh://<user>@127.0.0.1:<port>/podinfo.git` like on a Git host, and a shell login or any other command
//! is refused.

use std::io::Read as _;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::{Lifetime, Managed, free_port, log_tail};

/// Where Debian's `openssh-server` installs the daemon (it must be started by absolute path).
const SSHD: &str = "/usr/sbin/sshd";

/// The kind of an SSH key made by [`generate_ssh_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SshKeyKind {
    /// `ssh-ed25519`.
    #[default]
    Ed25519,
    /// `ecdsa-sha2-nistp256`.
    EcdsaP256,
    /// `ssh-rsa`, 2048 bits.
    Rsa,
}

impl SshKeyKind {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            SshKeyKind::Ed25519 => &["-t", "ed25519"],
            SshKeyKind::EcdsaP256 => &["-t", "ecdsa", "-b", "256"],
            SshKeyKind::Rsa => &["-t", "rsa", "-b", "2048"],
        }
    }
}

/// An SSH key pair in the formats a Flux secret and `authorized_keys` use.
#[derive(Clone)]
pub struct SshKeyPair {
    /// The private key, unencrypted, as `ssh-keygen` writes it (`-----BEGIN OPENSSH PRIVATE KEY-----`):
    /// what the `identity` key of a Flux SSH secret holds.
    pub private_key: String,
    /// The public key line (`ssh-ed25519 AAAA... comment`): what `identity.pub` and `authorized_keys`
    /// hold.
    pub public_key: String,
}

impl std::fmt::Debug for SshKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshKeyPair")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl SshKeyPair {
    /// The public key without its comment (`ssh-ed25519 AAAA...`).
    pub fn public_key_without_comment(&self) -> String {
        self.public_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Generates a fresh unencrypted key pair with `ssh-keygen`.
pub fn generate_ssh_key(kind: SshKeyKind, comment: &str) -> Result<SshKeyPair> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("key");
    keygen(kind, comment, &path)
}

fn keygen(kind: SshKeyKind, comment: &str, path: &Path) -> Result<SshKeyPair> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", comment])
        .args(kind.keygen_args())
        .arg("-f")
        .arg(path)
        .output()
        .context("cannot run ssh-keygen (install openssh-client)")?;
    if !output.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(SshKeyPair {
        private_key: std::fs::read_to_string(path)?,
        public_key: std::fs::read_to_string(path.with_extension("pub"))?
            .trim()
            .to_string(),
    })
}

/// The key kinds of an SSH front-end. Both default to ed25519.
#[derive(Debug, Clone, Copy, Default)]
pub struct SshOptions {
    /// The kind of the server's host key (what `known_hosts` pins).
    pub host_key: SshKeyKind,
    /// The kind of the client key that is authorized from the start.
    pub client_key: SshKeyKind,
}

/// A running SSH front-end of a [`super::GitServer`]. Dropping it stops sshd.
#[derive(Debug)]
pub struct SshGitServer {
    dir: PathBuf,
    port: u16,
    user: String,
    host_key: SshKeyPair,
    client_key: SshKeyPair,
    known_hosts: String,
    process: Managed,
    _root: Arc<TempDir>,
}

impl SshGitServer {
    /// The clone URL of repository `name`: `ssh://<user>@127.0.0.1:<port>/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!("ssh://{}@127.0.0.1:{}/{name}.git", self.user, self.port)
    }

    /// The user sshd logs in (the user running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client key that is authorized: its `private_key` is what a Flux secret's `identity` holds.
    pub fn identity(&self) -> &SshKeyPair {
        &self.client_key
    }

    /// The file holding the client private key (mode 0600, for `ssh -i`).
    pub fn identity_file(&self) -> PathBuf {
        self.dir.join("id_client")
    }

    /// The server's public host key line (`ssh-ed25519 AAAA...`).
    pub fn host_public_key(&self) -> String {
        self.host_key.public_key_without_comment()
    }

    /// The `known_hosts` line that pins the host key: `[127.0.0.1]:<port> ssh-ed25519 AAAA...`.
    pub fn known_hosts(&self) -> &str {
        &self.known_hosts
    }

    /// A file holding [`SshGitServer::known_hosts`].
    pub fn known_hosts_file(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// A `GIT_SSH_COMMAND` that logs in with [`SshGitServer::identity_file`] and accepts only the host key
    /// in [`SshGitServer::known_hosts_file`], ignoring the user's SSH config and agent.
    pub fn git_ssh_command(&self) -> String {
        ssh_command(&self.identity_file(), &self.known_hosts_file())
    }

    /// Authorizes one more public key (an `authorized_keys` line such as [`SshKeyPair::public_key`]),
    /// with the same git-only restriction.
    pub fn authorize_key(&self, public_key: &str) -> Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("authorized_keys"))?;
        file.write_all(authorized_line(&self.dir, public_key).as_bytes())?;
        Ok(())
    }

    /// sshd's log (it logs every accepted and refused key).
    pub fn log(&self) -> &Path {
        self.process.log()
    }
}

/// An `ssh` command line for `GIT_SSH_COMMAND` with this identity and known_hosts file, strict host key
/// checking and nothing from the user's SSH config or agent.
pub fn ssh_command(identity: &Path, known_hosts: &Path) -> String {
    format!(
        "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
         -o StrictHostKeyChecking=yes -o UserKnownHostsFile='{}' -i '{}'",
        known_hosts.display(),
        identity.display()
    )
}

fn authorized_line(dir: &Path, public_key: &str) -> String {
    format!(
        "restrict,command=\"{}\" {}\n",
        dir.join("git-serve").display(),
        public_key.trim()
    )
}

pub(super) fn start(root: Arc<TempDir>, repos: &Path, options: SshOptions) -> Result<SshGitServer> {
    if !Path::new(SSHD).exists() {
        bail!("{SSHD} is missing: install Debian's openssh-server");
    }
    let dir = tempfile::Builder::new()
        .prefix("ssh-")
        .tempdir_in(root.path())?
        .keep();
    let user = command_output("id", &["-un"])?;
    if command_output("id", &["-u"])? == "0" {
        // sshd started by root insists on its privilege separation folder.
        std::fs::create_dir_all("/run/sshd").context("cannot create /run/sshd")?;
    }

    let host_key = keygen(
        options.host_key,
        "ferroflux-git-host",
        &dir.join("host_key"),
    )?;
    let client_key = keygen(
        options.client_key,
        "ferroflux-git-client",
        &dir.join("id_client"),
    )?;
    let serve = dir.join("git-serve");
    std::fs::write(&serve, serve_script(repos))?;
    std::fs::set_permissions(&serve, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(
        dir.join("authorized_keys"),
        authorized_line(&dir, &client_key.public_key),
    )?;

    let mut last_error = None;
    for attempt in 0..3 {
        let port = free_port()?;
        std::fs::write(dir.join("sshd_config"), sshd_config(&dir, port, &user))?;
        let log = dir.join(format!("sshd-{attempt}.log"));
        let args = vec![
            "-D".to_string(),
            "-e".to_string(),
            "-f".to_string(),
            dir.join("sshd_config").display().to_string(),
        ];
        let mut process = Managed::start("sshd", Path::new(SSHD), &args, &log, Lifetime::Owner)?;
        match wait_for_banner(&mut process, port) {
            Ok(()) => {
                let known_hosts = format!(
                    "[127.0.0.1]:{port} {}",
                    host_key.public_key_without_comment()
                );
                std::fs::write(dir.join("known_hosts"), format!("{known_hosts}\n"))?;
                return Ok(SshGitServer {
                    dir,
                    port,
                    user,
                    host_key,
                    client_key,
                    known_hosts,
                    process,
                    _root: root,
                });
            }
            Err(e) => {
                let port_taken = log_tail(&log, 20).contains("Address already in use");
                last_error = Some(e);
                if !port_taken {
                    break;
                }
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("sshd did not start")))
}

fn sshd_config(dir: &Path, port: u16, user: &str) -> String {
    let d = dir.display();
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
AuthorizedPrincipalsFile none
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
AcceptEnv GIT_PROTOCOL
PermitUserEnvironment no
PrintMotd no
MaxStartups 64:30:128
LogLevel VERBOSE
"
    )
}

/// The forced command: runs the client's git command with `git-shell` in the repository folder.
fn serve_script(repos: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Serves git only; '/name.git' in the client's command is taken relative to the repository folder.
cd '{}' || exit 1
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
exec git-shell -c "$(printf '%s' "$SSH_ORIGINAL_COMMAND" | sed "s|^\(git[ -][a-z-]*\) '/|\1 '|")"
"#,
        repos.display()
    )
}

/// Waits until sshd answers on `port` with an SSH banner.
fn wait_for_banner(process: &mut Managed, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        process.check_running()?;
        if let Ok(mut stream) =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        {
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut banner = [0u8; 8];
            if stream.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "sshd did not answer on 127.0.0.1:{port}; last lines of {}:\n{}",
                process.log().display(),
                log_tail(process.log(), 20)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn command_output(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!("{program} {} failed", args.join(" "));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
