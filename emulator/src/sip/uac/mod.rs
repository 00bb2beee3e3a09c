//! The client side of one call, as a pure state machine (RFC 3261 §13, §15, §17.1).
//!
//! [`Uac`] never touches a socket or the clock: the shell feeds it received messages,
//! hang-up commands, transport failures and the current time, and carries out the
//! [`Output`]s (messages to send, events to report). [`Uac::next_deadline`] says when it
//! next needs [`Uac::on_timeout`]. That keeps retransmission and timeout behaviour
//! testable to the millisecond without waiting.
//!
//! One state machine in one file (about 900 lines): the INVITE and non-INVITE
//! transactions, the dialog and the digest retry share its state, and read best side by
//! side. Its tests are in `tests.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::digest::{self, ClientNonce};
use super::message::{response_to, uri_of, SipMessage, StartLine};
use super::{SipEvent, UacConfig};
use crate::domain::sip::{SipInvite, SipTransport};

/// Meta's gateway identifies itself with this.
pub const USER_AGENT: &str = "Facebook SipGateway";
/// The methods Meta's INVITE advertises.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, NOTIFY, OPTIONS";
/// Host of the WhatsApp user's SIP address, and the `X-FB-External-Domain` value.
pub const META_DOMAIN: &str = "wa.meta.vc";

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message text to the server.
    Send(String),
    /// Report this event to the caller.
    Event(SipEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InviteState {
    /// Sent, no response yet: retransmitting (UDP), Timer B running.
    Calling,
    /// A provisional response arrived: Timer C running.
    Proceeding,
    /// A final non-2xx arrived and was ACKed.
    Completed,
    /// A 2xx arrived and was ACKed.
    Accepted,
}

struct InviteTx {
    branch: String,
    cseq: u32,
    request: SipMessage,
    rendered: String,
    state: InviteState,
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer B while Calling, Timer C while Proceeding.
    timeout_at: Option<Instant>,
    /// The ACK of a non-2xx final response, re-sent when that response is repeated.
    ack: Option<String>,
}

struct NonInviteTx {
    method: &'static str,
    branch: String,
    rendered: String,
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer F.
    timeout_at: Instant,
    auth_retried: bool,
    /// The call duration a BYE carries, kept for a challenged BYE's retry.
    duration: u64,
}

struct Dialog {
    /// The To header of the 2xx (with the server's tag): our To from now on.
    remote_to: String,
    remote_target: String,
    route_set: Vec<String>,
    ack: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Inviting,
    Confirmed,
    /// Our BYE is out.
    Terminating,
    /// The call is over; still answering retransmissions until `linger_until`.
    Lingering,
    Done,
}

/// One outgoing call's signalling state.
pub struct Uac {
    cfg: UacConfig,
    transport: SipTransport,
    rng: StdRng,
    params: SipInvite,
    request_uri: String,
    from: String,
    to: String,
    contact: String,
    call_id: String,
    local_tag: String,
    via_sent_by: String,
    cseq: u32,
    invite: Option<InviteTx>,
    /// Challenged INVITE transactions, to re-ACK a repeated 401/407.
    old_invites: Vec<InviteTx>,
    /// Credentials of the current INVITE; its 2xx ACK carries them too.
    invite_auth: Option<(&'static str, String)>,
    non_invite: Vec<NonInviteTx>,
    dialog: Option<Dialog>,
    phase: Phase,
    hangup: Option<u64>,
    cancel_sent: bool,
    auth_retried: bool,
    last_provisional: Option<u16>,
    /// A closing event (Failed, TimedOut, ByeFromServer, Ended) was reported.
    closed: bool,
    linger_until: Option<Instant>,
    give_up_at: Option<Instant>,
}

/// `host` or `[v6]`, with `:port` when given.
fn host_port(host: &str, port: Option<u16>) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// The port a SIP URI without one means: 5061 for TLS, 5060 otherwise.
fn default_port(transport: SipTransport) -> u16 {
    match transport {
        SipTransport::Tls => 5061,
        SipTransport::Udp | SipTransport::Tcp => 5060,
    }
}

/// Header values come from API input: a CR or LF would inject headers.
fn header_safe(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

impl Uac {
    /// `local` is the address the server sees us at (for Via and Contact); `seed` makes
    /// tags, branches and nonces reproducible in tests.
    pub fn new(params: SipInvite, cfg: UacConfig, local: SocketAddr, seed: u64) -> Uac {
        let mut rng = StdRng::seed_from_u64(seed);
        let server = &params.server;
        let transport = server.transport;
        let mut user_part = format!("+{}", params.business_number);
        for (k, v) in &server.request_uri_user_params {
            user_part.push(';');
            user_part.push_str(k);
            if !v.is_empty() {
                user_part.push('=');
                user_part.push_str(v);
            }
        }
        // Meta writes `sip:+1555@host;transport=tls` (cloud-api §8.4): the port only when
        // it is not the transport's default (RFC 3261 §19.1.2).
        let port = (server.port != default_port(transport)).then_some(server.port);
        let mut request_uri = format!(
            "sip:{}@{}",
            header_safe(&user_part),
            host_port(&server.hostname, port)
        );
        if transport != SipTransport::Udp {
            request_uri.push_str(&format!(";transport={}", transport.as_str()));
        }
        let local_tag = uuid_like(&mut rng);
        let user = &params.user_number;
        let from = format!("\"{user}\" <sip:+{user}@{META_DOMAIN}>;tag={local_tag}");
        let to = format!(
            "<sip:+{}@{}>",
            params.business_number,
            host_port(&server.hostname, None)
        );
        let via_sent_by = host_port(&local.ip().to_string(), Some(local.port()));
        let contact = format!(
            "<sip:+{user}@{via_sent_by};transport={};ob>",
            transport.as_str()
        );
        let call_id = format!("outgoing:{}", params.call_id);
        let cseq = rng.gen_range(1..10_000);
        Uac {
            cfg,
            transport,
            rng,
            params,
            request_uri,
            from,
            to,
            contact,
            call_id,
            local_tag,
            via_sent_by,
            cseq,
            invite: None,
            old_invites: Vec::new(),
            invite_auth: None,
            non_invite: Vec::new(),
            dialog: None,
            phase: Phase::Inviting,
            hangup: None,
            cancel_sent: false,
            auth_retried: false,
            last_provisional: None,
            closed: false,
            linger_until: None,
            give_up_at: None,
        }
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn request_uri(&self) -> &str {
        &self.request_uri
    }

    /// The call is over and nothing more will be sent: the shell may drop the socket.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Sends the first INVITE.
    pub fn start(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.invite.is_none() {
            self.send_invite(now, &mut out);
        }
        out
    }

    /// When [`Uac::on_timeout`] must next run, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.phase == Phase::Done {
            return None;
        }
        let invite = self
            .invite
            .iter()
            .flat_map(|tx| [tx.retransmit_at, tx.timeout_at]);
        let non_invite = self
            .non_invite
            .iter()
            .flat_map(|tx| [tx.retransmit_at, Some(tx.timeout_at)]);
        invite
            .chain(non_invite)
            .chain([self.give_up_at, self.linger_until])
            .flatten()
            .min()
    }

    /// The user hung up after `duration_secs` of conversation.
    pub fn hangup(&mut self, now: Instant, duration_secs: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.hangup.is_some() {
            return out;
        }
        self.hangup = Some(duration_secs);
        match self.phase {
            Phase::Inviting => {
                // Before any provisional response a CANCEL must wait (RFC 3261 §9.1).
                if self.invite_state() == Some(InviteState::Proceeding) {
                    self.send_cancel(now, &mut out);
                }
            }
            Phase::Confirmed => self.send_bye(now, duration_secs, None, &mut out),
            Phase::Terminating | Phase::Lingering | Phase::Done => {}
        }
        out
    }

    /// The connection broke or the server is unreachable.
    pub fn on_transport_error(&mut self, _now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match self.phase {
            Phase::Inviting => {
                self.close(self.unfinished_outcome(), &mut out);
                self.phase = Phase::Done;
            }
            Phase::Terminating => {
                self.close(SipEvent::Ended, &mut out);
                self.phase = Phase::Done;
            }
            Phase::Lingering => self.phase = Phase::Done,
            // An established call survives until someone hangs up; the shell reconnects
            // (TCP, TLS) to send the BYE.
            Phase::Confirmed | Phase::Done => {}
        }
        out
    }

    /// Runs every timer that is due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        self.invite_timers(now, &mut out);
        self.non_invite_timers(now, &mut out);
        if self.give_up_at.is_some_and(|t| t <= now) {
            self.give_up_at = None;
            self.close(self.unfinished_outcome(), &mut out);
            self.phase = Phase::Done;
        }
        if self.linger_until.is_some_and(|t| t <= now) {
            self.linger_until = None;
            self.phase = Phase::Done;
        }
        out
    }

    /// A message arrived from the server.
    pub fn on_message(&mut self, now: Instant, msg: &SipMessage) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        if msg.status().is_some() {
            self.on_response(now, msg, &mut out);
        } else {
            self.on_request(now, msg, &mut out);
        }
        out
    }

    // ---- INVITE transaction -------------------------------------------------------

    fn invite_state(&self) -> Option<InviteState> {
        self.invite.as_ref().map(|tx| tx.state)
    }

    fn send_invite(&mut self, now: Instant, out: &mut Vec<Output>) {
        let branch = self.new_branch();
        let p = &self.params;
        let mut req = SipMessage::request("INVITE", &self.request_uri)
            .with("Via", self.via(&branch))
            .with("Max-Forwards", "70")
            .with("From", self.from.clone())
            .with("To", self.to.clone())
            .with("Contact", self.contact.clone())
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{} INVITE", self.cseq))
            .with("X-FB-External-Domain", META_DOMAIN)
            .with("Allow", ALLOW)
            .with("User-Agent", USER_AGENT);
        if let Some((name, value)) = &self.invite_auth {
            req.push(name, value.clone());
        }
        req.push("x-wa-meta-wacid", header_safe(p.call_id.as_str()));
        req.push("x-wa-meta-phone-number-id", header_safe(&p.phone_number_id));
        let optional = [
            ("x-wa-meta-user-id", &p.user_id),
            (p.header_names.parent_user_id.as_str(), &p.parent_user_id),
            (p.header_names.username.as_str(), &p.username),
            ("x-wa-meta-cta-payload", &p.cta_payload),
            ("x-wa-meta-deeplink-payload", &p.deeplink_payload),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                req.push(name, header_safe(value));
            }
        }
        req.push("Content-Type", "application/sdp");
        req.body = p.sdp_offer.clone();
        let rendered = req.render();
        let reliable = self.transport.is_reliable();
        self.invite = Some(InviteTx {
            branch,
            cseq: self.cseq,
            request: req,
            rendered: rendered.clone(),
            state: InviteState::Calling,
            retransmit_at: (!reliable).then(|| now + self.cfg.t1),
            interval: self.cfg.t1,
            timeout_at: Some(now + self.cfg.transaction_timeout()),
            ack: None,
        });
        out.push(Output::Send(rendered));
    }

    fn invite_timers(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(tx) = self.invite.as_mut() else {
            return;
        };
        match tx.state {
            InviteState::Calling => {
                if tx.timeout_at.is_some_and(|t| t <= now) {
                    // Timer B: the server never answered.
                    tx.timeout_at = None;
                    tx.retransmit_at = None;
                    tx.state = InviteState::Completed;
                    self.close(self.unfinished_outcome(), out);
                    self.phase = Phase::Done;
                } else if tx.retransmit_at.is_some_and(|t| t <= now) {
                    // Timer A doubles without a cap (RFC 3261 §17.1.1.2).
                    tx.interval *= 2;
                    tx.retransmit_at = Some(now + tx.interval);
                    out.push(Output::Send(tx.rendered.clone()));
                }
            }
            InviteState::Proceeding => {
                if tx.timeout_at.is_some_and(|t| t <= now) {
                    // Timer C: ringing too long; give the server a CANCEL and stop waiting
                    // for it after one more transaction timeout.
                    tx.timeout_at = None;
                    if !self.cancel_sent {
                        self.send_cancel(now, out);
                    }
                    self.close(self.unfinished_outcome(), out);
                    self.give_up_at = Some(now + self.cfg.transaction_timeout());
                }
            }
            InviteState::Completed | InviteState::Accepted => {}
        }
    }

    fn on_invite_response(&mut self, now: Instant, msg: &SipMessage, out: &mut Vec<Output>) {
        let status = msg.status().unwrap_or(0);
        let Some(tx) = self.invite.as_mut() else {
            return;
        };
        let state = tx.state;
        match status {
            100..=199 => {
                if !matches!(state, InviteState::Calling | InviteState::Proceeding) {
                    return;
                }
                if state == InviteState::Calling {
                    tx.state = InviteState::Proceeding;
                    tx.retransmit_at = None;
                    tx.timeout_at = Some(now + self.cfg.timer_c);
                }
                if self.last_provisional != Some(status) && !self.closed {
                    self.last_provisional = Some(status);
                    out.push(Output::Event(SipEvent::Provisional { status }));
                }
                if self.hangup.is_some() && !self.cancel_sent {
                    self.send_cancel(now, out);
                }
            }
            200..=299 => match state {
                InviteState::Calling | InviteState::Proceeding => {
                    tx.state = InviteState::Accepted;
                    tx.retransmit_at = None;
                    tx.timeout_at = None;
                    self.give_up_at = None;
                    self.accept(msg, out);
                    if self.closed || self.hangup.is_some() {
                        // Answered after the user hung up or we gave up: end it at once.
                        let duration = self.hangup.unwrap_or(0);
                        self.send_bye(now, duration, None, out);
                    } else {
                        self.phase = Phase::Confirmed;
                        out.push(Output::Event(SipEvent::Answered {
                            sdp: msg.body.clone(),
                        }));
                    }
                }
                InviteState::Accepted => {
                    // A repeated 2xx means our ACK was lost.
                    if let Some(d) = &self.dialog {
                        out.push(Output::Send(d.ack.clone()));
                    }
                }
                InviteState::Completed => {}
            },
            _ => match state {
                InviteState::Calling | InviteState::Proceeding => {
                    tx.state = InviteState::Completed;
                    tx.retransmit_at = None;
                    tx.timeout_at = None;
                    let ack = self.ack_for_failure(msg);
                    out.push(Output::Send(ack.clone()));
                    if let Some(tx) = self.invite.as_mut() {
                        tx.ack = Some(ack);
                    }
                    if self.try_auth_retry(now, msg, out) {
                        return;
                    }
                    let event = if self.hangup.is_some() {
                        SipEvent::Ended
                    } else {
                        SipEvent::Failed {
                            status,
                            reason: reason_of(msg),
                        }
                    };
                    self.close(event, out);
                    self.enter_linger(now);
                }
                InviteState::Completed => {
                    if let Some(ack) = &tx.ack {
                        out.push(Output::Send(ack.clone()));
                    }
                }
                InviteState::Accepted => {}
            },
        }
    }

    /// Answers a 401/407 once with credentials; `true` when a new INVITE went out.
    fn try_auth_retry(&mut self, now: Instant, msg: &SipMessage, out: &mut Vec<Output>) -> bool {
        let status = msg.status().unwrap_or(0);
        if !matches!(status, 401 | 407) || self.auth_retried || self.hangup.is_some() {
            return false;
        }
        let body = self.params.sdp_offer.clone();
        let Some(auth) = self.answer_challenge(msg, "INVITE", &body) else {
            return false;
        };
        self.auth_retried = true;
        self.invite_auth = Some(auth);
        if let Some(old) = self.invite.take() {
            self.old_invites.push(old);
        }
        self.cseq += 1;
        self.last_provisional = None;
        self.send_invite(now, out);
        true
    }

    /// The credentials header answering the first usable challenge of a 401/407.
    fn answer_challenge(
        &mut self,
        msg: &SipMessage,
        method: &str,
        body: &str,
    ) -> Option<(&'static str, String)> {
        let (challenge_header, answer_header) = match msg.status() {
            Some(407) => ("proxy-authenticate", "Proxy-Authorization"),
            _ => ("www-authenticate", "Authorization"),
        };
        let challenges: Vec<_> = msg
            .headers_named(challenge_header)
            .filter_map(digest::parse_challenge)
            .collect();
        for ch in challenges {
            let client = ClientNonce {
                cnonce: format!("{:016x}", self.rng.gen::<u64>()),
                nc: 1,
            };
            let uri = self.request_uri.clone();
            if let Ok(value) = digest::authorization(
                &ch,
                &self.params.digest_username,
                &self.params.digest_password,
                method,
                &uri,
                body,
                &client,
            ) {
                return Some((answer_header, value));
            }
        }
        None
    }

    /// ACK of a non-2xx final response: same branch and Request-URI as the INVITE
    /// (RFC 3261 §17.1.1.3).
    fn ack_for_failure(&self, resp: &SipMessage) -> String {
        let Some(tx) = &self.invite else {
            return String::new();
        };
        let via = tx.request.header("via").unwrap_or_default();
        SipMessage::request("ACK", &self.request_uri)
            .with("Via", via)
            .with("Max-Forwards", "70")
            .with("From", self.from.clone())
            .with("To", resp.header("to").unwrap_or(&self.to))
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{} ACK", tx.cseq))
            .render()
    }

    /// Sets up the dialog from a 2xx and sends its ACK (a new transaction, to the remote
    /// target, RFC 3261 §13.2.2.4).
    fn accept(&mut self, resp: &SipMessage, out: &mut Vec<Output>) {
        let remote_to = resp.header("to").unwrap_or(&self.to).to_owned();
        let remote_target = resp
            .header("contact")
            .map(uri_of)
            .filter(|u| !u.is_empty())
            .unwrap_or(&self.request_uri)
            .to_owned();
        let mut route_set: Vec<String> = resp
            .header_values("record-route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        let cseq = self.invite.as_ref().map_or(self.cseq, |tx| tx.cseq);
        let branch = self.new_branch();
        let mut ack = SipMessage::request("ACK", &remote_target).with("Via", self.via(&branch));
        for route in &route_set {
            ack.push("Route", route.clone());
        }
        ack.push("Max-Forwards", "70");
        ack.push("From", self.from.clone());
        ack.push("To", remote_to.clone());
        ack.push("Call-ID", self.call_id.clone());
        ack.push("CSeq", format!("{cseq} ACK"));
        if let Some((name, value)) = &self.invite_auth {
            ack.push(name, value.clone());
        }
        let ack = ack.render();
        out.push(Output::Send(ack.clone()));
        self.dialog = Some(Dialog {
            remote_to,
            remote_target,
            route_set,
            ack,
        });
    }

    // ---- non-INVITE transactions (CANCEL, BYE) -----------------------------------

    fn send_cancel(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(tx) = &self.invite else {
            return;
        };
        let via = tx.request.header("via").unwrap_or_default().to_owned();
        let cancel = SipMessage::request("CANCEL", &self.request_uri)
            .with("Via", via)
            .with("Max-Forwards", "70")
            .with("From", self.from.clone())
            .with("To", self.to.clone())
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{} CANCEL", tx.cseq))
            .with("User-Agent", USER_AGENT);
        let branch = tx.branch.clone();
        self.cancel_sent = true;
        self.start_non_invite(now, "CANCEL", branch, cancel.render(), 0, false, out);
    }

    fn send_bye(
        &mut self,
        now: Instant,
        duration: u64,
        auth: Option<(&'static str, String)>,
        out: &mut Vec<Output>,
    ) {
        if self.dialog.is_none() {
            return;
        }
        self.cseq += 1;
        let branch = self.new_branch();
        let Some(dialog) = &self.dialog else {
            return;
        };
        let mut bye =
            SipMessage::request("BYE", &dialog.remote_target).with("Via", self.via(&branch));
        for route in &dialog.route_set {
            bye.push("Route", route.clone());
        }
        bye.push("Max-Forwards", "70");
        bye.push("From", self.from.clone());
        bye.push("To", dialog.remote_to.clone());
        bye.push("Call-ID", self.call_id.clone());
        bye.push("CSeq", format!("{} BYE", self.cseq));
        bye.push("User-Agent", USER_AGENT);
        let retried = auth.is_some();
        if let Some((name, value)) = auth {
            bye.push(name, value);
        }
        bye.push("x-wa-meta-wacid", header_safe(self.params.call_id.as_str()));
        bye.push("x-wa-meta-call-duration", duration.to_string());
        self.phase = Phase::Terminating;
        self.start_non_invite(now, "BYE", branch, bye.render(), duration, retried, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn start_non_invite(
        &mut self,
        now: Instant,
        method: &'static str,
        branch: String,
        rendered: String,
        duration: u64,
        auth_retried: bool,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::Send(rendered.clone()));
        self.non_invite.push(NonInviteTx {
            method,
            branch,
            rendered,
            retransmit_at: (!self.transport.is_reliable()).then(|| now + self.cfg.t1),
            interval: self.cfg.t1,
            timeout_at: now + self.cfg.transaction_timeout(),
            auth_retried,
            duration,
        });
    }

    fn non_invite_timers(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut expired = Vec::new();
        for tx in &mut self.non_invite {
            if tx.timeout_at <= now {
                expired.push(tx.method);
            } else if tx.retransmit_at.is_some_and(|t| t <= now) {
                // Timer E doubles up to T2 (RFC 3261 §17.1.2.2).
                tx.interval = (tx.interval * 2).min(self.cfg.t2);
                tx.retransmit_at = Some(now + tx.interval);
                out.push(Output::Send(tx.rendered.clone()));
            }
        }
        self.non_invite.retain(|tx| tx.timeout_at > now);
        if expired.contains(&"BYE") {
            // Timer F: the server never confirmed our BYE; the call is over regardless.
            self.close(SipEvent::Ended, out);
            self.phase = Phase::Done;
        }
    }

    fn on_non_invite_response(
        &mut self,
        now: Instant,
        index: usize,
        msg: &SipMessage,
        out: &mut Vec<Output>,
    ) {
        let status = msg.status().unwrap_or(0);
        if status < 200 {
            let reliable = self.transport.is_reliable();
            let tx = &mut self.non_invite[index];
            tx.interval = self.cfg.t2;
            tx.retransmit_at = (!reliable).then(|| now + self.cfg.t2);
            return;
        }
        let tx = self.non_invite.remove(index);
        if tx.method != "BYE" {
            // A CANCEL's answer changes nothing: the INVITE's 487 (or 2xx) decides.
            return;
        }
        if matches!(status, 401 | 407) && !tx.auth_retried {
            if let Some(auth) = self.answer_challenge(msg, "BYE", "") {
                self.send_bye(now, tx.duration, Some(auth), out);
                return;
            }
        }
        self.close(SipEvent::Ended, out);
        self.enter_linger(now);
    }

    // ---- dispatch ------------------------------------------------------------------

    fn on_response(&mut self, now: Instant, msg: &SipMessage, out: &mut Vec<Output>) {
        let Some((_, method)) = msg.cseq() else {
            return;
        };
        let branch = msg.top_via_branch().unwrap_or_default();
        if method == "INVITE" {
            if self.invite.as_ref().is_some_and(|tx| tx.branch == branch) {
                self.on_invite_response(now, msg, out);
            } else if msg.status().is_some_and(|s| s >= 300) {
                // A repeated challenge of an earlier INVITE: its ACK was lost.
                if let Some(ack) = self
                    .old_invites
                    .iter()
                    .find(|tx| tx.branch == branch)
                    .and_then(|tx| tx.ack.clone())
                {
                    out.push(Output::Send(ack));
                }
            }
            return;
        }
        if let Some(index) = self
            .non_invite
            .iter()
            .position(|tx| tx.branch == branch && tx.method == method)
        {
            self.on_non_invite_response(now, index, msg, out);
        }
    }

    fn on_request(&mut self, now: Instant, req: &SipMessage, out: &mut Vec<Output>) {
        let method = req.method().unwrap_or_default().to_ascii_uppercase();
        if method == "ACK" {
            return;
        }
        let tag = self.local_tag.clone();
        let reply = |status: u16, reason: &str| response_to(req, status, reason, &tag);
        if req.call_id() != Some(self.call_id.as_str()) {
            let resp = reply(481, "Call/Transaction Does Not Exist");
            out.push(Output::Send(resp.render()));
            return;
        }
        let resp = match method.as_str() {
            "BYE" => match self.phase {
                Phase::Confirmed => {
                    out.push(Output::Send(reply(200, "OK").render()));
                    self.close(SipEvent::ByeFromServer, out);
                    self.enter_linger(now);
                    return;
                }
                // Both sides hung up at once, or the server repeats its BYE.
                Phase::Terminating | Phase::Lingering => reply(200, "OK"),
                Phase::Inviting | Phase::Done => reply(481, "Call/Transaction Does Not Exist"),
            },
            // Meta's gateway does not support re-INVITE.
            "INVITE" => reply(500, "Server Internal Error"),
            "OPTIONS" => reply(200, "OK").with("Allow", ALLOW),
            "NOTIFY" => reply(200, "OK"),
            "CANCEL" => reply(481, "Call/Transaction Does Not Exist"),
            _ => reply(405, "Method Not Allowed").with("Allow", ALLOW),
        };
        out.push(Output::Send(resp.render()));
    }

    // ---- helpers -------------------------------------------------------------------

    /// The closing event of a call that never got a final answer.
    fn unfinished_outcome(&self) -> SipEvent {
        if self.hangup.is_some() {
            SipEvent::Ended
        } else {
            SipEvent::TimedOut
        }
    }

    fn close(&mut self, event: SipEvent, out: &mut Vec<Output>) {
        if !self.closed {
            self.closed = true;
            out.push(Output::Event(event));
        }
    }

    /// Keeps the socket (UDP) or connection (TCP, TLS) a while: retransmissions get answered,
    /// and servers that treat a connection closed right after the last response as an
    /// aborted call (sipp does) see a clean end.
    fn enter_linger(&mut self, now: Instant) {
        if self.cfg.linger.is_zero() {
            self.phase = Phase::Done;
        } else {
            self.phase = Phase::Lingering;
            self.linger_until = Some(now + self.cfg.linger);
        }
    }

    fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};rport;branch={branch}",
            self.transport.via_token(),
            self.via_sent_by
        )
    }

    fn new_branch(&mut self) -> String {
        // The z9hG4bK cookie marks an RFC 3261 branch.
        format!(
            "z9hG4bK{:016x}{:08x}",
            self.rng.gen::<u64>(),
            self.rng.gen::<u32>()
        )
    }
}

fn reason_of(msg: &SipMessage) -> String {
    match &msg.start {
        StartLine::Response { reason, .. } => reason.clone(),
        StartLine::Request { .. } => String::new(),
    }
}

/// A tag shaped like Meta's (`bbf1ad6e-79bb-4d9c-8a2c-094168a10bea`).
fn uuid_like(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.gen();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[allow(clippy::disallowed_methods, reason = "tests pick the origin of `now`")]
#[cfg(test)]
mod tests;
