//! Strategic merge patch, as kustomize applies it.
//!
//! kustomize merges a patch into an object with kyaml's `merge2` walker, not with the API server's
//! strategic merge. The two agree on the common cases and differ in details that show in output,
//! so this module follows kyaml (checked against `kubectl kustomize` v5.5):
//!
//! - maps merge field by field; a `null` in the patch removes the field; a field the patch does
//!   not mention is kept, including an explicit `null` in the object;
//! - a list whose schema says `x-kubernetes-patch-strategy: merge` merges element by element,
//!   matched on `x-kubernetes-list-map-keys` (when present) or the merge key. The result lists the
//!   patch's elements first, in patch order, then the object's other elements in their order
//!   (with several keys, such as container ports, the elements the object already had come
//!   after the patch's new ones, in the object's order); an element merged with
//!   `$patch: replace` keeps the object's version, and a port the patch gives without its
//!   protocol keeps the object's fields (kustomize does both);
//! - a merge list without a key (`finalizers`) is a set union: the patch's values, then the
//!   object's other values;
//! - every other list, and every list of a custom resource or unknown kind (no schema), is
//!   replaced by the patch's list as written (directives inside it are not interpreted);
//! - `$patch: delete` removes a map, a list element or a list; `$patch: replace` replaces a map or
//!   (as a lone `{$patch: replace}` element) a list; `$patch: merge` is the default; any other
//!   value is an error;
//! - a patch whose top level says `$patch: delete` deletes the object ([`Outcome::Deleted`]); one
//!   whose top level says `$patch: replace` leaves it unchanged (kustomize does);
//! - a type clash (a map in the patch where the object has a scalar, ...) is an error.
//!
//! kustomize copies `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` and `$retainKeys`
//! into its output as if they were fields. By default this module gives them their Kubernetes
//! meaning instead (see [`SmpOptions::literal_extended_directives`]):
//! - `$retainKeys: [a, b]` removes the object's fields other than `a` and `b` from that map
//!   before merging;
//! - `$deleteFromPrimitiveList/<list>: [x]` removes `x` from the object's `<list>` before merging;
//! - `$setElementOrder/<list>: [...]` orders the merged `<list>`: the elements it names (by merge
//!   key, or by value for primitives) follow its order; the others keep their relative order and
//!   are interleaved by where they stood in the object (the API server's rule).
//!
//! The schema of a position comes from the caller for the top level, and from the built-in
//! schema (by `apiVersion` and `kind`) for any map without one, as kyaml does.
//!
//! # Differences from `kubectl kustomize`
//!
//! - The extended directives above, unless [`SmpOptions::literal_extended_directives`] is set.
//! - The built-in schema is that of Kubernetes 1.36, while kustomize embeds an older one: lists
//!   added to the API since (Pod `resourceClaims` and `schedulingGates`, ...) merge by their keys
//!   here and are replaced by kustomize.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use serde_yaml::{Mapping, Value};

use super::PatchError;
use super::schema::{self, SchemaNode};

/// The result of applying a strategic merge patch to an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The patched object.
    Patched(Value),
    /// The patch deletes the whole object (top-level `$patch: delete`): drop it from the build.
    Deleted,
}

impl Outcome {
    /// The patched object, `None` when the patch deleted it.
    pub fn into_value(self) -> Option<Value> {
        match self {
            Outcome::Patched(value) => Some(value),
            Outcome::Deleted => None,
        }
    }
}

/// Choices for [`strategic_merge_with`] and [`apply_strategic_merge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmpOptions {
    /// Copy `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and `$retainKeys` into the result
    /// as ordinary fields, as `kubectl kustomize` v5 does, instead of applying them.
    pub literal_extended_directives: bool,
    /// Let the patch rename the object (kustomize's `allowNameChange` patch option).
    pub allow_name_change: bool,
    /// Let the patch change the object's kind (kustomize's `allowKindChange` patch option).
    pub allow_kind_change: bool,
}

/// Whether `patch` is a whole-object delete (`$patch: delete` at its top level).
pub fn is_delete_patch(patch: &Value) -> bool {
    patch.get("$patch").and_then(Value::as_str) == Some("delete")
}

