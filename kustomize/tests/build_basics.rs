//! End-to-end builds of small kustomization trees, compared with `kubectl kustomize` (the
//! reference renderer, on PATH): the same objects (parsed YAML values) in the same order, or an
//! error on both sides.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use ferroflux_kustomize::{BuildOptions, Error, LoadRestrictions, build, to_yaml};
use serde::Deserialize;
use serde_yaml::Value;

/// Writes `files` (path, content) under a fresh temporary directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn documents(stream: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(stream)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|value| !value.is_null())
        .collect()
}

/// `kubectl kustomize` of `dir`: its objects, or its error message.
fn reference(dir: &Path, options: &BuildOptions) -> Result<Vec<Value>, String> {
    let mut command = Command::new("kubectl");
    command.arg("kustomize").arg(dir);
    if options.load_restrictions == LoadRestrictions::None {
        command.args(["--load-restrictor", "LoadRestrictionsNone"]);
    }
    let output = command
        .output()
        .expect("kubectl (the reference renderer) must be on PATH");
    if output.status.success() {
        Ok(documents(&String::from_utf8(output.stdout).unwrap()))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Our build of `dir`, printed and parsed back (so the printing is checked too).
fn ours(dir: &Path, options: &BuildOptions) -> Result<Vec<Value>, Error> {
    let resources = build(dir, options)?;
    Ok(documents(&to_yaml(&resources).unwrap()))
}

/// Asserts both builds succeed with the same objects in the same order; returns them.
#[track_caller]
fn same_output(files: &[(&str, &str)], entry: &str, options: &BuildOptions) -> Vec<Value> {
    let dir = tree(files);
    let path = dir.path().join(entry);
    let want = reference(&path, options).unwrap_or_else(|e| panic!("kubectl failed: {e}"));
    let got = ours(&path, options).unwrap_or_else(|e| panic!("our build failed: {e}"));
    if got != want {
        let show = |values: &[Value]| {
            values
                .iter()
                .map(|v| serde_yaml::to_string(v).unwrap())
                .collect::<Vec<_>>()
                .join("---\n")
        };
        panic!(
            "outputs differ\n--- ours:\n{}\n--- kubectl:\n{}",
            show(&got),
            show(&want)
        );
    }
    got
}

/// Asserts both builds fail; returns our error message.
#[track_caller]
fn both_fail(files: &[(&str, &str)], entry: &str, options: &BuildOptions) -> String {
    let dir = tree(files);
    let path = dir.path().join(entry);
    let want = reference(&path, options);
    assert!(want.is_err(), "kubectl succeeded: {want:?}");
    match ours(&path, options) {
        Ok(values) => panic!("our build succeeded where kubectl failed: {values:?}"),
        Err(err) => {
            // The message is read by people: it must name what to look at.
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            message
        }
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        envFrom:
        - configMapRef:
            name: settings
        volumeMounts:
        - name: creds
          mountPath: /creds
      volumes:
      - name: creds
        secret:
          secretName: creds
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
";

fn defaults() -> BuildOptions {
    BuildOptions::default()
}

#[test]
fn plain_resources_come_out_in_legacy_kind_order() {
    let got = same_output(
        &[
            (
                "kustomization.yaml",
                "resources:\n- deploy.yaml\n- service.yaml\n- ns.yaml\n",
            ),
            ("deploy.yaml", DEPLOYMENT),
            ("service.yaml", SERVICE),
            (
                "ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n",
            ),
        ],
        "",
        &defaults(),
    );
    let kinds: Vec<_> = got.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Namespace", "Service", "Deployment"]);
}

#[test]
fn overlay_with_namespace_prefix_labels_generators_and_hash_references() {
    same_output(
        &[
            (
                "base/kustomization.yaml",
                "resources:\n- deploy.yaml\n- service.yaml\nconfigMapGenerator:\n- name: settings\n  literals:\n  - MODE=base\nsecretGenerator:\n- name: creds\n  literals:\n  - password=s3cret\n",
            ),
            ("base/deploy.yaml", DEPLOYMENT),
            ("base/service.yaml", SERVICE),
            (
                "prod/kustomization.yaml",
                "resources:\n- ../base\nnamespace: prod\nnamePrefix: prod-\nnameSuffix: -v2\ncommonLabels:\n  env: prod\ncommonAnnotations:\n  owner: team\nimages:\n- name: nginx\n  newTag: '1.27'\nreplicas:\n- name: web\n  count: 3\nconfigMapGenerator:\n- name: settings\n  behavior: merge\n  literals:\n  - MODE=prod\n",
            ),
        ],
        "prod",
        &defaults(),
    );
}

#[test]
fn patches_of_every_kind_apply_in_kustomize_order() {
    same_output(
        &[
            (
                "kustomization.yaml",
                "resources:\n- deploy.yaml\n- service.yaml\nnamePrefix: p-\npatchesStrategicMerge:\n- smp.yaml\npatches:\n- target:\n    kind: Deployment\n    name: web\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: 5\n- patch: |-\n    apiVersion: v1\n    kind: Service\n    metadata:\n      name: web\n    spec:\n      type: NodePort\npatchesJson6902:\n- target:\n    group: apps\n    version: v1\n    kind: Deployment\n    name: p-web\n  path: json.yaml\n",
            ),
            ("deploy.yaml", DEPLOYMENT),
            ("service.yaml", SERVICE),
            (
                "smp.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        resources:\n          limits:\n            memory: 128Mi\n",
            ),
            (
                "json.yaml",
                "- op: add\n  path: /metadata/annotations\n  value:\n    patched: json6902\n",
            ),
        ],
        "",
        &defaults(),
    );
}

#[test]
fn components_see_the_parent_objects_and_run_after_its_generators() {
    same_output(
        &[
            (
                "base/kustomization.yaml",
                "resources:\n- deploy.yaml\nconfigMapGenerator:\n- name: settings\n  literals: [A=1]\nsecretGenerator:\n- name: creds\n  literals: [B=2]\n",
            ),
            ("base/deploy.yaml", DEPLOYMENT),
            (
                "components/monitoring/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- service.yaml\nnamePrefix: mon-\nconfigMapGenerator:\n- name: settings\n  behavior: merge\n  literals: [C=3]\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: add\n      path: /metadata/annotations\n      value: {monitored: 'true'}\n",
            ),
            ("components/monitoring/service.yaml", SERVICE),
            (
                "app/kustomization.yaml",
                "resources:\n- ../base\ncomponents:\n- ../components/monitoring\nnamePrefix: app-\n",
            ),
        ],
        "app",
        &defaults(),
    );
}

#[test]
fn labels_with_selectors_and_templates_and_legacy_fields() {
    same_output(
        &[
            (
                "kustomization.yaml",
                "bases:\n- base\nlabels:\n- pairs:\n    team: a\n  includeSelectors: true\n- pairs:\n    tier: web\n  includeTemplates: true\n- pairs:\n    plain: yes-please\nimageTags:\n- name: nginx\n  digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n",
            ),
            (
                "base/kustomization.yaml",
                "resources:\n- deploy.yaml\n- service.yaml\n",
            ),
            ("base/deploy.yaml", DEPLOYMENT),
            ("base/service.yaml", SERVICE),
        ],
        "",
        &defaults(),
    );
}

#[test]
fn replacements_run_last_and_see_prefixed_names() {
    same_output(
        &[
            (
                "kustomization.yaml",
                "resources:\n- deploy.yaml\n- service.yaml\nnamePrefix: x-\nreplacements:\n- source:\n    kind: Service\n    name: web\n    fieldPath: metadata.name\n  targets:\n  - select:\n      kind: Deployment\n    fieldPaths:\n    - spec.template.spec.containers.[name=web].env.[name=BACKEND].value\n    options:\n      create: true\n",
            ),
            (
                "deploy.yaml",
                &DEPLOYMENT.replace(
                    "        envFrom:\n",
                    "        env:\n        - name: BACKEND\n          value: tbd\n        envFrom:\n",
                ),
            ),
            ("service.yaml", SERVICE),
        ],
        "",
        &defaults(),
    );
}

#[test]
fn sort_options_fifo_and_custom_legacy_order() {
    let files = |sort: &str| {
        vec![
            (
                "kustomization.yaml".to_string(),
                format!("resources:\n- deploy.yaml\n- service.yaml\n{sort}"),
            ),
            ("deploy.yaml".to_string(), DEPLOYMENT.to_string()),
            ("service.yaml".to_string(), SERVICE.to_string()),
        ]
    };
    for sort in [
        "sortOptions:\n  order: fifo\n",
        "sortOptions:\n  order: legacy\n  legacySortOptions:\n    orderFirst: [Deployment]\n    orderLast: [Service]\n",
    ] {
        let owned = files(sort);
        let borrowed: Vec<(&str, &str)> = owned
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let got = same_output(&borrowed, "", &defaults());
        assert_eq!(got[0]["kind"], "Deployment", "{sort}");
    }
    let owned = files("sortOptions:\n  order: random\n");
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let err = both_fail(&borrowed, "", &defaults());
    assert!(err.contains("sortOptions.order"), "{err}");
}

#[test]
fn build_metadata_annotations_and_managed_by_label() {
    same_output(
        &[
            (
                "base/kustomization.yaml",
                "resources:\n- deploy.yaml\nconfigMapGenerator:\n- name: settings\n  literals: [A=1]\n",
            ),
            ("base/deploy.yaml", DEPLOYMENT),
            (
                "overlay/kustomization.yaml",
                "resources:\n- ../base\nnamePrefix: o-\ncommonLabels: {env: o}\nbuildMetadata: [originAnnotations, transformerAnnotations, managedByLabel]\n",
            ),
        ],
        "overlay",
        &defaults(),
    );
}

#[test]
fn local_config_objects_are_dropped() {
    same_output(
        &[
            (
                "kustomization.yaml",
                "resources:\n- cm.yaml\nreplacements:\n- source:\n    kind: ConfigMap\n    name: values\n    fieldPath: data.replicas\n  targets:\n  - select:\n      kind: ConfigMap\n      name: app\n    fieldPaths: [data.count]\n",
            ),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values\n  annotations:\n    config.kubernetes.io/local-config: 'true'\ndata:\n  replicas: '4'\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  count: '1'\n",
            ),
        ],
        "",
        &defaults(),
    );
}

#[test]
fn files_outside_the_root_need_the_load_restrictor_off() {
    let files = [
        (
            "app/kustomization.yaml",
            "resources:\n- ../shared/service.yaml\n",
        ),
        ("shared/service.yaml", SERVICE),
    ];
    let err = both_fail(&files, "app", &defaults());
    assert!(err.contains("shared/service.yaml"), "{err}");
    assert!(err.contains("LoadRestrictionsNone"), "{err}");
    same_output(
        &files,
        "app",
        &BuildOptions {
            load_restrictions: LoadRestrictions::None,
            ..BuildOptions::default()
        },
    );
}

#[test]
fn bad_input_errors_name_the_file() {
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![(
                "kustomization.yaml",
                "resources:\n- deploy.yaml\nnamePrefx: x-\n",
            )],
            "",
            "namePrefx",
        ),
        (
            vec![
                ("kustomization.yaml", "resources:\n- bad.yaml\n"),
                (
                    "bad.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
                ),
            ],
            "",
            "bad.yaml",
        ),
        (
            vec![("kustomization.yaml", "resources:\n- missing.yaml\n")],
            "",
            "missing.yaml",
        ),
        (
            vec![
                ("kustomization.yaml", "resources:\n- a.yaml\n- b.yaml\n"),
                ("a.yaml", SERVICE),
                ("b.yaml", SERVICE),
            ],
            "",
            "b.yaml",
        ),
        (
            vec![
                ("a/kustomization.yaml", "resources:\n- ../b\n"),
                ("b/kustomization.yaml", "resources:\n- ../a\n"),
            ],
            "a",
            "cycle",
        ),
        (
            vec![(
                "kustomization.yaml",
                "resources:\n- https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0\n",
            )],
            "",
            "remote bases are not supported",
        ),
        (
            vec![
                (
                    "kustomization.yaml",
                    "resources: [service.yaml]\nvars:\n- name: X\n  objref: {kind: Service, name: web}\n",
                ),
                ("service.yaml", SERVICE),
            ],
            "",
            "cannot be mapped",
        ),
        (vec![("nothing-here.txt", "")], "", "kustomization"),
    ];
    for (files, entry, needle) in cases {
        let message = both_fail(&files, entry, &defaults());
        assert!(message.contains(needle), "{needle}: {message}");
    }
}

#[test]
fn flux_generates_a_kustomization_for_a_plain_directory() {
    let dir = tree(&[
        ("deploy.yaml", DEPLOYMENT),
        ("nested/service.yaml", SERVICE),
        ("README.md", "not a manifest"),
        (
            "app/kustomization.yaml",
            "resources:\n- cm.yaml\nnamePrefix: app-\n",
        ),
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        ),
    ]);
    // kubectl kustomize refuses such a directory, and so do we by default.
    assert!(reference(dir.path(), &defaults()).is_err());
    assert!(matches!(
        build(dir.path(), &defaults()),
        Err(Error::MissingKustomization { .. })
    ));
    let options = BuildOptions {
        generate_missing_kustomization: true,
        ..BuildOptions::default()
    };
    let names: Vec<String> = build(dir.path(), &options)
        .unwrap()
        .iter()
        .map(|r| format!("{}/{}", r.kind(), r.name()))
        .collect();
    assert_eq!(names, ["ConfigMap/app-c", "Service/web", "Deployment/web"]);
    // The directory itself is left untouched (Flux writes a file; we build in memory).
    assert!(!dir.path().join("kustomization.yaml").exists());
    // Only the directory being built gets a generated kustomization, as with Flux: a plain
    // directory named by a kustomization is still an error.
    let nested = tree(&[
        ("kustomization.yaml", "resources:\n- plain\n"),
        ("plain/service.yaml", SERVICE),
    ]);
    assert!(matches!(
        build(nested.path(), &options),
        Err(Error::MissingKustomization { .. })
    ));
}

