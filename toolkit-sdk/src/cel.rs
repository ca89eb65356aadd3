//! Common Expression Language (CEL): expressions written by users in Flux fields such as a
//! Kustomization's `healthCheckExprs` and `dependsOn[].readyExpr`, or a Receiver's
//! `resourceFilter`.
//!
//! An [`Expression`] is parsed once, when the object that holds it is read, and evaluated as
//! often as needed against variables given as JSON values (a Kubernetes object as JSON, for
//! instance). The environment is the CEL standard library with its macros (`has`, `all`,
//! `exists`, `exists_one`, `map`, `filter`), optional values, and the strings, lists and math
//! extension libraries (`lowerAscii`, `split`, `join`, `indexOf`, ...), close to what Flux
//! offers through cel-go.
//!
//! ```
//! use serde_json::json;
//! use toolkit_sdk::cel::Expression;
//!
//! let ready = Expression::compile(
//!     "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')",
//! )?;
//! let status = json!({"conditions": [{"type": "Ready", "status": "True"}]});
//! assert!(ready.evaluate_bool(&[("status", &status)])?);
//! # Ok::<(), toolkit_sdk::cel::CelError>(())
//! ```
//!
//! # Errors
//!
//! Every error names the expression as written, so a user can tell which of several fields is
//! wrong: a syntax error at [`Expression::compile`], and at evaluation an unknown variable or
//! field, a function applied to the wrong types, or (for [`Expression::evaluate_bool`]) a
//! result that is not a boolean.
//!
//! # Caveats
//!
//! - Variables are untyped JSON, so type errors surface at evaluation, not at compile time, as
//!   with Flux (which also parses without a type check, because objects have free-form fields).
//! - Selecting a field that an object does not have is an error, as in cel-go: guard optional
//!   fields with `has(x.field)`.
//! - The `timestamp` and `duration` types are not available.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The environment every expression is compiled and evaluated in, built once per process.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(build_env()));

fn build_env() -> cel::Env {
    let mut env = cel::Env::stdlib();
    for (name, extension) in [
        (
            "strings",
            cel::extensions::strings as fn(&mut cel::Env) -> _,
        ),
        ("lists", cel::extensions::lists),
        ("math", cel::extensions::math),
    ] {
        // Each library declares distinct overloads on a fresh standard environment, so this
        // cannot conflict; if a future version disagreed, the library is left out, not the
        // whole environment.
        if let Err(error) = env.add_extension(extension) {
            tracing::warn!(library = name, %error, "CEL extension library not available");
        }
    }
    env
}

/// A CEL expression that failed to compile or to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CelError {
    /// The expression is not valid CEL.
    #[error("failed to parse the CEL expression '{expression}': {problem}")]
    Parse {
        /// The expression as written.
        expression: String,
        /// Where and what the syntax error is (`1:7: mismatched input ...`).
        problem: String,
    },
    /// The expression failed while running (unknown variable or field, wrong argument types,
    /// division by zero, ...).
    #[error("failed to evaluate the CEL expression '{expression}': {problem}")]
    Evaluate {
        /// The expression as written.
        expression: String,
        /// What went wrong.
        problem: String,
    },
    /// The expression produced a value of another type than the caller needs.
    #[error("the CEL expression '{expression}' must evaluate to a {expected}, got a {actual}")]
    ResultType {
        /// The expression as written.
        expression: String,
        /// The type the caller needs (`bool`).
        expected: &'static str,
        /// The CEL type of the result (`string`, `int`, `map`, ...).
        actual: String,
    },
}