/// Merges `patch` into `base` with the default [`SmpOptions`].
///
/// `kind_schema` is the schema of the object's kind; with `None`, the built-in schema of the
/// `apiVersion`/`kind` of `base` (or else of `patch`) is used, and a kind without one (a custom
/// resource) merges with every list replaced. See the module docs for the rules.
pub fn strategic_merge(
    base: &Value,
    patch: &Value,
    kind_schema: Option<SchemaNode<'_>>,
) -> Result<Outcome, PatchError> {
    strategic_merge_with(base, patch, kind_schema, &SmpOptions::default())
}

/// Merges `patch` into `base` (see [`strategic_merge`]). Only
/// [`SmpOptions::literal_extended_directives`] matters here; the name and kind options are for
/// [`apply_strategic_merge`].
pub fn strategic_merge_with(
    base: &Value,
    patch: &Value,
    kind_schema: Option<SchemaNode<'_>>,
    options: &SmpOptions,
) -> Result<Outcome, PatchError> {
    let dest = Node::from_value(base);
    let origin = Node::from_value(patch);
    let walker = Walker { options };
    let merged = walker.walk(
        Some(dest.clone()),
        Some(origin),
        kind_schema,
        &mut Vec::new(),
    )?;
    Ok(match merged {
        // kustomize keeps the object it patched in place; what the walk returns only tells
        // whether the object survives (a top-level `$patch: replace` therefore changes nothing).
        Some(_) => Outcome::Patched(Node::to_value(&dest)),
        None => Outcome::Deleted,
    })
}

/// Applies a strategic merge patch to a resource the way kustomize's patch transformer does.
///
/// The patch takes the target's `apiVersion` (its `kind` stays its own); after the merge the
/// target keeps its namespace, and its name and kind unless `options` allow them to change.
/// The schema comes from the target's `apiVersion` and `kind`.
pub fn apply_strategic_merge(
    target: &Value,
    patch: &Value,
    options: &SmpOptions,
) -> Result<Outcome, PatchError> {
    let text =
        |value: &Value, path: &[&str]| crate::resource::get_str(value, path).map(str::to_string);
    let name = text(target, &["metadata", "name"]);
    let namespace = text(target, &["metadata", "namespace"]);
    let kind = text(target, &["kind"]);
    let mut patch = patch.clone();
    if let (Value::Mapping(map), Some(api_version)) = (&mut patch, target.get("apiVersion")) {
        map.insert(Value::from("apiVersion"), api_version.clone());
    }
    let outcome = strategic_merge_with(target, &patch, None, options)?;
    let Outcome::Patched(mut value) = outcome else {
        return Ok(Outcome::Deleted);
    };
    if let Value::Mapping(map) = &mut value {
        if !options.allow_kind_change {
            set_or_remove(map, "kind", kind);
        }
        let metadata = map
            .entry(Value::from("metadata"))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if let Value::Mapping(metadata) = metadata {
            if !options.allow_name_change {
                set_or_remove(metadata, "name", name);
            }
            set_or_remove(metadata, "namespace", namespace);
        }
    }
    Ok(Outcome::Patched(value))
}

fn set_or_remove(map: &mut Mapping, key: &str, value: Option<String>) {
    match value {
        Some(value) => {
            map.insert(Value::from(key), Value::from(value));
        }
        None => {
            map.remove(key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A YAML tree with shared, mutable nodes. kyaml merges in place on shared nodes, and some of its
// visible behaviour (which version of a list element wins) follows from that sharing, so the
// walk below works on the same kind of tree.

type NodeRef = Rc<RefCell<Node>>;

#[derive(Debug, Clone)]
enum Node {
    Null,
    Scalar(Value),
    Map(Vec<(Value, NodeRef)>),
    Seq(Vec<NodeRef>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
    Scalar,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Map => "MappingNode",
            Kind::Seq => "SequenceNode",
            Kind::Scalar => "ScalarNode",
        }
    }
}

impl Node {
    fn new(node: Node) -> NodeRef {
        Rc::new(RefCell::new(node))
    }

    fn from_value(value: &Value) -> NodeRef {
        Self::new(match value {
            Value::Null => Node::Null,
            Value::Mapping(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_value(v)))
                    .collect(),
            ),
            Value::Sequence(seq) => Node::Seq(seq.iter().map(Self::from_value).collect()),
            Value::Tagged(tagged) => match &tagged.value {
                Value::Mapping(_) | Value::Sequence(_) => {
                    return Self::from_value(&tagged.value);
                }
                _ => Node::Scalar(value.clone()),
            },
            other => Node::Scalar(other.clone()),
        })
    }

    fn to_value(node: &NodeRef) -> Value {
        match &*node.borrow() {
            Node::Null => Value::Null,
            Node::Scalar(value) => value.clone(),
            Node::Map(fields) => Value::Mapping(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Self::to_value(v)))
                    .collect(),
            ),
            Node::Seq(items) => Value::Sequence(items.iter().map(Self::to_value).collect()),
        }
    }
}

