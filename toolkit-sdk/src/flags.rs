//! Command-line flags every controller shares, as clap argument groups.
//!
//! Each group is flattened into a controller's own `Args`, so the flags have the same names,
//! defaults and syntax as the Flux controllers (a Flux Deployment's `args:` work unchanged):
//!
//! ```
//! use clap::Parser;
//! use toolkit_sdk::flags::{LeaderElectionArgs, ObservabilityArgs, RuntimeArgs};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     runtime: RuntimeArgs,
//!     #[command(flatten)]
//!     leader_election: LeaderElectionArgs,
//!     #[command(flatten)]
//!     observability: ObservabilityArgs,
//! }
//!
//! let args = Args::parse_from(["my-controller", "--concurrent=8", "--min-retry-delay=1s"]);
//! assert_eq!(args.runtime.concurrent, 8);
//! assert_eq!(args.runtime.min_retry_delay, std::time::Duration::from_secs(1));
//! ```
//!
//! Syntax follows Go's `pflag`, which Flux uses:
//! - durations use Go syntax (`750ms`, `15m`, `1h30m`, `2.5s`);
//! - boolean flags take no value to mean `true` and accept `--flag=false`
//!   (the value must be joined with `=`, as in Go);
//! - listen addresses accept Go's `:8080` (all interfaces) as well as `127.0.0.1:8080`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::api::GoDuration;

/// Flags that shape the reconcile loop: concurrency, retry backoff, requeue jitter and
/// which objects are watched.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct RuntimeArgs {
    /// The number of objects reconciled at the same time.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrent: usize,

    /// The shortest wait before a failed reconcile is retried (Go duration).
    #[arg(long, default_value = "750ms", value_parser = parse_duration, value_name = "DURATION")]
    pub min_retry_delay: Duration,

    /// The longest wait before a failed reconcile is retried (Go duration).
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub max_retry_delay: Duration,

    /// Jitter added to each object's interval, as a percentage of it (0-99).
    #[arg(
        long,
        default_value_t = 5,
        value_parser = clap::value_parser!(u8).range(0..100),
        value_name = "PERCENT"
    )]
    pub interval_jitter_percentage: u8,

    /// Watch objects in all namespaces; with `=false` only the controller's own namespace
    /// (env `RUNTIME_NAMESPACE`).
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub watch_all_namespaces: bool,

    /// Reconcile only objects whose labels match this selector (Kubernetes label selector
    /// syntax; empty means all, as in Flux). Sharded installations give the main controller
    /// `!sharding.fluxcd.io/key` and each shard `sharding.fluxcd.io/key=<shard>`.
    #[arg(long, default_value = "", value_name = "SELECTOR")]
    pub watch_label_selector: String,

    /// Sustained queries per second to the Kubernetes API. Accepted for compatibility with
    /// Flux Deployments and not applied: Ferroflux does not throttle itself on the client
    /// side (at Flux's 50/s a thousand Kustomizations would take minutes); the API server's
    /// priority and fairness limits what each client gets.
    #[arg(long, default_value_t = 50.0, value_name = "QPS")]
    pub kube_api_qps: f32,

    /// Burst of queries to the Kubernetes API. Accepted for compatibility with Flux
    /// Deployments and not applied (see `--kube-api-qps`).
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub kube_api_burst: u32,
}

impl Default for RuntimeArgs {
    fn default() -> Self {
        Self {
            concurrent: 4,
            min_retry_delay: Duration::from_millis(750),
            max_retry_delay: Duration::from_secs(15 * 60),
            interval_jitter_percentage: 5,
            watch_all_namespaces: true,
            watch_label_selector: String::new(),
            kube_api_qps: 50.0,
            kube_api_burst: 300,
        }
    }
}

