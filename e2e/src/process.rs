//! Child processes of the control plane.
//!
//! # Guarantees
//! - [`Lifetime::Owner`]: the child is started through `setpriv --pdeathsig KILL` from one thread that
//!   lives as long as the process, so the kernel kills the child when this process ends for any reason
//!   (a panic, `SIGKILL`, the end of a test binary): no etcd or kube-apiserver is left behind.
//! - [`Lifetime::Detached`]: the child starts in its own session (`setsid`) and outlives us; it is
//!   stopped later by pid (`cargo xtask cluster down`).
//! - Dropping a [`Managed`] process stops it: `SIGTERM`, then `SIGKILL` after a grace period.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long a child outlives the process that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Killed by the kernel when this process exits.
    Owner,
    /// Keeps running after this process exits.
    Detached,
}

/// A running child process with its log file.
#[derive(Debug)]
pub struct Managed {
    name: String,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
    stop_on_drop: bool,
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// The thread that forks every owned child. `PR_SET_PDEATHSIG` fires when the *thread* that forked the
/// child exits, so it must be a thread that never exits before the process does.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("e2e-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("[e2e] cannot start the spawner thread: {e}"));
        Mutex::new(tx)
    })
}

impl Managed {
    /// Starts `program args...` with stdout and stderr appended to `log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        lifetime: Lifetime,
    ) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = match lifetime {
            Lifetime::Owner => {
                let mut cmd = Command::new("setpriv");
                cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
                cmd
            }
            Lifetime::Detached => {
                let mut cmd = Command::new("setsid");
                cmd.arg(program);
                cmd
            }
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = match lifetime {
            Lifetime::Owner => {
                let (reply_tx, reply_rx) = mpsc::channel();
                spawner()
                    .lock()
                    .map_err(|_| anyhow!("the spawner lock is poisoned"))?
                    .send((cmd, reply_tx))
                    .map_err(|_| anyhow!("the spawner thread is gone"))?;
                reply_rx
                    .recv()
                    .map_err(|_| anyhow!("the spawner thread is gone"))?
            }
            Lifetime::Detached => cmd.spawn(),
        }
        .with_context(|| format!("cannot start {name} ({})", program.display()))?;
        Ok(Self {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            log: log.to_path_buf(),
            stop_on_drop: lifetime == Lifetime::Owner,
        })
    }

    /// The component name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Keeps the process running when this handle is dropped (for a detached cluster).
    pub fn detach(mut self) -> u32 {
        self.stop_on_drop = false;
        self.pid
    }

    /// Fails with the tail of the log when the process has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "{} exited early ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 25)
            );
        }
        Ok(())
    }

    /// Stops the process: `SIGTERM`, then `SIGKILL` after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal(self.pid, "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if self.stop_on_drop {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// Sends a signal by name (`TERM`, `KILL`) to a pid through `kill(1)` (the workspace forbids unsafe code).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether a pid is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The last `lines` lines of a log file.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// The path of a workspace binary (`source-controller`, `kustomize-controller`, ...) built in
/// the same profile as the running test: `<target>/<profile>/<name>`, found from the test
/// executable's own path (`<target>/<profile>/deps/<test>`).
///
/// Tests cannot build it themselves (cargo holds the build directory while tests run), so a
/// missing binary is an error that says which command builds it; `cargo xtask test` builds
/// every binary of the workspace first.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected test executable path {}", exe.display()))?;
    let binary = profile_dir.join(name);
    if !binary.is_file() {
        anyhow::bail!(
            "{} is missing: build it with `cargo build --package {name} --bin {name}` (cargo xtask test does)",
            binary.display()
        );
    }
    Ok(binary)
}
