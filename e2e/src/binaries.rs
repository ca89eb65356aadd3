//! The control-plane binaries: found in `KUBEBUILDER_ASSETS`, or built once from the Go module proxy
//! into a per-user cache keyed by version.
//!
//! # How a build works
//! - Kubernetes: a scratch Go module requires `k8s.io/kubernetes` at [`KUBERNETES_VERSION`] and replaces
//!   every `k8s.io/<staging>` module (the upstream go.mod points them at `./staging/...`) by its published
//!   `v0.Y.Z`. The version is stamped with `-ldflags -X k8s.io/component-base/version...` so `/version`
//!   reports the real release.
//! - etcd: its own scratch module whose `main` calls `etcdmain.Main` from `go.etcd.io/etcd/server/v3`
//!   (the upstream root module carries replace directives, so `go install` cannot build it).
//! - kwok: `go install sigs.k8s.io/kwok/cmd/kwok@<version>`.
//!
//! # Caveats
//! - A cold build downloads a few hundred MiB of Go modules and compiles for several minutes on two
//!   cores; a progress line is printed meanwhile. Concurrent builders serialise on a lock directory.
//! - `KUBEBUILDER_ASSETS` (envtest) usually holds only etcd and kube-apiserver: the tier-2 components are
//!   then still taken from (or built into) the cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The Kubernetes release the local control plane runs (and `k8s-openapi`'s `v1_36` feature matches).
pub const KUBERNETES_VERSION: &str = "1.36.3";
/// The etcd release the local control plane runs.
pub const ETCD_VERSION: &str = "3.6.16";
/// The kwok release that simulates nodes and pods in tier 2.
pub const KWOK_VERSION: &str = "0.7.0";

/// Paths of every binary the control plane may start.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `etcd`.
    pub etcd: PathBuf,
    /// `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `kube-controller-manager` (tier 2).
    pub kube_controller_manager: PathBuf,
    /// `kube-scheduler` (tier 2).
    pub kube_scheduler: PathBuf,
    /// `kwok` (tier 2).
    pub kwok: PathBuf,
}

/// Which binaries a caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// etcd and kube-apiserver.
    ApiServer,
    /// Everything, including kube-controller-manager, kube-scheduler and kwok.
    Full,
}

/// The per-user cache directory: `$FERROFLUX_CACHE_DIR`, else `$XDG_CACHE_HOME/ferroflux`, else
/// `~/.cache/ferroflux`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERROFLUX_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("ferroflux");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("ferroflux")
}

/// The folder holding the binaries of this control-plane version.
pub fn bin_dir() -> PathBuf {
    cache_dir().join(format!(
        "control-plane/k8s-v{KUBERNETES_VERSION}-etcd-v{ETCD_VERSION}-kwok-v{KWOK_VERSION}/bin"
    ))
}

impl Binaries {
    /// Finds every binary `need` requires, building the missing ones (once, into the cache).
    pub fn ensure(need: Need) -> Result<Self> {
        let cached = bin_dir();
        let assets = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
        let pick = |name: &str| -> PathBuf {
            if let Some(dir) = &assets {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return candidate;
                }
            }
            cached.join(name)
        };
        let binaries = Binaries {
            etcd: pick("etcd"),
            kube_apiserver: pick("kube-apiserver"),
            kube_controller_manager: pick("kube-controller-manager"),
            kube_scheduler: pick("kube-scheduler"),
            kwok: pick("kwok"),
        };
        let mut wanted = vec![&binaries.etcd, &binaries.kube_apiserver];
        if need == Need::Full {
            wanted.extend([
                &binaries.kube_controller_manager,
                &binaries.kube_scheduler,
                &binaries.kwok,
            ]);
        }
        if wanted.iter().any(|path| !path.is_file()) {
            build_missing(&cached)?;
        }
        for path in wanted {
            if !path.is_file() {
                bail!(
                    "{} is missing after the build; remove {} and run `cargo xtask control-plane build` to see why",
                    path.display(),
                    cached.display()
                );
            }
        }
        Ok(binaries)
    }
}

