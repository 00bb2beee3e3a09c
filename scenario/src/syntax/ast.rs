//! The syntax tree of a scenario: one [`Step`] per line.

use super::json::Pat;
use crate::diagnostic::Span;

/// A parsed `.scn` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The whole line, for failure reports.
    pub span: Span,
    pub kind: StepKind,
}

/// A bare word the author chose: a user's name, a webhook field, an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A `$name` reference or binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub span: Span,
}

/// A quoted string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub value: String,
    pub span: Span,
}

/// A duration literal, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dur {
    pub ms: u64,
    pub span: Span,
}

/// A whole number literal (status, error code, count).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Int {
    pub value: u64,
    pub span: Span,
}

/// A JSON pattern or body.
#[derive(Clone, Debug, PartialEq)]
pub struct Json {
    pub pat: Pat,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// `user alice is android 2.25.30 named "Alice"`
    User(UserDecl),
    /// `advance 2h`: the emulator's virtual clock.
    Advance(Dur),
    /// `wait 2s`: real time, for apps under test.
    Wait(Dur),
    /// `business uses number 447700900461`: the business number the following
    /// business steps act as, and the one user steps that mean "the business" talk to.
    UseNumber(Text),
    /// `business has number 5511962185237 in country BR as $br`: one more business number
    /// for the run's tenant (the emulator adds it; `business uses number` switches to it).
    AddNumber {
        number: NumberDecl,
        bind: Option<Var>,
    },
    /// `business …`
    Business {
        action: BusinessAction,
        bind: Option<Var>,
    },
    /// `alice …`
    Act {
        user: Name,
        action: UserAction,
        bind: Option<Var>,
    },
    /// `expect status 200`, `expect error 138006`, `expect response {…}`
    ExpectResponse(ResponseExpect),
    /// `[then] expect a calls webhook connect …`
    ExpectWebhook { then: bool, exp: WebhookExpect },
    /// `[then] expect the app to accept $call …`
    ExpectApp { then: bool, exp: AppExpect },
    /// `expect alice to hear audio on $call within 3s`, `expect media for $call with {…}`:
    /// the user's media endpoint (`GET /__emulator/calls/{id}/media`), polled in real time.
    ExpectMedia(MediaExpect),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Android,
    Ios,
    Smba,
    Smbi,
    Desktop,
    Web,
}

impl Platform {
    pub const ALL: [(&'static str, Platform); 6] = [
        ("android", Platform::Android),
        ("ios", Platform::Ios),
        ("smba", Platform::Smba),
        ("smbi", Platform::Smbi),
        ("desktop", Platform::Desktop),
        ("web", Platform::Web),
    ];

    pub fn as_str(self) -> &'static str {
        Platform::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(s, _)| *s)
            .expect("every platform is listed")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserDecl {
    pub name: Name,
    pub platform: Platform,
    /// Dotted client version; the emulator's latest when absent.
    pub version: Option<Name>,
    pub display_name: Option<Text>,
    /// The user's phone number (wa_id); derived from the declaration order when absent.
    pub number: Option<Text>,
    /// Whether the 24 h customer service window starts open.
    pub window_open: bool,
}

/// `business has [a] [test] number N [in country XX] [with|without business-initiated
/// calling]`.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberDecl {
    /// The display number, bare digits or quoted as people write it (`"+55 11 96218-5237"`).
    pub number: Text,
    /// `in country BR`: the ISO country the number's calling code must be in (checked).
    pub country: Option<Name>,
    /// `test number`: a sandbox or public test number's limits (`profile = "test"`).
    pub test: bool,
    /// `with` / `without business-initiated calling`: overrides the country rule.
    pub business_initiated: Option<bool>,
}

/// `/calls` actions on an existing call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallVerb {
    PreAccept,
    Accept,
    Reject,
    Terminate,
}

