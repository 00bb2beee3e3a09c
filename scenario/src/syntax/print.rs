//! Prints a syntax tree back as canonical scenario text. Parsing the output gives the
//! same tree (a property test holds this), so tools can rewrite scenarios safely.

use super::ast::*;
use super::duration::format_duration;
use super::json::{print_string, quote};

pub fn print_scenario(s: &Scenario) -> String {
    let mut out = String::new();
    for step in &s.steps {
        out.push_str(&print_step(&step.kind));
        out.push('\n');
    }
    out
}

pub fn print_step(kind: &StepKind) -> String {
    let mut w = Words::default();
    match kind {
        StepKind::User(u) => {
            w.word("user")
                .word(&u.name.text)
                .word("is")
                .word(u.platform.as_str());
            if let Some(v) = &u.version {
                w.word(&v.text);
            }
            if let Some(n) = &u.display_name {
                w.word("named").text(n);
            }
            if let Some(n) = &u.number {
                w.word("with number").word(&n.value);
            }
            if u.window_open {
                w.word("with an open window");
            }
        }
        StepKind::Advance(d) => {
            w.word("advance").dur(d);
        }
        StepKind::Wait(d) => {
            w.word("wait").dur(d);
        }
        StepKind::UseNumber(n) => {
            w.word("business uses number");
            if n.value.chars().all(|c| c.is_ascii_digit()) {
                w.word(&n.value);
            } else {
                w.text(n);
            }
        }
        StepKind::AddNumber { number, bind } => {
            w.word("business has");
            w.word(if number.test {
                "a test number"
            } else {
                "number"
            });
            let n = &number.number;
            if n.value.chars().all(|c| c.is_ascii_digit()) {
                w.word(&n.value);
            } else {
                w.text(n);
            }
            if let Some(c) = &number.country {
                w.word("in country").word(&c.text);
            }
            match number.business_initiated {
                Some(true) => {
                    w.word("with business-initiated calling");
                }
                Some(false) => {
                    w.word("without business-initiated calling");
                }
                None => {}
            }
            w.bind(bind);
        }
        StepKind::Business { action, bind } => {
            w.word("business");
            business(&mut w, action);
            w.bind(bind);
        }
        StepKind::Act { user, action, bind } => {
            w.word(&user.text);
            user_action(&mut w, action);
            w.bind(bind);
        }
        StepKind::ExpectResponse(r) => {
            w.word("expect");
            match r {
                ResponseExpect::Status(s) => {
                    w.word("status").word(&s.value.to_string());
                }
                ResponseExpect::Error { code, status } => {
                    w.word("error");
                    if let Some(c) = code {
                        w.word(&c.value.to_string());
                    }
                    if let Some(s) = status {
                        w.word("with status").word(&s.value.to_string());
                    }
                }
                ResponseExpect::Success => {
                    w.word("success");
                }
                ResponseExpect::Body { with, without } => {
                    w.word("response");
                    if let Some(j) = with {
                        w.word(&j.pat.print());
                    }
                    w.keys("without", without);
                }
            }
        }
        StepKind::ExpectWebhook { then, exp } => {
            if *then {
                w.word("then");
            }
            w.word("expect");
            match &exp.quant {
                Quant::A => w.word("a"),
                Quant::No => w.word("no"),
                Quant::Exactly(n) => w.word(&n.value.to_string()),
            };
            let plural = matches!(&exp.quant, Quant::Exactly(n) if n.value != 1);
            w.word(&exp.field.text)
                .word(if plural { "webhooks" } else { "webhook" });
            if let Some(e) = &exp.event {
                w.word(&e.text);
            }
            if let Some(s) = &exp.subject {
                w.word("for");
                match s {
                    Subject::Var(v) => w.var(v),
                    Subject::User(n) => w.word(&n.text),
                };
            }
            if let Some(j) = &exp.with {
                w.word("with").word(&j.pat.print());
            }
            w.keys("without", &exp.without);
            if let Some(d) = &exp.within {
                w.word("within").dur(d);
            }
            w.bind(&exp.bind);
        }
        StepKind::ExpectApp { then, exp } => {
            if *then {
                w.word("then");
            }
            w.word("expect the app");
            if exp.negated {
                w.word("not");
            }
            w.word("to");
            match &exp.action {
                AppAction::CallAction(v, call) => {
                    w.word(v.infinitive()).var(call);
                }
                AppAction::Call(to) => {
                    w.word("call").word(&to.text);
                }
                AppAction::SendButton { to, payload } => {
                    w.word("send").word(&to.text).word("a call button");
                    if let Some(p) = payload {
                        w.word("with payload").text(p);
                    }
                }
                AppAction::SendTemplate { to, name } => {
                    w.word("send").word(&to.text).word("template").text(name);
                }
                AppAction::SendMessage { to } => {
                    w.word("send").word(&to.text).word("a message");
                }
                AppAction::AskPermission { to } => {
                    w.word("ask").word(&to.text).word("for call permission");
                }
                AppAction::Request { method, path } => {
                    w.word("request").word(&method.text).word(&path.value);
                }
            }
            if let Some(j) = &exp.with {
                w.word("with").word(&j.pat.print());
            }
            if let Some(d) = &exp.within {
                w.word("within").dur(d);
            }
            w.bind(&exp.bind);
        }
        StepKind::ExpectMedia(m) => {
            w.word("expect");
            match &m.check {
                MediaCheck::Hears { user, keys } => {
                    w.word(&user.text).word("to hear");
                    match keys {
                        Some(k) => w.word("keys").text(k),
                        None => w.word("audio"),
                    };
                    w.word("on").var(&m.call);
                }
                MediaCheck::Report(j) => {
                    w.word("media for")
                        .var(&m.call)
                        .word("with")
                        .word(&j.pat.print());
                }
            }
            if let Some(d) = &m.within {
                w.word("within").dur(d);
            }
        }
    }
    w.0.join(" ")
}

