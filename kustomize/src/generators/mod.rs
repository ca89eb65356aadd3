//! `configMapGenerator` and `secretGenerator`: ConfigMaps and Secrets made from literals, files
//! and env files, merged into objects of a base, and named with kustomize's content hash.
//!
//! # Where the build calls what
//!
//! For each kustomization, after its `resources` are accumulated and before its `components` are
//! applied (kustomize v5's order: a component's generator can merge into the kustomization's
//! generated objects, not the reverse):
//!
//! 1. for each `configMapGenerator` entry, in order, [`generate_config_map`], then for each
//!    `secretGenerator` entry, in order, [`generate_secret`]; each result goes through
//!    [`add_generated`] with the entry's [`Behavior`], which appends it (`create`), or merges it
//!    into / replaces the object it names (`merge`, `replace`), as kustomize's resource map does.
//! 2. The kustomization's transformers (namespace, prefixes, labels, patches, replacements, ...)
//!    then act on generated objects like on any other.
//! 3. Once, for the top-level kustomization only, after every level's transformers have run
//!    (kustomize's final phase, before its last name-reference fix): for each object
//!    [`needs_hash_suffix`] reports, [`crate::transform::record_previous_id`]; then
//!    [`apply_hash_suffixes`], which renames each object marked by [`NEEDS_HASH_ANNOTATION`] to
//!    `<current name>-<hash>`, the hash taken over the object as it is then (its final data:
//!    patches and replacements of every level included). Then the name references to those
//!    objects are rewritten.
//! 4. Before printing: [`crate::transform::strip_build_annotations`] (it removes
//!    [`NEEDS_HASH_ANNOTATION`] with the other internal annotations).
//!
//! # Caveats
//!
//! - `kubectl kustomize` (v5.5) does not validate data keys (`a b`, `a/b` are accepted) nor env
//!   variable names: neither does this module. A key repeated within one generator is an error.
//! - An env-file line without `=` gives its key an empty value (v5.5 does not read the process
//!   environment).
//! - The hash does not depend on the object's name (see [`hash`]), only on its kind, data and,
//!   for a Secret, type.
//! - After `merge` or `replace`, the name gets the hash only if both the existing and the new
//!   object wanted it (what `kubectl kustomize` v5.5 prints).

pub mod hash;
pub mod kv;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::resource::{ResId, Resource};
use crate::transform::previous_ids;

pub use hash::{HashError, hash_suffix};

/// The internal annotation marking a generated object whose name gets the content hash.
///
/// Kept on the object through the build (so transformers see it like kustomize's do) and removed
/// before output by [`crate::transform::strip_build_annotations`].
pub const NEEDS_HASH_ANNOTATION: &str = "internal.config.kubernetes.io/needsHashSuffix";

/// Prefix of kustomize's internal build annotations, never printed.
pub const BUILD_ANNOTATION_PREFIX: &str = "internal.config.kubernetes.io/";

/// The error a [`FileSource`] returns: anything that explains why a file cannot be read.
pub type FileSourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Reads files named by a kustomization, relative to its root.
///
/// The build implements it with its load restrictor (files outside the root refused unless
/// allowed). A path naming a directory must be refused: kustomize requires a file.
pub trait FileSource {
    /// The bytes of the file at `path`, as written in the kustomization.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, FileSourceError>;
}