/// The kind of a node, `None` for null.
fn kind_of(node: &NodeRef) -> Option<Kind> {
    match &*node.borrow() {
        Node::Null => None,
        Node::Scalar(_) => Some(Kind::Scalar),
        Node::Map(_) => Some(Kind::Map),
        Node::Seq(_) => Some(Kind::Seq),
    }
}

fn is_null(node: &NodeRef) -> bool {
    matches!(&*node.borrow(), Node::Null)
}

fn missing_or_null(node: Option<&NodeRef>) -> bool {
    node.is_none_or(is_null)
}

fn is_empty_map(node: &NodeRef) -> bool {
    matches!(&*node.borrow(), Node::Map(fields) if fields.is_empty())
}

/// The text of a scalar (what kyaml compares keys and values by); empty for anything else.
fn text_of_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(tagged) => text_of_value(&tagged.value),
        _ => String::new(),
    }
}

fn text(node: &NodeRef) -> String {
    match &*node.borrow() {
        Node::Scalar(value) => text_of_value(value),
        _ => String::new(),
    }
}

/// The value of field `name` of a map node.
fn field(node: &NodeRef, name: &str) -> Option<NodeRef> {
    match &*node.borrow() {
        Node::Map(fields) => fields
            .iter()
            .find(|(k, _)| text_of_value(k) == name)
            .map(|(_, v)| v.clone()),
        _ => None,
    }
}

/// The field names of a map node.
fn field_names(node: &NodeRef) -> Vec<String> {
    match &*node.borrow() {
        Node::Map(fields) => fields.iter().map(|(k, _)| text_of_value(k)).collect(),
        _ => Vec::new(),
    }
}

fn remove_field(node: &NodeRef, name: &str) -> Option<NodeRef> {
    match &mut *node.borrow_mut() {
        Node::Map(fields) => {
            let at = fields.iter().position(|(k, _)| text_of_value(k) == name)?;
            Some(fields.remove(at).1)
        }
        _ => None,
    }
}

/// Sets field `name` (kyaml's `FieldSetter`): a missing or null value removes the field; an
/// existing field takes the new content in place; a new field is appended.
fn set_field(node: &NodeRef, name: &str, value: Option<NodeRef>) {
    let Some(value) = value.filter(|v| !is_null(v)) else {
        remove_field(node, name);
        return;
    };
    if let Some(existing) = field(node, name) {
        if !Rc::ptr_eq(&existing, &value) {
            let content = value.borrow().clone();
            *existing.borrow_mut() = content;
        }
        return;
    }
    if let Node::Map(fields) = &mut *node.borrow_mut() {
        fields.push((Value::from(name), value));
    }
}

fn items(node: &NodeRef) -> Vec<NodeRef> {
    match &*node.borrow() {
        Node::Seq(items) => items.clone(),
        _ => Vec::new(),
    }
}

fn set_items(node: &NodeRef, new_items: Vec<NodeRef>) {
    *node.borrow_mut() = Node::Seq(new_items);
}

fn contents(node: &NodeRef) -> String {
    serde_yaml::to_string(&Node::to_value(node)).unwrap_or_default()
}

/// kyaml's `FieldMatcher` with a string value: the field `name` of `elem`, if present and (when
/// `value` is not empty) equal to `value`. With an empty `name`, matches a scalar by its text.
fn field_matcher(elem: &NodeRef, name: &str, value: &str) -> Result<Option<NodeRef>, String> {
    if is_null(elem) {
        return Ok(None);
    }
    if name.is_empty() {
        if kind_of(elem) != Some(Kind::Scalar) {
            return Err(wrong_kind(Kind::Scalar, elem));
        }
        return Ok((text(elem) == value).then(|| elem.clone()));
    }
    if kind_of(elem) != Some(Kind::Map) {
        return Err(wrong_kind(Kind::Map, elem));
    }
    Ok(field(elem, name).filter(|f| value.is_empty() || text(f) == value))
}

