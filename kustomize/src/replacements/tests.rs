//! Replacement tests. Each expected result is what `kubectl kustomize` (kustomize v5.5.0)
//! printed for `resources: [res.yaml]` plus the `replacements:` quoted in the test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use serde::Deserialize;
use serde_yaml::Value;

use super::*;

const RES: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: src
  namespace: ns
  labels: {role: source}
  annotations: {a.b/c: "hello.world"}
data:
  image: nginx:1.2
  count: "3"
  num: 7
  obj: {x: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dep
  labels: {tier: web}
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: app
        image: old:1
        args: ["--x", "y"]
      - name: side
        image: side:1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dep2
  labels: {tier: db}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: app
        image: old:2
"#;

fn resources(text: &str) -> Vec<Resource> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Resource::new(Value::deserialize(doc).unwrap(), "res.yaml"))
        .collect()
}

#[derive(Default)]
struct Files(HashMap<String, Vec<u8>>);

impl FileSource for Files {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, FileSourceError> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| format!("{path}: no such file").into())
    }
}

/// Runs the `replacements:` list `text` over [`RES`].
fn run(text: &str) -> Result<Vec<Resource>, ReplacementError> {
    let mut objects = resources(RES);
    let entries: Vec<ReplacementField> = serde_yaml::from_str(text).unwrap();
    let loaded = load(&entries, &Files::default())?;
    apply(&mut objects, &loaded)?;
    Ok(objects)
}

fn get<'a>(objects: &'a [Resource], name: &str, path: &str) -> &'a Value {
    let object = objects.iter().find(|r| r.name() == name).unwrap();
    path::lookup(&object.value, &path::parse(path))
        .unwrap()
        .unwrap_or(&Value::Null)
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

