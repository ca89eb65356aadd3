//! One Kubernetes object in a build, and its identity.
//!
//! A [`Resource`] is a YAML mapping (`serde_yaml::Value`, insertion-ordered) plus what the build
//! needs to remember about it: where it came from, and the identity it had before any name or
//! namespace change (name references are rewritten from the original identity to the current one).

use serde_yaml::Value;

/// Group, version, kind, namespace and name: how kustomize tells objects apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResId {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Namespace (`None` for cluster-scoped kinds or when unset).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ResId {
    /// Splits `apiVersion` into group and version (`apps/v1` -> `apps`, `v1`; `v1` -> ``, `v1`).
    pub fn split_api_version(api_version: &str) -> (String, String) {
        match api_version.split_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), api_version.to_string()),
        }
    }
}

impl std::fmt::Display for ResId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() { "" } else { "." };
        write!(f, "{}{}{}/{}", self.kind, group, self.group, self.name)?;
        if let Some(ns) = &self.namespace {
            write!(f, " in namespace {ns}")?;
        }
        Ok(())
    }
}

/// An object of the build.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The object itself: a YAML mapping with `apiVersion`, `kind`, `metadata`, ...
    pub value: Value,
    /// The file it was read from (or the generator that made it), for error messages.
    pub origin: String,
    /// Its identity when it entered the build, before prefixes, suffixes, hashes or namespaces.
    pub original_id: ResId,
}

/// The string at `path` (a list of mapping keys) in `value`, if there is one.
pub fn get_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut current = value;
    for key in path {
        current = current.get(*key)?;
    }
    current.as_str()
}

impl Resource {
    /// Wraps a parsed object, recording its identity as the original one.
    pub fn new(value: Value, origin: impl Into<String>) -> Self {
        let mut resource = Self {
            value,
            origin: origin.into(),
            original_id: ResId {
                group: String::new(),
                version: String::new(),
                kind: String::new(),
                namespace: None,
                name: String::new(),
            },
        };
        resource.original_id = resource.id();
        resource
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        get_str(&self.value, &["apiVersion"]).unwrap_or_default()
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        get_str(&self.value, &["kind"]).unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        get_str(&self.value, &["metadata", "name"]).unwrap_or_default()
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        get_str(&self.value, &["metadata", "namespace"]).filter(|ns| !ns.is_empty())
    }

    /// The current identity.
    pub fn id(&self) -> ResId {
        let (group, version) = ResId::split_api_version(self.api_version());
        ResId {
            group,
            version,
            kind: self.kind().to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }

    /// The `metadata` mapping, created if missing.
    pub fn metadata_mut(&mut self) -> &mut serde_yaml::Mapping {
        ensure_mapping(&mut self.value, "metadata")
    }

    /// Sets `metadata.name`.
    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert(Value::from("name"), Value::from(name));
    }

    /// Sets `metadata.namespace`.
    pub fn set_namespace(&mut self, namespace: &str) {
        self.metadata_mut()
            .insert(Value::from("namespace"), Value::from(namespace));
    }
}

/// The mapping under `key` in `value` (which must be a mapping), created (or replaced, if it is
/// not a mapping) when missing.
pub fn ensure_mapping<'a>(value: &'a mut Value, key: &str) -> &'a mut serde_yaml::Mapping {
    if !value.is_mapping() {
        *value = Value::Mapping(serde_yaml::Mapping::new());
    }
    let Value::Mapping(map) = value else {
        unreachable!("made a mapping just above")
    };
    let entry = map
        .entry(Value::from(key))
        .or_insert_with(|| Value::Mapping(serde_yaml::Mapping::new()));
    if !entry.is_mapping() {
        *entry = Value::Mapping(serde_yaml::Mapping::new());
    }
    match entry {
        Value::Mapping(inner) => inner,
        _ => unreachable!("made a mapping just above"),
    }
}

/// The mapping under `key` in `map`, created (or replaced, if it is not a mapping) when missing.
pub fn ensure_child_mapping<'a>(
    map: &'a mut serde_yaml::Mapping,
    key: &str,
) -> &'a mut serde_yaml::Mapping {
    let entry = map
        .entry(Value::from(key))
        .or_insert_with(|| Value::Mapping(serde_yaml::Mapping::new()));
    if !entry.is_mapping() {
        *entry = Value::Mapping(serde_yaml::Mapping::new());
    }
    match entry {
        Value::Mapping(inner) => inner,
        _ => unreachable!("made a mapping just above"),
    }
}
