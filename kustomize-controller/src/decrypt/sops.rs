//! The SOPS file format: metadata, the data key (age), value decryption and the MAC.
//!
//! Facts of the format this module relies on:
//! - a file's values are encrypted with one random 32-byte data key, which is stored once per
//!   recipient in the `sops` metadata (for age: an armored age file in `sops.age[].enc`);
//! - a value reads `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<type>]`: AES-256-GCM
//!   with a 32-byte IV, the additional data being the value's key path joined by `:` with a
//!   trailing `:` (list items share their list's path), `type` one of `str`, `int`, `float`,
//!   `bool`, `bytes`, `time`, `comment`; an empty string stays empty;
//! - which values are encrypted follows the one rule in the metadata (`unencrypted_suffix`,
//!   default `_unencrypted`; `encrypted_suffix`; `unencrypted_regex`; `encrypted_regex`) applied
//!   to every key of a value's path;
//! - the MAC is the upper-case hex SHA-512 of the values in document order (all non-null
//!   values, or with `mac_only_encrypted` only the encrypted ones after a fixed 32-byte
//!   prefix), stored encrypted with the data key and the `lastmodified` time as additional
//!   data.

use std::io::Read;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use regex::Regex;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::tree::Node;

/// The suffix that keeps a value unencrypted when a file names no rule.
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// The bytes a MAC over encrypted values only starts with (SOPS'
/// `MACOnlyEncryptedInitialization`), so it never equals a MAC over all values.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Key types SOPS knows besides age, as named in the metadata.
const OTHER_KEY_TYPES: [&str; 6] = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"];

/// Why a SOPS document could not be decrypted. Never holds plaintext or key material.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// The document has no `sops` metadata.
    #[error("no SOPS metadata found")]
    MissingMetadata,
    /// The metadata is malformed.
    #[error("invalid SOPS metadata: {0}")]
    Metadata(String),
    /// The metadata uses a feature this decryptor does not implement.
    #[error("unsupported SOPS feature: {0}")]
    Unsupported(String),
    /// The file holds no age recipient (it was encrypted for other key types only).
    #[error(
        "the data key is not encrypted for any age recipient (key types in the file: {}); only age keys are supported",
        if .key_types.is_empty() { "none".to_string() } else { .key_types.join(", ") }
    )]
    NoAgeRecipient {
        /// The key types the file does name.
        key_types: Vec<String>,
    },
    /// No age identity given can decrypt the data key.
    #[error(
        "no age identity can decrypt the data key; the file is encrypted for: {}{}",
        .recipients.join(", "),
        if .identities == &0 { " (no age identity was given: add an entry ending in .agekey to the decryption Secret)" } else { "" }
    )]
    NoMatchingIdentity {
        /// The age recipients the file is encrypted for (public keys).
        recipients: Vec<String>,
        /// How many identities were tried.
        identities: usize,
    },
    /// An age stanza could not be read.
    #[error("cannot decrypt the data key for age recipient {recipient}")]
    Age {
        /// The recipient of the stanza.
        recipient: String,
        /// What age reported.
        #[source]
        source: age::DecryptError,
    },
    /// The decrypted data key is not 32 bytes.
    #[error("the decrypted data key has {0} bytes, expected 32")]
    DataKeyLength(usize),
    /// A value could not be decrypted.
    #[error("cannot decrypt the value at '{path}': {reason}")]
    Value {
        /// The key path of the value (`data.password`).
        path: String,
        /// What is wrong with it.
        reason: ValueError,
    },
    /// The MAC could not be decrypted.
    #[error("cannot decrypt the MAC: {0}")]
    MacValue(ValueError),
    /// The MAC does not match the values: the file was changed after it was encrypted.
    #[error(
        "failed to verify data integrity: the MAC does not match the values (the file was modified after encryption)"
    )]
    MacMismatch,
    /// The file carries no MAC.
    #[error("failed to verify data integrity: the file has no MAC")]
    MacMissing,
    /// The document could not be read or written.
    #[error("cannot read or write the document")]
    Document(#[source] super::tree::TreeError),
    /// The decrypted document does not fit the output format.
    #[error("cannot write the decrypted document: {0}")]
    Output(&'static str),
}

/// What is wrong with one encrypted value.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    /// The value is not in SOPS' `ENC[AES256_GCM,...]` format.
    #[error("the value does not match SOPS' data format")]
    Format,
    /// A part of the value is not valid base64.
    #[error("invalid base64 in the {0} part")]
    Base64(&'static str),
    /// The IV is not 32 bytes or the tag not 16.
    #[error("invalid IV or tag length")]
    Length,
    /// Authentication failed: the value, its key path or the key is wrong.
    #[error(
        "authentication failed (the value was changed, moved to another key, or encrypted with another data key)"
    )]
    Authentication,
    /// The value's type is unknown.
    #[error("unknown value type")]
    UnknownType,
    /// The plaintext does not read as its declared type.
    #[error("the decrypted value does not read as its declared type")]
    Type,
}

