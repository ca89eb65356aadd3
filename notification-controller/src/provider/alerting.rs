//! Alerting and observability services: Alertmanager, Grafana annotations, PagerDuty,
//! Opsgenie and Datadog.

use std::collections::BTreeMap;

use reqwest::Url;
use serde_json::{Value, json};

use super::format::{self, Event, PROGRESSING};
use super::{
    Call, DeliveryError, ProviderError, ProviderSettings, Req, parse_http_url, parse_http_url_or,
    require_channel, require_token,
};

/// How a request authenticates.
#[derive(Clone)]
pub(super) enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

impl Auth {
    /// A bearer token when there is one, else basic auth when username and password are set.
    fn from_settings(settings: &ProviderSettings) -> Self {
        if let Some(token) = settings.token() {
            Auth::Bearer(token.to_string())
        } else if let Some(password) = settings.password.as_deref().filter(|p| !p.is_empty())
            && !settings.username.is_empty()
        {
            Auth::Basic(settings.username.clone(), password.to_string())
        } else {
            Auth::None
        }
    }

    pub(super) fn apply(&self, req: Req) -> Req {
        match self {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer(token),
            Auth::Basic(user, password) => req.basic(user, password),
        }
    }
}

#[derive(Clone)]
pub(super) enum Alerting {
    Alertmanager { url: Url, auth: Auth },
    Grafana { url: Url, auth: Auth },
    PagerDuty { base: Url, routing_key: String },
    Opsgenie { url: Url, token: String },
    Datadog { url: Url, token: String },
}

