//! Which files of a source tree go into its artifact: Flux's exclusion rules.
//!
//! Patterns use gitignore syntax with the exact semantics Flux applies (those of go-git's
//! `gitignore` package, which differ from git's own in a few corners):
//!
//! - patterns are tried from the last to the first; the first one that matches decides
//!   (`!pattern` includes, any other pattern excludes); a path no pattern matches is kept;
//! - a pattern without `/` (a trailing `/` aside) matches any path with a component that
//!   matches it: `*.png` excludes `a/b/c.png`, and `build` excludes `build/` and all below it;
//! - a pattern with a `/` is anchored to the directory that declared it and matches a path
//!   when it matches its leading components: `deploy/*.yaml` excludes `deploy/a.yaml`, and
//!   `deploy/base` excludes everything under `deploy/base/`; `**` as a whole component stands
//!   for any number of directories, and a trailing `/**` for everything inside;
//! - a trailing `/` restricts the pattern to directories (and what is below them);
//! - each path is decided on its own, so a negation can bring back a file below an excluded
//!   directory (`/*` then `!/deploy/` keeps only `deploy/`), which git itself would not do;
//! - components are matched with Go's `filepath.Match` (`*`, `?`, `[a-z]`, `[^a-z]`, `\`
//!   escapes); a malformed component never matches;
//! - lines starting with `#` and blank lines are skipped; trailing spaces are dropped unless
//!   the line ends with `\ `.
//!
//! [`Filter::for_source`] builds the filter Flux uses for a `GitRepository` or
//! `OCIRepository`: see its documentation for how `.sourceignore` files and `spec.ignore`
//! interact with the default exclusions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the ignore files read from every directory of a source tree.
pub const SOURCE_IGNORE_FILE: &str = ".sourceignore";

/// Version-control files, excluded from every artifact.
pub const EXCLUDE_VCS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];

/// Binary and archive files, excluded by default.
pub const EXCLUDE_EXT: &[&str] = &[
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
];

/// CI configuration, excluded by default.
pub const EXCLUDE_CI: &[&str] = &[
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
];

/// Tool configuration, excluded by default.
pub const EXCLUDE_EXTRA: &[&str] = &["**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml"];

/// Error reading the `.sourceignore` files of a source tree.
#[derive(Debug, thiserror::Error)]
#[error("cannot read ignore rules from {path}")]
pub struct LoadIgnoreError {
    /// The file or directory that could not be read, relative to the source root.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// One gitignore pattern, scoped to the directory that declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Components of the directory the pattern applies under (empty for the source root).
    domain: Vec<String>,
    /// The pattern split on `/`.
    components: Vec<Component>,
    /// `!pattern`: a match includes rather than excludes.
    inclusion: bool,
    /// `pattern/`: matches directories only (and what is below them).
    dir_only: bool,
    /// The pattern has a `/` (other than a trailing one): it is anchored.
    anchored: bool,
}

/// What a pattern says about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchResult {
    /// The pattern does not apply to the path.
    NoMatch,
    /// The pattern excludes the path.
    Exclude,
    /// The pattern (a negation) includes the path.
    Include,
}

impl Pattern {
    /// Parses one line of gitignore syntax, scoped to `domain` (the components of the
    /// directory it was read from, relative to the source root).
    ///
    /// Returns `None` for lines that hold no pattern: blank lines and `#` comments.
    pub fn parse(line: &str, domain: &[&str]) -> Option<Self> {
        if line.starts_with('#') || line.trim().is_empty() {
            return None;
        }
        let mut text = line;
        let inclusion = if let Some(rest) = text.strip_prefix('!') {
            text = rest;
            true
        } else {
            false
        };
        if !text.ends_with("\\ ") {
            text = text.trim_end_matches(' ');
        }
        let dir_only = if let Some(rest) = text.strip_suffix('/') {
            text = rest;
            true
        } else {
            false
        };
        Some(Self {
            domain: domain.iter().map(|s| (*s).to_owned()).collect(),
            components: text.split('/').map(Component::new).collect(),
            inclusion,
            dir_only,
            anchored: text.contains('/'),
        })
    }

