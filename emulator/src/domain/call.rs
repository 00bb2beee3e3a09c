//! Calls and their state machine.
//!
//! [`decide`] is the whole state machine: a pure function of the call's direction and
//! state and an action, answering the next state or why the action cannot apply. The
//! core applies its answer and emits the webhooks that go with it.

use super::ids::{CallId, MessageId, PhoneNumberId, WaId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    UserInitiated,
    BusinessInitiated,
}

impl Direction {
    pub fn wire(self) -> &'static str {
        match self {
            Direction::UserInitiated => "USER_INITIATED",
            Direction::BusinessInitiated => "BUSINESS_INITIATED",
        }
    }
}

/// Where a user-initiated call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A `voice_call` button in an interactive message or a template.
    Button,
    /// A `wa.me/call/<number>` link.
    DeepLink,
    /// The call icon in the chat or the business profile.
    Native,
    /// The business called (`/calls` `connect`).
    Business,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// User-initiated: waiting for the business. Business-initiated: the user's phone rings.
    Ringing,
    /// User-initiated: the business pre-accepted (media may be set up), not yet accepted.
    PreAccepted,
    /// Picked up; the duration runs.
    Active,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Picked up, then ended by either side.
    Completed,
    RejectedByBusiness,
    DeclinedByUser,
    /// The caller hung up before the call was picked up.
    CancelledByUser,
    /// The business terminated before the call was picked up.
    TerminatedBeforeAnswer,
    /// Nobody picked up within the ring window.
    Unanswered,
    /// The business's SIP server answered with a final failure (status code).
    SipFailure(u16),
    /// The client reported a calling error (138019–138023: setup, relay, media).
    Failed(u32),
}

