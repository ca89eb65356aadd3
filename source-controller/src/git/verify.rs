//! Signature verification of the checked-out commit and tag (`spec.verify`): OpenPGP
//! signatures against armored public keys, SSH signatures (SSHSIG, namespace `git`) against
//! `authorized_keys`-style public keys.

use std::collections::BTreeMap;

use pgp::composed::{Deserializable as _, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails as _;

use super::commit::CommitInfo;
use super::error::GitError;
use crate::api::v1::GitVerificationMode;

/// The namespace Git signs with (`ssh-keygen -Y sign -n git`).
const SSH_NAMESPACE: &str = "git";

const PGP_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const SSH_SIGNATURE: &str = "-----BEGIN SSH SIGNATURE-----";
const X509_SIGNATURE: &str = "-----BEGIN SIGNED MESSAGE-----";

/// The trusted public keys of a `spec.verify.secretRef` secret.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    pgp: Vec<SignedPublicKey>,
    ssh: Vec<ssh_key::PublicKey>,
}

/// The keys that made the verified signatures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The key that signed the commit, when it was verified: a PGP key ID (16 upper-case hex
    /// digits, of the primary key) or an SSH key fingerprint (`SHA256:...`).
    pub commit_key: Option<String>,
    /// The key that signed the tag, when it was verified.
    pub tag_key: Option<String>,
}

impl TrustedKeys {
    /// Reads every value of the secret as trusted keys: ASCII-armored PGP public keys
    /// (`gpg --export --armor`, one or more per value) or SSH public keys in
    /// `authorized_keys` format (one per line; comments and blank lines are skipped),
    /// whatever the key names (`author1.asc`, `authors.pub`).
    ///
    /// Values that hold no parsable key are skipped, as Flux does, as long as some other
    /// value holds one.
    ///
    /// # Errors
    /// [`GitError::InvalidKeys`] when no value of the secret holds a key; the message names
    /// the secret keys that did not parse, never their content.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, GitError> {
        let mut keys = Self::default();
        let mut unreadable = Vec::new();
        for (name, value) in data {
            let text = String::from_utf8_lossy(value);
            let before = keys.len();
            if text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
                keys.add_pgp(&text);
            } else {
                keys.add_ssh(&text);
            }
            if keys.len() == before {
                unreadable.push(name.clone());
            }
        }
        if keys.is_empty() {
            return Err(GitError::InvalidKeys(if unreadable.is_empty() {
                "the secret holds no public key".to_string()
            } else {
                format!(
                    "no PGP or SSH public key could be read from: {}",
                    unreadable.join(", ")
                )
            }));
        }
        Ok(keys)
    }

    /// Adds the armored PGP public keys in `armored` (unreadable blocks are skipped).
    fn add_pgp(&mut self, armored: &str) {
        if let Ok((parsed, _headers)) = SignedPublicKey::from_string_many(armored) {
            self.pgp.extend(parsed.filter_map(Result::ok));
        }
    }

    /// Adds the SSH public keys of `authorized_keys`-style lines (unreadable lines skipped).
    fn add_ssh(&mut self, lines: &str) {
        for line in lines.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // `authorized_keys` lines may carry options before the key type.
            let parsed = ssh_key::PublicKey::from_openssh(line).ok().or_else(|| {
                ssh_key::AuthorizedKeys::new(line)
                    .next()
                    .and_then(Result::ok)
                    .map(|entry| entry.public_key().clone())
            });
            if let Some(key) = parsed {
                self.ssh.push(key);
            }
        }
    }

    /// How many keys there are (each PGP certificate counts once, with its subkeys).
    pub fn len(&self) -> usize {
        self.pgp.len() + self.ssh.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key that made `signature` over `payload`, if a trusted one did.
    fn verify(&self, signature: &str, payload: &[u8]) -> Result<String, String> {
        let signature = signature.trim();
        if signature.is_empty() {
            return Err("it is not signed".to_string());
        }
        if signature.starts_with(PGP_SIGNATURE) {
            let (sig, _) = DetachedSignature::from_string(signature)
                .map_err(|_| "the PGP signature cannot be read".to_string())?;
            for cert in &self.pgp {
                let primary_ok = sig.verify(&cert.primary_key, payload).is_ok();
                let subkey_ok = || {
                    cert.public_subkeys
                        .iter()
                        .any(|sub| sig.verify(&sub.key, payload).is_ok())
                };
                if primary_ok || subkey_ok() {
                    let id = cert.primary_key.legacy_key_id();
                    return Ok(format!("{id}").to_uppercase());
                }
            }
            return Err("no trusted PGP key made the signature".to_string());
        }
        if signature.starts_with(SSH_SIGNATURE) {
            let sig = ssh_key::SshSig::from_pem(signature)
                .map_err(|_| "the SSH signature cannot be read".to_string())?;
            for key in &self.ssh {
                if key.verify(SSH_NAMESPACE, payload, &sig).is_ok() {
                    return Ok(key.fingerprint(ssh_key::HashAlg::Sha256).to_string());
                }
            }
            return Err("no trusted SSH key made the signature".to_string());
        }
        if signature.starts_with(X509_SIGNATURE) {
            return Err("X.509 signatures are not supported".to_string());
        }
        Err("the signature is neither PGP nor SSH".to_string())
    }
}

