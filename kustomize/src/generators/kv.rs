//! Key/value pairs of a generator, read from env files, literals and files, as kustomize reads
//! them.

use std::collections::HashSet;

use base64::Engine as _;

use super::{FileSource, GeneratorError};

/// The sources of one generator entry.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// `literals`.
    pub literals: &'a [String],
    /// `files`.
    pub files: &'a [String],
    /// `envs`.
    pub envs: &'a [String],
    /// The legacy `env`.
    pub env: Option<&'a str>,
}

/// Length of the lines kustomize splits long base64 values into.
const BASE64_LINE: usize = 70;

/// Standard base64 with padding, as Kubernetes stores `binaryData` and Secret `data`, laid out
/// as kustomize lays it out: an encoding of 70 characters or more is split into 70-character
/// lines, each ending in `\n` (the value, and so the name hash, depends on it); a shorter one is
/// a single line without a newline.
pub fn base64(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    if encoded.len() < BASE64_LINE {
        return encoded;
    }
    let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / BASE64_LINE + 1);
    for line in encoded.as_bytes().chunks(BASE64_LINE) {
        // Base64 is ASCII, so every chunk boundary is a char boundary.
        wrapped.push_str(std::str::from_utf8(line).unwrap_or_default());
        wrapped.push('\n');
    }
    wrapped
}

/// All pairs of `sources`, in kustomize's order (env files, literals, files), checked for
/// repeated keys. `kind` and `name` are for error messages.
///
/// # Errors
///
/// A malformed literal or file source, an unreadable file, a repeated key.
pub fn load(
    kind: &'static str,
    name: &str,
    sources: &Sources<'_>,
    files: &dyn FileSource,
) -> Result<Vec<(String, Vec<u8>)>, GeneratorError> {
    let read = |path: &str| {
        files
            .read_file(path)
            .map_err(|source| GeneratorError::ReadFile {
                kind,
                name: name.to_string(),
                path: path.to_string(),
                source,
            })
    };
    let mut pairs = Vec::new();
    for path in sources.envs.iter().map(String::as_str).chain(sources.env) {
        let content = read(path)?;
        for (key, value) in parse_env_file(&content, path)? {
            pairs.push((key, value.into_bytes()));
        }
    }
    for literal in sources.literals {
        let (key, value) = parse_literal(literal)?;
        pairs.push((key, value.into_bytes()));
    }
    for source in sources.files {
        let (key, path) = parse_file_source(source)?;
        pairs.push((key, read(&path)?));
    }
    let mut seen = HashSet::new();
    for (key, _) in &pairs {
        if !seen.insert(key.as_str()) {
            return Err(GeneratorError::DuplicateKey {
                kind,
                name: name.to_string(),
                key: key.clone(),
            });
        }
    }
    Ok(pairs)
}

/// Splits a literal `key=value` at the first `=`; the value loses one pair of matching
/// surrounding quotes (`"..."` or `'...'`).
///
/// # Errors
///
/// No `=`, or nothing before it.
pub fn parse_literal(literal: &str) -> Result<(String, String), GeneratorError> {
    match literal.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), remove_quotes(value))),
        _ => Err(GeneratorError::InvalidLiteral {
            literal: literal.to_string(),
        }),
    }
}

fn remove_quotes(value: &str) -> String {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last))
            if bytes.len() >= 2 && first == last && (first == b'"' || first == b'\'') =>
        {
            value[1..value.len() - 1].to_string()
        }
        _ => value.to_string(),
    }
}

/// Splits a `files` entry into its key and path: `path` gives the path's base name as key,
/// `key=path` the given key.
///
/// # Errors
///
/// `=path` (no key), `key=` (no path), a second `=`.
pub fn parse_file_source(source: &str) -> Result<(String, String), GeneratorError> {
    let invalid = |reason| GeneratorError::InvalidFileSource {
        source_text: source.to_string(),
        reason,
    };
    match source.split_once('=') {
        None => Ok((base_name(source).to_string(), source.to_string())),
        Some(("", _)) => Err(invalid("missing key name")),
        Some((_, path)) if path.contains('=') => Err(invalid("key name or file path contains '='")),
        Some((_, "")) => Err(invalid("missing file path")),
        Some((key, path)) => Ok((key.to_string(), path.to_string())),
    }
}

/// Go's `path.Base`: the last element, trailing slashes ignored.
fn base_name(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// The pairs of an env file: one `KEY=value` per line (split at the first `=`, the value kept
/// as is, quotes included); leading white space skipped; blank lines and lines starting with `#`
/// ignored; a line without `=` gives the key an empty value; a UTF-8 byte-order mark on the first
/// line and a `\r` before a line end are dropped. `path` is for error messages.
///
/// # Errors
///
/// A line that is not valid UTF-8.
pub fn parse_env_file(content: &[u8], path: &str) -> Result<Vec<(String, String)>, GeneratorError> {
    let mut pairs = Vec::new();
    let mut lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
    if content.ends_with(b"\n") {
        lines.pop();
    }
    for (index, raw) in lines.into_iter().enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| GeneratorError::EnvFileNotUtf8 {
            path: path.to_string(),
            line: index + 1,
        })?;
        let line = if index == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        if key.is_empty() {
            continue;
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}