#[test]
fn crds_declare_name_references_of_custom_kinds() {
    let crd = r#"{
  "github.com/example/v1beta1.MyKind": {
    "Schema": {
      "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"$ref": "k8s.io/apimachinery/pkg/apis/meta/v1.ObjectMeta"},
        "spec": {"$ref": "github.com/example/v1beta1.MyKindSpec"}
      }
    }
  },
  "github.com/example/v1beta1.MyKindSpec": {
    "Schema": {
      "properties": {
        "secretRef": {
          "x-kubernetes-object-ref-api-version": "v1",
          "x-kubernetes-object-ref-kind": "Secret",
          "$ref": "k8s.io/api/core/v1.LocalObjectReference"
        },
        "selector": {"x-kubernetes-label-selector": ""}
      }
    }
  }
}"#;
    same_output(
        &[
            (
                "kustomization.yaml",
                "crds:\n- mycrd.json\nresources:\n- objects.yaml\nnamePrefix: x-\ncommonLabels: {team: a}\nsecretGenerator:\n- name: token\n  literals: [t=1]\n",
            ),
            ("mycrd.json", crd),
            (
                "objects.yaml",
                "apiVersion: example.com/v1beta1\nkind: MyKind\nmetadata:\n  name: thing\nspec:\n  secretRef:\n    name: token\n  selector: {}\n",
            ),
        ],
        "",
        &defaults(),
    );
}

