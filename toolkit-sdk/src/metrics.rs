//! Prometheus metrics of the reconcile loop.
//!
//! [`Metrics`] owns a `prometheus-client` [`Registry`] with:
//!
//! | metric | type | labels | notes |
//! |---|---|---|---|
//! | `gotk_reconcile_duration_seconds` | histogram | `kind`, `name`, `namespace` | Flux's name, labels and buckets, so Flux dashboards work |
//! | `gotk_reconcile_total` | counter | `kind`, `result` (`success` or `error`) | ours; bounded labels |
//!
//! Labels are bounded: an error string never becomes a label value. The exposition is the
//! OpenMetrics text format (served by [`crate::observability`] with [`CONTENT_TYPE`]).
//!
//! ```
//! use std::time::Duration;
//! use toolkit_sdk::metrics::Metrics;
//!
//! let metrics = Metrics::new();
//! metrics.observe_reconcile("GitRepository", "flux-system", "podinfo", Duration::from_millis(120), true);
//! assert!(metrics.encode().contains(r#"gotk_reconcile_total{kind="GitRepository",result="success"} 1"#));
//! ```

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the duration histogram, in seconds: Flux's exponential buckets
/// (10ns to 10s, factor 10).
const DURATION_BUCKETS: [f64; 10] = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    kind: String,
    result: ReconcileResult,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum ReconcileResult {
    success,
    error,
}

type DurationFamily = Family<ObjectLabels, Histogram, fn() -> Histogram>;

fn new_duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The controller's metrics registry. Cheap to clone; clones share the same metrics.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    durations: DurationFamily,
    reconciles: Family<ResultLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding only the reconcile metrics.
    pub fn new() -> Self {
        Self::with_registry(Registry::default())
    }

    /// Adds the reconcile metrics to `registry`, which may already hold a controller's own
    /// metrics; all of them are exposed together.
    pub fn with_registry(mut registry: Registry) -> Self {
        let durations = DurationFamily::new_with_constructor(new_duration_histogram);
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation",
            durations.clone(),
        );
        registry.register(
            "gotk_reconcile",
            "The number of reconciliations, by kind and result (success or error)",
            reconciles.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                durations,
                reconciles,
            }),
        }
    }

    /// Records one finished reconcile of `kind` `namespace/name` that took `duration`;
    /// `ok` is false when it ended in an error.
    pub fn observe_reconcile(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        duration: Duration,
        ok: bool,
    ) {
        self.inner
            .durations
            .get_or_create(&ObjectLabels {
                kind: kind.to_owned(),
                name: name.to_owned(),
                namespace: namespace.to_owned(),
            })
            .observe(duration.as_secs_f64());
        self.inner
            .reconciles
            .get_or_create(&ResultLabels {
                kind: kind.to_owned(),
                result: if ok {
                    ReconcileResult::success
                } else {
                    ReconcileResult::error
                },
            })
            .inc();
    }

    /// Drops the duration series of an object, e.g. once it is deleted, so the series of
    /// deleted objects do not pile up.
    pub fn forget_object(&self, kind: &str, namespace: &str, name: &str) {
        self.inner.durations.remove(&ObjectLabels {
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        });
    }

    /// The registry, e.g. to encode it in another format.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// All metrics in the OpenMetrics text format (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error here would be a bug in an encoder of a
        // controller-registered metric, and a partial exposition is the best we can do.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
        {
            tracing::error!(error = %err, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_flux_names_and_labels() {
        let metrics = Metrics::new();
        metrics.observe_reconcile(
            "Kustomization",
            "apps",
            "webapp",
            Duration::from_millis(250),
            true,
        );
        metrics.observe_reconcile(
            "Kustomization",
            "apps",
            "webapp",
            Duration::from_secs(3),
            false,
        );
        let text = metrics.encode();
        let expected_lines = [
            "# HELP gotk_reconcile_duration_seconds The duration in seconds of a GitOps Toolkit resource reconciliation.",
            "# TYPE gotk_reconcile_duration_seconds histogram",
            r#"gotk_reconcile_duration_seconds_sum{kind="Kustomization",name="webapp",namespace="apps"} 3.25"#,
            r#"gotk_reconcile_duration_seconds_count{kind="Kustomization",name="webapp",namespace="apps"} 2"#,
            r#"gotk_reconcile_duration_seconds_bucket{le="0.1",kind="Kustomization",name="webapp",namespace="apps"} 0"#,
            r#"gotk_reconcile_duration_seconds_bucket{le="1.0",kind="Kustomization",name="webapp",namespace="apps"} 1"#,
            r#"gotk_reconcile_duration_seconds_bucket{le="10.0",kind="Kustomization",name="webapp",namespace="apps"} 2"#,
            r#"gotk_reconcile_duration_seconds_bucket{le="+Inf",kind="Kustomization",name="webapp",namespace="apps"} 2"#,
            "# TYPE gotk_reconcile counter",
            r#"gotk_reconcile_total{kind="Kustomization",result="success"} 1"#,
            r#"gotk_reconcile_total{kind="Kustomization",result="error"} 1"#,
            "# EOF",
        ];
        for line in expected_lines {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in:\n{text}"
            );
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("gotk_reconcile_duration_seconds_bucket"))
                .count(),
            DURATION_BUCKETS.len() + 1
        );
    }

    #[test]
    fn forget_object_drops_its_series() {
        let metrics = Metrics::new();
        metrics.observe_reconcile("Bucket", "a", "gone", Duration::from_secs(1), true);
        metrics.observe_reconcile("Bucket", "a", "kept", Duration::from_secs(1), true);
        metrics.forget_object("Bucket", "a", "gone");
        let text = metrics.encode();
        assert!(!text.contains(r#"name="gone""#), "{text}");
        assert!(text.contains(r#"name="kept""#), "{text}");
    }

    #[test]
    fn controller_metrics_are_exposed_alongside() {
        let mut registry = Registry::default();
        let custom = Counter::<u64>::default();
        registry.register("greeter_greetings", "Greetings sent", custom.clone());
        custom.inc();
        let metrics = Metrics::with_registry(registry);
        metrics.observe_reconcile("Greeting", "ns", "hello", Duration::from_secs(1), true);
        let text = metrics.encode();
        assert!(text.contains("greeter_greetings_total 1"), "{text}");
        assert!(
            text.contains("# TYPE gotk_reconcile_duration_seconds histogram"),
            "{text}"
        );
    }
}
