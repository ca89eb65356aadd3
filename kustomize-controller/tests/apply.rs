//! Server-side apply and prune against a real API server: the actions reported, zero writes
//! when nothing drifted, CRDs and Namespaces applied before what needs them, the per-object
//! `ssa`/`force`/`prune` annotations, immutable fields, drift made by another field manager,
//! and errors that name every failed object.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kustomize_controller::api::v1::DriftIgnoreRule;
use kustomize_controller::apply::{
    Action, ApiCache, ApplyError, ApplyOptions, ChangeSet, DeleteOptions, IgnoreRule,
    ManagerOptions, Owner, ResourceManager,
};
use kustomize_controller::object_ref::ObjectRef;
use serde_json::{Value, json};

const FIELD_MANAGER: &str = "kustomize-controller";

/// A test namespace and a manager owning what it applies as the Kustomization `apps` there.
async fn setup(prefix: &str) -> Result<(e2e::TestNamespace, ResourceManager)> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace(prefix).await?;
    let manager = manager_for(&ns, "apps");
    Ok((ns, manager))
}

fn manager_for(ns: &e2e::TestNamespace, owner: &str) -> ResourceManager {
    ResourceManager::new(
        ns.client.clone(),
        ApiCache::new(),
        ManagerOptions::new(
            FIELD_MANAGER,
            Owner {
                name: owner.into(),
                namespace: ns.name.clone(),
            },
        ),
    )
}

fn config_map(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data})
}

fn annotated(mut object: Value, key: &str, value: &str) -> Value {
    object["metadata"]["annotations"] = json!({ key: value });
    object
}

fn reference(object: &Value) -> ObjectRef {
    ObjectRef::from_object(object).unwrap()
}

fn action_of(set: &ChangeSet, object: &Value) -> Action {
    set.get(&reference(object))
        .unwrap_or_else(|| panic!("{} not in the change set", reference(object)))
        .action
}

async fn data_of(ns: &e2e::TestNamespace, name: &str) -> Option<BTreeMap<String, String>> {
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    api.get_opt(name)
        .await
        .unwrap()
        .map(|c| c.data.unwrap_or_default())
}

#[tokio::test]
async fn objects_are_created_then_configured_then_left_unchanged() -> Result<()> {
    let (ns, manager) = setup("apply-actions").await?;
    let options = ApplyOptions::default();
    let settings = config_map(&ns.name, "settings", json!({"color": "blue"}));
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "runner", "namespace": ns.name}});

    let first = manager
        .apply_all(vec![settings.clone(), account.clone()], &options)
        .await?;
    assert_eq!(action_of(&first, &settings), Action::Created);
    assert_eq!(action_of(&first, &account), Action::Created);
    assert_eq!(
        first.summary(),
        format!(
            "ServiceAccount/{0}/runner created\nConfigMap/{0}/settings created",
            ns.name
        )
    );
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let live = api.get("settings").await?;
    let labels = live.metadata.labels.unwrap();
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/name"], "apps");
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/namespace"], ns.name);

    let changed = config_map(&ns.name, "settings", json!({"color": "green"}));
    let second = manager
        .apply_all(vec![changed.clone(), account.clone()], &options)
        .await?;
    assert_eq!(action_of(&second, &changed), Action::Configured);
    assert_eq!(action_of(&second, &account), Action::Unchanged);
    assert_eq!(
        second.summary(),
        format!("ConfigMap/{}/settings configured", ns.name)
    );
    assert_eq!(data_of(&ns, "settings").await.unwrap()["color"], "green");

    let third = manager
        .apply_all(vec![changed.clone(), account], &options)
        .await?;
    assert!(!third.has_changes(), "{third:?}");
    assert_eq!(third.summary(), "");
    assert_eq!(third.objects().len(), 2);
    ns.delete().await
}

/// 100 objects of five kinds, defaulted and server-set fields included (a Service's cluster
/// IP, a Deployment's defaults, a Secret given as `stringData`).
fn hundred_objects(ns: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    for i in 0..40 {
        objects.push(config_map(
            ns,
            &format!("config-{i}"),
            json!({"index": i.to_string()}),
        ));
    }
    for i in 0..20 {
        objects.push(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("secret-{i}"), "namespace": ns},
            "stringData": {"token": format!("t-{i}")}}));
    }
    for i in 0..15 {
        objects.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": format!("account-{i}"), "namespace": ns}}));
    }
    for i in 0..15 {
        objects.push(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("service-{i}"), "namespace": ns},
            "spec": {"selector": {"app": format!("app-{i}")}, "ports": [{"port": 80, "targetPort": 8080}]}}));
    }
    for i in 0..10 {
        objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{i}"), "namespace": ns},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                     "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}));
    }
    objects
}