    /// Whether this pattern includes or excludes `path` (the components of a path relative to
    /// the source root), which is a directory when `is_dir`.
    pub fn matches(&self, path: &[&str], is_dir: bool) -> MatchResult {
        if path.len() <= self.domain.len() || !self.domain.iter().zip(path).all(|(d, p)| d == p) {
            return MatchResult::NoMatch;
        }
        let path = &path[self.domain.len()..];
        let matched = if self.anchored {
            self.anchored_match(path, is_dir)
        } else {
            self.name_match(path, is_dir)
        };
        match (matched, self.inclusion) {
            (false, _) => MatchResult::NoMatch,
            (true, false) => MatchResult::Exclude,
            (true, true) => MatchResult::Include,
        }
    }

    /// Whether the pattern is a negation (`!pattern`).
    pub fn is_inclusion(&self) -> bool {
        self.inclusion
    }

    /// A pattern without `/`: any component may match; the last one only if it is a
    /// directory when the pattern asks for one.
    fn name_match(&self, path: &[&str], is_dir: bool) -> bool {
        let Some(first) = self.components.first() else {
            return false;
        };
        for (i, name) in path.iter().enumerate() {
            if !first.glob_matches(name) {
                continue;
            }
            return !(self.dir_only && !is_dir && i + 1 == path.len());
        }
        false
    }

    /// A pattern with `/`: its components must match the leading components of the path,
    /// `**` standing for any number of them.
    fn anchored_match(&self, mut path: &[&str], is_dir: bool) -> bool {
        let mut matched = false;
        let mut any_dirs = false;
        for (i, component) in self.components.iter().enumerate() {
            match component.raw.as_str() {
                // A leading `/` (or `//`) anchors without consuming anything.
                "" => {
                    any_dirs = false;
                    continue;
                }
                "**" => {
                    if i + 1 == self.components.len() {
                        // A trailing `/**`: everything below what matched so far.
                        break;
                    }
                    any_dirs = true;
                    continue;
                }
                raw if raw.contains("**") => return false,
                _ => {}
            }
            if path.is_empty() {
                return false;
            }
            if any_dirs {
                any_dirs = false;
                // Skip components until one matches; none left means no match.
                matched = false;
                while let Some((first, rest)) = path.split_first() {
                    path = rest;
                    if component.glob_matches(first) {
                        matched = true;
                        break;
                    }
                }
                if !matched {
                    return false;
                }
            } else {
                if !component.glob_matches(path[0]) {
                    return false;
                }
                matched = true;
                path = &path[1..];
            }
        }
        // A directory-only pattern that consumed the whole path needs a directory.
        matched && !(self.dir_only && !is_dir && path.is_empty())
    }
}

/// One `/`-separated component of a pattern, with its compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Component {
    raw: String,
    /// `None` when the component is not a valid glob: it never matches.
    glob: Option<Vec<Token>>,
}

impl Component {
    fn new(raw: &str) -> Self {
        Self {
            raw: raw.to_owned(),
            glob: compile_glob(raw),
        }
    }

    fn glob_matches(&self, name: &str) -> bool {
        match &self.glob {
            Some(tokens) => {
                let name: Vec<char> = name.chars().collect();
                glob_match(tokens, &name)
            }
            None => false,
        }
    }
}

/// A compiled element of a `filepath.Match` glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    AnyChar,
    /// A literal character (possibly escaped with `\`).
    Literal(char),
    /// `[...]` or `[^...]`: one character in (or not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Compiles a glob with Go's `filepath.Match` syntax; `None` if it is malformed.
fn compile_glob(pattern: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::AnyChar),
            '\\' => tokens.push(Token::Literal(chars.next()?)),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                        break;
                    }
                    let lo = class_char(&mut chars)?;
                    let hi = if chars.next_if_eq(&'-').is_some() {
                        class_char(&mut chars)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Literal(c)),
        }
    }
    Some(tokens)
}

/// One character of a class: `\` escapes; an unescaped `-` or `]` here is malformed.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
    match chars.next()? {
        '-' | ']' => None,
        '\\' => chars.next(),
        c => Some(c),
    }
}

