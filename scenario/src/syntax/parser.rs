//! Line-by-line parser. A line that does not parse yields one diagnostic and parsing
//! goes on with the next line, so every broken line of a file is reported at once.

use super::ast::*;
use super::duration::parse_duration;
use super::lexer::{lex, Tok, Token};
use crate::diagnostic::{closest, Diagnostic, Span};

/// Words that begin steps; a user may not be named after one.
pub const STEP_WORDS: [&str; 6] = ["user", "business", "advance", "wait", "expect", "then"];

/// What a user can do: the word after a user's name.
pub const USER_VERBS: [&str; 10] = [
    "says", "taps", "opens", "calls", "hangs", "answers", "declines", "accepts", "rejects", "reads",
];

const BUSINESS_VERBS: [&str; 14] = [
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
];

/// Parses a whole file. The scenario holds every step that parsed; the diagnostics
/// every line that did not.
pub fn parse(text: &str) -> (Scenario, Vec<Diagnostic>) {
    let (tokens, mut diags) = lex(text);
    let mut steps = Vec::new();
    for line in tokens.split(|t| t.tok == Tok::Newline) {
        if line.is_empty() || line.iter().any(|t| t.tok == Tok::Error) {
            continue;
        }
        let mut cur = Cur::new(line);
        match parse_step(&mut cur) {
            Ok(kind) => steps.push(Step {
                span: line[0].span.to(line[line.len() - 1].span),
                kind,
            }),
            Err(d) => diags.push(d),
        }
    }
    diags.sort_by_key(|d| d.span.start);
    (Scenario { steps }, diags)
}

type PResult<T> = Result<T, Diagnostic>;

struct Cur<'a> {
    toks: &'a [Token],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn new(toks: &'a [Token]) -> Cur<'a> {
        Cur { toks, pos: 0 }
    }

    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos)
    }

    fn peek_word(&self) -> Option<&'a str> {
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn bump(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// Where "found the end of the line" points: just after the last token.
    fn here(&self) -> Span {
        match self.peek() {
            Some(t) => t.span,
            None => {
                let end = self.toks.last().map(|t| t.span.end).unwrap_or(0);
                Span::new(end, end)
            }
        }
    }

    fn found(&self) -> String {
        self.peek()
            .map(|t| t.tok.describe())
            .unwrap_or_else(|| "the end of the line".into())
    }

    /// "expected X, found Y", with a did-you-mean when the found word is a near miss.
    fn expected(&self, what: &str, options: &[&str]) -> Diagnostic {
        let mut d = Diagnostic::new(
            format!("expected {what}, found {}", self.found()),
            self.here(),
            format!("expected {what}"),
        );
        if let Some(w) = self.peek_word() {
            if let Some(s) = closest(w, options) {
                d = d.help(format!("did you mean `{s}`?"));
            }
        }
        d
    }

    fn eat(&mut self, word: &str) -> Option<Span> {
        if self.peek_word() == Some(word) {
            self.bump().map(|t| t.span)
        } else {
            None
        }
    }

    fn eat_any(&mut self, words: &[&str]) -> Option<Span> {
        words.iter().find_map(|w| self.eat(w))
    }

    fn expect(&mut self, word: &str) -> PResult<Span> {
        self.eat(word)
            .ok_or_else(|| self.expected(&format!("`{word}`"), &[word]))
    }

    fn name(&mut self, what: &str) -> PResult<Name> {
        match self.peek() {
            Some(Token {
                tok: Tok::Word(w),
                span,
            }) => {
                self.pos += 1;
                Ok(Name {
                    text: w.clone(),
                    span: *span,
                })
            }
            _ => Err(self.expected(what, &[])),
        }
    }

    fn text(&mut self, what: &str) -> PResult<Text> {
        match self.peek() {
            Some(Token {
                tok: Tok::Str(s),
                span,
            }) => {
                self.pos += 1;
                Ok(Text {
                    value: s.clone(),
                    span: *span,
                })
            }
            _ => Err(self.expected(what, &[]).help(format!(
                "write it in double quotes, like \"{}\"",
                example_for(what)
            ))),
        }
    }

    /// A string, or digits written bare (phone numbers).
    fn text_or_number(&mut self, what: &str) -> PResult<Text> {
        match self.peek() {
            Some(Token {
                tok: Tok::Num(n),
                span,
            }) => {
                self.pos += 1;
                Ok(Text {
                    value: n.clone(),
                    span: *span,
                })
            }
            _ => self.text(what),
        }
    }

    fn var(&mut self, what: &str) -> PResult<Var> {
        match self.peek() {
            Some(Token {
                tok: Tok::Var(v),
                span,
            }) => {
                self.pos += 1;
                Ok(Var {
                    name: v.clone(),
                    span: *span,
                })
            }
            _ => Err(self
                .expected(what, &[])
                .help("name it where it was made, e.g. `… as $call`, then write `$call` here")),
        }
    }

    fn dur(&mut self, what: &str) -> PResult<Dur> {
        match self.peek() {
            Some(Token {
                tok: Tok::Num(n),
                span,
            }) => {
                self.pos += 1;
                parse_duration(n).map(|ms| Dur { ms, span: *span }).map_err(|e| {
                    Diagnostic::new(format!("bad duration: {}", e.0), *span, "not a duration")
                        .help("write a number and a unit: 500ms, 30s, 5m, 2h, 7d, or combined like 1h30m")
                })
            }
            _ => Err(self
                .expected(what, &[])
                .help("write a number and a unit: 500ms, 30s, 5m, 2h, 7d, or combined like 1h30m")),
        }
    }

    fn int(&mut self, what: &str) -> PResult<Int> {
        match self.peek() {
            Some(Token {
                tok: Tok::Num(n),
                span,
            }) => {
                self.pos += 1;
                n.parse()
                    .map(|value| Int { value, span: *span })
                    .map_err(|_| {
                        Diagnostic::new(
                            format!("`{n}` is not a whole number"),
                            *span,
                            "expected digits only",
                        )
                    })
            }
            _ => Err(self.expected(what, &[])),
        }
    }

    fn json(&mut self, what: &str) -> PResult<Json> {
        match self.peek() {
            Some(Token {
                tok: Tok::Json(p),
                span,
            }) => {
                self.pos += 1;
                Ok(Json {
                    pat: p.clone(),
                    span: *span,
                })
            }
            _ => Err(self
                .expected(what, &[])
                .help("write JSON like {\"status\": \"ENABLED\"}")),
        }
    }

    /// An optional trailing `as $name`.
    fn bind(&mut self) -> PResult<Option<Var>> {
        if self.eat("as").is_some() {
            Ok(Some(self.var("a `$name` after `as`")?))
        } else {
            Ok(None)
        }
    }

    fn finish(&self) -> PResult<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(Diagnostic::new(
                format!("unexpected {} at the end of the step", t.tok.describe()),
                t.span.to(self.toks[self.toks.len() - 1].span),
                "not understood",
            )
            .help("each line holds one step; see the README for what may follow")),
        }
    }
}

