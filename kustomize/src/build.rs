//! The build: from a kustomization directory to the list of objects `kubectl kustomize` prints.
//!
//! # Order of operations (kustomize v5)
//!
//! For each kustomization, recursively:
//! 1. `resources` (and the legacy `bases`), in order: a file adds its objects, a directory is
//!    built as a kustomization of its own (all of these steps) and its objects are added;
//! 2. the field specs of `configurations` and `crds` are merged into the ones in use;
//! 3. `configMapGenerator`, then `secretGenerator`, then the built-in generator plugins of
//!    `generators` (creating, merging into or replacing objects);
//! 4. `components`, in order: each is applied to the objects accumulated so far (its resources
//!    and generators added to them, its transformers run over all of them);
//! 5. the transformers, in kustomize's fixed order: `patchesStrategicMerge`, `patches`,
//!    `namespace`, `namePrefix`, `nameSuffix`, `labels` (each entry) and `commonLabels`,
//!    `commonAnnotations`, `patchesJson6902`, `replicas`, `images`, `replacements`, then the
//!    built-in transformer plugins of `transformers` (see `plugins`);
//! 6. its `vars` are tied to the objects they read.
//!
//! Then, once, for the top-level kustomization: content-hash suffixes on generated names, name
//! references rewritten to the final names, `vars` expanded, objects marked
//! `config.kubernetes.io/local-config` dropped, the output order (`sortOptions`, kustomize's
//! legacy kind order by default), and `buildMetadata`.
//!
//! # Errors
//!
//! Every error names the kustomization (or file) it concerns: see [`Error`].
//!
//! # Caveats
//!
//! Refused with [`Error::NotSupported`]: Helm charts (`helmCharts`, `helmGlobals`,
//! `helmChartInflationGenerator`), external plugins (plugin configurations whose `apiVersion` is
//! not `builtin`) and the built-in plugins with no kustomization field (`HashTransformer`,
//! `SortOrderTransformer`, `ValueAddTransformer`, `IAMPolicyGenerator`), `validators`,
//! `inventory` and `openapi`. Remote references are refused with [`Error::RemoteNotSupported`].

mod emit;
mod plugins;
mod vars;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::error::Error;
use crate::generators;
use crate::kustomization::Patch;
use crate::kustomization::{Kustomization, SortOptions, find_kustomization_file};
use crate::loader::{self, LoadRestrictions, Loader};
use crate::patch::{self, Outcome, PatchError, smp::SmpOptions};
use crate::replacements;
use crate::resource::{ResId, Resource};
use crate::transform::{self, TransformerConfig};

/// The annotation kustomize records an object's origin in (`buildMetadata: [originAnnotations]`).
pub const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
/// The annotation kustomize lists the transformers that ran over an object in
/// (`buildMetadata: [transformerAnnotations]`).
pub const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";
/// The label `buildMetadata: [managedByLabel]` adds.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`]: what `kubectl kustomize` (kustomize built into kubectl)
/// writes.
pub const MANAGED_BY_VALUE: &str = "kustomize-(devel)";
/// Objects annotated with this (to anything but `"false"`) are left out of the output.
pub const LOCAL_CONFIG_ANNOTATION: &str = "config.kubernetes.io/local-config";

/// How to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Whether files outside a kustomization's directory may be read
    /// (`--load-restrictor LoadRestrictionsNone`).
    pub load_restrictions: LoadRestrictions,
    /// What to do with a directory that has no kustomization file: `false` (like
    /// `kubectl kustomize`) is an error; `true` (like Flux's kustomize-controller) builds a
    /// kustomization listing the YAML files found below it ([`loader::generate_kustomization`]).
    pub generate_missing_kustomization: bool,
    /// Give the strategic-merge directives `$setElementOrder`, `$deleteFromPrimitiveList` and
    /// `$retainKeys` their Kubernetes meaning. `false` (the default) copies them into the output
    /// as fields, as `kubectl kustomize` v5 does.
    pub apply_extended_patch_directives: bool,
    /// Refuse a `patches` entry whose `target` picks no object, naming the kustomization and the
    /// target. `false` (the default) ignores such a patch, as `kubectl kustomize` v5 does; `true`
    /// catches a target that no longer matches after a rename, before it silently stops
    /// applying (`ferroflux-kustomize build --fail-on-unmatched-patch`).
    pub fail_on_unmatched_patch_target: bool,
    /// Every file and directory the build reads (bases and components included) must be inside
    /// this directory once symlinks are resolved, whatever the load restrictor: Flux's
    /// kustomize-controller confines a build to the source artifact this way, so that a
    /// repository may use any of its own files but none of the host's. `None` (the default):
    /// no such bound, as `kubectl kustomize`.
    pub confine_to: Option<PathBuf>,
    /// The text of the built directory's own kustomization file, used instead of the file on
    /// disk (or of the one `generate_missing_kustomization` would make); relative references
    /// in it are resolved against that directory as usual. Flux's kustomize-controller adds a
    /// Kustomization's `targetNamespace`, `patches`, `images`... to that file: with this, it can
    /// do so without writing into a source tree that other builds share.
    pub top_kustomization: Option<String>,
}

/// Builds the kustomization in `dir` into the objects `kubectl kustomize dir` prints, in order.
///
/// # Errors
///
/// A missing or invalid kustomization, a file that cannot be read or parsed, a remote
/// reference, a file outside the root under the load restrictor, a cycle, a duplicate object,
/// or a failing step (patch, generator, replacement, transformer): see [`Error`].
pub fn build(dir: &Path, options: &BuildOptions) -> Result<Vec<Resource>, Error> {
    if !dir.is_dir() {
        return Err(Error::Invalid {
            path: dir.to_path_buf(),
            message: "must build at a directory: not a valid directory".to_string(),
        });
    }
    let root = dir.canonicalize().map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let confinement = match &options.confine_to {
        Some(dir) => Some(dir.canonicalize().map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?),
        None => None,
    };
    if let Some(confinement) = &confinement
        && !root.starts_with(confinement)
    {
        return Err(Error::Invalid {
            path: dir.to_path_buf(),
            message: format!("must be inside {}", confinement.display()),
        });
    }
    let mut builder = Builder {
        options,
        confinement,
        chain: vec![root.clone()],
        metadata: BuildMetadata::default(),
    };
    let target = builder.load_target(&root, String::new(), true)?;
    builder.metadata = BuildMetadata::parse(&target.kustomization.build_metadata);
    let mut acc = Accumulator::default();
    builder.accumulate(&target, &mut acc)?;
    builder.finish(&target, acc)
}