impl Alerting {
    /// The notifier for `settings`, `None` when the type is not an alerting type.
    pub(super) fn new(settings: &ProviderSettings) -> Result<Option<Self>, ProviderError> {
        let t = settings.provider_type.as_str();
        let alerting = match t {
            "alertmanager" => Alerting::Alertmanager {
                url: parse_http_url(t, &settings.address)?,
                auth: Auth::from_settings(settings),
            },
            "grafana" => Alerting::Grafana {
                url: parse_http_url(t, &settings.address)?,
                auth: Auth::from_settings(settings),
            },
            "pagerduty" => {
                let url = parse_http_url_or(t, &settings.address, "https://events.pagerduty.com")?;
                Alerting::PagerDuty {
                    base: origin(&url),
                    routing_key: require_channel(settings, "the PagerDuty routing key")?,
                }
            }
            "opsgenie" => Alerting::Opsgenie {
                url: parse_http_url_or(t, &settings.address, "https://api.opsgenie.com/v2/alerts")?,
                token: require_token(settings)?,
            },
            "datadog" => {
                let base = parse_http_url_or(t, &settings.address, "https://api.datadoghq.com")?;
                let mut url = origin(&base);
                url.set_path("/api/v1/events");
                Alerting::Datadog {
                    url,
                    token: require_token(settings)?,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(alerting))
    }

    pub(super) async fn send(
        &self,
        call: &mut Call<'_>,
        event: &Event<'_>,
    ) -> Result<(), DeliveryError> {
        if event.is_commit_status_update() {
            return Ok(());
        }
        match self {
            Alerting::Alertmanager { url, auth } => {
                let req = Req::post(url.clone()).json(&alertmanager_payload(event));
                call.execute(auth.apply(req)).await?;
            }
            Alerting::Grafana { url, auth } => {
                let mut tags = vec!["flux".to_string(), event.raw.reporting_controller.clone()];
                tags.extend(event.metadata.iter().map(|(k, v)| format!("{k}: {v}")));
                let payload = json!({
                    "when": event.unix_seconds(),
                    "text": event.object_name(),
                    "tags": tags,
                });
                let req = Req::post(url.clone()).json(&payload);
                call.execute(auth.apply(req)).await?;
            }
            Alerting::PagerDuty { base, routing_key } => {
                if event.has_reason(PROGRESSING) {
                    return Ok(());
                }
                let mut url = base.clone();
                url.set_path("/v2/enqueue");
                call.execute(Req::post(url).json(&pagerduty_event(event, routing_key)))
                    .await?;
                // Info events are also recorded as changes.
                if !event.is_error() {
                    let mut url = base.clone();
                    url.set_path("/v2/change/enqueue");
                    call.execute(Req::post(url).json(&pagerduty_change(event, routing_key)))
                        .await?;
                }
            }
            Alerting::Opsgenie { url, token } => {
                let mut details = event.metadata.clone();
                details.insert("severity".into(), event.severity().into());
                let payload = json!({
                    "message": format!("{}/{}", event.kind(), event.name()),
                    "description": event.raw.message,
                    "details": details,
                });
                let req = Req::post(url.clone())
                    .json(&payload)
                    .header("authorization", &format!("GenieKey {token}"));
                call.execute(req).await?;
            }
            Alerting::Datadog { url, token } => {
                let req = Req::post(url.clone())
                    .json(&datadog_event(event))
                    .header("dd-api-key", token);
                call.execute(req).await?;
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &Url) -> Url {
    let mut origin = url.clone();
    origin.set_path("");
    origin.set_query(None);
    origin.set_fragment(None);
    origin
}

fn alertmanager_payload(event: &Event<'_>) -> Value {
    let mut labels: BTreeMap<String, String> = event.metadata.clone();
    let mut annotations = BTreeMap::from([("message".to_string(), event.raw.message.clone())]);
    if let Some(summary) = labels.remove("summary") {
        annotations.insert("summary".into(), summary);
    }
    let o = &event.raw;
    labels.insert(
        "alertname".into(),
        format!("Flux{}{}", event.kind(), format::title_case(&o.reason)),
    );
    labels.insert("severity".into(), event.severity().into());
    labels.insert("reason".into(), o.reason.clone());
    labels.insert("timestamp".into(), event.go_time());
    labels.insert("kind".into(), event.kind().into());
    labels.insert("name".into(), event.name().into());
    labels.insert("namespace".into(), event.namespace().into());
    labels.insert("reportingcontroller".into(), o.reporting_controller.clone());
    json!([{
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": o.timestamp,
    }])
}

fn pagerduty_event(event: &Event<'_>, routing_key: &str) -> Value {
    if !event.is_error() {
        // Resolves an incident this object may have open.
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": event.uid(),
        });
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": event.uid(),
        "payload": {
            "summary": pagerduty_summary(event),
            "source": format!("Flux {}", event.raw.reporting_controller),
            "severity": "error",
            "timestamp": event.raw.timestamp,
            "component": event.name(),
            "group": event.kind(),
            "custom_details": {"message": event.raw.message, "metadata": event.metadata},
        },
    })
}

fn pagerduty_change(event: &Event<'_>, routing_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "payload": {
            "summary": pagerduty_summary(event),
            "source": format!("Flux {}", event.raw.reporting_controller),
            "timestamp": event.raw.timestamp,
            "custom_details": {"message": event.raw.message, "metadata": event.metadata},
        },
    })
}

/// `reconciliation succeeded: kustomization/webapp`.
fn pagerduty_summary(event: &Event<'_>) -> String {
    format!(
        "{}: {}",
        event.description(),
        format!("{}/{}", event.kind(), event.name()).to_lowercase()
    )
}

fn datadog_event(event: &Event<'_>) -> Value {
    let mut tags = vec![
        format!(
            "flux_reporting_controller:{}",
            event.raw.reporting_controller
        ),
        format!("flux_reason:{}", event.raw.reason),
        format!("kube_kind:{}", event.kind()),
        format!("kube_name:{}", event.name()),
        format!("kube_namespace:{}", event.namespace()),
    ];
    tags.extend(event.metadata.iter().map(|(k, v)| format!("{k}:{v}")));
    // Datadog lowercases tags; sending them lowercase keeps events consistent.
    let tags: Vec<String> = tags.into_iter().map(|t| t.to_lowercase()).collect();
    json!({
        "title": format!("Events from the {} {}/{}", event.kind(), event.name(), event.namespace()),
        "text": event.raw.message,
        "tags": tags,
        "source_type_name": "fluxcd",
        "date_happened": event.unix_seconds(),
        "alert_type": if event.is_error() { "error" } else { "info" },
    })
}