/// What only our writes change, for every object we own in the namespace, by kind and name:
/// the resourceVersion, or for Deployments their generation and the managed fields of every
/// manager but kube-controller-manager.
async fn resource_versions(ns: &e2e::TestNamespace) -> Result<BTreeMap<String, String>> {
    let selector = "kustomize.toolkit.fluxcd.io/name=apps";
    let mut versions = BTreeMap::new();
    for (group, version, kind, plural) in [
        ("", "v1", "ConfigMap", "configmaps"),
        ("", "v1", "Secret", "secrets"),
        ("", "v1", "ServiceAccount", "serviceaccounts"),
        ("", "v1", "Service", "services"),
        ("apps", "v1", "Deployment", "deployments"),
    ] {
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &resource);
        for object in api.list(&ListParams::default().labels(selector)).await? {
            let name = object.metadata.name.clone().unwrap();
            // On a full control plane kube-controller-manager writes Deployments too (status,
            // the revision annotation): their version is what every other manager wrote.
            let version = if kind == "Deployment" {
                let ours: Vec<_> = object
                    .metadata
                    .managed_fields
                    .iter()
                    .flatten()
                    .filter(|entry| entry.manager.as_deref() != Some("kube-controller-manager"))
                    .collect();
                format!(
                    "generation {:?}, managers {}",
                    object.metadata.generation,
                    serde_json::to_string(&ours).unwrap()
                )
            } else {
                object.metadata.resource_version.unwrap()
            };
            versions.insert(format!("{kind}/{name}"), version);
        }
    }
    Ok(versions)
}

#[tokio::test]
async fn a_reapply_without_drift_of_100_objects_writes_nothing() -> Result<()> {
    let (ns, manager) = setup("apply-no-drift").await?;
    let options = ApplyOptions::default();
    let objects = hundred_objects(&ns.name);
    let first = manager.apply_all(objects.clone(), &options).await?;
    assert_eq!(first.entries.len(), 100);
    assert!(first.entries.iter().all(|c| c.action == Action::Created));
    let before = resource_versions(&ns).await?;
    assert_eq!(before.len(), 100);

    let mut timings = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let again = manager.apply_all(objects.clone(), &options).await?;
        timings.push(started.elapsed());
        let changed: Vec<_> = again
            .entries
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .collect();
        assert!(changed.is_empty(), "expected no changes, got {changed:?}");
    }
    let after = resource_versions(&ns).await?;
    assert_eq!(
        before, after,
        "a no-drift reapply must not write any object"
    );
    let best = timings.iter().min().unwrap();
    println!("no-drift reapply of 100 objects: {timings:?} (best {best:?})");
    assert!(
        *best < Duration::from_secs(1),
        "no-drift reapply took {best:?}"
    );

    // One object drifts: exactly that one is written.
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    api.patch(
        "config-7",
        &edit,
        &Patch::Merge(json!({"data": {"index": "edited"}})),
    )
    .await?;
    let edited = resource_versions(&ns).await?;
    let set = manager.apply_all(objects.clone(), &options).await?;
    let changed: Vec<_> = set
        .entries
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].object.name, "config-7");
    assert_eq!(changed[0].action, Action::Configured);
    assert_eq!(data_of(&ns, "config-7").await.unwrap()["index"], "7");
    let written: Vec<_> = resource_versions(&ns)
        .await?
        .into_iter()
        .filter(|(name, version)| edited.get(name) != Some(version))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(written, ["ConfigMap/config-7"]);
    ns.delete().await
}

#[tokio::test]
async fn a_crd_and_its_custom_resource_apply_in_one_go() -> Result<()> {
    let (ns, manager) = setup("apply-crd").await?;
    let group = format!("{}.apply.ferroflux.test", ns.name);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    });
    let gadget = json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
                        "metadata": {"name": "g1", "namespace": ns.name}, "spec": {"size": 3}});
    let options = ApplyOptions {
        force: false,
        crd_wait_timeout: Duration::from_secs(30),
        ..ApplyOptions::default()
    };

    // The custom resource comes first in the input: staging puts the CRD before it.
    let set = manager
        .apply_all(vec![gadget.clone(), crd.clone()], &options)
        .await?;
    assert_eq!(action_of(&set, &crd), Action::Created);
    assert_eq!(action_of(&set, &gadget), Action::Created);
    assert_eq!(set.entries[0].object.kind, "CustomResourceDefinition");

    let resource = ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &resource);
    assert_eq!(api.get("g1").await?.data["spec"]["size"], 3);

    let again = manager
        .apply_all(vec![crd.clone(), gadget], &options)
        .await?;
    assert!(!again.has_changes(), "{again:?}");

    let crds: Api<CustomResourceDefinition> = Api::all(ns.client.clone());
    crds.delete(&format!("gadgets.{group}"), &DeleteParams::background())
        .await?;
    ns.delete().await
}

