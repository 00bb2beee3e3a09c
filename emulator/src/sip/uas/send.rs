//! How the gateway's messages are built and sent: the 407 challenge, refusals with
//! their `Warning`, responses to the current INVITE (re-sent until ACKed over UDP), and
//! the BYE of a hang-up.

use std::time::Instant;

use super::super::message::{response_to, SipMessage};
use super::super::uac::{META_DOMAIN, USER_AGENT};
use super::{header_safe, new_branch, ByeTx, Output, Phase, Resend, Uas};
use crate::domain::sip::SipRefusal;

impl Uas {
    /// A 407 with a fresh view of the gateway's nonce; `stale` when credentials came for
    /// a nonce this call did not issue.
    pub(super) fn challenge(&mut self, now: Instant, stale: bool, out: &mut Vec<Output>) {
        let mut value = format!(
            "Digest realm=\"{META_DOMAIN}\",nonce=\"{}\",opaque=\"{}\",algorithm=MD5,qop=\"auth\"",
            self.nonce, self.opaque
        );
        if stale {
            value.push_str(",stale=true");
        }
        let resp = self
            .response(407, "Proxy Authentication Required")
            .with("Proxy-Authenticate", value);
        self.send_final(now, resp, out);
    }

    pub(super) fn refuse(&mut self, now: Instant, refusal: &SipRefusal, out: &mut Vec<Output>) {
        let mut resp = self.response(refusal.status, &header_safe(&refusal.reason));
        if let Some(text) = &refusal.warning {
            let text = header_safe(text).replace('"', "'");
            resp.push("Warning", format!("399 {META_DOMAIN} \"{text}\""));
        }
        self.send_final(now, resp, out);
    }

    /// A response to the current INVITE, with our To tag (none on 100 Trying).
    pub(super) fn response(&self, status: u16, reason: &str) -> SipMessage {
        let Some(tx) = &self.invite else {
            return SipMessage::response(status, reason);
        };
        let tag = if status == 100 { "" } else { &self.local_tag };
        response_to(&tx.request, status, reason, tag).with("Server", USER_AGENT)
    }

    pub(super) fn reply_to(&self, req: &SipMessage, status: u16, reason: &str) -> SipMessage {
        response_to(req, status, reason, &self.local_tag)
    }

    pub(super) fn send_provisional(&mut self, resp: SipMessage, out: &mut Vec<Output>) {
        let text = resp.render();
        if let Some(tx) = self.invite.as_mut() {
            tx.last = Some(text.clone());
        }
        out.push(Output::Send(text));
    }

    /// A final response to the current INVITE: re-sent until ACKed on UDP, and its ACK
    /// awaited for 64·T1 on any transport.
    pub(super) fn send_final(&mut self, now: Instant, resp: SipMessage, out: &mut Vec<Output>) {
        let status = resp.status().unwrap_or(500);
        let text = resp.render();
        let reliable = self.transport.is_reliable();
        let (t1, timeout) = (self.cfg.t1, self.cfg.transaction_timeout());
        if let Some(tx) = self.invite.as_mut() {
            tx.last = Some(text.clone());
            tx.final_status = Some(status);
            tx.resend = (!reliable).then(|| Resend {
                at: now + t1,
                interval: t1,
            });
            tx.ack_deadline = Some(now + timeout);
        }
        out.push(Output::Send(text));
    }

    pub(super) fn send_bye(&mut self, now: Instant, duration_secs: u64, out: &mut Vec<Output>) {
        let Some(dialog) = &self.dialog else {
            self.enter_linger(now);
            return;
        };
        self.cseq += 1;
        let branch = new_branch(&mut self.rng);
        let mut bye = SipMessage::request("BYE", &dialog.remote_target).with(
            "Via",
            format!(
                "SIP/2.0/{} {};rport;branch={branch}",
                self.transport.via_token(),
                self.via_sent_by
            ),
        );
        for route in &dialog.route_set {
            bye.push("Route", route.clone());
        }
        bye.push("Max-Forwards", "70");
        bye.push("From", dialog.local.clone());
        bye.push("To", dialog.remote.clone());
        bye.push("Call-ID", self.call_id.clone());
        bye.push("CSeq", format!("{} BYE", self.cseq));
        bye.push("User-Agent", USER_AGENT);
        if let Some(call) = &self.call {
            bye.push("x-wa-meta-wacid", header_safe(call.call_id.as_str()));
        }
        bye.push("x-wa-meta-call-duration", duration_secs.to_string());
        let rendered = bye.render();
        out.push(Output::Send(rendered.clone()));
        let t1 = self.cfg.t1;
        self.bye = Some(ByeTx {
            branch,
            rendered,
            resend: (!self.transport.is_reliable()).then(|| Resend {
                at: now + t1,
                interval: t1,
            }),
            timeout_at: now + self.cfg.transaction_timeout(),
        });
        self.phase = Phase::Terminating;
    }
}
