//! Generator tests. Every expected name and value below was printed by `kubectl kustomize`
//! (kustomize v5.5.0) for the kustomization quoted in the test, with the same file contents.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use serde_yaml::Value;

use super::*;

/// Files held in memory, as a kustomization root would hold them.
#[derive(Default)]
struct Files(HashMap<String, Vec<u8>>);

impl Files {
    fn with(mut self, path: &str, content: &[u8]) -> Self {
        self.0.insert(path.to_string(), content.to_vec());
        self
    }
}

impl FileSource for Files {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, FileSourceError> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| format!("{path}: no such file").into())
    }
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

fn cm_args(text: &str) -> ConfigMapArgs {
    serde_yaml::from_str(text).unwrap()
}

fn secret_args(text: &str) -> SecretArgs {
    serde_yaml::from_str(text).unwrap()
}

/// Generates, hashes, and strips the build annotations: what `kubectl kustomize` prints for a
/// kustomization with only these generators.
fn build(resources: &mut [Resource]) -> Vec<Value> {
    apply_hash_suffixes(resources).unwrap();
    crate::transform::strip_build_annotations(resources);
    resources.iter().map(|r| r.value.clone()).collect()
}

#[test]
fn literals_envs_and_files_give_kustomize_data_and_hash() {
    // configMapGenerator:
    // - name: cm
    //   literals: [a=b, q="quoted", s='single', e=, eq=x=y]
    //   envs: [a.env]
    //   files: [f.txt, key2=f.txt]
    // secretGenerator:
    // - name: sec
    //   literals: [a=b]
    //   type: kubernetes.io/tls
    let files = Files::default()
        .with("a.env", b"X=1\n# comment\n\n   Y = 2\nHOME\nZ=\"q\"\n")
        .with("f.txt", b"hello <&>\n");
    let cm = generate_config_map(
        &cm_args(
            r#"
name: cm
literals: [a=b, 'q="quoted"', "s='single'", e=, eq=x=y]
envs: [a.env]
files: [f.txt, key2=f.txt]
"#,
        ),
        None,
        &files,
    )
    .unwrap();
    let secret = generate_secret(
        &secret_args("{name: sec, literals: [a=b], type: kubernetes.io/tls}"),
        None,
        &files,
    )
    .unwrap();
    let out = build(&mut [cm, secret]);
    assert_eq!(
        out[0],
        yaml(
            r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-d644kf9hd4
data:
  HOME: ""
  X: "1"
  'Y ': ' 2'
  Z: '"q"'
  a: b
  e: ""
  eq: x=y
  f.txt: "hello <&>\n"
  key2: "hello <&>\n"
  q: quoted
  s: single
"#
        )
    );
    assert_eq!(
        out[1],
        yaml(
            r#"
apiVersion: v1
kind: Secret
metadata:
  name: sec-92982c4m8f
type: kubernetes.io/tls
data:
  a: Yg==
"#
        )
    );
}

#[test]
fn binary_content_goes_to_binary_data_and_secrets_are_base64() {
    // configMapGenerator:
    // - {name: bin, files: [bin.dat, text=d/a]}
    // - {name: envs, envs: [crlf.env, bom.env]}
    // secretGenerator:
    // - {name: sbin, files: [bin.dat]}
    let files = Files::default()
        .with("bin.dat", b"\xff\xfe\x00bin")
        .with("d/a", b"one")
        .with("crlf.env", b"A=1\r\nB=2\r\n=skip\n")
        .with("bom.env", b"\xef\xbb\xbfBOM=1\n");
    let bin = generate_config_map(
        &cm_args("{name: bin, files: [bin.dat, text=d/a]}"),
        None,
        &files,
    )
    .unwrap();
    let envs = generate_config_map(
        &cm_args("{name: envs, envs: [crlf.env, bom.env]}"),
        None,
        &files,
    )
    .unwrap();
    let sbin =
        generate_secret(&secret_args("{name: sbin, files: [bin.dat]}"), None, &files).unwrap();
    let out = build(&mut [bin, envs, sbin]);
    assert_eq!(
        out[0],
        yaml(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: bin-552hgcg2dd}
binaryData: {bin.dat: //4AYmlu}
data: {text: one}
"#
        )
    );
    assert_eq!(
        out[1],
        yaml(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: envs-g9bm7t9gg8}
data: {A: "1", B: "2", BOM: "1"}
"#
        )
    );
    assert_eq!(
        out[2],
        yaml(
            r#"
apiVersion: v1
kind: Secret
metadata: {name: sbin-c2fbkg7c88}
type: Opaque
data: {bin.dat: //4AYmlu}
"#
        )
    );
}