/// Builds whatever is missing in `bin`, holding the build lock so parallel callers build once.
pub fn build_missing(bin: &Path) -> Result<()> {
    let root = bin
        .parent()
        .context("the binary folder has no parent")?
        .to_path_buf();
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create the cache folder {}", root.display()))?;
    let _lock = BuildLock::acquire(&root.join("build.lock"))?;
    std::fs::create_dir_all(bin)?;
    which_go()?;
    let k8s = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ];
    if k8s.iter().any(|name| !bin.join(name).is_file()) {
        build_kubernetes(&root.join("src/kubernetes"), bin)?;
    }
    if !bin.join("etcd").is_file() {
        build_etcd(&root.join("src/etcd"), bin)?;
    }
    if !bin.join("kwok").is_file() {
        run_with_progress(
            "kwok",
            Command::new("go")
                .args([
                    "install",
                    &format!("sigs.k8s.io/kwok/cmd/kwok@v{KWOK_VERSION}"),
                ])
                .env("GOBIN", bin)
                .env("CGO_ENABLED", "0"),
        )?;
    }
    Ok(())
}

fn which_go() -> Result<()> {
    match Command::new("go").arg("version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => bail!(
            "building the control plane needs Go (1.25 or newer) on PATH; install it, or point \
             KUBEBUILDER_ASSETS at a folder that already holds etcd and kube-apiserver"
        ),
    }
}

fn build_kubernetes(src: &Path, bin: &Path) -> Result<()> {
    std::fs::create_dir_all(src)?;
    let upstream_mod = go_mod_download_gomod("k8s.io/kubernetes", KUBERNETES_VERSION)?;
    let staging_version = staging_version(KUBERNETES_VERSION)?;
    let replaces = staging_replaces(&upstream_mod, &staging_version);
    if replaces.is_empty() {
        bail!(
            "found no staging replace directives in k8s.io/kubernetes v{KUBERNETES_VERSION}'s go.mod"
        );
    }
    let go_mod = format!(
        "module ferroflux.local/control-plane\n\ngo 1.26\n\nrequire k8s.io/kubernetes v{KUBERNETES_VERSION}\n\nreplace (\n{}\n)\n",
        replaces.join("\n")
    );
    std::fs::write(src.join("go.mod"), go_mod)?;
    std::fs::write(
        src.join("tools.go"),
        "//go:build tools\n\npackage tools\n\nimport (\n\t_ \"k8s.io/kubernetes/cmd/kube-apiserver\"\n\t_ \"k8s.io/kubernetes/cmd/kube-controller-manager\"\n\t_ \"k8s.io/kubernetes/cmd/kube-scheduler\"\n)\n",
    )?;
    run_with_progress(
        "Go modules for Kubernetes",
        Command::new("go").args(["mod", "tidy"]).current_dir(src),
    )?;
    let minor = KUBERNETES_VERSION.split('.').nth(1).unwrap_or("0");
    let ldflags = format!(
        "-s -w -X k8s.io/component-base/version.gitVersion=v{KUBERNETES_VERSION} \
         -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor={minor} \
         -X k8s.io/component-base/version.gitTreeState=clean \
         -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
    );
    let mut cmd = Command::new("go");
    cmd.args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(format!("{}/", bin.display()))
        .args([
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ])
        .env("CGO_ENABLED", "0")
        .current_dir(src);
    run_with_progress(
        &format!("kube-apiserver, kube-controller-manager, kube-scheduler v{KUBERNETES_VERSION}"),
        &mut cmd,
    )
}

fn build_etcd(src: &Path, bin: &Path) -> Result<()> {
    std::fs::create_dir_all(src)?;
    std::fs::write(
        src.join("go.mod"),
        format!(
            "module ferroflux.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 v{ETCD_VERSION}\n"
        ),
    )?;
    std::fs::write(
        src.join("main.go"),
        "// Command etcd is upstream etcd's server entry point, built from the published module.\npackage main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() {\n\tetcdmain.Main(os.Args)\n}\n",
    )?;
    run_with_progress(
        "Go modules for etcd",
        Command::new("go").args(["mod", "tidy"]).current_dir(src),
    )?;
    run_with_progress(
        &format!("etcd v{ETCD_VERSION}"),
        Command::new("go")
            .args(["build", "-trimpath", "-ldflags", "-s -w", "-o"])
            .arg(bin.join("etcd"))
            .arg(".")
            .env("CGO_ENABLED", "0")
            .current_dir(src),
    )
}

/// `1.36.3` -> `0.36.3`: the version the staging modules are published under.
fn staging_version(kubernetes: &str) -> Result<String> {
    let rest = kubernetes
        .strip_prefix("1.")
        .with_context(|| format!("unexpected Kubernetes version {kubernetes}"))?;
    Ok(format!("0.{rest}"))
}