/// What can go wrong generating or merging a ConfigMap or Secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeneratorError {
    /// The generator has no `name`.
    #[error("a {kind} generator must have a name")]
    MissingName {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
    },
    /// A literal is not `key=value` (no `=`, or nothing before it).
    #[error("invalid literal source {literal:?}, expected key=value")]
    InvalidLiteral {
        /// The literal as written.
        literal: String,
    },
    /// A `files` entry is malformed (`=path`, `key=`, or a second `=`).
    #[error("invalid file source {source_text:?}: {reason}")]
    InvalidFileSource {
        /// The entry as written.
        source_text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file named by `files`, `envs` or `env` cannot be read.
    #[error("cannot read {path:?} for {kind} {name:?}")]
    ReadFile {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// The generator's name.
        name: String,
        /// The path as written in the kustomization.
        path: String,
        /// Why.
        #[source]
        source: FileSourceError,
    },
    /// A line of an env file is not valid UTF-8.
    #[error("env file {path:?}, line {line}: not valid UTF-8")]
    EnvFileNotUtf8 {
        /// The env file.
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// The same key comes twice out of one generator's sources.
    #[error("{kind} {name} illegally repeats the key `{key}`")]
    DuplicateKey {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// The generator's name.
        name: String,
        /// The repeated key.
        key: String,
    },
    /// `behavior: merge` or `replace`, but no object with that id exists.
    #[error("{id} does not exist; cannot merge or replace")]
    NothingToMerge {
        /// Identity of the generated object.
        id: Box<ResId>,
    },
    /// `behavior: create` (the default), but an object with that id already exists.
    #[error("{id} exists; behavior must be merge or replace")]
    AlreadyExists {
        /// Identity of the generated object.
        id: Box<ResId>,
    },
    /// More than one object could take the merge.
    #[error("found multiple objects that could accept merge of {id}")]
    AmbiguousMerge {
        /// Identity of the generated object.
        id: Box<ResId>,
    },
    /// The content hash cannot be computed.
    #[error("cannot compute the name hash of {id}")]
    Hash {
        /// The object.
        id: Box<ResId>,
        /// Why.
        #[source]
        source: HashError,
    },
}

/// How a generated object meets an object of the same id already in the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Add it; an existing object with the same id is an error.
    #[default]
    Create,
    /// Merge into the existing object: data keys added or overwritten, labels and annotations
    /// merged, the rest of the object taken from the new one.
    Merge,
    /// Replace the existing object, keeping its name, namespace, labels and annotations merged.
    Replace,
}

impl Behavior {
    /// Parses `behavior:` as kustomize does: `merge`, `replace`, anything else (absent, `create`,
    /// or an unknown word, which kustomize does not refuse) is `create`.
    pub fn parse(text: Option<&str>) -> Self {
        match text {
            Some("merge") => Self::Merge,
            Some("replace") => Self::Replace,
            _ => Self::Create,
        }
    }
}

/// `generatorOptions` (kustomization level) and a generator's own `options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratorOptions {
    /// Labels added to generated objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations added to generated objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// No content-hash suffix on names.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_name_suffix_hash: bool,
    /// Sets `immutable: true` on generated objects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
}

impl GeneratorOptions {
    /// The options a generator uses: its own `local` options with the kustomization's `global`
    /// ones merged in as kustomize does. A local label or annotation wins over a global one with
    /// the same key; a global `true` wins over a local `false`.
    pub fn merged(local: Option<&Self>, global: Option<&Self>) -> Self {
        let mut merged = local.cloned().unwrap_or_default();
        let Some(global) = global else {
            return merged;
        };
        for (mine, theirs) in [
            (&mut merged.labels, &global.labels),
            (&mut merged.annotations, &global.annotations),
        ] {
            if let Some(theirs) = theirs {
                let mine = mine.get_or_insert_with(BTreeMap::new);
                for (key, value) in theirs {
                    mine.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        merged.disable_name_suffix_hash |= global.disable_name_suffix_hash;
        merged.immutable |= global.immutable;
        merged
    }
}

/// One `configMapGenerator` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapArgs {
    /// Name before prefixes, suffixes and the hash (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace of the generated object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// `create` (default), `merge` or `replace`: see [`Behavior::parse`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
    /// `key=value` pairs; the value may be wrapped in matching single or double quotes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub literals: Vec<String>,
    /// Files: `path` (key = the file's base name) or `key=path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Env files: `KEY=value` lines, `#` comments and blank lines ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<String>,
    /// Legacy single env file, read after `envs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Options overriding the kustomization's `generatorOptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<GeneratorOptions>,
}

/// Alias under the name of the common part of kustomize's generator arguments.
pub type GeneratorArgs = ConfigMapArgs;

/// One `secretGenerator` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretArgs {
    /// Name before prefixes, suffixes and the hash (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace of the generated object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// `create` (default), `merge` or `replace`: see [`Behavior::parse`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
    /// `key=value` pairs; the value may be wrapped in matching single or double quotes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub literals: Vec<String>,
    /// Files: `path` (key = the file's base name) or `key=path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Env files: `KEY=value` lines, `#` comments and blank lines ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<String>,
    /// Legacy single env file, read after `envs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Options overriding the kustomization's `generatorOptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<GeneratorOptions>,
    /// The Secret's `type` (`Opaque` when absent or empty).
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub secret_type: String,
}

impl ConfigMapArgs {
    fn sources(&self) -> kv::Sources<'_> {
        kv::Sources {
            literals: &self.literals,
            files: &self.files,
            envs: &self.envs,
            env: self.env.as_deref(),
        }
    }

