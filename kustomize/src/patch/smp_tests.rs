//! Strategic merge tests. The expected objects of the kustomize-behaviour cases are what
//! `kubectl kustomize` (v5.5) printed for the same base and patch (applied through `patches:`);
//! the Kubernetes-directive cases are what `kubectl patch --local --type strategic` printed.

use serde_yaml::Value;

use super::*;
use crate::patch::schema::PatchSchema;

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

enum Expect {
    Object(&'static str),
    Deleted,
    Error(&'static str),
}

/// Applies `patch` to `base` as kustomize's patch transformer does and compares the result.
#[track_caller]
fn check(base: &str, patch: &str, options: SmpOptions, expect: Expect) {
    let result = apply_strategic_merge(&yaml(base), &yaml(patch), &options);
    match (result, expect) {
        (Ok(Outcome::Patched(got)), Expect::Object(want)) => {
            let want = yaml(want);
            assert_eq!(
                got,
                want,
                "\ngot:\n{}\nwant:\n{}",
                serde_yaml::to_string(&got).unwrap(),
                serde_yaml::to_string(&want).unwrap()
            );
            // Lists are compared in order above; compare the printed form too so that the
            // order of list elements is certain to be checked.
            assert_eq!(
                serde_json::to_value(&got).unwrap(),
                serde_json::to_value(&want).unwrap()
            );
        }
        (Ok(Outcome::Deleted), Expect::Deleted) => {}
        (Err(error), Expect::Error(want)) => {
            let message = error.to_string();
            assert!(message.contains(want), "error {message:?} lacks {want:?}");
        }
        (Ok(outcome), _) => panic!("unexpected outcome {outcome:?}"),
        (Err(error), _) => panic!("unexpected error: {error}"),
    }
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: app
        image: app:1
        args: [serve, --port=80]
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        ports:
        - containerPort: 80
          protocol: TCP
          name: http
        - containerPort: 53
          protocol: UDP
          name: dns
        volumeMounts:
        - name: data
          mountPath: /data
      - name: sidecar
        image: sidecar:1
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - name: data
        emptyDir: {}
      - name: config
        configMap:
          name: cfg
      imagePullSecrets:
      - name: one
"#;

// ---- Cases checked against `kubectl kustomize` ----------------------------------------------

const PORTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        image: app:1
        ports:
        - containerPort: 80
          protocol: TCP
          name: http
        - containerPort: 53
          protocol: UDP
          name: dns
        - containerPort: 9090
          protocol: TCP
          name: metrics
      - name: sidecar
        image: sidecar:1
      topologySpreadConstraints:
      - topologyKey: zone
        whenUnsatisfiable: DoNotSchedule
        maxSkew: 1
      - topologyKey: host
        whenUnsatisfiable: ScheduleAnyway
        maxSkew: 2
      hostAliases:
      - ip: 10.0.0.1
        hostnames: [a]
"#;

/// Containers merge by `name`; the patch's elements come first, then the object's others.
#[test]
fn containers_merge_by_name_patch_elements_first() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: extra
        image: extra:1
      - name: app
        image: app:2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - image: extra:1
        name: extra
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:2
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `env` merges by `name`: an existing variable is updated, a new one prepended.
#[test]
fn env_merges_by_name() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        env:
        - name: C
          value: "3"
        - name: B
          value: changed
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: C
          value: "3"
        - name: B
          value: changed
        - name: A
          value: "1"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `$patch: delete` on a volume removes it; a new volume is prepended.
#[test]
fn volumes_delete_element_and_add() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      volumes:
      - name: cache
        emptyDir: {}
      - name: config
        $patch: delete
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: cache
      - emptyDir: {}
        name: data
"#,
        ),
    );
}

