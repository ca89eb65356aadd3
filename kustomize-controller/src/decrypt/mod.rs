//! SOPS decryption with age keys (`spec.decryption.provider: sops`).
//!
//! A [`Decryptor`] holds the age identities of the decryption Secret and decrypts, as Flux's
//! kustomize-controller does:
//!
//! - before the build ([`Decryptor::decrypt_sources`]): the files the kustomizations under the
//!   build path reference through `secretGenerator` (`files`, `envs`) and `patches` (`path`),
//!   when they are SOPS-encrypted, in place; the format follows the file name (`.yaml`/`.yml`,
//!   `.json`/`.dockerconfigjson`, `.env`, anything else binary; `envs` default to dotenv);
//! - after the build ([`Decryptor::decrypt_object`]): any object carrying SOPS metadata (a
//!   `sops` entry with a `mac`), and SOPS-encrypted files held in a Secret's `data` entries.
//!
//! # Guarantees
//!
//! - Decrypted values keep their types (`int`, `float`, `bool`, `str`, binary data).
//! - Every encrypted value is authenticated (AES-256-GCM bound to its key path): a changed,
//!   swapped or moved value is an error. Whole files (before the build, and files in Secret
//!   data entries) have their SOPS MAC verified too, so a removed, added or changed plain value
//!   is an error as well. Objects after the build are not MAC-checked: the build adds
//!   namespaces, labels and the like to them (Flux skips this check for the same reason).
//! - Files are never read or written outside `root`: references are resolved (symlinks
//!   included) and refused when they leave it. Files over 5 MiB are refused.
//! - Errors name the file, object or key path, never a value or key material.
//!
//! # Caveats
//!
//! - Only age X25519 identities (`AGE-SECRET-KEY-1...`) are supported. Other entries of the
//!   decryption Secret (`.asc` PGP keyrings, `sops.vault-token`, cloud KMS credentials) are
//!   ignored; a file encrypted for those key types only fails with an error naming them.
//! - Not supported, with a clear error: INI files, several key groups (Shamir),
//!   `encrypted_comment_regex` / `unencrypted_comment_regex`.
//! - Like Flux, `configMapGenerator` sources are not decrypted (that would put secrets into
//!   ConfigMaps).

mod formats;
mod sops;
mod sources;
mod tree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use serde_json::Value;

pub use formats::Format;
pub use sops::{SopsError, ValueError};
pub use tree::TreeError;

/// Largest file decrypted before the build (Flux's limit).
pub const MAX_FILE_SIZE: u64 = 5 << 20;

/// Suffix of the decryption Secret's entries that hold age identities.
pub const AGE_KEY_SUFFIX: &str = ".agekey";

/// Annotation that turns decryption off for one object.
pub const DECRYPT_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/decrypt";