fn wrong_kind(expected: Kind, got: &NodeRef) -> String {
    format!(
        "wrong node kind: expected {} but got {}: node contents:\n{}",
        expected.name(),
        kind_of(got).map_or("null", Kind::name),
        contents(got).trim_end()
    )
}

/// kyaml's `ElementSetter`: in list `seq`, replaces every element matching `keys`/`values` with
/// `element` (appending it when none matches), or removes them when `element` is `None`.
/// Null and empty-map elements are dropped on the way, as kyaml does.
fn element_setter(
    seq: &NodeRef,
    element: Option<&NodeRef>,
    keys: &[String],
    values: &[String],
) -> Result<(), String> {
    let empty_key = [String::new()];
    let keys: &[String] = if keys.is_empty() { &empty_key } else { keys };
    let mapping_setter =
        !keys[0].is_empty() && values.first().is_some_and(|value| !value.is_empty());
    let mut new_items = Vec::new();
    let mut found_any = false;
    for elem in items(seq) {
        if is_null(&elem) || is_empty_map(&elem) {
            continue;
        }
        if kind_of(&elem) != Some(Kind::Map) && mapping_setter {
            new_items.push(elem);
            continue;
        }
        let mut matched: Option<NodeRef> = None;
        let mut found = true;
        for (j, key) in keys.iter().enumerate() {
            if let Some(value) = values.get(j) {
                matched = field_matcher(&elem, key, value)?;
            }
            if matched.is_none() {
                found = false;
                break;
            }
        }
        if !found {
            if !values.is_empty() {
                new_items.push(elem);
            }
            continue;
        }
        found_any = true;
        if let Some(element) = element {
            new_items.push(element.clone());
        }
    }
    set_items(seq, new_items);
    if let Some(element) = element
        && !is_null(element)
        && !found_any
        && let Node::Seq(items) = &mut *seq.borrow_mut()
    {
        items.push(element.clone());
    }
    Ok(())
}

/// kyaml's `ElementList`: the first element of `seq` whose fields `keys` have the texts
/// `values` (with an empty key: the first scalar with that text).
fn element_list(seq: Option<&NodeRef>, keys: &[String], values: &[String]) -> Option<NodeRef> {
    let seq = seq?;
    if kind_of(seq) != Some(Kind::Seq) {
        return None;
    }
    let first_key = keys.first().map_or("", String::as_str);
    let first_value = values.first().map_or("", String::as_str);
    let all = items(seq);
    if first_key.is_empty() {
        return all.into_iter().find(|elem| text(elem) == first_value);
    }
    all.into_iter().find(|elem| {
        kind_of(elem) == Some(Kind::Map)
            && keys
                .iter()
                .zip(values)
                .all(|(key, value)| field(elem, key).is_some_and(|f| text(&f) == *value))
    })
}

/// kyaml's `validateKeys`: the keys that have a value in at least one tuple of `all` (all the
/// keys when none has), with `values`' entries for them.
fn validate_keys(
    all: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let valid: Vec<bool> = (0..keys.len())
        .map(|i| {
            all.iter()
                .any(|tuple| tuple.get(i).is_some_and(|v| !v.is_empty()))
        })
        .collect();
    if !valid.iter().any(|v| *v) {
        return (keys.to_vec(), values.to_vec());
    }
    let valid_keys = keys
        .iter()
        .zip(&valid)
        .filter(|(_, valid)| **valid)
        .map(|(k, _)| k.clone())
        .collect();
    let valid_values = values
        .iter()
        .enumerate()
        .filter(|(i, v)| !v.is_empty() || valid.get(*i).copied().unwrap_or(false))
        .map(|(_, v)| v.clone())
        .collect();
    (valid_keys, valid_values)
}

