//! Writing objects as YAML the way `kubectl kustomize` prints them.
//!
//! Block style with two-space indentation, list items at the indentation of their key, mapping
//! keys sorted, and scalars quoted by the rules of the YAML library kustomize uses (go-yaml v3):
//!
//! - a string that a YAML 1.1 or 1.2 reader would take for something else (`"on"`, `"y"`,
//!   `"1:20"`, `"2001-12-14"`, `"0777"`, `"null"`, `""`) is double-quoted, so tools that read YAML
//!   1.1 (`kubectl apply`) get a string back (`<<` and `=` too, which go-yaml leaves plain);
//! - a string that is a string but cannot be plain (`'a: b'`, `'*x'`, `' lead'`) is
//!   single-quoted, or double-quoted with escapes when it holds control characters or tabs;
//! - a multi-line string is a literal block (`|`, `|-`, `|+`, with an indentation indicator
//!   when its first line starts with a space), unless a line ends with a space.
//!
//! Unlike go-yaml, long lines are never folded (the value read back is the same either way).
//! Values this module does not lay out itself (tagged values, mappings as keys) make the whole
//! document fall back to `serde_yaml`'s writer.

use std::sync::OnceLock;

use regex::Regex;
use serde_yaml::Value;

/// One document (no `---`), ending with a newline.
pub(super) fn document(value: &Value) -> Result<String, serde_yaml::Error> {
    if !representable(value) {
        return serde_yaml::to_string(&sorted(value));
    }
    let mut out = String::new();
    match value {
        Value::Mapping(map) if !map.is_empty() => write_mapping(&mut out, map, 0),
        Value::Sequence(items) if !items.is_empty() => write_sequence(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar, 0, 0, false));
            out.push('\n');
        }
    }
    Ok(out)
}

/// A copy of `value` with the keys of every mapping in sorted order (for the fallback writer).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Mapping(map) => Value::Mapping(
            sorted_entries(map)
                .into_iter()
                .map(|(k, v)| (k.clone(), sorted(v)))
                .collect(),
        ),
        Value::Sequence(items) => Value::Sequence(items.iter().map(sorted).collect()),
        Value::Tagged(tagged) => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: tagged.tag.clone(),
            value: sorted(&tagged.value),
        })),
        other => other.clone(),
    }
}

/// Whether every part of `value` can be written by this module.
fn representable(value: &Value) -> bool {
    match value {
        Value::Tagged(_) => false,
        Value::Sequence(items) => items.iter().all(representable),
        Value::Mapping(map) => map.iter().all(|(key, value)| {
            matches!(
                key,
                Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null
            ) && representable(value)
        }),
        _ => true,
    }
}

fn sorted_entries(map: &serde_yaml::Mapping) -> Vec<(&Value, &Value)> {
    let mut entries: Vec<(&Value, &Value)> = map.iter().collect();
    entries.sort_by_cached_key(|(key, _)| key_text(key));
    entries
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => scalar_text(other),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Mapping entries at `indent` (the first one written right away: the caller placed the cursor).
fn write_mapping(out: &mut String, map: &serde_yaml::Mapping, indent: usize) {
    for (index, (key, value)) in sorted_entries(map).into_iter().enumerate() {
        if index > 0 {
            pad(out, indent);
        }
        let at = column(out);
        out.push_str(&inline(key, indent, at, true));
        out.push(':');
        write_value(out, value, indent, indent + 2);
    }
}

/// Sequence items at `indent` (the first one written right away).
fn write_sequence(out: &mut String, items: &[Value], indent: usize) {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            pad(out, indent);
        }
        out.push('-');
        match item {
            Value::Mapping(map) if !map.is_empty() => {
                out.push(' ');
                write_mapping(out, map, indent + 2);
            }
            Value::Sequence(inner) if !inner.is_empty() => {
                out.push(' ');
                write_sequence(out, inner, indent + 2);
            }
            scalar => {
                out.push(' ');
                let at = column(out);
                out.push_str(&inline(scalar, indent + 2, at, false));
                out.push('\n');
            }
        }
    }
}

/// The value of a mapping entry, after `key:`. Nested mappings go at `nested`; lists stay at
/// the key's indentation.
fn write_value(out: &mut String, value: &Value, key_indent: usize, nested: usize) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            out.push('\n');
            pad(out, nested);
            write_mapping(out, map, nested);
        }
        Value::Sequence(items) if !items.is_empty() => {
            out.push('\n');
            pad(out, key_indent);
            write_sequence(out, items, key_indent);
        }
        scalar => {
            out.push(' ');
            let at = column(out);
            out.push_str(&inline(scalar, nested, at, false));
            out.push('\n');
        }
    }
}