#[test]
fn vars_expand_after_name_references() {
    same_output(
        &[
            (
                "base/kustomization.yaml",
                "resources: [objects.yaml]\nvars:\n- name: SVC\n  objref: {kind: Service, name: svc, apiVersion: v1}\n- name: PORT\n  objref: {kind: Service, name: svc, apiVersion: v1}\n  fieldref: {fieldPath: 'spec.ports[0].port'}\n",
            ),
            (
                "base/objects.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports:\n  - port: 8080\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: \"$(SVC)-x $$(SVC) $(NOPE) $(PORT)\"\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: i\n        args: [\"$(SVC)\", \"--port=$(PORT)\", \"$(PORT)\", \"$(CM)\"]\n        env:\n        - name: P\n          value: $(PORT)\n",
            ),
            (
                "overlay/kustomization.yaml",
                "resources: [../base]\nnamePrefix: p-\nnamespace: ns\nconfigMapGenerator:\n- name: cm\n  literals: [a=b]\nvars:\n- name: CM\n  objref: {kind: ConfigMap, name: cm, apiVersion: v1}\n",
            ),
        ],
        "overlay",
        &defaults(),
    );
}

#[test]
fn builtin_plugin_configurations_run_after_the_fields() {
    same_output(
        &[
            (
                "kustomization.yaml",
                "resources: [r.yaml]\ngenerators:\n- |-\n  apiVersion: builtin\n  kind: SecretGenerator\n  metadata:\n    name: sec\n    namespace: gen-ns\n  literals: [a=b]\n  type: Opaque\ntransformers:\n- tf\n- |-\n  apiVersion: builtin\n  kind: NamespaceTransformer\n  metadata:\n    name: ns\n    namespace: target\n  unsetOnly: true\n  setRoleBindingSubjects: allServiceAccounts\n  fieldSpecs:\n  - path: metadata/namespace\n    create: true\n- |-\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata:\n    name: p\n  target:\n    kind: Deployment\n  patch: |-\n    - op: add\n      path: /metadata/annotations\n      value: {p: \"1\"}\n- |-\n  apiVersion: builtin\n  kind: PatchJson6902Transformer\n  metadata:\n    name: j\n  target:\n    kind: Service\n    name: s\n  jsonOp: '[{\"op\": \"add\", \"path\": \"/spec/type\", \"value\": \"NodePort\"}]'\n- |-\n  apiVersion: builtin\n  kind: PatchStrategicMergeTransformer\n  metadata:\n    name: smp\n  patches: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: d\n      namespace: keep\n    spec:\n      paused: true\n- |-\n  apiVersion: builtin\n  kind: ReplacementTransformer\n  metadata:\n    name: rep\n  replacements:\n  - source: {kind: Service, name: s, fieldPath: spec.ports.0.port}\n    targets:\n    - select: {kind: Deployment}\n      fieldPaths: [spec.template.metadata.annotations.port]\n      options: {create: true}\n",
            ),
            (
                "r.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: keep\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.0\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects:\n- kind: ServiceAccount\n  name: default\n  namespace: other\n- kind: ServiceAccount\n  name: sa\n  namespace: other\n",
            ),
            (
                "tf/configs.yaml",
                "apiVersion: builtin\nkind: AnnotationsTransformer\nmetadata:\n  name: a\nannotations:\n  note: hi\nfieldSpecs:\n- path: metadata/annotations\n  create: true\n---\napiVersion: builtin\nkind: ImageTagTransformer\nmetadata:\n  name: i\nimageTag:\n  name: nginx\n  newTag: \"2.0\"\nfieldSpecs:\n- path: spec/template/spec/containers/image\n  kind: Deployment\n---\napiVersion: builtin\nkind: ReplicaCountTransformer\nmetadata:\n  name: rc\nreplica:\n  name: d\n  count: 5\nfieldSpecs:\n- path: spec/replicas\n  kind: Deployment\n",
            ),
            ("tf/kustomization.yaml", "resources: [configs.yaml]\n"),
        ],
        "",
        &defaults(),
    );
}