fn example_for(what: &str) -> &'static str {
    if what.contains("payload") {
        "order-42"
    } else if what.contains("link") {
        "https://wa.me/call/15550783881"
    } else if what.contains("template") {
        "support_call"
    } else {
        "some text"
    }
}

/// Fills an optional clause once; a second occurrence is an error pointing at it.
fn once<T>(slot: &mut Option<T>, value: T, clause: &str, span: Span) -> PResult<()> {
    if slot.is_some() {
        return Err(
            Diagnostic::new(format!("`{clause}` is given twice"), span, "second time")
                .help(format!("keep one `{clause}`")),
        );
    }
    *slot = Some(value);
    Ok(())
}

fn parse_step(cur: &mut Cur) -> PResult<StepKind> {
    let first = cur.peek().expect("lines are not empty");
    let Tok::Word(word) = &first.tok else {
        return Err(unknown_step(first, None));
    };
    let kind = match word.as_str() {
        "user" => {
            cur.bump();
            StepKind::User(user_decl(cur)?)
        }
        "advance" => {
            cur.bump();
            StepKind::Advance(cur.dur("a duration like `2h`")?)
        }
        "wait" => {
            cur.bump();
            StepKind::Wait(cur.dur("a duration like `2s`")?)
        }
        "business" => {
            cur.bump();
            if cur.eat("uses").is_some() {
                StepKind::UseNumber(business_number(cur)?)
            } else {
                let action = business(cur)?;
                let bind = cur.bind()?;
                StepKind::Business { action, bind }
            }
        }
        "expect" => {
            cur.bump();
            expect(cur, false)?
        }
        "then" => {
            cur.bump();
            cur.expect("expect")?;
            let kind = expect(cur, true)?;
            if matches!(kind, StepKind::ExpectResponse(_)) {
                return Err(Diagnostic::new(
                    "`then` orders webhooks and app requests, not responses",
                    first.span,
                    "not allowed here",
                )
                .help(
                    "a response expectation always checks the step just before it; drop `then`",
                ));
            }
            kind
        }
        _ => match cur.toks.get(1).map(|t| &t.tok) {
            Some(Tok::Word(verb)) if USER_VERBS.contains(&verb.as_str()) => {
                let user = cur.name("a user")?;
                let action = user_action(cur)?;
                let bind = cur.bind()?;
                StepKind::Act { user, action, bind }
            }
            _ => return Err(unknown_step(first, cur.toks.get(1))),
        },
    };
    cur.finish()?;
    Ok(kind)
}