fn business(w: &mut Words, action: &BusinessAction) {
    match action {
        BusinessAction::SendButton {
            to,
            label,
            body,
            payload,
            ttl,
        } => {
            w.word("sends").word(&to.text).word("a call button");
            if let Some(l) = label {
                w.text(l);
            }
            if let Some(b) = body {
                w.word("saying").text(b);
            }
            if let Some(p) = payload {
                w.word("with payload").text(p);
            }
            if let Some(t) = ttl {
                w.word("with ttl").dur(t);
            }
        }
        BusinessAction::SendText { to, text } => {
            w.word("sends").word(&to.text).word("a text").text(text);
        }
        BusinessAction::AskPermission { to, body } => {
            w.word("asks").word(&to.text).word("for call permission");
            if let Some(b) = body {
                w.word("saying").text(b);
            }
        }
        BusinessAction::CreateTemplate {
            name,
            label,
            body,
            ttl,
            category,
            language,
        } => {
            w.word("creates template")
                .text(name)
                .word("with a call button");
            if let Some(l) = label {
                w.text(l);
            }
            if let Some(b) = body {
                w.word("saying").text(b);
            }
            if let Some(t) = ttl {
                w.word("with ttl").dur(t);
            }
            if let Some(c) = category {
                w.word("in category").word(&c.text);
            }
            if let Some(l) = language {
                w.word("in language").text(l);
            }
        }
        BusinessAction::SendTemplate {
            to,
            name,
            language,
            payload,
            ttl,
        } => {
            w.word("sends").word(&to.text).word("template").text(name);
            if let Some(l) = language {
                w.word("in language").text(l);
            }
            if let Some(p) = payload {
                w.word("with payload").text(p);
            }
            if let Some(t) = ttl {
                w.word("with ttl").dur(t);
            }
        }
        BusinessAction::Call { to, callback } => {
            w.word("calls").word(&to.text);
            if let Some(c) = callback {
                w.word("with callback data").text(c);
            }
        }
        BusinessAction::CallAction {
            verb,
            call,
            callback,
        } => {
            w.word(verb.third_person()).var(call);
            if let Some(c) = callback {
                w.word("with callback data").text(c);
            }
        }
        BusinessAction::CheckPermission { user } => {
            w.word("checks call permission for").word(&user.text);
        }
        BusinessAction::SetCalling { enabled } => {
            w.word(if *enabled {
                "enables calling"
            } else {
                "disables calling"
            });
        }
        BusinessAction::UpdateSettings { json } => {
            w.word("updates settings").word(&json.pat.print());
        }
        BusinessAction::ReadSettings => {
            w.word("reads settings");
        }
        BusinessAction::Request { method, path, body } => {
            w.word("requests").word(&method.text).word(&path.value);
            if let Some(b) = body {
                w.word(&b.pat.print());
            }
        }
    }
}