/// A scalar (or an empty collection) as written after `key: ` or `- `, starting at `column`.
/// Continuation lines (literal blocks, long lines folded) go at `indent`. `key` is true for
/// mapping keys (no block styles and no folding there).
fn inline(value: &Value, indent: usize, column: usize, key: bool) -> String {
    match value {
        Value::Mapping(_) => "{}".to_string(),
        Value::Sequence(_) => "[]".to_string(),
        Value::String(text) => string(text, indent, column, key),
        other => scalar_text(other),
    }
}

/// The column the next character written to `out` lands on.
fn column(out: &str) -> usize {
    out.rsplit('\n')
        .next()
        .map_or(0, |line| line.chars().count())
}

/// Null, booleans and numbers as kubectl prints them (floats as Go's `%g`, integral ones as
/// integers: kustomize's output passes through JSON).
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => go_float(f),
            _ => n.to_string(),
        },
        other => serde_yaml::to_string(other)
            .map(|text| text.trim_end().to_string())
            .unwrap_or_default(),
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it, integral values below 1e21
/// as integers (JSON writes them so), and YAML's names for infinities and NaN.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    // Shortest digits and decimal exponent, from Rust's shortest round-trip formatting.
    let scientific = format!("{:e}", f.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let rest = &digits[1..];
        let mantissa = if rest.is_empty() {
            digits[..1].to_string()
        } else {
            format!("{}.{rest}", &digits[..1])
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exponent_sign}{:02}", exponent.abs());
    }
    // Fixed notation with the shortest digits.
    let point = exponent + 1;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if (point as usize) >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    format!("{sign}{text}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn string(text: &str, indent: usize, column: usize, key: bool) -> String {
    let analysis = Analysis::of(text);
    let mut style = if text.contains('\n') {
        Style::Literal
    } else if resolves_to_string(text) {
        Style::Plain
    } else {
        Style::Double
    };
    if style == Style::Plain && (!analysis.block_plain_allowed || text.is_empty()) {
        style = Style::Single;
    }
    if style == Style::Single && !analysis.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!analysis.block_allowed || key) {
        style = Style::Double;
    }
    let fold = (!key).then_some(Fold { indent, column });
    match style {
        Style::Plain => plain(text, fold),
        Style::Single => single_quoted(text, fold),
        Style::Double => double_quoted(text, fold),
        Style::Literal => literal(text, indent),
    }
}

/// go-yaml's preferred line width: past it, a space in a long scalar becomes a line break.
const BEST_WIDTH: usize = 80;

/// Where a foldable scalar starts, and where its continuation lines go.
#[derive(Debug, Clone, Copy)]
struct Fold {
    indent: usize,
    column: usize,
}

/// Writes scalar text with go-yaml's folding: at a space, once the line is past
/// [`BEST_WIDTH`], a line break and the indentation replace the space.
struct Folder<'a> {
    out: String,
    column: usize,
    fold: Option<Fold>,
    chars: &'a [char],
}

impl Folder<'_> {
    fn push(&mut self, text: &str) {
        self.out.push_str(text);
        self.column += text.chars().count();
    }

    fn push_char(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    /// Whether the space at `index` is replaced by a line break.
    fn breaks_at(&self, index: usize, spaces: bool, quoted: bool) -> bool {
        if self.fold.is_none() {
            return false;
        }
        let next_is_space = self.chars.get(index + 1) == Some(&' ');
        !spaces
            && self.column > BEST_WIDTH
            && (!quoted || (index != 0 && index + 1 != self.chars.len()))
            && !next_is_space
    }

    fn line_break(&mut self) {
        let indent = self.fold.map_or(0, |f| f.indent);
        self.out.push('\n');
        pad(&mut self.out, indent);
        self.column = indent;
    }
}

fn folder(chars: &[char], fold: Option<Fold>) -> Folder<'_> {
    Folder {
        out: String::with_capacity(chars.len() + 2),
        column: fold.map_or(0, |f| f.column),
        fold,
        chars,
    }
}

fn plain(text: &str, fold: Option<Fold>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut w = folder(&chars, fold);
    let mut spaces = false;
    for (index, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if w.breaks_at(index, spaces, false) {
                w.line_break();
            } else {
                w.push_char(' ');
            }
            spaces = true;
        } else {
            w.push_char(c);
            spaces = false;
        }
    }
    w.out
}

fn single_quoted(text: &str, fold: Option<Fold>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut w = folder(&chars, fold);
    w.push_char('\'');
    let mut spaces = false;
    for (index, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if w.breaks_at(index, spaces, true) {
                w.line_break();
            } else {
                w.push_char(' ');
            }
            spaces = true;
        } else {
            if c == '\'' {
                w.push_char('\'');
            }
            w.push_char(c);
            spaces = false;
        }
    }
    w.push_char('\'');
    w.out
}

