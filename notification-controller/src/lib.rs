//! Ferroflux notification-controller: Flux events come in over HTTP, are matched against
//! Alerts and sent out through Providers; Receivers turn webhooks from Git hosts and registries
//! into immediate reconciles.
//!
//! - [`api`]: Provider and Alert (`notification.toolkit.fluxcd.io/v1beta3`), Receiver
//!   (`notification.toolkit.fluxcd.io/v1`).
//! - [`intake`]: the event endpoint, rate limiting and Alert matching.
//! - [`provider`]: one notifier per Provider type, with the request each service expects.
//! - [`receiver`]: the webhook endpoint and its verification per Receiver type.
//! - [`controller`]: the reconcilers and the process.

pub mod api;
pub mod controller;
pub mod intake;
pub mod provider;
pub mod receiver;
