//! `replacements`: copy a field of one object into fields of others.
//!
//! # Where the build calls what
//!
//! In a kustomization's transformer phase, at kustomize's place for replacements (after
//! patches, images, replicas and the other built-in transformers of the same kustomization):
//! [`load`] turns the `replacements:` entries into [`Replacement`]s (reading `path:` files
//! through the [`FileSource`]), then [`apply`] runs them, in order,
//! over all objects accumulated so far.
//!
//! # Field paths
//!
//! See [`path`]: dot-separated, `\.` escapes a dot, `[a.b/c]` holds a key with dots, `[k=v]`
//! picks list elements by field value, `[=v]` list elements equal to `v`, a number indexes a list,
//! `*` matches every element / value.

pub mod path;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::generators::{FileSource, FileSourceError};
use crate::patch::target::LabelSelector;
use crate::resource::{ResId, Resource};

/// The field path a source or target uses when none is given.
pub const DEFAULT_FIELD_PATH: &str = "metadata.name";

/// What can go wrong loading or applying replacements.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplacementError {
    /// An entry has both `path:` and an inline replacement.
    #[error("cannot specify both path and inline replacement")]
    PathAndInline,
    /// A replacements file cannot be read.
    #[error("cannot read replacements file {path:?}")]
    ReadFile {
        /// The path as written.
        path: String,
        /// Why.
        #[source]
        source: FileSourceError,
    },
    /// A replacements file is not a replacement or a list of them.
    #[error("invalid replacements file {path:?}")]
    ParseFile {
        /// The path as written.
        path: String,
        /// What the parser said.
        #[source]
        source: serde_yaml::Error,
    },
    /// A replacements file holds neither a mapping nor a list.
    #[error("unsupported replacement type encountered within replacement path {path:?}")]
    UnsupportedFile {
        /// The path as written.
        path: String,
    },
    /// A replacement lacks `source` or `targets`.
    #[error("replacements must specify a source and at least one target")]
    MissingSourceOrTargets,
    /// A target lacks `select`.
    #[error("target must specify resources to select")]
    MissingSelect,
    /// No object matches the source selector.
    #[error("nothing selected by {selector}")]
    SourceNotFound {
        /// The selector, as kustomize prints it.
        selector: String,
    },
    /// More than one object matches the source selector.
    #[error("multiple matches for selector {selector}")]
    MultipleSources {
        /// The selector, as kustomize prints it.
        selector: String,
    },
    /// The source object has no value at the source field path.
    #[error("fieldPath `{field_path}` is missing for replacement source {selector}")]
    SourceFieldMissing {
        /// The field path.
        field_path: String,
        /// The selector, as kustomize prints it.
        selector: String,
    },
    /// A target field does not exist (and `create` is off), or cannot be created.
    #[error(
        "unable to {} field \"{field_path}\" in replacement target {target}{}",
        if *create { "find or create" } else { "find" },
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    TargetFieldMissing {
        /// The field path.
        field_path: String,
        /// Whether `create` was on.
        create: bool,
        /// The target object.
        target: Box<ResId>,
        /// Why, when the walk stopped on something (a value of the wrong shape, an index past
        /// the end, a malformed segment).
        detail: Option<String>,
    },
    /// The text written into a typed scalar does not read as that type (kustomize fails the
    /// same way when it prints the object).
    #[error("cannot decode {found} `{value}` as a {expected}")]
    IncompatibleValue {
        /// The text.
        value: String,
        /// The type the text reads as.
        found: &'static str,
        /// The type of the target field.
        expected: &'static str,
    },
    /// A field path is malformed, or walks through a value of the wrong shape.
    #[error("{message}")]
    InvalidPath {
        /// What is wrong.
        message: String,
    },
    /// `delimiter` on a value that is not a scalar.
    #[error("delimiter option can only be used with scalar nodes")]
    DelimiterOnNonScalar,
    /// The source `index` is outside the split value.
    #[error("options.index {index} is out of bounds for value {value}")]
    IndexOutOfBounds {
        /// The index.
        index: i64,
        /// The value that was split.
        value: String,
    },
    /// A label or annotation selector cannot be parsed.
    #[error("invalid selector {selector:?}: {reason}")]
    InvalidSelector {
        /// The selector text.
        selector: String,
        /// What is wrong.
        reason: String,
    },
}