/// kyaml's `match`: two key tuples match when they share a value at some position and differ
/// only where one of them is empty; the result fills the gaps.
fn match_tuples(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut merged = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            merged.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else if x.is_empty() {
            merged.push(y.clone());
        } else {
            merged.push(x.clone());
        }
    }
    common.then_some(merged)
}

/// kyaml's `mergeValues`: tuples that match (a port with and without its protocol) become one.
fn merge_tuples(list: &mut [Vec<String>]) {
    for i in 0..list.len() {
        let first = list[i].clone();
        for j in 0..list.len() {
            if let Some(merged) = match_tuples(&first, &list[j]) {
                list[i] = merged.clone();
                list[j] = merged;
            }
        }
    }
}

/// kyaml's `appendListNode`: sets each element of `src` into `dst` by its key values (replacing
/// the element with the same values, or appending). With several keys, an element is moved to
/// the end rather than replaced in place.
fn append_list_node(dst: &NodeRef, src: &NodeRef, keys: &[String]) -> Result<(), String> {
    for elem in items(src) {
        if keys.first().is_none_or(String::is_empty) {
            let value = text(&elem);
            element_setter(dst, Some(&elem), &[String::new()], &[value])?;
            continue;
        }
        let mut values = Vec::new();
        for key in keys {
            match field_matcher(&elem, key, "")? {
                None => {
                    if let Node::Seq(items) = &mut *dst.borrow_mut() {
                        items.push(elem.clone());
                    }
                }
                Some(value) => values.push(text(&value)),
            }
        }
        if keys.len() > 1 {
            element_setter(dst, None, keys, &values)?;
        }
        element_setter(dst, Some(&elem), keys, &values)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Directives.

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Merge,
    Replace,
    Delete,
}

fn parse_directive(value: &str) -> Option<Directive> {
    match value {
        "merge" => Some(Directive::Merge),
        "replace" => Some(Directive::Replace),
        "delete" => Some(Directive::Delete),
        _ => None,
    }
}

/// The `$patch` directive of a patch node, removed from it once read.
fn determine_directive(origin: Option<&NodeRef>) -> Result<Directive, String> {
    let Some(origin) = origin else {
        return Ok(Directive::Merge);
    };
    match kind_of(origin) {
        Some(Kind::Map) => {
            let Some(value) = field(origin, PATCH_DIRECTIVE) else {
                return Ok(Directive::Merge);
            };
            let value = text(&value);
            let directive = parse_directive(&value)
                .ok_or_else(|| format!("unknown patch strategy '{value}'"))?;
            remove_field(origin, PATCH_DIRECTIVE);
            Ok(directive)
        }
        Some(Kind::Seq) => {
            // A lone `{$patch: ...}` element speaks for the whole list.
            let element = items(origin).into_iter().find(|elem| {
                kind_of(elem) == Some(Kind::Map) && field(elem, PATCH_DIRECTIVE).is_some()
            });
            let Some(element) = element else {
                return Ok(Directive::Merge);
            };
            if field_names(&element).len() > 1 {
                return Ok(Directive::Merge);
            }
            let value = field(&element, PATCH_DIRECTIVE)
                .map(|v| text(&v))
                .unwrap_or_default();
            let directive = parse_directive(&value)
                .ok_or_else(|| format!("unknown patch strategy '{value}'"))?;
            element_setter(origin, None, &[PATCH_DIRECTIVE.to_string()], &[value])?;
            Ok(directive)
        }
        _ => Err(format!(
            "no implemented strategic merge patch strategy for '{}'",
            contents(origin).trim_end()
        )),
    }
}

/// The Kubernetes-only directives of one patch map, taken out of it.
#[derive(Default)]
struct Extended {
    retain_keys: Option<Vec<String>>,
    set_element_order: Vec<(String, Vec<NodeRef>)>,
    delete_from_primitive_list: Vec<(String, Vec<String>)>,
}

fn take_extended(origin: &NodeRef) -> Extended {
    let mut extended = Extended::default();
    for name in field_names(origin) {
        if name == RETAIN_KEYS {
            if let Some(list) = remove_field(origin, &name) {
                extended.retain_keys = Some(items(&list).iter().map(text).collect());
            }
        } else if let Some(list_name) = name.strip_prefix(SET_ELEMENT_ORDER) {
            if let Some(list) = remove_field(origin, &name) {
                extended
                    .set_element_order
                    .push((list_name.to_string(), items(&list)));
            }
        } else if let Some(list_name) = name.strip_prefix(DELETE_FROM_PRIMITIVE_LIST)
            && let Some(list) = remove_field(origin, &name)
        {
            extended.delete_from_primitive_list.push((
                list_name.to_string(),
                items(&list).iter().map(text).collect(),
            ));
        }
    }
    extended
}

// ---------------------------------------------------------------------------------------------
// The walk.

struct Walker<'o> {
    options: &'o SmpOptions,
}

