//! Business steps, as the Graph requests an integration would make: sends, templates,
//! calls and call actions, permissions, settings, raw requests; the numbers the business
//! has (`business has number …`, an admin call) and which one they act as (`business
//! uses number …`).

use super::context::Ctx;
use super::http::Reply;
use super::{digits, summarize, GRAPH_VERSION};
use crate::syntax::*;
use serde_json::{json, Value};
use wa_emulator::api::admin_types::BusinessNumber;

/// An SDP good enough for the emulator's checks: ICE credentials, a fingerprint, Opus.
const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE audio\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:wAeM\r\na=ice-pwd:zfQLqf4fAcbZzPrA1Xc0XHlX\r\na=ice-options:trickle\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:active\r\na=mid:audio\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:126 telephone-event/8000\r\n";

impl<'a> Ctx<'a> {
    /// Business steps act as this number from now on.
    pub(super) fn act_as(&mut self, number: BusinessNumber) {
        self.phone_number_id = number.id;
        self.waba_id = number.waba_id;
        self.display_number = number.display_phone_number;
    }

    /// `business uses number …`: the number must be one the emulator hosts, named by its
    /// display number or its phone number id.
    pub(super) fn use_number(&mut self, n: &Text) -> Result<(), String> {
        let want = digits(&n.value);
        let Some(number) = self
            .numbers
            .iter()
            .find(|b| digits(&b.display_phone_number) == want || b.id.as_str() == want)
            .cloned()
        else {
            let known = self
                .numbers
                .iter()
                .map(|b| format!("{} (id {})", b.display_phone_number, b.id))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(format!(
                "the emulator has no business number {}\n  its numbers (GET /__emulator/config `phone_numbers`): {known}\n  help: write one of those display numbers after `business uses number`",
                n.value
            ));
        };
        self.act_as(number);
        Ok(())
    }

