//! The `ferroflux-kustomize` binary: what a person at a terminal (or a script) sees.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::Value;

/// The corpus case whose directory name is `NNN-<name>`.
fn corpus_case(name: &str) -> PathBuf {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let suffix = format!("-{name}");
    std::fs::read_dir(&corpus)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with(&suffix)
        })
        .unwrap_or_else(|| panic!("no corpus case named *{suffix}"))
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflux-kustomize"))
        .args(args)
        .output()
        .unwrap()
}

fn build(dir: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["build".as_ref(), dir.as_os_str()];
    args.extend(extra.iter().map(|arg| std::ffi::OsStr::new(*arg)));
    run(&args)
}

fn objects(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).unwrap();
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

fn kind_and_name(object: &Value) -> (String, String) {
    (
        object["kind"].as_str().unwrap().to_string(),
        object["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

#[test]
fn build_prints_the_yaml_stream_on_stdout() {
    let output = build(&corpus_case("prefix-basic"), &[]);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "nothing on stderr when all is well"
    );
    let objects = objects(&output.stdout);
    let names: Vec<(String, String)> = objects.iter().map(kind_and_name).collect();
    assert_eq!(
        names,
        [
            ("Service".to_string(), "prod-web".to_string()),
            ("Deployment".to_string(), "prod-web".to_string()),
        ]
    );
}

#[test]
fn a_bad_kustomization_fails_with_the_file_named_on_stderr() {
    let output = build(&corpus_case("error-missing-resource-file"), &[]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no partial output on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.yaml"), "stderr: {stderr}");
}

#[test]
fn the_load_restrictor_flag_allows_files_outside_the_root() {
    let case = corpus_case("error-resource-file-outside-root");

    let refused = build(&case, &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("shared.yaml"), "stderr: {stderr}");

    let refused_too = build(&case, &["--load-restrictor", "LoadRestrictionsRootOnly"]);
    assert!(!refused_too.status.success());

    let allowed = build(&case, &["--load-restrictor", "LoadRestrictionsNone"]);
    assert!(
        allowed.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let names: Vec<(String, String)> = objects(&allowed.stdout).iter().map(kind_and_name).collect();
    assert_eq!(names, [("ConfigMap".to_string(), "shared".to_string())]);
}

#[test]
fn an_unknown_load_restrictor_is_a_usage_error() {
    let output = build(
        &corpus_case("prefix-basic"),
        &["--load-restrictor", "Anything"],
    );
    assert_eq!(output.status.code(), Some(2), "clap's usage-error status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LoadRestrictionsNone"),
        "lists the valid values: {stderr}"
    );
}

#[test]
fn help_describes_the_build_command() {
    let output = run(&["--help".as_ref()]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("build"));

    let output = run(&["build".as_ref(), "--help".as_ref()]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--load-restrictor"), "{help}");
    assert!(help.contains("LoadRestrictionsRootOnly"), "{help}");
}

#[test]
fn a_directory_without_kustomization_needs_the_flux_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  a: b\n",
    )
    .unwrap();

    let refused = build(dir.path(), &[]);
    assert!(!refused.status.success(), "like kubectl kustomize");

    let generated = build(dir.path(), &["--generate-missing-kustomization"]);
    assert!(
        generated.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let names: Vec<(String, String)> = objects(&generated.stdout)
        .iter()
        .map(kind_and_name)
        .collect();
    assert_eq!(names, [("ConfigMap".to_string(), "plain".to_string())]);
}