#[tokio::test]
async fn a_namespace_and_an_object_in_it_apply_in_one_go() -> Result<()> {
    let (ns, manager) = setup("apply-namespace").await?;
    let created = format!("{}-app", ns.name);
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": created}});
    let settings = config_map(&created, "settings", json!({"a": "1"}));

    let set = manager
        .apply_all(
            vec![settings.clone(), namespace.clone()],
            &ApplyOptions::default(),
        )
        .await?;
    assert_eq!(action_of(&set, &namespace), Action::Created);
    assert_eq!(action_of(&set, &settings), Action::Created);
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &created);
    assert!(api.get_opt("settings").await?.is_some());

    let namespaces: Api<Namespace> = Api::all(ns.client.clone());
    namespaces
        .delete(&created, &DeleteParams::background())
        .await?;
    ns.delete().await
}

/// Creates a ConfigMap the way `kubectl apply` (client-side) does: field manager
/// `kubectl-client-side-apply`, with the last-applied annotation.
async fn kubectl_created(ns: &e2e::TestNamespace, name: &str) -> Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let object: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"a\":\"1\",\"extra\":\"x\"}}"}},
        "data": {"a": "1", "extra": "x"}
    }))?;
    let params = PostParams {
        field_manager: Some("kubectl-client-side-apply".into()),
        ..PostParams::default()
    };
    api.create(&params, &object).await?;
    Ok(())
}

#[tokio::test]
async fn ssa_annotations_if_not_present_ignore_merge_and_override() -> Result<()> {
    let (ns, manager) = setup("apply-ssa").await?;
    let options = ApplyOptions::default();
    let ssa = "kustomize.toolkit.fluxcd.io/ssa";

    // IfNotPresent: created when missing, never updated afterwards.
    let once = annotated(
        config_map(&ns.name, "once", json!({"v": "1"})),
        ssa,
        "IfNotPresent",
    );
    let set = manager.apply_all(vec![once], &options).await?;
    assert_eq!(set.entries[0].action, Action::Created);
    let once = annotated(
        config_map(&ns.name, "once", json!({"v": "2"})),
        ssa,
        "IfNotPresent",
    );
    let set = manager.apply_all(vec![once], &options).await?;
    assert_eq!(set.entries[0].action, Action::Skipped);
    assert_eq!(data_of(&ns, "once").await.unwrap()["v"], "1");

    // Ignore: never applied.
    let ignored = annotated(
        config_map(&ns.name, "ignored", json!({"v": "1"})),
        ssa,
        "Ignore",
    );
    let set = manager.apply_all(vec![ignored], &options).await?;
    assert_eq!(set.entries[0].action, Action::Skipped);
    assert!(data_of(&ns, "ignored").await.is_none());

    // Override (default): kubectl's fields are taken over, so what left the source goes.
    kubectl_created(&ns, "override").await?;
    let set = manager
        .apply_all(
            vec![config_map(&ns.name, "override", json!({"a": "1"}))],
            &options,
        )
        .await?;
    assert_eq!(set.entries[0].action, Action::Configured);
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let live = api.get("override").await?;
    assert_eq!(
        live.data.unwrap(),
        BTreeMap::from([("a".to_owned(), "1".to_owned())])
    );
    let annotations = live.metadata.annotations.unwrap_or_default();
    assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    let managers: Vec<_> = live
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| m.manager.unwrap())
        .collect();
    assert_eq!(managers, [FIELD_MANAGER]);

    // Merge: kubectl keeps the fields it added.
    kubectl_created(&ns, "merge").await?;
    let merge = annotated(
        config_map(&ns.name, "merge", json!({"a": "1"})),
        ssa,
        "Merge",
    );
    let set = manager.apply_all(vec![merge], &options).await?;
    assert_eq!(set.entries[0].action, Action::Configured);
    let data = data_of(&ns, "merge").await.unwrap();
    assert_eq!(data.get("extra").map(String::as_str), Some("x"));
    ns.delete().await
}

