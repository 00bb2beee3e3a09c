//! The server side of one business-initiated call, as a pure state machine (RFC 3261
//! §13.3, §17.2): the emulator plays Meta's gateway `wa.meta.vc` for a business that
//! calls a user over SIP (cloud-api §8.2, §8.3).
//!
//! One [`Uas`] serves one SIP Call-ID. Like the client side ([`super::uac`]) it never
//! touches a socket or the clock: the shell feeds it requests, responses, the engine's
//! judgement ([`Uas::admitted`]), the user's answer ([`Uas::reply`]), transport failures
//! and the current time, and carries out the [`Output`]s. [`answer_without_call`]
//! (`stateless.rs`) answers the requests that belong to no call (REGISTER, OPTIONS,
//! strays); `invite.rs` reads a business's INVITE into the engine's terms; `send.rs`
//! builds and sends the gateway's responses and BYE. The state machine's tests are in
//! `tests.rs`.
//!
//! The flow: INVITE → 100 Trying → 407 with a Digest challenge (realm `wa.meta.vc`) →
//! ACK → INVITE with `Proxy-Authorization` → 100 Trying → the engine decides (a 4xx
//! refusal of cloud-api §8.6, or ringing) → 180 Ringing → the user answers (200 OK with
//! SDP and the BSUID headers of §8.5), declines (486) or lets it ring out (480); CANCEL →
//! 487; BYE from either side, ours carrying `x-wa-meta-call-duration` and
//! `x-wa-meta-wacid`; re-INVITE → 500.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod invite;
mod send;
mod stateless;

pub use stateless::{answer_without_call, WithoutCall};

use super::digest::{self, Credentials};
use super::message::{header_param, response_to, uri_of, SipMessage};
use super::uac::{ALLOW, META_DOMAIN};
use super::UacConfig;
use crate::domain::ids::CallId;
use crate::domain::sip::{AdmittedCall, GatewayReply, IncomingInvite, SipRefusal, SipTransport};
use invite::{incoming_invite, request_uri, uri_host};
use stateless::options_ok;

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message text to the business, on the flow its requests come from.
    Send(String),
    /// Ask the engine whether this INVITE may ring the user; answer with
    /// [`Uas::admitted`]. The engine checks `credentials` against the number's SIP
    /// password with [`digest::verify`] (method `INVITE`, the SDP offer as body).
    Admit {
        invite: Box<IncomingInvite>,
        credentials: Box<Credentials>,
    },
    /// Something the engine must hear about the admitted call.
    Event(GatewayEvent),
}

/// What happened to an admitted call on the business's side or in the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayEvent {
    /// The business hung up: BYE on an answered call, CANCEL on a ringing one.
    Hangup,
    /// The gateway gave up on the call: no ACK to its 200 OK, the connection to the
    /// business lost, or ringing longer than Timer C.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No call: a new INVITE is welcome (the first one, or one after a challenge or a
    /// refusal) until `idle_until`.
    Idle,
    /// The engine is judging the INVITE.
    Admitting,
    /// 180 sent: the user's phone rings.
    Ringing,
    /// 200 OK sent, waiting for its ACK.
    Answered,
    Confirmed,
    /// Our BYE is out.
    Terminating,
    /// The call is over; still answering retransmissions until `linger_until`.
    Lingering,
    Done,
}

/// A response re-sent until acknowledged (UDP): the interval doubles up to T2.
#[derive(Debug, Clone, Copy)]
struct Resend {
    at: Instant,
    interval: Duration,
}

/// One INVITE server transaction (RFC 3261 §17.2.1).
struct InviteTx {
    branch: String,
    cseq: u32,
    request: SipMessage,
    /// The latest response, re-sent when the INVITE is retransmitted.
    last: Option<String>,
    final_status: Option<u16>,
    resend: Option<Resend>,
    /// Timer H for a non-2xx final response; the 2xx's ACK deadline otherwise.
    ack_deadline: Option<Instant>,
}

