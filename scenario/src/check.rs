//! Semantic checks on a parsed scenario, before anything runs: users are declared
//! before use, variables are bound before use and hold the right kind of id, durations
//! fit where they go (times on the clock in whole seconds), a business number is in the
//! country it says, and response expectations follow a step that made a request. All
//! problems are collected.

use crate::diagnostic::{closest, Diagnostic, Span};
use crate::syntax::*;
use std::collections::HashMap;
use wa_emulator::domain::ids::{calling_code, country_of};

/// The countries whose calling codes the emulator knows, for the help of a number it
/// cannot place: found by asking its table for each code from 1 to 999.
fn known_countries() -> String {
    let mut out: Vec<String> = (1..1000)
        .map(|code: u32| code.to_string())
        .filter(|code| calling_code(code) == Some(code.as_str()))
        .map(|code| format!("{} (+{code})", country_of(&code)))
        .collect();
    out.dedup();
    out.join(", ")
}

/// What a `$name` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Message,
    Call,
    Template,
    /// A business phone number id (`business has number … as $br`).
    Number,
    /// An id from a raw request or an unfamiliar webhook: usable anywhere.
    Any,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Message => "a message",
            Kind::Call => "a call",
            Kind::Template => "a template",
            Kind::Number => "a business number",
            Kind::Any => "an id",
        }
    }
}

/// Webhook fields the emulator sends; a near miss of one is almost surely a typo.
pub const KNOWN_FIELDS: [&str; 5] = [
    "messages",
    "calls",
    "account_settings_update",
    "message_template_status_update",
    "account_update",
];

pub fn check(s: &Scenario) -> Vec<Diagnostic> {
    let mut c = Checker::default();
    let mut prev_has_response = false;
    for step in &s.steps {
        c.step(step, prev_has_response);
        prev_has_response = step.has_response()
            || (matches!(step.kind, StepKind::ExpectResponse(_)) && prev_has_response);
    }
    c.diags.sort_by_key(|d| d.span.start);
    c.diags
}

#[derive(Default)]
struct Checker {
    users: HashMap<String, Span>,
    vars: HashMap<String, Kind>,
    diags: Vec<Diagnostic>,
}

