//! User steps, as admin API calls (`/__emulator/users/…`, `/__emulator/calls/…`): a
//! user is declared, says something, taps a button, opens a link, calls, answers, hangs
//! up, replies to a permission request, reads, presses keys and plays a sound in a call
//! with media (`/__emulator/calls/{id}/dtmf`, `…/play`).

use super::context::Ctx;
use super::http::Reply;
use crate::syntax::*;
use serde_json::json;
use wa_emulator::wire::url::percent_encode;

impl<'a> Ctx<'a> {
    /// `user alice is android 2.25.30 …`: creates the user in the emulator and remembers
    /// its number under its name.
    pub(super) async fn declare_user(&mut self, u: &UserDecl) -> Result<(), String> {
        let wa_id = match &u.number {
            Some(n) => n.value.clone(),
            None => format!("1650555{:04}", self.users.len() + 1),
        };
        let display = u
            .display_name
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_else(|| capitalize(&u.name.text));
        let mut body = json!({"wa_id": wa_id, "name": display, "platform": u.platform.as_str()});
        if let Some(v) = &u.version {
            body["version"] = json!(v.text);
        }
        // Always said explicitly, so a story does not depend on the emulator's
        // default for new users.
        body["window_open"] = json!(u.window_open);
        self.admin_ok("POST", "/users", Some(&body)).await?;
        self.users.insert(u.name.text.clone(), wa_id);
        Ok(())
    }

    pub(super) async fn user_action(
        &mut self,
        wa_id: &str,
        action: &UserAction,
    ) -> Result<Reply, String> {
        let user_path = |rest: &str| format!("/users/{wa_id}/{rest}");
        match action {
            UserAction::Say(t) => {
                self.admin(
                    "POST",
                    &user_path("messages"),
                    Some(&json!({"text": t.value, "phone_number_id": self.phone_number_id})),
                )
                .await
            }
            UserAction::Tap(m) => {
                self.admin(
                    "POST",
                    &user_path("tap"),
                    Some(&json!({"message_id": self.var(m)?})),
                )
                .await
            }
            UserAction::OpenLink(url) => {
                self.admin(
                    "POST",
                    &user_path("open-link"),
                    Some(&json!({"url": url.value})),
                )
                .await
            }
            UserAction::OpenCallLink { number, payload } => {
                let number = number
                    .as_ref()
                    .map(|n| n.value.clone())
                    .unwrap_or_else(|| self.display_number.clone());
                let mut url = format!("https://wa.me/call/{number}");
                if let Some(p) = payload {
                    url.push_str("?biz_payload=");
                    url.push_str(&percent_encode(&p.value));
                }
                self.admin("POST", &user_path("open-link"), Some(&json!({"url": url})))
                    .await
            }
            UserAction::CallBusiness => {
                self.admin(
                    "POST",
                    &user_path("call"),
                    Some(&json!({"phone_number_id": self.phone_number_id})),
                )
                .await
            }
            UserAction::HangUp(c) => {
                self.admin(
                    "POST",
                    &format!("/calls/{}/hangup", self.var(c)?),
                    Some(&json!({})),
                )
                .await
            }
            UserAction::Answer(c) => {
                self.admin(
                    "POST",
                    &format!("/calls/{}/answer", self.var(c)?),
                    Some(&json!({})),
                )
                .await
            }
            UserAction::Decline(c) => {
                self.admin(
                    "POST",
                    &format!("/calls/{}/decline", self.var(c)?),
                    Some(&json!({})),
                )
                .await
            }
            UserAction::ReplyPermission {
                accept,
                request,
                permanent,
            } => {
                let mut body = json!({"response": if *accept { "accept" } else { "reject" }, "permanent": permanent});
                match request {
                    // The request names the number it came from.
                    Some(r) => body["message_id"] = json!(self.var(r)?),
                    // From the business's profile: the number the story is about.
                    None => body["phone_number_id"] = json!(self.phone_number_id),
                }
                self.admin("POST", &user_path("permission-reply"), Some(&body))
                    .await
            }
            UserAction::Press { keys, call } => {
                self.admin(
                    "POST",
                    &format!("/calls/{}/dtmf", self.var(call)?),
                    Some(&json!({"digits": keys.value})),
                )
                .await
            }
            UserAction::Play { sound, call } => {
                let body = match sound {
                    Sound::Tone(hz) => json!({"tone_hz": hz.value}),
                    Sound::Silence => json!({"silence": true}),
                };
                self.admin(
                    "POST",
                    &format!("/calls/{}/play", self.var(call)?),
                    Some(&body),
                )
                .await
            }
            UserAction::Read(m) => {
                self.admin(
                    "POST",
                    &user_path("read"),
                    Some(&json!({"message_id": self.var(m)?})),
                )
                .await
            }
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
