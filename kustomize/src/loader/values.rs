//! YAML documents to values, with the scalar typing kustomize applies.
//!
//! kustomize reads objects with go-yaml v3 and writes them through JSON, so an unquoted scalar
//! takes the type go-yaml gives it, which is not always the one a YAML 1.2 reader gives:
//!
//! - `0644` is the octal integer 420 (file modes!), `-0644` is -420, `0x1F` and `+0x1F` are 31,
//!   `0b101` is 5, `1_000` is 1000 (underscores are ignored), `09` is 9;
//! - a date or date-time (`2001-12-14`, `2001-12-14T21:59:43.10-05:00`,
//!   `2001-12-14 21:59:43`) becomes the string of its RFC 3339 form
//!   (`2001-12-14T00:00:00Z`, `2001-12-14T21:59:43.1-05:00`);
//! - a number too large for 64 bits is a float;
//! - a float with no fractional part is an integer (`1.0` is 1, `1e3` is 1000), as it is once
//!   written as JSON.
//!
//! Quoted (and explicitly tagged) scalars keep their type. Which scalars were quoted is told by
//! where the text the parser hands out sits in the input: right after a quote character, or not.
//! Should the parser ever copy the text instead, scalars are left as YAML 1.2 types them (the
//! tests of this module would tell).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Number, Value};

/// Reads one document of `input` (the whole text the deserializer was made from).
pub(super) struct Document<'a> {
    pub(super) input: &'a str,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(Builder { input: self.input })
    }
}

struct Builder<'a> {
    input: &'a str,
}

impl Builder<'_> {
    fn seed(&self) -> Document<'_> {
        Document { input: self.input }
    }

    /// Whether `text` (handed out by the parser without copying) is an unquoted scalar of the
    /// input: it lies in the input and is not preceded by a quote.
    fn is_plain(&self, text: &str) -> bool {
        let start = self.input.as_ptr() as usize;
        let at = text.as_ptr() as usize;
        if at < start || at + text.len() > start + self.input.len() {
            return false;
        }
        let offset = at - start;
        if offset == 0 {
            return true;
        }
        if matches!(self.input.as_bytes()[offset - 1], b'\'' | b'"') {
            return false;
        }
        // An explicitly tagged scalar (`!!str 0644`) keeps the type its tag gives it.
        let before = self.input[..offset].trim_end_matches([' ', '\t']);
        let token = before
            .rsplit([' ', '\t', '\n', '[', '{', ','])
            .next()
            .unwrap_or_default();
        !token.starts_with('!')
    }
}

impl<'de> Visitor<'de> for Builder<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Value::Number(v.into()),
            Err(_) => float(v as f64),
        })
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(v) => Value::Number(v.into()),
            Err(_) => float(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        if self.is_plain(v) {
            return Ok(resolve_plain(v));
        }
        Ok(Value::String(v.to_string()))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Value, E> {
        self.visit_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.seed().deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self.seed())? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut mapping = Mapping::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(self.seed())?;
            if mapping.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "mapping key {} is defined twice",
                    serde_yaml::to_string(&key).unwrap_or_default().trim_end()
                )));
            }
            mapping.insert(key, value);
        }
        Ok(Value::Mapping(mapping))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (String, _) = data.variant()?;
        let value = de::VariantAccess::newtype_variant_seed(variant, self.seed())?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

/// Mapping keys keep the type the parser gives them (kustomize does not retype keys).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        <Value as serde::Deserialize>::deserialize(deserializer)
    }
}

/// A float, as an integer when it has no fractional part and fits.
fn float(v: f64) -> Value {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if v.is_finite() && v.fract() == 0.0 && v.abs() < LIMIT {
        return Value::Number((v as i64).into());
    }
    Value::Number(Number::from(v))
}

/// The value of an unquoted scalar the YAML 1.2 parser left as a string, typed as go-yaml v3
/// types it.
fn resolve_plain(text: &str) -> Value {
    let Some(first) = text.chars().next() else {
        return Value::String(String::new());
    };
    if !(first.is_ascii_digit() || first == '+' || first == '-' || first == '.') {
        return Value::String(text.to_string());
    }
    if first != '.' {
        if let Some(timestamp) = timestamp(text) {
            return Value::String(timestamp);
        }
        let plain = text.replace('_', "");
        if let Some(int) = go_parse_int(&plain) {
            return match i64::try_from(int) {
                Ok(v) => Value::Number(v.into()),
                Err(_) => match u64::try_from(int) {
                    Ok(v) => Value::Number(v.into()),
                    Err(_) => float(int as f64),
                },
            };
        }
        if is_yaml_float(&plain)
            && let Ok(v) = plain.parse::<f64>()
        {
            return float(v);
        }
        return Value::String(text.to_string());
    }
    match text.parse::<f64>() {
        Ok(v) if is_yaml_float(text) => float(v),
        _ => Value::String(text.to_string()),
    }
}

