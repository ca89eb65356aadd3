//! `postBuild` variable substitution, with the behaviour of Flux's kustomize-controller.
//!
//! Flux writes each built object as YAML text, expands `${...}` expressions in that text with
//! its fork of `envsubst`, and reads the text back as YAML. [`substitute_objects`] gives the same
//! results working on the object tree:
//!
//! - the expressions: `${var}`, the defaults `${var:=default}`, `${var:-default}`,
//!   `${var=default}`, `${var-default}` (a default applies when the value is empty or unset;
//!   it may itself hold `${...}`), and the bash-like functions Flux supports: `${#var}`,
//!   `${var^}`, `${var^^}`, `${var,}`, `${var,,}`, `${var:offset}`, `${var:offset:length}`,
//!   `${var#glob}`, `${var##glob}`, `${var%glob}`, `${var%%glob}`, `${var/old/new}`,
//!   `${var//old/new}`, `${var/#old/new}`, `${var/%old/new}`;
//! - `$$` is a literal `$`, so `$${var}` gives the text `${var}`; a `$` not followed by `{` is
//!   kept (`$var` is never expanded);
//! - mapping keys are expanded too.
//!
//! # Types of substituted values
//!
//! Flux's YAML text writes a string without quotes whenever YAML allows it, so a value such as
//! `replicas: ${REPLICAS}` becomes the integer 3 once `REPLICAS` is `"3"`: after expansion the
//! text is read as YAML again. The same happens here: a string that YAML would write without
//! quotes is replaced by the YAML value of its expanded text (an integer, a float, a boolean,
//! null for an empty result, even a flow list `[a, b]`); a string YAML must quote (it starts with
//! an indicator such as `'`, `"`, `[`, `*`, or holds `": "`, `" #"`, a tab, a line break)
//! stays a string. Quotes written around `${var}` in the source do not survive the kustomize
//! build (in Flux either), so to force a string use Flux's documented trick: a variable holding
//! a double quote, `${quote}${id}${quote}`.
//!
//! # Errors
//!
//! An invalid variable name, a malformed expression, an undefined variable in strict mode, or
//! an expansion that is not valid YAML where it stands is an error naming the object and the
//! field; values never appear in errors (they may come from Secrets).
//!
//! # Caveats
//!
//! - Nothing is substituted when `vars` is empty, even in strict mode (Flux: substitution only
//!   runs when at least one variable is defined).
//! - Line breaks are removed from variable values, as Flux does when it loads them.
//! - Scalars are typed the way the kustomize engine types YAML (go-yaml v3 rules: `0644` is
//!   octal, `yes` is a string).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Annotation (or label) that turns substitution off for one object.
pub const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Value of [`SUBSTITUTE_ANNOTATION`] that turns substitution off.
pub const DISABLED_VALUE: &str = "disabled";

/// The rule variable names must follow (Flux's `varsubRegex`).
pub const VARIABLE_NAME_RULE: &str = "^[_[:alpha:]][_[:alpha:][:digit:]]*$";

/// Why substitution failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubstituteError {
    /// A variable name does not match [`VARIABLE_NAME_RULE`].
    #[error("'{name}' var name is invalid, must match '{VARIABLE_NAME_RULE}'")]
    InvalidVariableName {
        /// The offending name.
        name: String,
    },
    /// A `${...}` expression could not be parsed.
    #[error("variable substitution failed in {object} at {field}: {reason}")]
    Syntax {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// Where in the object (`spec.template.metadata.labels.app`).
        field: String,
        /// What is wrong with the expression.
        reason: SyntaxError,
    },
    /// Strict mode: a variable without a default is not defined.
    #[error(
        "variable substitution failed in {object} at {field}: variable not set (strict mode): \"{variable}\""
    )]
    Undefined {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// Where in the object.
        field: String,
        /// The undefined variable.
        variable: String,
    },
    /// The expanded text is not valid YAML where it stands (for example `a: b` as a value).
    #[error(
        "variable substitution in {object} at {field} produced text that is not a valid YAML value"
    )]
    InvalidYaml {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// Where in the object.
        field: String,
    },
}