/// Matches a whole name against a compiled glob (backtracking on the last `*`).
fn glob_match(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    // Where to resume after the last `*`: the token after it and the name position it
    // currently stops at.
    let mut resume: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match tokens.get(t) {
            Some(Token::Star) => {
                resume = Some((t + 1, n));
                t += 1;
                continue;
            }
            Some(Token::AnyChar) => true,
            Some(Token::Literal(c)) => *c == name[n],
            Some(Token::Class { negated, ranges }) => {
                let inside = ranges
                    .iter()
                    .any(|&(lo, hi)| lo <= name[n] && name[n] <= hi);
                inside != *negated
            }
            None => false,
        };
        if step {
            t += 1;
            n += 1;
        } else if let Some((after_star, stop)) = resume {
            // Let the `*` swallow one more character and retry.
            resume = Some((after_star, stop + 1));
            t = after_star;
            n = stop + 1;
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|token| *token == Token::Star)
}

/// Reads gitignore patterns from `text` (one per line), scoped to `domain`.
pub fn read_patterns(text: &str, domain: &[&str]) -> Vec<Pattern> {
    text.lines()
        .filter_map(|line| Pattern::parse(line, domain))
        .collect()
}

/// Reads every `.sourceignore` file under `root`, each scoped to its directory, in the order
/// Flux uses: a directory's own file first, then its subdirectories by name, depth first.
/// `.git` directories are not searched, and symlinks are not followed.
///
/// # Errors
///
/// A [`LoadIgnoreError`] when a directory or an ignore file exists but cannot be read.
pub fn load_source_ignore_files(root: &Path) -> Result<Vec<Pattern>, LoadIgnoreError> {
    let mut patterns = Vec::new();
    let mut domain = Vec::new();
    load_dir(root, &mut domain, &mut patterns)?;
    Ok(patterns)
}