/// One entry of `replacements:` in a kustomization: inline, or `path:` to a file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplacementField {
    /// A file holding one replacement or a list of them, relative to the kustomization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where the value comes from (inline form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Where it goes (inline form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<Target>>,
}

/// A replacement: one source value, copied to every target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replacement {
    /// Where the value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Where it goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<Target>>,
}

/// The object and field a replacement reads. Selection is by exact match of each given part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// API group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// API version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Field path ([`DEFAULT_FIELD_PATH`] when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
    /// How to read the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<FieldOptions>,
}

/// Objects and fields a replacement writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// Objects to write (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selector>,
    /// Objects among the selected ones to leave alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reject: Vec<Selector>,
    /// Field paths to write ([`DEFAULT_FIELD_PATH`] when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_paths: Vec<String>,
    /// How to write the fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<FieldOptions>,
}

/// Picks objects: each non-empty part must match (exactly), the label and annotation selectors
/// are Kubernetes label selector expressions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// API group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// API version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Label selector (`app=web,tier in (a,b),!legacy`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label_selector: String,
    /// The same syntax, matched against annotations.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation_selector: String,
}

/// Refines how a field is read or written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldOptions {
    /// Split the value on this string and use one part.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub delimiter: String,
    /// Which part (source: must exist; target: below 0 prepends, past the end appends).
    #[serde(default)]
    pub index: i64,
    /// Reserved by kustomize, unused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encoding: String,
    /// Create a missing target field.
    #[serde(default)]
    pub create: bool,
}

#[cfg(test)]
mod tests;

/// The replacements of a kustomization, in order: inline entries as they are, `path:` entries
/// read through `files` (a file holds one replacement or a list of them).
///
/// # Errors
///
/// An entry with both `path` and inline parts, an unreadable or malformed file.
pub fn load(
    entries: &[ReplacementField],
    files: &dyn FileSource,
) -> Result<Vec<Replacement>, ReplacementError> {
    let mut out = Vec::new();
    for entry in entries {
        let Some(path) = &entry.path else {
            out.push(Replacement {
                source: entry.source.clone(),
                targets: entry.targets.clone(),
            });
            continue;
        };
        if entry.source.is_some() || entry.targets.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(ReplacementError::PathAndInline);
        }
        let bytes = files
            .read_file(path)
            .map_err(|source| ReplacementError::ReadFile {
                path: path.clone(),
                source,
            })?;
        out.extend(parse_file(&bytes, path)?);
    }
    Ok(out)
}

/// The replacements in a replacements file: one replacement (a mapping) or a list of them.
/// Unknown fields are ignored, as kustomize ignores them in these files.
///
/// # Errors
///
/// Malformed YAML, a field of the wrong type, a file that is neither a mapping nor a list.
pub fn parse_file(bytes: &[u8], path: &str) -> Result<Vec<Replacement>, ReplacementError> {
    let parse_err = |source| ReplacementError::ParseFile {
        path: path.to_string(),
        source,
    };
    let value: Value = serde_yaml::from_slice(bytes).map_err(parse_err)?;
    match value {
        Value::Sequence(items) => items
            .into_iter()
            .map(|item| serde_yaml::from_value(lenient(item)).map_err(parse_err))
            .collect(),
        Value::Mapping(_) => Ok(vec![
            serde_yaml::from_value(lenient(value)).map_err(parse_err)?,
        ]),
        _ => Err(ReplacementError::UnsupportedFile {
            path: path.to_string(),
        }),
    }
}

