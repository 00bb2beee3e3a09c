//! What the gateway answers to a request that belongs to no call: REGISTER is refused
//! (cloud-api §8.2: do not register), OPTIONS is answered, an INVITE outside a dialog
//! starts a call, the rest is 481.

use super::super::message::{header_param, response_to, SipMessage};
use super::super::uac::ALLOW;

/// How the shell answers a request that belongs to no [`Uas`](super::Uas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithoutCall {
    /// An INVITE that starts a call: give it to a new [`Uas`](super::Uas).
    NewCall,
    /// Send this response.
    Reply(String),
    /// Nothing to send (a stray ACK or response).
    Ignore,
}

/// Answers a request for which no call exists. `tag` goes into the To header of the
/// response.
pub fn answer_without_call(req: &SipMessage, tag: &str) -> WithoutCall {
    let Some(method) = req.method().map(str::to_ascii_uppercase) else {
        return WithoutCall::Ignore;
    };
    let in_dialog = req
        .header("to")
        .is_some_and(|to| header_param(to, "tag").is_some());
    let reply = |status: u16, reason: &str| response_to(req, status, reason, tag);
    let resp = match method.as_str() {
        "INVITE" if !in_dialog => return WithoutCall::NewCall,
        "ACK" => return WithoutCall::Ignore,
        "REGISTER" => reply(403, "Forbidden"),
        "OPTIONS" => options_ok(req, tag),
        _ => reply(481, "Call/Transaction Does Not Exist"),
    };
    WithoutCall::Reply(resp.render())
}

/// OPTIONS answered, in a call or outside one.
pub(super) fn options_ok(req: &SipMessage, tag: &str) -> SipMessage {
    response_to(req, 200, "OK", tag)
        .with("Allow", ALLOW)
        .with("Accept", "application/sdp")
}
