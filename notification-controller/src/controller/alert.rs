//! The Alert reconciler: says in `status.conditions` whether an Alert can deliver.
//!
//! Ours: Flux v1beta3 does not reconcile Alerts. Here every Alert is checked when it changes,
//! when asked and every 10 minutes:
//!
//! 1. **Patterns.** Every `inclusionList` and `exclusionList` entry must be a valid regular
//!    expression; otherwise `Ready=False`, `Stalled=True`, reason `InvalidConfig`, naming the
//!    entry, until the spec changes (the intake treats such an entry as matching nothing).
//! 2. **Provider.** `spec.providerRef` must name a Provider in the Alert's namespace: missing,
//!    `Ready=False`, reason `ValidationFailed`, a `Warning` event; not (yet) `Ready`,
//!    `Ready=False`, reason `DependencyNotReady`. Both are checked again after
//!    `--requeue-dependency`.
//! 3. `Ready=True`, reason `Succeeded`, message `Initialized`.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use regex::Regex;
use toolkit_sdk::conditions::{self, reasons};
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::runtime::{Context, Outcome, Reconciler};

use super::provider::{INITIALIZED, VALIDATION_FAILED};
use crate::api::v1beta3::{Alert, AlertStatus, Provider};

/// The reason of `Ready=False` for an unusable part of the spec (Flux's).
pub const INVALID_CONFIG: &str = "InvalidConfig";

/// Checks Alerts; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct AlertReconciler {
    recheck: Duration,
}

impl AlertReconciler {
    /// A reconciler that checks an Alert whose Provider is missing or not ready again after
    /// `recheck`.
    pub fn new(recheck: Duration) -> Self {
        Self { recheck }
    }
}

/// The first pattern of `field` that does not compile, as an error naming it.
fn check_patterns(field: &str, patterns: &[String]) -> Result<(), ReconcileError> {
    for (index, pattern) in patterns.iter().enumerate() {
        if let Err(err) = Regex::new(pattern) {
            return Err(ReconcileError::stalled(
                INVALID_CONFIG,
                format!("spec.{field}[{index}] is not a valid regular expression: {pattern:?}"),
            )
            .with_source(err));
        }
    }
    Ok(())
}

impl Reconciler for AlertReconciler {
    type Object = Alert;

    /// Flux creates Alerts without a finalizer: there is nothing to release on deletion.
    const USES_FINALIZER: bool = false;

    async fn reconcile(
        &self,
        obj: &Alert,
        _status: &mut AlertStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        check_patterns("inclusionList", &obj.spec.inclusion_list)?;
        check_patterns("exclusionList", &obj.spec.exclusion_list)?;

        let namespace = obj.namespace().unwrap_or_default();
        let name = &obj.spec.provider_ref.name;
        let providers: Api<Provider> = Api::namespaced(ctx.client().clone(), &namespace);
        let provider = providers.get_opt(name).await.map_err(|err| {
            ReconcileError::transient(
                VALIDATION_FAILED,
                format!("cannot read Provider '{namespace}/{name}'"),
            )
            .with_source(err)
        })?;
        let Some(provider) = provider else {
            return Err(ReconcileError::transient(
                VALIDATION_FAILED,
                format!("Provider '{namespace}/{name}' referenced by spec.providerRef not found"),
            )
            .retry_after(self.recheck));
        };
        let ready = provider
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_ready(&s.conditions));
        if !ready {
            let why = provider
                .status
                .as_ref()
                .and_then(|s| conditions::get(&s.conditions, conditions::types::READY))
                .map(|c| format!(": {}", c.message))
                .unwrap_or_default();
            return Err(ReconcileError::waiting(
                reasons::DEPENDENCY_NOT_READY,
                format!("Provider '{namespace}/{name}' is not ready{why}"),
            )
            .retry_after(self.recheck));
        }
        Ok(Outcome::ready(INITIALIZED))
    }
}