/// Flags for Lease-based leader election (see [`crate::leader`]).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LeaderElectionArgs {
    /// Elect a leader among the replicas so that only one reconciles at a time.
    #[arg(
        long,
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub enable_leader_election: bool,

    /// How long a lease stays valid after its last renewal: candidates wait this long before
    /// taking over from a silent leader (Go duration).
    #[arg(long, default_value = "35s", value_parser = parse_duration, value_name = "DURATION")]
    pub leader_election_lease_duration: Duration,

    /// How long the leader keeps trying to renew before it gives up leadership (Go duration).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub leader_election_renew_deadline: Duration,

    /// The wait between two attempts to acquire or renew the lease (Go duration).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub leader_election_retry_period: Duration,

    /// Give the lease up on shutdown so a standby takes over at once instead of after the
    /// lease expires.
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub leader_election_release_on_cancel: bool,
}

impl Default for LeaderElectionArgs {
    fn default() -> Self {
        Self {
            enable_leader_election: false,
            leader_election_lease_duration: Duration::from_secs(35),
            leader_election_renew_deadline: Duration::from_secs(30),
            leader_election_retry_period: Duration::from_secs(5),
            leader_election_release_on_cancel: true,
        }
    }
}

/// Flags for logs, metrics, health probes and the event sink.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ObservabilityArgs {
    /// Where `/metrics` is served (`:8080` means all interfaces).
    #[arg(long, default_value = ":8080", value_name = "ADDR")]
    pub metrics_addr: ListenAddr,

    /// Where `/healthz` and `/readyz` are served (`:9440` means all interfaces).
    #[arg(long, default_value = ":9440", value_name = "ADDR")]
    pub health_addr: ListenAddr,

    /// URL that events are POSTed to as JSON (notification-controller's event endpoint);
    /// empty turns forwarding off.
    #[arg(long, default_value = "", value_parser = parse_events_addr, value_name = "URL")]
    pub events_addr: EventsAddr,

    /// Log verbosity: trace, debug, info or error.
    #[arg(long, value_enum, default_value_t = LogLevel::Info, value_name = "LEVEL")]
    pub log_level: LogLevel,

    /// Log encoding: json (one object a line) or console (human readable).
    #[arg(long, value_enum, default_value_t = LogEncoding::Json, value_name = "ENCODING")]
    pub log_encoding: LogEncoding,
}

impl Default for ObservabilityArgs {
    fn default() -> Self {
        Self {
            metrics_addr: ListenAddr::all_interfaces(8080),
            health_addr: ListenAddr::all_interfaces(9440),
            events_addr: None,
            log_level: LogLevel::Info,
            log_encoding: LogEncoding::Json,
        }
    }
}

/// The value of `--events-addr`: `None` when empty (forwarding off).
///
/// A type alias so that clap treats the flag as always present with a default of `""`.
pub type EventsAddr = Option<reqwest::Url>;

/// Log verbosity, with Flux's level names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-step detail.
    Trace,
    /// Debug detail and above.
    Debug,
    /// Normal operation (the default).
    Info,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// The equivalent `tracing` level filter.
    pub fn as_filter(self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match self {
            Self::Trace => LevelFilter::TRACE,
            Self::Debug => LevelFilter::DEBUG,
            Self::Info => LevelFilter::INFO,
            Self::Error => LevelFilter::ERROR,
        }
    }
}

/// Log encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum LogEncoding {
    /// One JSON object a line (the default, like Flux).
    Json,
    /// Human-readable lines.
    Console,
}

/// A TCP listen address as written on the command line.
///
/// Parses `host:port` where host is an IP address, `localhost`, or empty (Go's `:8080`,
/// meaning all interfaces). [`Display`](fmt::Display) prints it back as given, so messages
/// name the address the user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    addr: SocketAddr,
    all_interfaces: bool,
}

impl ListenAddr {
    /// Every interface (`0.0.0.0`) on `port`; displayed Go-style as `:port`.
    pub fn all_interfaces(port: u16) -> Self {
        Self {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            all_interfaces: true,
        }
    }

