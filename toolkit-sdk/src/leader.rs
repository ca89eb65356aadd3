//! Leader election on a `coordination.k8s.io/v1` Lease, so only one replica reconciles.
//!
//! Every replica runs a [`LeaderElector`] on the same Lease. The one whose identity is in
//! `spec.holderIdentity` leads; it renews `spec.renewTime` every retry period. The others
//! poll, and take over when the holder is empty (released) or has not renewed for a lease
//! duration. Leadership is published on a [`tokio::sync::watch`] channel:
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use tokio_util::sync::CancellationToken;
//! use toolkit_sdk::flags::LeaderElectionArgs;
//! use toolkit_sdk::leader::{LeaderElector, default_identity, lease_name};
//!
//! let elector = LeaderElector::new(
//!     client,
//!     "flux-system",
//!     &lease_name("source-controller", ""),
//!     default_identity(),
//!     (&LeaderElectionArgs::default()).into(),
//! )?;
//! let mut leading = elector.subscribe();
//! let shutdown = CancellationToken::new();
//! let election = tokio::spawn(elector.run(shutdown.clone()));
//! leading.wait_for(|&leader| leader).await?;
//! // ... reconcile while `*leading.borrow()` is true; stop when it turns false ...
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - Writes use optimistic concurrency (the Lease's `resourceVersion`), so of two candidates
//!   racing for a free Lease exactly one wins.
//! - A leader that cannot renew stops leading (the channel turns `false` and
//!   [`LeaderElector::run`] returns [`LeaderElectionError::Lost`]) no later than the renew
//!   deadline after the start of its last successful renewal. Candidates take over only after
//!   they have seen the Lease unchanged for a whole lease duration, measured on their own clock,
//!   which is longer; so two replicas never both believe they lead (given clocks that run at
//!   the same rate, as Kubernetes assumes too).
//! - On shutdown with `release_on_cancel`, the leader first turns the channel `false`, then
//!   clears `holderIdentity` so a standby takes over at its next poll instead of after the
//!   lease duration.
//!
//! # Caveats
//!
//! Releasing on cancel is only safe when the process stops reconciling as soon as the
//! channel turns `false` (or the shutdown token is cancelled). After
//! [`LeaderElectionError::Lost`], Flux controllers exit and let Kubernetes restart them;
//! doing the same is the simplest correct reaction.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::flags::LeaderElectionArgs;

/// Candidates wait between `retry_period` and this factor more before each attempt, so
/// replicas started together do not poll in lockstep (client-go uses the same factor).
const JITTER_FACTOR: f64 = 1.2;

/// Timing of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    /// How long a Lease stays valid after a renewal (`--leader-election-lease-duration`).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading
    /// (`--leader-election-renew-deadline`); shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// The wait between attempts (`--leader-election-retry-period`); shorter than
    /// `renew_deadline`.
    pub retry_period: Duration,
    /// Clear the Lease holder on shutdown (`--leader-election-release-on-cancel`).
    pub release_on_cancel: bool,
}

impl From<&LeaderElectionArgs> for LeaderElectionConfig {
    fn from(args: &LeaderElectionArgs) -> Self {
        Self {
            lease_duration: args.leader_election_lease_duration,
            renew_deadline: args.leader_election_renew_deadline,
            retry_period: args.leader_election_retry_period,
            release_on_cancel: args.leader_election_release_on_cancel,
        }
    }
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        (&LeaderElectionArgs::default()).into()
    }
}

/// Why leader election stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    /// The durations do not satisfy `lease_duration > renew_deadline > 1.2 * retry_period > 0`,
    /// or the lease duration is not a whole number of seconds of at least one.
    #[error("invalid leader election timing: {0}")]
    InvalidConfig(String),
    /// This replica led and no longer does; it must stop reconciling.
    #[error("lost leadership of Lease {namespace}/{name}: {why}")]
    Lost {
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// What happened, e.g. renewal failing past the deadline, or another holder.
        why: String,
    },
}

/// An identity unique to this process: the hostname (the pod name in a pod) and a random
/// suffix, like controller-runtime's.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{host}_{:016x}", rand::random::<u64>())
}

/// The Lease name a controller elects its leader on: `<controller>-leader-election`, as
/// Flux names it, plus a short hash of `--watch-label-selector` when one is set, so shards
/// of one controller (each watching its own selector) elect their leaders independently.
pub fn lease_name(controller: &str, watch_label_selector: &str) -> String {
    use sha2::{Digest, Sha256};
    let base = format!("{controller}-leader-election");
    let selector = watch_label_selector.trim();
    if selector.is_empty() {
        return base;
    }
    let digest = Sha256::digest(selector.as_bytes());
    format!("{base}-{}", &hex::encode(digest)[..8])
}

/// A leadership channel that says `true` forever, for when leader election is disabled.
pub fn always_leader() -> watch::Receiver<bool> {
    watch::channel(true).1
}