/// Tolerations have no merge key: the patch's list replaces the object's.
#[test]
fn tolerations_have_no_merge_key_and_are_replaced() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      tolerations:
      - key: b
        operator: Exists
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: b
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// A list of strings without a merge strategy (`args`) is replaced.
#[test]
fn args_are_replaced() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        args: [run]
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - run
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `imagePullSecrets` merges by `name`.
#[test]
fn image_pull_secrets_merge_by_name() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      imagePullSecrets:
      - name: two
      - name: one
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: two
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// Container ports merge on `containerPort` and `protocol` (list-map keys); a port given without protocol matches on the port alone.
#[test]
fn container_ports_merge_on_port_and_protocol() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        ports:
        - containerPort: 53
          protocol: TCP
          name: dns-tcp
        - containerPort: 80
          name: web
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 53
          name: dns-tcp
          protocol: TCP
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `volumeMounts` merges by `mountPath`.
#[test]
fn volume_mounts_merge_by_mount_path() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        volumeMounts:
        - name: data
          mountPath: /data
          readOnly: true
        - name: cache
          mountPath: /cache
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
          readOnly: true
        - mountPath: /cache
          name: cache
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `null` removes a scalar, a map and a list.
#[test]
fn null_removes_fields() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: null
  template:
    spec:
      imagePullSecrets: null
      containers:
      - name: app
        args: null
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `$patch: replace` replaces a map, `$patch: delete` removes it, `$patch: merge` merges.
#[test]
fn map_directives_replace_and_delete() {
    check(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {a: "1", b: "2"}
  annotations: {x: "1"}
spec:
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
  selector:
    matchLabels: {a: "1"}
"#,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    $patch: merge
    c: "3"
  annotations:
    $patch: replace
    y: "2"
spec:
  strategy:
    $patch: replace
    type: Recreate
  selector:
    $patch: delete
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    "y": "2"
  labels:
    a: "1"
    b: "2"
    c: "3"
  name: web
spec:
  strategy:
    type: Recreate
"#,
        ),
    );
}

/// A lone `{$patch: replace}` element replaces the whole list with the other elements.
#[test]
fn list_replace_directive() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - $patch: replace
      - name: only
        image: only:1
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - image: only:1
        name: only
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// A lone `{$patch: delete}` element removes the list.
#[test]
fn list_delete_directive() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      volumes:
      - $patch: delete
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
"#,
        ),
    );
}

/// `$patch: delete` at the top level deletes the object.
#[test]
fn whole_object_delete() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
$patch: delete
"#,
        SmpOptions::default(),
        Expect::Deleted,
    );
}

/// `$patch: replace` at the top level leaves the object as it was (kustomize's behaviour).
#[test]
fn whole_object_replace_changes_nothing() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
$patch: replace
spec:
  replicas: 5
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `$patch: replace` on one element of a merge list keeps the object's element (kustomize's behaviour).
#[test]
fn element_replace_directive_keeps_the_object_element() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      volumes:
      - name: config
        $patch: replace
        secret:
          secretName: s
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - configMap:
          name: cfg
        name: config
      - emptyDir: {}
        name: data
"#,
        ),
    );
}

/// `finalizers` (merge strategy, no key) is a union: the patch's values first.
#[test]
fn finalizers_union_patch_first() {
    check(
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  finalizers: [a, b, c]
data:
  k: v
"#,
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  finalizers: [d, b]
data:
  k2: v2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: v1
data:
  k: v
  k2: v2
kind: ConfigMap
metadata:
  finalizers:
  - d
  - b
  - a
  - c
  name: cm
"#,
        ),
    );
}

/// Service ports merge by `port`.
#[test]
fn service_ports_merge_by_port() {
    check(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: svc
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: https
    port: 443
    targetPort: 8443
"#,
        r#"
apiVersion: v1
kind: Service
metadata:
  name: svc
spec:
  type: NodePort
  ports:
  - port: 443
    nodePort: 30443
  - name: metrics
    port: 9090
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: v1
kind: Service
metadata:
  name: svc
spec:
  ports:
  - name: https
    nodePort: 30443
    port: 443
    targetPort: 8443
  - name: metrics
    port: 9090
  - name: http
    port: 80
    targetPort: 8080
  selector:
    app: web
  type: NodePort
"#,
        ),
    );
}

/// A custom resource has no schema: maps merge, every list is replaced.
#[test]
fn custom_resource_lists_are_replaced() {
    check(
        r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  finalizers: [a]
spec:
  items:
  - name: one
    value: 1
  - name: two
    value: 2
  settings:
    a: 1
    b: 2
"#,
        r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  finalizers: [b]
spec:
  items:
  - name: one
    value: 10
  settings:
    a: null
    c: 3
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  finalizers:
  - b
  name: w
spec:
  items:
  - name: one
    value: 10
  settings:
    b: 2
    c: 3
"#,
        ),
    );
}