#[test]
fn external_plugins_are_refused() {
    let err = both_fail(
        &[
            (
                "kustomization.yaml",
                "resources: [service.yaml]\ntransformers:\n- |-\n  apiVersion: example.com/v1\n  kind: Mine\n  metadata:\n    name: m\n",
            ),
            ("service.yaml", SERVICE),
        ],
        "",
        &defaults(),
    );
    assert!(err.contains("example.com/v1"), "{err}");
}

#[test]
fn printed_output_is_byte_identical_to_kubectl() {
    // Strings that YAML 1.1 readers would retype are quoted, long lines fold at 80 columns,
    // multi-line strings are literal blocks: as kubectl prints them.
    let long = "word ".repeat(40);
    let config_map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    long: \"{}\"\ndata:\n  a: \"y\"\n  b: \"on\"\n  c: \"1:20\"\n  d: \"2001-12-14\"\n  e: \"0777\"\n  f: \"--port=80\"\n  g: \"a: b\"\n  h: \"\"\n  i: \"multi\\nline\\n\"\n  j: \"tab\\there\"\n  k: \"  indented\\nsecond\"\n  \"n\": \"1.0\"\n",
        long.trim()
    );
    let dir = tree(&[
        (
            "kustomization.yaml",
            "resources:\n- cm.yaml\n- deploy.yaml\nnamePrefix: p-\ncommonLabels: {app: web}\n",
        ),
        ("cm.yaml", &config_map),
        ("deploy.yaml", DEPLOYMENT),
    ]);
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let want = String::from_utf8(output.stdout).unwrap();
    let got = to_yaml(&build(dir.path(), &defaults()).unwrap()).unwrap();
    assert_eq!(got, want);
}