fn unknown_step(first: &Token, second: Option<&Token>) -> Diagnostic {
    let what = first.tok.describe();
    let mut d = Diagnostic::new(
        format!("unknown step starting with {what}"),
        first.span,
        "no step starts like this",
    );
    let help = match (&first.tok, second.map(|t| &t.tok)) {
        (Tok::Word(w), _) if closest(w, &STEP_WORDS).is_some() => {
            format!(
                "did you mean `{}`?",
                closest(w, &STEP_WORDS).unwrap_or_default()
            )
        }
        (Tok::Word(w), Some(Tok::Word(v))) if closest(v, &USER_VERBS).is_some() => {
            d.span = second.map(|t| t.span).unwrap_or(d.span);
            d.message = format!("unknown user action `{v}`");
            d.label = "not something a user does".into();
            format!(
                "did you mean `{w} {}`? users can: {}",
                closest(v, &USER_VERBS).unwrap_or_default(),
                USER_VERBS.join(", ")
            )
        }
        _ => format!(
            "steps start with {}, or a user's name and one of: {}",
            STEP_WORDS.map(|w| format!("`{w}`")).join(", "),
            USER_VERBS.join(", ")
        ),
    };
    d.help(help)
}

fn user_decl(cur: &mut Cur) -> PResult<UserDecl> {
    let name = cur.name("the user's name, as in `user alice is android 2.25.30`")?;
    if STEP_WORDS.contains(&name.text.as_str()) {
        return Err(Diagnostic::new(
            format!("`{}` starts other steps and cannot name a user", name.text),
            name.span,
            "reserved word",
        )
        .help("pick another name, like `alice`"));
    }
    cur.expect("is")?;
    cur.eat("on");
    let names: Vec<&str> = Platform::ALL.iter().map(|(s, _)| *s).collect();
    let pname = cur.name("a platform (android, ios, smba, smbi, desktop, web)")?;
    let Some(platform) = Platform::ALL
        .iter()
        .find(|(s, _)| *s == pname.text)
        .map(|(_, p)| *p)
    else {
        let mut d = Diagnostic::new(
            format!("unknown platform `{}`", pname.text),
            pname.span,
            "not a platform",
        )
        .help(format!("platforms: {}", names.join(", ")));
        if let Some(s) = closest(&pname.text, &names) {
            d = d.help(format!(
                "did you mean `{s}`? platforms: {}",
                names.join(", ")
            ));
        }
        return Err(d);
    };
    let mut version = None;
    if let Some(Token {
        tok: Tok::Num(n),
        span,
    }) = cur.peek()
    {
        cur.pos += 1;
        let parts: Vec<&str> = n.split('.').collect();
        if parts.len() < 2
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(Diagnostic::new(
                format!("`{n}` is not a client version"),
                *span,
                "not a version",
            )
            .help("write the WhatsApp client version as dotted numbers, like 2.25.30"));
        }
        version = Some(Name {
            text: n.clone(),
            span: *span,
        });
    }
    let mut decl = UserDecl {
        name,
        platform,
        version,
        display_name: None,
        number: None,
        window_open: false,
    };
    while !cur.at_end() {
        let here = cur.here();
        if cur.eat("named").is_some() {
            let t = cur.text("the user's display name")?;
            once(&mut decl.display_name, t, "named", here)?;
        } else if cur.eat("with").is_some() {
            if cur.eat("number").is_some() {
                let t = cur.text_or_number("a phone number like 14085551234")?;
                if !t.value.chars().all(|c| c.is_ascii_digit()) || t.value.is_empty() {
                    return Err(Diagnostic::new(
                        format!("`{}` is not a phone number", t.value),
                        t.span,
                        "digits only",
                    )
                    .help("write the number in international form without `+`, like 14085551234"));
                }
                once(&mut decl.number, t, "with number", here)?;
            } else {
                cur.eat_any(&["an", "a"]);
                if cur.eat("open").is_some() {
                    cur.expect("window")?;
                    if decl.window_open {
                        return Err(Diagnostic::new(
                            "`with an open window` is given twice",
                            here,
                            "second time",
                        ));
                    }
                    decl.window_open = true;
                } else {
                    return Err(cur.expected(
                        "`number` or `an open window` after `with`",
                        &["number", "open"],
                    ));
                }
            }
        } else {
            return Err(cur.expected(
                "`named \"…\"`, `with number …`, `with an open window` or the end of the line",
                &["named", "with"],
            ));
        }
    }
    Ok(decl)
}

