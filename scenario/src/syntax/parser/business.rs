//! Steps of the business: the numbers it has (`business has number …`), which one it
//! acts as (`business uses number …`) and what it does (`business sends alice a call button …`, `business calls alice`, `business
//! accepts $call`, `business updates settings {…}`, `business requests GET /…`, …).

use super::cursor::{method_and_path, once, Cur, PResult};
use crate::diagnostic::{closest, Diagnostic};
use crate::syntax::ast::*;
use crate::syntax::lexer::{Tok, Token};

const BUSINESS_VERBS: [&str; 15] = [
    "sends",
    "asks",
    "creates",
    "calls",
    "pre-accepts",
    "accepts",
    "rejects",
    "terminates",
    "checks",
    "enables",
    "disables",
    "updates",
    "reads",
    "uses",
    "has",
];

/// `[the] number 447700900461` after `business uses`: one of the emulator's business
/// numbers, by display number (or phone number id): bare digits, or in quotes as people
/// write them (`"+44 7700 900461"`).
pub(super) fn number(cur: &mut Cur) -> PResult<Text> {
    const HELP: &str =
        "write the business's display number, like 447700900461 or \"+44 7700 900461\"";
    cur.eat("the");
    cur.eat("phone");
    cur.expect("number")?;
    let t = match cur.peek().map(|t| &t.tok) {
        Some(Tok::Num(_) | Tok::Str(_)) => cur.text_or_number("a business phone number")?,
        _ => return Err(cur.expected("a business phone number", &[]).help(HELP)),
    };
    let rest = t.value.strip_prefix('+').unwrap_or(&t.value);
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    if digits == 0
        || !rest
            .chars()
            .all(|c| c.is_ascii_digit() || " -()".contains(c))
    {
        return Err(Diagnostic::new(
            format!("`{}` is not a phone number", t.value),
            t.span,
            "not a phone number",
        )
        .help(HELP));
    }
    Ok(t)
}

/// After `business has`: `[a] [test] number N` and its clauses, in any order: `in country
/// XX`, `with business-initiated calling` or `without business-initiated calling`.
pub(super) fn has_number(cur: &mut Cur) -> PResult<NumberDecl> {
    cur.eat_any(&["a", "an"]);
    let test = cur.eat("test").is_some();
    let number = number(cur)?;
    let mut decl = NumberDecl {
        number,
        country: None,
        test,
        business_initiated: None,
    };
    while !cur.at_end() && cur.peek_word() != Some("as") {
        let here = cur.here();
        if cur.eat("in").is_some() {
            cur.expect("country")?;
            let c = cur.name("a country code like BR")?;
            once(&mut decl.country, c, "in country", here)?;
        } else if let Some(w @ ("with" | "without")) = cur.peek_word() {
            let allowed = w == "with";
            cur.bump();
            cur.expect("business-initiated")?;
            cur.expect("calling")?;
            once(
                &mut decl.business_initiated,
                allowed,
                "with/without business-initiated calling",
                here,
            )?;
        } else {
            return Err(cur.expected(
                "`in country …`, `with business-initiated calling`, `without business-initiated calling` or `as $name`",
                &["in", "with", "without", "as"],
            ));
        }
    }
    Ok(decl)
}

