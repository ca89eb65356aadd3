//! SemVer ranges as Flux users write them, with the semantics of the Go library Flux uses
//! (Masterminds/semver v3), on top of the [`semver`] crate's [`Version`].
//!
//! ```
//! use toolkit_sdk::semver::{Constraint, parse_version};
//!
//! let range = Constraint::parse(">=1.0.0 <2.0.0").unwrap();
//! assert!(range.matches(&parse_version("v1.4").unwrap()));
//! let tags = ["v0.9.0", "v1.2.0", "1.3.0-rc.1", "v2.0.0", "latest"];
//! let (tag, version) = range.latest_matching(tags).unwrap();
//! assert_eq!((tag, version.to_string()), ("v1.2.0", "1.2.0".to_string()));
//! ```
//!
//! # Syntax
//! - Comparisons `=`, `!=`, `>`, `<`, `>=` (or `=>`), `<=` (or `=<`), a bare version (equal),
//!   `~` / `~>` (patch-level changes: `~1.2.3` is `>=1.2.3 <1.3.0`), `^` (no breaking changes:
//!   `^1.2` is `>=1.2.0 <2.0.0`, `^0.2.3` is `>=0.2.3 <0.3.0`).
//! - Wildcards `x`, `X` and `*`, and partial versions: `1.2.x`, `1.2` and `~1.2` all mean
//!   `>=1.2.0 <1.3.0`; `*` matches every release.
//! - Hyphen ranges `1.2 - 1.4.5` (`>=1.2 <=1.4.5`), spaces required around the hyphen.
//! - AND with spaces or commas (`>=1.0, <2.0`), OR with `||`.
//! - A `v` prefix anywhere a version is written.
//!
//! # Pre-releases
//! As in Masterminds/semver: a version with a pre-release (`1.2.3-rc.1`) satisfies a
//! comparison only if that comparison's own version has a pre-release too (an exact `!=1.2.3`
//! is the exception, as there). So `>=1.2.0`
//! never matches `1.3.0-rc.1`, `>=1.2.0-0` matches it, and in `>=1.2.0-0 <2.0.0` the second
//! comparison still rejects it.
//!
//! # Versions
//! [`parse_version`] is lenient like Masterminds' `NewVersion`: a `v` prefix, and a missing
//! minor or patch (`1.2` is `1.2.0`); leading zeros in numbers are accepted. Build metadata
//! never changes precedence.

use std::cmp::Ordering;
use std::fmt;

pub use ::semver::Version;
use ::semver::{BuildMetadata, Prerelease};

/// Why a range or version does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemverError {
    /// The range (or one `||` alternative of it) is not a valid constraint.
    #[error("improper constraint: {0}")]
    InvalidConstraint(String),
    /// The text is not a version.
    #[error("invalid semantic version: {0}")]
    InvalidVersion(String),
}

/// A parsed SemVer range: alternatives (`||`) of comparisons that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    source: String,
    alternatives: Vec<Vec<Comparison>>,
}

/// The operator of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=` or none: equal, or a tilde range when the version has wildcards.
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

/// One comparison, such as `>=1.2.x`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparison {
    op: Op,
    /// The version with wildcards and missing parts as zero.
    version: Version,
    /// Some part was a wildcard or missing.
    dirty: bool,
    /// The minor (and so the patch) was a wildcard or missing.
    minor_dirty: bool,
    /// The patch was a wildcard or missing (the minor was not).
    patch_dirty: bool,
}

impl Constraint {
    /// Parses a range such as `>=1.0.0 <2.0.0`, `1.2.x`, `^1.2`, `~1.2.3`, `1.2.3 - 1.4`,
    /// `>=1.0, <2.0 || 3.x` or `*`.
    pub fn parse(range: &str) -> Result<Self, SemverError> {
        let rewritten = rewrite_hyphen_ranges(range);
        let alternatives = rewritten
            .split("||")
            .map(|alternative| parse_alternative(alternative).ok_or_else(|| improper(alternative)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            source: range.to_string(),
            alternatives,
        })
    }