fn user_action(w: &mut Words, action: &UserAction) {
    match action {
        UserAction::Say(t) => {
            w.word("says").text(t);
        }
        UserAction::Tap(v) => {
            w.word("taps").var(v);
        }
        UserAction::OpenLink(t) => {
            w.word("opens link").text(t);
        }
        UserAction::OpenCallLink { number, payload } => {
            w.word("opens the call link");
            if let Some(n) = number {
                w.word("to").text(n);
            }
            if let Some(p) = payload {
                w.word("with payload").text(p);
            }
        }
        UserAction::CallBusiness => {
            w.word("calls the business");
        }
        UserAction::HangUp(v) => {
            w.word("hangs up").var(v);
        }
        UserAction::Answer(v) => {
            w.word("answers").var(v);
        }
        UserAction::Decline(v) => {
            w.word("declines").var(v);
        }
        UserAction::ReplyPermission {
            accept,
            request,
            permanent,
        } => {
            w.word(if *accept { "accepts" } else { "rejects" })
                .word("call permission");
            if let Some(r) = request {
                w.var(r);
            }
            if *permanent {
                w.word("permanently");
            }
        }
        UserAction::Read(v) => {
            w.word("reads").var(v);
        }
        UserAction::Press { keys, call } => {
            w.word("presses").text(keys).word("on").var(call);
        }
        UserAction::Play { sound, call } => {
            w.word("plays");
            match sound {
                Sound::Tone(hz) => w.word("a").word(&hz.value.to_string()).word("Hz tone"),
                Sound::Silence => w.word("silence"),
            };
            w.word("on").var(call);
        }
    }
}

/// Keys in `without` print bare when they lex back as one word.
fn bare_or_quoted(key: &str) -> String {
    let mut chars = key.chars();
    let starts_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if starts_ok
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        quote(key)
    }
}

#[derive(Default)]
struct Words(Vec<String>);