/// After `business`: the verb (one of `BUSINESS_VERBS`, or `requests`) and what
/// follows it, up to the step's `as $name`.
pub(super) fn action(cur: &mut Cur) -> PResult<BusinessAction> {
    let verb_tok = cur.peek();
    let Some(verb) = cur.peek_word() else {
        return Err(cur.expected(
            "what the business does (sends, calls, accepts, …)",
            &BUSINESS_VERBS,
        ));
    };
    let verb = verb.replace('_', "-");
    cur.bump();
    let call_verb = match verb.as_str() {
        "pre-accepts" => Some(CallVerb::PreAccept),
        "accepts" => Some(CallVerb::Accept),
        "rejects" => Some(CallVerb::Reject),
        "terminates" => Some(CallVerb::Terminate),
        _ => None,
    };
    if let Some(verb) = call_verb {
        let call = cur.var("the call, like `$call`")?;
        let callback = callback_clause(cur)?;
        return Ok(BusinessAction::CallAction {
            verb,
            call,
            callback,
        });
    }
    Ok(match verb.as_str() {
        "sends" => {
            let to = cur.name("who the business sends to")?;
            let article = cur.eat_any(&["a", "an", "the"]);
            if cur.eat("template").is_some() {
                let name = cur.text("the template's name")?;
                let (mut language, mut payload, mut ttl) = (None, None, None);
                while !cur.at_end() && cur.peek_word() != Some("as") {
                    let here = cur.here();
                    if cur.eat("in").is_some() {
                        cur.expect("language")?;
                        let t = cur.text("a language code like \"en\"")?;
                        once(&mut language, t, "in language", here)?;
                    } else if let Some((p, t)) = payload_or_ttl(cur)? {
                        match (p, t) {
                            (Some(p), _) => once(&mut payload, p, "with payload", here)?,
                            (_, Some(t)) => once(&mut ttl, t, "with ttl", here)?,
                            _ => {}
                        }
                    } else {
                        return Err(cur.expected(
                            "`with payload \"…\"`, `with ttl …`, `in language \"…\"` or `as $name`",
                            &["with", "in", "as"],
                        ));
                    }
                }
                BusinessAction::SendTemplate {
                    to,
                    name,
                    language,
                    payload,
                    ttl,
                }
            } else if cur.eat("call").is_some() {
                cur.expect("button")?;
                let label = match cur.peek() {
                    Some(Token {
                        tok: Tok::Str(_), ..
                    }) => Some(cur.text("the button's text")?),
                    _ => None,
                };
                let (mut body, mut payload, mut ttl) = (None, None, None);
                while !cur.at_end() && cur.peek_word() != Some("as") {
                    let here = cur.here();
                    if cur.eat("saying").is_some() {
                        let t = cur.text("the message body")?;
                        once(&mut body, t, "saying", here)?;
                    } else if let Some((p, t)) = payload_or_ttl(cur)? {
                        match (p, t) {
                            (Some(p), _) => once(&mut payload, p, "with payload", here)?,
                            (_, Some(t)) => once(&mut ttl, t, "with ttl", here)?,
                            _ => {}
                        }
                    } else {
                        return Err(cur.expected(
                            "`saying \"…\"`, `with payload \"…\"`, `with ttl …` or `as $name`",
                            &["saying", "with", "as"],
                        ));
                    }
                }
                BusinessAction::SendButton {
                    to,
                    label,
                    body,
                    payload,
                    ttl,
                }
            } else if cur.eat("text").is_some() {
                let text = cur.text("the text to send")?;
                BusinessAction::SendText { to, text }
            } else {
                let _ = article;
                return Err(cur.expected(
                    "`a call button`, `a text \"…\"` or `template \"…\"`",
                    &["call", "text", "template"],
                ));
            }
        }
        "asks" => {
            let to = cur.name("who the business asks")?;
            cur.expect("for")?;
            cur.expect("call")?;
            cur.expect("permission")?;
            let body = if cur.eat("saying").is_some() {
                Some(cur.text("the request's body text")?)
            } else {
                None
            };
            BusinessAction::AskPermission { to, body }
        }
        "creates" => {
            cur.expect("template")?;
            let name = cur.text("the template's name")?;
            cur.expect("with")?;
            cur.eat_any(&["a", "an"]);
            cur.expect("call")?;
            cur.expect("button")?;
            let label = match cur.peek() {
                Some(Token {
                    tok: Tok::Str(_), ..
                }) => Some(cur.text("the button's text")?),
                _ => None,
            };
            let (mut body, mut ttl, mut category, mut language) = (None, None, None, None);
            while !cur.at_end() && cur.peek_word() != Some("as") {
                let here = cur.here();
                if cur.eat("saying").is_some() {
                    let t = cur.text("the template body")?;
                    once(&mut body, t, "saying", here)?;
                } else if cur.eat("with").is_some() {
                    cur.expect("ttl")?;
                    let d = cur.dur("the button's time to live, like `1d`")?;
                    once(&mut ttl, d, "with ttl", here)?;
                } else if cur.eat("in").is_some() {
                    if cur.eat("category").is_some() {
                        let n = cur.name("a category: UTILITY, MARKETING or AUTHENTICATION")?;
                        once(&mut category, n, "in category", here)?;
                    } else if cur.eat("language").is_some() {
                        let t = cur.text("a language code like \"en\"")?;
                        once(&mut language, t, "in language", here)?;
                    } else {
                        return Err(cur.expected(
                            "`category` or `language` after `in`",
                            &["category", "language"],
                        ));
                    }
                } else {
                    return Err(cur.expected("`saying \"…\"`, `with ttl …`, `in category …`, `in language \"…\"` or `as $name`", &["saying", "with", "in", "as"]));
                }
            }
            BusinessAction::CreateTemplate {
                name,
                label,
                body,
                ttl,
                category,
                language,
            }
        }
        "calls" => {
            let to = cur.name("who the business calls")?;
            let callback = callback_clause(cur)?;
            BusinessAction::Call { to, callback }
        }
        "checks" => {
            cur.expect("call")?;
            cur.eat("permission")
                .or_else(|| cur.eat("permissions"))
                .ok_or_else(|| cur.expected("`permission`", &["permission"]))?;
            cur.expect("for")?;
            let user = cur.name("whose permission to check")?;
            BusinessAction::CheckPermission { user }
        }
        "enables" | "disables" => {
            cur.expect("calling")?;
            BusinessAction::SetCalling {
                enabled: verb == "enables",
            }
        }
        "updates" => {
            cur.expect("settings")?;
            let json =
                cur.json("the settings as JSON, like {\"calling\": {\"status\": \"ENABLED\"}}")?;
            BusinessAction::UpdateSettings { json }
        }
        "reads" => {
            cur.expect("settings")?;
            BusinessAction::ReadSettings
        }
        "requests" => {
            let (method, path) = method_and_path(cur)?;
            let body = match cur.peek() {
                Some(Token {
                    tok: Tok::Json(_), ..
                }) => Some(cur.json("a JSON body")?),
                _ => None,
            };
            BusinessAction::Request { method, path, body }
        }
        other => {
            let span = verb_tok.map(|t| t.span).unwrap_or_default();
            let mut d = Diagnostic::new(
                format!("unknown business action `{other}`"),
                span,
                "not something the business does",
            );
            let list = BUSINESS_VERBS.join(", ");
            d = match closest(other, &BUSINESS_VERBS) {
                Some(s) => d.help(format!(
                    "did you mean `{s}`? the business can: {list}, requests"
                )),
                None => d.help(format!("the business can: {list}, requests")),
            };
            return Err(d);
        }
    })
}

/// `with payload "…"` or `with ttl …`, if the cursor is at one.
#[allow(clippy::type_complexity)]
fn payload_or_ttl(cur: &mut Cur) -> PResult<Option<(Option<Text>, Option<Dur>)>> {
    if cur.peek_word() != Some("with") {
        return Ok(None);
    }
    cur.bump();
    if cur.eat("payload").is_some() {
        Ok(Some((Some(cur.text("the payload")?), None)))
    } else if cur.eat("ttl").is_some() {
        Ok(Some((
            None,
            Some(cur.dur("the button's time to live, like `100m`")?),
        )))
    } else {
        Err(cur.expected("`payload` or `ttl` after `with`", &["payload", "ttl"]))
    }
}

fn callback_clause(cur: &mut Cur) -> PResult<Option<Text>> {
    if cur.eat("with").is_some() {
        cur.expect("callback")?;
        cur.expect("data")?;
        Ok(Some(cur.text("the biz_opaque_callback_data")?))
    } else {
        Ok(None)
    }
}