/// A non-INVITE request answered, kept to answer its retransmissions alike.
struct Answered {
    branch: String,
    method: String,
    response: String,
}

/// Our BYE (a non-INVITE client transaction, RFC 3261 §17.1.2).
struct ByeTx {
    branch: String,
    rendered: String,
    resend: Option<Resend>,
    /// Timer F.
    timeout_at: Instant,
}

/// The dialog of an admitted call, from our side.
struct Dialog {
    /// The business's From (with its tag): our To.
    remote: String,
    /// The INVITE's To with our tag: our From.
    local: String,
    remote_target: String,
    route_set: Vec<String>,
}

/// One business-initiated call's signalling at the gateway.
pub struct Uas {
    cfg: UacConfig,
    transport: SipTransport,
    /// Our `host:port` as the business reaches us (Via of our requests).
    via_sent_by: String,
    rng: StdRng,
    call_id: String,
    local_tag: String,
    nonce: String,
    opaque: String,
    invite: Option<InviteTx>,
    /// Earlier INVITE transactions (challenged, refused), to answer their retransmissions.
    old_invites: Vec<InviteTx>,
    answered: VecDeque<Answered>,
    bye: Option<ByeTx>,
    dialog: Option<Dialog>,
    call: Option<AdmittedCall>,
    /// The called user's digits, for our Contact.
    user_number: String,
    cseq: u32,
    /// The user hung up before the business ACKed our 200 OK: the BYE (with this
    /// duration) waits for the ACK (RFC 3261 §15).
    bye_after_ack: Option<u64>,
    phase: Phase,
    idle_until: Option<Instant>,
    ring_until: Option<Instant>,
    linger_until: Option<Instant>,
}

/// Requests a gateway call keeps for retransmissions.
const ANSWERED_KEPT: usize = 16;

impl Uas {
    /// A call for SIP Call-ID `call_id`, reached over `transport` at `via_sent_by`
    /// (`host:port`). `seed` makes tags, nonces and branches reproducible in tests.
    pub fn new(
        call_id: &str,
        cfg: UacConfig,
        transport: SipTransport,
        via_sent_by: String,
        seed: u64,
        now: Instant,
    ) -> Uas {
        let mut rng = StdRng::seed_from_u64(seed);
        let local_tag = format!("{:016x}", rng.gen::<u64>());
        let nonce = format!("{:016x}", rng.gen::<u64>());
        let opaque = format!("{:016x}", rng.gen::<u64>());
        let cseq = rng.gen_range(1..10_000);
        let idle_until = Some(now + cfg.linger.max(cfg.transaction_timeout()));
        Uas {
            cfg,
            transport,
            via_sent_by,
            rng,
            call_id: call_id.to_owned(),
            local_tag,
            nonce,
            opaque,
            invite: None,
            old_invites: Vec::new(),
            answered: VecDeque::new(),
            bye: None,
            dialog: None,
            call: None,
            user_number: String::new(),
            cseq,
            bye_after_ack: None,
            phase: Phase::Idle,
            idle_until,
            ring_until: None,
            linger_until: None,
        }
    }

    /// The SIP Call-ID (the business's).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The wacid of the engine's call, once admitted.
    pub fn wacid(&self) -> Option<&CallId> {
        self.call.as_ref().map(|c| &c.call_id)
    }

    /// Nothing more will be sent or answered: the shell may drop this call.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The user's phone is ringing (the call waits for [`Uas::reply`]).
    pub fn is_ringing(&self) -> bool {
        self.phase == Phase::Ringing
    }