/// Which values a file's rule encrypts.
enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
}

impl Rule {
    /// Whether the value at `path` was encrypted.
    fn encrypts(&self, path: &[String]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
        }
    }
}

/// One age recipient of the data key.
struct AgeStanza {
    recipient: String,
    enc: String,
}

/// The parts of the `sops` metadata decryption needs.
pub(crate) struct Metadata {
    age: Vec<AgeStanza>,
    other_key_types: Vec<String>,
    last_modified: String,
    mac: String,
    rule: Rule,
    mac_only_encrypted: bool,
}

impl Metadata {
    /// Reads the `sops` mapping of a YAML or JSON document.
    pub(crate) fn from_node(node: &Node) -> Result<Metadata, SopsError> {
        let Node::Map(_) = node else {
            return Err(SopsError::Metadata(
                "the sops entry is not a mapping".into(),
            ));
        };
        let mut age = age_stanzas(node.get("age"))?;
        let mut other_key_types = present_key_types(node);
        if let Some(groups) = node.get("key_groups") {
            let Node::List(groups) = groups else {
                return Err(SopsError::Metadata("key_groups is not a list".into()));
            };
            match groups.as_slice() {
                [] => {}
                [group] => {
                    age.extend(age_stanzas(group.get("age"))?);
                    other_key_types.extend(present_key_types(group));
                }
                _ => {
                    return Err(SopsError::Unsupported(
                        "several key groups (Shamir secret sharing)".into(),
                    ));
                }
            }
        }
        let text = |key: &str| -> Result<Option<String>, SopsError> {
            match node.get(key) {
                None | Some(Node::Null) => Ok(None),
                Some(Node::Str(s)) if s.is_empty() => Ok(None),
                Some(Node::Str(s)) => Ok(Some(s.clone())),
                Some(_) => Err(SopsError::Metadata(format!("{key} is not a string"))),
            }
        };
        for key in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
            if text(key)?.is_some() {
                return Err(SopsError::Unsupported(key.to_string()));
            }
        }
        let regex = |key: &str, pattern: String| {
            Regex::new(&pattern).map_err(|_| {
                SopsError::Metadata(format!("{key} is not a valid regular expression"))
            })
        };
        let mut rules = Vec::new();
        if let Some(s) = text("unencrypted_suffix")? {
            rules.push(Rule::UnencryptedSuffix(s));
        }
        if let Some(s) = text("encrypted_suffix")? {
            rules.push(Rule::EncryptedSuffix(s));
        }
        if let Some(s) = text("unencrypted_regex")? {
            rules.push(Rule::UnencryptedRegex(regex("unencrypted_regex", s)?));
        }
        if let Some(s) = text("encrypted_regex")? {
            rules.push(Rule::EncryptedRegex(regex("encrypted_regex", s)?));
        }
        if rules.len() > 1 {
            return Err(SopsError::Metadata(
                "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, \
                 unencrypted_regex is set"
                    .into(),
            ));
        }
        let rule = rules
            .pop()
            .unwrap_or_else(|| Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_string()));
        let mac_only_encrypted = match node.get("mac_only_encrypted") {
            None | Some(Node::Null) => false,
            Some(Node::Bool(b)) => *b,
            Some(Node::Str(s)) => parse_go_bool(s)
                .ok_or_else(|| SopsError::Metadata("mac_only_encrypted is not a boolean".into()))?,
            Some(_) => {
                return Err(SopsError::Metadata(
                    "mac_only_encrypted is not a boolean".into(),
                ));
            }
        };
        Ok(Metadata {
            age,
            other_key_types,
            last_modified: text("lastmodified")?.unwrap_or_default(),
            mac: text("mac")?.unwrap_or_default(),
            rule,
            mac_only_encrypted,
        })
    }

    /// Decrypts the data key with the first identity that opens one of the age stanzas.
    pub(crate) fn data_key(
        &self,
        identities: &[age::x25519::Identity],
    ) -> Result<Zeroizing<Vec<u8>>, SopsError> {
        if self.age.is_empty() {
            return Err(SopsError::NoAgeRecipient {
                key_types: self.other_key_types.clone(),
            });
        }
        if !identities.is_empty() {
            for stanza in &self.age {
                let reader = age::armor::ArmoredReader::new(stanza.enc.as_bytes());
                let decryptor =
                    age::Decryptor::new_buffered(reader).map_err(|source| SopsError::Age {
                        recipient: stanza.recipient.clone(),
                        source,
                    })?;
                let tried = identities.iter().map(|i| i as &dyn age::Identity);
                match decryptor.decrypt(tried) {
                    Ok(mut plaintext) => {
                        let mut key = Zeroizing::new(Vec::with_capacity(32));
                        plaintext
                            .read_to_end(&mut key)
                            .map_err(|err| SopsError::Age {
                                recipient: stanza.recipient.clone(),
                                source: age::DecryptError::Io(err),
                            })?;
                        if key.len() != 32 {
                            return Err(SopsError::DataKeyLength(key.len()));
                        }
                        return Ok(key);
                    }
                    Err(age::DecryptError::NoMatchingKeys) => continue,
                    Err(source) => {
                        return Err(SopsError::Age {
                            recipient: stanza.recipient.clone(),
                            source,
                        });
                    }
                }
            }
        }
        Err(SopsError::NoMatchingIdentity {
            recipients: self.age.iter().map(|s| s.recipient.clone()).collect(),
            identities: identities.len(),
        })
    }

    /// Whether the value at `path` was encrypted.
    pub(crate) fn encrypts(&self, path: &[String]) -> bool {
        self.rule.encrypts(path)
    }
}

