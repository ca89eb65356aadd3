//! Webhooks and chat services: the event forwarded as is (`generic`, `generic-hmac`), or a
//! message for people in the service's own format.

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use sha2::Sha256;

use super::format::{self, Event, PROGRESSING};
use super::{
    Call, DeliveryError, ProviderError, ProviderSettings, Req, parse_http_url, parse_http_url_or,
    require_channel, require_token,
};

/// The header Flux's forwarder names the sending controller in.
const COMPONENT_HEADER: &str = "gotk-component";

#[derive(Clone)]
pub(super) enum Chat {
    /// `generic` (no key) and `generic-hmac` (with the key).
    Generic {
        url: Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        hmac_key: Option<Vec<u8>>,
    },
    /// `slack`, `discord` and `rocket`: Slack's attachment format.
    SlackLike {
        url: Url,
        flavour: SlackFlavour,
        token: Option<String>,
        username: String,
        channel: String,
    },
    MsTeams {
        url: Url,
        adaptive_card: bool,
    },
    Google {
        url: Url,
    },
    Webex {
        url: Url,
        room: String,
        token: String,
    },
    Telegram {
        url: Url,
        chat_id: String,
        thread: Option<String>,
    },
    Matrix {
        url: Url,
        room: String,
        token: String,
    },
    Lark {
        url: Url,
    },
    Zulip {
        url: Url,
        stream: String,
        topic: String,
        username: String,
        password: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SlackFlavour {
    Slack,
    Discord,
    Rocket,
}

impl Chat {
    /// The chat notifier for `settings`, `None` when the type is not a chat type.
    pub(super) fn new(settings: &ProviderSettings) -> Result<Option<Self>, ProviderError> {
        let t = settings.provider_type.as_str();
        let chat = match t {
            "generic" | "generic-hmac" => {
                let url = parse_http_url(t, &settings.address)?;
                let mut headers = Vec::new();
                for (name, value) in &settings.headers {
                    let invalid = || ProviderError::InvalidHeader { name: name.clone() };
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
                    let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
                    value.set_sensitive(true);
                    headers.push((name, value));
                }
                let hmac_key = if t == "generic-hmac" {
                    Some(require_token(settings)?.into_bytes())
                } else {
                    None
                };
                Chat::Generic {
                    url,
                    headers,
                    hmac_key,
                }
            }
            "slack" | "discord" | "rocket" => {
                let flavour = match t {
                    "slack" => SlackFlavour::Slack,
                    "discord" => SlackFlavour::Discord,
                    _ => SlackFlavour::Rocket,
                };
                let token = settings.token().map(str::to_string);
                let mut url = if flavour == SlackFlavour::Slack && token.is_some() {
                    parse_http_url_or(
                        t,
                        &settings.address,
                        "https://slack.com/api/chat.postMessage",
                    )?
                } else {
                    parse_http_url(t, &settings.address)?
                };
                if flavour == SlackFlavour::Discord && !url.path().ends_with("/slack") {
                    // Discord accepts Slack's format under the webhook's `/slack` path.
                    let path = format!("{}/slack", url.path().trim_end_matches('/'));
                    url.set_path(&path);
                }
                Chat::SlackLike {
                    url,
                    flavour,
                    token,
                    username: settings.username.trim().to_string(),
                    channel: settings.channel.trim().to_string(),
                }
            }
            "msteams" => {
                let url = parse_http_url(t, &settings.address)?;
                // Office 365 connectors take the MessageCard; Workflows take Adaptive Cards.
                let adaptive_card = !url
                    .host_str()
                    .is_some_and(|h| h.ends_with(".webhook.office.com"));
                Chat::MsTeams { url, adaptive_card }
            }
            "googlechat" => Chat::Google {
                url: parse_http_url(t, &settings.address)?,
            },
            "webex" => Chat::Webex {
                url: parse_http_url_or(t, &settings.address, "https://webexapis.com/v1/messages")?,
                room: require_channel(settings, "the Webex room ID")?,
                token: require_token(settings)?,
            },
            "telegram" => {
                let token = require_token(settings)?;
                let channel = require_channel(settings, "the chat ID, optionally ':<thread ID>'")?;
                let mut url = parse_http_url_or(t, &settings.address, "https://api.telegram.org")?;
                url.path_segments_mut()
                    .map_err(|()| ProviderError::address(t, "the URL cannot have a path"))?
                    .pop_if_empty()
                    .push(&format!("bot{token}"))
                    .push("sendMessage");
                let (chat_id, thread) = match channel.split_once(':') {
                    Some((chat, thread)) => (chat.to_string(), Some(thread.to_string())),
                    None => (channel, None),
                };
                Chat::Telegram {
                    url,
                    chat_id,
                    thread,
                }
            }
            "matrix" => Chat::Matrix {
                url: parse_http_url(t, &settings.address)?,
                room: require_channel(settings, "the Matrix room ID")?,
                token: require_token(settings)?,
            },
            "lark" => Chat::Lark {
                url: parse_http_url(t, &settings.address)?,
            },
            "zulip" => {
                let mut url = parse_http_url(t, &settings.address)?;
                url.set_path("/api/v1/messages");
                url.set_query(None);
                let channel = require_channel(settings, "'<stream>/<topic>'")?;
                let (stream, topic) = channel
                    .split_once('/')
                    .filter(|(s, t)| !s.is_empty() && !t.is_empty())
                    .ok_or_else(|| {
                        ProviderError::setting(
                            t,
                            format!("spec.channel must be '<stream>/<topic>', got '{channel}'"),
                        )
                    })?;
                let password = settings.password.clone().unwrap_or_default();
                if settings.username.is_empty() || password.is_empty() {
                    return Err(ProviderError::setting(
                        t,
                        "a username and password (the bot's email and API key) are required",
                    ));
                }
                Chat::Zulip {
                    url,
                    stream: stream.to_string(),
                    topic: topic.to_string(),
                    username: settings.username.clone(),
                    password,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(chat))
    }

    pub(super) async fn send(
        &self,
        call: &mut Call<'_>,
        event: &Event<'_>,
    ) -> Result<(), DeliveryError> {
        if !matches!(self, Chat::Generic { .. }) && event.is_commit_status_update() {
            return Ok(());
        }
        match self {
            Chat::Generic {
                url,
                headers,
                hmac_key,
            } => {
                let body = serde_json::to_vec(&event.to_json()).unwrap_or_default();
                let mut req = Req::post(url.clone())
                    .header("content-type", "application/json")
                    .header(COMPONENT_HEADER, &event.raw.reporting_controller);
                for (name, value) in headers {
                    req.headers.insert(name.clone(), value.clone());
                }
                if let Some(key) = hmac_key {
                    req = req.header(
                        "x-signature",
                        &format!("sha256={}", hmac_sha256(key, &body)),
                    );
                }
                req.body = Some(body);
                call.execute(req).await?;
            }
            Chat::SlackLike {
                url,
                flavour,
                token,
                username,
                channel,
            } => {
                let payload = slack_payload(*flavour, event, username, channel);
                let mut req = Req::post(url.clone()).json(&payload);
                if let Some(token) = token {
                    req = req.bearer(token);
                }
                let resp = call.execute(req).await?;
                // The Web API answers 200 with `ok: false` when it refuses a message.
                if token.is_some()
                    && let Some(answer) = resp.json()
                    && answer.get("ok") == Some(&Value::Bool(false))
                {
                    let reason = answer
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error");
                    return Err(call.refused(reason));
                }
            }
            Chat::MsTeams { url, adaptive_card } => {
                let payload = if *adaptive_card {
                    teams_adaptive_card(event)
                } else {
                    teams_message_card(event)
                };
                call.execute(Req::post(url.clone()).json(&payload)).await?;
            }
            Chat::Google { url } => {
                if event.has_reason(PROGRESSING) {
                    return Ok(());
                }
                call.execute(Req::post(url.clone()).json(&google_chat_card(event)))
                    .await?;
            }
            Chat::Webex { url, room, token } => {
                let payload = json!({"roomId": room, "markdown": webex_markdown(event)});
                call.execute(Req::post(url.clone()).json(&payload).bearer(token))
                    .await?;
            }
            Chat::Telegram {
                url,
                chat_id,
                thread,
            } => {
                let mut payload = json!({
                    "chat_id": chat_id,
                    "text": telegram_text(event),
                    "parse_mode": "MarkdownV2",
                });
                if let Some(thread) = thread {
                    payload["message_thread_id"] = json!(thread);
                }
                call.execute(Req::post(url.clone()).json(&payload)).await?;
            }
            Chat::Matrix { url, room, token } => {
                let txn =
                    format::sha1_hex(&serde_json::to_vec(&event.to_json()).unwrap_or_default());
                let mut url = url.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop_if_empty().extend([
                        "_matrix",
                        "client",
                        "r0",
                        "rooms",
                        room.as_str(),
                        "send",
                        "m.room.message",
                        txn.as_str(),
                    ]);
                }
                let payload = json!({"body": matrix_body(event), "msgtype": "m.text"});
                call.execute(Req::new(Method::PUT, url).json(&payload).bearer(token))
                    .await?;
            }
            Chat::Lark { url } => {
                call.execute(Req::post(url.clone()).json(&lark_card(event)))
                    .await?;
            }
            Chat::Zulip {
                url,
                stream,
                topic,
                username,
                password,
            } => {
                let content = format::markdown_post(event);
                let mut form = Url::parse("http://form.invalid/")
                    .map_err(|e| call.invalid_event(format!("cannot encode the form: {e}")))?;
                form.query_pairs_mut()
                    .append_pair("type", "stream")
                    .append_pair("to", stream)
                    .append_pair("topic", topic)
                    .append_pair("content", &content);
                let mut req = Req::post(url.clone())
                    .basic(username, password)
                    .header("content-type", "application/x-www-form-urlencoded");
                req.body = Some(form.query().unwrap_or_default().as_bytes().to_vec());
                call.execute(req).await?;
            }
        }
        Ok(())
    }
}

/// Lowercase hex HMAC-SHA256 of `body` keyed with `key`.
pub(super) fn hmac_sha256(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

fn slack_payload(flavour: SlackFlavour, event: &Event<'_>, username: &str, channel: &str) -> Value {
    let username = if username.is_empty() {
        event.raw.reporting_controller.as_str()
    } else {
        username
    };
    let color = match (flavour, event.is_error()) {
        (SlackFlavour::Rocket, false) => "#0076D7",
        (SlackFlavour::Rocket, true) => "#FF0000",
        (_, false) => "good",
        (_, true) => "danger",
    };
    let fields: Vec<Value> = event
        .metadata
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v, "short": false}))
        .collect();
    let mut payload = json!({
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": if flavour == SlackFlavour::Rocket { ":rocket:" } else { "" },
        "attachments": [{
            "color": color,
            "author_name": event.object_name(),
            "text": event.raw.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }],
    });
    if channel.is_empty()
        && let Some(map) = payload.as_object_mut()
    {
        map.remove("channel");
    }
    payload
}

fn teams_message_card(event: &Event<'_>) -> Value {
    let object = event.object_name();
    let facts: Vec<Value> = event
        .metadata
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": if event.is_error() { "FF0000" } else { "0076D7" },
        "summary": object,
        "sections": [{
            "activityTitle": event.raw.message,
            "activitySubtitle": object,
            "facts": facts,
        }],
    })
}

