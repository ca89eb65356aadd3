//! Artifact digests: `<algorithm>:<hex>`, as found in `status.artifact.digest`.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A hash algorithm an artifact digest may use.
///
/// Flux writes `sha256` digests and also accepts `sha384` and `sha512`; nothing else is
/// recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256 (the default, and what source-controller writes).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// The name used in digest strings (`sha256`, `sha384`, `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Number of hex characters in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed artifact digest such as `sha256:9f86d0…`.
///
/// The hex part is kept in lower case, so two digests of the same bytes compare equal
/// whatever case they were written in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// The algorithm of this digest.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The hash value, as lower-case hex.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// Why a digest string could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    /// The string has no `<algorithm>:` prefix.
    #[error("a digest must look like `sha256:<hex>`")]
    MissingAlgorithm,
    /// The algorithm is not one of `sha256`, `sha384`, `sha512`.
    #[error("digest algorithm `{0}` is not supported (use sha256, sha384 or sha512)")]
    UnknownAlgorithm(String),
    /// The hash value is not hex of the right length for its algorithm.
    #[error("a {algorithm} digest needs {expected} hex characters")]
    BadHex {
        /// The algorithm named in the digest.
        algorithm: DigestAlgorithm,
        /// The number of hex characters that algorithm needs.
        expected: usize,
    },
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, hex) = s
            .split_once(':')
            .ok_or(DigestParseError::MissingAlgorithm)?;
        if name.is_empty() {
            return Err(DigestParseError::MissingAlgorithm);
        }
        let algorithm = DigestAlgorithm::from_name(name)
            .ok_or_else(|| DigestParseError::UnknownAlgorithm(name.to_owned()))?;
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestParseError::BadHex {
                algorithm,
                expected: algorithm.hex_len(),
            });
        }
        Ok(Self {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }
}

/// An incremental hasher for one [`DigestAlgorithm`].
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => Self::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Self::Sha256(h) => (DigestAlgorithm::Sha256, hex::encode(h.finalize())),
            Self::Sha384(h) => (DigestAlgorithm::Sha384, hex::encode(h.finalize())),
            Self::Sha512(h) => (DigestAlgorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_every_supported_algorithm() {
        let cases = [
            (DigestAlgorithm::Sha256, 64),
            (DigestAlgorithm::Sha384, 96),
            (DigestAlgorithm::Sha512, 128),
        ];
        for (algorithm, len) in cases {
            let text = format!("{}:{}", algorithm.name(), "a".repeat(len));
            let digest: Digest = text.parse().unwrap();
            assert_eq!(digest.algorithm(), algorithm);
            assert_eq!(digest.to_string(), text);
        }
    }

    #[test]
    fn upper_case_hex_is_normalised() {
        let digest: Digest = format!("sha256:{}", EMPTY_SHA256.to_uppercase())
            .parse()
            .unwrap();
        assert_eq!(digest.hex(), EMPTY_SHA256);
    }

    #[test]
    fn rejects_malformed_digests() {
        let cases: &[(&str, DigestParseError)] = &[
            (EMPTY_SHA256, DigestParseError::MissingAlgorithm),
            (":abc", DigestParseError::MissingAlgorithm),
            (
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                DigestParseError::UnknownAlgorithm("md5".into()),
            ),
            (
                "SHA256:abc",
                DigestParseError::UnknownAlgorithm("SHA256".into()),
            ),
            (
                "sha256:abc",
                DigestParseError::BadHex {
                    algorithm: DigestAlgorithm::Sha256,
                    expected: 64,
                },
            ),
            (
                "sha512:zz",
                DigestParseError::BadHex {
                    algorithm: DigestAlgorithm::Sha512,
                    expected: 128,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Digest>().unwrap_err(), *want, "{input}");
        }
        // Right length, wrong characters.
        let not_hex = format!("sha256:{}", "g".repeat(64));
        assert!(matches!(
            not_hex.parse::<Digest>(),
            Err(DigestParseError::BadHex { .. })
        ));
        // A sha256-length value labelled sha384 is refused, not silently truncated/compared.
        let mislabelled = format!("sha384:{EMPTY_SHA256}");
        assert!(mislabelled.parse::<Digest>().is_err());
    }

    #[test]
    fn hasher_matches_known_values() {
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        hasher.update(b"");
        assert_eq!(
            hasher.finish().to_string(),
            format!("sha256:{EMPTY_SHA256}")
        );

        // Feeding in pieces gives the same result as all at once.
        let mut split = Hasher::new(DigestAlgorithm::Sha512);
        split.update(b"hello ");
        split.update(b"world");
        let mut whole = Hasher::new(DigestAlgorithm::Sha512);
        whole.update(b"hello world");
        let (split, whole) = (split.finish(), whole.finish());
        assert_eq!(split, whole);
        assert_eq!(split.hex().len(), 128);
        assert_eq!(
            Hasher::new(DigestAlgorithm::Sha384).finish().hex().len(),
            96
        );
    }
}