#[test]
fn empty_generator_hashes_missing_data_as_empty_string() {
    // configMapGenerator: [{name: a, literals: []}]
    let cm =
        generate_config_map(&cm_args("{name: a, literals: []}"), None, &Files::default()).unwrap();
    let out = build(&mut [cm]);
    assert_eq!(
        out[0],
        yaml("{apiVersion: v1, kind: ConfigMap, metadata: {name: a-6ct58987ht}}")
    );
}

#[test]
fn options_merge_with_generator_options_and_the_name_does_not_change_the_hash() {
    // namePrefix: p-
    // generatorOptions: {labels: {g: "1", both: global}, annotations: {ga: x}, immutable: true}
    // configMapGenerator:
    // - {name: cm, namespace: ns1, literals: [a=1, b=2], options: {labels: {both: local, l: "2"}}}
    // - {name: cm2, literals: [a=1], options: {disableNameSuffixHash: true}}
    // secretGenerator:
    // - {name: s, type: kubernetes.io/tls, literals: [k=v]}
    let global: GeneratorOptions = serde_yaml::from_str(
        r#"{labels: {g: "1", both: global}, annotations: {ga: x}, immutable: true}"#,
    )
    .unwrap();
    let files = Files::default();
    let mut resources = vec![
        generate_config_map(
            &cm_args(
                r#"{name: cm, namespace: ns1, literals: [a=1, b=2], options: {labels: {both: local, l: "2"}}}"#,
            ),
            Some(&global),
            &files,
        )
        .unwrap(),
        generate_config_map(
            &cm_args("{name: cm2, literals: [a=1], options: {disableNameSuffixHash: true}}"),
            Some(&global),
            &files,
        )
        .unwrap(),
        generate_secret(
            &secret_args("{name: s, type: kubernetes.io/tls, literals: [k=v]}"),
            Some(&global),
            &files,
        )
        .unwrap(),
    ];
    // The prefix transformer's work, before the hash.
    for r in &mut resources {
        let name = format!("p-{}", r.name());
        r.set_name(&name);
    }
    let out = build(&mut resources);
    assert_eq!(
        out[0],
        yaml(
            r#"
apiVersion: v1
kind: ConfigMap
immutable: true
metadata:
  name: p-cm-7gdc49gk6d
  namespace: ns1
  annotations: {ga: x}
  labels: {both: local, g: "1", l: "2"}
data: {a: "1", b: "2"}
"#
        )
    );
    assert_eq!(
        out[1],
        yaml(
            r#"
apiVersion: v1
kind: ConfigMap
immutable: true
metadata:
  name: p-cm2
  annotations: {ga: x}
  labels: {both: global, g: "1"}
data: {a: "1"}
"#
        )
    );
    assert_eq!(
        out[2],
        yaml(
            r#"
apiVersion: v1
kind: Secret
immutable: true
metadata:
  name: p-s-8d9db26b4d
  annotations: {ga: x}
  labels: {both: global, g: "1"}
type: kubernetes.io/tls
data: {k: dg==}
"#
        )
    );
}

#[test]
fn hash_covers_final_data_of_any_type_and_secret_string_data() {
    // base: configMapGenerator [{name: cm, literals: [a=x]}], secretGenerator [{name: s,
    // literals: [k=v]}]; overlay: namePrefix o-, a strategic merge patch setting the ConfigMap's
    // data to {a: 1, b: "<", c: true, f: 1.5, big: 12345678901234567890} and one adding
    // stringData {z: q} to the Secret. kubectl kustomize hashes the patched objects.
    let cm = yaml(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: o-cm}
data: {a: 1, b: "<", big: 12345678901234567890, c: true, f: 1.5}
"#,
    );
    assert_eq!(hash_suffix(&cm).unwrap(), "7f9t46529f");
    let secret = yaml(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: o-s}
data: {k: dg==}
stringData: {z: q}
type: Opaque
"#,
    );
    assert_eq!(hash_suffix(&secret).unwrap(), "thg42g25b9");
}

