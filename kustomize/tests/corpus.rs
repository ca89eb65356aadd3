//! The proof: every case under `tests/corpus/` is built by `kubectl kustomize` (the reference) and by
//! [`ferroflux_kustomize::build`], and the two must agree.
//!
//! - When kubectl fails, we must fail too (the messages may differ).
//! - When kubectl succeeds, we must succeed with the same objects in the same order: both YAML
//!   streams are parsed into `serde_yaml::Value`s and compared for equality.
//!
//! Every case runs, and all disagreements are reported together at the end with a short diff.
//! `CORPUS_CASE=<substring>` runs only the cases whose directory name contains it;
//! `CORPUS_SHOW_ERRORS=1` prints kubectl's and our message for every case where both fail, to
//! review our messages. A panic of our engine is a failure even where kubectl fails.
//! `kubectl` (with kustomize v5.5) must be on `PATH`: without it the test fails, it does not skip.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use ferroflux_kustomize::{BuildOptions, build, to_yaml};
use serde_yaml::Value;

/// How many differing fields a failure report lists.
const MAX_DIFF_LINES: usize = 8;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The case directories, sorted by name, filtered by `CORPUS_CASE`.
fn cases() -> Vec<PathBuf> {
    let filter = std::env::var("CORPUS_CASE").unwrap_or_default();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .filter(|path| case_name(path).contains(&filter))
        .collect();
    cases.sort();
    assert!(
        !cases.is_empty(),
        "no corpus case matches CORPUS_CASE={filter:?} in {}",
        corpus_dir().display()
    );
    cases
}

fn case_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Parses a YAML stream into its documents, leaving out empty ones.
fn parse_stream(text: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// What `kubectl kustomize` made of a case.
enum Reference {
    Objects(Vec<Value>),
    Failed(String),
}

fn run_kubectl(dir: &Path) -> Reference {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run `kubectl kustomize` (is kubectl on PATH?): {err}")
        });
    if output.status.success() {
        let stdout = String::from_utf8(output.stdout).unwrap();
        Reference::Objects(parse_stream(&stdout).unwrap())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // kubectl wraps the message in a log line; keep the part after `err=`.
        let message = stderr
            .split_once("err=")
            .map_or(stderr.as_ref(), |(_, rest)| rest);
        Reference::Failed(first_chars(message.trim(), 240))
    }
}

/// What our engine made of a case.
enum Ours {
    /// The objects, printed by `to_yaml` and parsed back.
    Objects(Vec<Value>),
    /// A build error (with its chain of causes).
    Failed(String),
    /// A panic: always a bug, even where kubectl fails too.
    Panicked(String),
}

fn run_ours(dir: &Path) -> Ours {
    let built = catch_unwind(AssertUnwindSafe(|| {
        let objects = build(dir, &BuildOptions::default()).map_err(|err| error_chain(&err))?;
        let yaml = to_yaml(&objects).map_err(|err| error_chain(&err))?;
        parse_stream(&yaml).map_err(|err| format!("our output does not parse back: {err}"))
    }));
    match built {
        Ok(Ok(objects)) => Ours::Objects(objects),
        Ok(Err(message)) => Ours::Failed(message),
        Err(panic) => Ours::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

fn first_chars(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}...", one_line.chars().take(max).collect::<String>())
    }
}

/// `Kind/name` (and namespace) of an object, for reports.
fn describe(object: &Value) -> String {
    let text = |path: &[&str]| {
        let mut current = object;
        for key in path {
            match current.get(*key) {
                Some(next) => current = next,
                None => return String::new(),
            }
        }
        current.as_str().unwrap_or_default().to_string()
    };
    let namespace = text(&["metadata", "namespace"]);
    let name = format!("{}/{}", text(&["kind"]), text(&["metadata", "name"]));
    if namespace.is_empty() {
        name
    } else {
        format!("{name} in {namespace}")
    }
}

fn short(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".to_string(),
        Some(value) => first_chars(
            serde_json::to_string(value)
                .unwrap_or_else(|_| format!("{value:?}"))
                .as_str(),
            100,
        ),
    }
}

/// The paths where `expected` and `actual` differ (at most `MAX_DIFF_LINES`).
fn diff_values(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFF_LINES || expected == actual {
        return;
    }
    match (expected, actual) {
        (Value::Mapping(want), Value::Mapping(got)) => {
            for (key, want_value) in want {
                let key_text = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_string);
                let child = format!("{path}.{key_text}");
                match got.get(key) {
                    Some(got_value) => diff_values(&child, want_value, got_value, out),
                    None => out.push(format!(
                        "{child}: kubectl {} / ours (absent)",
                        short(Some(want_value))
                    )),
                }
                if out.len() >= MAX_DIFF_LINES {
                    return;
                }
            }
            for (key, got_value) in got {
                if !want.contains_key(key) && out.len() < MAX_DIFF_LINES {
                    let key_text = key
                        .as_str()
                        .map_or_else(|| format!("{key:?}"), str::to_string);
                    out.push(format!(
                        "{path}.{key_text}: kubectl (absent) / ours {}",
                        short(Some(got_value))
                    ));
                }
            }
        }
        (Value::Sequence(want), Value::Sequence(got)) if want.len() == got.len() => {
            for (index, (want_item, got_item)) in want.iter().zip(got).enumerate() {
                diff_values(&format!("{path}[{index}]"), want_item, got_item, out);
            }
        }
        _ => out.push(format!(
            "{path}: kubectl {} / ours {}",
            short(Some(expected)),
            short(Some(actual))
        )),
    }
}