impl EndReason {
    pub fn picked_up(&self) -> bool {
        matches!(self, EndReason::Completed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    PreAccept,
    Accept,
    Reject,
    Terminate,
    UserHangup,
    UserAnswer,
    UserDecline,
    RingTimeout,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::PreAccept,
        Action::Accept,
        Action::Reject,
        Action::Terminate,
        Action::UserHangup,
        Action::UserAnswer,
        Action::UserDecline,
        Action::RingTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::PreAccept => "pre_accept",
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Terminate => "terminate",
            Action::UserHangup => "hangup",
            Action::UserAnswer => "answer",
            Action::UserDecline => "decline",
            Action::RingTimeout => "ring timeout",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Move to this state.
    Go(CallState),
    /// The call ends for this reason.
    End(EndReason),
    /// Nothing happens (a timer that fired after the call moved on).
    Ignore,
    /// The action does not apply; the text says why.
    Refuse(&'static str),
}

/// The call state machine.
pub fn decide(direction: Direction, state: CallState, action: Action) -> Decision {
    use Action::*;
    use CallState::*;
    use Decision::*;
    use Direction::*;
    match (state, action) {
        (Ended, RingTimeout) => Ignore,
        (Ended, _) => Refuse("the call has already ended"),
        (Active, RingTimeout) => Ignore,
        (_, Terminate) | (Active, UserHangup) if state == Active => End(EndReason::Completed),
        (_, Terminate) => End(EndReason::TerminatedBeforeAnswer),
        (_, RingTimeout) => End(EndReason::Unanswered),
        (Active, PreAccept | Accept) => Refuse("the call has already been accepted"),
        (Active, Reject) => Refuse("the call has already been accepted; use terminate to end it"),
        (Active, UserAnswer | UserDecline) => Refuse("the call has already been answered"),
        (_, PreAccept | Accept | Reject) if direction == BusinessInitiated => {
            Refuse("pre_accept, accept and reject apply to user-initiated calls; this call was initiated by the business")
        }
        (PreAccepted, PreAccept) => Refuse("the call has already been pre-accepted"),
        (Ringing, PreAccept) => Go(PreAccepted),
        (Ringing | PreAccepted, Accept) => Go(Active),
        (Ringing | PreAccepted, Reject) => End(EndReason::RejectedByBusiness),
        (_, UserAnswer | UserDecline) if direction == UserInitiated => {
            Refuse("answer and decline apply to business-initiated calls; the user placed this call")
        }
        (_, UserAnswer) => Go(Active),
        (_, UserDecline) => End(EndReason::DeclinedByUser),
        (_, UserHangup) if direction == BusinessInitiated => End(EndReason::DeclinedByUser),
        (_, UserHangup) => End(EndReason::CancelledByUser),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub phone_number_id: PhoneNumberId,
    pub wa_id: WaId,
    pub direction: Direction,
    pub source: Source,
    pub state: CallState,
    pub created_at_ms: u64,
    pub answered_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    pub end_reason: Option<EndReason>,
    /// What the connect and terminate webhooks echo (already filtered by the version rule).
    pub cta_payload: Option<String>,
    pub deeplink_payload: Option<String>,
    /// What the business attached (before the version rule), for the inspector.
    pub payload_sent: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    pub offer_sdp: String,
    pub answer_sdp: Option<String>,
    pub message_id: Option<MessageId>,
    /// Signalled over SIP instead of webhooks.
    pub via_sip: bool,
    /// The user's media endpoint, once the business's SDP could connect to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<CallMedia>,
}

/// What the call knows of its media path (the endpoint itself lives in the shell).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMedia {
    /// Audio from the business has arrived.
    pub flowing: bool,
    /// The business's audio stopped after flowing (no packet for a second) and has not
    /// come again: the mid-call timer runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
    /// Why the media path failed (fingerprint, DTLS, no audio), when it did.
    pub failure: Option<String>,
}

impl Call {
    /// A call that has just started ringing; the caller fills in what its kind needs.
    pub fn ringing(
        id: CallId,
        phone_number_id: PhoneNumberId,
        wa_id: WaId,
        direction: Direction,
        source: Source,
        now_ms: u64,
        offer_sdp: String,
    ) -> Self {
        Self {
            id,
            phone_number_id,
            wa_id,
            direction,
            source,
            state: CallState::Ringing,
            created_at_ms: now_ms,
            answered_at_ms: None,
            ended_at_ms: None,
            end_reason: None,
            cta_payload: None,
            deeplink_payload: None,
            payload_sent: None,
            biz_opaque_callback_data: None,
            offer_sdp,
            answer_sdp: None,
            message_id: None,
            via_sip: false,
            media: None,
        }
    }

    pub fn is_ongoing(&self) -> bool {
        self.state != CallState::Ended
    }

    /// Whole seconds between pick-up and end, when picked up.
    pub fn duration_secs(&self) -> Option<u64> {
        match (self.answered_at_ms, self.ended_at_ms) {
            (Some(a), Some(e)) => Some(e.saturating_sub(a) / 1000),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use CallState::*;
    use Decision::*;
    use Direction::*;

    /// Every state × every action, for both directions: the table the product promises.
    #[test]
    fn state_machine_table() {
        let r = |s| Refuse(s);
        let only_user = "pre_accept, accept and reject apply to user-initiated calls; this call was initiated by the business";
        let only_biz =
            "answer and decline apply to business-initiated calls; the user placed this call";
        let ended = "the call has already ended";
        #[rustfmt::skip]
        let table: Vec<(Direction, CallState, Action, Decision)> = vec![
            (UserInitiated, Ringing, PreAccept, Go(PreAccepted)),
            (UserInitiated, Ringing, Accept, Go(Active)),
            (UserInitiated, Ringing, Reject, End(EndReason::RejectedByBusiness)),
            (UserInitiated, Ringing, Terminate, End(EndReason::TerminatedBeforeAnswer)),
            (UserInitiated, Ringing, UserHangup, End(EndReason::CancelledByUser)),
            (UserInitiated, Ringing, UserAnswer, r(only_biz)),
            (UserInitiated, Ringing, UserDecline, r(only_biz)),
            (UserInitiated, Ringing, RingTimeout, End(EndReason::Unanswered)),
            (UserInitiated, PreAccepted, PreAccept, r("the call has already been pre-accepted")),
            (UserInitiated, PreAccepted, Accept, Go(Active)),
            (UserInitiated, PreAccepted, Reject, End(EndReason::RejectedByBusiness)),
            (UserInitiated, PreAccepted, Terminate, End(EndReason::TerminatedBeforeAnswer)),
            (UserInitiated, PreAccepted, UserHangup, End(EndReason::CancelledByUser)),
            (UserInitiated, PreAccepted, UserAnswer, r(only_biz)),
            (UserInitiated, PreAccepted, UserDecline, r(only_biz)),
            (UserInitiated, PreAccepted, RingTimeout, End(EndReason::Unanswered)),
            (UserInitiated, Active, PreAccept, r("the call has already been accepted")),
            (UserInitiated, Active, Accept, r("the call has already been accepted")),
            (UserInitiated, Active, Reject, r("the call has already been accepted; use terminate to end it")),
            (UserInitiated, Active, Terminate, End(EndReason::Completed)),
            (UserInitiated, Active, UserHangup, End(EndReason::Completed)),
            (UserInitiated, Active, UserAnswer, r("the call has already been answered")),
            (UserInitiated, Active, UserDecline, r("the call has already been answered")),
            (UserInitiated, Active, RingTimeout, Ignore),
            (BusinessInitiated, Ringing, PreAccept, r(only_user)),
            (BusinessInitiated, Ringing, Accept, r(only_user)),
            (BusinessInitiated, Ringing, Reject, r(only_user)),
            (BusinessInitiated, Ringing, Terminate, End(EndReason::TerminatedBeforeAnswer)),
            (BusinessInitiated, Ringing, UserHangup, End(EndReason::DeclinedByUser)),
            (BusinessInitiated, Ringing, UserAnswer, Go(Active)),
            (BusinessInitiated, Ringing, UserDecline, End(EndReason::DeclinedByUser)),
            (BusinessInitiated, Ringing, RingTimeout, End(EndReason::Unanswered)),
            (BusinessInitiated, Active, PreAccept, r("the call has already been accepted")),
            (BusinessInitiated, Active, Accept, r("the call has already been accepted")),
            (BusinessInitiated, Active, Reject, r("the call has already been accepted; use terminate to end it")),
            (BusinessInitiated, Active, Terminate, End(EndReason::Completed)),
            (BusinessInitiated, Active, UserHangup, End(EndReason::Completed)),
            (BusinessInitiated, Active, UserAnswer, r("the call has already been answered")),
            (BusinessInitiated, Active, UserDecline, r("the call has already been answered")),
            (BusinessInitiated, Active, RingTimeout, Ignore),
        ];
        for (dir, state, action, expected) in table {
            assert_eq!(
                decide(dir, state, action),
                expected,
                "{dir:?} {state:?} {action:?}"
            );
        }
        for dir in [UserInitiated, BusinessInitiated] {
            for action in Action::ALL {
                let expected = if action == RingTimeout {
                    Ignore
                } else {
                    r(ended)
                };
                assert_eq!(
                    decide(dir, Ended, action),
                    expected,
                    "{dir:?} Ended {action:?}"
                );
            }
        }
    }
}