    /// The entry's [`Behavior`].
    pub fn behavior(&self) -> Behavior {
        Behavior::parse(self.behavior.as_deref())
    }
}

impl SecretArgs {
    fn sources(&self) -> kv::Sources<'_> {
        kv::Sources {
            literals: &self.literals,
            files: &self.files,
            envs: &self.envs,
            env: self.env.as_deref(),
        }
    }

    /// The entry's [`Behavior`].
    pub fn behavior(&self) -> Behavior {
        Behavior::parse(self.behavior.as_deref())
    }
}

/// Makes the ConfigMap of one `configMapGenerator` entry.
///
/// Keys come from `envs` (then `env`), then `literals`, then `files`. A value that is valid
/// UTF-8 goes to `data`, any other to `binaryData` (base64). `global` is the kustomization's
/// `generatorOptions`. Unless hashing is disabled, the object carries [`NEEDS_HASH_ANNOTATION`].
///
/// # Errors
///
/// A missing name, a malformed source, an unreadable file, a repeated key.
pub fn generate_config_map(
    args: &ConfigMapArgs,
    global: Option<&GeneratorOptions>,
    files: &dyn FileSource,
) -> Result<Resource, GeneratorError> {
    const KIND: &str = "ConfigMap";
    if args.name.is_empty() {
        return Err(GeneratorError::MissingName { kind: KIND });
    }
    let pairs = kv::load(KIND, &args.name, &args.sources(), files)?;
    let mut data = Mapping::new();
    let mut binary = Mapping::new();
    for (key, bytes) in pairs {
        match String::from_utf8(bytes) {
            Ok(text) => data.insert(Value::from(key), Value::from(text)),
            Err(err) => binary.insert(Value::from(key), Value::from(kv::base64(err.as_bytes()))),
        };
    }
    let options = GeneratorOptions::merged(args.options.as_ref(), global);
    let mut object = base_object(KIND, &args.name, &args.namespace, &options);
    if let Value::Mapping(map) = &mut object {
        if !data.is_empty() {
            map.insert(Value::from("data"), Value::Mapping(data));
        }
        if !binary.is_empty() {
            map.insert(Value::from("binaryData"), Value::Mapping(binary));
        }
    }
    Ok(Resource::new(
        object,
        format!("configMapGenerator {}", args.name),
    ))
}

/// Makes the Secret of one `secretGenerator` entry.
///
/// Like [`generate_config_map`], but every value goes to `data` (present even when empty),
/// base64-encoded, and `type` is set (`Opaque` unless given).
///
/// # Errors
///
/// A missing name, a malformed source, an unreadable file, a repeated key.
pub fn generate_secret(
    args: &SecretArgs,
    global: Option<&GeneratorOptions>,
    files: &dyn FileSource,
) -> Result<Resource, GeneratorError> {
    const KIND: &str = "Secret";
    if args.name.is_empty() {
        return Err(GeneratorError::MissingName { kind: KIND });
    }
    let pairs = kv::load(KIND, &args.name, &args.sources(), files)?;
    let mut data = Mapping::new();
    for (key, bytes) in pairs {
        data.insert(Value::from(key), Value::from(kv::base64(&bytes)));
    }
    let options = GeneratorOptions::merged(args.options.as_ref(), global);
    let mut object = base_object(KIND, &args.name, &args.namespace, &options);
    if let Value::Mapping(map) = &mut object {
        let secret_type = if args.secret_type.is_empty() {
            "Opaque"
        } else {
            &args.secret_type
        };
        map.insert(Value::from("type"), Value::from(secret_type));
        // kustomize always gives a generated Secret a `data` mapping, even an empty one.
        map.insert(Value::from("data"), Value::Mapping(data));
    }
    Ok(Resource::new(
        object,
        format!("secretGenerator {}", args.name),
    ))
}

