//! A patch whose target picks nothing: ignored like `kubectl kustomize` by default, a clear
//! error naming the kustomization when asked for.
#![allow(clippy::unwrap_used)]

use ferroflux_kustomize::{BuildOptions, build};

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n- cm.yaml\npatches:\n- target:\n    kind: Deployment\n    name: web\n  patch: |-\n    - op: add\n      path: /metadata/labels/x\n      value: y\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: b\n",
    )
    .unwrap();
    dir
}

#[test]
fn an_unmatched_patch_target_is_ignored_by_default_like_kubectl() {
    let dir = tree();
    let resources = build(dir.path(), &BuildOptions::default()).unwrap();
    assert_eq!(resources.len(), 1);
    let status = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .unwrap()
        .status;
    assert!(status.success(), "kubectl kustomize accepts it too");
}

#[test]
fn an_unmatched_patch_target_is_an_error_when_asked_for() {
    let dir = tree();
    let options = BuildOptions {
        fail_on_unmatched_patch_target: true,
        ..BuildOptions::default()
    };
    let message = build(dir.path(), &options).unwrap_err().to_string();
    assert!(message.contains("kustomization.yaml"), "{message}");
    assert!(message.contains("matches no resource"), "{message}");
    assert!(message.contains("kind: Deployment"), "{message}");
}