/// Inside a custom resource, a map with its own built-in apiVersion and kind merges with that kind's schema.
#[test]
fn custom_resource_embedded_kind_uses_its_schema() {
    check(
        r#"
apiVersion: example.com/v1
kind: Wrapper
metadata:
  name: w
spec:
  template:
    apiVersion: apps/v1
    kind: Deployment
    spec:
      template:
        spec:
          containers:
          - name: a
            image: a:1
          - name: b
            image: b:1
"#,
        r#"
apiVersion: example.com/v1
kind: Wrapper
metadata:
  name: w
spec:
  template:
    apiVersion: apps/v1
    kind: Deployment
    spec:
      template:
        spec:
          containers:
          - name: b
            image: b:2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: example.com/v1
kind: Wrapper
metadata:
  name: w
spec:
  template:
    apiVersion: apps/v1
    kind: Deployment
    spec:
      template:
        spec:
          containers:
          - image: b:2
            name: b
          - image: a:1
            name: a
"#,
        ),
    );
}

/// An explicit null in the object that the patch does not mention stays.
#[test]
fn explicit_nulls_in_the_object_stay() {
    check(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  creationTimestamp: null
spec:
  replicas: 1
  template:
    metadata:
      creationTimestamp: null
"#,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {a: b}
spec:
  replicas: 2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    a: b
  name: web
spec:
  replicas: 2
  template:
    metadata:
      creationTimestamp: null
"#,
        ),
    );
}

/// An empty map in the patch leaves a map alone and adds an empty one where missing; an empty merge list leaves the list alone; an empty plain list replaces.
#[test]
fn empty_map_and_list_in_patch() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations: {}
    spec:
      nodeSelector: {}
      volumes: []
      containers:
      - name: app
        args: []
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    metadata:
      annotations: {}
    spec:
      containers:
      - args: []
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      nodeSelector: {}
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// A merge list the object lacks is taken from the patch, without elements marked for deletion; a repeated key keeps its last element as written.
#[test]
fn new_merge_list_drops_deleted_and_duplicate_elements() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: init:1
      - name: gone
        $patch: delete
      - name: init
        image: init:2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      initContainers:
      - image: init:2
        name: init
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// Directives inside a list without merge strategy are not interpreted (the list is copied).
#[test]
fn plain_list_keeps_directives_literally() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      tolerations:
      - key: b
        $patch: delete
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - $patch: delete
        key: b
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// An element without its merge key in the object: kustomize keeps only that element.
#[test]
fn keyless_object_element_quirk() {
    check(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: a
        image: a
      - image: keyless
      - name: b
        image: b
"#,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: b
        image: b2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - image: keyless
"#,
        ),
    );
}

/// A keyless `{$patch: delete}` next to other elements removes the object's named elements (kustomize's behaviour).
#[test]
fn keyless_delete_element_quirk() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        image: app:2
      - $patch: delete
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// `metadata.ownerReferences` merges by `uid`.
#[test]
fn owner_references_merge_by_uid() {
    check(
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  ownerReferences:
  - apiVersion: v1
    kind: Pod
    name: p1
    uid: "1"
"#,
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  ownerReferences:
  - apiVersion: v1
    kind: Pod
    name: p2
    uid: "2"
  - apiVersion: v1
    kind: Pod
    name: p1-renamed
    uid: "1"
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  ownerReferences:
  - apiVersion: v1
    kind: Pod
    name: p2
    uid: "2"
  - apiVersion: v1
    kind: Pod
    name: p1-renamed
    uid: "1"
"#,
        ),
    );
}

/// CronJob containers under jobTemplate merge by name.
#[test]
fn cronjob_nested_containers() {
    check(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cj
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: job
            image: job:1
          - name: helper
            image: helper:1
"#,
        r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cj
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: job
            image: job:2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cj
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - image: job:2
            name: job
          - image: helper:1
            name: helper
          restartPolicy: Never
  schedule: '* * * * *'
"#,
        ),
    );
}

/// An old apiVersion of a built-in kind (batch/v1beta1 CronJob) still merges by the kind's keys.
#[test]
fn old_api_version_uses_the_same_kind() {
    check(
        r#"
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: cj
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: job
            image: job:1
          - name: helper
            image: helper:1
"#,
        r#"
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: cj
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: job
            image: job:2
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: cj
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - image: job:2
            name: job
          - image: helper:1
            name: helper
"#,
        ),
    );
}

