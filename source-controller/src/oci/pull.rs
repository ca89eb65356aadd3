//! Pulling one layer of a manifest: select it, stream it to disk, extract or copy it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use futures::StreamExt as _;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use tokio::io::AsyncWriteExt as _;
use toolkit_sdk::artifact_fetch::{FetchError, FetchLimits};

use super::{DEFAULT_PLATFORM, OciError, Pulled, Registry};
use crate::api::v1::{OciLayerOperation, OciLayerSelector};

/// The manifest media types asked for.
const ACCEPTED_MANIFESTS: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// How many image indexes may be nested before the image manifest.
const MAX_INDEX_DEPTH: usize = 4;

/// The parts of an image manifest or index this client reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

enum Kind {
    Image,
    Index,
}

impl Manifest {
    fn kind(&self, digest: &str) -> Result<Kind, OciError> {
        let unsupported = |media_type: &str| OciError::UnsupportedManifest {
            digest: digest.to_owned(),
            media_type: media_type.to_owned(),
        };
        if self.schema_version != Some(2) {
            return Err(unsupported(&format!(
                "schema version {}",
                self.schema_version.unwrap_or_default()
            )));
        }
        match self.media_type.as_deref() {
            Some(OCI_IMAGE_MEDIA_TYPE | IMAGE_MANIFEST_MEDIA_TYPE) => Ok(Kind::Image),
            Some(OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE) => Ok(Kind::Index),
            Some(other) => Err(unsupported(other)),
            // `mediaType` is optional in OCI manifests: tell them apart by their fields.
            None if self.manifests.is_some() => Ok(Kind::Index),
            None if self.layers.is_some() => Ok(Kind::Image),
            None => Err(unsupported("(none)")),
        }
    }
}

pub(super) async fn pull(
    registry: &Registry,
    digest: &str,
    selector: &OciLayerSelector,
    dest: &Path,
    limits: &FetchLimits,
) -> Result<Pulled, OciError> {
    let (manifest, manifest_digest) = image_manifest(registry, digest).await?;
    let layers = manifest.layers.unwrap_or_default();
    if layers.is_empty() {
        return Err(OciError::NoLayers {
            digest: manifest_digest,
        });
    }
    let media_type = selector.media_type.as_deref().filter(|m| !m.is_empty());
    let layer = match media_type {
        Some(wanted) => layers
            .iter()
            .find(|l| l.media_type == wanted)
            .ok_or_else(|| OciError::LayerNotFound {
                media_type: wanted.to_owned(),
                digest: manifest_digest.clone(),
            })?,
        None => &layers[0],
    };
    super::url::check_digest(&layer.digest).map_err(|_| OciError::Registry {
        registry: registry.url.registry().to_owned(),
        status: None,
        message: format!(
            "manifest {manifest_digest} names a layer with an invalid digest `{}`",
            layer.digest
        ),
    })?;
    let size = u64::try_from(layer.size).unwrap_or(0);
    if size > limits.max_download_bytes {
        return Err(OciError::LimitExceeded {
            digest: layer.digest.clone(),
            what: "download size (bytes)",
            limit: limits.max_download_bytes,
        });
    }

    let operation = selector.operation();
    let entries = match operation {
        OciLayerOperation::Extract => Some(extract(registry, layer, dest, limits).await?),
        OciLayerOperation::Copy => {
            copy(registry, &layer.digest, dest, limits).await?;
            None
        }
    };
    tracing::debug!(
        url = %registry.url,
        manifest = %manifest_digest,
        layer = %layer.digest,
        media_type = %layer.media_type,
        ?operation,
        dest = %dest.display(),
        "pulled OCI layer"
    );
    Ok(Pulled {
        path: dest.to_path_buf(),
        operation,
        metadata: manifest.annotations.unwrap_or_default(),
        manifest_digest,
        layer_digest: layer.digest.clone(),
        layer_media_type: layer.media_type.clone(),
        layer_size: size,
        entries,
    })
}