fn age_stanzas(node: Option<&Node>) -> Result<Vec<AgeStanza>, SopsError> {
    let items = match node {
        None | Some(Node::Null) => return Ok(Vec::new()),
        Some(Node::List(items)) => items,
        Some(_) => return Err(SopsError::Metadata("age is not a list".into())),
    };
    items
        .iter()
        .map(|item| {
            let field = |key: &str| {
                item.get(key)
                    .and_then(Node::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| SopsError::Metadata(format!("an age entry has no {key}")))
            };
            Ok(AgeStanza {
                recipient: field("recipient")?,
                enc: field("enc")?,
            })
        })
        .collect()
}

fn present_key_types(node: &Node) -> Vec<String> {
    OTHER_KEY_TYPES
        .iter()
        .filter(|key| matches!(node.get(key), Some(Node::List(items)) if !items.is_empty()))
        .map(|key| key.to_string())
        .collect()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A decrypted value, typed as its `type` says.
pub(crate) enum Plain {
    /// A value of the tree.
    Value(Node),
    /// A comment (decrypted comments are not part of the MAC).
    Comment(String),
}

/// Decrypts one `ENC[...]` value with `key`, `aad` being its key path (or the MAC's time).
pub(crate) fn decrypt_value(text: &str, key: &[u8], aad: &str) -> Result<Plain, ValueError> {
    if text.is_empty() {
        return Ok(Plain::Value(Node::Str(String::new())));
    }
    let Encrypted {
        data,
        iv,
        tag,
        kind,
    } = parse_encrypted(text)?;
    if iv.len() != 32 || tag.len() != 16 {
        return Err(ValueError::Length);
    }
    let cipher = AesGcm::<Aes256, U32>::new_from_slice(key).map_err(|_| ValueError::Length)?;
    let mut sealed = data;
    sealed.extend_from_slice(&tag);
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::<U32>::from_slice(&iv),
                Payload {
                    msg: &sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| ValueError::Authentication)?,
    );
    let text = || std::str::from_utf8(&plaintext).map_err(|_| ValueError::Type);
    Ok(Plain::Value(match kind {
        "str" => match std::str::from_utf8(&plaintext) {
            Ok(s) => Node::Str(s.to_string()),
            Err(_) => Node::Bytes(plaintext.to_vec()),
        },
        "int" => Node::Int(text()?.parse().map_err(|_| ValueError::Type)?),
        "float" => Node::Float(parse_go_float(text()?).ok_or(ValueError::Type)?),
        "bool" => Node::Bool(parse_go_bool(text()?).ok_or(ValueError::Type)?),
        "bytes" => Node::Bytes(plaintext.to_vec()),
        "time" => Node::Str(text()?.to_string()),
        "comment" => return Ok(Plain::Comment(text()?.to_string())),
        _ => return Err(ValueError::UnknownType),
    }))
}