/// StatefulSet volumeClaimTemplates have no merge key: replaced.
#[test]
fn statefulset_volume_claim_templates_replaced() {
    check(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      resources:
        requests:
          storage: 1Gi
  - metadata:
      name: logs
    spec: {}
"#,
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      resources:
        requests:
          storage: 5Gi
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      resources:
        requests:
          storage: 5Gi
"#,
        ),
    );
}

/// With a target, the patch's own name and namespace do not rename the object.
#[test]
fn target_patch_keeps_name_and_namespace() {
    check(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
"#,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: anything
  namespace: elsewhere
  labels: {team: a}
spec:
  replicas: 3
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    team: a
  name: web
spec:
  replicas: 3
"#,
        ),
    );
}

/// With `allowNameChange`, the patch's name renames the object.
#[test]
fn allow_name_change() {
    check(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
"#,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: renamed
"#,
        SmpOptions {
            allow_name_change: true,
            ..SmpOptions::default()
        },
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: renamed
spec:
  replicas: 1
"#,
        ),
    );
}

/// With literal_extended_directives, `$setElementOrder`, `$deleteFromPrimitiveList` and `$retainKeys` are copied as fields (what kubectl kustomize prints).
#[test]
fn extended_directives_are_copied_like_kustomize() {
    check(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  finalizers: [f1, f2]
spec:
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1}
  template:
    spec:
      containers:
      - name: a
        image: a
      - name: b
        image: b
"#,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  $deleteFromPrimitiveList/finalizers: [f2]
spec:
  strategy:
    $retainKeys: [type]
    type: Recreate
  template:
    spec:
      $setElementOrder/containers:
      - name: b
      - name: a
"#,
        SmpOptions {
            literal_extended_directives: true,
            ..SmpOptions::default()
        },
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  $deleteFromPrimitiveList/finalizers:
  - f2
  finalizers:
  - f1
  - f2
  name: web
spec:
  strategy:
    $retainKeys:
    - type
    rollingUpdate:
      maxSurge: 1
    type: Recreate
  template:
    spec:
      $setElementOrder/containers:
      - name: b
      - name: a
      containers:
      - image: a
        name: a
      - image: b
        name: b
"#,
        ),
    );
}

/// An unknown `$patch` value is an error.
#[test]
fn unknown_directive_is_an_error() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    $patch: bogus
"#,
        SmpOptions::default(),
        Expect::Error("unknown patch strategy 'bogus'"),
    );
}

/// A map in the patch where the object has a scalar is an error.
#[test]
fn type_clash_is_an_error() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas:
    a: b
"#,
        SmpOptions::default(),
        Expect::Error("wrong node kind: expected ScalarNode but got MappingNode: node contents:"),
    );
}

/// A map in the patch where the object has a list is an error.
#[test]
fn list_where_map_expected_is_an_error() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        name: app
"#,
        SmpOptions::default(),
        Expect::Error("wrong node kind: expected SequenceNode but got MappingNode: node contents:"),
    );
}

/// With two merge keys (port and protocol), matched elements end up in the object's order after the patch's new ones.
#[test]
fn ports_with_both_keys_keep_the_object_order() {
    check(
        PORTS,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        ports:
        - containerPort: 9090
          protocol: TCP
          name: prom
        - containerPort: 8080
          protocol: TCP
          name: alt
      - name: sidecar
        ports:
        - containerPort: 7000
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - image: app:1
        name: app
        ports:
        - containerPort: 8080
          name: alt
          protocol: TCP
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        - containerPort: 9090
          name: prom
          protocol: TCP
      - image: sidecar:1
        name: sidecar
        ports:
        - containerPort: 7000
      hostAliases:
      - hostnames:
        - a
        ip: 10.0.0.1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: zone
        whenUnsatisfiable: DoNotSchedule
      - maxSkew: 2
        topologyKey: host
        whenUnsatisfiable: ScheduleAnyway
"#,
        ),
    );
}

