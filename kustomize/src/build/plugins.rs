//! Built-in plugin configurations listed under `generators:` and `transformers:`.
//!
//! An entry is inline YAML, a file, or a kustomization directory whose output objects are the
//! configurations. Each configuration is an object with `apiVersion: builtin` and the kind of a
//! kustomize built-in plugin (`LabelTransformer`, `NamespaceTransformer`, `ConfigMapGenerator`,
//! ...); its fields are read leniently, as kustomize reads them. External plugins (any other
//! `apiVersion`) are refused, as `kubectl kustomize` refuses them without alpha plugins.
//!
//! Order, as kustomize: `generators:` run after the kustomization's own generators, and
//! `transformers:` after all of its built-in transformers, each list in its order.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::{
    Accumulator, Builder, SmpOptions, Target, apply_patch, apply_patch_json6902,
    apply_patches_strategic_merge,
};
use crate::error::Error;
use crate::generators::{self, ConfigMapArgs, SecretArgs};
use crate::kustomization::{Patch, ReplacementField, Selector};
use crate::loader;
use crate::replacements;
use crate::resource::Resource;
use crate::transform::{self, FieldSpec, Gvk, TransformerConfig};

/// `metadata` of a plugin configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Meta {
    name: String,
    namespace: String,
}

/// A field spec in a plugin configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    group: String,
    version: String,
    kind: String,
    path: String,
    create: bool,
}

impl Spec {
    fn field_spec(&self) -> FieldSpec {
        FieldSpec {
            gvk: Gvk {
                group: self.group.clone(),
                version: self.version.clone(),
                kind: self.kind.clone(),
            },
            path: self.path.clone(),
            create: self.create,
        }
    }
}