#[test]
fn unquoted_scalars_are_typed_as_kustomize_types_them() {
    // `0644` is an octal file mode (420), `1_000` is 1000, dates become RFC 3339 strings: what
    // kubectl prints, and what `kubectl apply` then sends.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  volumes:\n  - name: v\n    secret:\n      secretName: s\n      defaultMode: 0644\n  containers:\n  - name: c\n    image: i\n    ports:\n    - containerPort: 0x50\n";
    let files = [
        ("kustomization.yaml", "resources: [pod.yaml, cm.yaml]\n"),
        ("pod.yaml", pod),
        (
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p\ndata:\n  a: 2001-12-14\n  b: 2001-12-14T21:59:43.10-05:00\n  c: yes\n  d: on\n  e: ~\n  f: 0b101\n  g: -0644\n  h: 09\n  i: 1_0\n  j: 0x_1F\n  k: +0x1F\n  l: 1.0\n  m: 1e21\n  n: 1.5e-7\n  p: 123456789012345678901234\n  q: -0\n  r: 0.0\n  s: 3.0e+2\n  t: 0o\n  u: 1__2\n  v: _1\n  w: 1.\n  x: \"0644\"\n  y: '0644'\n",
        ),
    ];
    let got = same_output(&files, "", &defaults());
    assert_eq!(
        got[1]["spec"]["volumes"][0]["secret"]["defaultMode"],
        Value::from(420)
    );
    let dir = tree(&files);
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .unwrap();
    let printed = to_yaml(&build(dir.path(), &defaults()).unwrap()).unwrap();
    assert_eq!(printed, String::from_utf8(output.stdout).unwrap());
}