/// topologySpreadConstraints merge on topologyKey and whenUnsatisfiable.
#[test]
fn topology_spread_constraints_merge_on_two_keys() {
    check(
        PORTS,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      topologySpreadConstraints:
      - topologyKey: host
        whenUnsatisfiable: ScheduleAnyway
        maxSkew: 5
      - topologyKey: rack
        whenUnsatisfiable: DoNotSchedule
        maxSkew: 1
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        - containerPort: 9090
          name: metrics
          protocol: TCP
      - image: sidecar:1
        name: sidecar
      hostAliases:
      - hostnames:
        - a
        ip: 10.0.0.1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: rack
        whenUnsatisfiable: DoNotSchedule
      - maxSkew: 1
        topologyKey: zone
        whenUnsatisfiable: DoNotSchedule
      - maxSkew: 5
        topologyKey: host
        whenUnsatisfiable: ScheduleAnyway
"#,
        ),
    );
}

/// hostAliases merge by ip; their hostnames (no strategy) are replaced.
#[test]
fn host_aliases_merge_by_ip() {
    check(
        PORTS,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      hostAliases:
      - ip: 10.0.0.2
        hostnames: [b]
      - ip: 10.0.0.1
        hostnames: [c]
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        - containerPort: 9090
          name: metrics
          protocol: TCP
      - image: sidecar:1
        name: sidecar
      hostAliases:
      - hostnames:
        - b
        ip: 10.0.0.2
      - hostnames:
        - c
        ip: 10.0.0.1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: zone
        whenUnsatisfiable: DoNotSchedule
      - maxSkew: 2
        topologyKey: host
        whenUnsatisfiable: ScheduleAnyway
"#,
        ),
    );
}

/// Inside a merged env element, `value: null` and a new `valueFrom` switch the variable's source.
#[test]
fn env_value_replaced_by_value_from() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        env:
        - name: A
          value: null
          valueFrom:
            secretKeyRef: {name: s, key: k}
        resources:
          limits: {cpu: "1"}
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          valueFrom:
            secretKeyRef:
              key: k
              name: s
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        resources:
          limits:
            cpu: "1"
        volumeMounts:
        - mountPath: /data
          name: data
      - image: sidecar:1
        name: sidecar
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// A bare Pod merges its containers by name.
#[test]
fn pod_containers_and_data_delete() {
    check(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {a: "1"}
spec:
  containers:
  - name: a
    image: a
  - name: b
    image: b
"#,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {a: null, b: "2"}
spec:
  containers:
  - name: b
    image: b2
    command: [run]
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: v1
kind: Pod
metadata:
  labels:
    b: "2"
  name: p
spec:
  containers:
  - command:
    - run
    image: b2
    name: b
  - image: a
    name: a
"#,
        ),
    );
}

/// ConfigMap data keys merge; null removes one.
#[test]
fn configmap_data_merge_and_delete() {
    check(
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
data:
  a: "1"
  b: "2"
"#,
        r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
data:
  a: null
  c: "3"
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: v1
data:
  b: "2"
  c: "3"
kind: ConfigMap
metadata:
  name: cm
"#,
        ),
    );
}

/// Role rules have no merge key: replaced.
#[test]
fn role_rules_are_replaced() {
    check(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: r
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get]
"#,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: r
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: r
rules:
- apiGroups:
  - ""
  resources:
  - pods
  verbs:
  - get
  - list
"#,
        ),
    );
}

/// Ingress rules have no merge key: replaced; the map around them merges.
#[test]
fn ingress_rules_are_replaced() {
    check(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: i
spec:
  ingressClassName: nginx
  rules:
  - host: a.example.com
  - host: b.example.com
"#,
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: i
spec:
  rules:
  - host: c.example.com
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: i
spec:
  ingressClassName: nginx
  rules:
  - host: c.example.com
"#,
        ),
    );
}

/// DaemonSet pod template lists merge by name.
#[test]
fn daemonset_volumes_and_init_containers() {
    check(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ds
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: init:1
      containers:
      - name: agent
        image: agent:1
      volumes:
      - name: host
        hostPath: {path: /var}
"#,
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ds
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: init:2
      volumes:
      - name: host
        hostPath: {path: /var/log}
      - name: tmp
        emptyDir: {}
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ds
spec:
  template:
    spec:
      containers:
      - image: agent:1
        name: agent
      initContainers:
      - image: init:2
        name: init
      volumes:
      - hostPath:
          path: /var/log
        name: host
      - emptyDir: {}
        name: tmp
"#,
        ),
    );
}

/// `$patch: replace` on the pod spec map replaces it.
#[test]
fn replace_whole_pod_spec() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      $patch: replace
      containers:
      - name: new
        image: new:1
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - image: new:1
        name: new
"#,
        ),
    );
}