/// The schema of a map that names its own kind, from the built-in schema.
fn type_meta_schema(sources: [Option<&NodeRef>; 2]) -> Option<SchemaNode<'static>> {
    sources.into_iter().flatten().find_map(|node| {
        let api_version = field(node, "apiVersion").map(|v| text(&v))?;
        let kind = field(node, "kind").map(|v| text(&v))?;
        if api_version.is_empty() || kind.is_empty() {
            return None;
        }
        schema::for_kind(&api_version, &kind)
    })
}

impl Walker<'_> {
    fn fail(&self, path: &[String], message: String) -> PatchError {
        if path.is_empty() {
            PatchError::Strategic(message)
        } else {
            PatchError::Strategic(format!("at {}: {message}", path.join(".")))
        }
    }

    fn walk(
        &self,
        dest: Option<NodeRef>,
        origin: Option<NodeRef>,
        schema: Option<SchemaNode<'_>>,
        path: &mut Vec<String>,
    ) -> Result<Option<NodeRef>, PatchError> {
        let schema = schema.or_else(|| type_meta_schema([dest.as_ref(), origin.as_ref()]));
        let kind = [dest.as_ref(), origin.as_ref()]
            .into_iter()
            .flatten()
            .find_map(kind_of);
        if let Some(kind) = kind {
            for node in [dest.as_ref(), origin.as_ref()].into_iter().flatten() {
                if let Some(other) = kind_of(node)
                    && other != kind
                {
                    let message = format!(
                        "wrong node kind: expected {} but got {}: node contents:\n{}",
                        kind.name(),
                        other.name(),
                        contents(node).trim_end()
                    );
                    return Err(self.fail(path, message));
                }
            }
        }
        match kind {
            Some(Kind::Scalar) => Ok(if origin.is_some() { origin } else { dest }),
            Some(Kind::Seq) if schema.is_some_and(|s| s.merges()) => {
                self.walk_associative(dest, origin, schema, path)
            }
            Some(Kind::Seq) => Ok(if origin.is_some() { origin } else { dest }),
            Some(Kind::Map) | None => self.walk_map(dest, origin, schema, path),
        }
    }

    fn visit_map(
        &self,
        dest: Option<NodeRef>,
        origin: Option<NodeRef>,
        path: &[String],
    ) -> Result<Option<NodeRef>, PatchError> {
        if missing_or_null(dest.as_ref()) {
            // Adding: an unknown directive is left in place here, as kyaml does.
            if determine_directive(origin.as_ref()).ok() == Some(Directive::Delete) {
                return Ok(None);
            }
            if origin.is_none() && dest.is_some() {
                // An explicit null in the object that the patch does not mention stays.
                // A plain scalar holding null: kept by `set_field`, unlike a patch's null.
                return Ok(Some(Node::new(Node::Scalar(Value::Null))));
            }
            return Ok(origin);
        }
        if origin.as_ref().is_some_and(is_null) {
            return Ok(None);
        }
        match determine_directive(origin.as_ref()).map_err(|m| self.fail(path, m))? {
            Directive::Delete => Ok(None),
            Directive::Replace => Ok(origin),
            Directive::Merge => Ok(dest),
        }
    }

    fn walk_map(
        &self,
        dest: Option<NodeRef>,
        origin: Option<NodeRef>,
        schema: Option<SchemaNode<'_>>,
        path: &mut Vec<String>,
    ) -> Result<Option<NodeRef>, PatchError> {
        let Some(dest) = self.visit_map(dest, origin.clone(), path)? else {
            return Ok(None);
        };
        if kind_of(&dest) != Some(Kind::Map) {
            return Ok(Some(dest));
        }
        let origin = origin.filter(|o| kind_of(o) == Some(Kind::Map));
        let extended = match (&origin, self.options.literal_extended_directives) {
            (Some(origin), false) => take_extended(origin),
            _ => Extended::default(),
        };
        if let Some(retain) = &extended.retain_keys {
            for name in field_names(&dest) {
                if !retain.contains(&name) {
                    remove_field(&dest, &name);
                }
            }
        }
        for (list, doomed) in &extended.delete_from_primitive_list {
            if let Some(list) = field(&dest, list)
                && kind_of(&list) == Some(Kind::Seq)
            {
                let kept = items(&list)
                    .into_iter()
                    .filter(|item| !doomed.contains(&text(item)))
                    .collect();
                set_items(&list, kept);
            }
        }
        // The object's order of each list that `$setElementOrder` will sort.
        let server_orders: Vec<Vec<Vec<String>>> = extended
            .set_element_order
            .iter()
            .map(|(list, _)| {
                let keys = list_keys(schema, list);
                field(&dest, list)
                    .map(|l| items(&l).iter().map(|e| identity(e, &keys)).collect())
                    .unwrap_or_default()
            })
            .collect();
        let mut names: BTreeSet<String> = field_names(&dest).into_iter().collect();
        if let Some(origin) = &origin {
            names.extend(field_names(origin));
        }
        for name in names {
            let field_schema = schema.and_then(|s| s.field(&name));
            let dest_value = field(&dest, &name);
            let origin_value = origin.as_ref().and_then(|o| field(o, &name));
            path.push(name.clone());
            let merged = self.walk(dest_value, origin_value, field_schema, path)?;
            path.pop();
            set_field(&dest, &name, merged);
        }
        for ((list, order), server_order) in extended.set_element_order.iter().zip(&server_orders) {
            let keys = list_keys(schema, list);
            if let Some(list) = field(&dest, list) {
                reorder(&list, order, &keys, server_order);
            }
        }
        Ok(Some(dest))
    }

    fn walk_associative(
        &self,
        dest: Option<NodeRef>,
        origin: Option<NodeRef>,
        schema: Option<SchemaNode<'_>>,
        path: &[String],
    ) -> Result<Option<NodeRef>, PatchError> {
        let dest = if missing_or_null(dest.as_ref()) {
            origin.clone()
        } else if origin.as_ref().is_some_and(is_null) {
            None
        } else {
            match determine_directive(origin.as_ref()).map_err(|m| self.fail(path, m))? {
                Directive::Delete => None,
                Directive::Replace => origin.clone(),
                Directive::Merge => dest,
            }
        };
        let Some(dest) = dest else {
            return Ok(None);
        };
        let keys: Vec<String> = schema
            .map(|s| s.merge_keys().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        let element_schema = schema.and_then(|s| s.elements());
        // The patch's elements first, then the object's (kustomize prepends).
        let sources: Vec<&NodeRef> = origin.iter().chain(std::iter::once(&dest)).collect();
        let mut values: Vec<Vec<String>> = Vec::new();
        for source in &sources {
            for elem in items(source) {
                let tuple: Vec<String> = keys
                    .iter()
                    .map(|key| field(&elem, key).map(|f| text(&f)).unwrap_or_default())
                    .collect();
                if !tuple.is_empty() && !values.contains(&tuple) {
                    values.push(tuple);
                }
            }
        }
        if !values.is_empty() || !keys.is_empty() {
            self.merge_elements(values, &keys, dest, origin, element_schema, path)
        } else {
            // A list of primitives: each value is its own key.
            let mut values: Vec<Vec<String>> = Vec::new();
            for source in &sources {
                for elem in items(source) {
                    let value = vec![text(&elem)];
                    if !values.contains(&value) {
                        values.push(value);
                    }
                }
            }
            self.merge_elements(values, &[String::new()], dest, origin, element_schema, path)
        }
    }

    /// kyaml's `setAssociativeSequenceElements`: merges the elements of a merge list, matched
    /// on `keys` (`[""]` for primitives, matched by value).
    fn merge_elements(
        &self,
        mut values: Vec<Vec<String>>,
        keys: &[String],
        dest: NodeRef,
        origin: Option<NodeRef>,
        element_schema: Option<SchemaNode<'_>>,
        path: &[String],
    ) -> Result<Option<NodeRef>, PatchError> {
        let fail = |m: String| self.fail(path, m);
        if keys.len() > 1 {
            merge_tuples(&mut values);
        }
        let added = Node::new(Node::Seq(Vec::new()));
        let mut valid_keys = Vec::new();
        for value in &values {
            if value.is_empty() {
                continue;
            }
            let valid_values;
            (valid_keys, valid_values) = validate_keys(&values, value, keys);
            let (lookup_keys, lookup_values) = validate_keys(
                std::slice::from_ref(&valid_values),
                &valid_values,
                &valid_keys,
            );
            let dest_elem = element_list(Some(&dest), &lookup_keys, &lookup_values);
            let origin_elem = element_list(origin.as_ref(), &lookup_keys, &lookup_values);
            let merged = self.walk(dest_elem, origin_elem, element_schema, &mut path.to_vec())?;
            let Some(merged) = merged.filter(|m| !is_null(m) && !is_empty_map(m)) else {
                if !valid_keys.is_empty() {
                    element_setter(&dest, None, &valid_keys, &valid_values).map_err(fail)?;
                }
                continue;
            };
            for (key, value) in valid_keys.iter().zip(&valid_values) {
                if !key.is_empty()
                    && !value.is_empty()
                    && kind_of(&merged) == Some(Kind::Map)
                    && field(&merged, key).is_none()
                {
                    set_field(
                        &merged,
                        key,
                        Some(Node::new(Node::Scalar(Value::from(value.as_str())))),
                    );
                }
            }
            element_setter(&added, Some(&merged), &valid_keys, &valid_values).map_err(fail)?;
        }
        if values.is_empty() {
            return Ok(Some(dest));
        }
        append_list_node(&added, &dest, &valid_keys).map_err(fail)?;
        Ok(Some(added))
    }
}