    /// When [`Uas::on_timeout`] must next run, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.phase == Phase::Done {
            return None;
        }
        let invites = self
            .invite
            .iter()
            .chain(&self.old_invites)
            .flat_map(|tx| [tx.resend.map(|r| r.at), tx.ack_deadline]);
        let bye = self
            .bye
            .iter()
            .flat_map(|tx| [tx.resend.map(|r| r.at), Some(tx.timeout_at)]);
        invites
            .chain(bye)
            .chain([self.idle_until, self.ring_until, self.linger_until])
            .flatten()
            .min()
    }

    /// A request or response from the business.
    pub fn on_message(&mut self, now: Instant, msg: &SipMessage) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        if msg.status().is_some() {
            self.on_response(now, msg);
        } else {
            self.on_request(now, msg, &mut out);
        }
        out
    }

    /// The engine's judgement of the INVITE that [`Output::Admit`] asked about.
    pub fn admitted(
        &mut self,
        now: Instant,
        result: Result<AdmittedCall, SipRefusal>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::Admitting {
            return out;
        }
        match result {
            Ok(call) => {
                let Some(tx) = &self.invite else {
                    return out;
                };
                let req = &tx.request;
                let remote = req.header("from").unwrap_or_default().to_owned();
                let local = format!(
                    "{};tag={}",
                    req.header("to").unwrap_or_default(),
                    self.local_tag
                );
                let remote_target = req
                    .header("contact")
                    .map(uri_of)
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| uri_of(&remote))
                    .to_owned();
                let route_set = req
                    .header_values("record-route")
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                self.dialog = Some(Dialog {
                    remote,
                    local,
                    remote_target,
                    route_set,
                });
                self.call = Some(call);
                let ringing = self
                    .response(180, "Ringing")
                    .with("Contact", self.contact());
                self.send_provisional(ringing, &mut out);
                self.phase = Phase::Ringing;
                self.ring_until = Some(now + self.cfg.timer_c);
            }
            Err(refusal) => {
                self.refuse(now, &refusal, &mut out);
                self.back_to_idle(now);
            }
        }
        out
    }

    /// The user acted on the ringing or answered call.
    pub fn reply(&mut self, now: Instant, reply: GatewayReply) -> Vec<Output> {
        let mut out = Vec::new();
        match (self.phase, reply) {
            (Phase::Ringing, GatewayReply::Answer { sdp }) => {
                let mut ok = self
                    .response(200, "OK")
                    .with("Contact", self.contact())
                    .with("Allow", ALLOW);
                for (name, value) in self.call.iter().flat_map(|c| &c.answer_headers) {
                    ok.push(name, header_safe(value));
                }
                ok.push("Content-Type", "application/sdp");
                ok.body = sdp;
                self.ring_until = None;
                self.send_final(now, ok, &mut out);
                self.phase = Phase::Answered;
            }
            (Phase::Ringing, GatewayReply::Refuse(refusal)) => {
                self.ring_until = None;
                self.refuse(now, &refusal, &mut out);
                self.enter_linger(now);
            }
            // The engine ends a ringing call with a refusal; a BYE there means the same.
            (Phase::Ringing, GatewayReply::Bye { .. }) => {
                self.ring_until = None;
                self.refuse(now, &SipRefusal::no_answer(), &mut out);
                self.enter_linger(now);
            }
            (Phase::Answered, GatewayReply::Bye { duration_secs }) => {
                self.bye_after_ack = Some(duration_secs);
            }
            (Phase::Confirmed, GatewayReply::Bye { duration_secs }) => {
                self.send_bye(now, duration_secs, &mut out);
            }
            _ => {}
        }
        out
    }

    /// The connection to the business broke (TCP, TLS) or a send failed.
    pub fn on_transport_error(&mut self, _now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match self.phase {
            // Nothing can reach the business any more; the engine ends the call.
            Phase::Admitting | Phase::Ringing | Phase::Answered => {
                if self.call.is_some() {
                    out.push(Output::Event(GatewayEvent::TimedOut));
                }
                self.phase = Phase::Done;
            }
            // An established call survives until someone hangs up: the business may
            // reconnect to send its BYE.
            Phase::Confirmed => {}
            Phase::Idle | Phase::Terminating | Phase::Lingering | Phase::Done => {
                self.phase = Phase::Done;
            }
        }
        out
    }

    /// Runs every timer that is due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        let t2 = self.cfg.t2;
        let mut unacknowledged = false;
        for tx in self.invite.iter_mut().chain(self.old_invites.iter_mut()) {
            if tx.ack_deadline.is_some_and(|t| t <= now) {
                // Timer H, or no ACK for a 2xx: stop re-sending.
                tx.ack_deadline = None;
                tx.resend = None;
                unacknowledged |= tx.final_status == Some(200);

                continue;
            }
            if let (Some(r), Some(last)) = (tx.resend.as_mut(), &tx.last) {
                if r.at <= now {
                    // Timer G (non-2xx) and the 2xx retransmission both double to T2.
                    r.interval = (r.interval * 2).min(t2);
                    r.at = now + r.interval;
                    out.push(Output::Send(last.clone()));
                }
            }
        }
        if unacknowledged && self.phase == Phase::Answered {
            // RFC 3261 §13.3.1.4: no ACK for the 2xx, so the gateway ends the dialog (the
            // user's own BYE when they already hung up).
            match self.bye_after_ack.take() {
                Some(duration) => self.send_bye(now, duration, &mut out),
                None => {
                    out.push(Output::Event(GatewayEvent::TimedOut));
                    self.send_bye(now, 0, &mut out);
                }
            }
        }
        if let Some(tx) = self.bye.as_mut() {
            if tx.timeout_at <= now {
                // Timer F: the business never confirmed our BYE; the call is over anyway.
                self.bye = None;
                self.enter_linger(now);
            } else if let Some(r) = tx.resend.as_mut().filter(|r| r.at <= now) {
                r.interval = (r.interval * 2).min(t2);
                r.at = now + r.interval;
                out.push(Output::Send(tx.rendered.clone()));
            }
        }
        if self.ring_until.is_some_and(|t| t <= now) && self.phase == Phase::Ringing {
            // Rung longer than any user would: the gateway gives up on its own.
            self.ring_until = None;
            self.refuse(now, &SipRefusal::no_answer(), &mut out);
            out.push(Output::Event(GatewayEvent::TimedOut));
            self.enter_linger(now);
        }
        if self.idle_until.is_some_and(|t| t <= now) && self.phase == Phase::Idle {
            self.phase = Phase::Done;
        }
        if self.linger_until.is_some_and(|t| t <= now) && self.phase == Phase::Lingering {
            self.phase = Phase::Done;
        }
        out
    }
}