/// A compiled CEL expression; cheap to evaluate many times and shareable between threads.
pub struct Expression {
    source: String,
    program: cel::Program,
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl Expression {
    /// Parses `source`.
    ///
    /// # Errors
    ///
    /// [`CelError::Parse`] for a syntax error or an empty expression, naming the expression,
    /// the line and column, and the problem.
    pub fn compile(source: &str) -> Result<Self, CelError> {
        if source.trim().is_empty() {
            return Err(CelError::Parse {
                expression: source.to_owned(),
                problem: "the expression is empty".to_owned(),
            });
        }
        let program = ENV.compile(source).map_err(|errors| CelError::Parse {
            expression: source.to_owned(),
            problem: describe_parse_errors(&errors),
        })?;
        Ok(Self {
            source: source.to_owned(),
            program,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with the given variables (e.g. `"self"` bound to an object) and returns the
    /// result as JSON (bytes as base64, like Kubernetes does).
    ///
    /// # Errors
    ///
    /// [`CelError::Evaluate`] when the expression fails while running (an unknown variable or
    /// field, a function applied to the wrong types, ...), [`CelError::ResultType`] when the
    /// result has no JSON form (a type or a function).
    pub fn evaluate(
        &self,
        vars: &[(&str, &serde_json::Value)],
    ) -> Result<serde_json::Value, CelError> {
        let value = self.run(vars)?;
        value.json().map_err(|_| CelError::ResultType {
            expression: self.source.clone(),
            expected: "JSON value",
            actual: value.type_of().to_string(),
        })
    }

    /// Evaluates like [`Expression::evaluate`] and requires a boolean result.
    ///
    /// # Errors
    ///
    /// Those of [`Expression::evaluate`], and [`CelError::ResultType`] when the result is not a
    /// boolean.
    pub fn evaluate_bool(&self, vars: &[(&str, &serde_json::Value)]) -> Result<bool, CelError> {
        match self.run(vars)? {
            cel::Value::Bool(result) => Ok(result),
            other => Err(CelError::ResultType {
                expression: self.source.clone(),
                expected: "bool",
                actual: other.type_of().to_string(),
            }),
        }
    }

    fn run(&self, vars: &[(&str, &serde_json::Value)]) -> Result<cel::Value, CelError> {
        let mut context = cel::Context::with_env(Arc::clone(&ENV));
        for (name, value) in vars {
            context.add_variable_from_value(*name, json_to_cel(value));
        }
        self.program
            .execute(&context)
            .map_err(|error| CelError::Evaluate {
                expression: self.source.clone(),
                problem: error.to_string(),
            })
    }
}

/// A JSON value as CEL sees it: whole numbers are `int` (as Kubernetes does; `uint` only above
/// `i64::MAX`), other numbers `double`, objects maps with string keys.
fn json_to_cel(value: &serde_json::Value) -> cel::Value {
    match value {
        serde_json::Value::Null => cel::Value::Null,
        serde_json::Value::Bool(b) => cel::Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                cel::Value::UInt(u)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => {
            cel::Value::List(Arc::new(items.iter().map(json_to_cel).collect()))
        }
        serde_json::Value::Object(fields) => {
            let map: HashMap<String, cel::Value> = fields
                .iter()
                .map(|(key, value)| (key.clone(), json_to_cel(value)))
                .collect();
            cel::Value::from(map)
        }
    }
}

/// `line:column: message` for each syntax error, without the source snippet the parser adds.
fn describe_parse_errors(errors: &cel::ParseErrors) -> String {
    let described: Vec<String> = errors
        .errors
        .iter()
        .map(|error| format!("{}:{}: {}", error.pos.0, error.pos.1, error.msg))
        .collect();
    if described.is_empty() {
        "syntax error".to_owned()
    } else {
        described.join("; ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "podinfo",
                "namespace": "apps",
                "generation": 3,
                "labels": {"app.kubernetes.io/name": "podinfo"}
            },
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 3,
                "readyReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
                ]
            }
        })
    }

    fn eval_bool(source: &str, object: &serde_json::Value) -> Result<bool, CelError> {
        Expression::compile(source)?.evaluate_bool(&[("self", object)])
    }

    #[test]
    fn field_access_and_comparisons() {
        let object = deployment();
        for (source, want) in [
            ("self.spec.replicas == 2", true),
            ("self.status.readyReplicas >= self.spec.replicas", true),
            (
                "self.metadata.generation != self.status.observedGeneration",
                false,
            ),
            (
                "self.metadata.name == 'podinfo' && self.kind == 'Deployment'",
                true,
            ),
            (
                "self.metadata.labels['app.kubernetes.io/name'] == 'podinfo'",
                true,
            ),
            (
                "self.spec.replicas < 1 || self.metadata.namespace in ['apps', 'infra']",
                true,
            ),
            ("size(self.status.conditions) == 2", true),
        ] {
            assert_eq!(eval_bool(source, &object).unwrap(), want, "{source}");
        }
    }

    #[test]
    fn has_guards_optional_fields() {
        let object = deployment();
        assert!(eval_bool("has(self.status.readyReplicas)", &object).unwrap());
        assert!(!eval_bool("has(self.status.unavailableReplicas)", &object).unwrap());
        assert!(
            eval_bool(
                "!has(self.status.failed) || self.status.failed == 0",
                &object
            )
            .unwrap()
        );
    }