/// Prints objects as `kubectl kustomize` does: a YAML stream, documents separated by `---`, the
/// keys of every mapping sorted, strings quoted so that YAML 1.1 readers (`kubectl apply`) read
/// them back as strings (see the `emit` module for the rules).
///
/// # Errors
///
/// [`Error::Serialize`] when a value cannot be written as YAML (it always can for values read
/// from YAML).
pub fn to_yaml(resources: &[Resource]) -> Result<String, Error> {
    let mut out = String::new();
    for (index, resource) in resources.iter().enumerate() {
        if index > 0 {
            out.push_str("---\n");
        }
        out.push_str(&emit::document(&resource.value).map_err(Error::Serialize)?);
    }
    Ok(out)
}

/// `buildMetadata` of the top-level kustomization (it applies to the whole build).
#[derive(Debug, Clone, Copy, Default)]
struct BuildMetadata {
    /// Any option at all (kustomize then tracks origins, even for options it does not know).
    any: bool,
    origin: bool,
    transformers: bool,
    managed_by: bool,
}

impl BuildMetadata {
    /// Reads the options; unknown ones are ignored, as kustomize ignores them.
    fn parse(options: &[String]) -> Self {
        let has = |name: &str| options.iter().any(|option| option == name);
        Self {
            any: !options.is_empty(),
            origin: has("originAnnotations"),
            transformers: has("transformerAnnotations"),
            managed_by: has("managedByLabel"),
        }
    }

    /// Whether origins are tracked at all (kustomize tracks them whenever `buildMetadata` is set).
    fn tracks_origin(&self) -> bool {
        self.any
    }
}

/// One kustomization being built.
struct Target {
    /// Its directory (absolute, symlinks resolved).
    dir: PathBuf,
    /// Its kustomization file (for a generated kustomization, where it would be).
    file: PathBuf,
    /// The file's name (`kustomization.yaml`, ...).
    file_name: String,
    kustomization: Kustomization,
    loader: Loader,
    /// Its directory relative to the top-level kustomization, as the chain of references
    /// leading to it spells it (`""` for the top level): the base of origin annotations.
    origin_path: String,
}

impl Target {
    /// The origin `configuredIn` value of this kustomization's generators and transformers.
    fn configured_in(&self) -> String {
        join_origin(&self.origin_path, &self.file_name)
    }
}

/// Joins origin paths like Go's `filepath.Join` (cleaned, relative).
fn join_origin(base: &str, reference: &str) -> String {
    let joined = if base.is_empty() {
        PathBuf::from(reference)
    } else {
        Path::new(base).join(reference)
    };
    loader::clean(&joined).to_string_lossy().into_owned()
}

/// Identity of an object for duplicate detection: `""` and `default` are the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct IdKey {
    group: String,
    version: String,
    kind: String,
    namespace: String,
    name: String,
}

impl IdKey {
    fn of(id: &ResId) -> Self {
        Self {
            group: id.group.clone(),
            version: id.version.clone(),
            kind: id.kind.clone(),
            namespace: id
                .namespace
                .clone()
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| "default".to_string()),
            name: id.name.clone(),
        }
    }
}

/// The objects of a kustomization being built, and the field specs its transformers use.
#[derive(Debug)]
struct Accumulator {
    resources: Vec<Resource>,
    /// The built-in field specs, with the `configurations` and `crds` of this kustomization, of
    /// its components and of the kustomizations below it.
    config: TransformerConfig,
    /// The legacy `vars` of this kustomization and the ones below it.
    vars: vars::VarSet,
    /// Current id -> position; rebuilt when stale (after steps that rename or reshape objects).
    index: HashMap<IdKey, usize>,
    index_stale: bool,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self {
            resources: Vec::new(),
            config: TransformerConfig::builtin().clone(),
            vars: vars::VarSet::default(),
            index: HashMap::new(),
            index_stale: false,
        }
    }
}

impl Accumulator {
    fn refresh_index(&mut self) {
        if !self.index_stale {
            return;
        }
        self.index.clear();
        for (position, resource) in self.resources.iter().enumerate() {
            self.index.insert(IdKey::of(&resource.id()), position);
        }
        self.index_stale = false;
    }

    /// Marks the index stale (call after anything that may change ids or positions).
    fn touched(&mut self) {
        self.index_stale = true;
    }

    /// Appends an object, refusing a second object with the same id.
    fn append(&mut self, resource: Resource) -> Result<(), Error> {
        self.refresh_index();
        let id = resource.id();
        let key = IdKey::of(&id);
        if let Some(&position) = self.index.get(&key) {
            return Err(Error::DuplicateId {
                id: kustomize_id(&id),
                first: self.resources[position].origin.clone(),
                second: resource.origin.clone(),
            });
        }
        self.index.insert(key, self.resources.len());
        self.resources.push(resource);
        Ok(())
    }
}

/// An id as kustomize prints it: `ConfigMap.v1.[noGrp]/name.[noNs]`.
fn kustomize_id(id: &ResId) -> String {
    let group = if id.group.is_empty() {
        "[noGrp]"
    } else {
        &id.group
    };
    let namespace = id.namespace.as_deref().unwrap_or("[noNs]");
    format!(
        "{}.{}.{}/{}.{}",
        id.kind, id.version, group, id.name, namespace
    )
}

struct Builder<'a> {
    options: &'a BuildOptions,
    /// [`BuildOptions::confine_to`], absolute with symlinks resolved.
    confinement: Option<PathBuf>,
    /// Directories of the kustomizations being built, outermost first.
    chain: Vec<PathBuf>,
    metadata: BuildMetadata,
}