/// `apiVersion`, `kind`, `metadata` (name, namespace, labels, annotations) and `immutable`.
fn base_object(kind: &str, name: &str, namespace: &str, options: &GeneratorOptions) -> Value {
    let mut metadata = Mapping::new();
    metadata.insert(Value::from("name"), Value::from(name));
    if !namespace.is_empty() {
        metadata.insert(Value::from("namespace"), Value::from(namespace));
    }
    if let Some(labels) = options.labels.as_ref().filter(|l| !l.is_empty()) {
        metadata.insert(Value::from("labels"), string_map(labels));
    }
    let mut annotations = options.annotations.clone().unwrap_or_default();
    if !options.disable_name_suffix_hash {
        annotations.insert(NEEDS_HASH_ANNOTATION.to_string(), "enabled".to_string());
    }
    if !annotations.is_empty() {
        metadata.insert(Value::from("annotations"), string_map(&annotations));
    }
    let mut object = Mapping::new();
    object.insert(Value::from("apiVersion"), Value::from("v1"));
    object.insert(Value::from("kind"), Value::from(kind));
    object.insert(Value::from("metadata"), Value::Mapping(metadata));
    if options.immutable {
        object.insert(Value::from("immutable"), Value::Bool(true));
    }
    Value::Mapping(object)
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Mapping(
        map.iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect(),
    )
}

/// Whether `object` is marked for the content-hash suffix.
pub fn needs_hash_suffix(object: &Value) -> bool {
    annotation(object, NEEDS_HASH_ANNOTATION) == Some("enabled")
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(key)?
        .as_str()
}

/// Whether two namespaces are the same to kustomize (`""` and `default` are one).
fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    let effective = |ns: Option<&str>| match ns {
        None | Some("") => "default".to_string(),
        Some(ns) => ns.to_string(),
    };
    effective(a) == effective(b)
}

fn same_id(a: &ResId, b: &ResId) -> bool {
    a.group == b.group
        && a.version == b.version
        && a.kind == b.kind
        && a.name == b.name
        && same_namespace(a.namespace.as_deref(), b.namespace.as_deref())
}

/// Adds a generated object to the build's objects, as kustomize's resource map absorbs a
/// generator's output.
///
/// The object is looked up among `resources` by its id (group, version, kind, name, namespace,
/// `""` and `default` being the same namespace), matched against each object's current id and
/// its previous ids ([`previous_ids`]: so an overlay's generator finds a base's object after the
/// base's prefix).
/// - no match: appended if `behavior` is `create`, else [`GeneratorError::NothingToMerge`];
/// - one match: `create` is [`GeneratorError::AlreadyExists`]; `merge` and `replace` put the
///   result of [`merge_generated`] in place of the existing object (same position);
/// - several: [`GeneratorError::AmbiguousMerge`].
///
/// # Errors
///
/// As listed above.
pub fn add_generated(
    resources: &mut Vec<Resource>,
    generated: Resource,
    behavior: Behavior,
) -> Result<(), GeneratorError> {
    let id = generated.id();
    let matches: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            same_id(&r.id(), &id) || previous_ids(r).iter().any(|prev| same_id(prev, &id))
        })
        .map(|(i, _)| i)
        .collect();
    match (matches.as_slice(), behavior) {
        ([], Behavior::Create) => {
            resources.push(generated);
            Ok(())
        }
        ([], _) => Err(GeneratorError::NothingToMerge { id: Box::new(id) }),
        ([_], Behavior::Create) => Err(GeneratorError::AlreadyExists { id: Box::new(id) }),
        ([index], _) => {
            let merged = merge_generated(&resources[*index], generated, behavior);
            resources[*index] = merged;
            Ok(())
        }
        _ => Err(GeneratorError::AmbiguousMerge { id: Box::new(id) }),
    }
}