    #[test]
    fn macros_over_condition_lists() {
        let object = deployment();
        assert!(
            eval_bool(
                "self.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')",
                &object
            )
            .unwrap()
        );
        assert!(
            !eval_bool(
                "self.status.conditions.exists(c, c.type == 'Ready')",
                &object
            )
            .unwrap()
        );
        assert!(eval_bool("self.status.conditions.all(c, c.status == 'True')", &object).unwrap());
        assert!(
            eval_bool(
                "self.status.conditions.filter(c, c.type == 'Progressing')\
                 .all(c, c.reason != 'ProgressDeadlineExceeded')",
                &object
            )
            .unwrap()
        );
        assert!(
            eval_bool(
                "self.status.conditions.exists_one(c, c.reason == 'NewReplicaSetAvailable')",
                &object
            )
            .unwrap()
        );
    }

    #[test]
    fn string_functions() {
        let object = deployment();
        for source in [
            "self.metadata.name.startsWith('pod')",
            "self.metadata.name.endsWith('info')",
            "self.metadata.name.contains('dinf')",
            "self.metadata.name.matches('^pod[a-z]+$')",
            "self.kind.lowerAscii() == 'deployment'",
            "self.apiVersion.split('/')[0] == 'apps'",
            "['a', 'b'].join('-') == 'a-b'",
            "self.metadata.name.indexOf('info') == 3",
        ] {
            assert!(eval_bool(source, &object).unwrap(), "{source}");
        }
    }

    #[test]
    fn evaluate_returns_json() {
        let object = deployment();
        let expression = Expression::compile("self.status.conditions.map(c, c.type)").unwrap();
        assert_eq!(
            expression.evaluate(&[("self", &object)]).unwrap(),
            json!(["Available", "Progressing"])
        );
        let expression = Expression::compile("{'name': self.metadata.name, 'n': 1 + 1}").unwrap();
        assert_eq!(
            expression.evaluate(&[("self", &object)]).unwrap(),
            json!({"name": "podinfo", "n": 2})
        );
    }

    #[test]
    fn json_numbers_are_ints_and_doubles() {
        let object = json!({"a": 3, "b": 1.5, "big": u64::MAX});
        for source in [
            "self.a - 5 == -2",
            "double(self.a) * self.b == 4.5",
            "type(self.a) == int",
            "type(self.b) == double",
            "type(self.big) == uint",
            "self.a > 2.5",
        ] {
            assert!(eval_bool(source, &object).unwrap(), "{source}");
        }
    }

    #[test]
    fn several_variables() {
        let object = deployment();
        let event = json!({"reason": "Push"});
        let expression =
            Expression::compile("res.metadata.name == 'podinfo' && req.reason == 'Push'").unwrap();
        assert!(
            expression
                .evaluate_bool(&[("res", &object), ("req", &event)])
                .unwrap()
        );
    }

    #[test]
    fn bad_syntax_names_the_expression_and_the_position() {
        let error = Expression::compile("self.status ==").unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, CelError::Parse { .. }), "{error:?}");
        assert!(
            message.starts_with("failed to parse the CEL expression 'self.status =='"),
            "{message}"
        );
        assert!(message.contains("1:"), "{message}");
        assert!(!message.contains('\n'), "{message}");

        let error = Expression::compile("  ").unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }

    #[test]
    fn non_bool_result_is_a_type_error() {
        let object = deployment();
        let error = eval_bool("self.metadata.name", &object).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the CEL expression 'self.metadata.name' must evaluate to a bool, got a string"
        );
        let error = eval_bool("self.spec.replicas", &object).unwrap_err();
        assert!(error.to_string().ends_with("got a int"), "{error}");
        let error = eval_bool("[1, 2]", &object).unwrap_err();
        assert!(error.to_string().ends_with("got a list"), "{error}");
    }

    #[test]
    fn runtime_errors_name_the_expression() {
        let object = deployment();
        let error = eval_bool("self.status.missing == 1", &object).unwrap_err();
        assert!(matches!(error, CelError::Evaluate { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("failed to evaluate the CEL expression 'self.status.missing == 1'"),
            "{error}"
        );
        assert!(error.to_string().contains("missing"), "{error}");

        let error = eval_bool("other.x == 1", &object).unwrap_err();
        assert!(error.to_string().contains("other"), "{error}");

        let error = eval_bool("self.metadata.name > 3", &object).unwrap_err();
        assert!(matches!(error, CelError::Evaluate { .. }), "{error:?}");
    }

    #[test]
    fn expression_is_send_sync_and_reusable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Expression>();
        let expression = Arc::new(Expression::compile("self.n > 1").unwrap());
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let expression = Arc::clone(&expression);
                std::thread::spawn(move || {
                    expression
                        .evaluate_bool(&[("self", &json!({"n": n}))])
                        .unwrap()
                })
            })
            .collect();
        let results: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results, [false, false, true, true]);
    }
}