    /// The range as it was written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `version` satisfies the range: every comparison of at least one alternative.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|all| all.iter().all(|c| c.matches(version)))
    }

    /// The highest version among `tags` that satisfies the range, with the tag it was read
    /// from. Tags that are not versions ([`parse_version`]) are skipped.
    ///
    /// When several tags name versions of equal precedence (`v1.0.0` and `1.0.0`, or
    /// `1.0.0+a` and `1.0.0+b`), the one with the greatest build metadata wins, then the
    /// greatest tag string, so the choice never depends on the order of `tags`.
    pub fn latest_matching<'a, I>(&self, tags: I) -> Option<(&'a str, Version)>
    where
        I: IntoIterator<Item = &'a str>,
    {
        tags.into_iter()
            .filter_map(|tag| parse_version(tag).ok().map(|v| (tag, v)))
            .filter(|(_, v)| self.matches(v))
            .max_by(|(tag_a, a), (tag_b, b)| {
                a.cmp_precedence(b)
                    .then_with(|| a.build.cmp(&b.build))
                    .then_with(|| tag_a.cmp(tag_b))
            })
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Constraint {
    type Err = SemverError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Parses a version leniently, as Masterminds' `NewVersion` does: an optional `v`, then
/// `MAJOR[.MINOR[.PATCH]]`, an optional `-pre.release` and an optional `+build`.
pub fn parse_version(text: &str) -> Result<Version, SemverError> {
    let invalid = || SemverError::InvalidVersion(text.to_string());
    let rest = text.strip_prefix('v').unwrap_or(text);
    let (rest, build) = match rest.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let mut numbers = [0u64; 3];
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(invalid());
    }
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        *slot = part.parse().map_err(|_| invalid())?;
    }
    let mut version = Version::new(numbers[0], numbers[1], numbers[2]);
    if let Some(pre) = pre {
        if !valid_identifiers(pre) {
            return Err(invalid());
        }
        version.pre = Prerelease::new(pre).map_err(|_| invalid())?;
    }
    if let Some(build) = build {
        if !valid_identifiers(build) {
            return Err(invalid());
        }
        version.build = BuildMetadata::new(build).map_err(|_| invalid())?;
    }
    Ok(version)
}

/// Dot-separated, non-empty identifiers of ASCII letters, digits and hyphens.
fn valid_identifiers(text: &str) -> bool {
    text.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn improper(text: &str) -> SemverError {
    SemverError::InvalidConstraint(text.trim().to_string())
}

/// Whether `c` may appear in a version of a constraint (digits, wildcards, identifiers).
fn is_version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '*')
}

/// Rewrites every `A - B` (spaces around the hyphen) into `>= A, <= B`.
fn rewrite_hyphen_ranges(range: &str) -> String {
    let tokens: Vec<&str> = range.split_whitespace().collect();
    if !tokens.contains(&"-") {
        return range.to_string();
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_range = i + 2 < tokens.len()
            && tokens[i + 1] == "-"
            && looks_like_version(tokens[i])
            && looks_like_version(tokens[i + 2]);
        if is_range {
            out.push(format!(">= {}, <= {}", tokens[i], tokens[i + 2]));
            i += 3;
        } else {
            out.push(tokens[i].to_string());
            i += 1;
        }
    }
    out.join(" ")
}

fn looks_like_version(token: &str) -> bool {
    let token = token.strip_prefix('v').unwrap_or(token);
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, 'x' | 'X' | '*'))
        && token.chars().all(is_version_char)
}

/// Parses the comparisons of one `||` alternative, separated by spaces or commas.
fn parse_alternative(text: &str) -> Option<Vec<Comparison>> {
    let mut comparisons = Vec::new();
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut first = true;
    while !rest.is_empty() {
        if !first {
            // A separator: a comma (with optional spaces) or at least one space.
            let trimmed = rest.trim_start();
            let had_space = trimmed.len() != rest.len();
            rest = match trimmed.strip_prefix(',') {
                Some(after) => after.trim_start(),
                None if had_space => trimmed,
                None => return None,
            };
            if rest.is_empty() {
                return None;
            }
        }
        first = false;
        let (op, after_op) = parse_op(rest);
        let after_op = after_op.trim_start();
        let end = after_op
            .find(|c: char| !is_version_char(c))
            .unwrap_or(after_op.len());
        if end == 0 {
            return None;
        }
        comparisons.push(parse_comparison(op, &after_op[..end])?);
        rest = &after_op[end..];
    }
    Some(comparisons)
}