/// Outcome of one acquire-or-renew attempt.
#[derive(Debug)]
enum Attempt {
    /// We hold the Lease now.
    Held,
    /// Someone else holds a valid Lease.
    HeldBy(String),
}

/// Takes part in the election for one Lease; see the [module docs](self).
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    config: LeaderElectionConfig,
    leading: watch::Sender<bool>,
    /// The Lease spec as last seen, and when it last changed (our clock).
    observed: Option<(LeaseSpec, Instant)>,
}

impl LeaderElector {
    /// An elector for Lease `namespace/lease_name` as `identity` (unique per replica; see
    /// [`default_identity`]). Nothing happens until [`run`](Self::run).
    pub fn new(
        client: kube::Client,
        namespace: &str,
        lease_name: &str,
        identity: impl Into<String>,
        config: LeaderElectionConfig,
    ) -> Result<Self, LeaderElectionError> {
        validate(&config)?;
        let identity = identity.into();
        if identity.is_empty() {
            return Err(LeaderElectionError::InvalidConfig(
                "the identity must not be empty".to_owned(),
            ));
        }
        Ok(Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: lease_name.to_owned(),
            identity,
            config,
            leading: watch::channel(false).0,
            observed: None,
        })
    }

    /// This elector's identity, as written to `holderIdentity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// A receiver of the leadership state: `true` while this replica leads.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Campaigns, then leads, until `shutdown` is cancelled (`Ok`) or leadership is lost
    /// ([`LeaderElectionError::Lost`]). Errors talking to the API server while campaigning are
    /// logged and retried.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), LeaderElectionError> {
        match self.campaign(&shutdown).await {
            Some(acquired_at) => self.lead(&shutdown, acquired_at).await,
            None => Ok(()),
        }
    }

    /// Tries until the Lease is ours and returns when the winning attempt started; `None`
    /// when shut down first.
    async fn campaign(&mut self, shutdown: &CancellationToken) -> Option<Instant> {
        tracing::info!(lease = %self.lease_id(), identity = %self.identity, "attempting to acquire leader lease");
        let mut last_holder = String::new();
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            let started = Instant::now();
            let attempt =
                tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(Attempt::Held)) => {
                    self.leading.send_replace(true);
                    tracing::info!(lease = %self.lease_id(), identity = %self.identity, "acquired leader lease");
                    return Some(started);
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    if holder != last_holder {
                        tracing::info!(lease = %self.lease_id(), holder = %holder, "leader lease is held by another replica; waiting");
                        last_holder = holder;
                    }
                }
                Ok(Err(err)) => {
                    tracing::warn!(lease = %self.lease_id(), error = &err as &dyn std::error::Error, "cannot acquire leader lease; retrying");
                }
                Err(_) => {
                    tracing::warn!(lease = %self.lease_id(), "acquiring leader lease timed out; retrying");
                }
            }
            let wait = self
                .config
                .retry_period
                .mul_f64(rand::random_range(1.0..1.0 + JITTER_FACTOR));
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Renews until shut down or lost. Called with the Lease just acquired by an attempt
    /// that started at `acquired_at`.
    async fn lead(
        &mut self,
        shutdown: &CancellationToken,
        acquired_at: Instant,
    ) -> Result<(), LeaderElectionError> {
        // A renewal is counted from before its request was sent, so our deadline is never
        // later than what other replicas can observe.
        let mut last_renew = acquired_at;
        let mut last_error = String::new();
        loop {
            let deadline = last_renew + self.config.renew_deadline;
            let next = (Instant::now() + self.config.retry_period).min(deadline);
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.leading.send_replace(false);
                    if self.config.release_on_cancel {
                        self.release().await;
                    }
                    return Ok(());
                }
                () = tokio::time::sleep_until(next) => {}
            }
            let started = Instant::now();
            if started >= deadline {
                return Err(self.lose(format!(
                    "could not renew within the renew deadline of {:?}: {last_error}",
                    self.config.renew_deadline
                )));
            }
            match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(Attempt::Held)) => {
                    last_renew = started;
                    last_error.clear();
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    return Err(self.lose(format!("the lease is now held by {holder}")));
                }
                Ok(Err(err)) => {
                    tracing::warn!(lease = %self.lease_id(), error = &err as &dyn std::error::Error, "cannot renew leader lease; retrying");
                    last_error = error_chain(&err);
                }
                Err(_) => {
                    last_error = "renewal timed out".to_owned();
                }
            }
        }
    }

    fn lose(&self, why: String) -> LeaderElectionError {
        self.leading.send_replace(false);
        tracing::error!(lease = %self.lease_id(), identity = %self.identity, "lost leadership: {why}");
        LeaderElectionError::Lost {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            why,
        }
    }

    fn lease_id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Records `spec` as seen now, keeping the old observation time when it did not change.
    fn observe(&mut self, spec: &LeaseSpec) -> Instant {
        match &self.observed {
            Some((seen, at)) if seen == spec => *at,
            _ => {
                let now = Instant::now();
                self.observed = Some((spec.clone(), now));
                now
            }
        }
    }

    /// One step of the election: create the Lease, take it when free or expired, or renew it
    /// when ours. Conflicting writes surface as errors (the next attempt re-reads).
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let spec = LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.lease_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            let created = self.api.create(&PostParams::default(), &lease).await?;
            self.observe(&created.spec.unwrap_or_default());
            return Ok(Attempt::Held);
        };

        let spec = lease.spec.clone().unwrap_or_default();
        let changed_at = self.observe(&spec);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        if !holder.is_empty() && !ours {
            let valid_for = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.config.lease_duration, Duration::from_secs);
            if *self.leading.borrow() || changed_at.elapsed() < valid_for {
                return Ok(Attempt::HeldBy(holder));
            }
        }

        let mut new_spec = spec;
        new_spec.holder_identity = Some(self.identity.clone());
        new_spec.lease_duration_seconds = Some(self.lease_seconds());
        new_spec.renew_time = Some(now.clone());
        if !ours {
            new_spec.acquire_time = Some(now);
            new_spec.lease_transitions = Some(new_spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(new_spec);
        // `lease.metadata.resourceVersion` is the one we read: the write fails with a
        // conflict if anyone wrote in between.
        let updated = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        self.observe(&updated.spec.unwrap_or_default());
        Ok(Attempt::Held)
    }

    /// Clears the holder so a standby takes over at once. Best effort.
    async fn release(&mut self) {
        let result = tokio::time::timeout(self.config.renew_deadline, async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok(false);
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            let now = MicroTime(jiff::Timestamp::now());
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now.clone());
            spec.acquire_time = Some(now);
            lease.spec = Some(spec);
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
                .map(|_| true)
        })
        .await;
        match result {
            Ok(Ok(true)) => {
                tracing::info!(lease = %self.lease_id(), identity = %self.identity, "released leader lease");
            }
            Ok(Ok(false)) => {}
            Ok(Err(err)) => {
                tracing::warn!(lease = %self.lease_id(), error = &err as &dyn std::error::Error, "cannot release leader lease; standbys take over when it expires");
            }
            Err(_) => {
                tracing::warn!(lease = %self.lease_id(), "releasing leader lease timed out; standbys take over when it expires");
            }
        }
    }
}