impl Builder<'_> {
    /// `path`, and the chain of kustomizations that led to it when it is not the top level's.
    fn describe_origin(&self, path: &Path) -> String {
        let top = &self.chain[0];
        let relative = |p: &Path| {
            p.strip_prefix(top)
                .map(|r| r.display().to_string())
                .unwrap_or_else(|_| p.display().to_string())
        };
        if self.chain.len() <= 1 {
            return path.display().to_string();
        }
        let via: Vec<String> = self.chain[1..].iter().map(|dir| relative(dir)).collect();
        format!("{} (via {})", path.display(), via.join(" -> "))
    }

    /// Reads the kustomization of `dir` (absolute, symlinks resolved). Only the top level may
    /// have one generated, as Flux generates one only for the path it builds.
    fn load_target(
        &self,
        dir: &Path,
        origin_path: String,
        top_level: bool,
    ) -> Result<Target, Error> {
        let found = find_kustomization_file(dir)?;
        if top_level && let Some(text) = &self.options.top_kustomization {
            let file = found
                .unwrap_or_else(|| dir.join(crate::kustomization::KUSTOMIZATION_FILE_NAMES[0]));
            let kustomization = Kustomization::parse(text, &file)?;
            return self.target(dir, file, kustomization, origin_path);
        }
        let (file, kustomization) = match found {
            Some(file) => {
                let text = loader::read_text(&file)?;
                let kustomization = Kustomization::parse(&text, &file)?;
                (file, kustomization)
            }
            None if top_level && self.options.generate_missing_kustomization => {
                let kustomization = loader::generate_kustomization(dir)?;
                let file = dir.join(crate::kustomization::KUSTOMIZATION_FILE_NAMES[0]);
                if kustomization.resources.is_empty() {
                    return Err(Error::Invalid {
                        path: dir.to_path_buf(),
                        message: "no Kubernetes manifests found to build".to_string(),
                    });
                }
                (file, kustomization)
            }
            None => {
                return Err(Error::MissingKustomization {
                    dir: dir.to_path_buf(),
                });
            }
        };
        self.target(dir, file, kustomization, origin_path)
    }

    /// The build target of the kustomization read from `file` in `dir`.
    fn target(
        &self,
        dir: &Path,
        file: PathBuf,
        kustomization: Kustomization,
        origin_path: String,
    ) -> Result<Target, Error> {
        let file_name = file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let loader = Loader::new(dir, &file, self.options.load_restrictions)?
            .confined_to(self.confinement.clone());
        let target = Target {
            dir: dir.to_path_buf(),
            file,
            file_name,
            kustomization,
            loader,
            origin_path,
        };
        check_supported(&target)?;
        Ok(target)
    }

    /// Refuses a kustomization directory at or above one already being built.
    fn check_cycle(&self, candidate: &Path) -> Result<(), Error> {
        if self
            .chain
            .iter()
            .any(|visited| visited.starts_with(candidate))
        {
            let mut chain = self.chain.clone();
            chain.push(candidate.to_path_buf());
            return Err(Error::Cycle { chain });
        }
        Ok(())
    }

    /// Resolves a directory reference of `target` (a base or a component) and loads it.
    fn load_child(&self, target: &Target, reference: &str) -> Result<Target, Error> {
        if Path::new(reference).is_absolute() {
            return Err(Error::Invalid {
                path: target.file.clone(),
                message: format!("'{reference}': a kustomization directory cannot be absolute"),
            });
        }
        let dir = target.loader.resolve_existing(reference)?;
        if !dir.is_dir() {
            return Err(Error::Invalid {
                path: target.file.clone(),
                message: format!("'{reference}' must be a directory"),
            });
        }
        self.check_cycle(&dir)?;
        self.load_target(&dir, join_origin(&target.origin_path, reference), false)
    }

    /// Runs one kustomization (steps 1 to 4 of the module docs) into `acc`.
    fn accumulate(&mut self, target: &Target, acc: &mut Accumulator) -> Result<(), Error> {
        for reference in target.kustomization.all_resources() {
            self.accumulate_resource(target, reference, acc)?;
        }
        self.merge_configurations(target, acc)?;
        self.run_generators(target, acc)?;
        for reference in &target.kustomization.components {
            let component = self.load_child(target, reference)?;
            if !component.kustomization.is_component() {
                return Err(Error::Invalid {
                    path: component.file.clone(),
                    message: format!(
                        "expected kind 'Component' for '{reference}' (listed in components of {})",
                        target.file.display()
                    ),
                });
            }
            self.chain.push(component.dir.clone());
            let result = self.accumulate(&component, acc);
            self.chain.pop();
            result?;
        }
        self.run_transformers(target, acc)?;
        if !target.kustomization.vars.is_empty() {
            acc.vars
                .declare(&target.kustomization.vars, &mut acc.resources, &target.file)?;
        }
        Ok(())
    }

    fn accumulate_resource(
        &mut self,
        target: &Target,
        reference: &str,
        acc: &mut Accumulator,
    ) -> Result<(), Error> {
        if loader::is_remote(reference) {
            return Err(Error::RemoteNotSupported {
                kustomization: target.file.clone(),
                reference: reference.to_string(),
            });
        }
        if target.loader.is_dir(reference) {
            let child = self.load_child(target, reference)?;
            if child.kustomization.is_component() {
                return Err(Error::Invalid {
                    path: child.file.clone(),
                    message: format!(
                        "'{reference}' is a Component: list it under components, not resources (in {})",
                        target.file.display()
                    ),
                });
            }
            let mut child_acc = Accumulator::default();
            self.chain.push(child.dir.clone());
            let result = self.accumulate(&child, &mut child_acc);
            self.chain.pop();
            result?;
            acc.config
                .merge(&child_acc.config)
                .map_err(|e| Error::step(&child.file, "merging transformer configurations", e))?;
            for resource in child_acc.resources {
                acc.append(resource)?;
            }
            acc.vars.absorb(child_acc.vars, &child.file)?;
            return Ok(());
        }
        let path = target.loader.resolve_file(reference)?;
        let text = loader::read_text(&path)?;
        let objects = loader::parse_resources(&text, &path)?;
        let origin_path = join_origin(&target.origin_path, reference);
        for mut value in objects {
            if self.metadata.tracks_origin() {
                set_annotation(
                    &mut value,
                    ORIGIN_ANNOTATION,
                    &format!("path: {origin_path}\n"),
                );
            }
            acc.append(Resource::new(value, self.describe_origin(&path)))?;
        }
        Ok(())
    }

    /// `configurations` (transformer configuration files) and `crds` (OpenAPI definitions whose
    /// extensions declare name references, labels, annotations) merged into the field specs.
    fn merge_configurations(&self, target: &Target, acc: &mut Accumulator) -> Result<(), Error> {
        let k = &target.kustomization;
        for reference in &k.configurations {
            let path = target.loader.resolve_file(reference)?;
            let text = loader::read_text(&path)?;
            let config = TransformerConfig::from_yaml(&text)
                .map_err(|e| Error::step(&path, "configurations", e))?;
            acc.config
                .merge(&config)
                .map_err(|e| Error::step(&target.file, "configurations", e))?;
        }
        for reference in &k.crds {
            let path = target.loader.resolve_file(reference)?;
            let text = loader::read_text(&path)?;
            let definitions: Value =
                serde_yaml::from_str(&text).map_err(|e| loader::malformed(&path, &e))?;
            let config = TransformerConfig::from_crd_definitions(&definitions)
                .map_err(|e| Error::step(&path, "crds", e))?;
            acc.config
                .merge(&config)
                .map_err(|e| Error::step(&target.file, "crds", e))?;
        }
        Ok(())
    }

    fn run_generators(&mut self, target: &Target, acc: &mut Accumulator) -> Result<(), Error> {
        self.run_builtin_generators(target, acc)?;
        plugins::run_generators(self, target, acc)
    }

    fn run_builtin_generators(
        &mut self,
        target: &Target,
        acc: &mut Accumulator,
    ) -> Result<(), Error> {
        let k = &target.kustomization;
        if k.config_map_generator.is_empty() && k.secret_generator.is_empty() {
            return Ok(());
        }
        let files = &target.loader;
        let global = k.generator_options.as_ref();
        let mut generated = Vec::new();
        for args in &k.config_map_generator {
            let resource = generators::generate_config_map(args, global, files)
                .map_err(|e| Error::step(&target.file, "configMapGenerator", e))?;
            generated.push((resource, args.behavior(), "ConfigMapGenerator"));
        }
        for args in &k.secret_generator {
            let resource = generators::generate_secret(args, global, files)
                .map_err(|e| Error::step(&target.file, "secretGenerator", e))?;
            generated.push((resource, args.behavior(), "SecretGenerator"));
        }
        for (resource, behavior, kind) in generated {
            self.absorb_generated(target, acc, resource, behavior, kind)?;
        }
        Ok(())
    }

    /// Adds a generated object to the build (creating, merging or replacing), with its origin.
    fn absorb_generated(
        &self,
        target: &Target,
        acc: &mut Accumulator,
        mut resource: Resource,
        behavior: generators::Behavior,
        kind: &str,
    ) -> Result<(), Error> {
        if self.metadata.tracks_origin() && behavior != generators::Behavior::Merge {
            let origin = format!(
                "configuredIn: {}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n",
                target.configured_in()
            );
            set_annotation(&mut resource.value, ORIGIN_ANNOTATION, &origin);
        }
        resource.origin = format!("{} ({kind})", target.file.display());
        generators::add_generated(&mut acc.resources, resource, behavior)
            .map_err(|e| Error::step(&target.file, "generators", e))?;
        acc.touched();
        Ok(())
    }

    /// Step 4: the transformers, in kustomize's order.
    fn run_transformers(&mut self, target: &Target, acc: &mut Accumulator) -> Result<(), Error> {
        let k = &target.kustomization;
        let file = &target.file;
        let config = &acc.config;
        let resources = &mut acc.resources;
        let mut applied: Vec<&'static str> = Vec::new();
        let step = |name: &'static str| move |e: transform::Error| Error::step(file, name, e);
        let smp_options = SmpOptions {
            literal_extended_directives: !self.options.apply_extended_patch_directives,
            ..SmpOptions::default()
        };
        if !k.patches_strategic_merge.is_empty() {
            apply_patches_strategic_merge(
                target,
                resources,
                &k.patches_strategic_merge,
                &smp_options,
            )?;
            applied.push("PatchStrategicMergeTransformer");
        }
        for patch in &k.patches {
            if self.options.fail_on_unmatched_patch_target {
                check_patch_target_matches(target, resources, patch)?;
            }
            apply_patch(target, resources, patch, &smp_options)?;
            applied.push("PatchTransformer");
        }
        if let Some(namespace) = k.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            let options = transform::NamespaceOptions::default();
            transform::set_namespace(resources, namespace, &options, config)
                .map_err(step("namespace"))?;
            applied.push("NamespaceTransformer");
        }
        if let Some(prefix) = k.name_prefix.as_deref().filter(|p| !p.is_empty()) {
            transform::add_name_prefix(resources, prefix, config).map_err(step("namePrefix"))?;
            applied.push("PrefixTransformer");
        }
        if let Some(suffix) = k.name_suffix.as_deref().filter(|s| !s.is_empty()) {
            transform::add_name_suffix(resources, suffix, config).map_err(step("nameSuffix"))?;
            applied.push("SuffixTransformer");
        }
        if !k.labels.is_empty() || !k.common_labels.is_empty() {
            transform::add_labels(resources, &k.labels, &k.common_labels, config)
                .map_err(step("labels"))?;
            // One per `labels` entry, and one for `commonLabels`.
            applied.extend(std::iter::repeat_n("LabelTransformer", k.labels.len() + 1));
        }
        if !k.common_annotations.is_empty() {
            transform::add_annotations(resources, &k.common_annotations, config)
                .map_err(step("commonAnnotations"))?;
            applied.push("AnnotationsTransformer");
        }
        for patch in &k.patches_json6902 {
            apply_patch_json6902(target, resources, patch)?;
            applied.push("PatchJson6902Transformer");
        }
        if !k.replicas.is_empty() {
            transform::set_replicas(resources, &k.replicas, config).map_err(step("replicas"))?;
            applied.extend(k.replicas.iter().map(|_| "ReplicaCountTransformer"));
        }
        let images: Vec<transform::Image> = k.all_images().cloned().collect();
        if !images.is_empty() {
            transform::set_images(resources, &images, config).map_err(step("images"))?;
            applied.extend(images.iter().map(|_| "ImageTagTransformer"));
        }
        if !k.replacements.is_empty() {
            let files = &target.loader;
            let loaded = replacements::load(&k.replacements, files)
                .map_err(|e| Error::step(file, "replacements", e))?;
            replacements::apply(resources, &loaded)
                .map_err(|e| Error::step(file, "replacements", e))?;
            applied.push("ReplacementTransformer");
        }
        plugins::run_transformers(self, target, resources, &smp_options)?;
        if self.metadata.transformers {
            let configured_in = target.configured_in();
            for kind in applied {
                for resource in resources.iter_mut() {
                    add_transformation(&mut resource.value, &configured_in, kind);
                }
            }
        }
        acc.touched();
        Ok(())
    }

    /// The steps done once, for the top-level kustomization.
    fn finish(&mut self, target: &Target, acc: Accumulator) -> Result<Vec<Resource>, Error> {
        let Accumulator {
            mut resources,
            config,
            vars,
            ..
        } = acc;
        for resource in &mut resources {
            if generators::needs_hash_suffix(&resource.value) {
                transform::record_previous_id(resource);
            }
        }
        generators::apply_hash_suffixes(&mut resources)
            .map_err(|e| Error::step(&target.file, "name hash suffixes", e))?;
        transform::fix_name_references(&mut resources, &config)
            .map_err(|e| Error::step(&target.file, "name references", e))?;
        if !vars.is_empty() {
            vars.resolve(&mut resources, &config.var_reference, &target.file)?;
        }
        resources.retain(|resource| !is_local_config(&resource.value));
        transform::strip_build_annotations(&mut resources);
        sort_resources(
            &mut resources,
            target.kustomization.sort_options.as_ref(),
            &target.file,
        )?;
        for resource in &mut resources {
            if self.metadata.managed_by {
                let metadata = crate::resource::ensure_mapping(&mut resource.value, "metadata");
                let labels = crate::resource::ensure_child_mapping(metadata, "labels");
                labels.insert(Value::from(MANAGED_BY_LABEL), Value::from(MANAGED_BY_VALUE));
            }
            generators::remove_build_annotations(&mut resource.value);
            if !self.metadata.origin {
                remove_annotation(&mut resource.value, ORIGIN_ANNOTATION);
            }
            if !self.metadata.transformers {
                remove_annotation(&mut resource.value, TRANSFORMATIONS_ANNOTATION);
            }
        }
        Ok(resources)
    }
}