impl Uas {
    // ---- requests ------------------------------------------------------------------

    fn on_request(&mut self, now: Instant, req: &SipMessage, out: &mut Vec<Output>) {
        let method = req.method().unwrap_or_default().to_ascii_uppercase();
        let branch = req.top_via_branch().unwrap_or_default().to_owned();
        match method.as_str() {
            "INVITE" => self.on_invite(now, req, &branch, out),
            "ACK" => self.on_ack(now, req, &branch, out),
            _ => {
                // A retransmitted non-INVITE request gets the same answer again.
                if let Some(a) = self
                    .answered
                    .iter()
                    .find(|a| a.branch == branch && a.method == method)
                {
                    out.push(Output::Send(a.response.clone()));
                    return;
                }
                // What the request sets off goes out after its response.
                let mut after = Vec::new();
                let resp = match method.as_str() {
                    "CANCEL" => self.on_cancel(now, req, &branch, &mut after),
                    "BYE" => self.on_bye(now, req, &mut after),
                    "OPTIONS" => options_ok(req, &self.local_tag),
                    // Meta's gateway takes no registrations (cloud-api §8.2).
                    "REGISTER" => self.reply_to(req, 403, "Forbidden"),
                    "NOTIFY" => self.reply_to(req, 200, "OK"),
                    _ => self
                        .reply_to(req, 405, "Method Not Allowed")
                        .with("Allow", ALLOW),
                };
                let response = resp.render();
                out.push(Output::Send(response.clone()));
                out.extend(after);
                if self.answered.len() >= ANSWERED_KEPT {
                    self.answered.pop_front();
                }
                self.answered.push_back(Answered {
                    branch,
                    method,
                    response,
                });
            }
        }
    }