fn load_dir(
    root: &Path,
    domain: &mut Vec<String>,
    patterns: &mut Vec<Pattern>,
) -> Result<(), LoadIgnoreError> {
    let rel: PathBuf = domain.iter().collect();
    let dir = root.join(&rel);
    let ignore_file = dir.join(SOURCE_IGNORE_FILE);
    match fs::read(&ignore_file) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let scope: Vec<&str> = domain.iter().map(String::as_str).collect();
            patterns.extend(read_patterns(&text, &scope));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(LoadIgnoreError {
                path: rel.join(SOURCE_IGNORE_FILE),
                source,
            });
        }
    }
    let read_error = |source| LoadIgnoreError {
        path: rel.clone(),
        source,
    };
    let mut subdirs = Vec::new();
    for entry in fs::read_dir(&dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        if entry.file_type().map_err(read_error)?.is_dir() && entry.file_name() != ".git" {
            subdirs.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    subdirs.sort_unstable();
    for name in subdirs {
        domain.push(name);
        load_dir(root, domain, patterns)?;
        domain.pop();
    }
    Ok(())
}

/// Decides which paths of a source tree are left out of its artifact.
///
/// Later patterns take precedence over earlier ones. An empty filter keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

impl Filter {
    /// A filter that keeps every path.
    pub fn keep_all() -> Self {
        Self::default()
    }

    /// A filter with `patterns`, in increasing precedence.
    pub fn new(patterns: Vec<Pattern>) -> Self {
        Self { patterns }
    }

    /// The version-control exclusions ([`EXCLUDE_VCS`]), scoped to the source root.
    pub fn vcs_patterns() -> Vec<Pattern> {
        parse_list(EXCLUDE_VCS)
    }

    /// The default exclusions ([`EXCLUDE_EXT`], [`EXCLUDE_CI`], [`EXCLUDE_EXTRA`]), scoped to
    /// the source root.
    pub fn default_patterns() -> Vec<Pattern> {
        let mut patterns = parse_list(EXCLUDE_EXT);
        patterns.extend(parse_list(EXCLUDE_CI));
        patterns.extend(parse_list(EXCLUDE_EXTRA));
        patterns
    }

    /// Flux's filter for `user` patterns: the version-control exclusions, then the default
    /// exclusions only when `user` is empty, then `user`.
    ///
    /// So any user pattern at all replaces the default exclusions (not the version-control
    /// ones), exactly as Flux does.
    pub fn with_flux_defaults(user: Vec<Pattern>) -> Self {
        let mut patterns = Self::vcs_patterns();
        if user.is_empty() {
            patterns.extend(Self::default_patterns());
        }
        patterns.extend(user);
        Self { patterns }
    }

    /// The filter Flux applies when archiving a `GitRepository` or `OCIRepository` checked
    /// out at `root`: the patterns of every `.sourceignore` file in the tree (each scoped to
    /// its directory), then those of `spec_ignore` (scoped to the root), combined by
    /// [`with_flux_defaults`](Self::with_flux_defaults).
    ///
    /// As in Flux, a `spec.ignore` or a `.sourceignore` file that holds at least one pattern
    /// drops the default exclusions (`*.png`, `.github/`, …) but never the version-control
    /// ones (`.git/`, `.gitignore`, …); a `spec.ignore` of only comments or blank lines
    /// changes nothing. The `.sourceignore` files themselves are archived unless excluded.
    ///
    /// # Errors
    ///
    /// A [`LoadIgnoreError`] when part of the tree cannot be read.
    pub fn for_source(root: &Path, spec_ignore: Option<&str>) -> Result<Self, LoadIgnoreError> {
        let mut user = load_source_ignore_files(root)?;
        if let Some(text) = spec_ignore {
            user.extend(read_patterns(text, &[]));
        }
        Ok(Self::with_flux_defaults(user))
    }

    /// The patterns, in increasing precedence.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Adds `patterns` with a higher precedence than those already present.
    pub fn extend(&mut self, patterns: impl IntoIterator<Item = Pattern>) {
        self.patterns.extend(patterns);
    }

    /// Whether `path` (components relative to the source root) is left out; `is_dir` says
    /// whether it is a directory.
    pub fn is_excluded(&self, path: &[&str], is_dir: bool) -> bool {
        self.patterns
            .iter()
            .rev()
            .map(|p| p.matches(path, is_dir))
            .find(|m| *m != MatchResult::NoMatch)
            == Some(MatchResult::Exclude)
    }

    /// [`is_excluded`](Self::is_excluded) for a relative path such as `deploy/app.yaml`.
    pub fn is_excluded_path(&self, path: &str, is_dir: bool) -> bool {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        self.is_excluded(&components, is_dir)
    }

    /// Whether any pattern is a negation. Without one, everything below an excluded
    /// directory is excluded too, so the archiver need not look inside.
    pub fn has_inclusions(&self) -> bool {
        self.patterns.iter().any(Pattern::is_inclusion)
    }
}

fn parse_list(list: &[&str]) -> Vec<Pattern> {
    list.iter()
        .filter_map(|line| Pattern::parse(line, &[]))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn glob(pattern: &str, name: &str) -> bool {
        Component::new(pattern).glob_matches(name)
    }

    #[test]
    fn globs_follow_go_filepath_match() {
        let table: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*", "", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b", "aXbYc", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "aéc", true),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[^a-c]x", "dx", true),
            ("[^a-c]x", "ax", false),
            ("[!a]", "!", true),
            ("[!a]", "b", false),
            ("[\\]]", "]", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*.tar.gz", "x.tar.gz", true),
            ("*.tar.gz", "x.tgz", false),
            ("a**b", "aXXb", true),
            // Malformed patterns never match.
            ("[", "[", false),
            ("[]", "]", false),
            ("[-a]", "a", false),
            ("a\\", "a", false),
            ("[a", "a", false),
        ];
        for (pattern, name, want) in table {
            assert_eq!(glob(pattern, name), *want, "{pattern:?} vs {name:?}");
        }
    }

    fn excluded(lines: &str, path: &str, is_dir: bool) -> bool {
        Filter::new(read_patterns(lines, &[])).is_excluded_path(path, is_dir)
    }

    #[test]
    fn unanchored_patterns_match_any_component() {
        assert!(excluded("*.png", "a/b/c.png", false));
        assert!(excluded("build", "build", true));
        assert!(excluded("build", "src/build/out.yaml", false));
        assert!(!excluded("build", "builder", false));
        // Directory-only: a file of that name is kept, a directory and its content are not.
        assert!(!excluded("logs/", "logs", false));
        assert!(excluded("logs/", "logs", true));
        assert!(excluded("logs/", "logs/today.txt", false));
    }

    #[test]
    fn anchored_patterns_match_leading_components() {
        assert!(excluded("/a.yaml", "a.yaml", false));
        assert!(!excluded("/a.yaml", "sub/a.yaml", false));
        assert!(excluded("deploy/*.yaml", "deploy/app.yaml", false));
        assert!(!excluded("deploy/*.yaml", "deploy/prod/app.yaml", true));
        // A match on leading components covers what is below.
        assert!(excluded("deploy/base", "deploy/base/x/y.yaml", false));
        assert!(excluded("**/foo", "foo", false));
        assert!(excluded("**/foo", "a/b/foo", false));
        assert!(excluded("a/**/b", "a/b", false));
        assert!(excluded("a/**/b", "a/x/y/b", false));
        assert!(!excluded("a/**/b", "a/x/y/c", false));
        assert!(excluded("abc/**", "abc/d/e", false));
        assert!(!excluded("abc/**", "abd/e", false));
        // `**` mixed into a component is not supported in anchored patterns.
        assert!(!excluded("a/b**", "a/bcd", false));
        // Directory-only anchored pattern.
        assert!(!excluded("/out/", "out", false));
        assert!(excluded("/out/", "out", true));
        assert!(excluded("/out/", "out/file", false));
    }

    #[test]
    fn last_matching_pattern_wins_and_negations_reach_below_excluded_dirs() {
        let rules = "/*\n!/deploy/\n";
        assert!(excluded(rules, "README.md", false));
        assert!(excluded(rules, "src", true));
        assert!(!excluded(rules, "deploy", true));
        assert!(!excluded(rules, "deploy/app.yaml", false));
        assert!(!excluded(rules, "deploy/prod/app.yaml", false));

        let rules = "*.yaml\n!keep.yaml\n";
        assert!(excluded(rules, "a/drop.yaml", false));
        assert!(!excluded(rules, "a/keep.yaml", false));
        // Unlike git, a negation includes a file below an excluded directory.
        let rules = "secret/\n!secret/public.yaml\n";
        assert!(excluded(rules, "secret/key.pem", false));
        assert!(!excluded(rules, "secret/public.yaml", false));
    }

    #[test]
    fn comments_blank_lines_and_trailing_spaces() {
        let patterns = read_patterns("# comment\n\n   \n*.log   \nkeep\\ \r\n", &[]);
        assert_eq!(patterns.len(), 2);
        assert!(excluded("*.log   ", "x.log", false));
        assert!(excluded("a\\ ", "a ", false));
        assert!(!excluded("a\\ ", "a", false));
        assert!(excluded("\\#hash", "#hash", false));
    }

    #[test]
    fn domain_scopes_patterns_to_their_directory() {
        let filter = Filter::new(read_patterns("*.txt\n/only-here.yaml\n", &["sub"]));
        assert!(filter.is_excluded_path("sub/a.txt", false));
        assert!(filter.is_excluded_path("sub/deeper/a.txt", false));
        assert!(!filter.is_excluded_path("a.txt", false));
        assert!(!filter.is_excluded_path("other/a.txt", false));
        assert!(filter.is_excluded_path("sub/only-here.yaml", false));
        assert!(!filter.is_excluded_path("sub/x/only-here.yaml", false));
        // The directory that holds the file is not itself matched.
        assert!(!Filter::new(read_patterns("*", &["sub"])).is_excluded_path("sub", true));
    }

    #[test]
    fn flux_default_exclusions() {
        let filter = Filter::with_flux_defaults(Vec::new());
        for (path, is_dir) in [
            (".git", true),
            (".git/config", false),
            (".gitignore", false),
            ("sub/.gitmodules", false),
            (".gitattributes", false),
            ("logo.png", false),
            ("docs/a.jpeg", false),
            ("a.gif", false),
            ("a.wmv", false),
            ("a.flv", false),
            ("charts/app-1.0.0.tar.gz", false),
            ("a.zip", false),
            (".github/workflows/ci.yaml", false),
            (".circleci/config.yml", false),
            (".travis.yml", false),
            (".gitlab-ci.yml", false),
            ("appveyor.yml", false),
            (".drone.yml", false),
            ("cloudbuild.yaml", false),
            ("codeship-services.yml", false),
            ("codeship-steps.yml", false),
            ("x/.goreleaser.yml", false),
            (".sops.yaml", false),
            ("apps/.flux.yaml", false),
        ] {
            assert!(filter.is_excluded_path(path, is_dir), "{path}");
        }
        // Matching is case-sensitive, as in Flux.
        for path in [
            "deploy/app.yaml",
            ".sourceignore",
            "README.md",
            "a.tgz",
            "a.PNG",
        ] {
            assert!(!filter.is_excluded_path(path, false), "{path}");
        }
    }

    #[test]
    fn user_patterns_replace_defaults_but_not_vcs() {
        let filter = Filter::with_flux_defaults(read_patterns("*.txt", &[]));
        assert!(filter.is_excluded_path("a.txt", false));
        assert!(!filter.is_excluded_path("logo.png", false));
        assert!(!filter.is_excluded_path(".github/workflows/ci.yaml", false));
        assert!(filter.is_excluded_path(".git/HEAD", false));
        assert!(filter.is_excluded_path(".gitignore", false));
        // A user negation can bring back a VCS file, as in Flux.
        let filter = Filter::with_flux_defaults(read_patterns("!.gitignore", &[]));
        assert!(!filter.is_excluded_path(".gitignore", false));
    }

    #[test]
    fn for_source_reads_sourceignore_files_and_spec_ignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("apps/dev")).unwrap();
        fs::create_dir_all(root.join(".git/sub")).unwrap();
        fs::write(root.join(".sourceignore"), "# top\n*.md\n").unwrap();
        fs::write(root.join("apps/.sourceignore"), "dev/\n").unwrap();
        // Never read: inside .git.
        fs::write(root.join(".git/sub/.sourceignore"), "*.yaml\n").unwrap();

        let filter = Filter::for_source(root, None).unwrap();
        assert!(filter.is_excluded_path("README.md", false));
        assert!(filter.is_excluded_path("apps/dev/a.yaml", false));
        assert!(!filter.is_excluded_path("dev/a.yaml", false));
        assert!(!filter.is_excluded_path("apps/prod/a.yaml", false));
        // Defaults are replaced because the tree has patterns; VCS rules stay.
        assert!(!filter.is_excluded_path("logo.png", false));
        assert!(filter.is_excluded_path(".git/HEAD", false));

        // spec.ignore comes last and wins.
        let filter = Filter::for_source(root, Some("!README.md\n")).unwrap();
        assert!(!filter.is_excluded_path("README.md", false));

        // No patterns anywhere (a comment-only spec.ignore): the defaults apply.
        let empty = tempfile::tempdir().unwrap();
        let filter = Filter::for_source(empty.path(), Some("# nothing\n")).unwrap();
        assert!(filter.is_excluded_path("logo.png", false));
    }

    #[test]
    fn load_order_is_parent_first_then_subdirectories_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b")).unwrap();
        fs::create_dir_all(root.join("a/x")).unwrap();
        fs::write(root.join(".sourceignore"), "root\n").unwrap();
        fs::write(root.join("a/.sourceignore"), "in-a\n").unwrap();
        fs::write(root.join("a/x/.sourceignore"), "in-ax\n").unwrap();
        fs::write(root.join("b/.sourceignore"), "in-b\n").unwrap();
        let raw: Vec<String> = load_source_ignore_files(root)
            .unwrap()
            .iter()
            .map(|p| format!("{}:{}", p.domain.join("/"), p.components[0].raw))
            .collect();
        assert_eq!(raw, [":root", "a:in-a", "a/x:in-ax", "b:in-b"]);
    }
}