impl Checker {
    fn step(&mut self, step: &Step, prev_has_response: bool) {
        match &step.kind {
            StepKind::User(u) => {
                if self.users.contains_key(&u.name.text) {
                    self.diags.push(
                        Diagnostic::new(
                            format!("user `{}` is declared twice", u.name.text),
                            u.name.span,
                            "declared again",
                        )
                        .help("each user is declared once; give the second one another name"),
                    );
                } else {
                    self.users.insert(u.name.text.clone(), u.name.span);
                }
            }
            StepKind::Advance(d) => {
                if d.ms % 1000 != 0 {
                    self.diags.push(
                        Diagnostic::new(
                            "the clock advances in whole seconds",
                            d.span,
                            "not whole seconds",
                        )
                        .help("write seconds or larger units, like 1s or 2m"),
                    );
                }
            }
            // Which numbers exist is the emulator's to say: the runner checks the number
            // against `GET /__emulator/config` and fails this step if it is not there.
            StepKind::Wait(_) | StepKind::UseNumber(_) => {}
            StepKind::AddNumber { number, bind } => {
                if let Some(c) = &number.country {
                    self.country(&number.number, c);
                }
                self.bind(bind, Some(Kind::Number), "");
            }
            StepKind::Business { action, bind } => {
                let made = self.business(action);
                self.bind(bind, made, "this business step");
            }
            StepKind::Act { user, action, bind } => {
                self.user(user);
                let made = self.user_action(action);
                self.bind(bind, made, "this user step");
            }
            StepKind::ExpectResponse(r) => {
                if !prev_has_response {
                    self.diags.push(
                        Diagnostic::new(
                            "a response expectation must follow a step that makes a request",
                            step.span,
                            "no request just before this",
                        )
                        .help("put `expect status/error/success/response` right after a `business …` or user step"),
                    );
                }
                if let ResponseExpect::Body { with: Some(j), .. } = r {
                    self.json(j);
                }
            }
            StepKind::ExpectWebhook { exp, .. } => {
                if !KNOWN_FIELDS.contains(&exp.field.text.as_str()) {
                    if let Some(s) = closest(&exp.field.text, &KNOWN_FIELDS) {
                        self.diags.push(
                            Diagnostic::new(
                                format!("unknown webhook field `{}`", exp.field.text),
                                exp.field.span,
                                "not a field",
                            )
                            .help(format!("did you mean `{s}`?")),
                        );
                    }
                }
                match &exp.subject {
                    Some(Subject::User(n)) => self.user(n),
                    Some(Subject::Var(v)) => self.use_var(v, None, ""),
                    None => {}
                }
                if let Some(j) = &exp.with {
                    self.json(j);
                }
                let made = match exp.quant {
                    Quant::A => Some(match exp.field.text.as_str() {
                        "calls" => Kind::Call,
                        "messages" => Kind::Message,
                        _ => Kind::Any,
                    }),
                    _ => None,
                };
                if made.is_none() {
                    if let Some(b) = &exp.bind {
                        self.diags.push(
                            Diagnostic::new(
                                "only `expect a …` can name what it matched",
                                b.span,
                                "nothing single to name",
                            )
                            .help("`no` and counts match zero or many webhooks; drop `as …`"),
                        );
                        return;
                    }
                }
                self.bind(&exp.bind, made, "");
            }
            StepKind::ExpectMedia(m) => {
                self.use_var(&m.call, Some(Kind::Call), "a media expectation");
                match &m.check {
                    MediaCheck::Hears { user, keys } => {
                        self.user(user);
                        if let Some(k) = keys {
                            self.keys(k);
                        }
                    }
                    MediaCheck::Report(j) => self.json(j),
                }
            }
            StepKind::ExpectApp { exp, .. } => {
                let made = match &exp.action {
                    AppAction::CallAction(_, v) => {
                        self.use_var(v, Some(Kind::Call), "this action");
                        Kind::Call
                    }
                    AppAction::Call(to) => {
                        self.user(to);
                        Kind::Call
                    }
                    AppAction::SendButton { to, .. }
                    | AppAction::SendTemplate { to, .. }
                    | AppAction::SendMessage { to }
                    | AppAction::AskPermission { to } => {
                        self.user(to);
                        Kind::Message
                    }
                    AppAction::Request { .. } => Kind::Any,
                };
                if let Some(j) = &exp.with {
                    self.json(j);
                }
                if exp.negated {
                    if let Some(b) = &exp.bind {
                        self.diags.push(
                            Diagnostic::new(
                                "`expect the app not to …` matches nothing to name",
                                b.span,
                                "nothing to name",
                            )
                            .help("drop `as …`"),
                        );
                        return;
                    }
                }
                self.bind(&exp.bind, Some(made), "");
            }
        }
    }

    fn business(&mut self, action: &BusinessAction) -> Option<Kind> {
        match action {
            BusinessAction::SendButton { to, ttl, .. } => {
                self.user(to);
                self.ttl(ttl);
                Some(Kind::Message)
            }
            BusinessAction::SendText { to, .. } | BusinessAction::AskPermission { to, .. } => {
                self.user(to);
                Some(Kind::Message)
            }
            BusinessAction::CreateTemplate { ttl, .. } => {
                self.ttl(ttl);
                Some(Kind::Template)
            }
            BusinessAction::SendTemplate { to, ttl, .. } => {
                self.user(to);
                self.ttl(ttl);
                Some(Kind::Message)
            }
            BusinessAction::Call { to, .. } => {
                self.user(to);
                Some(Kind::Call)
            }
            BusinessAction::CallAction { call, verb, .. } => {
                self.use_var(call, Some(Kind::Call), verb.third_person());
                None
            }
            BusinessAction::CheckPermission { user } => {
                self.user(user);
                None
            }
            BusinessAction::SetCalling { .. } | BusinessAction::ReadSettings => None,
            BusinessAction::UpdateSettings { json } => {
                self.json(json);
                None
            }
            BusinessAction::Request { body, .. } => {
                if let Some(j) = body {
                    self.json(j);
                }
                Some(Kind::Any)
            }
        }
    }