/// What is wrong with a `${...}` expression (the messages of Flux's `envsubst`).
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum SyntaxError {
    /// An expression Flux's parser rejects.
    #[error("bad substitution")]
    BadSubstitution,
    /// `${var` without its `}`.
    #[error("missing closing brace")]
    MissingClosingBrace,
    /// `${}` or `${ var}`: no variable name after `${`.
    #[error("unable to parse variable name")]
    VariableName,
}

/// Applies Flux's post-build substitution to each object (see the module docs).
///
/// `vars` maps variable names to values (`postBuild.substitute` merged over
/// `postBuild.substituteFrom`); with `strict`, a `${var}` whose variable is undefined and has no
/// default is an error naming it. Objects labelled or annotated
/// `kustomize.toolkit.fluxcd.io/substitute: disabled` are returned untouched.
pub fn substitute_objects(
    objects: Vec<Value>,
    vars: &BTreeMap<String, String>,
    strict: bool,
) -> Result<Vec<Value>, SubstituteError> {
    if vars.is_empty() {
        return Ok(objects);
    }
    for name in vars.keys() {
        if !is_valid_name(name) {
            return Err(SubstituteError::InvalidVariableName { name: name.clone() });
        }
    }
    let vars: BTreeMap<&str, String> = vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.replace('\n', "")))
        .collect();
    let lookup = Lookup {
        vars: &vars,
        strict,
    };
    objects
        .into_iter()
        .map(|object| {
            if is_disabled(&object) {
                return Ok(object);
            }
            let id = object_id(&object);
            let mut path = String::new();
            substitute_value(object, &lookup, &id, &mut path)
        })
        .collect()
}

/// Whether `name` follows [`VARIABLE_NAME_RULE`] (ASCII letters, digits, `_`; no leading digit).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Whether the object opts out with the label or annotation.
fn is_disabled(object: &Value) -> bool {
    ["labels", "annotations"].iter().any(|field| {
        object
            .pointer(&format!("/metadata/{field}"))
            .and_then(|m| m.get(SUBSTITUTE_ANNOTATION))
            .and_then(Value::as_str)
            == Some(DISABLED_VALUE)
    })
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

struct Lookup<'a> {
    vars: &'a BTreeMap<&'a str, String>,
    strict: bool,
}

/// Failure inside one string, before the object and field are known.
enum Failure {
    Syntax(SyntaxError),
    Undefined(String),
}

