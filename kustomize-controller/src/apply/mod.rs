//! Server-side apply of a Kustomization's objects, and prune, with Flux's semantics.
//!
//! [`ResourceManager::apply_all`] applies a build in stages (CRDs, Namespaces and ClusterRoles;
//! then `*Class` kinds; then the rest), decides per object from a server-side apply dry-run
//! whether anything would change, and writes only what does. [`ResourceManager::delete_all`]
//! prunes objects that left the inventory.
//!
//! # Guarantees
//! - A reconcile without drift makes no write: each object costs one dry-run, plus one read
//!   (or a share of one list per kind and namespace when there are several), run concurrently
//!   with at most [`DEFAULT_CONCURRENCY`] requests in flight.
//! - Every applied object carries the owner labels `kustomize.toolkit.fluxcd.io/name` and
//!   `.../namespace`; prune deletes only objects that still carry ours.
//! - Per-object annotations: `kustomize.toolkit.fluxcd.io/ssa` (`Override` by default,
//!   `Merge`, `IfNotPresent`, `Ignore`), `.../force: enabled`, `.../prune: disabled`,
//!   `.../reconcile: disabled`.
//! - A stage is written only when the dry-run of every object in it passed.
//! - Paths named by `spec.driftIgnoreRules` keep their live values on existing objects
//!   ([`ignore`]): neither reported as drift nor written back.
//!
//! # Errors
//! [`ApplyError`] names the object (`Kind/namespace/name`) and carries the API server's
//! message; failures of several objects in one stage are reported together, one line each.
//!
//! # Caveats
//! - `ssa: Merge` follows Flux: the apply still forces ownership of the fields in the source;
//!   what Merge keeps are the fields other managers (kubectl) added, which are otherwise
//!   taken over and removed.
//! - An immutable-field error is recognised from the API server's message (see
//!   [`policy::is_immutable_error`]); a merely invalid object is never deleted, even with
//!   force.

pub mod changeset;
pub mod discovery;
pub mod error;
pub mod ignore;
pub mod manager;
pub mod options;
pub mod policy;

pub use changeset::{Action, Change, ChangeSet};
pub use discovery::{ApiCache, DiscoveryError, ResolvedKind};
pub use error::ApplyError;
pub use ignore::IgnoreRule;
pub use manager::{DEFAULT_CONCURRENCY, ResourceManager};
pub use options::{
    ApplyOptions, DEFAULT_TAKEOVER_MANAGERS, DeleteOptions, ManagerOptions, Owner, Propagation,
};