#[tokio::test]
async fn immutable_changes_fail_without_force_and_recreate_with_it() -> Result<()> {
    let (ns, manager) = setup("apply-immutable").await?;
    let frozen = |name: &str, value: &str| {
        let mut object = config_map(&ns.name, name, json!({"v": value}));
        object["immutable"] = json!(true);
        object
    };
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    manager
        .apply_all(
            vec![frozen("frozen", "1"), frozen("annotated", "1")],
            &ApplyOptions::default(),
        )
        .await?;
    let old_uid = api.get("frozen").await?.metadata.uid;

    let error = manager
        .apply_all(vec![frozen("frozen", "2")], &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_immutable(), "{error}");
    assert_eq!(error.object().unwrap().name, "frozen");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "ConfigMap/{}/frozen dry-run failed (Invalid): ",
            ns.name
        )),
        "{message}"
    );
    assert!(message.contains("immutable"), "{message}");
    assert_eq!(data_of(&ns, "frozen").await.unwrap()["v"], "1");

    let forced = ApplyOptions {
        force: true,
        ..ApplyOptions::default()
    };
    let set = manager
        .apply_all(vec![frozen("frozen", "2")], &forced)
        .await?;
    assert_eq!(set.entries[0].action, Action::Created);
    let live = api.get("frozen").await?;
    assert_eq!(live.data.unwrap()["v"], "2");
    assert_ne!(
        live.metadata.uid, old_uid,
        "the object must have been recreated"
    );

    // The per-object annotation forces a recreate without the option.
    let object = annotated(
        frozen("annotated", "2"),
        "kustomize.toolkit.fluxcd.io/force",
        "enabled",
    );
    let set = manager
        .apply_all(vec![object], &ApplyOptions::default())
        .await?;
    assert_eq!(set.entries[0].action, Action::Created);
    assert_eq!(data_of(&ns, "annotated").await.unwrap()["v"], "2");
    ns.delete().await
}

#[tokio::test]
async fn a_change_by_another_field_manager_is_reverted() -> Result<()> {
    let (ns, manager) = setup("apply-drift").await?;
    let options = ApplyOptions::default();
    let desired = config_map(&ns.name, "settings", json!({"color": "blue"}));
    manager.apply_all(vec![desired.clone()], &options).await?;

    // A `kubectl edit`: a new value for our field and a field of its own.
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    api.patch(
        "settings",
        &edit,
        &Patch::Merge(json!({"data": {"color": "red", "debug": "true"}})),
    )
    .await?;
    // Another controller's change to a field that is not in the source stays.
    let other = PatchParams {
        field_manager: Some("sidecar-injector".into()),
        ..PatchParams::default()
    };
    api.patch(
        "settings",
        &other,
        &Patch::Merge(json!({"metadata": {"annotations": {"injected": "yes"}}})),
    )
    .await?;

    let set = manager.apply_all(vec![desired.clone()], &options).await?;
    assert_eq!(action_of(&set, &desired), Action::Configured);
    let live = api.get("settings").await?;
    assert_eq!(
        live.data.unwrap(),
        BTreeMap::from([("color".to_owned(), "blue".to_owned())])
    );
    assert_eq!(live.metadata.annotations.unwrap()["injected"], "yes");

    let set = manager.apply_all(vec![desired.clone()], &options).await?;
    assert_eq!(action_of(&set, &desired), Action::Unchanged);
    ns.delete().await
}

fn web_deployment(ns: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}
            }
        }
    })
}

async fn replicas_and_image(api: &Api<Deployment>) -> Result<(i32, String)> {
    let live = api.get("web").await?;
    let spec = live.spec.unwrap();
    let image = spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    Ok((spec.replicas.unwrap(), image))
}