/// Why decryption failed. Messages never contain plaintext or key material.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// An `.agekey` entry of the decryption Secret is not a valid age identity file.
    #[error("failed to import '{entry}' data from the decryption Secret: {reason}")]
    InvalidIdentity {
        /// The Secret data key (`identity.agekey`).
        entry: String,
        /// What is wrong (line number and kind of problem, never the line).
        reason: String,
    },
    /// A file referenced by a kustomization could not be decrypted.
    #[error("failed to decrypt '{path}'")]
    File {
        /// The file, relative to the source root.
        path: String,
        /// Why.
        #[source]
        source: Box<SopsError>,
    },
    /// An object of the build could not be decrypted.
    #[error("failed to decrypt and format '{object}' data")]
    Object {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// Why.
        #[source]
        source: Box<SopsError>,
    },
    /// A SOPS-encrypted file in a Secret's data entry could not be decrypted.
    #[error("failed to decrypt and format '{object}' Secret field '{key}'")]
    SecretEntry {
        /// `Secret/namespace/name`.
        object: String,
        /// The data key.
        key: String,
        /// Why.
        #[source]
        source: Box<SopsError>,
    },
    /// A reference leaves the source root.
    #[error("'{path}' points outside the source root")]
    OutsideRoot {
        /// The reference as written (or the path given).
        path: String,
    },
    /// A file or directory could not be read or written.
    #[error("cannot access '{path}'")]
    Io {
        /// The path, relative to the source root.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A referenced file is not a regular file.
    #[error("cannot decrypt '{path}': not a regular file")]
    NotRegular {
        /// The path, relative to the source root.
        path: String,
    },
    /// A referenced file is larger than [`MAX_FILE_SIZE`].
    #[error("cannot decrypt '{path}': its size ({size} bytes) exceeds the limit ({MAX_FILE_SIZE})")]
    TooLarge {
        /// The path, relative to the source root.
        path: String,
        /// Its size.
        size: u64,
    },
    /// A kustomization file could not be read.
    #[error("invalid kustomization '{path}': {message}")]
    Kustomization {
        /// The kustomization file or directory, relative to the source root.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Decrypts SOPS files and objects with the age identities of a decryption Secret.
pub struct Decryptor {
    identities: Vec<age::x25519::Identity>,
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("age_identities", &self.identities.len())
            .finish()
    }
}

impl Decryptor {
    /// Age identities from a Secret's data: every entry whose key ends in `.agekey` (Flux's
    /// convention) holds an age identity file (one `AGE-SECRET-KEY-1...` per line, `#`
    /// comments and blank lines allowed). Entries for other SOPS key types (`.asc`,
    /// `sops.vault-token`, `sops.aws-kms`, ...) are ignored. No `.agekey` entry gives a
    /// decryptor that can decrypt nothing (its errors say so).
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, DecryptError> {
        let mut identities = Vec::new();
        for (entry, value) in data {
            if !is_age_entry(entry) {
                continue;
            }
            let invalid = |reason: String| DecryptError::InvalidIdentity {
                entry: entry.clone(),
                reason,
            };
            let text = std::str::from_utf8(value)
                .map_err(|_| invalid("the entry is not UTF-8 text".into()))?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let at = number + 1;
                if line.starts_with("AGE-PLUGIN-") {
                    return Err(invalid(format!(
                        "line {at}: age plugin identities are not supported"
                    )));
                }
                if line.starts_with("AGE-SECRET-KEY-PQ-") {
                    return Err(invalid(format!(
                        "line {at}: post-quantum age identities are not supported"
                    )));
                }
                let identity = line.parse::<age::x25519::Identity>().map_err(|_| {
                    invalid(format!(
                        "line {at}: not an age X25519 identity (AGE-SECRET-KEY-1...)"
                    ))
                })?;
                identities.push(identity);
            }
        }
        Ok(Decryptor { identities })
    }

    /// How many age identities the decryptor holds.
    pub fn identity_count(&self) -> usize {
        self.identities.len()
    }

    /// Before the build: SOPS-encrypted files referenced by the kustomization(s) under `path`
    /// (a directory, relative to `root` or absolute inside it) are decrypted in place:
    /// `secretGenerator` `files` (`[key=]path`, format from the key) and `envs` (format from
    /// the path, dotenv by default), and `patches` `path`; kustomizations listed in
    /// `resources` and `components` are followed. Files without SOPS metadata are left alone;
    /// a directory without a kustomization file has nothing to decrypt. Never reads or writes
    /// outside `root`.
    pub fn decrypt_sources(&self, root: &Path, path: &Path) -> Result<(), DecryptError> {
        sources::decrypt_sources(self, root, path)
    }

    /// After the build: an object carrying SOPS metadata (see [`is_sops_encrypted`]) is
    /// decrypted and the metadata removed; a Secret whose `data` entries hold SOPS-encrypted
    /// files gets those entries decrypted (written in the format of the entry's key); others,
    /// and objects annotated `kustomize.toolkit.fluxcd.io/decrypt: disabled`, are returned
    /// unchanged.
    pub fn decrypt_object(&self, object: Value) -> Result<Value, DecryptError> {
        if is_decryption_disabled(&object) {
            return Ok(object);
        }
        if is_sops_encrypted(&object) {
            let id = object_id(&object);
            let wrap = |source| DecryptError::Object {
                object: id.clone(),
                source: Box::new(source),
            };
            let node = tree::Node::from_json(object);
            let node = formats::decrypt_document(node, &self.identities, formats::Mac::Skip)
                .map_err(wrap)?;
            return node
                .into_json()
                .map_err(|err| wrap(SopsError::Document(err)));
        }
        if object.get("kind").and_then(Value::as_str) == Some("Secret") {
            return self.decrypt_secret_entries(object);
        }
        Ok(object)
    }

    /// Decrypts the SOPS-encrypted files held in a Secret's `data` entries.
    fn decrypt_secret_entries(&self, mut object: Value) -> Result<Value, DecryptError> {
        let id = object_id(&object);
        let Some(data) = object.get_mut("data").and_then(Value::as_object_mut) else {
            return Ok(object);
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        for (key, value) in data.iter_mut() {
            let Some(encoded) = value.as_str() else {
                continue;
            };
            // Not base64: left for the apply to report.
            let Ok(bytes) = b64.decode(encoded) else {
                continue;
            };
            let Some(input) = Format::detect(&bytes) else {
                continue;
            };
            let output = Format::for_path(key);
            let plain = formats::decrypt_file(
                &bytes,
                input,
                output,
                &self.identities,
                formats::Mac::Verify,
            )
            .map_err(|source| DecryptError::SecretEntry {
                object: id.clone(),
                key: key.clone(),
                source: Box::new(source),
            })?;
            *value = Value::String(b64.encode(&*zeroize::Zeroizing::new(plain)));
        }
        Ok(object)
    }

    /// Decrypts the bytes of a whole SOPS file read as `input`, written as `output`, with its
    /// MAC verified.
    pub fn decrypt_file(
        &self,
        data: &[u8],
        input: Format,
        output: Format,
    ) -> Result<Vec<u8>, SopsError> {
        formats::decrypt_file(data, input, output, &self.identities, formats::Mac::Verify)
    }
}

/// Whether an object carries SOPS metadata: a `sops` mapping with a non-empty `mac`.
pub fn is_sops_encrypted(object: &Value) -> bool {
    match object.get("sops").and_then(|s| s.get("mac")) {
        Some(Value::String(mac)) => !mac.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

/// Whether the object is annotated `kustomize.toolkit.fluxcd.io/decrypt: disabled` (any case).
fn is_decryption_disabled(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DECRYPT_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
}

/// Whether a Secret data key names an age identity file (its extension is `.agekey`).
fn is_age_entry(name: &str) -> bool {
    name.rfind('.')
        .is_some_and(|dot| &name[dot..] == AGE_KEY_SUFFIX)
}

/// `Kind/namespace/name` (or `Kind/name`) of an object, for messages.
fn object_id(object: &Value) -> String {
    let get = |ptr: &str| object.pointer(ptr).and_then(Value::as_str).unwrap_or("");
    let kind = get("/kind");
    let name = get("/metadata/name");
    match get("/metadata/namespace") {
        "" => format!("{kind}/{name}"),
        ns => format!("{kind}/{ns}/{name}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