impl CallVerb {
    /// The Graph `action` value.
    pub fn action(self) -> &'static str {
        match self {
            CallVerb::PreAccept => "pre_accept",
            CallVerb::Accept => "accept",
            CallVerb::Reject => "reject",
            CallVerb::Terminate => "terminate",
        }
    }

    /// Third person, as in `business accepts $call`.
    pub fn third_person(self) -> &'static str {
        match self {
            CallVerb::PreAccept => "pre-accepts",
            CallVerb::Accept => "accepts",
            CallVerb::Reject => "rejects",
            CallVerb::Terminate => "terminates",
        }
    }

    /// Infinitive, as in `expect the app to accept $call`.
    pub fn infinitive(self) -> &'static str {
        match self {
            CallVerb::PreAccept => "pre-accept",
            CallVerb::Accept => "accept",
            CallVerb::Reject => "reject",
            CallVerb::Terminate => "terminate",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum BusinessAction {
    /// `business sends alice a call button "Call us" saying "…" with payload "x" with ttl 100m`
    SendButton {
        to: Name,
        label: Option<Text>,
        body: Option<Text>,
        payload: Option<Text>,
        ttl: Option<Dur>,
    },
    /// `business sends alice a text "hello"`
    SendText { to: Name, text: Text },
    /// `business asks alice for call permission saying "…"`
    AskPermission { to: Name, body: Option<Text> },
    /// `business creates template "name" with a call button "Call" with ttl 1d saying "…"`
    CreateTemplate {
        name: Text,
        label: Option<Text>,
        body: Option<Text>,
        ttl: Option<Dur>,
        category: Option<Name>,
        language: Option<Text>,
    },
    /// `business sends alice template "name" with ttl 100m with payload "x"`
    SendTemplate {
        to: Name,
        name: Text,
        language: Option<Text>,
        payload: Option<Text>,
        ttl: Option<Dur>,
    },
    /// `business calls alice with callback data "x"`
    Call { to: Name, callback: Option<Text> },
    /// `business accepts $call`
    CallAction {
        verb: CallVerb,
        call: Var,
        callback: Option<Text>,
    },
    /// `business checks call permission for alice`
    CheckPermission { user: Name },
    /// `business enables calling` / `business disables calling`
    SetCalling { enabled: bool },
    /// `business updates settings {…}`
    UpdateSettings { json: Json },
    /// `business reads settings`
    ReadSettings,
    /// `business requests POST /messages {…}`: any Graph request, for limits and odd cases.
    Request {
        method: Name,
        path: Text,
        body: Option<Json>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum UserAction {
    /// `alice says "hi"`
    Say(Text),
    /// `alice taps $msg`
    Tap(Var),
    /// `alice opens link "https://wa.me/call/15550783881?biz_payload=x"`
    OpenLink(Text),
    /// `alice opens the call link [to "155…"] [with payload "x"]`: the business's
    /// `wa.me/call` link built from its display number.
    OpenCallLink {
        number: Option<Text>,
        payload: Option<Text>,
    },
    /// `alice calls the business`
    CallBusiness,
    /// `alice hangs up $call`
    HangUp(Var),
    /// `alice answers $call`
    Answer(Var),
    /// `alice declines $call`
    Decline(Var),
    /// `alice accepts call permission [$req] [permanently]` / `alice rejects call permission [$req]`
    ReplyPermission {
        accept: bool,
        request: Option<Var>,
        permanent: bool,
    },
    /// `alice reads $msg`
    Read(Var),
    /// `alice presses "12#" on $call`: DTMF keys (RFC 4733) to the business.
    Press { keys: Text, call: Var },
    /// `alice plays a 440 Hz tone on $call` / `alice plays silence on $call`.
    Play { sound: Sound, call: Var },
}

/// What the user says into a call with media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sound {
    /// `a 440 Hz tone`
    Tone(Int),
    /// `silence`
    Silence,
}

/// `expect … on $call [within D]`: the user's media endpoint of a call.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaExpect {
    pub check: MediaCheck,
    pub call: Var,
    /// Real time to keep polling; [`MEDIA_DEFAULT_WITHIN_MS`] when absent.
    pub within: Option<Dur>,
}

/// How long a media expectation polls without `within`: media runs in real time.
pub const MEDIA_DEFAULT_WITHIN_MS: u64 = 5_000;

#[derive(Clone, Debug, PartialEq)]
pub enum MediaCheck {
    /// `expect alice to hear audio on $call`: the business's audio arrives, above
    /// silence. `expect alice to hear keys "12" on $call`: those DTMF keys arrived, in order.
    Hears { user: Name, keys: Option<Text> },
    /// `expect media for $call with {…}`: the media report contains the pattern.
    Report(Json),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResponseExpect {
    /// `expect status 400`
    Status(Int),
    /// `expect error [CODE] [with status N]`: any non-2xx when no code is given.
    Error {
        code: Option<Int>,
        status: Option<Int>,
    },
    /// `expect success`: any 2xx.
    Success,
    /// `expect response {…} without k1, k2`: the body contains the pattern (if given) and
    /// none of the keys, at any depth; at least one of the two is given.
    Body {
        with: Option<Json>,
        without: Vec<Text>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Quant {
    /// `a` / `an`: at least one not yet matched; it is then used up.
    A,
    /// `no`: none.
    No,
    /// `exactly N` / `N`: exactly N.
    Exactly(Int),
}

/// Who a webhook or request must mention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Var(Var),
    User(Name),
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookExpect {
    pub quant: Quant,
    pub field: Name,
    pub event: Option<Name>,
    pub subject: Option<Subject>,
    pub with: Option<Json>,
    pub without: Vec<Text>,
    pub within: Option<Dur>,
    pub bind: Option<Var>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AppAction {
    /// `pre-accept $call`, `accept $call`, `reject $call`, `terminate $call`
    CallAction(CallVerb, Var),
    /// `call alice`: a `connect`.
    Call(Name),
    /// `send alice a call button [with payload "x"]`
    SendButton { to: Name, payload: Option<Text> },
    /// `send alice template "name"`
    SendTemplate { to: Name, name: Text },
    /// `send alice a message`
    SendMessage { to: Name },
    /// `ask alice for call permission`
    AskPermission { to: Name },
    /// `request POST /messages`
    Request { method: Name, path: Text },
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppExpect {
    /// `expect the app not to …`
    pub negated: bool,
    pub action: AppAction,
    pub with: Option<Json>,
    pub within: Option<Dur>,
    pub bind: Option<Var>,
}

impl Step {
    /// The variable this step binds, if any.
    pub fn binding(&self) -> Option<&Var> {
        match &self.kind {
            StepKind::Business { bind, .. }
            | StepKind::Act { bind, .. }
            | StepKind::AddNumber { bind, .. } => bind.as_ref(),
            StepKind::ExpectWebhook { exp, .. } => exp.bind.as_ref(),
            StepKind::ExpectApp { exp, .. } => exp.bind.as_ref(),
            _ => None,
        }
    }

    /// Whether this step makes a request whose response an `expect status/error/response`
    /// on the next line can check.
    pub fn has_response(&self) -> bool {
        matches!(
            &self.kind,
            StepKind::Business { .. }
                | StepKind::Act { .. }
                | StepKind::ExpectApp {
                    exp: AppExpect { negated: false, .. },
                    ..
                }
        )
    }
}
