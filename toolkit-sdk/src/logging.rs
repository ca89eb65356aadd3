//! Process-wide logging set up from `--log-level` and `--log-encoding`.
//!
//! JSON (the default) writes one object a line to stderr, with Flux's key names so tools that
//! read Flux logs (such as `flux logs`) read ours:
//!
//! ```json
//! {"level":"info","ts":"2025-01-02T03:04:05.678Z","msg":"reconciled","logger":"toolkit_sdk::runtime","kind":"GitRepository","namespace":"flux-system","name":"podinfo","revision":"main@sha1:0123abcd"}
//! ```
//!
//! - `level` is `trace`, `debug`, `info`, `warn` or `error`; `ts` is RFC 3339 in UTC with
//!   milliseconds; `msg` is the event's message; `logger` is the `tracing` target;
//! - the fields of every span the event is in (outermost first) come next, so a reconcile
//!   span with `kind`, `namespace`, `name` and `revision` tags every line logged under it;
//! - the event's own fields come last and win over span fields of the same name.
//!
//! `console` writes human-readable lines instead. When `RUST_LOG` is set it overrides
//! `--log-level` (full `EnvFilter` syntax, e.g. `info,toolkit_sdk=debug`).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

use crate::flags::{LogEncoding, LogLevel, ObservabilityArgs};

/// Installs the global logger from the `--log-level` and `--log-encoding` flags.
///
/// Returns `false` (and changes nothing) when a global subscriber is already installed, so
/// calling it twice, or from tests that share a process, is harmless.
pub fn init(args: &ObservabilityArgs) -> bool {
    init_with(args.log_level, args.log_encoding)
}

/// Installs the global logger with an explicit level and encoding; see [`init`].
pub fn init_with(level: LogLevel, encoding: LogEncoding) -> bool {
    let filter = env_filter(level);
    tracing::subscriber::set_global_default(subscriber(filter, encoding, std::io::stderr)).is_ok()
}

/// The filter: `RUST_LOG` when set and valid, otherwise `level` for everything, with the
/// chattiest HTTP and TLS libraries held at `info` unless `RUST_LOG` asks for more.
fn env_filter(level: LogLevel) -> EnvFilter {
    filter_from(level, std::env::var(EnvFilter::DEFAULT_ENV).ok())
}

fn filter_from(level: LogLevel, rust_log: Option<String>) -> EnvFilter {
    if let Some(spec) = rust_log
        && !spec.trim().is_empty()
    {
        match EnvFilter::try_new(&spec) {
            Ok(filter) => return filter,
            Err(err) => eprintln!(
                "ignoring invalid {}={spec:?}: {err}; using --log-level",
                EnvFilter::DEFAULT_ENV
            ),
        }
    }
    let mut spec = level.as_filter().to_string().to_lowercase();
    if level <= LogLevel::Debug {
        for noisy in ["hyper", "hyper_util", "h2", "rustls", "tower", "reqwest"] {
            let _ = write!(spec, ",{noisy}=info");
        }
    }
    EnvFilter::new(spec)
}

/// Builds the subscriber for `encoding` writing to `writer`.
fn subscriber<W>(
    filter: EnvFilter,
    encoding: LogEncoding,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(filter);
    match encoding {
        LogEncoding::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(FluxJson)
                    .with_writer(writer),
            ),
        ),
        LogEncoding::Console => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(writer),
            ),
        ),
    }
}

/// Formats an event as one JSON object with Flux's keys and flattened span fields.
struct FluxJson;