fn teams_adaptive_card(event: &Event<'_>) -> Value {
    // `summary` first, then the rest sorted by key.
    let mut facts = Vec::new();
    if let Some(summary) = event.metadata.get("summary") {
        facts.push(json!({"title": "summary", "value": summary}));
    }
    facts.extend(
        event
            .metadata
            .iter()
            .filter(|(k, _)| k.as_str() != "summary")
            .map(|(k, v)| json!({"title": k, "value": v})),
    );
    let mut message = json!({"type": "TextBlock", "text": event.raw.message, "wrap": true});
    if event.is_error() {
        message["color"] = json!("attention");
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": [{
                    "type": "Container",
                    "items": [
                        {"type": "TextBlock", "text": event.object_name(), "size": "large",
                         "weight": "bolder", "wrap": true},
                        message,
                        {"type": "FactSet", "facts": facts},
                    ],
                }],
            },
        }],
    })
}

fn google_chat_card(event: &Event<'_>) -> Value {
    let text = if event.is_error() {
        format!("<font color=\"#ff0000\">{}</font>", event.raw.message)
    } else {
        event.raw.message.clone()
    };
    let mut widgets = vec![json!({"keyValue": {
        "topLabel": "TIMESTAMP", "content": event.go_time(), "contentMultiline": false}})];
    widgets.extend(event.metadata.iter().map(
        |(k, v)| json!({"keyValue": {"topLabel": k, "content": v, "contentMultiline": false}}),
    ));
    json!({
        "cards": [{
            "header": {"title": event.object_name(), "subtitle": event.raw.reporting_controller},
            "sections": [
                {"widgets": [{"textParagraph": {"text": text}}]},
                {"widgets": widgets},
            ],
        }],
    })
}