fn parse_op(text: &str) -> (Op, &str) {
    const OPS: [(&str, Op); 11] = [
        ("!=", Op::NotEqual),
        (">=", Op::GreaterEqual),
        ("=>", Op::GreaterEqual),
        ("<=", Op::LessEqual),
        ("=<", Op::LessEqual),
        ("~>", Op::Tilde),
        ("=", Op::TildeOrEqual),
        (">", Op::Greater),
        ("<", Op::Less),
        ("~", Op::Tilde),
        ("^", Op::Caret),
    ];
    OPS.iter()
        .find_map(|(token, op)| text.strip_prefix(token).map(|rest| (*op, rest)))
        .unwrap_or((Op::TildeOrEqual, text))
}

fn is_wildcard(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

/// Parses the version of one comparison: `[v]MAJOR[.MINOR[.PATCH]][-pre][+build]`, where
/// any number may be a wildcard.
fn parse_comparison(op: Op, text: &str) -> Option<Comparison> {
    let rest = text.strip_prefix('v').unwrap_or(text);
    let (rest, _build) = match rest.split_once('+') {
        Some((rest, build)) => (rest, Some(build).filter(|b| valid_identifiers(b))?),
        None => (rest, ""),
    };
    // A wildcard can only be a whole number part, so the first hyphen starts the pre-release.
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !(is_wildcard(p) || p.bytes().all(|b| b.is_ascii_digit())))
    {
        return None;
    }
    let number = |i: usize| -> Option<Option<u64>> {
        match parts.get(i) {
            None => Some(None),
            Some(p) if is_wildcard(p) => Some(None),
            Some(p) => p.parse().ok().map(Some),
        }
    };
    let (major, minor, patch) = (number(0)?, number(1)?, number(2)?);
    let mut comparison = Comparison {
        op,
        version: Version::new(0, 0, 0),
        dirty: false,
        minor_dirty: false,
        patch_dirty: false,
    };
    match (major, minor, patch) {
        (None, _, _) => comparison.dirty = true,
        (Some(major), None, _) => {
            comparison.version.major = major;
            comparison.dirty = true;
            comparison.minor_dirty = true;
        }
        (Some(major), Some(minor), None) => {
            comparison.version = Version::new(major, minor, 0);
            comparison.dirty = true;
            comparison.patch_dirty = true;
        }
        (Some(major), Some(minor), Some(patch)) => {
            comparison.version = Version::new(major, minor, patch);
        }
    }
    if let Some(pre) = pre {
        if !valid_identifiers(pre) {
            return None;
        }
        comparison.version.pre = Prerelease::new(pre).ok()?;
    }
    Some(comparison)
}

impl Comparison {
    fn matches(&self, v: &Version) -> bool {
        let c = &self.version;
        // A pre-release satisfies only comparisons that name a pre-release themselves (except
        // an exact `!=`, which Masterminds does not restrict).
        let exact_not_equal = self.op == Op::NotEqual && !self.dirty;
        if !v.pre.is_empty() && c.pre.is_empty() && !exact_not_equal {
            return false;
        }
        let order = v.cmp_precedence(c);
        match self.op {
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => order == Ordering::Equal,
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => order == Ordering::Less,
            Op::GreaterEqual => order != Ordering::Less,
            Op::LessEqual => self.less_equal(v),
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if self.minor_dirty {
                return false;
            }
            if c.minor != v.minor {
                return true;
            }
            if self.patch_dirty {
                return (!v.pre.is_empty() || !c.pre.is_empty()) && v.pre != c.pre;
            }
        }
        v.cmp_precedence(c) != Ordering::Equal
    }

    fn greater(&self, v: &Version) -> bool {
        let c = &self.version;
        if !self.dirty {
            return v.cmp_precedence(c) == Ordering::Greater;
        }
        match v.major.cmp(&c.major) {
            Ordering::Greater => true,
            Ordering::Less => false,
            // `>1` needs 2.0.0 or higher; `>1.2` needs 1.3.0 or higher.
            Ordering::Equal if self.minor_dirty => false,
            Ordering::Equal if self.patch_dirty => v.minor > c.minor,
            Ordering::Equal => v.cmp_precedence(c) == Ordering::Greater,
        }
    }