fn substitute_value(
    value: Value,
    lookup: &Lookup<'_>,
    id: &str,
    path: &mut String,
) -> Result<Value, SubstituteError> {
    let located = |path: &str, failure: Failure| match failure {
        Failure::Syntax(reason) => SubstituteError::Syntax {
            object: id.to_string(),
            field: display_path(path),
            reason,
        },
        Failure::Undefined(variable) => SubstituteError::Undefined {
            object: id.to_string(),
            field: display_path(path),
            variable,
        },
    };
    match value {
        Value::String(text) => {
            if !text.contains("${") && !text.contains("$$") {
                return Ok(Value::String(text));
            }
            let expanded = expand(&text, lookup).map_err(|f| located(path, f))?;
            if is_plain_scalar(&text) {
                yaml_value(&expanded).ok_or_else(|| SubstituteError::InvalidYaml {
                    object: id.to_string(),
                    field: display_path(path),
                })
            } else {
                Ok(Value::String(expanded))
            }
        }
        Value::Array(items) => {
            let base = path.len();
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                path.push_str(&format!("[{index}]"));
                out.push(substitute_value(item, lookup, id, path)?);
                path.truncate(base);
            }
            Ok(Value::Array(out))
        }
        Value::Object(map) => {
            let base = path.len();
            let mut out = serde_json::Map::new();
            for (key, item) in map {
                path.push('.');
                path.push_str(&key);
                let key = if key.contains("${") || key.contains("$$") {
                    expand(&key, lookup).map_err(|f| located(path, f))?
                } else {
                    key
                };
                let item = substitute_value(item, lookup, id, path)?;
                path.truncate(base);
                out.insert(key, item);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

fn display_path(path: &str) -> String {
    let trimmed = path.strip_prefix('.').unwrap_or(path);
    if trimmed.is_empty() {
        "<root>".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The YAML value of `text` written as a plain scalar after `key: `, typed like the kustomize
/// engine types YAML; `None` when that is not valid YAML.
fn yaml_value(text: &str) -> Option<Value> {
    let document = format!("v: {text}\n");
    let mut documents =
        ferroflux_kustomize::loader::parse_documents(&document, Path::new("substitution")).ok()?;
    if documents.len() != 1 {
        return None;
    }
    let serde_yaml::Value::Mapping(mut mapping) = documents.pop()? else {
        return None;
    };
    if mapping.len() != 1 {
        return None;
    }
    let value = mapping.remove("v")?;
    yaml_to_json(value)
}

fn yaml_to_json(value: serde_yaml::Value) -> Option<Value> {
    Some(match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                serde_json::Number::from_f64(n.as_f64()?).map(Value::Number)?
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Option<Vec<_>>>()?,
        ),
        serde_yaml::Value::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        serde_yaml::Value::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

/// Whether a YAML emitter (go-yaml, as Flux uses) writes `text` as a plain, unquoted scalar in
/// block context. Only strings holding `${` or `$$` are asked, and those never read as
/// another type, so only the syntax matters.
fn is_plain_scalar(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if text.starts_with("---") || text.starts_with("...") {
        return false;
    }
    let followed_by_space = |i: usize| bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace());
    match first {
        b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => return false,
        b'?' | b':' | b'-' if followed_by_space(0) => return false,
        _ => {}
    }
    if first.is_ascii_whitespace() || bytes.last().is_some_and(u8::is_ascii_whitespace) {
        return false;
    }
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b':' if followed_by_space(i) => return false,
            b'#' if i > 0 && bytes[i - 1].is_ascii_whitespace() => return false,
            b'\n' | b'\r' | b'\t' => return false,
            0x00..=0x1f | 0x7f => return false,
            _ => {}
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The expression language (Flux's fork of drone/envsubst).
// ---------------------------------------------------------------------------------------------

/// Expands every `${...}` of `text`.
fn expand(text: &str, lookup: &Lookup<'_>) -> Result<String, Failure> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let mut out = String::with_capacity(text.len());
    while let Some(c) = parser.peek() {
        if c == '$' && parser.peek_at(1) == Some('$') {
            out.push('$');
            parser.pos += 2;
        } else if c == '$' && parser.peek_at(1) == Some('{') {
            parser.pos += 2;
            let expr = parser.expression()?;
            out.push_str(&expr.evaluate(lookup)?);
        } else {
            out.push(c);
            parser.pos += 1;
        }
    }
    Ok(out)
}

/// One `${...}`: the variable, the operator and its arguments.
struct Expression {
    name: String,
    op: Op,
    args: Vec<Vec<Piece>>,
}

/// Text or a nested expression inside an argument.
enum Piece {
    Text(String),
    Nested(Expression),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Value,
    Length,
    Default,
    UpperFirst,
    UpperAll,
    LowerFirst,
    LowerAll,
    Substring,
    TrimShortestPrefix,
    TrimLongestPrefix,
    TrimShortestSuffix,
    TrimLongestSuffix,
    ReplaceFirst,
    ReplaceAll,
    ReplacePrefix,
    ReplaceSuffix,
}

impl Expression {
    fn evaluate(&self, lookup: &Lookup<'_>) -> Result<String, Failure> {
        let mut args = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            let mut text = String::new();
            for piece in arg {
                match piece {
                    Piece::Text(t) => text.push_str(t),
                    Piece::Nested(e) => text.push_str(&e.evaluate(lookup)?),
                }
            }
            args.push(text);
        }
        let value = match lookup.vars.get(self.name.as_str()) {
            Some(v) => v.clone(),
            None if lookup.strict && self.op != Op::Default => {
                return Err(Failure::Undefined(self.name.clone()));
            }
            None => String::new(),
        };
        Ok(apply(self.op, value, &args))
    }
}

fn apply(op: Op, value: String, args: &[String]) -> String {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match op {
        Op::Value => value,
        Op::Length => value.len().to_string(),
        Op::Default => {
            if value.is_empty() {
                args.concat()
            } else {
                value
            }
        }
        Op::UpperFirst => map_first(&value, |c| c.to_uppercase().collect()),
        Op::LowerFirst => map_first(&value, |c| c.to_lowercase().collect()),
        Op::UpperAll => value.to_uppercase(),
        Op::LowerAll => value.to_lowercase(),
        Op::Substring => substring(&value, arg(0), arg(1)),
        Op::TrimShortestPrefix => match arg(0) {
            Some(pattern) => trim_prefix(&value, pattern, false),
            None => value,
        },
        Op::TrimLongestPrefix => match arg(0) {
            Some(pattern) => trim_prefix(&value, pattern, true),
            None => value,
        },
        Op::TrimShortestSuffix | Op::TrimLongestSuffix => match arg(0) {
            Some(pattern) => {
                let reversed: String = value.chars().rev().collect();
                let pattern: String = pattern.chars().rev().collect();
                trim_prefix(&reversed, &pattern, op == Op::TrimLongestSuffix)
                    .chars()
                    .rev()
                    .collect()
            }
            None => value,
        },
        Op::ReplaceFirst => match arg(0) {
            Some(old) => value.replacen(old, arg(1).unwrap_or(""), 1),
            None => value,
        },
        Op::ReplaceAll => match arg(0) {
            Some(old) => value.replace(old, arg(1).unwrap_or("")),
            None => value,
        },
        Op::ReplacePrefix => match (arg(0), arg(1)) {
            (Some(old), Some(new)) if value.starts_with(old) => value.replacen(old, new, 1),
            _ => value,
        },
        Op::ReplaceSuffix => match (arg(0), arg(1)) {
            (Some(old), Some(new)) if value.ends_with(old) => {
                format!("{}{new}", &value[..value.len() - old.len()])
            }
            _ => value,
        },
    }
}

fn map_first(value: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

/// `${var:offset}` / `${var:offset:length}` on bytes, like Flux (bash semantics for negative
/// values; unparsable numbers leave the value as it is).
fn substring(value: &str, offset: Option<&str>, length: Option<&str>) -> String {
    let Some(Ok(offset)) = offset.map(|o| o.trim().parse::<i64>()) else {
        return value.to_string();
    };
    let len = value.len() as i64;
    let mut pos = if offset < 0 { len + offset } else { offset };
    pos = pos.max(0);
    let slice = |from: i64, to: i64| -> String {
        let (from, to) = (from as usize, to as usize);
        value
            .get(from..to)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&value.as_bytes()[from..to]).into_owned())
    };
    let Some(length) = length else {
        return if pos < len {
            slice(pos, len)
        } else {
            String::new()
        };
    };
    let Ok(length) = length.trim().parse::<i64>() else {
        return value.to_string();
    };
    if length < 0 {
        let end = len + length;
        return if end < pos {
            String::new()
        } else {
            slice(pos, end)
        };
    }
    if pos + length >= len {
        return if pos < len {
            slice(pos, len)
        } else {
            String::new()
        };
    }
    slice(pos, pos + length)
}

/// Removes the shortest (or longest) prefix of `value` matching the glob `pattern`.
fn trim_prefix(value: &str, pattern: &str, longest: bool) -> String {
    let boundaries: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(value.len()))
        .filter(|&i| i > 0)
        .collect();
    let mut found = None;
    for &end in &boundaries {
        match glob_match(pattern, &value[..end]) {
            Some(true) => {
                found = Some(end);
                if !longest {
                    break;
                }
            }
            Some(false) => {}
            None => return value.to_string(),
        }
    }
    match found {
        Some(end) => value[end..].to_string(),
        None => value.to_string(),
    }
}

/// Glob match of the whole `text` with Go's `path.Match` rules, as Flux uses: `*` and `?` do
/// not match `/`; `[...]` classes (with `^`/`!` negation and ranges); `\` escapes. `None` for a
/// malformed pattern.
fn glob_match(pattern: &str, text: &str) -> Option<bool> {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> Option<bool> {
    let Some((&first, rest)) = p.split_first() else {
        return Some(t.is_empty());
    };
    match first {
        '*' => {
            for skip in 0..=t.len() {
                if glob_at(rest, &t[skip..])? {
                    return Some(true);
                }
                if t.get(skip) == Some(&'/') {
                    break;
                }
            }
            Some(false)
        }
        '?' => match t.split_first() {
            Some((&c, t_rest)) if c != '/' => glob_at(rest, t_rest),
            _ => Some(false),
        },
        '[' => {
            let close = rest.iter().skip(1).position(|&c| c == ']')? + 1;
            let class = &rest[..close];
            let after = &rest[close + 1..];
            let Some((&c, t_rest)) = t.split_first() else {
                return Some(false);
            };
            let (negated, class) = match class.split_first() {
                Some((&'^' | &'!', tail)) => (true, tail),
                _ => (false, class),
            };
            let mut matched = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    if class[i] <= c && c <= class[i + 2] {
                        matched = true;
                    }
                    i += 3;
                } else {
                    if class[i] == c {
                        matched = true;
                    }
                    i += 1;
                }
            }
            if matched != negated {
                glob_at(after, t_rest)
            } else {
                Some(false)
            }
        }
        '\\' => {
            let (&escaped, rest) = rest.split_first()?;
            match t.split_first() {
                Some((&c, t_rest)) if c == escaped => glob_at(rest, t_rest),
                _ => Some(false),
            }
        }
        literal => match t.split_first() {
            Some((&c, t_rest)) if c == literal => glob_at(rest, t_rest),
            _ => Some(false),
        },
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn close(&mut self) -> Result<(), Failure> {
        if self.eat('}') {
            Ok(())
        } else {
            Err(Failure::Syntax(SyntaxError::BadSubstitution))
        }
    }

    /// Parses what follows `${`, up to and including the closing `}`.
    fn expression(&mut self) -> Result<Expression, Failure> {
        if self.peek() == Some('#') {
            self.pos += 1;
            let name = self.identifier();
            if name.is_empty() {
                return Err(Failure::Syntax(SyntaxError::BadSubstitution));
            }
            self.close()?;
            return Ok(Expression {
                name,
                op: Op::Length,
                args: Vec::new(),
            });
        }
        let name = self.identifier();
        if name.is_empty() {
            return Err(Failure::Syntax(SyntaxError::VariableName));
        }
        let simple = |op| Expression {
            name: name.clone(),
            op,
            args: Vec::new(),
        };
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                Ok(simple(Op::Value))
            }
            Some(':') if matches!(self.peek_at(1), Some('=' | '-' | '?' | '+')) => {
                self.pos += 2;
                self.default(name)
            }
            Some('=') => {
                self.pos += 1;
                self.default(name)
            }
            Some(':') => {
                self.pos += 1;
                self.substring(name)
            }
            Some('^' | ',') => {
                let c = self.peek().unwrap_or('^');
                self.pos += 1;
                let double = self.eat(c);
                self.close()?;
                Ok(simple(match (c, double) {
                    ('^', false) => Op::UpperFirst,
                    ('^', true) => Op::UpperAll,
                    (_, false) => Op::LowerFirst,
                    (_, true) => Op::LowerAll,
                }))
            }
            Some('/') => {
                self.pos += 1;
                self.replace(name)
            }
            Some(c @ ('#' | '%')) => {
                self.pos += 1;
                let longest = self.eat(c);
                let op = match (c, longest) {
                    ('#', false) => Op::TrimShortestPrefix,
                    ('#', true) => Op::TrimLongestPrefix,
                    (_, false) => Op::TrimShortestSuffix,
                    (_, true) => Op::TrimLongestSuffix,
                };
                let arg = self.argument(&['}'], false)?;
                self.close()?;
                Ok(Expression {
                    name,
                    op,
                    args: vec![arg],
                })
            }
            _ => Err(Failure::Syntax(SyntaxError::MissingClosingBrace)),
        }
    }

    /// A variable name as Flux's scanner reads it (letters, digits, `_`).
    fn identifier(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// `word}` of `${var:=word}` and friends: text and nested expressions up to `}`.
    fn default(&mut self, name: String) -> Result<Expression, Failure> {
        let arg = self.argument(&['}'], false)?;
        self.close()?;
        Ok(Expression {
            name,
            op: Op::Default,
            args: vec![arg],
        })
    }

    /// `offset}` or `offset:length}` of `${var:offset:length}`.
    fn substring(&mut self, name: String) -> Result<Expression, Failure> {
        let offset = self.argument(&[':', '}'], false)?;
        if offset.is_empty() {
            return Err(Failure::Syntax(SyntaxError::BadSubstitution));
        }
        let mut args = vec![offset];
        if self.eat(':') {
            let length = self.argument(&['}'], false)?;
            if length.is_empty() {
                return Err(Failure::Syntax(SyntaxError::BadSubstitution));
            }
            args.push(length);
        }
        self.close()?;
        Ok(Expression {
            name,
            op: Op::Substring,
            args,
        })
    }

    /// `old/new}` of `${var/old/new}` (after the first `/`), with `//`, `/#`, `/%`.
    fn replace(&mut self, name: String) -> Result<Expression, Failure> {
        let op = match self.peek() {
            Some('/') => {
                self.pos += 1;
                Op::ReplaceAll
            }
            Some('#') => {
                self.pos += 1;
                Op::ReplacePrefix
            }
            Some('%') => {
                self.pos += 1;
                Op::ReplaceSuffix
            }
            _ => Op::ReplaceFirst,
        };
        let old = self.argument(&['/'], true)?;
        if !self.eat('/') {
            return Err(Failure::Syntax(SyntaxError::BadSubstitution));
        }
        let mut args = vec![old];
        if self.peek() != Some('}') {
            args.push(self.argument(&['}'], true)?);
        }
        self.close()?;
        Ok(Expression { name, op, args })
    }

    /// Text and nested `${...}` up to (not including) one of `stops`; `escapes` turns on `\/`,
    /// `\\` and `$$`.
    fn argument(&mut self, stops: &[char], escapes: bool) -> Result<Vec<Piece>, Failure> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(Failure::Syntax(SyntaxError::BadSubstitution));
            };
            if stops.contains(&c) {
                break;
            }
            if c == '$' && self.peek_at(1) == Some('{') {
                self.pos += 2;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Nested(self.expression()?));
                continue;
            }
            if escapes
                && ((c == '\\' && matches!(self.peek_at(1), Some('/' | '\\')))
                    || (c == '$' && self.peek_at(1) == Some('$')))
            {
                self.pos += 1;
            }
            if let Some(c) = self.peek() {
                text.push(c);
                self.pos += 1;
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(pieces)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn configmap(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cm", "namespace": "apps"}, "data": data})
    }

    fn sub(object: Value, pairs: &[(&str, &str)], strict: bool) -> Result<Value, SubstituteError> {
        substitute_objects(vec![object], &vars(pairs), strict).map(|mut v| v.remove(0))
    }

    fn data(object: Value, pairs: &[(&str, &str)]) -> Value {
        sub(configmap(object), pairs, false).unwrap()["data"].clone()
    }

    #[test]
    fn each_syntax() {
        let out = data(
            json!({
                "plain": "${name}",
                "inText": "app-${name}-svc",
                "assignDefault": "${missing:=fallback}",
                "dashDefault": "${missing:-fallback}",
                "setIgnoresDefault": "${name:=fallback}",
                "emptyTakesDefault": "${empty:-fallback}",
                "nestedDefault": "${missing:=pre-${name}}",
                "two": "${name}/${name}",
            }),
            &[("name", "web"), ("empty", "x")],
        );
        assert_eq!(out["plain"], "web");
        assert_eq!(out["inText"], "app-web-svc");
        assert_eq!(out["assignDefault"], "fallback");
        assert_eq!(out["dashDefault"], "fallback");
        assert_eq!(out["setIgnoresDefault"], "web");
        assert_eq!(out["emptyTakesDefault"], "x");
        assert_eq!(out["nestedDefault"], "pre-web");
        assert_eq!(out["two"], "web/web");
        let out = data(
            json!({"e": "${empty:-fallback}"}),
            &[("empty", ""), ("a", "1")],
        );
        assert_eq!(out["e"], "fallback");
    }

    #[test]
    fn bash_functions() {
        let out = data(
            json!({
                "len": "${#v}", "up": "${v^^}", "upFirst": "${v^}", "low": "${U,,}",
                "lowFirst": "${U,}", "sub": "${v:1:3}", "tail": "${v:-2}", "from": "${v:4}",
                "rep": "${v/l/L}", "repAll": "${v//l/L}", "repPre": "${v/#hel/HEL}",
                "repSuf": "${v/%world/there}", "trimS": "${p#*/}", "trimL": "${p##*/}",
                "trimSufS": "${p%/*}", "trimSufL": "${p%%/*}", "slash": "${p//\\//-}",
            }),
            &[("v", "hello-world"), ("U", "ABC"), ("p", "a/b/c")],
        );
        assert_eq!(out["len"], 11);
        assert_eq!(out["up"], "HELLO-WORLD");
        assert_eq!(out["upFirst"], "Hello-world");
        assert_eq!(out["low"], "abc");
        assert_eq!(out["lowFirst"], "aBC");
        assert_eq!(out["sub"], "ell");
        // `${v:-2}` is the default operator, as in Flux (and bash).
        assert_eq!(out["tail"], "hello-world");
        assert_eq!(out["from"], "o-world");
        assert_eq!(out["rep"], "heLlo-world");
        assert_eq!(out["repAll"], "heLLo-worLd");
        assert_eq!(out["repPre"], "HELlo-world");
        assert_eq!(out["repSuf"], "hello-there");
        // Globs follow Go's path.Match: `*` stops at `/`, so `##*/` removes only `a/`.
        assert_eq!(out["trimS"], "b/c");
        assert_eq!(out["trimL"], "b/c");
        assert_eq!(out["trimSufS"], "a/b");
        assert_eq!(out["trimSufL"], "a/b");
        assert_eq!(out["slash"], "a-b-c");
    }

    #[test]
    fn escapes_keep_the_expression_literally() {
        let out = data(
            json!({
                "escaped": "echo $${HOME}",
                "dollarWord": "echo $HOME and $1",
                "double": "cost: $$5",
            }),
            &[("HOME", "/root")],
        );
        assert_eq!(out["escaped"], "echo ${HOME}");
        assert_eq!(out["dollarWord"], "echo $HOME and $1");
        assert_eq!(out["double"], "cost: $5");
    }

    #[test]
    fn undefined_variables_strict_and_not() {
        let object = configmap(json!({"a": "x-${nope}-y", "b": "${nope:=d}"}));
        let loose = sub(object.clone(), &[("other", "1")], false).unwrap();
        assert_eq!(loose["data"]["a"], "x--y");
        assert_eq!(loose["data"]["b"], "d");

        let err = sub(object, &[("other", "1")], true).unwrap_err();
        assert_eq!(
            err,
            SubstituteError::Undefined {
                object: "ConfigMap/apps/cm".into(),
                field: "data.a".into(),
                variable: "nope".into(),
            }
        );
        assert!(err.to_string().contains("\"nope\""), "{err}");

        // Defaults satisfy strict mode.
        let ok = sub(configmap(json!({"b": "${nope:-d}"})), &[("o", "1")], true).unwrap();
        assert_eq!(ok["data"]["b"], "d");
    }

    #[test]
    fn no_variables_means_no_substitution() {
        let object = configmap(json!({"a": "${x:=default}", "b": "${y}"}));
        let out = substitute_objects(vec![object.clone()], &BTreeMap::new(), true).unwrap();
        assert_eq!(out, vec![object]);
    }

    #[test]
    fn opt_out_by_annotation_or_label() {
        for field in ["annotations", "labels"] {
            let mut object = configmap(json!({"a": "${v}", "bad": "${"}));
            object["metadata"][field] = json!({SUBSTITUTE_ANNOTATION: "disabled"});
            let out = sub(object.clone(), &[("v", "1")], true).unwrap();
            assert_eq!(out, object, "{field}");
        }
        let mut other = configmap(json!({"a": "${v}"}));
        other["metadata"]["annotations"] = json!({SUBSTITUTE_ANNOTATION: "enabled"});
        assert_eq!(sub(other, &[("v", "x")], false).unwrap()["data"]["a"], "x");
    }

    #[test]
    fn numbers_and_booleans_take_their_yaml_type_like_flux() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": "${replicas}", "paused": "${paused}", "ratio": "${ratio}",
                     "empty": "${unset}", "mode": "${mode}", "list": "${list}"},
        });
        let out = sub(
            deployment,
            &[
                ("replicas", "3"),
                ("paused", "false"),
                ("ratio", "0.5"),
                ("mode", "0644"),
                ("list", "[a, b]"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], json!(3));
        assert_eq!(out["spec"]["paused"], json!(false));
        assert_eq!(out["spec"]["ratio"], json!(0.5));
        assert_eq!(out["spec"]["empty"], Value::Null);
        assert_eq!(out["spec"]["mode"], json!(420));
        assert_eq!(out["spec"]["list"], json!(["a", "b"]));
    }

    #[test]
    fn the_quote_variable_keeps_numbers_strings() {
        let out = data(
            json!({"id": "${quote}${id}${quote}", "enabled": "${quote}${on}${quote}"}),
            &[("quote", "\""), ("id", "123"), ("on", "true")],
        );
        assert_eq!(out["id"], "123");
        assert_eq!(out["enabled"], "true");
    }

    #[test]
    fn values_with_quotes_colons_and_newlines() {
        let out = data(
            json!({
                "url": "${url}",
                "quoted": "${q}",
                "single": "${s}",
                "multi": "${m}",
                "inText": "note: ${colon}",
                "block": "line one\nline ${v}\n",
                "hash": "${hash}",
            }),
            &[
                ("url", "postgres://u:p@db:5432/app?x=1"),
                ("q", "say \"hi\""),
                ("s", "it's"),
                ("m", "first\nsecond"),
                ("colon", "a: b"),
                ("v", "two"),
                ("hash", "a#b"),
            ],
        );
        assert_eq!(out["url"], "postgres://u:p@db:5432/app?x=1");
        assert_eq!(out["quoted"], "say \"hi\"");
        assert_eq!(out["single"], "it's");
        // Flux removes line breaks from values.
        assert_eq!(out["multi"], "firstsecond");
        // Inside a string YAML must quote, the value stays text.
        assert_eq!(out["inText"], "note: a: b");
        assert_eq!(out["block"], "line one\nline two\n");
        assert_eq!(out["hash"], "a#b");
    }

    #[test]
    fn a_value_that_breaks_the_yaml_is_an_error_without_the_value() {
        let err = sub(
            configmap(json!({"k": "${v}"})),
            &[("v", "secret: value")],
            false,
        )
        .unwrap_err();
        assert_eq!(
            err,
            SubstituteError::InvalidYaml {
                object: "ConfigMap/apps/cm".into(),
                field: "data.k".into()
            }
        );
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn keys_are_substituted() {
        let out = data(
            json!({"${key}": "v", "k-${n}": "${n}"}),
            &[("key", "a"), ("n", "1")],
        );
        assert_eq!(out, json!({"a": "v", "k-1": 1}));
    }

    #[test]
    fn bad_variable_names_are_refused() {
        for name in ["1abc", "a-b", "a.b", "", "é"] {
            let err = sub(configmap(json!({})), &[(name, "v")], false).unwrap_err();
            assert_eq!(
                err,
                SubstituteError::InvalidVariableName { name: name.into() }
            );
            assert!(err.to_string().contains(VARIABLE_NAME_RULE));
        }
        for name in ["_", "a", "A_1", "_x9"] {
            assert!(
                sub(configmap(json!({})), &[(name, "v")], false).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for (text, reason) in [
            ("${", SyntaxError::VariableName),
            ("${}", SyntaxError::VariableName),
            ("${ a}", SyntaxError::VariableName),
            ("${a", SyntaxError::MissingClosingBrace),
            ("${a!}", SyntaxError::MissingClosingBrace),
            ("${a:=x", SyntaxError::BadSubstitution),
        ] {
            let err = sub(configmap(json!({"k": text})), &[("a", "1")], false).unwrap_err();
            assert_eq!(
                err,
                SubstituteError::Syntax {
                    object: "ConfigMap/apps/cm".into(),
                    field: "data.k".into(),
                    reason
                },
                "{text}"
            );
        }
    }

    #[test]
    fn lists_and_nested_fields_name_the_field_in_errors() {
        let object = json!({"kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "args": ["ok", "${missing}"]}]}});
        let err = sub(object, &[("a", "1")], true).unwrap_err();
        assert_eq!(
            err,
            SubstituteError::Undefined {
                object: "Pod/p".into(),
                field: "spec.containers[0].args[1]".into(),
                variable: "missing".into()
            }
        );
    }

    #[test]
    fn plain_scalar_detection() {
        for plain in ["${a}", "x-${a}", "${a}:x", "a#${b}", "${a} ${b}"] {
            assert!(is_plain_scalar(plain), "{plain}");
        }
        for quoted in [
            "'${a}'", "\"${a}\"", "${a}: b", "a #${b}", " ${a}", "${a} ", "*${a}", "- ${a}",
            "[${a}]", "${a}\n", "${a}:",
        ] {
            assert!(!is_plain_scalar(quoted), "{quoted}");
        }
    }
}