#[tokio::test]
async fn drift_ignore_rules_leave_an_autoscaled_replica_count_alone() -> Result<()> {
    let (ns, manager) = setup("apply-ignore").await?;
    let api: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let rule: DriftIgnoreRule = serde_json::from_value(json!({
        "paths": ["/spec/replicas"],
        "target": {"kind": "Deployment", "name": "web"}
    }))?;
    let ignoring = ApplyOptions {
        ignore: IgnoreRule::compile_all(&[rule]).map_err(anyhow::Error::msg)?,
        ..ApplyOptions::default()
    };

    // Created as the source says, replicas included.
    let v1 = web_deployment(&ns.name, 2, "web:1");
    let set = manager.apply_all(vec![v1.clone()], &ignoring).await?;
    assert_eq!(action_of(&set, &v1), Action::Created);
    assert_eq!(replicas_and_image(&api).await?, (2, "web:1".to_owned()));

    // Nobody else touched the count: the rule does not reset it to the default either.
    let set = manager.apply_all(vec![v1.clone()], &ignoring).await?;
    assert_eq!(action_of(&set, &v1), Action::Unchanged);
    assert_eq!(replicas_and_image(&api).await?, (2, "web:1".to_owned()));

    // An autoscaler scales through the scale subresource.
    let autoscaler = PatchParams {
        field_manager: Some("autoscaler".into()),
        ..PatchParams::default()
    };
    api.patch_scale(
        "web",
        &autoscaler,
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await?;

    // Not drift; and a real change (the image) is applied without touching the count.
    let set = manager.apply_all(vec![v1.clone()], &ignoring).await?;
    assert_eq!(action_of(&set, &v1), Action::Unchanged);
    let v2 = web_deployment(&ns.name, 2, "web:2");
    let set = manager.apply_all(vec![v2.clone()], &ignoring).await?;
    assert_eq!(action_of(&set, &v2), Action::Configured);
    assert_eq!(replicas_and_image(&api).await?, (5, "web:2".to_owned()));

    // Without the rule the source's count wins again.
    let set = manager
        .apply_all(vec![v2.clone()], &ApplyOptions::default())
        .await?;
    assert_eq!(action_of(&set, &v2), Action::Configured);
    assert_eq!(replicas_and_image(&api).await?, (2, "web:2".to_owned()));
    ns.delete().await
}

#[tokio::test]
async fn prune_honours_prune_disabled_and_owner_labels() -> Result<()> {
    let (ns, manager) = setup("apply-prune").await?;
    let gone = config_map(&ns.name, "gone", json!({}));
    let kept = annotated(
        config_map(&ns.name, "kept", json!({})),
        "kustomize.toolkit.fluxcd.io/prune",
        "disabled",
    );
    let adopted = config_map(&ns.name, "adopted", json!({}));
    manager
        .apply_all(
            vec![gone.clone(), kept.clone(), adopted.clone()],
            &ApplyOptions::default(),
        )
        .await?;
    // Another Kustomization claims one of the objects.
    manager_for(&ns, "other")
        .apply_all(vec![adopted.clone()], &ApplyOptions::default())
        .await?;
    let missing = config_map(&ns.name, "never-existed", json!({}));

    let refs: Vec<_> = [&gone, &kept, &adopted, &missing]
        .into_iter()
        .map(reference)
        .collect();
    let set = manager.delete_all(&refs, &DeleteOptions::default()).await?;
    assert_eq!(action_of(&set, &gone), Action::Deleted);
    assert_eq!(action_of(&set, &kept), Action::Skipped);
    assert_eq!(action_of(&set, &adopted), Action::Skipped);
    assert_eq!(action_of(&set, &missing), Action::Deleted);

    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    assert!(api.get_opt("kept").await?.is_some());
    assert!(api.get_opt("adopted").await?.is_some());
    // Deletion is asynchronous only with finalizers; a ConfigMap is gone at once.
    assert!(api.get_opt("gone").await?.is_none());
    ns.delete().await
}

#[tokio::test]
async fn a_failing_stage_names_every_failed_object_and_writes_nothing() -> Result<()> {
    let (ns, manager) = setup("apply-errors").await?;
    let unknown = json!({"apiVersion": "nothing.ferroflux.test/v1", "kind": "Widget",
                         "metadata": {"name": "w", "namespace": ns.name}});
    let invalid = json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "bad", "namespace": ns.name},
                         "spec": {"ports": [{"port": 70000}]}});
    let core = json!({"apiVersion": "v1", "kind": "Gizmo",
                      "metadata": {"name": "g", "namespace": ns.name}});
    let fine = config_map(&ns.name, "fine", json!({"a": "1"}));

    let error = manager
        .apply_all(vec![unknown, invalid, core, fine], &ApplyOptions::default())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ApplyError::Many { .. }), "{message}");
    assert!(
        message.contains(&format!(
            "Widget/{}/w dry-run failed: no matches for kind \"Widget\" in version \"nothing.ferroflux.test/v1\"",
            ns.name
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "Service/{}/bad dry-run failed (Invalid): ",
            ns.name
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "Gizmo/{}/g dry-run failed: no matches for kind \"Gizmo\" in version \"v1\"",
            ns.name
        )),
        "{message}"
    );
    assert_eq!(message.lines().count(), 3, "{message}");
    assert_eq!(error.objects().len(), 3);
    assert!(!error.is_immutable());
    assert!(
        data_of(&ns, "fine").await.is_none(),
        "nothing of a failed stage is written"
    );

    let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    let error = manager
        .apply_all(
            vec![config_map(&ns.name, "x", json!({})), nameless],
            &ApplyOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "object 2 of the build is not a Kubernetes object: missing metadata.name"
    );
    ns.delete().await
}
