//! Durations written the way Flux users write them (`spec.interval: 10m`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Validation pattern Flux puts on `interval`, `timeout` and `retryInterval` fields:
/// one or more `<number><unit>` groups with units `ms`, `s`, `m` or `h`.
pub const INTERVAL_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MIN: u128 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u128 = 60 * NANOS_PER_MIN;
/// Go's `time.Duration` is an `int64` of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseDurationError {
    /// The text is not a sequence of `<number><unit>` groups.
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// A number has no unit after it (only `0` may stand alone).
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit other than `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// A negative duration; no Flux field accepts one.
    #[error("negative duration {0:?} is not allowed")]
    Negative(String),
    /// Longer than Go's limit of about 292 years.
    #[error("duration {0:?} is out of range")]
    Overflow(String),
}

/// A non-negative [`Duration`] with Go's `time.Duration` text form.
///
/// Parsing accepts what Go's `time.ParseDuration` accepts, except negative values:
/// a sequence of decimal numbers, each with an optional fraction and a unit (`ns`, `us` or
/// `µs`, `ms`, `s`, `m`, `h`), such as `300ms`, `1.5h` or `2h45m`; and a lone `0`.
/// Formatting matches Go's `Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `0s`.
/// Serde reads and writes the text form; the JSON schema is a string with
/// [`INTERVAL_PATTERN`], the pattern Flux puts on its interval fields (which admits only the
/// `ms`, `s`, `m`, `h` units).
///
/// ```
/// use toolkit_sdk::api::GoDuration;
///
/// let d: GoDuration = "1m30s".parse().unwrap();
/// assert_eq!(d.as_duration().as_secs(), 90);
/// assert_eq!(d.to_string(), "1m30s");
/// assert_eq!("1h".parse::<GoDuration>().unwrap().to_string(), "1h0m0s");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Wrap a [`Duration`].
    pub const fn new(d: Duration) -> Self {
        GoDuration(d)
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        GoDuration(Duration::from_secs(secs))
    }

    /// A duration of whole minutes.
    pub const fn from_mins(mins: u64) -> Self {
        GoDuration(Duration::from_secs(mins * 60))
    }

    /// The wrapped [`Duration`].
    pub const fn as_duration(&self) -> Duration {
        self.0
    }

    /// Parse Go's duration syntax (see the type docs).
    pub fn parse(s: &str) -> Result<Self, ParseDurationError> {
        parse_go_duration(s).map(GoDuration)
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration(d)
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Self {
        d.0
    }
}

impl FromStr for GoDuration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GoDuration::parse(s)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_duration(self.0))
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        GoDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("GoDuration")
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": INTERVAL_PATTERN,
        })
    }
}

/// Parse Go's `time.ParseDuration` syntax into a non-negative [`Duration`].
fn parse_go_duration(input: &str) -> Result<Duration, ParseDurationError> {
    if let Some(rest) = input.strip_prefix('-') {
        // Go accepts negative durations; no Flux field does. "-0" is still zero.
        return match parse_unsigned(rest, input)? {
            Duration::ZERO => Ok(Duration::ZERO),
            _ => Err(ParseDurationError::Negative(input.to_owned())),
        };
    }
    parse_unsigned(input.strip_prefix('+').unwrap_or(input), input)
}

/// Parse an unsigned duration; `input` is the whole text, for error messages.
fn parse_unsigned(mut s: &str, input: &str) -> Result<Duration, ParseDurationError> {
    let invalid = || ParseDurationError::Invalid(input.to_owned());
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }

    let mut total: u128 = 0;
    while !s.is_empty() {
        let bytes = s.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(invalid());
        }

        // Integer part.
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut whole: u128 = 0;
        for &b in &bytes[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
                .filter(|v| *v <= MAX_NANOS)
                .ok_or_else(|| ParseDurationError::Overflow(input.to_owned()))?;
        }
        s = &s[int_len..];

        // Fraction part: keep up to 30 digits, which is more precision than a nanosecond.
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
            for &b in &rest.as_bytes()[..frac_len.min(30)] {
                frac = frac * 10 + u128::from(b - b'0');
                scale *= 10;
            }
            s = &rest[frac_len..];
        } else if int_len == 0 {
            return Err(invalid());
        }
        if int_len == 0 && frac_len == 0 {
            // A lone "." with no digits on either side.
            return Err(invalid());
        }

        // Unit: everything up to the next number.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(ParseDurationError::MissingUnit(input.to_owned()));
        }
        let per_unit = match unit {
            "ns" => 1,
            "us" | "\u{00b5}s" | "\u{03bc}s" => NANOS_PER_MICRO,
            "ms" => NANOS_PER_MILLI,
            "s" => NANOS_PER_SEC,
            "m" => NANOS_PER_MIN,
            "h" => NANOS_PER_HOUR,
            _ => {
                return Err(ParseDurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    input: input.to_owned(),
                });
            }
        };

        // whole <= MAX_NANOS < 2^63 and per_unit < 2^42, so neither product overflows u128.
        let value = whole * per_unit + frac * per_unit / scale;
        total += value;
        if total > MAX_NANOS {
            return Err(ParseDurationError::Overflow(input.to_owned()));
        }
    }

    let secs = u64::try_from(total / NANOS_PER_SEC)
        .map_err(|_| ParseDurationError::Overflow(input.to_owned()))?;
    let nanos = u32::try_from(total % NANOS_PER_SEC)
        .map_err(|_| ParseDurationError::Overflow(input.to_owned()))?;
    Ok(Duration::new(secs, nanos))
}