/// The `replace` lines pointing each `./staging/src/k8s.io/<m>` module at its published version.
fn staging_replaces(upstream_go_mod: &str, staging_version: &str) -> Vec<String> {
    upstream_go_mod
        .lines()
        .filter_map(|line| {
            let (module, target) = line.trim().split_once("=>")?;
            let module = module.trim().trim_start_matches("replace").trim();
            target
                .trim()
                .starts_with("./staging/")
                .then(|| format!("\t{module} => {module} v{staging_version}"))
        })
        .collect()
}

/// Fetches only a module's go.mod through the Go toolchain (so GOPROXY/GOFLAGS are honoured) and
/// returns it.
fn go_mod_download_gomod(module: &str, version: &str) -> Result<String> {
    let out = Command::new("go")
        .args(["list", "-m", "-json", &format!("{module}@v{version}")])
        .env("GO111MODULE", "on")
        .current_dir(std::env::temp_dir())
        .output()
        .context("cannot run `go list -m`")?;
    if !out.status.success() {
        bail!(
            "`go list -m {module}@v{version}` failed (is the Go module proxy reachable?): {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("`go list -m -json` printed no JSON")?;
    let path = info
        .get("GoMod")
        .and_then(|v| v.as_str())
        .context("`go list -m -json` gave no GoMod path")?;
    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))
}

/// Runs a build step, printing one progress line (elapsed time) on stderr until it ends.
fn run_with_progress(what: &str, cmd: &mut Command) -> Result<()> {
    let started = Instant::now();
    let log = tempfile_path(what);
    let log_file = std::fs::File::create(&log)?;
    let mut child = cmd
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("cannot start the build of {what}"))?;
    let mut stderr = std::io::stderr();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let _ = write!(
            stderr,
            "\r[ferroflux] building {what} from the Go module proxy (first run only) ... {}s ",
            started.elapsed().as_secs()
        );
        let _ = stderr.flush();
        std::thread::sleep(Duration::from_secs(1));
    };
    let _ = writeln!(
        stderr,
        "\r[ferroflux] built {what} in {}s{}",
        started.elapsed().as_secs(),
        " ".repeat(20)
    );
    if !status.success() {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = output.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "building {what} failed ({status}); full log in {}; last lines:\n{}",
            log.display(),
            tail.join("\n")
        );
    }
    let _ = std::fs::remove_file(&log);
    Ok(())
}

fn tempfile_path(what: &str) -> PathBuf {
    let slug: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    std::env::temp_dir().join(format!("ferroflux-build-{slug}-{}.log", std::process::id()))
}

/// A lock directory: `mkdir` is atomic, and the holder's pid lets a later caller break a stale lock.
struct BuildLock {
    path: PathBuf,
}

impl BuildLock {
    fn acquire(path: &Path) -> Result<Self> {
        let mut announced = false;
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => {
                    std::fs::write(path.join("pid"), std::process::id().to_string())?;
                    return Ok(Self {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(path.join("pid")).unwrap_or_default();
                    let alive = !holder.is_empty()
                        && Path::new(&format!("/proc/{}", holder.trim())).exists();
                    if !alive && !holder.is_empty() {
                        let _ = std::fs::remove_dir_all(path);
                        continue;
                    }
                    if !announced {
                        eprintln!(
                            "[ferroflux] waiting for another build of the control plane (pid {}) to finish",
                            holder.trim()
                        );
                        announced = true;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot create the lock {}", path.display()));
                }
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_modules_are_replaced_by_their_published_versions() {
        let go_mod = "module k8s.io/kubernetes\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n\tgithub.com/x/y => github.com/x/y v1.0.0\n)\n";
        assert_eq!(
            staging_replaces(go_mod, "0.36.3"),
            vec![
                "\tk8s.io/api => k8s.io/api v0.36.3".to_string(),
                "\tk8s.io/client-go => k8s.io/client-go v0.36.3".to_string(),
            ]
        );
    }

    #[test]
    fn a_failing_build_step_reports_what_failed_and_its_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'go: module lookup disabled' >&2; exit 3"]);
        let message = match run_with_progress("etcd test", &mut cmd) {
            Ok(()) => panic!("a failing build step must fail"),
            Err(e) => format!("{e:#}"),
        };
        assert!(message.contains("building etcd test failed"), "{message}");
        assert!(message.contains("go: module lookup disabled"), "{message}");
        assert!(message.contains("full log in"), "{message}");
    }

    #[test]
    fn staging_version_follows_the_kubernetes_minor() {
        assert_eq!(staging_version("1.36.3").ok().as_deref(), Some("0.36.3"));
        assert!(staging_version("2.0.0").is_err());
    }
}