/// `patchesStrategicMerge`: each entry (a file, or the patch itself) applied to the object its
/// documents name.
fn apply_patches_strategic_merge(
    target: &Target,
    resources: &mut Vec<Resource>,
    entries: &[String],
    options: &SmpOptions,
) -> Result<(), Error> {
    let mut documents = Vec::new();
    for entry in entries {
        documents.extend(load_strategic_merge_entry(target, entry)?);
    }
    for (document, origin) in &documents {
        apply_strategic_merge_patch(resources, document, None, options)
            .map_err(|e| e.in_file(origin))?;
    }
    Ok(())
}

/// Fails when `patch` has a target that picks none of `resources`.
fn check_patch_target_matches(
    target: &Target,
    resources: &[Resource],
    patch: &Patch,
) -> Result<(), Error> {
    let Some(raw) = patch.target.as_ref() else {
        return Ok(());
    };
    let selector =
        patch::Selector::new(raw).map_err(|e| Error::step(&target.file, "patches", e))?;
    if resources.iter().any(|r| selector.matches(r)) {
        return Ok(());
    }
    let what = patch
        .path
        .as_deref()
        .map_or_else(|| "an inline patch".to_string(), |p| format!("patch {p}"));
    Err(Error::Invalid {
        path: target.file.clone(),
        message: format!(
            "the target of {what} ({}) matches no resource",
            serde_yaml::to_string(raw)
                .unwrap_or_default()
                .trim()
                .replace('\n', ", ")
        ),
    })
}