/// Go's `strconv.ParseInt(s, 0, ...)` without the range check (the caller narrows): an optional
/// sign, then `0x`/`0o`/`0b` prefixes, a leading `0` for octal, or decimal digits.
fn go_parse_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'+' => (false, &text[1..]),
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    let value = i128::from(magnitude);
    // Like ParseInt then ParseUint: negative values must fit i64.
    if negative {
        (value <= i128::from(i64::MAX) + 1).then_some(-value)
    } else {
        Some(value)
    }
}

/// go-yaml's float syntax: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_yaml_float(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

/// A YAML timestamp as go-yaml v3 accepts it, formatted as Go formats a time in JSON (RFC 3339
/// with nanoseconds, trailing zeros of the fraction dropped).
fn timestamp(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.len() < 5 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    let mut cursor = Cursor { text, at: 5 };
    let year: u32 = text[..4].parse().ok()?;
    let month = cursor.number(1, 2)?;
    cursor.expect(b'-')?;
    let day = cursor.number(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if cursor.done() {
        return Some(format!("{date}T00:00:00Z"));
    }
    // `T`, `t` (with a zone) or one space (without).
    let separator = cursor.next()?;
    let zoned = match separator {
        b'T' | b't' => true,
        b' ' => false,
        _ => return None,
    };
    let hour = cursor.number(1, 2)?;
    cursor.expect(b':')?;
    let minute = cursor.number(1, 2)?;
    cursor.expect(b':')?;
    let second = cursor.number(1, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut fraction = String::new();
    if cursor.peek() == Some(b'.') {
        cursor.next();
        let start = cursor.at;
        while cursor.peek().is_some_and(|c| c.is_ascii_digit()) {
            cursor.next();
        }
        fraction = text[start..cursor.at].to_string();
        if fraction.is_empty() || fraction.len() > 9 {
            return None;
        }
    }
    let zone = if zoned {
        match cursor.next()? {
            b'Z' => "Z".to_string(),
            sign @ (b'+' | b'-') => {
                let hours = cursor.number(2, 2)?;
                cursor.expect(b':')?;
                let minutes = cursor.number(2, 2)?;
                if hours == 0 && minutes == 0 {
                    "Z".to_string()
                } else {
                    format!("{}{hours:02}:{minutes:02}", sign as char)
                }
            }
            _ => return None,
        }
    } else {
        "Z".to_string()
    };
    if !cursor.done() {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    Some(format!(
        "{date}T{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
    ))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn done(&self) -> bool {
        self.at == self.text.len()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// `min` to `max` digits.
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.at;
        while self.at - start < max && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at - start < min {
            return None;
        }
        self.text[start..self.at].parse().ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(text: &str) -> Value {
        let document = serde_yaml::Deserializer::from_str(text).next().unwrap();
        Document { input: text }.deserialize(document).unwrap()
    }

    #[test]
    fn unquoted_scalars_are_typed_like_kustomize() {
        let value = read(
            "a: 0644\nb: -0644\nc: 0x1F\nd: +0x1F\ne: 0b101\nf: 1_000\ng: 09\nh: 1.0\ni: 1e3\nj: 1.5\nk: 123456789012345678901234\nl: 2001-12-14\nm: 2001-12-14T21:59:43.10-05:00\nn: 2001-12-14 21:59:43\no: _1\np: 0o\nq: yes\nr: v1.2\ns: 1:20\nt: 0o17\nu: 2001-13-01\n",
        );
        let expected: Value = serde_yaml::from_str(
            "a: 420\nb: -420\nc: 31\nd: 31\ne: 5\nf: 1000\ng: 9\nh: 1\ni: 1000\nj: 1.5\nk: 1.2345678901234569e+23\nl: '2001-12-14T00:00:00Z'\nm: '2001-12-14T21:59:43.1-05:00'\nn: '2001-12-14T21:59:43Z'\no: _1\np: 0o\nq: 'yes'\nr: v1.2\ns: '1:20'\nt: 15\nu: 2001-13-01\n",
        )
        .unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let value = read("a: '0644'\nb: \"0644\"\nc: \"2001-12-14\"\nd: '1_000'\ne: \"a\\tb\"\n");
        let expected: Value = serde_yaml::from_str(
            "a: '0644'\nb: '0644'\nc: '2001-12-14'\nd: '1_000'\ne: \"a\\tb\"\n",
        )
        .unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn explicitly_tagged_scalars_keep_their_tag() {
        let value = read("a: !!str 0644\nb: 0644\n");
        let expected: Value = serde_yaml::from_str("a: '0644'\nb: 420\n").unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let document = serde_yaml::Deserializer::from_str("a: 1\na: 2\n")
            .next()
            .unwrap();
        assert!(
            Document {
                input: "a: 1\na: 2\n"
            }
            .deserialize(document)
            .is_err()
        );
    }
}