fn parse_go_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// The parts of an `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]` value.
struct Encrypted<'a> {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: &'a str,
}

/// Splits and base64-decodes an encrypted value.
fn parse_encrypted(text: &str) -> Result<Encrypted<'_>, ValueError> {
    let body = text
        .strip_prefix("ENC[AES256_GCM,data:")
        .ok_or(ValueError::Format)?;
    let (data, rest) = body.split_once(",iv:").ok_or(ValueError::Format)?;
    let (iv, rest) = rest.split_once(",tag:").ok_or(ValueError::Format)?;
    let (tag, rest) = rest.split_once(",type:").ok_or(ValueError::Format)?;
    let kind = rest.strip_suffix(']').ok_or(ValueError::Format)?;
    if data.is_empty() || iv.is_empty() || tag.is_empty() || kind.is_empty() {
        return Err(ValueError::Format);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Encrypted {
        data: b64.decode(data).map_err(|_| ValueError::Base64("data"))?,
        iv: b64.decode(iv).map_err(|_| ValueError::Base64("iv"))?,
        tag: b64.decode(tag).map_err(|_| ValueError::Base64("tag"))?,
        kind,
    })
}

/// The bytes SOPS hashes for a value (Go's `sops.ToBytes`).
pub(crate) fn mac_bytes(value: &Node) -> Option<Vec<u8>> {
    Some(match value {
        Node::Str(s) => s.as_bytes().to_vec(),
        Node::Bytes(b) => b.clone(),
        Node::Int(i) => i.to_string().into_bytes(),
        Node::Float(f) => format_go_float(*f).into_bytes(),
        Node::Bool(true) => b"True".to_vec(),
        Node::Bool(false) => b"False".to_vec(),
        Node::Null | Node::Map(_) | Node::List(_) => return None,
    })
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, no exponent.
pub(crate) fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// Decrypts the values of a document tree and computes its MAC as it goes.
pub(crate) struct TreeDecryptor<'a> {
    metadata: &'a Metadata,
    key: &'a [u8],
    hash: Sha512,
}