/// One entry of `patches`: a strategic merge patch (to the objects its target picks, or to the
/// object it names) or a JSON 6902 patch (to the objects its target picks).
fn apply_patch(
    target: &Target,
    resources: &mut Vec<Resource>,
    patch: &Patch,
    smp_options: &SmpOptions,
) -> Result<(), Error> {
    let (loaded, origin) = load_patch(target, patch)?;
    let selector = patch
        .target
        .as_ref()
        .map(patch::Selector::new)
        .transpose()
        .map_err(|e| Error::step(&target.file, "patches", e))?;
    let options = SmpOptions {
        allow_name_change: patch.options.get("allowNameChange") == Some(&true),
        allow_kind_change: patch.options.get("allowKindChange") == Some(&true),
        ..*smp_options
    };
    match loaded {
        LoadedPatch::Strategic(documents) => {
            for document in &documents {
                apply_strategic_merge_patch(resources, document, selector.as_ref(), &options)
                    .map_err(|e| e.in_file(&origin))?;
            }
        }
        LoadedPatch::Json(operations) => {
            let Some(selector) = &selector else {
                return Err(Error::Invalid {
                    path: origin,
                    message: "a JSON 6902 patch must have a target".to_string(),
                });
            };
            apply_json_patch(resources, &operations, selector)
                .map_err(|e| Error::step(&origin, "patches", e))?;
        }
    }
    Ok(())
}