#[test]
fn list_matchers_indexes_wildcards_and_type_keeping() {
    let out = run(r#"
- source: {kind: ConfigMap, name: src, fieldPath: data.image}
  targets:
  - select: {kind: Deployment, name: dep}
    fieldPaths:
    - spec.template.spec.containers.[name=app].image
  - select: {kind: Deployment}
    reject: [{labelSelector: tier=db}]
    fieldPaths: [metadata.annotations.new]
    options: {create: true}
- source: {kind: ConfigMap, name: src, fieldPath: data.count}
  targets:
  - select: {kind: Deployment}
    fieldPaths: [spec.replicas]
- source: {kind: ConfigMap, name: src, fieldPath: data.num}
  targets:
  - select: {kind: Deployment, name: dep}
    fieldPaths: [spec.template.spec.containers.0.args.1, metadata.labels.tier]
"#)
    .unwrap();
    let containers = get(&out, "dep", "spec.template.spec.containers");
    assert_eq!(
        *containers,
        yaml(
            r#"
- {name: app, image: nginx:1.2, args: ["--x", "7"]}
- {name: side, image: side:1}
"#
        )
    );
    assert_eq!(
        *get(&out, "dep", "metadata.annotations"),
        yaml("{new: nginx:1.2}")
    );
    assert_eq!(*get(&out, "dep2", "metadata.annotations"), Value::Null);
    // "3" into an integer field stays an integer; 7 into a string field becomes "7".
    assert_eq!(*get(&out, "dep", "spec.replicas"), yaml("3"));
    assert_eq!(*get(&out, "dep2", "spec.replicas"), yaml("3"));
    assert_eq!(*get(&out, "dep", "metadata.labels.tier"), yaml("'7'"));
}

#[test]
fn wildcard_and_exact_selection() {
    let out = run(r#"
- source: {kind: ConfigMap, name: src, fieldPath: data.image}
  targets:
  - select: {kind: Deployment, name: dep}
    fieldPaths:
    - spec.template.spec.containers.*.image
  - select: {kind: Deployment, name: dep.*}
    fieldPaths:
    - spec.template.spec.containers.0.image
"#)
    .unwrap();
    assert_eq!(
        *get(&out, "dep", "spec.template.spec.containers.1.image"),
        yaml("nginx:1.2")
    );
    // Names in replacement selectors are not regular expressions.
    assert_eq!(
        *get(&out, "dep2", "spec.template.spec.containers.0.image"),
        yaml("old:2")
    );
}

#[test]
fn label_selectors_and_rejects() {
    let out = run(r#"
- source: {kind: ConfigMap}
  targets:
  - select: {labelSelector: tier=web}
    fieldPaths: [spec.template.spec.containers.0.image]
  - select: {kind: Deployment}
    reject:
    - {name: dep, labelSelector: tier=db}
    fieldPaths: [metadata.annotations.x]
    options: {create: true}
  - select: {kind: Deployment}
    reject:
    - {labelSelector: tier=nothing}
    fieldPaths: [metadata.annotations.y]
    options: {create: true}
"#)
    .unwrap();
    assert_eq!(
        *get(&out, "dep", "spec.template.spec.containers.0.image"),
        yaml("src")
    );
    assert_eq!(
        *get(&out, "dep2", "spec.template.spec.containers.0.image"),
        yaml("old:2")
    );
    // A reject with an id and a label selector rejects what either part picks.
    assert_eq!(*get(&out, "dep", "metadata.annotations.x"), Value::Null);
    assert_eq!(*get(&out, "dep2", "metadata.annotations.x"), Value::Null);
    assert_eq!(*get(&out, "dep", "metadata.annotations.y"), yaml("src"));
    assert_eq!(*get(&out, "dep2", "metadata.annotations.y"), yaml("src"));
}

#[test]
fn create_builds_missing_fields_and_list_elements_with_types_from_the_text() {
    let out = run(r#"
- source: {kind: ConfigMap, name: src, fieldPath: data.count}
  targets:
  - select: {kind: Deployment, name: dep}
    fieldPaths:
    - spec.newfield
    - spec.template.spec.containers.0.args.2
    - spec.list.0
    - spec.m.[k=v].z
    - spec.p.[=x]
    options: {create: true}
"#)
    .unwrap();
    let spec = get(&out, "dep", "spec");
    assert_eq!(spec["newfield"], yaml("3"));
    assert_eq!(spec["list"], yaml("[3]"));
    assert_eq!(spec["m"], yaml("[{k: v, z: 3}]"));
    assert_eq!(spec["p"], yaml("[3]"));
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["args"],
        yaml(r#"["--x", "y", 3]"#)
    );
    let err = run(r#"
- source: {kind: ConfigMap}
  targets:
  - select: {kind: Deployment, name: dep}
    fieldPaths: [spec.template.spec.containers.0.args.5]
    options: {create: true}
"#)
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("unable to find or create field \"spec.template.spec.containers.0.args.5\"")
            && err
                .to_string()
                .ends_with("index 5 specified but only 2 elements found"),
        "{err}"
    );
}

#[test]
fn list_matcher_values_are_unanchored_regular_expressions() {
    let out = run(r#"
- source: {kind: ConfigMap}
  targets:
  - select: {kind: Deployment, name: dep}
    fieldPaths:
    - spec.template.spec.containers.[name=ap].image
    - spec.template.spec.containers.[name=^s.*e$].image
"#)
    .unwrap();
    assert_eq!(
        *get(&out, "dep", "spec.template.spec.containers"),
        yaml("[{name: app, image: src, args: ['--x', 'y']}, {name: side, image: src}]")
    );
}

#[test]
fn keys_with_dots_brackets_and_escapes() {
    let out = run(r#"
- source:
    kind: ConfigMap
    fieldPath: metadata.annotations.[a.b/c]
  targets:
  - select: {kind: Deployment, name: dep2}
    fieldPaths:
    - metadata.annotations.[x.y/z]
    - metadata.labels.a\.b
    options: {create: true}
"#)
    .unwrap();
    assert_eq!(
        *get(&out, "dep2", "metadata.annotations"),
        yaml("{x.y/z: hello.world}")
    );
    assert_eq!(
        *get(&out, "dep2", "metadata.labels"),
        yaml("{tier: db, a.b: hello.world}")
    );
    let err = run(r#"
- source: {kind: ConfigMap}
  targets:
  - select: {kind: Deployment, name: dep2}
    fieldPaths: ['metadata.labels.[q]']
    options: {create: true}
"#)
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("list path element must contain fieldName=fieldValue for element to match"),
        "{err}"
    );
}

#[test]
fn delimiters_on_source_and_target() {
    let out = run(r#"
- source:
    kind: ConfigMap
    fieldPath: data.image
    options: {delimiter: ":", index: 1}
  targets:
  - select: {kind: Deployment, name: dep}
    fieldPaths:
    - spec.template.spec.containers.0.image
    - spec.template.spec.containers.1.image
    options: {delimiter: ":", index: 1}
  - select: {kind: Deployment, name: dep2}
    fieldPaths:
    - spec.template.spec.containers.0.image
    - metadata.labels.tier
    options: {delimiter: ":", index: -1}
  - select: {kind: Deployment, name: dep}
    fieldPaths:
    - metadata.labels.tier
    options: {delimiter: "e", index: 7}
"#)
    .unwrap();
    let image = |name, i| {
        get(
            &out,
            name,
            &format!("spec.template.spec.containers.{i}.image"),
        )
        .as_str()
        .unwrap()
        .to_string()
    };
    assert_eq!(image("dep", 0), "old:1.2");
    assert_eq!(image("dep", 1), "side:1.2");
    assert_eq!(image("dep2", 0), "1.2:old:2");
    assert_eq!(*get(&out, "dep2", "metadata.labels.tier"), yaml("1.2:db"));
    assert_eq!(*get(&out, "dep", "metadata.labels.tier"), yaml("webe1.2"));
}

#[test]
fn errors_name_the_selector_or_field() {
    let err = |text: &str| run(text).unwrap_err().to_string();
    assert_eq!(
        err("[{source: {kind: ConfigMap, name: nope}, targets: [{select: {kind: Deployment}}]}]"),
        "nothing selected by ConfigMap.[noVer].[noGrp]/nope.[noNs]"
    );
    assert_eq!(
        err("[{source: {kind: Deployment}, targets: [{select: {kind: ConfigMap}}]}]"),
        "multiple matches for selector Deployment.[noVer].[noGrp]/[noName].[noNs]"
    );
    assert_eq!(
        err(
            "[{source: {kind: ConfigMap, fieldPath: data.nope}, targets: [{select: {kind: Deployment}}]}]"
        ),
        "fieldPath `data.nope` is missing for replacement source ConfigMap.[noVer].[noGrp]/[noName].[noNs]"
    );
    assert_eq!(
        err(
            "[{source: {kind: ConfigMap}, targets: [{select: {kind: Deployment}, fieldPaths: [spec.nope.x]}]}]"
        ),
        "unable to find field \"spec.nope.x\" in replacement target Deployment.apps/dep"
    );
    assert!(
        err("[{source: {kind: ConfigMap}, targets: [{select: {kind: Deployment}, fieldPaths: [spec.replicas.x]}]}]")
            .ends_with("wrong node kind: expected MappingNode but got ScalarNode")
    );
    assert!(
        err("[{source: {kind: ConfigMap}, targets: [{select: {kind: Deployment}, fieldPaths: ['metadata.labels.*']}]}]")
            .ends_with("wrong node kind: expected SequenceNode but got MappingNode")
    );
    assert_eq!(
        err(
            "[{source: {kind: ConfigMap, fieldPath: data.image, options: {delimiter: ':', index: 2}}, targets: [{select: {kind: Deployment}}]}]"
        ),
        "options.index 2 is out of bounds for value nginx:1.2"
    );
    assert_eq!(
        err(
            "[{source: {kind: ConfigMap, namespace: other}, targets: [{select: {kind: Deployment}}]}]"
        ),
        "nothing selected by ConfigMap.[noVer].[noGrp]/[noName].other"
    );
    assert_eq!(
        err("[{source: {kind: ConfigMap}}]"),
        "replacements must specify a source and at least one target"
    );
    assert_eq!(
        err("[{source: {kind: ConfigMap}, targets: [{fieldPaths: [a]}]}]"),
        "target must specify resources to select"
    );
}

#[test]
fn source_namespace_default_matches_objects_without_one() {
    let out = run(r#"
- source: {group: apps, version: v1, kind: Deployment, name: dep, namespace: default}
  targets:
  - select: {kind: ConfigMap}
    fieldPaths: [data.image]
"#)
    .unwrap();
    assert_eq!(*get(&out, "src", "data.image"), yaml("dep"));
}

/// Source value kinds against target field kinds: kubectl kustomize keeps a scalar target's
/// type (failing when the text does not read as it), replaces a mapping or list target by the
/// source value, and types a created scalar from its text.
#[test]
fn source_and_target_type_matrix() {
    const RES2: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: src}
data:
  image: nginx:1.2
  count: "3"
  num: 7
  bool: true
  empty: ""
  obj: {x: 1}
  lst: [1, 2]
---
apiVersion: v1
kind: Pod
metadata: {name: t}
spec:
  int: 1
  str: "s"
  bool: false
  nul: null
  obj: {a: 1}
  lst: [x]
"#;
    // (source field, target field, result or None for an error)
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("image", "int", None),
        ("image", "str", Some("nginx:1.2")),
        ("image", "bool", None),
        ("image", "nul", None),
        ("image", "obj", Some("nginx:1.2")),
        ("image", "created", Some("nginx:1.2")),
        ("count", "int", Some("3")),
        ("count", "str", Some("'3'")),
        ("count", "bool", None),
        ("count", "obj", Some("'3'")),
        ("count", "created", Some("3")),
        ("num", "str", Some("'7'")),
        ("num", "lst", Some("7")),
        ("num", "created", Some("7")),
        ("bool", "bool", Some("true")),
        ("bool", "str", Some("'true'")),
        ("bool", "int", None),
        ("empty", "str", Some("''")),
        ("empty", "nul", Some("null")),
        ("empty", "int", None),
        ("empty", "obj", Some("''")),
        ("empty", "created", Some("null")),
        ("obj", "str", Some("''")),
        ("obj", "nul", Some("null")),
        ("obj", "int", None),
        ("obj", "lst", Some("{x: 1}")),
        ("obj", "created", Some("{x: 1}")),
        ("lst", "obj", Some("[1, 2]")),
        ("lst", "str", Some("''")),
    ];
    for (source, target, want) in cases {
        let mut objects = resources(RES2);
        let replacements: Vec<Replacement> = serde_yaml::from_str(&format!(
            "[{{source: {{kind: ConfigMap, fieldPath: data.{source}}}, targets: [{{select: {{kind: Pod}}, fieldPaths: [spec.{target}], options: {{create: true}}}}]}}]"
        ))
        .unwrap();
        let result = apply(&mut objects, &replacements);
        match want {
            None => assert!(
                matches!(result, Err(ReplacementError::IncompatibleValue { .. })),
                "{source} -> {target}: {result:?}"
            ),
            Some(want) => {
                result.unwrap();
                assert_eq!(
                    objects[1].value["spec"][*target],
                    yaml(want),
                    "{source} -> {target}"
                );
            }
        }
    }
}

#[test]
fn selection_by_original_name_after_a_prefix() {
    // An overlay renames `dep` to `p-dep` (namePrefix), then a replacement of the overlay
    // names the base's `dep`: kustomize still finds it through its previous name.
    let mut objects = resources(RES);
    for object in &mut objects {
        crate::transform::record_previous_id(object);
        let name = format!("p-{}", object.name());
        object.set_name(&name);
    }
    let replacements: Vec<Replacement> = serde_yaml::from_str(
        "[{source: {kind: Deployment, name: dep}, targets: [{select: {kind: ConfigMap, name: src}, fieldPaths: [data.image]}]}]",
    )
    .unwrap();
    apply(&mut objects, &replacements).unwrap();
    assert_eq!(objects[0].value["data"]["image"], yaml("p-dep"));
}

#[test]
fn replacements_files_hold_one_or_a_list_and_ignore_unknown_fields() {
    let files = Files(HashMap::from([
        (
            "one.yaml".to_string(),
            b"source: {kind: ConfigMap, fieldPath: data.num}\ntargets:\n- select: {name: dep}\n  fieldPaths: [spec.replicas]\n  bogus: 1\n".to_vec(),
        ),
        (
            "list.yaml".to_string(),
            b"- source: {kind: ConfigMap, fieldPath: data.count}\n  targets:\n  - select: {name: dep2}\n    fieldPaths: [spec.replicas]\n".to_vec(),
        ),
        ("scalar.yaml".to_string(), b"just text\n".to_vec()),
    ]));
    let entries: Vec<ReplacementField> =
        serde_yaml::from_str("[{path: one.yaml}, {path: list.yaml}]").unwrap();
    let loaded = load(&entries, &files).unwrap();
    assert_eq!(loaded.len(), 2);
    let mut objects = resources(RES);
    apply(&mut objects, &loaded).unwrap();
    assert_eq!(*get(&objects, "dep", "spec.replicas"), yaml("7"));
    assert_eq!(*get(&objects, "dep2", "spec.replicas"), yaml("3"));

    let load_err = |text: &str| {
        let entries: Vec<ReplacementField> = serde_yaml::from_str(text).unwrap();
        load(&entries, &files).unwrap_err()
    };
    assert!(matches!(
        load_err("[{path: scalar.yaml}]"),
        ReplacementError::UnsupportedFile { .. }
    ));
    assert!(matches!(
        load_err("[{path: missing.yaml}]"),
        ReplacementError::ReadFile { path, .. } if path == "missing.yaml"
    ));
    assert!(matches!(
        load_err("[{path: one.yaml, source: {kind: ConfigMap}}]"),
        ReplacementError::PathAndInline
    ));
    // Inline entries are strict, as kustomize's kustomization parsing is.
    assert!(
        serde_yaml::from_str::<Vec<ReplacementField>>("[{source: {kind: A, bogus: 1}}]").is_err()
    );
}