/// The merge key of list field `list` of the map at `schema` (none for primitives), as the API
/// server's `$setElementOrder` uses it.
fn list_keys<'a>(schema: Option<SchemaNode<'a>>, list: &str) -> Vec<&'a str> {
    schema
        .and_then(|s| s.field(list))
        .and_then(|s| s.merge_key())
        .into_iter()
        .collect()
}

/// The identity of a list element for `$setElementOrder`: its merge-key values, or its own text
/// for a list of primitives.
fn identity(elem: &NodeRef, keys: &[&str]) -> Vec<String> {
    if keys.is_empty() {
        vec![text(elem)]
    } else {
        keys.iter()
            .map(|key| field(elem, key).map(|v| text(&v)).unwrap_or_default())
            .collect()
    }
}

/// Orders `list` as `$setElementOrder` does in Kubernetes: the elements it names follow its
/// order; the others keep their relative order and are interleaved by their position in the
/// object's list before the merge (`server_order`).
fn reorder(list: &NodeRef, order: &[NodeRef], keys: &[&str], server_order: &[Vec<String>]) {
    let wanted: Vec<Vec<String>> = order.iter().map(|o| identity(o, keys)).collect();
    let mut named: Vec<(usize, NodeRef)> = Vec::new();
    let mut others: Vec<NodeRef> = Vec::new();
    for elem in items(list) {
        match wanted.iter().position(|w| *w == identity(&elem, keys)) {
            Some(at) => named.push((at, elem)),
            None => others.push(elem),
        }
    }
    named.sort_by_key(|(at, _)| *at);
    let named: Vec<NodeRef> = named.into_iter().map(|(_, elem)| elem).collect();
    let position = |elem: &NodeRef| {
        let id = identity(elem, keys);
        server_order.iter().position(|s| *s == id)
    };
    let mut result = Vec::with_capacity(named.len() + others.len());
    let (mut i, mut j) = (0, 0);
    while i < others.len() || j < named.len() {
        let take_other = if i >= others.len() {
            false
        } else if j >= named.len() {
            true
        } else {
            matches!(
                (position(&others[i]), position(&named[j])),
                (Some(l), Some(r)) if l < r
            )
        };
        if take_other {
            result.push(others[i].clone());
            i += 1;
        } else {
            result.push(named[j].clone());
            j += 1;
        }
    }
    set_items(list, result);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "smp_tests.rs"]
mod tests;