/// One entry of `patchesJson6902`: operations (a file, or inline) applied to the objects its
/// target picks; the target must name the objects.
fn apply_patch_json6902(
    target: &Target,
    resources: &mut [Resource],
    patch: &Patch,
) -> Result<(), Error> {
    let Some(raw_target) = patch
        .target
        .as_ref()
        .filter(|t| t.name.as_deref().is_some_and(|n| !n.is_empty()))
    else {
        return Err(Error::Invalid {
            path: target.file.clone(),
            message: "patchesJson6902: must specify the target name".to_string(),
        });
    };
    let selector = patch::Selector::new(raw_target)
        .map_err(|e| Error::step(&target.file, "patchesJson6902", e))?;
    let (text, origin) = patch_text(target, patch)?;
    let operations = json6902_operations(&text, &origin)?;
    apply_json_patch(resources, &operations, &selector)
        .map_err(|e| Error::step(&origin, "patchesJson6902", e))
}

/// The operations of a JSON 6902 patch (JSON, or YAML with scalars typed as kustomize types
/// them).
fn json6902_operations(text: &str, origin: &Path) -> Result<Vec<patch::Operation>, Error> {
    let documents = loader::parse_documents(text, origin)?;
    let [document] = documents.as_slice() else {
        return Err(Error::Invalid {
            path: origin.to_path_buf(),
            message: "a JSON 6902 patch must be one YAML or JSON document".to_string(),
        });
    };
    patch::json6902::from_value(document).map_err(|e| Error::step(origin, "patchesJson6902", e))
}

/// A patch of `patches`, parsed.
enum LoadedPatch {
    /// Strategic merge patch documents (each names its target, or a `target:` picks them).
    Strategic(Vec<Value>),
    /// JSON 6902 operations.
    Json(Vec<patch::Operation>),
}

/// The text of a patch (`patch:` trimmed, or the file at `path:`) and the file to name in errors.
fn patch_text(target: &Target, patch: &Patch) -> Result<(String, PathBuf), Error> {
    let inline = patch.patch.as_deref().map(str::trim).unwrap_or_default();
    let path = patch.path.as_deref().unwrap_or_default();
    match (inline.is_empty(), path.is_empty()) {
        (true, true) => Err(Error::Invalid {
            path: target.file.clone(),
            message: "a patch must specify one of patch and path".to_string(),
        }),
        (false, false) => Err(Error::Invalid {
            path: target.file.clone(),
            message: format!("a patch cannot set both patch and path (path: {path})"),
        }),
        (false, true) => Ok((inline.to_string(), target.file.clone())),
        (true, false) => {
            let resolved = target.loader.resolve_file(path)?;
            Ok((loader::read_text(&resolved)?, resolved))
        }
    }
}

/// Loads one entry of `patches`: strategic merge documents or JSON 6902 operations (exactly one
/// of the two must parse, as kustomize requires).
fn load_patch(target: &Target, patch: &Patch) -> Result<(LoadedPatch, PathBuf), Error> {
    let (text, origin) = patch_text(target, patch)?;
    let strategic = loader::parse_resources(&text, &origin);
    let json = match loader::parse_documents(&text, &origin) {
        Ok(documents) => match documents.as_slice() {
            [one] => Some(patch::json6902::from_value(one)),
            _ => None,
        },
        Err(_) => None,
    };
    match (strategic, json) {
        (Ok(documents), Some(Err(_)) | None) if !documents.is_empty() => {
            Ok((LoadedPatch::Strategic(documents), origin))
        }
        (Err(_) | Ok(_), Some(Ok(operations))) => Ok((LoadedPatch::Json(operations), origin)),
        (Ok(_), _) => Err(Error::Invalid {
            path: origin,
            message: "the patch is empty".to_string(),
        }),
        (Err(err), _) => Err(Error::Invalid {
            path: origin,
            message: format!(
                "unable to parse the patch as a strategic merge patch or a JSON 6902 patch ({err})"
            ),
        }),
    }
}

/// The documents of one `patchesStrategicMerge` entry: a file path, or the patch itself.
fn load_strategic_merge_entry(
    target: &Target,
    entry: &str,
) -> Result<Vec<(Value, PathBuf)>, Error> {
    let looks_inline = entry.contains('\n')
        || loader::parse_resources(entry, &target.file).is_ok_and(|docs| !docs.is_empty());
    let (text, origin) = if looks_inline {
        (entry.to_string(), target.file.clone())
    } else {
        let resolved = target.loader.resolve_file(entry)?;
        (loader::read_text(&resolved)?, resolved)
    };
    let documents = loader::parse_resources(&text, &origin)?;
    if documents.is_empty() {
        return Err(Error::Invalid {
            path: origin,
            message: "the strategic merge patch is empty".to_string(),
        });
    }
    Ok(documents
        .into_iter()
        .map(|doc| (doc, origin.clone()))
        .collect())
}

/// Why a strategic merge patch could not be applied.
enum SmpFailure {
    /// No object has the patch's id.
    NoTarget(String),
    /// Several objects have the patch's id.
    AmbiguousTarget(String),
    /// The merge failed.
    Patch(PatchError),
}

impl SmpFailure {
    fn in_file(self, file: &Path) -> Error {
        match self {
            SmpFailure::NoTarget(id) => Error::Invalid {
                path: file.to_path_buf(),
                message: format!("no resource matches strategic merge patch \"{id}\""),
            },
            SmpFailure::AmbiguousTarget(id) => Error::Invalid {
                path: file.to_path_buf(),
                message: format!("multiple resources match strategic merge patch \"{id}\""),
            },
            SmpFailure::Patch(source) => Error::step(file, "strategic merge patch", source),
        }
    }
}

