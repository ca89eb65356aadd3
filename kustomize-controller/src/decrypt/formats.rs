//! SOPS file formats ("stores"): how an encrypted document is laid out in YAML, JSON, dotenv
//! and binary files, and how the decrypted document is written back.

use super::sops::{Metadata, SopsError, TreeDecryptor, unflatten};
use super::tree::{self, Node, TreeError};

/// A SOPS file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Any file: its bytes are the `data` value of a JSON document.
    Binary,
    /// `KEY=value` lines; the metadata in flattened `sops_...` keys.
    Dotenv,
    /// INI files (recognised, not supported).
    Ini,
    /// A JSON object with a `sops` entry.
    Json,
    /// YAML documents; the metadata in the first one's `sops` entry.
    Yaml,
}

impl Format {
    /// The format SOPS (and Flux) infer from a file name: `.yaml`/`.yml`, `.json` (and Flux's
    /// `.dockerconfigjson`), `.env`, `.ini`; anything else is binary.
    pub fn for_path(path: &str) -> Format {
        if path.ends_with(".dockerconfigjson") || path.ends_with(".json") {
            Format::Json
        } else if path.ends_with(".yaml") || path.ends_with(".yml") {
            Format::Yaml
        } else if path.ends_with(".env") {
            Format::Dotenv
        } else if path.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }

    /// The text every encrypted file of this format holds (Flux's marker bytes).
    pub fn marker(self) -> &'static [u8] {
        match self {
            Format::Binary | Format::Json => b"\"mac\": \"ENC[",
            Format::Dotenv => b"sops_mac=ENC[",
            Format::Ini => b"[sops]",
            Format::Yaml => b"mac: ENC[",
        }
    }

    /// The format whose marker `data` holds, if any (JSON, YAML, dotenv, INI in that order).
    pub fn detect(data: &[u8]) -> Option<Format> {
        [Format::Json, Format::Yaml, Format::Dotenv, Format::Ini]
            .into_iter()
            .find(|f| contains(data, f.marker()))
    }

    fn name(self) -> &'static str {
        match self {
            Format::Binary => "binary",
            Format::Dotenv => "dotenv",
            Format::Ini => "INI",
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        }
    }
}

/// Whether `haystack` contains `needle`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A line of a dotenv file.
enum DotenvLine {
    Comment(String),
    Pair(String, String),
}

/// A decrypted file: its documents, and for dotenv input its lines with comments.
struct Decrypted {
    documents: Vec<Node>,
    dotenv: Option<Vec<DotenvLine>>,
}

/// How much of the SOPS integrity protection to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mac {
    /// Verify the MAC (whole files, exactly as encrypted).
    Verify,
    /// Skip it (objects changed by the build); each value is still authenticated.
    Skip,
}

/// Decrypts a whole file read as `input` and writes it as `output`.
pub(crate) fn decrypt_file(
    data: &[u8],
    input: Format,
    output: Format,
    identities: &[age::x25519::Identity],
    mac: Mac,
) -> Result<Vec<u8>, SopsError> {
    let decrypted = match input {
        Format::Yaml => decrypt_yaml(data, identities, mac)?,
        Format::Json | Format::Binary => {
            let document = tree::parse_json(data).map_err(SopsError::Document)?;
            Decrypted {
                documents: vec![decrypt_document(document, identities, mac)?],
                dotenv: None,
            }
        }
        Format::Dotenv => decrypt_dotenv(data, identities, mac)?,
        Format::Ini => return Err(SopsError::Unsupported("INI files".into())),
    };
    emit(decrypted, output)
}

/// Decrypts one JSON-shaped document carrying a `sops` entry; returns it without the entry.
pub(crate) fn decrypt_document(
    mut document: Node,
    identities: &[age::x25519::Identity],
    mac: Mac,
) -> Result<Node, SopsError> {
    if !matches!(document, Node::Map(_)) {
        return Err(SopsError::Document(TreeError::NotAMapping));
    }
    let metadata = document.remove("sops").ok_or(SopsError::MissingMetadata)?;
    let metadata = Metadata::from_node(&metadata)?;
    let key = metadata.data_key(identities)?;
    let mut decryptor = TreeDecryptor::new(&metadata, &key);
    let document = decryptor.decrypt_tree(document)?;
    if mac == Mac::Verify {
        decryptor.verify_mac()?;
    }
    Ok(document)
}

fn decrypt_yaml(
    data: &[u8],
    identities: &[age::x25519::Identity],
    mac: Mac,
) -> Result<Decrypted, SopsError> {
    let text = std::str::from_utf8(data).map_err(|_| SopsError::Document(TreeError::NotText))?;
    let mut documents = tree::parse_yaml(text).map_err(SopsError::Document)?;
    let mut metadata = None;
    for (index, document) in documents.iter_mut().enumerate() {
        if !matches!(document, Node::Map(_)) {
            return Err(SopsError::Document(TreeError::NotAMapping));
        }
        let found = document.remove("sops");
        if index == 0 {
            metadata = found;
        }
    }
    let metadata = Metadata::from_node(&metadata.ok_or(SopsError::MissingMetadata)?)?;
    let key = metadata.data_key(identities)?;
    let mut decryptor = TreeDecryptor::new(&metadata, &key);
    let documents = documents
        .into_iter()
        .map(|d| decryptor.decrypt_tree(d))
        .collect::<Result<Vec<_>, _>>()?;
    if mac == Mac::Verify {
        decryptor.verify_mac()?;
    }
    Ok(Decrypted {
        documents,
        dotenv: None,
    })
}