/// Drops the fields the replacement types do not know, so `deny_unknown_fields` accepts what
/// kustomize's lenient file parsing accepts.
fn lenient(mut value: Value) -> Value {
    const REPLACEMENT: &[&str] = &["source", "targets"];
    const SOURCE: &[&str] = &[
        "group",
        "version",
        "kind",
        "name",
        "namespace",
        "fieldPath",
        "options",
    ];
    const TARGET: &[&str] = &["select", "reject", "fieldPaths", "options"];
    const SELECTOR: &[&str] = &[
        "group",
        "version",
        "kind",
        "name",
        "namespace",
        "labelSelector",
        "annotationSelector",
    ];
    const OPTIONS: &[&str] = &["delimiter", "index", "encoding", "create"];
    fn keep(value: &mut Value, known: &[&str]) {
        if let Value::Mapping(map) = value {
            map.retain(|k, _| k.as_str().is_some_and(|k| known.contains(&k)));
        }
    }
    keep(&mut value, REPLACEMENT);
    if let Some(source) = value.get_mut("source") {
        keep(source, SOURCE);
        if let Some(options) = source.get_mut("options") {
            keep(options, OPTIONS);
        }
    }
    if let Some(Value::Sequence(targets)) = value.get_mut("targets") {
        for target in targets {
            keep(target, TARGET);
            if let Some(select) = target.get_mut("select") {
                keep(select, SELECTOR);
            }
            if let Some(Value::Sequence(rejects)) = target.get_mut("reject") {
                for reject in rejects {
                    keep(reject, SELECTOR);
                }
            }
            if let Some(options) = target.get_mut("options") {
                keep(options, OPTIONS);
            }
        }
    }
    value
}

/// Runs `replacements` in order over `resources`, as kustomize's replacement transformer does.
///
/// For each replacement: the single object matching the source selector (by its current id or
/// its original id) is read at the source field path; the value is written to every target field
/// of every object selected and not rejected.
///
/// # Errors
///
/// A replacement without source or targets, a target without `select`, no or several source
/// objects, a missing source field, a missing target field when `create` is off, a malformed
/// field path or selector, `delimiter` on a non-scalar, a source `index` out of range.
pub fn apply(
    resources: &mut [Resource],
    replacements: &[Replacement],
) -> Result<(), ReplacementError> {
    for replacement in replacements {
        apply_one(resources, replacement)?;
    }
    Ok(())
}

fn apply_one(
    resources: &mut [Resource],
    replacement: &Replacement,
) -> Result<(), ReplacementError> {
    let (Some(source), Some(targets)) = (&replacement.source, &replacement.targets) else {
        return Err(ReplacementError::MissingSourceOrTargets);
    };
    let value = source_value(resources, source)?;
    for target in targets {
        let Some(select) = &target.select else {
            return Err(ReplacementError::MissingSelect);
        };
        let select_labels = MetaSelector::new(select)?;
        let reject_labels = target
            .reject
            .iter()
            .filter(|r| !r.label_selector.is_empty() || !r.annotation_selector.is_empty())
            .map(MetaSelector::new)
            .collect::<Result<Vec<_>, _>>()?;
        let default_paths = [DEFAULT_FIELD_PATH.to_string()];
        let field_paths = if target.field_paths.is_empty() {
            &default_paths[..]
        } else {
            &target.field_paths[..]
        };
        for resource in resources.iter_mut() {
            if !select_labels.matches(resource) || reject_labels.iter().any(|r| r.matches(resource))
            {
                continue;
            }
            let selected = ids(resource).iter().any(|id| {
                id_selected(id, select)
                    && !target
                        .reject
                        .iter()
                        .any(|r| !id_is_empty(r) && id_selected(id, r))
            });
            if selected {
                write_target(resource, &value, field_paths, target.options.as_ref())?;
            }
        }
    }
    Ok(())
}

/// The current id of `resource` followed by its previous ones.
fn ids(resource: &Resource) -> Vec<ResId> {
    let mut ids = vec![resource.id()];
    ids.extend(crate::transform::previous_ids(resource));
    ids
}

/// kustomize's `ResId.IsSelectedBy`: every non-empty part equal, namespaces `""` and
/// `default` being the same.
fn id_selected(id: &ResId, selector: &impl IdParts) -> bool {
    let (group, version, kind, name, namespace) = selector.parts();
    let effective = |ns: &str| if ns.is_empty() { "default" } else { ns }.to_string();
    (name.is_empty() || name == id.name)
        && (namespace.is_empty()
            || effective(namespace) == effective(id.namespace.as_deref().unwrap_or("")))
        && (group.is_empty() || group == id.group)
        && (version.is_empty() || version == id.version)
        && (kind.is_empty() || kind == id.kind)
}

fn id_is_empty(selector: &Selector) -> bool {
    let (group, version, kind, name, namespace) = selector.parts();
    [group, version, kind, name, namespace]
        .iter()
        .all(|s| s.is_empty())
}

/// The id parts of a selector.
trait IdParts {
    fn parts(&self) -> (&str, &str, &str, &str, &str);
}