#[test]
fn go_json_encoding_of_the_hash_input() {
    let cm = yaml("{kind: ConfigMap, metadata: {name: x}, data: {k: \"<a&b>\\u2028\\t\\u0001\"}}");
    assert_eq!(
        hash::hash_input(&cm).unwrap(),
        r#"{"data":{"k":"\u003ca\u0026b\u003e\u2028\t\u0001"},"kind":"ConfigMap","name":""}"#
    );
    let secret = yaml("{kind: Secret, metadata: {name: x}}");
    assert_eq!(
        hash::hash_input(&secret).unwrap(),
        r#"{"data":"","kind":"Secret","name":"","type":""}"#
    );
    let numbers = yaml("{kind: ConfigMap, data: {a: 1e21, b: 0.0000001, c: -3, d: 2.5e-3}}");
    assert_eq!(
        hash::hash_input(&numbers).unwrap(),
        r#"{"data":{"a":1e+21,"b":1e-7,"c":-3,"d":0.0025},"kind":"ConfigMap","name":""}"#
    );
    assert!(matches!(
        hash_suffix(&yaml("{kind: Deployment}")),
        Err(HashError::UnsupportedKind { .. })
    ));
}

/// Builds the base's objects as they reach an overlay: generated, prefix `p-` applied.
fn base_with_prefix(resources: Vec<Resource>) -> Vec<Resource> {
    resources
        .into_iter()
        .map(|mut r| {
            let name = format!("p-{}", r.name());
            r.set_name(&name);
            r
        })
        .collect()
}

#[test]
fn overlay_merge_adds_and_overrides_data_and_labels_and_keeps_the_base_name() {
    // base: namePrefix p-, generatorOptions {labels: {g: "1", both: global}, annotations:
    // {ga: x}, immutable: true}, configMapGenerator [{name: cm, namespace: ns1, literals: [a=1,
    // b=2], options: {labels: {both: local, l: "2"}}}], secretGenerator [{name: s, type:
    // kubernetes.io/tls, literals: [k=v]}]
    // overlay: configMapGenerator [{name: cm, namespace: ns1, behavior: merge, literals: [b=3,
    // c=4], options: {labels: {ov: "1"}}}], secretGenerator [{name: s, behavior: merge,
    // literals: [k2=v2]}]
    let global: GeneratorOptions = serde_yaml::from_str(
        r#"{labels: {g: "1", both: global}, annotations: {ga: x}, immutable: true}"#,
    )
    .unwrap();
    let files = Files::default();
    let mut resources = base_with_prefix(vec![
        generate_config_map(
            &cm_args(
                r#"{name: cm, namespace: ns1, literals: [a=1, b=2], options: {labels: {both: local, l: "2"}}}"#,
            ),
            Some(&global),
            &files,
        )
        .unwrap(),
        generate_secret(
            &secret_args("{name: s, type: kubernetes.io/tls, literals: [k=v]}"),
            Some(&global),
            &files,
        )
        .unwrap(),
    ]);
    let cm = cm_args(
        r#"{name: cm, namespace: ns1, behavior: merge, literals: [b=3, c=4], options: {labels: {ov: "1"}}}"#,
    );
    let new = generate_config_map(&cm, None, &files).unwrap();
    add_generated(&mut resources, new, cm.behavior()).unwrap();
    let s = secret_args("{name: s, behavior: merge, literals: [k2=v2]}");
    let new = generate_secret(&s, None, &files).unwrap();
    add_generated(&mut resources, new, s.behavior()).unwrap();
    assert_eq!(resources.len(), 2);
    let out = build(&mut resources);
    assert_eq!(
        out[0],
        yaml(
            r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: p-cm-fbcmkbc66h
  namespace: ns1
  annotations: {ga: x}
  labels: {both: local, g: "1", l: "2", ov: "1"}
data: {a: "1", b: "3", c: "4"}
"#
        )
    );
    // The merged Secret takes the overlay's type (Opaque) and loses `immutable`, as kustomize's
    // does.
    assert_eq!(
        out[1],
        yaml(
            r#"
apiVersion: v1
kind: Secret
metadata:
  name: p-s-ht56dm7k69
  annotations: {ga: x}
  labels: {both: global, g: "1"}
type: Opaque
data: {k: dg==, k2: djI=}
"#
        )
    );
}

#[test]
fn hash_suffix_survives_a_merge_or_replace_only_when_both_sides_want_it() {
    // base: configMapGenerator a, b (hashed), c, d (disableNameSuffixHash), all literals [x=1];
    // overlay: a merge+disable, b merge, c merge, d merge+disable, all literals [y=1]; then the
    // same with behavior replace.
    let files = Files::default();
    for (behavior, b_name) in [("merge", "b-fgf5997h84"), ("replace", "b-hg5cf977tt")] {
        let mut resources: Vec<Resource> = ["a", "b", "c", "d"]
            .iter()
            .map(|name| {
                let disable = matches!(*name, "c" | "d");
                let args = cm_args(&format!(
                    "{{name: {name}, literals: [x=1], options: {{disableNameSuffixHash: {disable}}}}}"
                ));
                generate_config_map(&args, None, &files).unwrap()
            })
            .collect();
        for name in ["a", "b", "c", "d"] {
            let disable = matches!(name, "a" | "d");
            let args = cm_args(&format!(
                "{{name: {name}, behavior: {behavior}, literals: [y=1], options: {{disableNameSuffixHash: {disable}}}}}"
            ));
            let new = generate_config_map(&args, None, &files).unwrap();
            add_generated(&mut resources, new, args.behavior()).unwrap();
        }
        let names: Vec<String> = build(&mut resources)
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a", b_name, "c", "d"], "behavior {behavior}");
    }
}