/// The object that results from a generated object `new` meeting `existing` with `behavior`
/// `merge` or `replace` (for `create`, `new` itself).
///
/// Like kustomize: the result is `new`, with `existing`'s name and namespace, `existing`'s labels
/// and annotations under `new`'s (new wins on a shared key); for `merge`, `data` and `binaryData`
/// are `existing`'s with `new`'s keys added or overwriting. Everything else (`type`, `immutable`)
/// is `new`'s. The content-hash suffix stays only if both objects have it. The result keeps
/// `existing`'s bookkeeping (origin, original id).
pub fn merge_generated(existing: &Resource, new: Resource, behavior: Behavior) -> Resource {
    if behavior == Behavior::Create {
        return new;
    }
    let both_hash = needs_hash_suffix(&existing.value) && needs_hash_suffix(&new.value);
    let mut value = new.value;
    let old = &existing.value;
    for field in ["labels", "annotations"] {
        let mut merged = old
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        if let Some(mine) = value
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_mapping)
        {
            for (k, v) in mine {
                merged.insert(k.clone(), v.clone());
            }
        }
        if field == "annotations" {
            merged.retain(|k, _| {
                !k.as_str()
                    .is_some_and(|k| k.starts_with(BUILD_ANNOTATION_PREFIX))
            });
            if let Some(Value::Mapping(old_annotations)) =
                old.get("metadata").and_then(|m| m.get("annotations"))
            {
                for (k, v) in old_annotations {
                    if k.as_str()
                        .is_some_and(|k| k.starts_with(BUILD_ANNOTATION_PREFIX))
                    {
                        merged.insert(k.clone(), v.clone());
                    }
                }
            }
            if !both_hash {
                merged.remove(NEEDS_HASH_ANNOTATION);
            }
        }
        let metadata = crate::resource::ensure_mapping(&mut value, "metadata");
        if merged.is_empty() {
            metadata.remove(field);
        } else {
            metadata.insert(Value::from(field), Value::Mapping(merged));
        }
    }
    if behavior == Behavior::Merge {
        for field in ["data", "binaryData"] {
            let old_map = old.get(field).and_then(Value::as_mapping);
            let new_map = value.get(field).and_then(Value::as_mapping);
            if old_map.is_none() && new_map.is_none() {
                continue;
            }
            let mut merged = old_map.cloned().unwrap_or_default();
            if let Some(new_map) = new_map {
                for (k, v) in new_map {
                    merged.insert(k.clone(), v.clone());
                }
            }
            if let Value::Mapping(map) = &mut value {
                map.insert(Value::from(field), Value::Mapping(merged));
            }
        }
    }
    let mut result = existing.clone();
    result.value = value;
    let name = existing.name().to_string();
    result.set_name(&name);
    let metadata = result.metadata_mut();
    match existing.namespace() {
        Some(ns) => {
            metadata.insert(Value::from("namespace"), Value::from(ns));
        }
        None => {
            metadata.remove("namespace");
        }
    }
    result
}

/// One rename done by [`apply_hash_suffixes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRename {
    /// Index of the object in the slice.
    pub index: usize,
    /// Its id before the rename.
    pub previous: ResId,
    /// Its new name (`<previous name>-<hash>`).
    pub new_name: String,
}

/// Appends the content hash to the name of every object marked with [`NEEDS_HASH_ANNOTATION`].
///
/// Call once, at the end of the top-level kustomization (after all transformers of all levels),
/// then rewrite the name references. It does not record the previous ids itself: the caller
/// calls [`crate::transform::record_previous_id`] on each object [`needs_hash_suffix`] reports,
/// right before (kustomize records it there too); [`HashRename`] lists the same renames.
///
/// # Errors
///
/// [`GeneratorError::Hash`] when a marked object is neither a ConfigMap nor a Secret.
pub fn apply_hash_suffixes(resources: &mut [Resource]) -> Result<Vec<HashRename>, GeneratorError> {
    let mut renames = Vec::new();
    for (index, resource) in resources.iter_mut().enumerate() {
        if !needs_hash_suffix(&resource.value) {
            continue;
        }
        let previous = resource.id();
        let hash = hash_suffix(&resource.value).map_err(|source| GeneratorError::Hash {
            id: Box::new(previous.clone()),
            source,
        })?;
        let new_name = format!("{}-{hash}", previous.name);
        resource.set_name(&new_name);
        renames.push(HashRename {
            index,
            previous,
            new_name,
        });
    }
    Ok(renames)
}

/// Removes kustomize's internal build annotations (`internal.config.kubernetes.io/...`) from
/// `object`, and `metadata.annotations` itself when nothing else is left in it (the same as
/// [`crate::transform::strip_build_annotations`], for one object).
pub fn remove_build_annotations(object: &mut Value) {
    let Some(Value::Mapping(metadata)) = object.get_mut("metadata") else {
        return;
    };
    let Some(Value::Mapping(annotations)) = metadata.get_mut("annotations") else {
        return;
    };
    let before = annotations.len();
    annotations.retain(|k, _| {
        !k.as_str()
            .is_some_and(|k| k.starts_with(BUILD_ANNOTATION_PREFIX))
    });
    if annotations.is_empty() && before > 0 {
        metadata.remove("annotations");
    }
}

#[cfg(test)]
mod tests;