impl IdParts for Selector {
    fn parts(&self) -> (&str, &str, &str, &str, &str) {
        (
            &self.group,
            &self.version,
            &self.kind,
            &self.name,
            &self.namespace,
        )
    }
}

impl IdParts for Source {
    fn parts(&self) -> (&str, &str, &str, &str, &str) {
        (
            &self.group,
            &self.version,
            &self.kind,
            &self.name,
            &self.namespace,
        )
    }
}

/// A selector's label and annotation parts (empty parts match everything).
struct MetaSelector {
    labels: Option<LabelSelector>,
    annotations: Option<LabelSelector>,
}

impl MetaSelector {
    fn new(selector: &Selector) -> Result<Self, ReplacementError> {
        let parse = |text: &str| {
            if text.is_empty() {
                return Ok(None);
            }
            LabelSelector::parse(text)
                .map(Some)
                .map_err(|err| ReplacementError::InvalidSelector {
                    selector: text.to_string(),
                    reason: err.to_string(),
                })
        };
        Ok(Self {
            labels: parse(&selector.label_selector)?,
            annotations: parse(&selector.annotation_selector)?,
        })
    }

    fn matches(&self, resource: &Resource) -> bool {
        let metadata = resource.value.get("metadata");
        self.labels
            .as_ref()
            .is_none_or(|s| s.matches(metadata.and_then(|m| m.get("labels"))))
            && self
                .annotations
                .as_ref()
                .is_none_or(|s| s.matches(metadata.and_then(|m| m.get("annotations"))))
    }
}

/// How kustomize prints an id selector: `Kind.version.group/name.namespace`, with
/// `[noKind]`, `[noVer]`, `[noGrp]`, `[noName]`, `[noNs]` for empty parts.
fn id_string(selector: &impl IdParts) -> String {
    let (group, version, kind, name, namespace) = selector.parts();
    let or = |s: &str, none: &str| {
        if s.is_empty() {
            none.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}.{}.{}/{}.{}",
        or(kind, "[noKind]"),
        or(version, "[noVer]"),
        or(group, "[noGrp]"),
        or(name, "[noName]"),
        or(namespace, "[noNs]")
    )
}

/// How kustomize prints a source selector: the id, then the field path and options if set.
fn source_string(source: &Source) -> String {
    let mut parts = vec![id_string(source)];
    if !source.field_path.is_empty() {
        parts.push(source.field_path.clone());
    }
    if let Some(options) = &source.options
        && (!options.delimiter.is_empty() || options.create)
    {
        parts.push(format!(
            "{}({}), create={}",
            options.delimiter, options.index, options.create
        ));
    }
    parts.join(":")
}

/// The value a replacement copies: the source object's field, refined by the source options.
fn source_value(resources: &[Resource], source: &Source) -> Result<Value, ReplacementError> {
    let mut matched = None;
    for resource in resources {
        if ids(resource).iter().any(|id| id_selected(id, source)) {
            if matched.is_some() {
                return Err(ReplacementError::MultipleSources {
                    selector: source_string(source),
                });
            }
            matched = Some(resource);
        }
    }
    let Some(resource) = matched else {
        return Err(ReplacementError::SourceNotFound {
            selector: source_string(source),
        });
    };
    let field_path = if source.field_path.is_empty() {
        DEFAULT_FIELD_PATH
    } else {
        &source.field_path
    };
    let found = path::lookup(&resource.value, &path::parse(field_path))?;
    let value = match found {
        Some(v) if !is_nil_or_empty(v) => v.clone(),
        _ => {
            return Err(ReplacementError::SourceFieldMissing {
                field_path: field_path.to_string(),
                selector: id_string(source),
            });
        }
    };
    let Some(options) = source.options.as_ref().filter(|o| !o.delimiter.is_empty()) else {
        return Ok(value);
    };
    if !path::is_scalar(&value) {
        return Err(ReplacementError::DelimiterOnNonScalar);
    }
    let text = path::scalar_text(&value);
    let parts: Vec<&str> = text.split(options.delimiter.as_str()).collect();
    let part = usize::try_from(options.index)
        .ok()
        .and_then(|i| parts.get(i))
        .ok_or_else(|| ReplacementError::IndexOutOfBounds {
            index: options.index,
            value: text.clone(),
        })?;
    Ok(with_text(&value, part))
}