    fn on_invite(&mut self, now: Instant, req: &SipMessage, branch: &str, out: &mut Vec<Output>) {
        // A retransmission: the latest response again.
        if let Some(tx) = self
            .invite
            .iter()
            .chain(&self.old_invites)
            .find(|tx| tx.branch == branch)
        {
            out.extend(tx.last.clone().map(Output::Send));
            return;
        }
        let in_dialog = req
            .header("to")
            .is_some_and(|to| header_param(to, "tag").is_some());
        if in_dialog {
            let resp = match self.phase {
                // Meta's gateway does not support re-INVITE (cloud-api §8.2).
                Phase::Answered | Phase::Confirmed | Phase::Terminating => {
                    self.reply_to(req, 500, "Server Internal Error")
                }
                _ => self.reply_to(req, 481, "Call/Transaction Does Not Exist"),
            };
            self.start_invite_tx(req, branch);
            self.send_final(now, resp, out);
            self.retire_invite_tx();
            return;
        }
        if self.phase != Phase::Idle {
            // A second INVITE of this Call-ID while the first is under way.
            let resp = self.reply_to(req, 482, "Loop Detected");
            self.start_invite_tx(req, branch);
            self.send_final(now, resp, out);
            self.retire_invite_tx();
            return;
        }
        self.retire_invite_tx();
        self.start_invite_tx(req, branch);
        let trying = response_to(req, 100, "Trying", "");
        self.send_provisional(trying, out);
        let credentials = req
            .header("proxy-authorization")
            .and_then(digest::parse_credentials);
        let Some(credentials) = credentials.filter(|c| {
            c.realm == META_DOMAIN
                && c.nonce == self.nonce
                && c.opaque.as_ref().is_none_or(|o| *o == self.opaque)
        }) else {
            let stale = req.header("proxy-authorization").is_some();
            self.challenge(now, stale, out);
            self.back_to_idle(now);
            return;
        };
        match incoming_invite(req, self.transport) {
            Ok(invite) => {
                self.user_number = invite.user_number.clone();
                self.phase = Phase::Admitting;
                self.idle_until = None;
                out.push(Output::Admit {
                    invite: Box::new(invite),
                    credentials: Box::new(credentials),
                });
            }
            Err(refusal) => {
                self.refuse(now, &refusal, out);
                self.back_to_idle(now);
            }
        }
    }

    fn on_ack(&mut self, now: Instant, req: &SipMessage, branch: &str, out: &mut Vec<Output>) {
        let cseq = req.cseq().map(|(n, _)| n);
        if self.phase == Phase::Answered {
            if let Some(tx) = self
                .invite
                .as_mut()
                .filter(|tx| tx.final_status == Some(200) && Some(tx.cseq) == cseq)
            {
                // The 2xx's ACK: a transaction of its own, matched by CSeq.
                tx.resend = None;
                tx.ack_deadline = None;
                self.phase = Phase::Confirmed;
                if let Some(duration) = self.bye_after_ack.take() {
                    self.send_bye(now, duration, out);
                }
                return;
            }
        }
        // The ACK of a non-2xx final response shares the INVITE's branch.
        if let Some(tx) = self
            .invite
            .iter_mut()
            .chain(self.old_invites.iter_mut())
            .find(|tx| tx.branch == branch && tx.final_status.is_some_and(|s| s >= 300))
        {
            tx.resend = None;
            tx.ack_deadline = None;
        }
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        req: &SipMessage,
        branch: &str,
        after: &mut Vec<Output>,
    ) -> SipMessage {
        let matches = self.invite.as_ref().is_some_and(|tx| tx.branch == branch);
        if !matches {
            return self.reply_to(req, 481, "Call/Transaction Does Not Exist");
        }
        if self.phase == Phase::Ringing {
            // The INVITE's 487 follows the CANCEL's 200 (RFC 3261 §9.2).
            self.ring_until = None;
            let terminated = self.response(487, "Request Terminated");
            self.send_final(now, terminated, after);
            after.push(Output::Event(GatewayEvent::Hangup));
            self.enter_linger(now);
        }
        self.reply_to(req, 200, "OK")
    }

