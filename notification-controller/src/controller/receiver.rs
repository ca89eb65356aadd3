//! The Receiver reconciler: publishes the webhook path of each Receiver.
//!
//! The steps, in order (the first error ends the reconcile):
//!
//! 1. **Filter.** A `spec.resourceFilter` that is not valid CEL stalls the Receiver
//!    (`InvalidCELExpression`, "Reconciliation failed terminally due to configuration
//!    error: ...") until the spec changes.
//! 2. **Token.** The `token` key of the Secret named by `spec.secretRef`, in the Receiver's
//!    namespace. Missing Secret or key: `Ready=False`, reason `TokenNotFound`,
//!    `status.webhookPath` removed (the webhook answers 404), retried with backoff.
//! 3. **Path.** `status.webhookPath` = `/hook/` + hex(sha256(token + name + namespace));
//!    `Ready=True`, reason `Succeeded`, "Receiver initialized for path: /hook/...".
//!
//! A change to the Secret (a rotated token, a Secret created late) reconciles the Receivers
//! that reference it at once ([`super::secret_changes`]).

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use toolkit_sdk::cel::Expression;
use toolkit_sdk::conditions::reasons;
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::runtime::{Context, Outcome, Reconciler};

use crate::api::v1::{Receiver, ReceiverStatus, TOKEN_KEY, TOKEN_NOT_FOUND_REASON, webhook_path};

/// Reconciles Receivers into webhook paths; the webhook itself is served by
/// [`crate::receiver::serve`].
#[derive(Debug, Clone, Default)]
pub struct ReceiverReconciler;

impl ReceiverReconciler {
    /// A Receiver reconciler.
    pub fn new() -> Self {
        Self
    }
}

impl Reconciler for ReceiverReconciler {
    type Object = Receiver;

    async fn reconcile(
        &self,
        obj: &Receiver,
        status: &mut ReceiverStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        let name = obj.name_any();
        let namespace = obj.namespace().unwrap_or_default();

        // 1. Filter.
        if let Some(filter) = obj.spec.resource_filter()
            && let Err(error) = Expression::compile(filter)
        {
            return Err(ReconcileError::stalled(
                reasons::INVALID_CEL_EXPRESSION,
                format!("Reconciliation failed terminally due to configuration error: {error}"),
            ));
        }

        // 2. Token.
        let token = match read_token(ctx, &namespace, &obj.spec.secret_ref.name).await {
            Ok(token) => token,
            Err(error) => {
                status.webhook_path = None;
                return Err(error);
            }
        };

        // 3. Path.
        let path = webhook_path(&token, &name, &namespace);
        if status.webhook_path.as_deref() != Some(path.as_str()) {
            tracing::info!(path = %path, "Receiver initialized");
        }
        let message = format!("Receiver initialized for path: {path}");
        status.webhook_path = Some(path);
        Ok(Outcome::ready(message))
    }
}

/// The `token` of the Secret `namespace/name`. Errors never carry the Secret's content.
async fn read_token(ctx: &Context, namespace: &str, name: &str) -> Result<Vec<u8>, ReconcileError> {
    let api: Api<Secret> = Api::namespaced(ctx.client().clone(), namespace);
    let secret = api.get_opt(name).await.map_err(|e| {
        ReconcileError::transient(
            TOKEN_NOT_FOUND_REASON,
            format!("unable to read token from secret '{namespace}/{name}'"),
        )
        .with_source(e)
    })?;
    let Some(secret) = secret else {
        return Err(ReconcileError::transient(
            TOKEN_NOT_FOUND_REASON,
            format!("unable to read token from secret '{namespace}/{name}': secret not found"),
        ));
    };
    secret
        .data
        .and_then(|mut data| data.remove(TOKEN_KEY))
        .map(|v| v.0)
        .ok_or_else(|| {
            ReconcileError::transient(
                TOKEN_NOT_FOUND_REASON,
                format!("invalid '{namespace}/{name}' secret data: required field '{TOKEN_KEY}'"),
            )
        })
}
