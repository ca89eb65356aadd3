//! Bringing the CRDs derived by kube and schemars in line with the ones Flux publishes.
//!
//! The derived schema differs from Flux's in ways that a user can observe, so each difference
//! is corrected here, once, for every kind of every controller (call [`finish`] on the output of
//! `CustomResourceExt::crd()`):
//!
//! - optional fields are `nullable: true` in the derived schema. Flux's are not, so the API
//!   server prunes an explicit `null` instead of storing it. Our types never write `null`.
//! - the root schema carries a `title`; Flux's does not.
//! - `status.conditions[]` gets the validation of `metav1.Condition` (lengths, patterns, the
//!   `True`/`False`/`Unknown` enum) that Kubernetes' own types declare and k8s-openapi leaves out.
//! - `status.artifact.digest` (and that of every included artifact) is required, as in Flux
//!   (only where the kind has those fields).
//! - the CRD carries the annotation `kustomize.toolkit.fluxcd.io/substitute: disabled`, so a
//!   Kustomization that applies the CRDs does not run variable substitution over them.

use std::collections::BTreeMap;

use crate::api::meta::{DISABLED_VALUE, KUSTOMIZE_SUBSTITUTE_ANNOTATION};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

/// `metav1.Condition` validation: the longest message.
const CONDITION_MESSAGE_MAX_LENGTH: i64 = crate::conditions::MESSAGE_MAX_CHARS as i64;
/// `metav1.Condition` validation: the longest reason.
const CONDITION_REASON_MAX_LENGTH: i64 = 1024;
/// `metav1.Condition` validation: what a reason looks like.
const CONDITION_REASON_PATTERN: &str = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";
/// `metav1.Condition` validation: the longest type.
const CONDITION_TYPE_MAX_LENGTH: i64 = 316;
/// `metav1.Condition` validation: a type is a CamelCase name, optionally prefixed by a DNS
/// subdomain and a slash.
const CONDITION_TYPE_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";

/// Applies every correction listed in the module docs to a derived CRD.
pub fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    crd.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            KUSTOMIZE_SUBSTITUTE_ANNOTATION.to_owned(),
            DISABLED_VALUE.to_owned(),
        );
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        root.title = None;
        strip_nullable(root);
        if let Some(status) = property_mut(root, "status") {
            if let Some(conditions) = property_mut(status, "conditions")
                .and_then(|c| c.items.as_mut())
                .and_then(single_schema)
            {
                add_condition_validation(conditions);
            }
            if let Some(artifact) = property_mut(status, "artifact") {
                require(artifact, "digest");
            }
            if let Some(included) = property_mut(status, "includedArtifacts")
                .and_then(|c| c.items.as_mut())
                .and_then(single_schema)
            {
                require(included, "digest");
            }
        }
    }
    crd
}

/// The schema of the property `name` of an object schema.
fn property_mut<'a>(
    schema: &'a mut JSONSchemaProps,
    name: &str,
) -> Option<&'a mut JSONSchemaProps> {
    schema.properties.as_mut()?.get_mut(name)
}

/// The one schema of an `items` that is not a tuple.
fn single_schema(items: &mut JSONSchemaPropsOrArray) -> Option<&mut JSONSchemaProps> {
    match items {
        JSONSchemaPropsOrArray::Schema(schema) => Some(schema),
        JSONSchemaPropsOrArray::Schemas(_) => None,
    }
}

/// Adds `name` to the required properties of an object schema (once).
fn require(schema: &mut JSONSchemaProps, name: &str) {
    let required = schema.required.get_or_insert_with(Vec::new);
    if !required.iter().any(|r| r == name) {
        required.push(name.to_owned());
        required.sort();
    }
}

/// Removes `nullable` (and `null` enum members) everywhere in a schema.
fn strip_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    if let Some(values) = schema.enum_.as_mut() {
        values.retain(|JSON(v)| !v.is_null());
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_nullable(child);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(child)) => strip_nullable(child),
        Some(JSONSchemaPropsOrArray::Schemas(children)) => {
            children.iter_mut().for_each(strip_nullable)
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(child)) = schema.additional_properties.as_mut() {
        strip_nullable(child);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(strip_nullable);
    }
    if let Some(child) = schema.not.as_mut() {
        strip_nullable(child);
    }
}

/// Adds the validation Kubernetes declares on `metav1.Condition` to its schema.
fn add_condition_validation(condition: &mut JSONSchemaProps) {
    let Some(properties) = condition.properties.as_mut() else {
        return;
    };
    if let Some(message) = properties.get_mut("message") {
        message.max_length = Some(CONDITION_MESSAGE_MAX_LENGTH);
    }
    if let Some(generation) = properties.get_mut("observedGeneration") {
        generation.minimum = Some(0.0);
    }
    if let Some(reason) = properties.get_mut("reason") {
        reason.max_length = Some(CONDITION_REASON_MAX_LENGTH);
        reason.min_length = Some(1);
        reason.pattern = Some(CONDITION_REASON_PATTERN.to_owned());
    }
    if let Some(status) = properties.get_mut("status") {
        status.enum_ = Some(
            ["True", "False", "Unknown"]
                .into_iter()
                .map(|s| JSON(s.into()))
                .collect(),
        );
    }
    if let Some(type_) = properties.get_mut("type") {
        type_.max_length = Some(CONDITION_TYPE_MAX_LENGTH);
        type_.pattern = Some(CONDITION_TYPE_PATTERN.to_owned());
    }
}