impl<'a> TreeDecryptor<'a> {
    /// A decryptor for one document set sharing `metadata` and its data `key`.
    pub(crate) fn new(metadata: &'a Metadata, key: &'a [u8]) -> Self {
        let mut hash = Sha512::new();
        if metadata.mac_only_encrypted {
            hash.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        TreeDecryptor {
            metadata,
            key,
            hash,
        }
    }

    /// Decrypts every value of `node` (a document without its `sops` entry).
    pub(crate) fn decrypt_tree(&mut self, node: Node) -> Result<Node, SopsError> {
        let mut path = Vec::new();
        self.walk(node, &mut path)
    }

    fn walk(&mut self, node: Node, path: &mut Vec<String>) -> Result<Node, SopsError> {
        match node {
            Node::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    path.push(key);
                    let value = self.walk(value, path)?;
                    let key = path.pop().unwrap_or_default();
                    out.push((key, value));
                }
                Ok(Node::Map(out))
            }
            Node::List(items) => items
                .into_iter()
                .map(|item| self.walk(item, path))
                .collect::<Result<Vec<_>, _>>()
                .map(Node::List),
            Node::Null => Ok(Node::Null),
            leaf => self.leaf(leaf, path),
        }
    }

    /// Decrypts (when the rule says it was encrypted) and hashes one value at `path`.
    pub(crate) fn leaf(&mut self, value: Node, path: &[String]) -> Result<Node, SopsError> {
        let encrypted = self.metadata.encrypts(path);
        let value = if encrypted {
            let Node::Str(text) = &value else {
                return Err(SopsError::Value {
                    path: path.join("."),
                    reason: ValueError::Format,
                });
            };
            let aad = format!("{}:", path.join(":"));
            match decrypt_value(text, self.key, &aad) {
                Ok(Plain::Value(node)) => node,
                Ok(Plain::Comment(_)) => {
                    return Err(SopsError::Value {
                        path: path.join("."),
                        reason: ValueError::Type,
                    });
                }
                Err(reason) => {
                    return Err(SopsError::Value {
                        path: path.join("."),
                        reason,
                    });
                }
            }
        } else {
            value
        };
        if (encrypted || !self.metadata.mac_only_encrypted)
            && let Some(bytes) = mac_bytes(&value)
        {
            self.hash.update(&bytes);
        }
        Ok(value)
    }

    /// Decrypts a comment encrypted under `path` (as dotenv files hold them); a comment that
    /// does not decrypt is kept as it is, as SOPS does.
    pub(crate) fn comment(&self, text: &str, path: &[String]) -> String {
        if !self.metadata.encrypts(path) {
            return text.to_string();
        }
        let aad = format!("{}:", path.join(":"));
        match decrypt_value(text, self.key, &aad) {
            Ok(Plain::Comment(c)) => c,
            Ok(Plain::Value(Node::Str(s))) => s,
            _ => text.to_string(),
        }
    }

    /// Compares the MAC of the values seen with the one stored in the metadata.
    pub(crate) fn verify_mac(self) -> Result<(), SopsError> {
        let computed = hex::encode_upper(self.hash.finalize());
        if self.metadata.mac.is_empty() {
            return Err(SopsError::MacMissing);
        }
        let aad = normalize_rfc3339(&self.metadata.last_modified);
        let stored = match decrypt_value(&self.metadata.mac, self.key, &aad) {
            Ok(Plain::Value(Node::Str(s))) => s,
            Ok(_) => return Err(SopsError::MacValue(ValueError::Type)),
            Err(reason) => return Err(SopsError::MacValue(reason)),
        };
        if stored != computed {
            return Err(SopsError::MacMismatch);
        }
        Ok(())
    }
}