/// Verifies the signatures `mode` asks for: `HEAD` the commit, `Tag` the tag object,
/// `TagAndHEAD` both. Each must be made by one of `keys`, PGP or SSH.
///
/// # Errors
/// [`GitError::VerificationFailed`] when a signature is missing, malformed or made by no
/// trusted key, and in the tag modes when the checkout went through no annotated tag.
pub fn verify(
    commit: &CommitInfo,
    mode: GitVerificationMode,
    keys: &TrustedKeys,
) -> Result<Verified, GitError> {
    let mode = mode.normalized();
    let mut verified = Verified::default();
    if matches!(
        mode,
        GitVerificationMode::Tag | GitVerificationMode::TagAndHead
    ) {
        let tag = commit.tag.as_ref().ok_or_else(|| GitError::VerificationFailed {
            object: format!("commit {}", commit.hash),
            reason: "it was not checked out through a tag (set spec.ref.tag, semver or a refs/tags/ name)"
                .to_string(),
        })?;
        let object = format!("tag '{}'", tag.name);
        if tag.object.is_none() {
            return Err(GitError::VerificationFailed {
                object,
                reason: "it is a lightweight tag, which cannot be signed".to_string(),
            });
        }
        let key = keys
            .verify(
                tag.signature.as_deref().unwrap_or_default(),
                &tag.signed_payload,
            )
            .map_err(|reason| GitError::VerificationFailed { object, reason })?;
        verified.tag_key = Some(key);
    }
    if matches!(
        mode,
        GitVerificationMode::Head | GitVerificationMode::TagAndHead
    ) {
        let key = keys
            .verify(
                commit.signature.as_deref().unwrap_or_default(),
                &commit.signed_payload,
            )
            .map_err(|reason| GitError::VerificationFailed {
                object: format!("commit {}", commit.hash),
                reason,
            })?;
        verified.commit_key = Some(key);
    }
    Ok(verified)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::git::commit::TagInfo;

    fn unsigned_commit() -> CommitInfo {
        CommitInfo {
            hash: "abc".into(),
            revision: "sha1:abc".into(),
            reference: None,
            author: None,
            committer: None,
            message: "m".into(),
            signature: None,
            signed_payload: b"tree x\n\nm".to_vec(),
            tag: None,
        }
    }

    fn ssh_keys() -> TrustedKeys {
        let mut data = BTreeMap::new();
        data.insert(
            "author.pub".to_string(),
            b"# trusted\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test\n".to_vec(),
        );
        TrustedKeys::from_secret(&data).unwrap()
    }

    #[test]
    fn reads_ssh_keys_and_rejects_empty_secrets() {
        assert_eq!(ssh_keys().len(), 1);
        let mut data = BTreeMap::new();
        data.insert("junk.asc".to_string(), b"hello".to_vec());
        let err = TrustedKeys::from_secret(&data).unwrap_err();
        assert!(matches!(err, GitError::InvalidKeys(_)) && !err.is_stalled());
        assert!(err.to_string().contains("junk.asc") && !err.to_string().contains("hello"));
        assert!(TrustedKeys::from_secret(&BTreeMap::new()).is_err());
    }

    #[test]
    fn unsigned_and_foreign_signatures_fail() {
        let keys = ssh_keys();
        let err = verify(&unsigned_commit(), GitVerificationMode::Head, &keys).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");

        let mut commit = unsigned_commit();
        commit.signature = Some("-----BEGIN SIGNED MESSAGE-----\nx\n".into());
        let err = verify(&commit, GitVerificationMode::LegacyHead, &keys).unwrap_err();
        assert!(err.to_string().contains("X.509"), "{err}");
    }

    #[test]
    fn tag_modes_need_an_annotated_tag() {
        let keys = ssh_keys();
        let err = verify(&unsigned_commit(), GitVerificationMode::Tag, &keys).unwrap_err();
        assert!(
            err.to_string().contains("not checked out through a tag"),
            "{err}"
        );
        let mut commit = unsigned_commit();
        commit.tag = Some(TagInfo::lightweight("v1"));
        let err = verify(&commit, GitVerificationMode::TagAndHead, &keys).unwrap_err();
        assert!(err.to_string().contains("lightweight"), "{err}");
    }
}