/// `$patch: delete` removes one container by name.
#[test]
fn delete_a_container() {
    check(
        DEPLOYMENT,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: sidecar
        $patch: delete
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - args:
        - serve
        - --port=80
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        image: app:1
        name: app
        ports:
        - containerPort: 80
          name: http
          protocol: TCP
        - containerPort: 53
          name: dns
          protocol: UDP
        volumeMounts:
        - mountPath: /data
          name: data
      imagePullSecrets:
      - name: one
      tolerations:
      - key: a
        operator: Exists
      volumes:
      - emptyDir: {}
        name: data
      - configMap:
          name: cfg
        name: config
"#,
        ),
    );
}

/// New maps and merge lists from the patch are added where the object has none.
#[test]
fn patch_adds_fields_to_empty_object_parts() {
    check(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        image: app:1
"#,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {a: b}
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
      - name: app
        env:
        - name: X
          value: "1"
        ports:
        - containerPort: 8080
"#,
        SmpOptions::default(),
        Expect::Object(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    a: b
  name: web
spec:
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - env:
        - name: X
          value: "1"
        image: app:1
        name: app
        ports:
        - containerPort: 8080
      securityContext:
        runAsNonRoot: true
"#,
        ),
    );
}

// ---- Kubernetes directives (checked against `kubectl patch --local --type strategic`) -------

const ORDERED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  finalizers: [a, b, c]
spec:
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1}
  template:
    spec:
      containers:
      - {name: a, image: a}
      - {name: b, image: b}
      - {name: c, image: c}
"#;

/// The merged object's value at `path` (mapping keys).
fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

fn merged(base: &str, patch: &str) -> Value {
    strategic_merge(&yaml(base), &yaml(patch), None)
        .unwrap()
        .into_value()
        .unwrap()
}

/// `$retainKeys` clears the fields it does not list before merging.
#[test]
fn retain_keys_drops_unlisted_fields() {
    let got = merged(
        ORDERED,
        "spec:\n  strategy:\n    $retainKeys: [type]\n    type: Recreate\n",
    );
    assert_eq!(at(&got, &["spec", "strategy"]), &yaml("type: Recreate"));
}

/// `$deleteFromPrimitiveList/<list>` removes values from a list of primitives.
#[test]
fn delete_from_primitive_list_removes_values() {
    let got = merged(
        ORDERED,
        "metadata:\n  $deleteFromPrimitiveList/finalizers: [b]\n",
    );
    assert_eq!(at(&got, &["metadata", "finalizers"]), &yaml("[a, c]"));
    assert!(
        at(&got, &["metadata"])
            .get("$deleteFromPrimitiveList/finalizers")
            .is_none()
    );
}

/// `$setElementOrder` naming every element sets their order.
#[test]
fn set_element_order_orders_named_elements() {
    let got = merged(
        ORDERED,
        "spec:\n  template:\n    spec:\n      $setElementOrder/containers: [{name: c}, {name: a}, {name: b}]\n      containers:\n      - {name: a, image: a2}\n",
    );
    assert_eq!(
        at(&got, &["spec", "template", "spec", "containers"]),
        &yaml("[{name: c, image: c}, {name: a, image: a2}, {name: b, image: b}]")
    );
}

/// Elements `$setElementOrder` does not name are interleaved by their original position.
#[test]
fn set_element_order_interleaves_unnamed_elements() {
    let got = merged(
        ORDERED,
        "spec:\n  template:\n    spec:\n      $setElementOrder/containers: [{name: c}, {name: a}]\n      containers:\n      - {name: a, image: a2}\n",
    );
    assert_eq!(
        at(&got, &["spec", "template", "spec", "containers"]),
        &yaml("[{name: b, image: b}, {name: c, image: c}, {name: a, image: a2}]")
    );
}

/// `$setElementOrder` on a list of primitives.
#[test]
fn set_element_order_on_primitives() {
    let got = merged(
        ORDERED,
        "metadata:\n  $setElementOrder/finalizers: [c, a, b]\n",
    );
    assert_eq!(at(&got, &["metadata", "finalizers"]), &yaml("[c, a, b]"));
}

// ---- The schema argument and pure merges ----------------------------------------------------