fn webex_markdown(event: &Event<'_>) -> String {
    let emoji = if event.is_error() { "💣" } else { "✅" };
    let mut text = format!(
        "{emoji} **{}/{}/{}**\n{}\n",
        event.kind(),
        event.namespace(),
        event.name(),
        event.raw.message
    );
    for (k, v) in &event.metadata {
        text.push_str(&format!(">**{k}**: {v}\n"));
    }
    text
}

fn telegram_text(event: &Event<'_>) -> String {
    let emoji = if event.is_error() { "🚨" } else { "💫" };
    let heading = format!(
        "{emoji} {}/{}/{}",
        event.kind().to_lowercase(),
        event.name(),
        event.namespace()
    );
    let mut metadata = String::new();
    for (k, v) in &event.metadata {
        metadata.push_str(&format!(
            "\\- *{}*: {}\n",
            format::telegram_escape(k),
            format::telegram_escape(v)
        ));
    }
    format!(
        "*{}*\n{}\n{metadata}",
        format::telegram_escape(&heading),
        format::telegram_escape(&event.raw.message)
    )
}

fn matrix_body(event: &Event<'_>) -> String {
    let emoji = if event.is_error() { "🚨" } else { "💫" };
    let mut metadata = String::new();
    for (k, v) in &event.metadata {
        metadata.push_str(&format!("- {k}: {v}\n"));
    }
    format!(
        "{emoji} {}\n{}\n{metadata}",
        event.object_name(),
        event.raw.message
    )
}

fn lark_card(event: &Event<'_>) -> Value {
    let (emoji, color) = if event.is_error() {
        ("🚨", "red")
    } else {
        ("💫", "turquoise")
    };
    let mut message = format!("**{}**\n\n", event.raw.message);
    for (k, v) in &event.metadata {
        message.push_str(&format!("{k}: {v}\n"));
    }
    json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {
                "title": {"tag": "plain_text", "content": format!("{emoji} {}", event.object_name())},
                "template": color,
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": message}}],
        },
    })
}
