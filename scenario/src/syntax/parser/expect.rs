//! Expectations: `expect status 200`, `expect error 138013`, `expect success`, `expect
//! response {…} without …` (of the step before); `[then] expect a calls webhook connect for $call
//! with {…} …` (webhooks delivered); `[then] expect the app to accept $call …` (requests
//! the app under test makes).

use super::cursor::{method_and_path, once, Cur, PResult};
use crate::diagnostic::{closest, Diagnostic};
use crate::syntax::ast::*;
use crate::syntax::lexer::{Tok, Token};

/// After `expect` (or `then expect`, when `then` is true).
pub(super) fn expectation(cur: &mut Cur, then: bool) -> PResult<StepKind> {
    const STARTS: [&str; 9] = [
        "a", "an", "no", "exactly", "status", "error", "response", "success", "the",
    ];
    let start = cur.here();
    let response = match cur.peek_word() {
        Some("status") => {
            cur.bump();
            Some(ResponseExpect::Status(cur.int("an HTTP status like 200")?))
        }
        Some("error") => {
            cur.bump();
            let code = match cur.peek() {
                Some(Token {
                    tok: Tok::Num(_), ..
                }) => Some(cur.int("an error code")?),
                _ => None,
            };
            let status = if cur.eat("with").is_some() {
                cur.expect("status")?;
                Some(cur.int("an HTTP status like 400")?)
            } else {
                None
            };
            Some(ResponseExpect::Error { code, status })
        }
        Some("success") => {
            cur.bump();
            Some(ResponseExpect::Success)
        }
        Some("response") => {
            cur.bump();
            let with = match cur.peek() {
                Some(Token {
                    tok: Tok::Json(_), ..
                }) => Some(cur.json("a JSON pattern the response must contain")?),
                _ => None,
            };
            let without = if cur.eat("without").is_some() {
                cur.keys()?
            } else if with.is_none() {
                return Err(cur
                    .expected(
                        "a JSON pattern or `without` after `expect response`",
                        &["without"],
                    )
                    .help("write `expect response {\"status\": \"ok\"}` or `expect response without error`"));
            } else {
                Vec::new()
            };
            Some(ResponseExpect::Body { with, without })
        }
        _ => None,
    };
    if let Some(r) = response {
        let _ = (then, start);
        return Ok(StepKind::ExpectResponse(r));
    }
    if let Some(m) = media_expect(cur)? {
        return Ok(StepKind::ExpectMedia(m));
    }
    if cur.eat("the").is_some() {
        cur.expect("app")?;
        let negated = cur.eat("not").is_some();
        cur.expect("to")?;
        let exp = app_expect(cur, negated)?;
        return Ok(StepKind::ExpectApp { then, exp });
    }
    let quant = if cur.eat_any(&["a", "an"]).is_some() {
        Quant::A
    } else if cur.eat("no").is_some() {
        Quant::No
    } else if cur.eat("exactly").is_some() {
        Quant::Exactly(cur.int("how many")?)
    } else if let Some(Token {
        tok: Tok::Num(_), ..
    }) = cur.peek()
    {
        Quant::Exactly(cur.int("how many")?)
    } else {
        return Err(cur.expected(
            "`a`, `no` or a count before a webhook, or `status`, `error`, `success`, `response`, `the app`",
            &STARTS,
        ));
    };
    let field = cur.name("a webhook field like `calls` or `messages`")?;
    if cur.eat("webhook").or_else(|| cur.eat("webhooks")).is_none() {
        return Err(cur.expected("`webhook`", &["webhook", "webhooks"]));
    }
    const CLAUSES: [&str; 5] = ["for", "with", "without", "within", "as"];
    let event = match cur.peek_word() {
        Some(w) if !CLAUSES.contains(&w) => Some(cur.name("an event")?),
        _ => None,
    };
    let mut exp = WebhookExpect {
        quant,
        field,
        event,
        subject: None,
        with: None,
        without: Vec::new(),
        within: None,
        bind: None,
    };
    while !cur.at_end() && cur.peek_word() != Some("as") {
        let here = cur.here();
        if cur.eat("for").is_some() {
            let s = subject(cur)?;
            once(&mut exp.subject, s, "for", here)?;
        } else if cur.eat("with").is_some() {
            let j = cur.json("a JSON pattern the webhook must contain")?;
            once(&mut exp.with, j, "with", here)?;
        } else if cur.eat("without").is_some() {
            if !exp.without.is_empty() {
                return Err(
                    Diagnostic::new("`without` is given twice", here, "second time")
                        .help("list the keys after one `without`, separated by commas"),
                );
            }
            exp.without = cur.keys()?;
        } else if cur.eat("within").is_some() {
            let d = cur.dur("a time window like `30s`")?;
            once(&mut exp.within, d, "within", here)?;
        } else {
            return Err(cur.expected(
                "`for …`, `with {…}`, `without …`, `within …` or `as $name`",
                &CLAUSES,
            ));
        }
    }
    exp.bind = cur.bind()?;
    Ok(StepKind::ExpectWebhook { then, exp })
}

fn subject(cur: &mut Cur) -> PResult<Subject> {
    match cur.peek() {
        Some(Token {
            tok: Tok::Var(_), ..
        }) => Ok(Subject::Var(cur.var("a call or message")?)),
        Some(Token {
            tok: Tok::Word(_), ..
        }) => Ok(Subject::User(cur.name("a user")?)),
        _ => Err(cur.expected("a `$call`, a `$message` or a user after `for`", &[])),
    }
}