/// The image manifest at `digest`, following image indexes to the default platform.
async fn image_manifest(registry: &Registry, digest: &str) -> Result<(Manifest, String), OciError> {
    let mut digest = digest.to_owned();
    for _ in 0..=MAX_INDEX_DEPTH {
        let reference = registry.url.with_digest(&digest);
        let (bytes, _) = registry
            .client
            .pull_manifest_raw(&reference, &registry.registry_auth, ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| registry.error(e, &format!("manifest {digest}")))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| OciError::InvalidManifest {
                digest: digest.clone(),
                source,
            })?;
        match manifest.kind(&digest)? {
            Kind::Image => return Ok((manifest, digest)),
            Kind::Index => {
                let (os, architecture) = DEFAULT_PLATFORM;
                let child = manifest
                    .manifests
                    .unwrap_or_default()
                    .into_iter()
                    .find(|m| {
                        // A child without a platform counts as linux/amd64.
                        m.platform
                            .as_ref()
                            .is_none_or(|p| p.os == os && p.architecture == architecture)
                    })
                    .ok_or_else(|| OciError::NoMatchingPlatform {
                        digest: digest.clone(),
                        platform: format!("{os}/{architecture}"),
                    })?;
                super::url::check_digest(&child.digest).map_err(|_| OciError::Registry {
                    registry: registry.url.registry().to_owned(),
                    status: None,
                    message: format!("image index {digest} names an invalid digest"),
                })?;
                digest = child.digest;
            }
        }
    }
    Err(OciError::UnsupportedManifest {
        digest,
        media_type: format!("image index nested more than {MAX_INDEX_DEPTH} levels"),
    })
}

/// Writes the blob `digest` to the file `dest`: streamed to a temporary file next to it while
/// hashed, checked, then renamed over `dest`.
async fn copy(
    registry: &Registry,
    digest: &str,
    dest: &Path,
    limits: &FetchLimits,
) -> Result<(), OciError> {
    let parent = parent_of(dest);
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| OciError::io(format!("cannot create {}", parent.display()), e))?;
    let temp = tempfile::Builder::new()
        .prefix(".oci-layer-")
        .tempfile_in(&parent)
        .map_err(|e| OciError::io(format!("cannot create a file in {}", parent.display()), e))?;
    let write_error = |e| OciError::io(format!("cannot write {}", temp.path().display()), e);

    let reference = registry.url.with_digest(digest);
    let too_large = || OciError::LimitExceeded {
        digest: digest.to_owned(),
        what: "download size (bytes)",
        limit: limits.max_download_bytes,
    };
    let mut stream = registry
        .client
        .pull_blob_stream(&reference, digest)
        .await
        .map_err(|e| registry.error(e, &format!("blob {digest}")))?;
    if stream
        .content_length
        .is_some_and(|len| len > limits.max_download_bytes)
    {
        return Err(too_large());
    }
    let file = temp.as_file().try_clone().map_err(write_error)?;
    let mut file = tokio::io::BufWriter::with_capacity(64 * 1024, tokio::fs::File::from_std(file));
    let mut hasher = BlobHasher::new(digest);
    let mut size = 0u64;
    while let Some(chunk) = stream.stream.next().await {
        let chunk = chunk.map_err(|e| blob_stream_error(registry, e))?;
        size = size.saturating_add(chunk.len() as u64);
        if size > limits.max_download_bytes {
            return Err(too_large());
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(write_error)?;
    }
    file.flush().await.map_err(write_error)?;
    let actual = hasher.finish();
    if actual != digest {
        return Err(OciError::DigestMismatch {
            what: "layer",
            expected: digest.to_owned(),
            actual,
        });
    }
    let file = file.into_inner();
    file.sync_all().await.map_err(write_error)?;
    // Temporary files are private (0600); the layer is served like any artifact.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .await
        .map_err(write_error)?;
    temp.persist(dest).map_err(|e| {
        OciError::io(
            format!("cannot move the layer to {}", dest.display()),
            e.error,
        )
    })?;
    Ok(())
}

/// An error in the middle of a blob body: a digest mismatch found by oci-client's verifying
/// stream, or the connection breaking.
fn blob_stream_error(registry: &Registry, err: std::io::Error) -> OciError {
    if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<oci_client::errors::DigestError>())
    {
        return OciError::DigestMismatch {
            what: "layer",
            expected: expected.clone(),
            actual: actual.clone(),
        };
    }
    OciError::Unreachable {
        registry: registry.url.registry().to_owned(),
        source: Box::new(err),
    }
}

/// Downloads the layer (streamed, digest-checked, like [`copy`]) to a temporary file next to
/// `dest`, then unpacks it into the directory `dest` with the SDK's hardened extractor, which
/// replaces a previous tree atomically; returns the number of entries.
async fn extract(
    registry: &Registry,
    layer: &Descriptor,
    dest: &Path,
    limits: &FetchLimits,
) -> Result<u64, OciError> {
    let parent = parent_of(dest);
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| OciError::io(format!("cannot create {}", parent.display()), e))?;
    let download = tempfile::Builder::new()
        .prefix(".oci-layer-download-")
        .tempfile_in(&parent)
        .map_err(|e| OciError::io(format!("cannot create a file in {}", parent.display()), e))?
        .into_temp_path();
    copy(registry, &layer.digest, &download, limits).await?;
    let archive = download.to_path_buf();
    let dest_owned = dest.to_path_buf();
    let limits_owned = limits.clone();
    let unpacked = tokio::task::spawn_blocking(move || {
        toolkit_sdk::artifact_fetch::unpack(&archive, &dest_owned, &limits_owned)
    })
    .await
    .map_err(|e| OciError::io("the layer extraction task failed", std::io::Error::other(e)))?
    .map_err(|e| fetch_error(registry, layer, e))?;
    drop(download);
    Ok(unpacked.entries)
}

