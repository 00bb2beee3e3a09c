//! SIP signalling of calls between WhatsApp users and a business's SIP server.
//!
//! When a number's calling settings enable SIP, the emulator plays Meta's SIP gateway
//! (`wa.meta.vc`). For a user-initiated call it sends the INVITE (with the `x-wa-meta-*`
//! headers) to the configured server, answers the server's responses, and ends the call
//! with a BYE carrying `x-wa-meta-call-duration`. For a business-initiated call it
//! listens for the business's INVITE, challenges it with a 407 digest, rings the user,
//! and answers with SDP (or a refusal of cloud-api §8.6).
//!
//! # Layout
//! - `mod.rs`: [`SipEvent`] (what happened on a call) and [`UacConfig`] (RFC 3261 timers).
//! - [`message`]: parsing and rendering SIP text (pure).
//! - [`digest`]: answering 401/407 Digest challenges (pure).
//! - [`uac`]: the call's client state machine: transactions, timers, dialog (pure; time
//!   and randomness are inputs); its tests in `uac/tests.rs`.
//! - [`uas`]: the gateway's server state machine for one business-initiated call: the
//!   407 challenge, ringing, the user's answer, CANCEL, BYE (pure); its tests in
//!   `uas/tests.rs`.
//! - `listener`: the gateway's tokio shell: UDP and TCP on one port, TLS on another,
//!   connections, the clock; judged and heard by a `GatewayHost` (the server).
//! - `transport`: the UAC's tokio shell: a UDP socket or a TCP or TLS connection (the
//!   certificate checked with the `rustls::ClientConfig` the caller passes), the clock,
//!   the command channel (only with the `server` feature; the rest builds without tokio).
//! - `sipp_tests.rs`: the UAC against a real `sipp` (tests, `server` feature).
//!
//! What a call needs is not defined here: the engine describes it in
//! [`crate::domain::sip`] (the INVITE, the server, the transport). The caller starts a
//! call with `start_call` from the engine's [`SipInvite`](crate::domain::sip::SipInvite)
//! as is (and the TLS trust of `--sip-ca`), receives [`SipEvent`]s tagged with the wacid,
//! and hangs up through the returned `CallHandle`.

pub mod digest;
#[cfg(feature = "server")]
pub mod listener;
pub mod message;
#[cfg(feature = "server")]
pub mod transport;
pub mod uac;
pub mod uas;

#[cfg(all(test, feature = "server"))]
mod sipp_tests;

use std::time::Duration;

#[cfg(feature = "server")]
pub use transport::{start_call, start_call_with, CallHandle};

/// What happened on a call's signalling, in order. Exactly one of `Failed`, `TimedOut`,
/// `ByeFromServer` and `Ended` closes every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipEvent {
    /// Every SIP message sent or received (retransmissions included), for the admin log.
    Message {
        outgoing: bool,
        first_line: String,
        raw: String,
    },
    /// A provisional response (100/180/183…), reported once per status in a row.
    Provisional { status: u16 },
    /// The server answered (200 OK to INVITE; the ACK is already sent).
    Answered { sdp: String },
    /// A final non-2xx response after the one digest retry, e.g. 486, 480, 603, 5xx.
    Failed { status: u16, reason: String },
    /// No final response in time (Timer B or Timer C), or the transport failed.
    TimedOut,
    /// The business hung up; its BYE got our 200 OK.
    ByeFromServer,
    /// Our hang-up finished: the BYE got its response (or timed out), or the CANCEL ended
    /// the unanswered call.
    Ended,
}

/// Timers of RFC 3261 §17, adjustable so tests run fast. The gateway's server side
/// ([`uas`]) uses them too: `timer_c` caps how long a business's call may ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UacConfig {
    /// RTT estimate; retransmissions start at T1 and double. Timer B and F are 64·T1.
    pub t1: Duration,
    /// Cap of non-INVITE retransmission intervals.
    pub t2: Duration,
    /// How long a ringing INVITE may wait for a final response before we CANCEL it.
    pub timer_c: Duration,
    /// How long a finished call keeps its socket or connection, to absorb retransmissions
    /// (re-ACK a repeated final response, re-answer a repeated BYE) and close cleanly.
    pub linger: Duration,
}

impl Default for UacConfig {
    fn default() -> Self {
        UacConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            timer_c: Duration::from_secs(180),
            linger: Duration::from_secs(32),
        }
    }
}

impl UacConfig {
    /// Timer B (INVITE) and Timer F (non-INVITE): 64·T1.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }
}