impl Words {
    fn word(&mut self, w: &str) -> &mut Words {
        self.0.push(w.to_string());
        self
    }
    fn text(&mut self, t: &Text) -> &mut Words {
        self.0.push(print_string(&t.value));
        self
    }
    /// `without a, "b c"`, when there are keys.
    fn keys(&mut self, clause: &str, keys: &[Text]) -> &mut Words {
        if !keys.is_empty() {
            let keys: Vec<String> = keys.iter().map(|k| bare_or_quoted(&k.value)).collect();
            self.word(clause).word(&keys.join(", "));
        }
        self
    }
    fn var(&mut self, v: &Var) -> &mut Words {
        self.0.push(format!("${}", v.name));
        self
    }
    fn dur(&mut self, d: &Dur) -> &mut Words {
        self.0.push(format_duration(d.ms));
        self
    }
    fn bind(&mut self, v: &Option<Var>) -> &mut Words {
        if let Some(v) = v {
            self.word("as").var(v);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::{ClockValue, Pat};
    use super::super::parser::{parse, STEP_WORDS};
    use super::*;
    use crate::diagnostic::Span;
    use proptest::prelude::*;

    const CLAUSE_WORDS: [&str; 5] = ["for", "with", "without", "within", "as"];

    fn sp() -> Span {
        Span::default()
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_]{0,7}".prop_filter("not a step or clause word", |w| {
            !STEP_WORDS.contains(&w.as_str()) && !CLAUSE_WORDS.contains(&w.as_str())
        })
    }
    fn name() -> impl Strategy<Value = Name> {
        word().prop_map(|text| Name { text, span: sp() })
    }
    /// Any string, or one short piece repeated (which prints as `"x" * 513`).
    fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => any::<String>(),
            1 => (".{1,3}", 0usize..200).prop_map(|(piece, n)| piece.repeat(n)),
        ]
    }
    fn text() -> impl Strategy<Value = Text> {
        string().prop_map(|value| Text { value, span: sp() })
    }
    fn keys() -> impl Strategy<Value = Vec<Text>> {
        proptest::collection::vec(
            any::<String>().prop_map(|value| Text { value, span: sp() }),
            0..3,
        )
    }
    fn opt_text() -> impl Strategy<Value = Option<Text>> {
        proptest::option::of(text())
    }
    fn var() -> impl Strategy<Value = Var> {
        "[a-z_][a-z0-9_]{0,6}".prop_map(|name| Var { name, span: sp() })
    }
    fn dur() -> impl Strategy<Value = Dur> {
        (0u64..10_000_000_000_000).prop_map(|ms| Dur { ms, span: sp() })
    }
    fn int() -> impl Strategy<Value = Int> {
        (0u64..10_000_000).prop_map(|value| Int { value, span: sp() })
    }
    fn pat() -> impl Strategy<Value = Pat> {
        let leaf = prop_oneof![
            Just(Pat::Null),
            any::<bool>().prop_map(Pat::Bool),
            any::<i64>().prop_map(|n| Pat::Num(n.into())),
            proptest::num::f64::NORMAL
                .prop_map(|f| Pat::Num(serde_json::Number::from_f64(f).unwrap())),
            string().prop_map(Pat::Str),
            var().prop_map(Pat::Var),
            (-10_000_000_000_000i64..10_000_000_000_000).prop_map(|offset_ms| Pat::Now(
                ClockValue {
                    offset_ms,
                    span: sp()
                }
            )),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Pat::Arr),
                proptest::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|m| Pat::Obj(m.into_iter().collect())),
            ]
        })
    }
    /// Scenario JSON opens with `{` or `[`; scalars go inside.
    fn json() -> impl Strategy<Value = Json> {
        prop_oneof![
            proptest::collection::vec(pat(), 0..4).prop_map(Pat::Arr),
            proptest::collection::btree_map(any::<String>(), pat(), 0..4)
                .prop_map(|m| Pat::Obj(m.into_iter().collect())),
        ]
        .prop_map(|pat| Json { pat, span: sp() })
    }
    fn path() -> impl Strategy<Value = Text> {
        "/[a-z_]{1,8}(/[a-z0-9_]{1,8})?".prop_map(|value| Text { value, span: sp() })
    }
    fn method() -> impl Strategy<Value = Name> {
        prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")].prop_map(|m| Name {
            text: m.into(),
            span: sp(),
        })
    }
    fn verb() -> impl Strategy<Value = CallVerb> {
        prop_oneof![
            Just(CallVerb::PreAccept),
            Just(CallVerb::Accept),
            Just(CallVerb::Reject),
            Just(CallVerb::Terminate)
        ]
    }

    fn business() -> impl Strategy<Value = BusinessAction> {
        prop_oneof![
            (
                name(),
                opt_text(),
                opt_text(),
                opt_text(),
                proptest::option::of(dur())
            )
                .prop_map(|(to, label, body, payload, ttl)| {
                    BusinessAction::SendButton {
                        to,
                        label,
                        body,
                        payload,
                        ttl,
                    }
                }),
            (name(), text()).prop_map(|(to, text)| BusinessAction::SendText { to, text }),
            (name(), opt_text()).prop_map(|(to, body)| BusinessAction::AskPermission { to, body }),
            (
                text(),
                opt_text(),
                opt_text(),
                proptest::option::of(dur()),
                proptest::option::of("[A-Z]{1,10}"),
                opt_text()
            )
                .prop_map(|(name, label, body, ttl, category, language)| {
                    BusinessAction::CreateTemplate {
                        name,
                        label,
                        body,
                        ttl,
                        category: category.map(|text| Name { text, span: sp() }),
                        language,
                    }
                }),
            (
                name(),
                text(),
                opt_text(),
                opt_text(),
                proptest::option::of(dur())
            )
                .prop_map(|(to, name, language, payload, ttl)| {
                    BusinessAction::SendTemplate {
                        to,
                        name,
                        language,
                        payload,
                        ttl,
                    }
                }),
            (name(), opt_text()).prop_map(|(to, callback)| BusinessAction::Call { to, callback }),
            (verb(), var(), opt_text()).prop_map(|(verb, call, callback)| {
                BusinessAction::CallAction {
                    verb,
                    call,
                    callback,
                }
            }),
            name().prop_map(|user| BusinessAction::CheckPermission { user }),
            any::<bool>().prop_map(|enabled| BusinessAction::SetCalling { enabled }),
            json().prop_map(|json| BusinessAction::UpdateSettings { json }),
            Just(BusinessAction::ReadSettings),
            (method(), path(), proptest::option::of(json()))
                .prop_map(|(method, path, body)| BusinessAction::Request { method, path, body }),
        ]
    }

    fn user_action() -> impl Strategy<Value = UserAction> {
        prop_oneof![
            text().prop_map(UserAction::Say),
            var().prop_map(UserAction::Tap),
            text().prop_map(UserAction::OpenLink),
            (opt_text(), opt_text())
                .prop_map(|(number, payload)| UserAction::OpenCallLink { number, payload }),
            Just(UserAction::CallBusiness),
            var().prop_map(UserAction::HangUp),
            var().prop_map(UserAction::Answer),
            var().prop_map(UserAction::Decline),
            (any::<bool>(), proptest::option::of(var()), any::<bool>()).prop_map(
                |(accept, request, permanent)| {
                    UserAction::ReplyPermission {
                        accept,
                        request,
                        permanent: accept && permanent,
                    }
                }
            ),
            var().prop_map(UserAction::Read),
            (text(), var()).prop_map(|(keys, call)| UserAction::Press { keys, call }),
            (proptest::option::of(int()), var()).prop_map(|(hz, call)| UserAction::Play {
                sound: hz.map(Sound::Tone).unwrap_or(Sound::Silence),
                call
            }),
        ]
    }

    fn step() -> impl Strategy<Value = StepKind> {
        let platform = proptest::sample::select(Platform::ALL.map(|(_, p)| p).to_vec());
        let version = proptest::option::of("[0-9]{1,2}(\\.[0-9]{1,3}){1,3}");
        let number = proptest::option::of("[0-9]{1,15}");
        let quant = prop_oneof![
            Just(Quant::A),
            Just(Quant::No),
            int().prop_map(Quant::Exactly)
        ];
        let subject = proptest::option::of(prop_oneof![
            var().prop_map(Subject::Var),
            name().prop_map(Subject::User)
        ]);
        let app_action = prop_oneof![
            (verb(), var()).prop_map(|(v, c)| AppAction::CallAction(v, c)),
            name().prop_map(AppAction::Call),
            (name(), opt_text()).prop_map(|(to, payload)| AppAction::SendButton { to, payload }),
            (name(), text()).prop_map(|(to, name)| AppAction::SendTemplate { to, name }),
            name().prop_map(|to| AppAction::SendMessage { to }),
            name().prop_map(|to| AppAction::AskPermission { to }),
            (method(), path()).prop_map(|(method, path)| AppAction::Request { method, path }),
        ];
        prop_oneof![
            (name(), platform, version, opt_text(), number, any::<bool>()).prop_map(
                |(name, platform, version, display_name, number, window_open)| StepKind::User(
                    UserDecl {
                        name,
                        platform,
                        version: version.map(|text| Name { text, span: sp() }),
                        display_name,
                        number: number.map(|value| Text { value, span: sp() }),
                        window_open
                    }
                )
            ),
            dur().prop_map(StepKind::Advance),
            dur().prop_map(StepKind::Wait),
            "\\+?[0-9][0-9 ()-]{0,15}"
                .prop_map(|value| StepKind::UseNumber(Text { value, span: sp() })),
            (
                "\\+?[0-9][0-9 ()-]{0,15}",
                proptest::option::of("[A-Z]{2}"),
                any::<bool>(),
                proptest::option::of(any::<bool>()),
                proptest::option::of(var())
            )
                .prop_map(|(value, country, test, business_initiated, bind)| {
                    StepKind::AddNumber {
                        number: NumberDecl {
                            number: Text { value, span: sp() },
                            country: country.map(|text| Name { text, span: sp() }),
                            test,
                            business_initiated,
                        },
                        bind,
                    }
                }),
            (business(), proptest::option::of(var()))
                .prop_map(|(action, bind)| StepKind::Business { action, bind }),
            (name(), user_action(), proptest::option::of(var()))
                .prop_map(|(user, action, bind)| StepKind::Act { user, action, bind }),
            prop_oneof![
                int().prop_map(ResponseExpect::Status),
                (proptest::option::of(int()), proptest::option::of(int()))
                    .prop_map(|(code, status)| ResponseExpect::Error { code, status }),
                Just(ResponseExpect::Success),
                (proptest::option::of(json()), keys())
                    .prop_filter("`expect response` needs JSON or keys", |(with, without)| {
                        with.is_some() || !without.is_empty()
                    })
                    .prop_map(|(with, without)| ResponseExpect::Body { with, without }),
            ]
            .prop_map(StepKind::ExpectResponse),
            (
                any::<bool>(),
                quant,
                name(),
                proptest::option::of(name()),
                subject,
                proptest::option::of(json()),
                keys(),
                proptest::option::of(dur()),
                proptest::option::of(var())
            )
                .prop_map(
                    |(then, quant, field, event, subject, with, without, within, bind)| {
                        StepKind::ExpectWebhook {
                            then,
                            exp: WebhookExpect {
                                quant,
                                field,
                                event,
                                subject,
                                with,
                                without,
                                within,
                                bind,
                            },
                        }
                    }
                ),
            (
                any::<bool>(),
                any::<bool>(),
                app_action,
                proptest::option::of(json()),
                proptest::option::of(dur()),
                proptest::option::of(var())
            )
                .prop_map(|(then, negated, action, with, within, bind)| {
                    StepKind::ExpectApp {
                        then,
                        exp: AppExpect {
                            negated,
                            action,
                            with,
                            within,
                            bind,
                        },
                    }
                }),
            (
                prop_oneof![
                    (name(), proptest::option::of(text()))
                        .prop_map(|(user, keys)| MediaCheck::Hears { user, keys }),
                    json().prop_map(MediaCheck::Report),
                ],
                var(),
                proptest::option::of(dur())
            )
                .prop_map(|(check, call, within)| StepKind::ExpectMedia(MediaExpect {
                    check,
                    call,
                    within
                })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Printing a scenario and parsing it again gives the same scenario.
        #[test]
        fn print_then_parse_gives_the_same_scenario(steps in proptest::collection::vec(step(), 0..8)) {
            let scenario = Scenario {
                steps: steps.into_iter().map(|kind| Step { span: sp(), kind }).collect(),
            };
            let text = print_scenario(&scenario);
            let (parsed, diags) = parse(&text);
            prop_assert!(diags.is_empty(), "{text}\n{diags:?}");
            prop_assert_eq!(parsed, scenario, "{}", text);
        }

        /// The parser returns diagnostics, never panics, on any text.
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = parse(&text);
        }

        /// Nor on soups of its own words, which reach deep into the grammar.
        #[test]
        fn parse_never_panics_on_shuffled_keywords(words in proptest::collection::vec(prop_oneof![
            Just("user"), Just("alice"), Just("is"), Just("android"), Just("2.25.30"), Just("business"),
            Just("sends"), Just("a"), Just("call"), Just("button"), Just("with"), Just("payload"),
            Just("ttl"), Just("\"x\""), Just("$m"), Just("as"), Just("expect"), Just("then"), Just("the"),
            Just("app"), Just("to"), Just("webhook"), Just("calls"), Just("no"), Just("within"), Just("30s"),
            Just("{"), Just("}"), Just("{\"a\": $x}"), Just("["), Just("\n"), Just("taps"), Just("opens"),
            Just("link"), Just("without"), Just(","), Just("error"), Just("status"), Just("200"), Just("/messages"),
            Just("requests"), Just("POST"), Just("\"unterminated"), Just("#"), Just("$"), Just("2x"),
            Just("uses"), Just("number"), Just("447700900461"), Just("\"+447700900461\""),
            Just("has"), Just("test"), Just("in"), Just("country"), Just("BR"), Just("business-initiated"),
            Just("calling"), Just("response"), Just("now"), Just("+"), Just("7d"), Just("*"), Just("513"),
            Just("{\"a\": now + 7d}"), Just("\"x\" * 3"),
        ], 0..30)) {
            let text = words.join(" ");
            let (s, _) = parse(&text);
            let _ = crate::check::check(&s);
        }
    }
}