/// `[the] number 447700900461` after `business uses`: one of the emulator's business
/// numbers, by display number (or phone number id): bare digits, or in quotes as people
/// write them (`"+44 7700 900461"`).
fn business_number(cur: &mut Cur) -> PResult<Text> {
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

fn business(cur: &mut Cur) -> PResult<BusinessAction> {
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

fn method_and_path(cur: &mut Cur) -> PResult<(Name, Text)> {
    let method = cur.name("an HTTP method (GET, POST, DELETE)")?;
    if !["GET", "POST", "DELETE", "PUT"].contains(&method.text.as_str()) {
        return Err(Diagnostic::new(
            format!("`{}` is not an HTTP method", method.text),
            method.span,
            "not a method",
        )
        .help("use GET, POST, PUT or DELETE, in capitals"));
    }
    let path = match cur.peek() {
        Some(Token { tok: Tok::Path(p), span }) => {
            cur.pos += 1;
            Text { value: p.clone(), span: *span }
        }
        _ => return Err(cur.expected("a path like /messages", &[]).help("paths are relative to the business phone number (/messages, /calls, /settings) or the WABA (/message_templates), or absolute like /v21.0/…")),
    };
    Ok((method, path))
}

fn user_action(cur: &mut Cur) -> PResult<UserAction> {
    let verb = cur.name("what the user does")?;
    Ok(match verb.text.as_str() {
        "says" => UserAction::Say(cur.text("what the user says")?),
        "taps" => UserAction::Tap(cur.var("the message whose button is tapped, like `$msg`")?),
        "opens" => {
            if cur.eat("link").is_some() {
                UserAction::OpenLink(cur.text("the link, like \"https://wa.me/call/15550783881\"")?)
            } else {
                cur.eat("the");
                cur.expect("call")?;
                cur.expect("link")?;
                let (mut number, mut payload) = (None, None);
                while !cur.at_end() && cur.peek_word() != Some("as") {
                    let here = cur.here();
                    if cur.eat("to").is_some() {
                        let t = cur.text_or_number("the business number the link calls")?;
                        once(&mut number, t, "to", here)?;
                    } else if cur.eat("with").is_some() {
                        cur.expect("payload")?;
                        let t = cur.text("the biz_payload")?;
                        once(&mut payload, t, "with payload", here)?;
                    } else {
                        return Err(cur.expected(
                            "`to …`, `with payload \"…\"` or `as $name`",
                            &["to", "with", "as"],
                        ));
                    }
                }
                UserAction::OpenCallLink { number, payload }
            }
        }
        "calls" => {
            cur.eat("the");
            cur.expect("business")?;
            UserAction::CallBusiness
        }
        "hangs" => {
            cur.expect("up")?;
            UserAction::HangUp(cur.var("the call, like `$call`")?)
        }
        "answers" => UserAction::Answer(cur.var("the call, like `$call`")?),
        "declines" => UserAction::Decline(cur.var("the call, like `$call`")?),
        "accepts" | "rejects" => {
            let accept = verb.text == "accepts";
            cur.eat("the");
            cur.expect("call")?;
            cur.expect("permission")?;
            cur.eat("request");
            let request = match cur.peek() {
                Some(Token {
                    tok: Tok::Var(_), ..
                }) => Some(cur.var("the request")?),
                _ => None,
            };
            let permanent = if accept {
                cur.eat("permanently").is_some()
            } else {
                false
            };
            UserAction::ReplyPermission {
                accept,
                request,
                permanent,
            }
        }
        "reads" => UserAction::Read(cur.var("the message read, like `$msg`")?),
        _ => unreachable!("only called when the verb is a user verb"),
    })
}

fn expect(cur: &mut Cur, then: bool) -> PResult<StepKind> {
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
            Some(ResponseExpect::Body(
                cur.json("a JSON pattern the response must contain")?,
            ))
        }
        _ => None,
    };
    if let Some(r) = response {
        let _ = (then, start);
        return Ok(StepKind::ExpectResponse(r));
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
            loop {
                let key = match cur.peek() {
                    Some(Token {
                        tok: Tok::Word(w),
                        span,
                    }) => {
                        cur.pos += 1;
                        Text {
                            value: w.clone(),
                            span: *span,
                        }
                    }
                    _ => cur.text("a key that must be absent, like cta_payload")?,
                };
                exp.without.push(key);
                if cur.peek().map(|t| &t.tok) == Some(&Tok::Comma) {
                    cur.bump();
                } else {
                    break;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> StepKind {
        let (s, d) = parse(text);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.steps.len(), 1);
        s.steps.into_iter().next().unwrap().kind
    }

    fn err(text: &str) -> Diagnostic {
        let (_, d) = parse(text);
        assert_eq!(d.len(), 1, "{d:?}");
        d.into_iter().next().unwrap()
    }

    #[test]
    fn parses_a_user_declaration_with_clauses_in_any_order() {
        let StepKind::User(u) =
            one("user alice is android 2.25.30 with number 14085551234 named \"Alice\"")
        else {
            panic!()
        };
        assert_eq!(u.name.text, "alice");
        assert_eq!(u.platform, Platform::Android);
        assert_eq!(u.version.unwrap().text, "2.25.30");
        assert_eq!(u.number.unwrap().value, "14085551234");
        assert_eq!(u.display_name.unwrap().value, "Alice");
    }

    #[test]
    fn parses_a_call_button_with_every_clause() {
        let StepKind::Business { action: BusinessAction::SendButton { label, payload, ttl, body, .. }, bind } =
            one("business sends alice a call button \"Call us\" saying \"Hi\" with ttl 100m with payload \"p\" as $msg")
        else {
            panic!()
        };
        assert_eq!(label.unwrap().value, "Call us");
        assert_eq!(body.unwrap().value, "Hi");
        assert_eq!(payload.unwrap().value, "p");
        assert_eq!(ttl.unwrap().ms, 6_000_000);
        assert_eq!(bind.unwrap().name, "msg");
    }

    #[test]
    fn parses_webhook_expectations() {
        let StepKind::ExpectWebhook { then, exp } =
            one("then expect a calls webhook terminate for $call with {\"duration\": 120} without cta_payload, \"deeplink_payload\" within 1m as $t")
        else {
            panic!()
        };
        assert!(then);
        assert_eq!(exp.field.text, "calls");
        assert_eq!(exp.event.unwrap().text, "terminate");
        assert_eq!(exp.without.len(), 2);
        assert_eq!(exp.within.unwrap().ms, 60_000);
        let StepKind::ExpectWebhook { exp, .. } = one("expect no calls webhook within 30s") else {
            panic!()
        };
        assert_eq!(exp.quant, Quant::No);
        assert!(exp.event.is_none());
    }

    #[test]
    fn parses_app_expectations_with_either_spelling_of_pre_accept() {
        for text in [
            "expect the app to pre_accept $call within 5s",
            "expect the app to pre-accept $call within 5s",
        ] {
            let StepKind::ExpectApp { exp, .. } = one(text) else {
                panic!()
            };
            assert!(matches!(
                exp.action,
                AppAction::CallAction(CallVerb::PreAccept, _)
            ));
        }
    }

    #[test]
    fn parses_the_business_number_a_story_acts_as() {
        for (text, number) in [
            ("business uses number 447700900461", "447700900461"),
            (
                "business uses the number \"+44 7700 900461\"",
                "+44 7700 900461",
            ),
        ] {
            let StepKind::UseNumber(n) = one(text) else {
                panic!()
            };
            assert_eq!(n.value, number);
        }
        assert!(err("business uses number \"UK\"")
            .message
            .contains("is not a phone number"));
        assert_eq!(
            err("business usess number 447700900461").help.as_deref(),
            Some("did you mean `uses`? the business can: sends, asks, creates, calls, pre-accepts, accepts, rejects, terminates, checks, enables, disables, updates, reads, uses, requests")
        );
    }

    #[test]
    fn unknown_steps_suggest_the_nearest_word() {
        let d = err("advence 2h");
        assert!(d.message.contains("unknown step"));
        assert_eq!(d.help.as_deref(), Some("did you mean `advance`?"));
        let d = err("alice tapps $msg");
        assert!(d.help.unwrap().contains("alice taps"));
    }

    #[test]
    fn every_broken_line_is_reported() {
        let (_, d) =
            parse("advance 2x\nuser bob is androd\nbusiness sends bob a call button with ttl\n");
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn trailing_junk_is_an_error() {
        assert!(err("advance 2h now").message.contains("unexpected `now`"));
    }
}