/// The `lastmodified` time as Go writes it back (`time.RFC3339`): no fractional seconds, `Z`
/// for a zero offset.
fn normalize_rfc3339(text: &str) -> String {
    let Some(t_pos) = text.find('T') else {
        return text.to_string();
    };
    let (date, time) = text.split_at(t_pos);
    let mut time = time.to_string();
    if let Some(dot) = time.find('.') {
        let end = time[dot + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(time.len(), |i| dot + 1 + i);
        time.replace_range(dot..end, "");
    }
    for zero in ["+00:00", "-00:00"] {
        if let Some(stripped) = time.strip_suffix(zero) {
            time = format!("{stripped}Z");
        }
    }
    format!("{date}{time}")
}

/// Splits flattened metadata keys (dotenv's `sops_age__list_0__map_enc`) back into a tree.
pub(crate) fn unflatten(entries: Vec<(String, String)>) -> Result<Node, SopsError> {
    let mut root = Node::Map(Vec::new());
    for (key, value) in entries {
        let tokens = tokenize(&key);
        insert(&mut root, &tokens, Node::Str(value))
            .map_err(|()| SopsError::Metadata(format!("conflicting metadata key {key}")))?;
    }
    Ok(root)
}

enum Token {
    Key(String),
    Index(usize),
}

fn tokenize(key: &str) -> Vec<Token> {
    const MAP: &str = "__map_";
    const LIST: &str = "__list_";
    let mut tokens = Vec::new();
    let mut rest = key;
    let mut current_is_list = false;
    loop {
        let next_map = rest.find(MAP);
        let next_list = rest.find(LIST);
        let (end, next_list_kind, skip) = match (next_map, next_list) {
            (Some(m), Some(l)) if l < m => (l, true, LIST.len()),
            (Some(m), _) => (m, false, MAP.len()),
            (None, Some(l)) => (l, true, LIST.len()),
            (None, None) => (rest.len(), false, 0),
        };
        let part = &rest[..end];
        tokens.push(if current_is_list {
            Token::Index(part.parse().unwrap_or(0))
        } else {
            Token::Key(part.to_string())
        });
        if end == rest.len() {
            return tokens;
        }
        current_is_list = next_list_kind;
        rest = &rest[end + skip..];
    }
}

fn insert(node: &mut Node, tokens: &[Token], value: Node) -> Result<(), ()> {
    let Some((first, rest)) = tokens.split_first() else {
        *node = value;
        return Ok(());
    };
    let empty_child = match rest.first() {
        Some(Token::Index(_)) => Node::List(Vec::new()),
        Some(Token::Key(_)) => Node::Map(Vec::new()),
        None => Node::Null,
    };
    match (first, node) {
        (Token::Key(key), Node::Map(entries)) => {
            let index = match entries.iter().position(|(k, _)| k == key) {
                Some(i) => i,
                None => {
                    entries.push((key.clone(), empty_child));
                    entries.len() - 1
                }
            };
            insert(&mut entries[index].1, rest, value)
        }
        (Token::Index(i), Node::List(items)) => {
            while items.len() <= *i {
                items.push(empty_child.clone());
            }
            insert(&mut items[*i], rest, value)
        }
        _ => Err(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_number_formats() {
        assert_eq!(format_go_float(1.5e30), "1500000000000000000000000000000");
        assert_eq!(format_go_float(0.25), "0.25");
        assert_eq!(format_go_float(1.0), "1");
        assert_eq!(format_go_float(1e-7), "0.0000001");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(mac_bytes(&Node::Bool(true)).unwrap(), b"True");
        assert_eq!(mac_bytes(&Node::Int(-3)).unwrap(), b"-3");
        assert!(mac_bytes(&Node::Null).is_none());
    }

    #[test]
    fn last_modified_is_normalized_like_go() {
        assert_eq!(
            normalize_rfc3339("2024-01-02T03:04:05Z"),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            normalize_rfc3339("2024-01-02T03:04:05.123+00:00"),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            normalize_rfc3339("2024-01-02T03:04:05+02:00"),
            "2024-01-02T03:04:05+02:00"
        );
    }

    #[test]
    fn malformed_values_are_refused_without_echoing_them() {
        let key = [7u8; 32];
        for (text, expected) in [
            ("plain-secret", ValueError::Format),
            (
                "ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]",
                ValueError::Base64("data"),
            ),
            (
                "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
                ValueError::Length,
            ),
        ] {
            assert_eq!(
                decrypt_value(text, &key, "a:").err(),
                Some(expected),
                "{text}"
            );
        }
        let err = SopsError::Value {
            path: "data.password".into(),
            reason: ValueError::Format,
        };
        assert!(!err.to_string().contains("plain-secret"));
    }

    #[test]
    fn rules_follow_every_key_of_the_path() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let default = Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.into());
        assert!(default.encrypts(&path(&["a", "b"])));
        assert!(!default.encrypts(&path(&["a_unencrypted", "b"])));
        let regex = Rule::EncryptedRegex(Regex::new("^(data|stringData)$").unwrap());
        assert!(regex.encrypts(&path(&["data", "x"])));
        assert!(!regex.encrypts(&path(&["metadata", "name"])));
        let suffix = Rule::EncryptedSuffix("et".into());
        assert!(suffix.encrypts(&path(&["secret", "key"])));
        assert!(!suffix.encrypts(&path(&["public"])));
    }

    #[test]
    fn flattened_metadata_unflattens() {
        let node = unflatten(vec![
            ("age__list_0__map_enc".into(), "E".into()),
            ("age__list_0__map_recipient".into(), "R".into()),
            ("mac".into(), "M".into()),
        ])
        .unwrap();
        let age = node.get("age").unwrap();
        let Node::List(items) = age else { panic!() };
        assert_eq!(items[0].get("enc"), Some(&Node::Str("E".into())));
        assert_eq!(items[0].get("recipient"), Some(&Node::Str("R".into())));
        assert_eq!(node.get("mac"), Some(&Node::Str("M".into())));
    }
}