    /// The socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        Self {
            addr,
            all_interfaces: false,
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all_interfaces {
            write!(f, ":{}", self.addr.port())
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

/// Why a listen address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid listen address {input:?}: expected host:port, e.g. :8080 or 127.0.0.1:8080")]
pub struct ListenAddrError {
    input: String,
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ListenAddrError {
            input: s.to_owned(),
        };
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(addr.into());
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
        let port: u16 = port.parse().map_err(|_| err())?;
        match host {
            "" => Ok(Self::all_interfaces(port)),
            "localhost" => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port).into()),
            _ => Err(err()),
        }
    }
}

/// Parses a Go duration (`750ms`, `1.5h`, `2h45m`, `0`) for clap, via [`GoDuration`].
fn parse_duration(s: &str) -> Result<Duration, String> {
    GoDuration::parse(s)
        .map(Duration::from)
        .map_err(|err| format!("{err}: expected a Go duration such as 750ms, 30s, 15m or 1h30m"))
}

/// Parses `--events-addr`: empty means off, anything else must be an `http` or `https` URL.
pub fn parse_events_addr(s: &str) -> Result<EventsAddr, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let url = reqwest::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(Some(url)),
        other => Err(format!(
            "invalid URL {s:?}: scheme {other:?} is not supported, use http or https"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct TestArgs {
        #[command(flatten)]
        runtime: RuntimeArgs,
        #[command(flatten)]
        leader: LeaderElectionArgs,
        #[command(flatten)]
        obs: ObservabilityArgs,
    }

    fn parse(args: &[&str]) -> Result<TestArgs, clap::Error> {
        TestArgs::try_parse_from(std::iter::once("controller").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_flux() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.runtime, RuntimeArgs::default());
        assert_eq!(args.leader, LeaderElectionArgs::default());
        assert_eq!(args.obs, ObservabilityArgs::default());
        assert_eq!(args.runtime.concurrent, 4);
        assert_eq!(args.runtime.min_retry_delay, Duration::from_millis(750));
        assert_eq!(args.runtime.max_retry_delay, Duration::from_secs(900));
        assert_eq!(args.runtime.interval_jitter_percentage, 5);
        assert!(args.runtime.watch_all_namespaces);
        assert_eq!(args.runtime.watch_label_selector, "");
        assert!(!args.leader.enable_leader_election);
        assert_eq!(
            args.leader.leader_election_lease_duration,
            Duration::from_secs(35)
        );
        assert_eq!(
            args.leader.leader_election_renew_deadline,
            Duration::from_secs(30)
        );
        assert_eq!(
            args.leader.leader_election_retry_period,
            Duration::from_secs(5)
        );
        assert!(args.leader.leader_election_release_on_cancel);
        assert_eq!(args.obs.metrics_addr.to_string(), ":8080");
        assert_eq!(
            args.obs.metrics_addr.socket_addr(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(args.obs.health_addr.to_string(), ":9440");
        assert_eq!(args.obs.events_addr, None);
        assert_eq!(args.obs.log_level, LogLevel::Info);
        assert_eq!(args.obs.log_encoding, LogEncoding::Json);
    }

    #[test]
    fn flux_deployment_args_parse() {
        // The args of a Flux kustomize-controller Deployment, plus a few tuned values.
        let args = parse(&[
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces=true",
            "--log-level=debug",
            "--log-encoding=console",
            "--enable-leader-election",
            "--concurrent=20",
            "--min-retry-delay=2s",
            "--max-retry-delay",
            "1h30m",
            "--interval-jitter-percentage=10",
            "--watch-label-selector=sharding.fluxcd.io/key in (shard1)",
            "--leader-election-lease-duration=1m",
            "--leader-election-release-on-cancel=false",
            "--metrics-addr=127.0.0.1:18080",
            "--health-addr=:19440",
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
        ])
        .unwrap();
        assert_eq!(
            args.obs.events_addr.as_ref().map(|u| u.as_str()),
            Some("http://notification-controller.flux-system.svc.cluster.local./")
        );
        assert!(args.runtime.watch_all_namespaces);
        assert_eq!(args.obs.log_level, LogLevel::Debug);
        assert_eq!(args.obs.log_encoding, LogEncoding::Console);
        assert!(args.leader.enable_leader_election);
        assert_eq!(args.runtime.concurrent, 20);
        assert_eq!(args.runtime.min_retry_delay, Duration::from_secs(2));
        assert_eq!(args.runtime.max_retry_delay, Duration::from_secs(5400));
        assert_eq!(args.runtime.interval_jitter_percentage, 10);
        assert_eq!(
            args.runtime.watch_label_selector,
            "sharding.fluxcd.io/key in (shard1)"
        );
        assert_eq!(
            args.leader.leader_election_lease_duration,
            Duration::from_secs(60)
        );
        assert!(!args.leader.leader_election_release_on_cancel);
        assert_eq!(
            args.obs.metrics_addr.socket_addr(),
            "127.0.0.1:18080".parse().unwrap()
        );
        assert_eq!(args.obs.metrics_addr.to_string(), "127.0.0.1:18080");
        assert_eq!(
            args.obs.health_addr.socket_addr(),
            "0.0.0.0:19440".parse().unwrap()
        );
        assert_eq!(args.runtime.kube_api_qps, 500.0);
        assert_eq!(args.runtime.kube_api_burst, 1000);
    }

    #[test]
    fn bool_flags_accept_equals_false() {
        let args = parse(&["--watch-all-namespaces=false"]).unwrap();
        assert!(!args.runtime.watch_all_namespaces);
        let args = parse(&["--watch-all-namespaces"]).unwrap();
        assert!(args.runtime.watch_all_namespaces);
        let args = parse(&["--enable-leader-election=false"]).unwrap();
        assert!(!args.leader.enable_leader_election);
    }

    #[test]
    fn bad_values_are_rejected_with_the_flag_named() {
        for (argv, flag) in [
            ("--min-retry-delay=5", "--min-retry-delay"),
            ("--max-retry-delay=-1s", "--max-retry-delay"),
            (
                "--interval-jitter-percentage=100",
                "--interval-jitter-percentage",
            ),
            ("--log-level=warn", "--log-level"),
            ("--log-encoding=text", "--log-encoding"),
            ("--metrics-addr=8080", "--metrics-addr"),
            ("--health-addr=example.com:80", "--health-addr"),
            ("--events-addr=ftp://x/", "--events-addr"),
            ("--watch-all-namespaces=maybe", "--watch-all-namespaces"),
        ] {
            let err = parse(&[argv]).unwrap_err().to_string();
            assert!(err.contains(flag), "{argv}: {err}");
        }
    }

    #[test]
    fn empty_events_addr_is_off() {
        let args = parse(&["--events-addr="]).unwrap();
        assert_eq!(args.obs.events_addr, None);
    }

    #[test]
    fn go_durations() {
        for (input, want) in [
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("750ms", Duration::from_millis(750)),
            ("15m", Duration::from_secs(900)),
            ("1h30m", Duration::from_secs(5400)),
            ("2h45m10s", Duration::from_secs(2 * 3600 + 45 * 60 + 10)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("42ns", Duration::from_nanos(42)),
        ] {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
        for bad in ["", "5", "s", "1d", "-1s", "1..5s", "1s5", "ms"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn listen_addrs() {
        let a: ListenAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(a.socket_addr(), "[::1]:9000".parse().unwrap());
        let a: ListenAddr = "localhost:9000".parse().unwrap();
        assert_eq!(a.socket_addr(), "127.0.0.1:9000".parse().unwrap());
        assert!(":http".parse::<ListenAddr>().is_err());
        assert!(":70000".parse::<ListenAddr>().is_err());
    }
}