/// A hand-made schema: `items` merges by `id`, `tags` is a set, `plain` is replaced.
fn widget_schema() -> PatchSchema {
    let document = serde_json::json!({
        "definitions": {
            "example.v1.Widget": {
                "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Widget"}],
                "properties": {
                    "items": {
                        "type": "array",
                        "items": {"$ref": "#/definitions/example.v1.Item"},
                        "x-kubernetes-patch-merge-key": "id",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
                    "plain": {"type": "array", "items": {"type": "string"}}
                }
            },
            "example.v1.Item": {
                "properties": {
                    "id": {"type": "string"},
                    "subs": {"type": "array", "x-kubernetes-patch-merge-key": "n", "x-kubernetes-patch-strategy": "merge"}
                }
            }
        }
    });
    PatchSchema::from_openapi(&document).unwrap()
}

/// The caller's schema drives merging; without it a custom kind's lists are replaced.
#[test]
fn explicit_schema_merges_custom_lists() {
    let schema = widget_schema();
    let node = schema.kind("example.com/v1", "Widget");
    assert!(node.is_some());
    let base = yaml(
        "apiVersion: example.com/v1\nkind: Widget\nitems: [{id: a, v: 1, subs: [{n: x, v: 1}]}, {id: b, v: 2}]\ntags: [t1, t2]\nplain: [p1]\n",
    );
    let patch =
        yaml("items: [{id: a, v: 9, subs: [{n: y}]}, {id: c}]\ntags: [t3, t1]\nplain: [p2]\n");
    let got = strategic_merge(&base, &patch, node)
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(
        got["items"],
        yaml("[{id: a, v: 9, subs: [{n: y}, {n: x, v: 1}]}, {id: c}, {id: b, v: 2}]")
    );
    assert_eq!(got["tags"], yaml("[t3, t1, t2]"));
    assert_eq!(got["plain"], yaml("[p2]"));

    let without = strategic_merge(&base, &patch, None)
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(without["items"], patch["items"]);
    assert_eq!(without["tags"], yaml("[t3, t1]"));
}

/// `strategic_merge` reports a top-level delete; `is_delete_patch` spots it without merging.
#[test]
fn top_level_delete() {
    let patch = yaml("$patch: delete\nkind: X\n");
    assert!(is_delete_patch(&patch));
    assert!(!is_delete_patch(&yaml("kind: X")));
    let outcome = strategic_merge(&yaml("kind: X\na: 1\n"), &patch, None).unwrap();
    assert_eq!(outcome, Outcome::Deleted);
    assert_eq!(outcome.into_value(), None);
}

/// Errors say where in the object the clash is.
#[test]
fn errors_name_the_path() {
    let error = strategic_merge(
        &yaml("spec: {replicas: 1}"),
        &yaml("spec: {replicas: [1]}"),
        None,
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("at spec.replicas"), "{message}");
    assert!(
        message.contains("expected ScalarNode but got SequenceNode"),
        "{message}"
    );
}

/// Neither input is modified, and merging the same patch twice gives the same result.
#[test]
fn inputs_are_untouched_and_merging_is_repeatable() {
    let base = yaml(DEPLOYMENT);
    let patch = yaml(
        "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        $patch: delete\n",
    );
    let before = (base.clone(), patch.clone());
    let once = strategic_merge(&base, &patch, None)
        .unwrap()
        .into_value()
        .unwrap();
    let twice = strategic_merge(&once, &patch, None)
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!((base, patch), before);
    assert_eq!(once, twice);
    assert_eq!(
        once["spec"]["template"]["spec"]["containers"],
        yaml("[{name: sidecar, image: 'sidecar:1'}]")
    );
}

/// Lists newer than kustomize's embedded schema merge by their keys here (kubectl kustomize
/// v5.5 replaces Pod `schedulingGates` and `resourceClaims`; the API server merges them).
#[test]
fn lists_newer_than_kustomize_merge_by_key() {
    let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  schedulingGates: [{name: g1}]\n  resourceClaims: [{name: r1, resourceClaimName: x}]\n";
    let patch = "spec:\n  schedulingGates: [{name: g2}]\n  resourceClaims: [{name: r2, resourceClaimName: y}]\n";
    let got = merged(base, patch);
    assert_eq!(
        got["spec"]["schedulingGates"],
        yaml("[{name: g2}, {name: g1}]")
    );
    assert_eq!(
        got["spec"]["resourceClaims"],
        yaml("[{name: r2, resourceClaimName: y}, {name: r1, resourceClaimName: x}]")
    );
}