fn validate(config: &LeaderElectionConfig) -> Result<(), LeaderElectionError> {
    let invalid = |msg: String| Err(LeaderElectionError::InvalidConfig(msg));
    if config.retry_period.is_zero() {
        return invalid("the retry period must be positive".to_owned());
    }
    if config.lease_duration < Duration::from_secs(1) || config.lease_duration.subsec_nanos() != 0 {
        return invalid(format!(
            "the lease duration ({:?}) must be a whole number of seconds, at least 1s",
            config.lease_duration
        ));
    }
    if config.lease_duration <= config.renew_deadline {
        return invalid(format!(
            "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
            config.lease_duration, config.renew_deadline
        ));
    }
    if config.renew_deadline <= config.retry_period.mul_f64(JITTER_FACTOR) {
        return invalid(format!(
            "the renew deadline ({:?}) must be longer than 1.2 times the retry period ({:?})",
            config.renew_deadline, config.retry_period
        ));
    }
    Ok(())
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease: u64, renew: u64, retry: u64) -> LeaderElectionConfig {
        LeaderElectionConfig {
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
            release_on_cancel: true,
        }
    }

    #[test]
    fn flux_defaults_are_valid() {
        let config = LeaderElectionConfig::default();
        assert_eq!(config, config_from_flux());
        assert!(validate(&config).is_ok());
    }

    fn config_from_flux() -> LeaderElectionConfig {
        config(35, 30, 5)
    }

    #[test]
    fn inconsistent_timings_are_rejected() {
        for bad in [config(30, 30, 5), config(35, 5, 5), config(35, 30, 0)] {
            let err = validate(&bad).err();
            assert!(
                matches!(err, Some(LeaderElectionError::InvalidConfig(_))),
                "{bad:?}"
            );
        }
        let mut fractional = config(3, 2, 1);
        fractional.lease_duration = Duration::from_millis(3500);
        assert!(validate(&fractional).is_err());
    }

    #[test]
    fn identities_are_unique() {
        assert_ne!(default_identity(), default_identity());
    }

    #[test]
    fn lease_names_follow_flux_and_separate_shards() {
        assert_eq!(
            lease_name("source-controller", ""),
            "source-controller-leader-election"
        );
        let main = lease_name("source-controller", "!sharding.fluxcd.io/key");
        let shard = lease_name("source-controller", "sharding.fluxcd.io/key in (shard1)");
        assert!(
            main.starts_with("source-controller-leader-election-"),
            "{main}"
        );
        assert_ne!(main, shard);
        assert_eq!(
            main,
            lease_name("source-controller", "!sharding.fluxcd.io/key")
        );
        assert!(main.len() <= 63, "{main}");
    }

    #[test]
    fn always_leader_says_true() {
        assert!(*always_leader().borrow());
    }
}