/// What the text allows, as go-yaml's emitter analyses a scalar.
#[derive(Debug)]
struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// Printable in the sense of go-yaml, less the line breaks other than `\n` (NEL, LS, PS), which
/// this module only writes escaped.
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{2027}' | '\u{202a}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
        && c != '\u{feff}'
}

fn is_blank_or_end(c: Option<char>) -> bool {
    matches!(c, None | Some(' ' | '\t' | '\n' | '\r'))
}

impl Analysis {
    fn of(text: &str) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut block_indicators = text.starts_with("---") || text.starts_with("...");
        let mut special = false;
        let mut line_breaks = false;
        let (mut leading_space, mut leading_break) = (false, false);
        let (mut trailing_space, mut trailing_break) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_whitespace = is_blank_or_end(chars.get(i + 1).copied());
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\''
                    | '"' | '%' | '@' | '`' => block_indicators = true,
                    '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            if !is_printable(c) {
                special = true;
            }
            if c == '\n' {
                line_breaks = true;
            }
            let last = i + 1 == chars.len();
            if c == ' ' {
                leading_space |= i == 0;
                trailing_space |= last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if c == '\n' {
                leading_break |= i == 0;
                trailing_break |= last;
                space_break |= previous_space;
                previous_break = true;
                previous_space = false;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = matches!(c, ' ' | '\t' | '\n' | '\r');
        }
        let mut block_plain_allowed = true;
        let mut single_quoted_allowed = true;
        let mut block_allowed = true;
        if leading_space || leading_break || trailing_space || trailing_break {
            block_plain_allowed = false;
        }
        if trailing_space {
            block_allowed = false;
        }
        if break_space {
            block_plain_allowed = false;
            single_quoted_allowed = false;
        }
        if space_break || special {
            block_plain_allowed = false;
            single_quoted_allowed = false;
            block_allowed = false;
        }
        if line_breaks || block_indicators {
            block_plain_allowed = false;
        }
        Self {
            block_plain_allowed,
            single_quoted_allowed,
            block_allowed,
        }
    }
}

/// Whether a plain scalar with this text reads back as a string, in YAML 1.2 and in YAML 1.1
/// (booleans like `yes`/`on`/`y`, base-60 numbers, timestamps).
fn resolves_to_string(text: &str) -> bool {
    static NOT_STRING: OnceLock<Option<Regex>> = OnceLock::new();
    let pattern = NOT_STRING.get_or_init(|| {
        Regex::new(concat!(
            r"^(?:",
            // null, and YAML 1.1's merge key and value key (go-yaml writes these two plain,
            // which YAML 1.1 readers refuse as values; quoting them costs nothing)
            r"~|null|Null|NULL|<<|=",
            // booleans, YAML 1.2 and 1.1
            r"|true|True|TRUE|false|False|FALSE",
            r"|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF",
            // integers: binary, octal, decimal, hexadecimal (underscores allowed)
            r"|[-+]?0b[01_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
            // base 60
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?",
            // floats
            r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+",
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            // timestamps
            r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
            r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?",
            r")$"
        ))
        .ok()
    });
    if text.is_empty() {
        return false;
    }
    match pattern {
        Some(pattern) => !pattern.is_match(text) || text == ".",
        // Unreachable (the pattern is a constant); quote everything rather than risk it.
        None => false,
    }
}

