//! What an apply or a prune did, object by object.

use std::fmt;

use crate::object_ref::ObjectRef;

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The object did not exist and was created (or was recreated after an immutable-field
    /// change).
    Created,
    /// The object existed and was changed.
    Configured,
    /// The object already matched the source; nothing was written.
    Unchanged,
    /// The object was deleted (or was already gone).
    Deleted,
    /// The object was left alone on purpose: `ssa: Ignore`, `ssa: IfNotPresent` on an
    /// existing object, `reconcile: disabled`, `prune: disabled`, or not ours to delete.
    Skipped,
}

impl Action {
    /// Whether the action changed the cluster (created, configured or deleted).
    pub fn is_change(self) -> bool {
        matches!(self, Self::Created | Self::Configured | Self::Deleted)
    }

    /// The lowercase word Flux uses (`created`, `configured`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
            Self::Deleted => "deleted",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The object, with the version it was applied with.
    pub object: ObjectRef,
    /// What happened.
    pub action: Action,
}

/// `Deployment/apps/podinfo configured`, as in Flux's events.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.object, self.action)
    }
}

/// The result of an apply or a prune, in the order the objects were handled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// One entry per object.
    pub entries: Vec<Change>,
}

impl ChangeSet {
    /// The changes only (created, configured, deleted), one `Kind/namespace/name action` per
    /// line: the message of Flux's apply and prune events. Empty when nothing changed.
    pub fn summary(&self) -> String {
        self.entries
            .iter()
            .filter(|c| c.action.is_change())
            .map(Change::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether any object was created, configured or deleted.
    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|c| c.action.is_change())
    }

    /// Every object of the set, whatever happened to it (skipped ones included): what the
    /// inventory records after an apply.
    pub fn objects(&self) -> Vec<ObjectRef> {
        self.entries.iter().map(|c| c.object.clone()).collect()
    }

    /// The entry of `object` (compared without the version), if any.
    pub fn get(&self, object: &ObjectRef) -> Option<&Change> {
        self.entries.iter().find(|c| c.object.same_object(object))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(kind: &str, ns: &str, name: &str, action: Action) -> Change {
        Change {
            object: ObjectRef::from_object(&json!({
                "apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": ns}
            }))
            .unwrap(),
            action,
        }
    }

    #[test]
    fn summary_lists_only_changes_in_fluxs_words() {
        let set = ChangeSet {
            entries: vec![
                change("Namespace", "", "apps", Action::Unchanged),
                change("ConfigMap", "apps", "a", Action::Created),
                change("Service", "apps", "b", Action::Configured),
                change("Secret", "apps", "c", Action::Skipped),
                change("ServiceAccount", "apps", "d", Action::Deleted),
            ],
        };
        assert_eq!(
            set.summary(),
            "ConfigMap/apps/a created\nService/apps/b configured\nServiceAccount/apps/d deleted"
        );
        assert!(set.has_changes());
        assert_eq!(set.objects().len(), 5);
        assert_eq!(
            set.get(&set.entries[2].object).unwrap().action,
            Action::Configured
        );
    }

    #[test]
    fn no_changes_means_an_empty_summary() {
        let set = ChangeSet {
            entries: vec![change("ConfigMap", "apps", "a", Action::Unchanged)],
        };
        assert_eq!(set.summary(), "");
        assert!(!set.has_changes());
        assert!(!ChangeSet::default().has_changes());
    }
}
