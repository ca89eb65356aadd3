//! Leader election against a real kube-apiserver, with short durations.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use toolkit_sdk::leader::{LeaderElectionConfig, LeaderElectionError, LeaderElector};

const LEASE: &str = "greeter-controller-leader-election";

fn config() -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        release_on_cancel: true,
    }
}

struct Candidate {
    identity: String,
    leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), LeaderElectionError>>,
}

fn start(client: &kube::Client, namespace: &str, identity: &str) -> Candidate {
    let elector = LeaderElector::new(client.clone(), namespace, LEASE, identity, config()).unwrap();
    assert_eq!(elector.identity(), identity);
    let leading = elector.subscribe();
    assert!(!*leading.borrow(), "nobody leads before running");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(elector.run(shutdown.clone()));
    Candidate {
        identity: identity.to_owned(),
        leading,
        shutdown,
        task,
    }
}

async fn wait_until_leading(candidate: &mut Candidate, within: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(within, candidate.leading.wait_for(|&l| l))
        .await
        .unwrap_or_else(|_| panic!("{} did not lead within {within:?}", candidate.identity))
        .unwrap();
    started.elapsed()
}

/// Samples the leadership of all candidates and remembers if two ever led at once.
struct Monitor {
    overlap: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl Monitor {
    fn start(receivers: Vec<watch::Receiver<bool>>) -> Self {
        let overlap = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let (flag, token) = (overlap.clone(), stop.clone());
        tokio::spawn(async move {
            while !token.is_cancelled() {
                let leaders = receivers.iter().filter(|r| *r.borrow()).count();
                if leaders > 1 {
                    flag.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { overlap, stop }
    }

    fn assert_never_two_leaders(self) {
        self.stop.cancel();
        assert!(
            !self.overlap.load(Ordering::SeqCst),
            "two candidates led at the same time"
        );
    }
}

async fn holder(client: &kube::Client, namespace: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    leases
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn standby_takes_over_at_once_when_the_leader_releases() {
    let cluster = e2e::cluster().await.unwrap();
    let ns = cluster.namespace("leader-release").await.unwrap();

    let mut a = start(&ns.client, &ns.name, "replica-a");
    wait_until_leading(&mut a, Duration::from_secs(10)).await;
    let mut b = start(&ns.client, &ns.name, "replica-b");
    let monitor = Monitor::start(vec![a.leading.clone(), b.leading.clone()]);

    // A keeps renewing, so B waits well past a lease duration.
    tokio::time::sleep(config().lease_duration + Duration::from_secs(1)).await;
    assert!(*a.leading.borrow(), "A must still lead");
    assert!(!*b.leading.borrow(), "B must not lead while A renews");
    assert_eq!(
        holder(&ns.client, &ns.name).await.as_deref(),
        Some("replica-a")
    );

    // A shuts down and releases; B takes over at its next poll, not after lease expiry.
    a.shutdown.cancel();
    let released = Instant::now();
    a.task.await.unwrap().unwrap();
    assert!(!*a.leading.borrow());
    wait_until_leading(&mut b, Duration::from_secs(10)).await;
    let took = released.elapsed();
    // B polls every 1 to 2.2 retry periods (jitter). Had A not released, B would have had
    // to see the Lease unchanged for a whole lease duration (3s) first.
    assert!(
        took < config().lease_duration - config().retry_period,
        "B took {took:?} after the release; expected about one or two retry periods"
    );
    assert_eq!(
        holder(&ns.client, &ns.name).await.as_deref(),
        Some("replica-b")
    );
    let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let spec = leases.get(LEASE).await.unwrap().spec.unwrap();
    assert_eq!(spec.lease_duration_seconds, Some(3));
    assert_eq!(spec.lease_transitions, Some(1), "one hand-over from A to B");

    // B releases too: the Lease ends with no holder.
    b.shutdown.cancel();
    b.task.await.unwrap().unwrap();
    assert_eq!(holder(&ns.client, &ns.name).await, None);

    monitor.assert_never_two_leaders();
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn standby_takes_over_after_expiry_when_the_leader_crashes() {
    let cluster = e2e::cluster().await.unwrap();
    let ns = cluster.namespace("leader-crash").await.unwrap();

    let mut a = start(&ns.client, &ns.name, "replica-a");
    wait_until_leading(&mut a, Duration::from_secs(10)).await;
    let mut b = start(&ns.client, &ns.name, "replica-b");
    let monitor = Monitor::start(vec![a.leading.clone(), b.leading.clone()]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!*b.leading.borrow());

    // A "crashes": its task is dropped mid-flight, without releasing the Lease. Its channel
    // closes with the last value it sent; stop sampling it, a dead process leads nothing.
    monitor.assert_never_two_leaders();
    a.task.abort();
    let crashed = Instant::now();
    let _ = a.task.await;

    let took = wait_until_leading(&mut b, Duration::from_secs(15)).await;
    // B must have waited for the lease to expire: at least the lease duration minus the one
    // retry period that may separate A's last renewal from the crash.
    let min = config().lease_duration - config().retry_period;
    assert!(
        took >= min,
        "B took over after {took:?}, before the lease expired"
    );
    assert!(
        crashed.elapsed() <= config().lease_duration + config().retry_period * 4,
        "B took {took:?}"
    );
    assert_eq!(
        holder(&ns.client, &ns.name).await.as_deref(),
        Some("replica-b")
    );

    b.shutdown.cancel();
    b.task.await.unwrap().unwrap();
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn racing_candidates_elect_exactly_one() {
    let cluster = e2e::cluster().await.unwrap();
    let ns = cluster.namespace("leader-race").await.unwrap();

    let mut candidates: Vec<Candidate> = (0..3)
        .map(|i| start(&ns.client, &ns.name, &format!("replica-{i}")))
        .collect();
    let monitor = Monitor::start(candidates.iter().map(|c| c.leading.clone()).collect());

    tokio::time::sleep(Duration::from_secs(3)).await;
    let leaders: Vec<&str> = candidates
        .iter()
        .filter(|c| *c.leading.borrow())
        .map(|c| c.identity.as_str())
        .collect();
    assert_eq!(leaders.len(), 1, "leaders: {leaders:?}");
    assert_eq!(
        holder(&ns.client, &ns.name).await.as_deref(),
        Some(leaders[0])
    );

    // Hand leadership around by shutting leaders down one by one; one always leads next.
    for _ in 0..2 {
        let index = candidates.iter().position(|c| *c.leading.borrow()).unwrap();
        let leader = candidates.remove(index);
        leader.shutdown.cancel();
        leader.task.await.unwrap().unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(c) = candidates.iter().find(|c| *c.leading.borrow()) {
                    return c.identity.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a standby takes over");
        assert_eq!(holder(&ns.client, &ns.name).await, Some(next));
    }
    let last = candidates.pop().unwrap();
    wait_until_leading(&mut { last }, Duration::from_secs(1)).await;

    monitor.assert_never_two_leaders();
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_steps_down() {
    let cluster = e2e::cluster().await.unwrap();
    let ns = cluster.namespace("leader-stolen").await.unwrap();

    let mut a = start(&ns.client, &ns.name, "replica-a");
    wait_until_leading(&mut a, Duration::from_secs(10)).await;

    // Someone else writes the Lease (e.g. an operator forcing a hand-over).
    let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let mut lease = leases.get(LEASE).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        jiff::Timestamp::now(),
    ));
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();

    let result = tokio::time::timeout(Duration::from_secs(5), a.task)
        .await
        .expect("A notices within a few retry periods")
        .unwrap();
    match result {
        Err(LeaderElectionError::Lost { why, name, .. }) => {
            assert_eq!(name, LEASE);
            assert!(why.contains("intruder"), "{why}");
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    assert!(!*a.leading.borrow(), "the channel says A no longer leads");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_by_the_deadline() {
    let cluster = e2e::cluster().await.unwrap();
    let ns = cluster.namespace("leader-deadline").await.unwrap();

    // A acts as a ServiceAccount allowed to manage Leases through a RoleBinding that the
    // test then deletes, so every renewal is forbidden.
    let admin = ns.client.clone();
    let rbac = serde_json::json!([
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "leases", "namespace": ns.name},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                        "verbs": ["get", "create", "update"]}]
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "leases", "namespace": ns.name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leases"},
            "subjects": [{"kind": "ServiceAccount", "name": "controller", "namespace": ns.name}]
        }
    ]);
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(admin.clone(), &ns.name);
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(rbac[0].clone()).unwrap(),
        )
        .await
        .unwrap();
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::namespaced(admin.clone(), &ns.name);
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(rbac[1].clone()).unwrap(),
        )
        .await
        .unwrap();
    let sa_client = cluster
        .service_account_client(&ns.name, "controller")
        .await
        .unwrap();

    let mut a = start(&sa_client, &ns.name, "replica-a");
    wait_until_leading(&mut a, Duration::from_secs(10)).await;
    bindings
        .delete("leases", &DeleteParams::default())
        .await
        .unwrap();
    let revoked = Instant::now();

    let mut leading = a.leading.clone();
    tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|&l| !l))
        .await
        .expect("A steps down")
        .unwrap();
    let stepped_down = revoked.elapsed();
    // The last successful renewal was at most one retry period before the revocation, and
    // A must stop no later than the renew deadline after it: before a standby could see the
    // lease expire (a lease duration after the last renewal).
    assert!(
        stepped_down < config().lease_duration - config().retry_period,
        "A kept leading for {stepped_down:?} after it could no longer renew"
    );
    assert!(
        stepped_down
            >= config().renew_deadline - config().retry_period - Duration::from_millis(300),
        "A stepped down after {stepped_down:?}, before the renew deadline"
    );
    match a.task.await.unwrap() {
        Err(LeaderElectionError::Lost { why, .. }) => {
            assert!(why.contains("renew deadline"), "{why}");
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    ns.delete().await.unwrap();
}