fn app_expect(cur: &mut Cur, negated: bool) -> PResult<AppExpect> {
    const VERBS: [&str; 9] = [
        "pre-accept",
        "accept",
        "reject",
        "terminate",
        "call",
        "send",
        "ask",
        "request",
        "pre_accept",
    ];
    let Some(verb) = cur.peek_word() else {
        return Err(cur.expected(
            "what the app does (pre-accept, accept, call, send, …)",
            &VERBS,
        ));
    };
    let verb = verb.replace('_', "-");
    let verb_span = cur.here();
    cur.bump();
    let call_verb = match verb.as_str() {
        "pre-accept" => Some(CallVerb::PreAccept),
        "accept" => Some(CallVerb::Accept),
        "reject" => Some(CallVerb::Reject),
        "terminate" => Some(CallVerb::Terminate),
        _ => None,
    };
    let action = if let Some(v) = call_verb {
        AppAction::CallAction(v, cur.var("the call, like `$call`")?)
    } else {
        match verb.as_str() {
            "call" => AppAction::Call(cur.name("who the app calls")?),
            "send" => {
                let to = cur.name("who the app sends to")?;
                cur.eat_any(&["a", "an", "the"]);
                if cur.eat("template").is_some() {
                    AppAction::SendTemplate {
                        to,
                        name: cur.text("the template's name")?,
                    }
                } else if cur.eat("call").is_some() {
                    cur.expect("button")?;
                    let payload = if cur.peek_word() == Some("with")
                        && matches!(cur.toks.get(cur.pos + 1).map(|t| &t.tok), Some(Tok::Word(w)) if w == "payload")
                    {
                        cur.bump();
                        cur.bump();
                        Some(cur.text("the payload")?)
                    } else {
                        None
                    };
                    AppAction::SendButton { to, payload }
                } else if cur.eat("message").is_some() {
                    AppAction::SendMessage { to }
                } else {
                    return Err(cur.expected(
                        "`a call button`, `template \"…\"` or `a message`",
                        &["call", "template", "message"],
                    ));
                }
            }
            "ask" => {
                let to = cur.name("who the app asks")?;
                cur.expect("for")?;
                cur.expect("call")?;
                cur.expect("permission")?;
                AppAction::AskPermission { to }
            }
            "request" => {
                let (method, path) = method_and_path(cur)?;
                AppAction::Request { method, path }
            }
            other => {
                let mut d = Diagnostic::new(
                    format!("unknown app action `{other}`"),
                    verb_span,
                    "not an app action",
                );
                d = match closest(other, &VERBS) {
                    Some(s) => d.help(format!(
                        "did you mean `{s}`? the app can be expected to: {}",
                        VERBS[..8].join(", ")
                    )),
                    None => d.help(format!(
                        "the app can be expected to: {}",
                        VERBS[..8].join(", ")
                    )),
                };
                return Err(d);
            }
        }
    };
    let mut exp = AppExpect {
        negated,
        action,
        with: None,
        within: None,
        bind: None,
    };
    while !cur.at_end() && cur.peek_word() != Some("as") {
        let here = cur.here();
        if cur.eat("with").is_some() {
            let j = cur.json("a JSON pattern the request body must contain")?;
            once(&mut exp.with, j, "with", here)?;
        } else if cur.eat("within").is_some() {
            let d = cur.dur("a time window like `5s`")?;
            once(&mut exp.within, d, "within", here)?;
        } else {
            return Err(cur.expected(
                "`with {…}`, `within …` or `as $name`",
                &["with", "within", "as"],
            ));
        }
    }
    exp.bind = cur.bind()?;
    Ok(exp)
}

/// `alice to hear audio on $call [within D]`, `alice to hear keys "12" on $call …`,
/// `media for $call with {…} [within D]`; `None` when the line is another expectation.
fn media_expect(cur: &mut Cur) -> PResult<Option<MediaExpect>> {
    let word = |i: usize| match cur.toks.get(cur.pos + i).map(|t| &t.tok) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let check = if word(0) == Some("media") && word(1) == Some("for") {
        cur.bump();
        cur.bump();
        let call = cur.var("the call, like `$call`")?;
        cur.expect("with")?;
        let json =
            cur.json("a JSON pattern of the media report, like {\"state\": \"connected\"}")?;
        (MediaCheck::Report(json), call)
    } else if word(1) == Some("to") && word(2) == Some("hear") {
        let user = cur.name("a user")?;
        cur.bump();
        cur.bump();
        let keys = if cur.eat("keys").is_some() {
            Some(cur.text_or_number("the keys, like \"12#\"")?)
        } else {
            cur.expect("audio")?;
            None
        };
        cur.expect("on")?;
        let call = cur.var("the call, like `$call`")?;
        (MediaCheck::Hears { user, keys }, call)
    } else {
        return Ok(None);
    };
    let within = if cur.eat("within").is_some() {
        Some(cur.dur("how long to wait, like `3s`")?)
    } else {
        None
    };
    Ok(Some(MediaExpect {
        check: check.0,
        call: check.1,
        within,
    }))
}