/// Our error for what the SDK's extractor reported.
fn fetch_error(registry: &Registry, layer: &Descriptor, err: FetchError) -> OciError {
    let digest = layer.digest.clone();
    let registry_host = registry.url.registry().to_owned();
    match err {
        FetchError::NotFound { .. } => OciError::NotFound {
            registry: registry_host,
            repository: registry.url.repository().to_owned(),
            what: format!("blob {digest}"),
        },
        FetchError::Http { status, .. }
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN =>
        {
            OciError::AuthenticationFailed {
                registry: registry_host,
                repository: registry.url.repository().to_owned(),
                with_credentials: !registry.auth.is_anonymous(),
            }
        }
        FetchError::Http { status, .. } => OciError::Registry {
            registry: registry_host,
            status: Some(status.as_u16()),
            message: format!("HTTP {status} for blob {digest}"),
        },
        FetchError::Transport { source, .. } if source.is_timeout() => OciError::Timeout {
            registry: registry_host,
            operation: "downloading a layer",
            after: registry.timeout,
        },
        FetchError::Transport { source, .. } => OciError::Unreachable {
            registry: registry_host,
            source: Box::new(source),
        },
        FetchError::DigestMismatch {
            expected, actual, ..
        } => OciError::DigestMismatch {
            what: "layer",
            expected,
            actual,
        },
        FetchError::TooLarge { limit, .. } => OciError::LimitExceeded {
            digest,
            what: "download size (bytes)",
            limit,
        },
        FetchError::TooManyEntries { limit } => OciError::LimitExceeded {
            digest,
            what: "entry count",
            limit,
        },
        FetchError::ExtractedTooLarge { limit } => OciError::LimitExceeded {
            digest,
            what: "extracted size (bytes)",
            limit,
        },
        FetchError::UnsafeEntry { path, why } => OciError::UnsafeEntry { digest, path, why },
        FetchError::CorruptArchive { source } => OciError::NotATarball {
            digest,
            media_type: layer.media_type.clone(),
            source,
        },
        FetchError::Io { context, source } => OciError::Io { context, source },
        other => OciError::Registry {
            registry: registry_host,
            status: None,
            message: other.to_string(),
        },
    }
}

/// `dest`'s parent directory (`.` for a bare file name).
fn parent_of(dest: &Path) -> std::path::PathBuf {
    match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Hashes a blob with the algorithm of its expected digest.
enum BlobHasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl BlobHasher {
    /// `digest` has been checked by `check_digest`: sha256, sha384 or sha512.
    fn new(digest: &str) -> Self {
        match digest.split_once(':').map(|(a, _)| a) {
            Some("sha384") => Self::Sha384(Sha384::new()),
            Some("sha512") => Self::Sha512(Sha512::new()),
            _ => Self::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Self::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Self::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            Self::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn manifest(json: serde_json::Value) -> Manifest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn manifests_are_told_apart() {
        let d = "sha256:00";
        let image = manifest(serde_json::json!({"schemaVersion": 2, "layers": []}));
        assert!(matches!(image.kind(d), Ok(Kind::Image)));
        let index = manifest(serde_json::json!({"schemaVersion": 2, "manifests": []}));
        assert!(matches!(index.kind(d), Ok(Kind::Index)));
        let docker_list = manifest(serde_json::json!({
            "schemaVersion": 2, "mediaType": IMAGE_MANIFEST_LIST_MEDIA_TYPE, "manifests": []
        }));
        assert!(matches!(docker_list.kind(d), Ok(Kind::Index)));
        let schema1 = manifest(serde_json::json!({"schemaVersion": 1, "fsLayers": []}));
        assert!(matches!(
            schema1.kind(d),
            Err(OciError::UnsupportedManifest { .. })
        ));
        let other = manifest(serde_json::json!({"schemaVersion": 2, "mediaType": "text/plain"}));
        assert!(matches!(
            other.kind(d),
            Err(OciError::UnsupportedManifest { .. })
        ));
    }

    #[test]
    fn blob_hasher_uses_the_digest_algorithm() {
        let mut h = BlobHasher::new("sha256:x");
        h.update(b"abc");
        assert_eq!(
            h.finish(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = BlobHasher::new("sha512:x");
        h.update(b"");
        assert!(h.finish().starts_with("sha512:cf83e135"));
    }
}