/// Applies one strategic merge patch document: to the objects `selector` picks, or without a
/// selector to the one object whose current or previous id is the patch's id. Objects the patch
/// deletes (`$patch: delete`) leave the build.
fn apply_strategic_merge_patch(
    resources: &mut Vec<Resource>,
    document: &Value,
    selector: Option<&patch::Selector>,
    options: &SmpOptions,
) -> Result<(), SmpFailure> {
    let chosen: Vec<usize> = match selector {
        Some(selector) => (0..resources.len())
            .filter(|&i| selector.matches(&resources[i]))
            .collect(),
        None => {
            let wanted = IdKey::of(&Resource::new(document.clone(), "").id());
            let matches: Vec<usize> = (0..resources.len())
                .filter(|&i| {
                    let resource = &resources[i];
                    IdKey::of(&resource.id()) == wanted
                        || IdKey::of(&resource.original_id) == wanted
                        || transform::previous_ids(resource)
                            .iter()
                            .any(|id| IdKey::of(id) == wanted)
                })
                .collect();
            let id = kustomize_id(&Resource::new(document.clone(), "").id());
            match matches.len() {
                0 => return Err(SmpFailure::NoTarget(id)),
                1 => matches,
                _ => return Err(SmpFailure::AmbiguousTarget(id)),
            }
        }
    };
    let mut deleted = Vec::new();
    for index in chosen {
        let resource = &mut resources[index];
        if options.allow_name_change || options.allow_kind_change {
            transform::record_previous_id(resource);
        }
        match patch::apply_strategic_merge(&resource.value, document, options)
            .map_err(SmpFailure::Patch)?
        {
            Outcome::Patched(value) => resource.value = value,
            Outcome::Deleted => deleted.push(index),
        }
    }
    for index in deleted.into_iter().rev() {
        resources.remove(index);
    }
    Ok(())
}

/// Applies JSON 6902 operations to every object `selector` picks.
fn apply_json_patch(
    resources: &mut [Resource],
    operations: &[patch::Operation],
    selector: &patch::Selector,
) -> Result<(), PatchError> {
    for resource in resources.iter_mut() {
        if !selector.matches(resource) {
            continue;
        }
        transform::record_previous_id(resource);
        let internal = internal_annotations(&resource.value);
        patch::json6902::apply(&mut resource.value, operations)?;
        // The operations may replace `metadata.annotations`; the build's bookkeeping survives.
        for (key, value) in internal {
            set_annotation(&mut resource.value, &key, &value);
        }
    }
    Ok(())
}

/// Refuses fields this engine does not implement, with a clear message.
fn check_supported(target: &Target) -> Result<(), Error> {
    let k = &target.kustomization;
    let refuse = |field: &str, hint: Option<&str>| Error::NotSupported {
        kustomization: target.file.clone(),
        field: field.to_string(),
        hint: hint.map(str::to_string),
    };
    if k.helm_globals.is_some()
        || !k.helm_charts.is_empty()
        || !k.helm_chart_inflation_generator.is_empty()
    {
        return Err(refuse(
            "helmCharts",
            Some("Helm charts are not inflated by kustomize builds here; use a HelmRelease"),
        ));
    }
    if !k.validators.is_empty() {
        return Err(refuse("validators", None));
    }
    if k.inventory.is_some() {
        return Err(refuse("inventory", None));
    }
    if !k.openapi.is_empty() {
        return Err(refuse("openapi", None));
    }
    Ok(())
}