/// Why our objects are not kubectl's, in a few lines.
fn explain_mismatch(expected: &[Value], actual: &[Value]) -> String {
    let want: Vec<String> = expected.iter().map(describe).collect();
    let got: Vec<String> = actual.iter().map(describe).collect();
    if want != got {
        let mut sorted_want = want.clone();
        let mut sorted_got = got.clone();
        sorted_want.sort();
        sorted_got.sort();
        let what = if sorted_want == sorted_got {
            "same objects, different order"
        } else {
            "different objects"
        };
        return format!(
            "{what}:\n      kubectl: [{}]\n      ours:    [{}]",
            want.join(", "),
            got.join(", ")
        );
    }
    let mut lines = Vec::new();
    for (index, (want_object, got_object)) in expected.iter().zip(actual).enumerate() {
        if want_object != got_object {
            let mut diffs = Vec::new();
            diff_values("", want_object, got_object, &mut diffs);
            lines.push(format!("object {index} ({}):", want[index]));
            lines.extend(diffs.into_iter().map(|line| format!("  {line}")));
            if lines.len() >= MAX_DIFF_LINES {
                break;
            }
        }
    }
    lines
        .iter()
        .map(|line| format!("      {line}"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_start()
        .to_string()
}

/// How a case agreed with kubectl.
#[derive(Clone)]
enum Agreement {
    SameObjects,
    /// Both failed: kubectl's message and ours.
    BothFailed {
        reference: String,
        ours: String,
    },
}

/// The verdict on one case: how it agreed, or why it did not.
fn check_case(dir: &Path) -> Result<Agreement, String> {
    match (run_kubectl(dir), run_ours(dir)) {
        (_, Ours::Panicked(message)) => Err(format!("our build panicked: {message}")),
        (Reference::Failed(reference), Ours::Failed(ours)) => {
            Ok(Agreement::BothFailed { reference, ours })
        }
        (Reference::Failed(reference), Ours::Objects(objects)) => Err(format!(
            "kubectl fails but we built {} object(s); kubectl said: {reference}",
            objects.len()
        )),
        (Reference::Objects(objects), Ours::Failed(ours)) => Err(format!(
            "kubectl builds {} object(s) but we fail: {}",
            objects.len(),
            first_chars(&ours, 400)
        )),
        (Reference::Objects(expected), Ours::Objects(actual)) if expected == actual => {
            Ok(Agreement::SameObjects)
        }
        (Reference::Objects(expected), Ours::Objects(actual)) => {
            Err(explain_mismatch(&expected, &actual))
        }
    }
}

#[test]
fn corpus_matches_kubectl_kustomize() {
    let cases = cases();
    // The reference must be there: a missing kubectl fails the test instead of skipping it.
    let version = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .unwrap_or_else(|err| panic!("kubectl is required for the corpus test: {err}"));
    assert!(
        version.status.success(),
        "`kubectl version --client` failed"
    );

    // Two cases at a time per core: kubectl is a separate process, our build is in-process.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<Agreement, String>>>> =
        Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut next = next.lock().unwrap();
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(dir) = cases.get(index) else { break };
                    let verdict = check_case(dir);
                    results.lock().unwrap()[index] = Some(verdict);
                }
            });
        }
    });

    let show_errors = std::env::var_os("CORPUS_SHOW_ERRORS").is_some();
    let results = results.into_inner().unwrap();
    let mut failures = Vec::new();
    let (mut same, mut both_failed) = (0, 0);
    for (dir, result) in cases.iter().zip(results) {
        match result.unwrap() {
            Ok(Agreement::SameObjects) => same += 1,
            Ok(Agreement::BothFailed { reference, ours }) => {
                both_failed += 1;
                if show_errors {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{}\n  kubectl: {reference}\n  ours:    {ours}",
                        case_name(dir)
                    );
                }
            }
            Err(why) => failures.push(format!("  {}: {why}", case_name(dir))),
        }
    }
    let passed = same + both_failed;
    // Straight to stderr, past the test harness's capture, so a passing run shows the count too.
    let _ = writeln!(
        std::io::stderr(),
        "corpus: {passed}/{} cases agree with kubectl kustomize ({same} with the same objects, {both_failed} failing in both)",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases disagree with kubectl kustomize ({passed} agree):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
