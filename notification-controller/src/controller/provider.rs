//! The Provider reconciler: says in `status.conditions` whether a Provider can deliver.
//!
//! Ours: Flux v1beta3 does not reconcile Providers; a broken one is only noticed when an event
//! fails to go out. Here every Provider is checked when it changes, when asked
//! (`reconcile.fluxcd.io/requestedAt`) and every `spec.interval` (10m by default):
//!
//! 0. **Expression.** A `spec.commitStatusExpr` that is not valid CEL: `Ready=False` and
//!    `Stalled=True`, reason `InvalidCELExpression`.
//! 1. **Secrets.** `secretRef`, `certSecretRef` and `proxySecretRef` are read and their keys
//!    resolved as the event intake does. A missing Secret or an unusable key: `Ready=False`,
//!    reason `ValidationFailed`, a message naming the Secret and the key, a `Warning` event;
//!    checked again after `--requeue-dependency` (the fix is in the Secret, not the spec).
//! 2. **Type.** The notifier is built: an unsupported type (one that needs a cloud SDK) or a
//!    setting the type cannot work with (no address, no token, an address of the wrong
//!    shape): `Ready=False` and `Stalled=True`, reason `ValidationFailed`, until the spec
//!    changes.
//! 3. `Ready=True`, reason `Succeeded`, message `Initialized`.
//!
//! Nothing is sent: the check never contacts the service.

use std::time::Duration;

use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::runtime::{Context, Outcome, Reconciler};

use crate::api::v1beta3::{Provider, ProviderStatus};
use crate::intake::settings::{self, SettingsError};
use crate::provider::ProviderError;

/// The reason of `Ready=False` when a Provider or an Alert cannot be used (Flux's).
pub const VALIDATION_FAILED: &str = "ValidationFailed";

/// The message of `Ready=True` (Flux's).
pub const INITIALIZED: &str = "Initialized";

/// Checks Providers; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ProviderReconciler {
    recheck: Duration,
}

impl ProviderReconciler {
    /// A reconciler that checks a Provider with a missing or unusable Secret again after
    /// `recheck`.
    pub fn new(recheck: Duration) -> Self {
        Self { recheck }
    }

    fn secret_error(&self, err: SettingsError) -> ReconcileError {
        let message = err.to_string();
        ReconcileError::transient(VALIDATION_FAILED, message)
            .with_source(err)
            .retry_after(self.recheck)
    }
}

/// The error of a notifier that cannot be built. The cause of an invalid proxy is left out:
/// it may quote the proxy URL, credentials included.
fn provider_error(err: ProviderError) -> ReconcileError {
    let stalled = ReconcileError::stalled(VALIDATION_FAILED, err.to_string());
    match err {
        ProviderError::InvalidProxy(_) => stalled,
        other => stalled.with_source(other),
    }
}

impl Reconciler for ProviderReconciler {
    type Object = Provider;

    /// Flux creates Providers without a finalizer: there is nothing to release on deletion.
    const USES_FINALIZER: bool = false;

    async fn reconcile(
        &self,
        obj: &Provider,
        _status: &mut ProviderStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        let expr = obj.spec.commit_status_expr.trim();
        if !expr.is_empty()
            && let Err(err) = toolkit_sdk::cel::Expression::compile(expr)
        {
            return Err(ReconcileError::stalled(
                toolkit_sdk::conditions::reasons::INVALID_CEL_EXPRESSION,
                format!("invalid spec.commitStatusExpr: {err}"),
            ));
        }
        let settings = settings::resolve(ctx.client(), obj)
            .await
            .map_err(|err| self.secret_error(err))?;
        crate::provider::notifier(settings).map_err(provider_error)?;
        Ok(Outcome::ready(INITIALIZED))
    }
}