fn double_quoted(text: &str, fold: Option<Fold>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut w = folder(&chars, fold);
    w.push_char('"');
    let mut spaces = false;
    for (index, &c) in chars.iter().enumerate() {
        if c == ' ' {
            // A folded line break reads back as a space; a space right after it is kept by
            // escaping the line start.
            let fold_here = w.fold.is_some()
                && !spaces
                && w.column > BEST_WIDTH
                && index != 0
                && index + 1 != chars.len();
            if fold_here {
                w.line_break();
                if chars.get(index + 1) == Some(&' ') {
                    w.push_char('\\');
                }
            } else {
                w.push_char(' ');
            }
            spaces = true;
            continue;
        }
        spaces = false;
        match c {
            '"' => w.push("\\\""),
            '\\' => w.push("\\\\"),
            '\0' => w.push("\\0"),
            '\u{7}' => w.push("\\a"),
            '\u{8}' => w.push("\\b"),
            '\t' => w.push("\\t"),
            '\n' => w.push("\\n"),
            '\u{b}' => w.push("\\v"),
            '\u{c}' => w.push("\\f"),
            '\r' => w.push("\\r"),
            '\u{1b}' => w.push("\\e"),
            '\u{85}' => w.push("\\N"),
            '\u{a0}' => w.push("\\_"),
            '\u{2028}' => w.push("\\L"),
            '\u{2029}' => w.push("\\P"),
            c if is_printable(c) => w.push_char(c),
            c if (c as u32) <= 0xff => w.push(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xffff => w.push(&format!("\\u{:04X}", c as u32)),
            c => w.push(&format!("\\U{:08X}", c as u32)),
        }
    }
    w.push_char('"');
    w.out
}

/// A literal block scalar: the header (`|`, `|-`, `|+`, with `2` when the text starts with a
/// space or a break) and the lines at `indent`.
fn literal(text: &str, indent: usize) -> String {
    let mut out = String::from("|");
    if text.starts_with(' ') || text.starts_with('\n') {
        out.push('2');
    }
    if !text.ends_with('\n') {
        out.push('-');
    } else if text.len() == 1 || text[..text.len() - 1].ends_with('\n') {
        out.push('+');
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(&mut out, indent);
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn emit(yaml: &str) -> String {
        document(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn strings_a_yaml_1_1_reader_would_retype_are_double_quoted() {
        for text in [
            "y",
            "n",
            "yes",
            "No",
            "on",
            "OFF",
            "true",
            "null",
            "~",
            "",
            "1",
            "0777",
            "1_000",
            "1e3",
            "1.0",
            ".5",
            "+1",
            "0x1F",
            "0o17",
            "1:20",
            "12:30:45",
            "2001-12-14",
            ".inf",
        ] {
            let value = Value::from(text);
            let printed = document(&value).unwrap();
            assert_eq!(printed, format!("\"{text}\"\n"), "{text:?}");
            let back: Value = serde_yaml::from_str(&printed).unwrap();
            assert_eq!(back, value, "{text:?}");
        }
    }

    #[test]
    fn plain_single_and_double_quotes_follow_go_yaml() {
        for (text, printed) in [
            ("--port=80", "--port=80"),
            ("v1.2", "v1.2"),
            ("1.2.3", "1.2.3"),
            ("é", "é"),
            ("it's", "it's"),
            ("=", "\"=\""),
            ("<<", "\"<<\""),
            ("a: b", "'a: b'"),
            ("x #y", "'x #y'"),
            (" lead", "' lead'"),
            ("ends:", "'ends:'"),
            ("*star", "'*star'"),
            ("-", "'-'"),
            ("{x}", "'{x}'"),
            ("tab\there", "\"tab\\there\""),
            ("a\u{1}b", "\"a\\x01b\""),
            ("trail \nx", "\"trail \\nx\""),
        ] {
            assert_eq!(
                document(&Value::from(text)).unwrap(),
                format!("{printed}\n")
            );
        }
    }

    #[test]
    fn long_lines_fold_past_eighty_columns_and_read_back() {
        let words = "word ".repeat(40);
        let mut map = serde_yaml::Mapping::new();
        map.insert(Value::from("long"), Value::from(words.trim()));
        map.insert(
            Value::from("single"),
            Value::from(format!("a: {}", words.trim())),
        );
        map.insert(
            Value::from("double"),
            Value::from(format!("\t{}  x", words.trim())),
        );
        let value = Value::Mapping(map);
        let text = document(&value).unwrap();
        assert!(text.lines().all(|line| line.len() <= 90), "{text}");
        assert!(text.lines().count() > 6, "{text}");
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn numbers_print_as_go_prints_them() {
        for (value, printed) in [
            (1.5, "1.5"),
            (0.5, "0.5"),
            (1000.0, "1000"),
            (-0.0, "-0"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1234567.5, "1.2345675e+06"),
            (123456.5, "123456.5"),
            (1e21, "1e+21"),
            (1.2345678901234569e23, "1.2345678901234569e+23"),
            (-2.25, "-2.25"),
        ] {
            assert_eq!(go_float(value), printed, "{value}");
        }
        assert_eq!(scalar_text(&Value::from(420)), "420");
    }

    #[test]
    fn layout_matches_kubectl() {
        let text = "b:\n  - x: 1\n    y: [1, 2]\n  - - a\n    - b\na: {}\nc: []\nd: |\n  multi\n  line\ne: \"a\\n\\n\"\nf: \"  indented\\nsecond\"\n'n': x\n";
        assert_eq!(
            emit(text),
            "a: {}\nb:\n- x: 1\n  \"y\":\n  - 1\n  - 2\n- - a\n  - b\nc: []\nd: |\n  multi\n  line\ne: |+\n  a\n\nf: |2-\n    indented\n  second\n\"n\": x\n"
        );
    }

    #[test]
    fn output_reads_back_to_the_same_value() {
        let text = "a:\n  b:\n  - c: 'on'\n    d: \"x\\ty\"\n    e: |-\n      l1\n        l2\n  - 3\n  - null\n  - true\n  - 1.5\nf: ''\n";
        let value: Value = serde_yaml::from_str(text).unwrap();
        let back: Value = serde_yaml::from_str(&document(&value).unwrap()).unwrap();
        assert_eq!(back, value);
    }
}
