//! The `images:` transformer.
//!
//! An entry's `name` is matched (as kustomize does: as the start of a regular expression,
//! followed by an optional `:tag` and an optional `@sha256:digest`) against the image of every
//! container and init container, wherever a `containers` / `initContainers` list appears in an
//! object (CustomResourceDefinitions excepted), and against the config's `images` fields. A
//! match gets `newName` instead of its name, and `newTag` and/or `digest` instead of its tag and
//! digest (`tagSuffix` appends to the tag when neither is set).

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::Error;
use super::config::TransformerConfig;
use super::fieldspec::walk;
use crate::resource::Resource;

/// One entry of a kustomization's `images:` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    /// The image name to match (without tag or digest).
    #[serde(default, deserialize_with = "super::de::string")]
    pub name: String,
    /// The name to use instead.
    #[serde(
        default,
        deserialize_with = "super::de::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub new_name: String,
    /// The tag to use instead (dropping any digest unless `digest` is set too).
    #[serde(
        default,
        deserialize_with = "super::de::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub new_tag: String,
    /// The digest to use instead (dropping any tag unless `newTag` is set too).
    #[serde(
        default,
        deserialize_with = "super::de::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub digest: String,
    /// Appended to the current tag when neither `newTag` nor `digest` is set.
    #[serde(
        default,
        deserialize_with = "super::de::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub tag_suffix: String,
}

/// Applies the `images:` entries, in order.
///
/// # Errors
///
/// [`Error::Field`] when an image field holds a mapping or a list.
pub fn set_images(
    resources: &mut [Resource],
    images: &[Image],
    config: &TransformerConfig,
) -> Result<(), Error> {
    for image in images {
        let pattern = regex::Regex::new(&format!(
            "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$",
            image.name
        ))
        .ok();
        let update = |node: &mut Value| -> Result<(), String> {
            update_image(node, image, pattern.as_ref())
        };
        for resource in resources.iter_mut() {
            if resource.kind() == "CustomResourceDefinition" {
                continue;
            }
            let field_error = |path: &str, reason: String, resource: &Resource| Error::Field {
                transformer: "images",
                path: path.to_string(),
                id: Box::new(resource.id()),
                reason,
            };
            // Every containers/initContainers list, wherever it is.
            if let Err(reason) = visit_container_lists(&mut resource.value, &update) {
                return Err(field_error("**/containers/image", reason, resource));
            }
            let api_version = resource.api_version().to_string();
            let kind = resource.kind().to_string();
            for spec in &config.images {
                if !spec.applies_to(&api_version, &kind) {
                    continue;
                }
                let mut set = |node: &mut Value| update(node);
                if let Err(e) = walk(&mut resource.value, spec, None, &mut set) {
                    return Err(field_error(&spec.path, e.0, resource));
                }
            }
        }
    }
    Ok(())
}

