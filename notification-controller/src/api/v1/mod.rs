//! `notification.toolkit.fluxcd.io/v1`: the Receiver kind.
//!
//! - [`Receiver`]: a webhook that asks for immediate reconciles of the objects it names.

mod receiver;

pub use receiver::{
    CrossNamespaceObjectReference, DEFAULT_INTERVAL, Receiver, ReceiverSpec, ReceiverStatus,
    ReceiverType, TARGET_KINDS, TOKEN_KEY, TOKEN_NOT_FOUND_REASON, WEBHOOK_PATH_PREFIX,
    default_api_version, webhook_path,
};