    fn on_bye(&mut self, now: Instant, req: &SipMessage, after: &mut Vec<Output>) -> SipMessage {
        match self.phase {
            Phase::Answered | Phase::Confirmed => {
                self.stop_invite_timers();
                self.bye_after_ack = None;
                after.push(Output::Event(GatewayEvent::Hangup));
                self.enter_linger(now);
                self.reply_to(req, 200, "OK")
            }
            // Both sides hung up at once.
            Phase::Terminating | Phase::Lingering => self.reply_to(req, 200, "OK"),
            _ => self.reply_to(req, 481, "Call/Transaction Does Not Exist"),
        }
    }

    // ---- responses (to our BYE) ----------------------------------------------------

    fn on_response(&mut self, now: Instant, msg: &SipMessage) {
        let branch = msg.top_via_branch().unwrap_or_default();
        let status = msg.status().unwrap_or(0);
        let Some(tx) = self.bye.as_mut().filter(|tx| tx.branch == branch) else {
            return;
        };
        if status < 200 {
            // Provisional: keep waiting, re-sending at T2 (RFC 3261 §17.1.2.2).
            if let Some(r) = tx.resend.as_mut() {
                r.interval = self.cfg.t2;
                r.at = now + self.cfg.t2;
            }
            return;
        }
        self.bye = None;
        self.enter_linger(now);
    }

    // ---- state helpers -------------------------------------------------------------

    fn start_invite_tx(&mut self, req: &SipMessage, branch: &str) {
        self.invite = Some(InviteTx {
            branch: branch.to_owned(),
            cseq: req.cseq().map_or(0, |(n, _)| n),
            request: req.clone(),
            last: None,
            final_status: None,
            resend: None,
            ack_deadline: None,
        });
    }

    /// The current INVITE transaction becomes an old one (still answering its
    /// retransmissions and taking its ACK); a few are kept.
    fn retire_invite_tx(&mut self) {
        if let Some(tx) = self.invite.take() {
            if self.old_invites.len() >= ANSWERED_KEPT {
                self.old_invites.remove(0);
            }
            self.old_invites.push(tx);
        }
    }

    /// Stops re-sending the 200 OK (its ACK may never come once the call ends).
    fn stop_invite_timers(&mut self) {
        if let Some(tx) = self.invite.as_mut() {
            tx.resend = None;
            tx.ack_deadline = None;
        }
    }

    fn back_to_idle(&mut self, now: Instant) {
        self.phase = Phase::Idle;
        self.idle_until = Some(now + self.cfg.linger.max(self.cfg.transaction_timeout()));
    }

    /// Keeps answering retransmissions a while after the call ended.
    fn enter_linger(&mut self, now: Instant) {
        self.phase = Phase::Lingering;
        self.linger_until = Some(now + self.cfg.linger.max(self.cfg.transaction_timeout()));
    }

    /// Where the business reaches the user of this call: the Request-URI's host, as the
    /// business addressed the gateway.
    fn contact(&self) -> String {
        let host = self
            .invite
            .as_ref()
            .and_then(|tx| request_uri(&tx.request))
            .map_or(self.via_sent_by.as_str(), uri_host);
        format!(
            "<sip:+{}@{host};transport={};ob>;isfocus",
            self.user_number,
            self.transport.as_str()
        )
    }
}

/// Header values from the engine or the business: a CR or LF would inject headers.
fn header_safe(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

fn new_branch(rng: &mut StdRng) -> String {
    // The z9hG4bK cookie marks an RFC 3261 branch.
    format!("z9hG4bK{:016x}{:08x}", rng.gen::<u64>(), rng.gen::<u32>())
}

#[allow(clippy::disallowed_methods, reason = "tests pick the origin of `now`")]
#[cfg(test)]
mod tests;