    /// `business has number …`: the emulator adds the number to the tenant, in the WABA
    /// of the number the story uses (so the token reaches it), until its next reset.
    pub(super) async fn add_number(
        &mut self,
        n: &NumberDecl,
        bind: &Option<Var>,
    ) -> Result<(), String> {
        let mut body = json!({
            "display_phone_number": digits(&n.number.value),
            "waba_id": self.waba_id,
        });
        if n.test {
            body["profile"] = json!("test");
        }
        if let Some(b) = n.business_initiated {
            body["business_initiated_calling"] = json!(b);
        }
        let reply = self.admin("POST", "/phone_numbers", Some(&body)).await?;
        if !reply.is_success() {
            let details = reply
                .body
                .pointer("/error/error_data/details")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| summarize(&reply.body));
            return Err(format!(
                "the emulator did not add business number {} (POST /__emulator/phone_numbers answered HTTP {}):\n    {details}",
                n.number.value, reply.status
            ));
        }
        let number: BusinessNumber = serde_json::from_value(reply.body.clone()).map_err(|e| {
            format!(
                "POST /__emulator/phone_numbers answered something this runner cannot read ({e}): {}\n  help: is the target a wa-emulator of the same version as this runner?",
                summarize(&reply.body)
            )
        })?;
        let id = number.id.to_string();
        self.numbers.push(number);
        self.bind(bind, Some(id), "the added number")
    }

    fn messages_path(&self) -> String {
        format!("/{GRAPH_VERSION}/{}/messages", self.phone_number_id)
    }

    fn calls_path(&self) -> String {
        format!("/{GRAPH_VERSION}/{}/calls", self.phone_number_id)
    }

    pub(super) async fn business(&mut self, action: &BusinessAction) -> Result<Reply, String> {
        match action {
            BusinessAction::SendButton {
                to,
                label,
                body,
                payload,
                ttl,
            } => {
                let mut params = serde_json::Map::new();
                if let Some(l) = label {
                    params.insert("display_text".into(), json!(l.value));
                }
                if let Some(t) = ttl {
                    params.insert("ttl_minutes".into(), json!(t.ms / 60_000));
                }
                if let Some(p) = payload {
                    params.insert("payload".into(), json!(p.value));
                }
                let mut act = json!({"name": "voice_call"});
                if !params.is_empty() {
                    act["parameters"] = Value::Object(params);
                }
                let text = body
                    .as_ref()
                    .map(|b| b.value.as_str())
                    .unwrap_or("You can call us on WhatsApp now.");
                let msg = json!({
                    "messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "interactive",
                    "interactive": {"type": "voice_call", "body": {"text": text}, "action": act}
                });
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::SendText { to, text } => {
                let msg = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "text", "text": {"body": text.value}});
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::AskPermission { to, body } => {
                let mut inter = json!({"type": "call_permission_request", "action": {"name": "call_permission_request"}});
                if let Some(b) = body {
                    inter["body"] = json!({"text": b.value});
                }
                let msg = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "interactive", "interactive": inter});
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::CreateTemplate {
                name,
                label,
                body,
                ttl,
                category,
                language,
            } => {
                let mut button = json!({"type": "voice_call", "text": label.as_ref().map(|l| l.value.as_str()).unwrap_or("Call Now")});
                if let Some(t) = ttl {
                    button["ttl_minutes"] = json!(t.ms / 60_000);
                }
                let tpl = json!({
                    "name": name.value,
                    "category": category.as_ref().map(|c| c.text.as_str()).unwrap_or("UTILITY"),
                    "language": language.as_ref().map(|l| l.value.as_str()).unwrap_or("en"),
                    "components": [
                        {"type": "BODY", "text": body.as_ref().map(|b| b.value.as_str()).unwrap_or("You can call us on WhatsApp now.")},
                        {"type": "BUTTONS", "buttons": [button]}
                    ]
                });
                let path = format!("/{GRAPH_VERSION}/{}/message_templates", self.waba_id);
                self.graph("POST", &path, Some(&tpl)).await
            }
            BusinessAction::SendTemplate {
                to,
                name,
                language,
                payload,
                ttl,
            } => {
                let mut params = Vec::new();
                if let Some(t) = ttl {
                    params.push(json!({"type": "ttl_minutes", "ttl_minutes": t.ms / 60_000}));
                }
                if let Some(p) = payload {
                    params.push(json!({"type": "payload", "payload": p.value}));
                }
                let mut tpl = json!({"name": name.value, "language": {"code": language.as_ref().map(|l| l.value.as_str()).unwrap_or("en")}});
                if !params.is_empty() {
                    tpl["components"] =
                        json!([{"type": "button", "sub_type": "voice_call", "parameters": params}]);
                }
                let msg = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": self.to(to)?,
                    "type": "template", "template": tpl});
                self.graph("POST", &self.messages_path(), Some(&msg)).await
            }
            BusinessAction::Call { to, callback } => {
                let mut body = json!({"messaging_product": "whatsapp", "to": self.to(to)?, "action": "connect",
                    "session": {"sdp_type": "offer", "sdp": SDP}});
                if let Some(c) = callback {
                    body["biz_opaque_callback_data"] = json!(c.value);
                }
                self.graph("POST", &self.calls_path(), Some(&body)).await
            }
            BusinessAction::CallAction {
                verb,
                call,
                callback,
            } => {
                let mut body = json!({"messaging_product": "whatsapp", "call_id": self.var(call)?, "action": verb.action()});
                if matches!(verb, CallVerb::PreAccept | CallVerb::Accept) {
                    body["session"] = json!({"sdp_type": "answer", "sdp": SDP});
                }
                if let Some(c) = callback {
                    body["biz_opaque_callback_data"] = json!(c.value);
                }
                self.graph("POST", &self.calls_path(), Some(&body)).await
            }
            BusinessAction::CheckPermission { user } => {
                let path = format!(
                    "/{GRAPH_VERSION}/{}/call_permissions?user_wa_id={}",
                    self.phone_number_id,
                    self.user(user)?
                );
                self.graph("GET", &path, None).await
            }
            BusinessAction::SetCalling { enabled } => {
                let status = if *enabled { "ENABLED" } else { "DISABLED" };
                let path = format!("/{GRAPH_VERSION}/{}/settings", self.phone_number_id);
                self.graph("POST", &path, Some(&json!({"calling": {"status": status}})))
                    .await
            }
            BusinessAction::UpdateSettings { json } => {
                let body = self.body_json(json).await?;
                let path = format!("/{GRAPH_VERSION}/{}/settings", self.phone_number_id);
                self.graph("POST", &path, Some(&body)).await
            }
            BusinessAction::ReadSettings => {
                let path = format!("/{GRAPH_VERSION}/{}/settings", self.phone_number_id);
                self.graph("GET", &path, None).await
            }
            BusinessAction::Request { method, path, body } => {
                let body = match body {
                    Some(b) => Some(self.body_json(b).await?),
                    None => None,
                };
                let full = self.graph_path(&path.value);
                self.graph(&method.text, &full, body.as_ref()).await
            }
        }
    }

    /// Resolves a path written in a scenario to a full Graph path.
    fn graph_path(&self, p: &str) -> String {
        let versioned = p.len() > 2 && p.starts_with("/v") && p.as_bytes()[2].is_ascii_digit();
        if versioned {
            p.to_string()
        } else if p.starts_with("/message_templates") {
            format!("/{GRAPH_VERSION}/{}{p}", self.waba_id)
        } else if ["/messages", "/calls", "/settings", "/call_permissions"]
            .iter()
            .any(|s| p.starts_with(s))
        {
            format!("/{GRAPH_VERSION}/{}{p}", self.phone_number_id)
        } else {
            format!("/{GRAPH_VERSION}{p}")
        }
    }
}