    fn user_action(&mut self, action: &UserAction) -> Option<Kind> {
        match action {
            UserAction::Say(_) => Some(Kind::Message),
            UserAction::Tap(v) => {
                self.use_var(v, Some(Kind::Message), "taps");
                Some(Kind::Call)
            }
            UserAction::OpenLink(_)
            | UserAction::OpenCallLink { .. }
            | UserAction::CallBusiness => Some(Kind::Call),
            UserAction::HangUp(v) => {
                self.use_var(v, Some(Kind::Call), "hangs up");
                None
            }
            UserAction::Answer(v) => {
                self.use_var(v, Some(Kind::Call), "answers");
                None
            }
            UserAction::Decline(v) => {
                self.use_var(v, Some(Kind::Call), "declines");
                None
            }
            UserAction::ReplyPermission { request, .. } => {
                if let Some(v) = request {
                    self.use_var(v, Some(Kind::Message), "replies to");
                }
                Some(Kind::Message)
            }
            UserAction::Read(v) => {
                self.use_var(v, Some(Kind::Message), "reads");
                None
            }
            UserAction::Press { keys, call } => {
                self.use_var(call, Some(Kind::Call), "presses");
                self.keys(keys);
                None
            }
            UserAction::Play { sound, call } => {
                self.use_var(call, Some(Kind::Call), "plays");
                if let Sound::Tone(hz) = sound {
                    if !(20..=20_000).contains(&hz.value) {
                        self.diags.push(
                            Diagnostic::new(
                                format!("a tone of {} Hz cannot be played", hz.value),
                                hz.span,
                                "out of range",
                            )
                            .help("the user plays tones of 20 to 20000 Hz, like `plays a 440 Hz tone`"),
                        );
                    }
                }
                None
            }
        }
    }