fn decrypt_dotenv(
    data: &[u8],
    identities: &[age::x25519::Identity],
    mac: Mac,
) -> Result<Decrypted, SopsError> {
    let text = std::str::from_utf8(data).map_err(|_| SopsError::Document(TreeError::NotText))?;
    let mut lines = Vec::new();
    let mut flattened = Vec::new();
    for (number, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            lines.push(DotenvLine::Comment(comment.to_string()));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(SopsError::Metadata(format!(
                "invalid dotenv line {}: no '='",
                number + 1
            )));
        };
        let value = value.replace("\\n", "\n");
        match key.strip_prefix("sops_") {
            Some(meta_key) => flattened.push((meta_key.to_string(), value)),
            None => lines.push(DotenvLine::Pair(key.to_string(), value)),
        }
    }
    if flattened.is_empty() {
        return Err(SopsError::MissingMetadata);
    }
    let metadata = Metadata::from_node(&unflatten(flattened)?)?;
    let key = metadata.data_key(identities)?;
    let mut decryptor = TreeDecryptor::new(&metadata, &key);
    let mut decrypted = Vec::with_capacity(lines.len());
    let mut entries = Vec::new();
    for line in lines {
        decrypted.push(match line {
            DotenvLine::Comment(text) => DotenvLine::Comment(decryptor.comment(&text, &[])),
            DotenvLine::Pair(key, value) => {
                let path = [key];
                let value = decryptor.leaf(Node::Str(value), &path)?;
                let [key] = path;
                entries.push((key.clone(), value.clone()));
                DotenvLine::Pair(key, dotenv_value(&value)?)
            }
        });
    }
    if mac == Mac::Verify {
        decryptor.verify_mac()?;
    }
    Ok(Decrypted {
        documents: vec![Node::Map(entries)],
        dotenv: Some(decrypted),
    })
}

/// A dotenv value: text with line breaks as `\n`, scalars as Go prints them.
fn dotenv_value(value: &Node) -> Result<String, SopsError> {
    Ok(match value {
        Node::Str(s) => s.replace('\n', "\\n"),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => super::sops::format_go_float(*f),
        Node::Bool(b) => b.to_string(),
        Node::Null => String::new(),
        Node::Bytes(_) => return Err(SopsError::Document(TreeError::NotText)),
        Node::Map(_) | Node::List(_) => {
            return Err(SopsError::Output(
                "a nested value cannot be written to a dotenv file",
            ));
        }
    })
}

fn emit(decrypted: Decrypted, output: Format) -> Result<Vec<u8>, SopsError> {
    let Decrypted {
        mut documents,
        dotenv,
    } = decrypted;
    let single = |documents: &mut Vec<Node>, format: Format| -> Result<Node, SopsError> {
        if documents.len() != 1 {
            return Err(SopsError::Output(match format {
                Format::Json => "several YAML documents cannot be written as JSON",
                _ => "several YAML documents cannot be written in this format",
            }));
        }
        Ok(documents.remove(0))
    };
    match output {
        Format::Yaml => tree::emit_yaml(&documents).map_err(SopsError::Document),
        Format::Json => {
            tree::emit_json(&single(&mut documents, output)?).map_err(SopsError::Document)
        }
        Format::Binary => match single(&mut documents, output)?.remove("data") {
            Some(Node::Str(s)) => Ok(s.into_bytes()),
            Some(Node::Bytes(b)) => Ok(b),
            Some(_) => Err(SopsError::Output("the 'data' entry is not a string")),
            None => Err(SopsError::Output(
                "no 'data' entry to write as a binary file",
            )),
        },
        Format::Dotenv => {
            let lines = match dotenv {
                Some(lines) => lines,
                None => {
                    let Node::Map(entries) = single(&mut documents, output)? else {
                        return Err(SopsError::Document(TreeError::NotAMapping));
                    };
                    entries
                        .into_iter()
                        .map(|(k, v)| Ok(DotenvLine::Pair(k, dotenv_value(&v)?)))
                        .collect::<Result<Vec<_>, SopsError>>()?
                }
            };
            let mut out = String::new();
            for line in lines {
                match line {
                    DotenvLine::Comment(c) => out.push_str(&format!("#{c}\n")),
                    DotenvLine::Pair(k, v) => out.push_str(&format!("{k}={v}\n")),
                }
            }
            Ok(out.into_bytes())
        }
        Format::Ini => Err(SopsError::Unsupported(format!(
            "writing {} files",
            output.name()
        ))),
    }
}