/// The build's bookkeeping annotations (`internal.config.kubernetes.io/...`) of an object.
fn internal_annotations(value: &Value) -> Vec<(String, String)> {
    let Some(Value::Mapping(annotations)) =
        value.get("metadata").and_then(|m| m.get("annotations"))
    else {
        return Vec::new();
    };
    annotations
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
        .filter(|(k, _)| k.starts_with(generators::BUILD_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn is_local_config(value: &Value) -> bool {
    value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LOCAL_CONFIG_ANNOTATION))
        .is_some_and(|v| v.as_str() != Some("false"))
}

fn set_annotation(value: &mut Value, key: &str, text: &str) {
    let metadata = crate::resource::ensure_mapping(value, "metadata");
    let annotations = crate::resource::ensure_child_mapping(metadata, "annotations");
    annotations.insert(Value::from(key), Value::from(text));
}

fn remove_annotation(value: &mut Value, key: &str) {
    let Some(Value::Mapping(metadata)) = value.get_mut("metadata") else {
        return;
    };
    let Some(Value::Mapping(annotations)) = metadata.get_mut("annotations") else {
        return;
    };
    if annotations.remove(key).is_some() && annotations.is_empty() {
        metadata.remove("annotations");
    }
}

/// Appends one record to the transformations annotation of an object.
fn add_transformation(value: &mut Value, configured_in: &str, kind: &str) {
    let current = value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(TRANSFORMATIONS_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let record = format!(
        "- configuredIn: {configured_in}\n  configuredBy:\n    apiVersion: builtin\n    kind: {kind}\n"
    );
    set_annotation(value, TRANSFORMATIONS_ANNOTATION, &(current + &record));
}

/// Kustomize's legacy order of kinds: these first, in this order...
pub(crate) const LEGACY_ORDER_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
/// ... and these last.
pub(crate) const LEGACY_ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Orders objects per `sortOptions` of the top-level kustomization (legacy by default).
fn sort_resources(
    resources: &mut Vec<Resource>,
    options: Option<&SortOptions>,
    file: &Path,
) -> Result<(), Error> {
    let invalid = |message: String| Error::Invalid {
        path: file.to_path_buf(),
        message,
    };
    let (first, last): (Vec<String>, Vec<String>) = match options {
        None => (
            LEGACY_ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
            LEGACY_ORDER_LAST.iter().map(|s| s.to_string()).collect(),
        ),
        Some(options) => match options.order.as_deref() {
            Some("fifo") => {
                if options.legacy_sort_options.is_some() {
                    return Err(invalid(
                        "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'"
                            .to_string(),
                    ));
                }
                return Ok(());
            }
            Some("legacy") => match &options.legacy_sort_options {
                Some(legacy) => (legacy.order_first.clone(), legacy.order_last.clone()),
                None => (
                    LEGACY_ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
                    LEGACY_ORDER_LAST.iter().map(|s| s.to_string()).collect(),
                ),
            },
            _ => {
                return Err(invalid(
                    "the field 'sortOptions.order' must be one of [fifo, legacy]".to_string(),
                ));
            }
        },
    };
    legacy_sort(resources, &first, &last);
    Ok(())
}

/// Sorts like kustomize's legacy sorter: by the rank of the kind in `first` / `last` (others in
/// between), then by `group_version_kind`, then by `kind.version.group|namespace|name` compared as
/// strings (with kustomize's placeholders for empty parts).
fn legacy_sort(resources: &mut Vec<Resource>, first: &[String], last: &[String]) {
    let mut ranks: HashMap<&str, i64> = HashMap::new();
    let first_len = first.len() as i64;
    for (i, kind) in first.iter().enumerate() {
        ranks.insert(kind, i as i64 - first_len);
    }
    for (i, kind) in last.iter().enumerate() {
        ranks.insert(kind, i as i64 + 1);
    }
    let or = |s: &str, placeholder: &str| {
        if s.is_empty() {
            placeholder.to_string()
        } else {
            s.to_string()
        }
    };
    let mut keyed: Vec<((i64, String, String), Resource)> = resources
        .drain(..)
        .map(|resource| {
            let id = resource.id();
            let rank = ranks.get(id.kind.as_str()).copied().unwrap_or(0);
            let gvk = format!(
                "{}_{}_{}",
                or(&id.group, "~G"),
                or(&id.version, "~V"),
                or(&id.kind, "~K")
            );
            let full = format!(
                "{}.{}.{}|{}|{}",
                or(&id.kind, "[noKind]"),
                or(&id.version, "[noVer]"),
                or(&id.group, "[noGrp]"),
                or(id.namespace.as_deref().unwrap_or_default(), "~X"),
                or(&id.name, "~N"),
            );
            ((rank, gvk, full), resource)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    resources.extend(keyed.into_iter().map(|(_, resource)| resource));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn res(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Resource {
        let mut text =
            format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n");
        if let Some(ns) = namespace {
            text.push_str(&format!("  namespace: {ns}\n"));
        }
        Resource::new(serde_yaml::from_str(&text).unwrap(), "test")
    }

    fn names(resources: &[Resource]) -> Vec<String> {
        resources
            .iter()
            .map(|r| format!("{}/{}", r.kind(), r.name()))
            .collect()
    }

    #[test]
    fn legacy_order_puts_known_kinds_first_and_webhooks_last() {
        let mut resources = vec![
            res(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                None,
                "v",
            ),
            res("apps/v1", "Deployment", Some("a"), "d"),
            res("example.com/v1", "Widget", None, "w"),
            res("v1", "ConfigMap", None, "c"),
            res("v1", "Namespace", None, "n"),
            res("batch/v1", "Job", None, "j"),
        ];
        sort_resources(&mut resources, None, Path::new("k")).unwrap();
        assert_eq!(
            names(&resources),
            [
                "Namespace/n",
                "ConfigMap/c",
                "Deployment/d",
                "Job/j",
                "Widget/w",
                "ValidatingWebhookConfiguration/v"
            ]
        );
    }

    #[test]
    fn legacy_order_breaks_ties_like_kustomize_string_keys() {
        // "a-b|..." sorts before "a|..." because '-' < '|'; no namespace ("~X") sorts last.
        let mut resources = vec![
            res("v1", "ConfigMap", None, "z"),
            res("v1", "ConfigMap", Some("a"), "y"),
            res("v1", "ConfigMap", Some("a-b"), "x"),
        ];
        sort_resources(&mut resources, None, Path::new("k")).unwrap();
        let order: Vec<_> = resources
            .iter()
            .map(|r| r.namespace().unwrap_or("-").to_string())
            .collect();
        assert_eq!(order, ["a-b", "a", "-"]);
    }

    #[test]
    fn fifo_keeps_order_and_custom_legacy_lists_replace_the_defaults() {
        let make = || {
            vec![
                res("apps/v1", "Deployment", None, "d"),
                res("v1", "ConfigMap", None, "c"),
            ]
        };
        let mut fifo = make();
        let options = SortOptions {
            order: Some("fifo".to_string()),
            legacy_sort_options: None,
        };
        sort_resources(&mut fifo, Some(&options), Path::new("k")).unwrap();
        assert_eq!(names(&fifo), ["Deployment/d", "ConfigMap/c"]);

        let mut custom = make();
        let options: SortOptions =
            serde_yaml::from_str("order: legacy\nlegacySortOptions:\n  orderFirst: [Deployment]\n")
                .unwrap();
        sort_resources(&mut custom, Some(&options), Path::new("k")).unwrap();
        assert_eq!(names(&custom), ["Deployment/d", "ConfigMap/c"]);

        let bad: SortOptions = serde_yaml::from_str("{}").unwrap();
        assert!(sort_resources(&mut make(), Some(&bad), Path::new("k")).is_err());
    }

    #[test]
    fn duplicate_ids_are_refused_with_both_origins() {
        let mut acc = Accumulator::default();
        let mut first = res("v1", "ConfigMap", None, "x");
        first.origin = "a.yaml".to_string();
        acc.append(first).unwrap();
        let mut second = res("v1", "ConfigMap", Some("default"), "x");
        second.origin = "b.yaml".to_string();
        let err = acc.append(second).unwrap_err().to_string();
        assert!(err.contains("a.yaml") && err.contains("b.yaml"), "{err}");
        assert!(err.contains("ConfigMap.v1.[noGrp]/x.default"), "{err}");
        acc.append(res("v1", "ConfigMap", Some("other"), "x"))
            .unwrap();
    }

    #[test]
    fn yaml_output_sorts_keys_and_separates_documents() {
        let resources = vec![
            res("v1", "ConfigMap", None, "a"),
            res("v1", "Secret", None, "b"),
        ];
        let text = to_yaml(&resources).unwrap();
        assert_eq!(
            text,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n"
        );
    }
}