/// Walks the whole object; for every `containers` or `initContainers` key holding a list,
/// updates the `image` of each element (after visiting inside the value).
fn visit_container_lists(
    node: &mut Value,
    update: &dyn Fn(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    match node {
        Value::Mapping(map) => {
            for (key, value) in map.iter_mut() {
                visit_container_lists(value, update)?;
                let is_list_key = matches!(key.as_str(), Some("containers" | "initContainers"));
                if is_list_key && let Value::Sequence(items) = value {
                    for item in items.iter_mut() {
                        if let Some(image) = item.as_mapping_mut().and_then(|m| m.get_mut("image"))
                        {
                            update(image)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for item in items {
                visit_container_lists(item, update)?;
            }
            Ok(())
        }
        Value::Tagged(tagged) => visit_container_lists(&mut tagged.value, update),
        _ => Ok(()),
    }
}

fn update_image(
    node: &mut Value,
    image: &Image,
    pattern: Option<&regex::Regex>,
) -> Result<(), String> {
    if node.is_mapping() || node.is_sequence() {
        return Err("wrong node kind: expected ScalarNode".to_string());
    }
    let current = super::fieldspec::scalar_text(node).unwrap_or_default();
    if !pattern.is_some_and(|p| p.is_match(&current)) {
        return Ok(());
    }
    let (name, tag, digest) = split_image(&current);
    let mut name = name.to_string();
    let mut tag = tag.to_string();
    let mut digest = digest.to_string();
    if !image.new_name.is_empty() {
        name = image.new_name.clone();
    }
    if !image.new_tag.is_empty() && !image.digest.is_empty() {
        tag = image.new_tag.clone();
        digest = image.digest.clone();
    } else if !image.new_tag.is_empty() {
        tag = image.new_tag.clone();
        digest.clear();
    } else if !image.digest.is_empty() {
        tag.clear();
        digest = image.digest.clone();
    } else if !image.tag_suffix.is_empty() {
        tag.push_str(&image.tag_suffix);
        digest.clear();
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    *node = Value::String(name);
    Ok(())
}

/// Splits an image reference into name, tag and digest. A `:` before the first `/` is a
/// registry port, not a tag separator.
pub(crate) fn split_image(image: &str) -> (&str, &str, &str) {
    // Search for tag and digest separators after the first slash (if it is not at 0).
    let offset = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[offset..];
    let at = search.find('@').map(|i| i + offset);
    let colon = search.find(':').map(|i| i + offset);
    match (at, colon) {
        (None, None) => (image, "", ""),
        (Some(at), None) => (&image[..at], "", &image[at + 1..]),
        (Some(at), Some(colon)) if at < colon => (&image[..at], "", &image[at + 1..]),
        (Some(at), Some(colon)) => (&image[..colon], &image[colon + 1..at], &image[at + 1..]),
        (None, Some(colon)) => (&image[..colon], &image[colon + 1..], ""),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transform::tests_support::{assert_resources, resources};

    #[test]
    fn split_handles_ports_tags_and_digests() {
        let cases = [
            ("nginx", ("nginx", "", "")),
            ("nginx:1.0", ("nginx", "1.0", "")),
            ("nginx@sha256:abc", ("nginx", "", "sha256:abc")),
            ("nginx:1.0@sha256:abc", ("nginx", "1.0", "sha256:abc")),
            ("reg:5000/app", ("reg:5000/app", "", "")),
            ("reg:5000/app:v1", ("reg:5000/app", "v1", "")),
            ("reg:5000/app@sha256:x", ("reg:5000/app", "", "sha256:x")),
            (
                "reg:5000/app:v1@sha256:x",
                ("reg:5000/app", "v1", "sha256:x"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(split_image(input), expected, "{input}");
        }
    }

    fn image(name: &str, new_name: &str, new_tag: &str, digest: &str, suffix: &str) -> Image {
        Image {
            name: name.into(),
            new_name: new_name.into(),
            new_tag: new_tag.into(),
            digest: digest.into(),
            tag_suffix: suffix.into(),
        }
    }

    // Input and expected output checked with `kubectl kustomize` (v5.5.0), including its
    // quirks: the name is a regular expression (`a.b` matches `axb`), a `tagSuffix` lands twice
    // on pod templates (both passes match), and containers lists are found anywhere.
    #[test]
    fn images_are_rewritten_as_kustomize_does() {
        let mut res = resources(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      initContainers:
      - {name: i, image: "busybox:latest"}
      containers:
      - {name: a, image: nginx}
      - {name: b, image: "redis:6@sha256:000"}
      - {name: c, image: "my.registry:5000/app:v1"}
      - {name: d, image: "alpine:3.18"}
      - {name: e, image: axb}
      - {name: f, image: "nginx:1.0@sha256:111"}
---
apiVersion: example.com/v1
kind: Foo
metadata: {name: f}
spec:
  deep:
    containers:
    - {image: "nginx:old"}
    other: {image: "nginx:untouched"}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: foos.example.com}
spec:
  containers: [{image: nginx}]
"#,
        );
        let images = [
            image("nginx", "", "1.25", "", ""),
            image("redis", "my.registry:5000/redis", "", "sha256:abc", ""),
            image("my.registry:5000/app", "", "v2", "", ""),
            image("busybox", "", "1.0", "sha256:def", ""),
            image("alpine", "", "", "", "-debug"),
            image("a.b", "replaced", "", "", ""),
        ];
        set_images(&mut res, &images, TransformerConfig::builtin()).unwrap();
        assert_resources(
            &res,
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
      - {image: "nginx:1.25", name: a}
      - {image: "my.registry:5000/redis@sha256:abc", name: b}
      - {image: "my.registry:5000/app:v2", name: c}
      - {image: "alpine:3.18-debug-debug", name: d}
      - {image: replaced, name: e}
      - {image: "nginx:1.25", name: f}
      initContainers:
      - {image: "busybox:1.0@sha256:def", name: i}
---
apiVersion: example.com/v1
kind: Foo
metadata: {name: f}
spec:
  deep:
    containers:
    - {image: "nginx:1.25"}
    other: {image: "nginx:untouched"}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: foos.example.com}
spec:
  containers: [{image: nginx}]
"#,
        );
    }

    #[test]
    fn pod_images_and_names_that_only_share_a_prefix() {
        let mut res = resources(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx-extra}\n  - {name: b, image: nginx}\n",
        );
        set_images(
            &mut res,
            &[image("nginx", "", "", "sha256:1", "")],
            TransformerConfig::builtin(),
        )
        .unwrap();
        assert_resources(
            &res,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx-extra}\n  - {name: b, image: \"nginx@sha256:1\"}\n",
        );
    }

    // Checked with `kubectl kustomize`: a null containers list becomes an empty one (the image
    // field specs say `containers[]`), a null image stays null.
    #[test]
    fn null_lists_and_images() {
        let mut res = resources(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: null\n  initContainers:\n  - {name: a, image: null}\n  - {name: b}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n",
        );
        set_images(
            &mut res,
            &[image("nginx", "", "2", "", "")],
            TransformerConfig::builtin(),
        )
        .unwrap();
        assert_resources(
            &res,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n  initContainers:\n  - {name: a, image: null}\n  - {name: b}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: []\n",
        );
    }

    #[test]
    fn images_entry_deserializes_strictly() {
        let image: Image =
            serde_yaml::from_str("name: nginx\nnewName: n\nnewTag: \"1.2\"\ndigest: sha256:x\n")
                .unwrap();
        assert_eq!(image.new_tag, "1.2");
        // kustomize refuses a number where the tag must be a string.
        assert!(serde_yaml::from_str::<Image>("name: nginx\nnewTag: 1.2\n").is_err());
        assert!(serde_yaml::from_str::<Image>("name: nginx\ntag: x\n").is_err());
    }
}