    fn less_equal(&self, v: &Version) -> bool {
        let c = &self.version;
        if !self.dirty {
            return v.cmp_precedence(c) != Ordering::Greater;
        }
        if v.major > c.major {
            return false;
        }
        !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.cmp_precedence(c) == Ordering::Less {
            return false;
        }
        // `~0.0.0` (and `*`) accept everything.
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (self.minor_dirty || v.minor == c.minor)
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.cmp_precedence(c) == Ordering::Less {
            return false;
        }
        // `^*` accepts every release (Masterminds documents it so; its code would only
        // accept 0.0.0).
        if self.dirty && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(range: &str, version: &str) -> bool {
        Constraint::parse(range)
            .unwrap_or_else(|e| panic!("{range}: {e}"))
            .matches(&parse_version(version).unwrap_or_else(|e| panic!("{version}: {e}")))
    }

    #[test]
    fn lenient_versions() {
        let cases = [
            ("1.2.3", "1.2.3"),
            ("v1.2.3", "1.2.3"),
            ("v1.2", "1.2.0"),
            ("1", "1.0.0"),
            ("01.02.03", "1.2.3"),
            ("1.2.3-rc.1", "1.2.3-rc.1"),
            ("v1.2-beta", "1.2.0-beta"),
            ("1.2.3+build.5", "1.2.3+build.5"),
            ("1.2.3-alpha-1+sha.01", "1.2.3-alpha-1+sha.01"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_version(text).unwrap().to_string(), expected, "{text}");
        }
        for bad in [
            "",
            "v",
            "latest",
            "1.2.3.4",
            "1..2",
            "1.2.x",
            "a1.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "V1.2.3",
            "1.2.3-a..b",
        ] {
            assert!(parse_version(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn comparisons_and_ranges() {
        // (range, version, matches) — the examples of Flux's docs and Masterminds' README.
        let table: &[(&str, &str, bool)] = &[
            (">=1.0.0 <2.0.0", "1.0.0", true),
            (">=1.0.0 <2.0.0", "1.9.9", true),
            (">=1.0.0 <2.0.0", "2.0.0", false),
            (">=1.0.0 <2.0.0", "0.9.9", false),
            (">=1.0, <2.0", "1.5.0", true),
            (">= 1.0 , < 2.0", "2.0.0", false),
            ("1.2.3", "1.2.3", true),
            ("=1.2.3", "1.2.4", false),
            ("v1.2.3", "1.2.3+meta", true),
            ("!=1.2.3", "1.2.4", true),
            ("!=1.2.3", "1.2.3", false),
            ("!=4.x", "4.1.0", false),
            ("!=4.x", "5.0.0", true),
            ("!=4.1.x", "4.2.0", true),
            ("!=4.1.x", "4.1.7", false),
            (">1.2.3", "1.2.4", true),
            (">1.2.3", "1.2.3", false),
            (">11", "11.1.0", false),
            (">11", "12.0.0", true),
            (">11.1", "11.1.5", false),
            (">11.1", "11.2.0", true),
            ("<1.2.3", "1.2.2", true),
            ("<1.2", "1.2.0", false),
            ("<1.2", "1.1.9", true),
            ("<=1.2.3", "1.2.3", true),
            ("<=1.2", "1.2.9", true),
            ("<=1.2", "1.3.0", false),
            ("<=1", "1.9.0", true),
            ("=<1", "2.0.0", false),
            ("=>1.2", "1.2.0", true),
            // Wildcards and partial versions.
            ("1.2.x", "1.2.0", true),
            ("1.2.x", "1.2.99", true),
            ("1.2.x", "1.3.0", false),
            ("1.2", "1.2.5", true),
            ("1.x", "1.9.0", true),
            ("1.X", "2.0.0", false),
            ("*", "0.0.1", true),
            ("*", "99.0.0", true),
            ("x", "3.1.4", true),
            (">= 1.2.x", "1.2.0", true),
            ("<= 2.x", "2.9.9", true),
            ("<= 2.x", "3.0.0", false),
            // Tilde.
            ("~1.2.3", "1.2.3", true),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~1.2.3", "1.2.2", false),
            ("~1", "1.9.0", true),
            ("~1", "2.0.0", false),
            ("~2.x", "2.5.0", true),
            ("~1.2", "1.2.7", true),
            ("~1.2", "1.3.0", false),
            ("~>1.2.3", "1.2.4", true),
            ("~0.0.0", "5.0.0", true),
            // Caret.
            ("^1.2.3", "1.2.3", true),
            ("^1.2.3", "1.9.0", true),
            ("^1.2.3", "2.0.0", false),
            ("^1.2.3", "1.2.2", false),
            ("^1.2", "1.2.0", true),
            ("^1.2", "1.1.0", false),
            ("^1", "1.99.0", true),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.2", "0.2.0", true),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0.0", "0.0.9", true),
            ("^0.0", "0.1.0", false),
            ("^0", "0.9.0", true),
            ("^0", "1.0.0", false),
            ("^*", "0.3.0", true),
            ("^*", "3.0.0", true),
            // Hyphen ranges.
            ("1.2 - 1.4.5", "1.2.0", true),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            ("1.2.3 - 1.4", "1.4.9", true),
            ("1.2.3 - 1.4", "1.5.0", false),
            ("1.2.3 - 1.4", "1.2.2", false),
            ("v1.0.0 - v2", "2.3.0", true),
            // Alternatives.
            ("<1.0.0 || >=3.0.0", "0.5.0", true),
            ("<1.0.0 || >=3.0.0", "2.0.0", false),
            ("<1.0.0 || >=3.0.0", "3.0.0", true),
            ("1.2.x || 2.x", "2.7.0", true),
            ("~1.2 || ^3", "3.1.0", true),
            (">=1.0, <1.5 || >2", "1.6.0", false),
            // Pre-releases, as Masterminds applies them.
            (">=1.2.0", "1.3.0-rc.1", false),
            ("*", "1.0.0-beta", false),
            ("^1.2", "1.3.0-rc.1", false),
            (">=1.2.0-0", "1.3.0-rc.1", true),
            (">=1.2.3-beta.1", "1.2.3-beta.2", true),
            (">=1.2.3-beta.2", "1.2.3-beta.10", true),
            (">=1.2.3-beta.2", "1.2.3-beta.1", false),
            (">=1.2.3-beta.1", "1.2.3", true),
            ("<1.2.3-rc.1", "1.2.3-beta", true),
            (">=1.0.0-0 <2.0.0", "1.5.0-beta", false),
            ("~1.2.3-beta", "1.2.3-beta.2", true),
            ("~1.2.3-beta", "1.2.4", true),
            ("1.2.3-beta", "1.2.3-beta", true),
            ("1.2.3-beta", "1.2.3", false),
            ("!=1.2.3", "1.2.4-alpha", true),
            ("!=1.2.x", "1.2.4-alpha", false),
        ];
        for &(range, version, expected) in table {
            assert_eq!(check(range, version), expected, "{range:?} vs {version}");
        }
    }

    #[test]
    fn invalid_ranges() {
        for bad in [
            "",
            "   ",
            "latest",
            ">>1.0",
            "1.0 ||",
            "|| 1.0",
            ">=1.0,,<2.0",
            ">=1.0,",
            "1.2.3.4",
            "^v",
            ">=1.0<2.0",
            "1.2 -",
            "main",
            "1.2.3-",
        ] {
            assert!(Constraint::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let err = Constraint::parse("1.0 || nope").unwrap_err();
        assert_eq!(err, SemverError::InvalidConstraint("nope".into()));
        assert_eq!(err.to_string(), "improper constraint: nope");
    }

    #[test]
    fn latest_matching_picks_the_highest_version_in_range() {
        let tags = [
            "v0.1.0",
            "v1.0.0",
            "v1.2.0",
            "1.10.0",
            "v1.11.0-rc.1",
            "v2.0.0",
            "latest",
            "nightly",
        ];
        let range = Constraint::parse("1.x").unwrap();
        let (tag, version) = range.latest_matching(tags).unwrap();
        assert_eq!(tag, "1.10.0");
        assert_eq!(version, Version::new(1, 10, 0));

        let range = Constraint::parse(">=1.0.0-0").unwrap();
        assert_eq!(range.latest_matching(tags).unwrap().0, "v2.0.0");

        let range = Constraint::parse("~1.11.0-0").unwrap();
        assert_eq!(range.latest_matching(tags).unwrap().0, "v1.11.0-rc.1");

        let range = Constraint::parse(">=3.0.0").unwrap();
        assert!(range.latest_matching(tags).is_none());
        assert!(range.latest_matching(std::iter::empty()).is_none());
    }

    #[test]
    fn latest_matching_breaks_ties_without_depending_on_order() {
        let range = Constraint::parse("*").unwrap();
        let forward = ["1.0.0", "v1.0.0", "1.0.0+b", "1.0.0+a"];
        let mut backward = forward;
        backward.reverse();
        let a = range.latest_matching(forward).unwrap();
        let b = range.latest_matching(backward).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0, "1.0.0+b");
    }

    #[test]
    fn keeps_the_written_form() {
        let range: Constraint = ">= 1.0, < 2.0".parse().unwrap();
        assert_eq!(range.as_str(), ">= 1.0, < 2.0");
        assert_eq!(range.to_string(), ">= 1.0, < 2.0");
    }
}