    /// DTMF keys as the emulator takes them: 1 to 64 of `0-9 * # A-D`.
    fn keys(&mut self, keys: &Text) {
        let bad: Vec<char> = keys
            .value
            .chars()
            .filter(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'))
            .collect();
        let n = keys.value.chars().count();
        if bad.is_empty() && (1..=64).contains(&n) {
            return;
        }
        let label = if bad.is_empty() {
            format!("{n} keys")
        } else {
            let bad: String = bad.iter().map(|c| format!("`{c}` ")).collect();
            format!("not a phone key: {}", bad.trim_end())
        };
        self.diags.push(
            Diagnostic::new("these are not keys the user can press", keys.span, label)
                .help("write 1 to 64 phone keys of 0-9, *, # and A-D, quoted, like \"12#\""),
        );
    }

    fn ttl(&mut self, ttl: &Option<Dur>) {
        if let Some(d) = ttl {
            if d.ms % 60_000 != 0 {
                self.diags.push(
                    Diagnostic::new(
                        "a button's ttl is sent in whole minutes",
                        d.span,
                        "not whole minutes",
                    )
                    .help(
                        "ttl_minutes is an integer; write minutes or larger units, like 90m or 1d",
                    ),
                );
            }
        }
    }

    fn user(&mut self, name: &Name) {
        if self.users.contains_key(&name.text) {
            return;
        }
        let known: Vec<&str> = self.users.keys().map(String::as_str).collect();
        let help = match closest(&name.text, &known) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "declare the user before this step, e.g. `user {} is android 2.25.30`",
                name.text
            ),
        };
        self.diags.push(
            Diagnostic::new(
                format!("unknown user `{}`", name.text),
                name.span,
                "not declared",
            )
            .help(help),
        );
    }

    fn json(&mut self, j: &Json) {
        for v in j.pat.vars() {
            self.use_var(v, None, "");
        }
        for c in j.pat.clock_values() {
            if c.offset_ms % 1000 != 0 {
                self.diags.push(
                    Diagnostic::new(
                        "times on the emulator's clock are whole seconds",
                        c.span,
                        "not whole seconds",
                    )
                    .help("Graph timestamps are Unix seconds; write seconds or larger units, like `now + 90s` or `now + 7d`"),
                );
            }
        }
    }

    /// `in country XX`: the number's calling code must be that country's, as the
    /// emulator reads it (its table decides business-initiated calling and BSUIDs).
    fn country(&mut self, number: &Text, country: &Name) {
        let digits: String = number.value.chars().filter(char::is_ascii_digit).collect();
        let want = country.text.to_ascii_uppercase();
        let Some(code) = calling_code(&digits) else {
            self.diags.push(
                Diagnostic::new(
                    format!("cannot tell the country of +{digits}"),
                    number.span,
                    "calling code unknown to the emulator",
                )
                .help(format!(
                    "the emulator knows the calling codes of {}; drop `in country {}` (business-initiated calling is then available from this number)",
                    known_countries(),
                    country.text
                )),
            );
            return;
        };
        let is = country_of(&digits);
        // +1 is shared: the table says US, and Canada is as right.
        if want == is || (code == "1" && want == "CA") {
            return;
        }
        self.diags.push(
            Diagnostic::new(
                format!("+{digits} is not in {}", country.text),
                country.span,
                format!("+{code} is {is}"),
            )
            .help(format!(
                "write `in country {is}`, or a number that starts with {}'s calling code",
                country.text
            )),
        );
    }

    fn use_var(&mut self, v: &Var, want: Option<Kind>, verb: &str) {
        match self.vars.get(&v.name) {
            None => {
                let known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                let help = match closest(&v.name, &known) {
                    Some(s) => format!("did you mean `${s}`?"),
                    None => format!("bind it on an earlier step with `… as ${}`", v.name),
                };
                self.diags.push(
                    Diagnostic::new(
                        format!("`${}` is not bound", v.name),
                        v.span,
                        "not bound yet",
                    )
                    .help(help),
                );
            }
            Some(&have) => {
                if let Some(want) = want {
                    if have != want && have != Kind::Any {
                        self.diags.push(
                            Diagnostic::new(
                                format!(
                                    "`${}` is {}, but `{verb}` needs {}",
                                    v.name,
                                    have.noun(),
                                    want.noun()
                                ),
                                v.span,
                                format!("{} here", have.noun()),
                            )
                            .help(format!("use a variable bound to {}", want.noun())),
                        );
                    }
                }
            }
        }
    }

    fn bind(&mut self, bind: &Option<Var>, made: Option<Kind>, what: &str) {
        let Some(v) = bind else { return };
        let Some(kind) = made else {
            self.diags.push(
                Diagnostic::new(
                    format!("{what} makes nothing to name"),
                    v.span,
                    "nothing to bind",
                )
                .help(
                    "`as $name` names the message, call or template a step creates; drop it here",
                ),
            );
            return;
        };
        if self.vars.contains_key(&v.name) {
            self.diags.push(
                Diagnostic::new(
                    format!("`${}` is already bound", v.name),
                    v.span,
                    "bound again",
                )
                .help(format!("pick a new name, like `${}2`", v.name)),
            );
            return;
        }
        self.vars.insert(v.name.clone(), kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn diags(text: &str) -> Vec<String> {
        let (s, d) = parse(text);
        assert!(d.is_empty(), "{d:?}");
        check(&s).into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn a_well_formed_scenario_has_no_diagnostics() {
        let text = "user alice is android 2.25.30\nbusiness sends alice a call button as $msg\nexpect status 200\nalice taps $msg as $call\nbusiness accepts $call\nexpect a calls webhook connect for $call with {\"id\": $call}\n";
        assert!(diags(text).is_empty());
    }

    #[test]
    fn unknown_users_and_unbound_variables_are_all_reported() {
        let d = diags("bob taps $msg\nalice hangs up $call\n");
        assert_eq!(
            d,
            vec![
                "unknown user `bob`",
                "`$msg` is not bound",
                "unknown user `alice`",
                "`$call` is not bound"
            ]
        );
    }

    #[test]
    fn variables_must_hold_the_kind_the_step_needs() {
        let d =
            diags("user a is ios 2.25.30\nbusiness sends a a text \"x\" as $m\na hangs up $m\n");
        assert_eq!(d, vec!["`$m` is a message, but `hangs up` needs a call"]);
    }

    #[test]
    fn response_expectations_must_follow_a_request() {
        let d = diags("advance 1s\nexpect status 200\n");
        assert_eq!(
            d,
            vec!["a response expectation must follow a step that makes a request"]
        );
    }

    #[test]
    fn a_number_must_be_in_the_country_it_names() {
        assert!(diags("business has number 5511962185237 in country BR as $br\n").is_empty());
        assert!(diags("business has number 15550001111 in country CA\n").is_empty());
        assert_eq!(
            diags("business has number 5511962185237 in country PT\n"),
            vec!["+5511962185237 is not in PT"]
        );
        assert_eq!(
            diags("business has number 99912345678 in country XX\n"),
            vec!["cannot tell the country of +99912345678"]
        );
        assert_eq!(
            diags("user a is ios\nbusiness has number 5511962185237 as $br\na hangs up $br\n"),
            vec!["`$br` is a business number, but `hangs up` needs a call"]
        );
    }

    #[test]
    fn clock_values_are_whole_seconds() {
        let d = diags("user a is ios\na says \"x\"\nexpect response {\"at\": now + 1500ms}\n");
        assert_eq!(d, vec!["times on the emulator's clock are whole seconds"]);
    }

    #[test]
    fn ttl_and_advance_need_whole_units() {
        let d =
            diags("user a is ios\nbusiness sends a a call button with ttl 90s\nadvance 500ms\n");
        assert_eq!(d.len(), 2);
    }
}