fn field_specs(specs: &[Spec]) -> Vec<FieldSpec> {
    specs.iter().map(Spec::field_spec).collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PrefixSuffixConfig {
    prefix: String,
    suffix: String,
    field_specs: Option<Vec<Spec>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LabelConfig {
    labels: BTreeMap<String, String>,
    field_specs: Vec<Spec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AnnotationsConfig {
    annotations: BTreeMap<String, String>,
    field_specs: Vec<Spec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct NamespaceConfig {
    metadata: Meta,
    field_specs: Vec<Spec>,
    unset_only: bool,
    set_role_binding_subjects: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ImageTagConfig {
    image_tag: transform::Image,
    field_specs: Vec<Spec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ReplicaCountConfig {
    replica: Option<transform::Replica>,
    field_specs: Vec<Spec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PatchConfig {
    path: Option<String>,
    patch: Option<String>,
    target: Option<Selector>,
    options: BTreeMap<String, bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PatchStrategicMergeConfig {
    paths: Vec<String>,
    patches: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PatchJson6902Config {
    target: Option<Selector>,
    path: Option<String>,
    json_op: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ReplacementConfig {
    replacements: Vec<ReplacementField>,
}

/// The plugin configuration objects of `entries`: the inline ones first, then those of the
/// files and directories (kustomize's order, whatever the order of the list).
fn load_configs(
    builder: &mut Builder<'_>,
    target: &Target,
    entries: &[String],
) -> Result<Vec<Resource>, Error> {
    let mut acc = Accumulator::default();
    let mut paths = Vec::new();
    for entry in entries {
        match loader::parse_resources(entry, &target.file) {
            Ok(objects) if !objects.is_empty() => {
                for object in objects {
                    acc.append(Resource::new(object, target.file.display().to_string()))?;
                }
            }
            _ => paths.push(entry),
        }
    }
    for path in paths {
        builder.accumulate_resource(target, path, &mut acc)?;
    }
    Ok(acc.resources)
}

/// The kind of a built-in plugin configuration; other `apiVersion`s are external plugins.
fn builtin_kind(target: &Target, config: &Resource) -> Result<String, Error> {
    if config.api_version() != "builtin" {
        return Err(Error::NotSupported {
            kustomization: target.file.clone(),
            field: format!(
                "external plugin {} {} ({})",
                config.api_version(),
                config.kind(),
                config.name()
            ),
            hint: Some("only `apiVersion: builtin` plugin configurations can be used".to_string()),
        });
    }
    Ok(config.kind().to_string())
}

/// Reads a plugin configuration leniently (unknown fields ignored).
fn read<T: DeserializeOwned>(target: &Target, config: &Resource) -> Result<T, Error> {
    serde_yaml::from_value(config.value.clone()).map_err(|err| Error::Invalid {
        path: target.file.clone(),
        message: format!(
            "invalid {} configuration '{}': {err}",
            config.kind(),
            config.name()
        ),
    })
}

/// The fields of a generator configuration, without `apiVersion`, `kind` and `metadata`.
fn generator_args<T: DeserializeOwned>(target: &Target, config: &Resource) -> Result<T, Error> {
    let mut value = config.value.clone();
    if let Value::Mapping(map) = &mut value {
        for key in ["apiVersion", "kind", "metadata"] {
            map.remove(key);
        }
    }
    serde_yaml::from_value(value).map_err(|err| Error::Invalid {
        path: target.file.clone(),
        message: format!(
            "invalid {} configuration '{}': {err}",
            config.kind(),
            config.name()
        ),
    })
}

/// Runs the `generators:` of a kustomization.
pub(super) fn run_generators(
    builder: &mut Builder<'_>,
    target: &Target,
    acc: &mut Accumulator,
) -> Result<(), Error> {
    if target.kustomization.generators.is_empty() {
        return Ok(());
    }
    let configs = load_configs(builder, target, &target.kustomization.generators)?;
    let files = &target.loader;
    for config in configs {
        let kind = builtin_kind(target, &config)?;
        let meta: Meta = config
            .value
            .get("metadata")
            .cloned()
            .map(serde_yaml::from_value)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default();
        let (resource, behavior) = match kind.as_str() {
            "ConfigMapGenerator" => {
                let mut args: ConfigMapArgs = generator_args(target, &config)?;
                if args.name.is_empty() {
                    args.name = meta.name.clone();
                }
                if args.namespace.is_empty() {
                    args.namespace = meta.namespace.clone();
                }
                let resource = generators::generate_config_map(&args, None, files)
                    .map_err(|e| Error::step(&target.file, "generators", e))?;
                (resource, args.behavior())
            }
            "SecretGenerator" => {
                let mut args: SecretArgs = generator_args(target, &config)?;
                if args.name.is_empty() {
                    args.name = meta.name.clone();
                }
                if args.namespace.is_empty() {
                    args.namespace = meta.namespace.clone();
                }
                let resource = generators::generate_secret(&args, None, files)
                    .map_err(|e| Error::step(&target.file, "generators", e))?;
                (resource, args.behavior())
            }
            other => return Err(unsupported(target, other)),
        };
        builder.absorb_generated(target, acc, resource, behavior, &kind)?;
    }
    Ok(())
}

fn unsupported(target: &Target, kind: &str) -> Error {
    Error::NotSupported {
        kustomization: target.file.clone(),
        field: format!("builtin plugin {kind}"),
        hint: None,
    }
}

/// Runs the `transformers:` of a kustomization over `resources`.
pub(super) fn run_transformers(
    builder: &mut Builder<'_>,
    target: &Target,
    resources: &mut Vec<Resource>,
    smp_options: &SmpOptions,
) -> Result<(), Error> {
    if target.kustomization.transformers.is_empty() {
        return Ok(());
    }
    let configs = load_configs(builder, target, &target.kustomization.transformers)?;
    let file = &target.file;
    let step = |name: &'static str| move |e: transform::Error| Error::step(file, name, e);
    for config in &configs {
        let kind = builtin_kind(target, config)?;
        match kind.as_str() {
            "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
                let c: PrefixSuffixConfig = read(target, config)?;
                let Some(specs) = c.field_specs else {
                    return Err(Error::Invalid {
                        path: file.clone(),
                        message: format!("{kind} '{}': fieldSpecs is required", config.name()),
                    });
                };
                let specs = field_specs(&specs);
                if kind != "SuffixTransformer" && !c.prefix.is_empty() {
                    let tc = TransformerConfig {
                        name_prefix: specs.clone(),
                        ..TransformerConfig::default()
                    };
                    transform::add_name_prefix(resources, &c.prefix, &tc)
                        .map_err(step("PrefixTransformer"))?;
                }
                if kind != "PrefixTransformer" && !c.suffix.is_empty() {
                    let tc = TransformerConfig {
                        name_suffix: specs,
                        ..TransformerConfig::default()
                    };
                    transform::add_name_suffix(resources, &c.suffix, &tc)
                        .map_err(step("SuffixTransformer"))?;
                }
            }
            "LabelTransformer" => {
                let c: LabelConfig = read(target, config)?;
                let tc = TransformerConfig {
                    common_labels: field_specs(&c.field_specs),
                    ..TransformerConfig::default()
                };
                transform::add_labels(resources, &[], &c.labels, &tc)
                    .map_err(step("LabelTransformer"))?;
            }
            "AnnotationsTransformer" => {
                let c: AnnotationsConfig = read(target, config)?;
                let tc = TransformerConfig {
                    common_annotations: field_specs(&c.field_specs),
                    ..TransformerConfig::default()
                };
                transform::add_annotations(resources, &c.annotations, &tc)
                    .map_err(step("AnnotationsTransformer"))?;
            }
            "NamespaceTransformer" => {
                let c: NamespaceConfig = read(target, config)?;
                let role_binding_subjects = match c.set_role_binding_subjects.as_deref() {
                    None | Some("") => transform::RoleBindingSubjects::default(),
                    Some(text) => serde_yaml::from_value(Value::from(text)).map_err(|_| {
                        Error::step(
                            file,
                            "NamespaceTransformer",
                            transform::Error::InvalidRoleBindingSubjects(text.to_string()),
                        )
                    })?,
                };
                let options = transform::NamespaceOptions {
                    unset_only: c.unset_only,
                    role_binding_subjects,
                };
                let tc = TransformerConfig {
                    namespace: field_specs(&c.field_specs),
                    ..TransformerConfig::default()
                };
                transform::set_namespace(resources, &c.metadata.namespace, &options, &tc)
                    .map_err(step("NamespaceTransformer"))?;
            }
            "ImageTagTransformer" => {
                let c: ImageTagConfig = read(target, config)?;
                let tc = TransformerConfig {
                    images: field_specs(&c.field_specs),
                    ..TransformerConfig::default()
                };
                transform::set_images(resources, &[c.image_tag], &tc)
                    .map_err(step("ImageTagTransformer"))?;
            }
            "ReplicaCountTransformer" => {
                let c: ReplicaCountConfig = read(target, config)?;
                let tc = TransformerConfig {
                    replicas: field_specs(&c.field_specs),
                    ..TransformerConfig::default()
                };
                let replicas: Vec<transform::Replica> = c.replica.into_iter().collect();
                transform::set_replicas(resources, &replicas, &tc)
                    .map_err(step("ReplicaCountTransformer"))?;
            }
            "PatchTransformer" => {
                let c: PatchConfig = read(target, config)?;
                let patch = Patch {
                    path: c.path,
                    patch: c.patch,
                    target: c.target,
                    options: c.options,
                };
                apply_patch(target, resources, &patch, smp_options)?;
            }
            "PatchStrategicMergeTransformer" => {
                let c: PatchStrategicMergeConfig = read(target, config)?;
                let mut entries = c.paths;
                if !c.patches.trim().is_empty() {
                    entries.push(c.patches);
                }
                if entries.is_empty() {
                    return Err(Error::Invalid {
                        path: file.clone(),
                        message: format!(
                            "PatchStrategicMergeTransformer '{}': empty file path and empty patch content",
                            config.name()
                        ),
                    });
                }
                apply_patches_strategic_merge(target, resources, &entries, smp_options)?;
            }
            "PatchJson6902Transformer" => {
                let c: PatchJson6902Config = read(target, config)?;
                let patch = Patch {
                    path: c.path,
                    patch: c.json_op,
                    target: c.target,
                    options: BTreeMap::new(),
                };
                apply_patch_json6902(target, resources, &patch)?;
            }
            "ReplacementTransformer" => {
                let c: ReplacementConfig = read(target, config)?;
                let files = &target.loader;
                let loaded = replacements::load(&c.replacements, files)
                    .map_err(|e| Error::step(file, "ReplacementTransformer", e))?;
                replacements::apply(resources, &loaded)
                    .map_err(|e| Error::step(file, "ReplacementTransformer", e))?;
            }
            other => return Err(unsupported(target, other)),
        }
    }
    Ok(())
}