/// Format like Go's `time.Duration.String()`.
fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < NANOS_PER_SEC {
        // Below one second Go uses the largest sub-second unit that keeps a non-zero
        // integer part, with a fraction when needed: "1.5µs", "500ms".
        return if nanos < NANOS_PER_MICRO {
            format!("{nanos}ns")
        } else if nanos < NANOS_PER_MILLI {
            format!("{}\u{00b5}s", with_fraction(nanos, 3))
        } else {
            format!("{}ms", with_fraction(nanos, 6))
        };
    }

    let secs_total = nanos / NANOS_PER_SEC;
    let sub_nanos = nanos % NANOS_PER_SEC;
    let hours = secs_total / 3600;
    let mins = (secs_total / 60) % 60;
    let secs = secs_total % 60;
    let secs_text = with_fraction(secs * NANOS_PER_SEC + sub_nanos, 9);
    if hours > 0 {
        format!("{hours}h{mins}m{secs_text}s")
    } else if mins > 0 {
        format!("{mins}m{secs_text}s")
    } else {
        format!("{secs_text}s")
    }
}

/// `value / 10^digits` as a decimal with trailing zeros (and a bare point) removed.
fn with_fraction(value: u128, digits: u32) -> String {
    let divisor = 10u128.pow(digits);
    let int = value / divisor;
    let frac = value % divisor;
    if frac == 0 {
        return int.to_string();
    }
    let frac_text = format!("{frac:0width$}", width = digits as usize);
    format!("{int}.{}", frac_text.trim_end_matches('0'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn parses_what_go_parses() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("300ns", ns(300)),
            ("10us", ns(10_000)),
            ("10\u{00b5}s", ns(10_000)),
            ("10\u{03bc}s", ns(10_000)),
            ("500ms", ns(500 * MS)),
            ("1s", ns(S)),
            ("1.5s", ns(1_500 * MS)),
            (".5s", ns(500 * MS)),
            ("1.s", ns(S)),
            ("1m30s", ns(90 * S)),
            ("1h", ns(3600 * S)),
            ("1.5h", ns(5400 * S)),
            ("2h45m", ns((2 * 3600 + 45 * 60) * S)),
            ("1h0m0s", ns(3600 * S)),
            ("10m", ns(600 * S)),
            ("5m0s", ns(300 * S)),
            ("1h2m3s4ms5us6ns", ns(3723 * S + 4 * MS + 5_000 + 6)),
            ("+5s", ns(5 * S)),
            ("0.000000001s", ns(1)),
            ("0.0000000009s", Duration::ZERO),
            ("1.0000000000000000000000000000000001s", ns(S)),
            ("9223372036854775807ns", ns(i64::MAX as u64)),
            ("2562047h47m16.854775807s", ns(i64::MAX as u64)),
        ];
        for (text, want) in cases {
            assert_eq!(GoDuration::parse(text).map(|d| d.0), Ok(*want), "{text}");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (ns(1), "1ns"),
            (ns(999), "999ns"),
            (ns(1_000), "1\u{00b5}s"),
            (ns(1_500), "1.5\u{00b5}s"),
            (ns(500 * MS), "500ms"),
            (ns(1_500_000), "1.5ms"),
            (ns(S), "1s"),
            (ns(1_500 * MS), "1.5s"),
            (ns(S + 1), "1.000000001s"),
            (ns(90 * S), "1m30s"),
            (ns(60 * S), "1m0s"),
            (ns(3600 * S), "1h0m0s"),
            (ns(5400 * S), "1h30m0s"),
            (ns(3723 * S + 4 * MS + 5_000 + 6), "1h2m3.004005006s"),
            (ns(i64::MAX as u64), "2562047h47m16.854775807s"),
        ];
        for (d, want) in cases {
            assert_eq!(GoDuration(*d).to_string(), *want, "{d:?}");
        }
    }

    #[test]
    fn parse_format_parse_round_trips() {
        let inputs = [
            "0",
            "300ns",
            "10us",
            "10\u{00b5}s",
            "500ms",
            "1.5s",
            "1m30s",
            "1h",
            "1.5h",
            "2h45m",
            "10m",
            "24h",
            "168h",
            "30s",
            "1h2m3s4ms5us6ns",
            ".25s",
            "0.1ms",
        ];
        for input in inputs {
            let first = GoDuration::parse(input).unwrap();
            let text = first.to_string();
            let second = GoDuration::parse(&text).unwrap();
            assert_eq!(first, second, "{input} -> {text}");
            assert_eq!(second.to_string(), text, "formatting is stable for {input}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        let invalid = |s: &str| ParseDurationError::Invalid(s.to_owned());
        let missing = |s: &str| ParseDurationError::MissingUnit(s.to_owned());
        let unknown = |u: &str, s: &str| ParseDurationError::UnknownUnit {
            unit: u.to_owned(),
            input: s.to_owned(),
        };
        let cases: Vec<(&str, ParseDurationError)> = vec![
            ("", invalid("")),
            ("+", invalid("+")),
            ("s", invalid("s")),
            (".", invalid(".")),
            (".s", invalid(".s")),
            ("1", missing("1")),
            ("1h30", missing("1h30")),
            ("1.5", missing("1.5")),
            ("10d", unknown("d", "10d")),
            ("1 m", unknown(" m", "1 m")),
            ("3sec", unknown("sec", "3sec")),
            ("-1s", ParseDurationError::Negative("-1s".to_owned())),
            ("-1h", ParseDurationError::Negative("-1h".to_owned())),
            (" 1s", invalid(" 1s")),
            (
                "9223372036854775808ns",
                ParseDurationError::Overflow("9223372036854775808ns".to_owned()),
            ),
            (
                "2562048h",
                ParseDurationError::Overflow("2562048h".to_owned()),
            ),
            (
                "2562047h48m",
                ParseDurationError::Overflow("2562047h48m".to_owned()),
            ),
            (
                "99999999999999999999999h",
                ParseDurationError::Overflow("99999999999999999999999h".to_owned()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(GoDuration::parse(text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn error_messages_name_the_input() {
        let err = GoDuration::parse("10d").unwrap_err();
        assert_eq!(err.to_string(), "unknown unit \"d\" in duration \"10d\"");
        let err = GoDuration::parse("-5m").unwrap_err();
        assert_eq!(err.to_string(), "negative duration \"-5m\" is not allowed");
    }

    #[test]
    fn serde_uses_the_text_form() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Spec {
            interval: GoDuration,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timeout: Option<GoDuration>,
        }
        let spec: Spec = serde_json::from_value(json!({"interval": "1h"})).unwrap();
        assert_eq!(spec.interval, GoDuration::from_mins(60));
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            json!({"interval": "1h0m0s"})
        );

        let spec: Spec =
            serde_json::from_value(json!({"interval": "5m", "timeout": "90s"})).unwrap();
        assert_eq!(spec.timeout, Some(GoDuration::from_secs(90)));
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            json!({"interval": "5m0s", "timeout": "1m30s"})
        );

        let err = serde_json::from_value::<Spec>(json!({"interval": "10 minutes"})).unwrap_err();
        assert!(err.to_string().contains("10 minutes"), "{err}");
        assert!(serde_json::from_value::<Spec>(json!({"interval": 10})).is_err());

        // Borrowed and owned (escaped) strings both deserialize.
        let spec: Spec = serde_json::from_str(r#"{"interval": "1\u006d"}"#).unwrap();
        assert_eq!(spec.interval, GoDuration::from_mins(1));
    }

    #[test]
    fn schema_is_a_string_with_the_flux_pattern() {
        let schema = serde_json::to_value(schemars::schema_for!(GoDuration)).unwrap();
        assert_eq!(schema["type"], json!("string"));
        assert_eq!(schema["pattern"], json!(INTERVAL_PATTERN));
    }

    #[test]
    fn conversions() {
        let d = Duration::from_millis(1500);
        let g = GoDuration::from(d);
        assert_eq!(Duration::from(g), d);
        assert_eq!(g.as_duration(), d);
        assert_eq!(GoDuration::new(d), g);
        assert_eq!(GoDuration::default().to_string(), "0s");
        assert!(GoDuration::from_secs(59) < GoDuration::from_mins(1));
    }
}
