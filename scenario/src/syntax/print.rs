//! Prints a syntax tree back as canonical scenario text. Parsing the output gives the
//! same tree (a property test holds this), so tools can rewrite scenarios safely.

use super::ast::*;
use super::duration::format_duration;
use super::json::quote;

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
                ResponseExpect::Body(j) => {
                    w.word("response").word(&j.pat.print());
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
            if !exp.without.is_empty() {
                let keys: Vec<String> = exp
                    .without
                    .iter()
                    .map(|k| bare_or_quoted(&k.value))
                    .collect();
                w.word("without").word(&keys.join(", "));
            }
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
        self.0.push(quote(&t.value));
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