/// An in-memory top-level kustomization builds what the same text on disk builds, reads
/// nothing but the files it names, and leaves the tree untouched.
#[test]
fn a_top_kustomization_given_in_memory_replaces_the_file_on_disk() {
    let on_disk = "resources:\n- cm.yaml\n";
    let overlay = "resources:\n- cm.yaml\nnamespace: apps\nnamePrefix: team-\n";
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n";
    let shared = tree(&[("app/kustomization.yaml", on_disk), ("app/cm.yaml", cm)]);
    let written = tree(&[("app/kustomization.yaml", overlay), ("app/cm.yaml", cm)]);
    let options = BuildOptions {
        top_kustomization: Some(overlay.to_owned()),
        ..BuildOptions::default()
    };
    let in_memory = build(&shared.path().join("app"), &options).unwrap();
    let expected = build(&written.path().join("app"), &BuildOptions::default()).unwrap();
    assert_eq!(to_yaml(&in_memory).unwrap(), to_yaml(&expected).unwrap());
    assert!(to_yaml(&in_memory).unwrap().contains("name: team-settings"));
    assert_eq!(
        std::fs::read_to_string(shared.path().join("app/kustomization.yaml")).unwrap(),
        on_disk
    );
    // Also for a directory without a kustomization file.
    let bare = tree(&[("app/cm.yaml", cm)]);
    let in_memory = build(&bare.path().join("app"), &options).unwrap();
    assert_eq!(to_yaml(&in_memory).unwrap(), to_yaml(&expected).unwrap());
    assert!(!bare.path().join("app/kustomization.yaml").exists());
}