#[test]
fn merge_into_a_plain_object_keeps_its_metadata_and_merges_binary_data() {
    // base: resources [cm.yaml] (ConfigMap plain in namespace default, labels {keep: "1"},
    // annotations {ann: "1"}, binaryData {x: AA==}, immutable: true)
    // overlay: configMapGenerator [{name: plain, behavior: merge, files: [b.bin] (one byte
    // 0xff), options: {labels: {new: "2"}}}]
    let base = || {
        vec![Resource::new(
            yaml(
                r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: plain
  namespace: default
  labels: {keep: "1"}
  annotations: {ann: "1"}
binaryData: {x: AA==}
immutable: true
"#,
            ),
            "cm.yaml",
        )]
    };
    let files = Files::default().with("b.bin", b"\xff");
    let mut expected = yaml(
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: plain
  namespace: default
  labels: {keep: "1", new: "2"}
  annotations: {ann: "1"}
binaryData: {b.bin: /w==, x: AA==}
"#,
    );
    for behavior in ["merge", "replace"] {
        let args = cm_args(&format!(
            "{{name: plain, behavior: {behavior}, files: [b.bin], options: {{labels: {{new: \"2\"}}}}}}"
        ));
        let mut resources = base();
        let new = generate_config_map(&args, None, &files).unwrap();
        add_generated(&mut resources, new, args.behavior()).unwrap();
        if behavior == "replace" {
            expected["binaryData"] = yaml("{b.bin: /w==}");
        }
        assert_eq!(build(&mut resources), [expected.clone()], "{behavior}");
        assert_eq!(resources[0].origin, "cm.yaml");
    }
}

#[test]
fn behavior_errors_name_the_object() {
    let files = Files::default();
    let args = cm_args("{name: a, literals: [x=1]}");
    let mut resources = vec![generate_config_map(&args, None, &files).unwrap()];
    // A second `create` of the same id.
    let again = generate_config_map(&args, None, &files).unwrap();
    let err = add_generated(&mut resources, again, Behavior::Create).unwrap_err();
    assert!(matches!(err, GeneratorError::AlreadyExists { .. }));
    assert_eq!(
        err.to_string(),
        "ConfigMap/a exists; behavior must be merge or replace"
    );
    // A merge of something that is not there (another namespace).
    let other = cm_args("{name: a, namespace: other, behavior: merge, literals: [y=1]}");
    let new = generate_config_map(&other, None, &files).unwrap();
    let err = add_generated(&mut resources, new, other.behavior()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ConfigMap/a in namespace other does not exist; cannot merge or replace"
    );
    // An unknown behavior is `create`, as kustomize treats it.
    assert_eq!(Behavior::parse(Some("bogus")), Behavior::Create);
}

#[test]
fn source_errors_match_kustomize() {
    let files = Files::default().with("f", b"x");
    let err = |text: &str| generate_config_map(&cm_args(text), None, &files).unwrap_err();
    assert!(matches!(
        err("{literals: [x=1]}"),
        GeneratorError::MissingName { .. }
    ));
    for literal in ["=1", "noeq"] {
        assert_eq!(
            err(&format!("{{name: a, literals: ['{literal}']}}")).to_string(),
            format!("invalid literal source {literal:?}, expected key=value")
        );
    }
    assert_eq!(
        err("{name: a, literals: [a=1, a=2]}").to_string(),
        "ConfigMap a illegally repeats the key `a`"
    );
    assert_eq!(
        err("{name: a, literals: [f=1], files: [f]}").to_string(),
        "ConfigMap a illegally repeats the key `f`"
    );
    for (source, reason) in [
        ("=f", "missing key name"),
        ("k=", "missing file path"),
        ("a=b=c", "key name or file path contains '='"),
    ] {
        match err(&format!("{{name: a, files: ['{source}']}}")) {
            GeneratorError::InvalidFileSource { reason: r, .. } => assert_eq!(r, reason),
            other => panic!("{source}: {other:?}"),
        }
    }
    let missing = err("{name: a, envs: [missing.env]}");
    assert!(missing.to_string().contains("\"missing.env\""), "{missing}");
    assert!(std::error::Error::source(&missing).is_some());
    assert!(matches!(
        generate_secret(&secret_args("{name: s, files: [nope]}"), None, &files),
        Err(GeneratorError::ReadFile { path, .. }) if path == "nope"
    ));
}