/// kyaml's `IsNilOrEmpty`: null, an empty mapping or an empty list.
fn is_nil_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        _ => false,
    }
}

/// A scalar of the same YAML type as `like` holding `text` (the type is kept, as kustomize
/// keeps a node's tag when it changes its text).
fn with_text(like: &Value, text: &str) -> Value {
    match like {
        Value::String(_) => Value::from(text),
        _ => path::resolve_plain(text),
    }
}

/// Writes `value` to each of `field_paths` in `resource`.
fn write_target(
    resource: &mut Resource,
    value: &Value,
    field_paths: &[String],
    options: Option<&FieldOptions>,
) -> Result<(), ReplacementError> {
    let create = match options.filter(|o| o.create) {
        None => path::CreateKind::No,
        Some(_) => match value {
            Value::Mapping(_) => path::CreateKind::Mapping,
            Value::Sequence(_) => path::CreateKind::Sequence,
            _ => path::CreateKind::Scalar,
        },
    };
    for field_path in field_paths {
        let segments = path::parse(field_path);
        let target_id = resource.id();
        let missing = |detail: Option<String>| ReplacementError::TargetFieldMissing {
            field_path: field_path.clone(),
            create: create != path::CreateKind::No,
            target: Box::new(target_id.clone()),
            detail,
        };
        let mut set = |found: path::Found<'_>| set_field(found, value, options);
        match path::visit(&mut resource.value, &segments, create, &mut set) {
            Ok(0) => return Err(missing(None)),
            Ok(_) => {}
            Err(ReplacementError::InvalidPath { message }) => return Err(missing(Some(message))),
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// kustomize's `setFieldValue`: splice with the delimiter, then copy the text into a scalar
/// (keeping its type) or the whole value into anything else.
fn set_field(
    found: path::Found<'_>,
    value: &Value,
    options: Option<&FieldOptions>,
) -> Result<(), ReplacementError> {
    let target = found.value;
    let mut value = value.clone();
    if let Some(options) = options.filter(|o| !o.delimiter.is_empty()) {
        if !path::is_scalar(target) {
            return Err(ReplacementError::DelimiterOnNonScalar);
        }
        let target_text = path::scalar_text(target);
        let mut parts: Vec<String> = target_text
            .split(options.delimiter.as_str())
            .map(str::to_string)
            .collect();
        let v = path::scalar_text(&value);
        match usize::try_from(options.index) {
            Err(_) => parts.insert(0, v),
            Ok(i) if i >= parts.len() => parts.push(v),
            Ok(i) => parts[i] = v,
        }
        value = with_text(&value, &parts.join(&options.delimiter));
    }
    if !path::is_scalar(target) {
        *target = value;
        return Ok(());
    }
    let text = if path::is_scalar(&value) {
        path::scalar_text(&value)
    } else {
        String::new()
    };
    if found.untyped {
        *target = path::resolve_plain(&text);
        return Ok(());
    }
    *target = typed_like(target, &text)?;
    Ok(())
}

/// The YAML tag name kustomize prints for a value's type.
fn tag_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "!!null",
        Value::Bool(_) => "!!bool",
        Value::Number(n) if n.is_f64() => "!!float",
        Value::Number(_) => "!!int",
        Value::String(_) => "!!str",
        Value::Sequence(_) => "!!seq",
        Value::Mapping(_) => "!!map",
        Value::Tagged(_) => "!!str",
    }
}

/// `text` as a value of `target`'s type, or the error kustomize reports when the text does not
/// read as that type.
fn typed_like(target: &Value, text: &str) -> Result<Value, ReplacementError> {
    let resolved = path::resolve_plain(text);
    let ok = match (target, &resolved) {
        (Value::String(_) | Value::Tagged(_), _) => return Ok(Value::from(text)),
        (Value::Null, Value::Null) | (Value::Bool(_), Value::Bool(_)) => true,
        (Value::Number(n), Value::Number(r)) => n.is_f64() || !r.is_f64(),
        _ => false,
    };
    if ok {
        Ok(resolved)
    } else {
        Err(ReplacementError::IncompatibleValue {
            value: text.to_string(),
            found: tag_of(&resolved),
            expected: tag_of(target),
        })
    }
}