impl<S> FormatEvent<S, JsonFields> for FluxJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<JsonFields>>()
                    && let Ok(serde_json::Value::Object(map)) =
                        serde_json::from_str::<serde_json::Value>(&formatted.fields)
                {
                    fields.extend(map);
                }
            }
        }
        let mut visitor = JsonVisitor {
            message: None,
            fields: &mut fields,
        };
        event.record(&mut visitor);
        let message = visitor.message.take().unwrap_or_default();

        let mut line = String::with_capacity(256);
        line.push('{');
        push_pair(
            &mut line,
            "level",
            &meta.level().as_str().to_ascii_lowercase(),
        );
        line.push(',');
        push_pair(&mut line, "ts", &timestamp());
        line.push(',');
        push_pair(&mut line, "msg", &message);
        line.push(',');
        push_pair(&mut line, "logger", meta.target());
        for (key, value) in &fields {
            if matches!(key.as_str(), "level" | "ts" | "msg" | "logger") {
                continue;
            }
            line.push(',');
            line.push_str(&json_string(key));
            line.push(':');
            line.push_str(&value.to_string());
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

fn timestamp() -> String {
    let now = jiff::Timestamp::now();
    format!("{now:.3}")
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn push_pair(line: &mut String, key: &str, value: &str) {
    line.push_str(&json_string(key));
    line.push(':');
    line.push_str(&json_string(value));
}

/// Collects an event's fields as JSON values; `message` is kept apart.
struct JsonVisitor<'a> {
    message: Option<String>,
    fields: &'a mut BTreeMap<String, serde_json::Value>,
}

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain, outermost first, as `a: b: c`.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(err) = source {
            let _ = write!(text, ": {err}");
            source = err.source();
        }
        self.put(field, text.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(level: &str, encoding: LogEncoding, f: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let sub = subscriber(EnvFilter::new(level), encoding, buffer.clone());
        tracing::subscriber::with_default(sub, f);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[derive(Debug, thiserror::Error)]
    #[error("fetch failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn json_lines_carry_flux_keys_and_span_fields() {
        let out = capture("info", LogEncoding::Json, || {
            let span = tracing::info_span!(
                "reconcile",
                kind = "GitRepository",
                namespace = "flux-system",
                name = "podinfo",
                revision = tracing::field::Empty
            );
            let _guard = span.enter();
            span.record("revision", "main@sha1:0123abcd");
            tracing::info!(attempts = 2u64, ready = true, "stored artifact");
            let err = Outer(std::io::Error::other("connection refused"));
            tracing::error!(error = &err as &dyn std::error::Error, "reconcile failed");
            tracing::debug!("filtered out");
        });
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        let first = &lines[0];
        assert_eq!(first["level"], "info");
        assert_eq!(first["msg"], "stored artifact");
        assert_eq!(first["kind"], "GitRepository");
        assert_eq!(first["namespace"], "flux-system");
        assert_eq!(first["name"], "podinfo");
        assert_eq!(first["revision"], "main@sha1:0123abcd");
        assert_eq!(first["attempts"], 2);
        assert_eq!(first["ready"], true);
        assert_eq!(first["logger"], module_path!());
        let ts = first["ts"].as_str().unwrap();
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
        assert!(ts.ends_with('Z'), "{ts}");
        let second = &lines[1];
        assert_eq!(second["level"], "error");
        assert_eq!(second["error"], "fetch failed: connection refused");
        // Flux's keys come first, so lines read well in a terminal too.
        assert!(out.starts_with(r#"{"level":"info","ts":""#), "{out}");
    }

    #[test]
    fn event_fields_win_over_span_fields() {
        let out = capture("info", LogEncoding::Json, || {
            let span = tracing::info_span!("outer", name = "from-span");
            let _guard = span.enter();
            tracing::info!(name = "from-event", "hello \"quoted\"\nline");
        });
        let line: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(line["name"], "from-event");
        assert_eq!(line["msg"], "hello \"quoted\"\nline");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn console_is_plain_text() {
        let out = capture("debug", LogEncoding::Console, || {
            tracing::debug!(name = "podinfo", "reconciling");
        });
        assert!(out.contains("DEBUG"), "{out}");
        assert!(out.contains("reconciling"), "{out}");
        assert!(out.contains("name=\"podinfo\""), "{out}");
        assert!(serde_json::from_str::<serde_json::Value>(out.trim()).is_err());
    }

    #[test]
    fn default_filter_follows_level() {
        let filter = filter_from(LogLevel::Error, None).to_string();
        assert!(filter.starts_with("error"), "{filter}");
        let filter = filter_from(LogLevel::Trace, None).to_string();
        assert!(filter.contains("hyper=info"), "{filter}");
        let filter = filter_from(LogLevel::Error, Some("kube=debug".into())).to_string();
        assert_eq!(filter, "kube=debug");
        let filter = filter_from(LogLevel::Error, Some("kube=[".into())).to_string();
        assert!(
            filter.starts_with("error"),
            "invalid RUST_LOG falls back: {filter}"
        );
    }

    #[test]
    fn init_is_idempotent() {
        let first = init_with(LogLevel::Error, LogEncoding::Json);
        let second = init_with(LogLevel::Debug, LogEncoding::Console);
        assert!(
            !second,
            "a second init must not replace the first (first={first})"
        );
    }
}