#[test]
fn literal_and_env_parsing_details() {
    // Keys are not validated by kubectl kustomize v5.5: `a b`, `a/b`, `..` are accepted.
    assert_eq!(
        kv::parse_literal("a b=1").unwrap(),
        ("a b".to_string(), "1".to_string())
    );
    assert_eq!(kv::parse_literal("a=\"").unwrap().1, "\"");
    assert_eq!(kv::parse_literal("x='abc\"").unwrap().1, "'abc\"");
    assert_eq!(kv::parse_literal("x=''").unwrap().1, "");
    assert_eq!(
        kv::parse_file_source("dir/sub/f.txt").unwrap(),
        ("f.txt".to_string(), "dir/sub/f.txt".to_string())
    );
    let pairs = kv::parse_env_file(b"# c\n\n  K=v=w\nNOVALUE\n\t=x\nQ='q'", "e").unwrap();
    assert_eq!(
        pairs,
        [
            ("K".to_string(), "v=w".to_string()),
            ("NOVALUE".to_string(), String::new()),
            ("Q".to_string(), "'q'".to_string()),
        ]
    );
    assert!(matches!(
        kv::parse_env_file(b"A=1\nB=\xff\n", "e"),
        Err(GeneratorError::EnvFileNotUtf8 { line: 2, .. })
    ));
}

#[test]
fn legacy_env_is_read_after_envs_and_fields_are_strict() {
    let files = Files::default()
        .with("a.env", b"A=1\n")
        .with("b.env", b"B=2\n");
    let cm = generate_config_map(
        &cm_args("{name: c, envs: [a.env], env: b.env}"),
        None,
        &files,
    )
    .unwrap();
    assert_eq!(cm.value["data"], yaml("{A: '1', B: '2'}"));
    // kustomize v5.5 refuses these fields.
    assert!(serde_yaml::from_str::<ConfigMapArgs>("{name: a, immutable: true}").is_err());
    assert!(serde_yaml::from_str::<ConfigMapArgs>("{name: a, bogus: 1}").is_err());
    assert!(serde_yaml::from_str::<GeneratorOptions>("{fileMerge: {mode: files}}").is_err());
}

#[test]
fn overlay_merge_finds_the_base_object_by_its_previous_id_and_empty_secret_has_data() {
    // base: namespace ns1, namePrefix b-, configMapGenerator [{name: cm, literals: [a=1]}],
    // secretGenerator [{name: empty}]
    // overlay: configMapGenerator [{name: cm, behavior: merge, literals: [b=2]}] (no namespace)
    let files = Files::default();
    let mut resources = vec![
        generate_config_map(&cm_args("{name: cm, literals: [a=1]}"), None, &files).unwrap(),
        generate_secret(&secret_args("{name: empty}"), None, &files).unwrap(),
    ];
    // The base's namespace and prefix transformers.
    for r in &mut resources {
        crate::transform::record_previous_id(r);
        r.set_namespace("ns1");
        let name = format!("b-{}", r.name());
        r.set_name(&name);
    }
    let args = cm_args("{name: cm, behavior: merge, literals: [b=2]}");
    let new = generate_config_map(&args, None, &files).unwrap();
    add_generated(&mut resources, new, args.behavior()).unwrap();
    let out = build(&mut resources);
    assert_eq!(
        out,
        [
            yaml(
                "{apiVersion: v1, kind: ConfigMap, metadata: {name: b-cm-7gdc49gk6d, namespace: ns1}, data: {a: '1', b: '2'}}"
            ),
            yaml(
                "{apiVersion: v1, kind: Secret, metadata: {name: b-empty-46f8b28mk5, namespace: ns1}, type: Opaque, data: {}}"
            ),
        ]
    );
}

#[test]
fn long_base64_values_are_split_into_70_character_lines_like_kustomize() {
    // 51 bytes encode to 68 characters: one line, no newline.
    let short = super::kv::base64(&[b'a'; 51]);
    assert_eq!(short.len(), 68);
    assert!(!short.contains('\n'));
    // 52 bytes encode to 72 characters: 70 + 2, each line ending in a newline.
    let long = super::kv::base64(&[b'a'; 52]);
    let lines: Vec<&str> = long.split_terminator('\n').collect();
    assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), [70, 2]);
    assert!(long.ends_with('\n'));
}
