//! Line-by-line parser. A line that does not parse yields one diagnostic and parsing
//! goes on with the next line, so every broken line of a file is reported at once.
//!
//! The first word of a line says who acts, and so which file parses it: `parse_step`
//! below is the table.
//!
//! # Layout
//! - `mod.rs`: [`parse`], the first-word dispatch, `advance`/`wait`, unknown steps.
//! - `cursor.rs`: the token cursor over one line: spans, "expected X, found Y" errors
//!   with a did-you-mean, and the clauses every family shares.
//! - `user.rs`: `user alice is android 2.25.30 …` and what users do (`alice taps $msg`,
//!   `alice calls the business`, `alice hangs up $call`, …).
//! - `business.rs`: `business has number …`, `business uses number …` and what the
//!   business does (`business sends alice …`, `business calls alice`, `business accepts
//!   $call`, …).
//! - `expect.rs`: `expect …` and `then expect …`: responses, webhooks, app requests.

use super::ast::*;
use super::lexer::{lex, Tok, Token};
use crate::diagnostic::{closest, Diagnostic};
use cursor::{Cur, PResult};

mod business;
mod cursor;
mod expect;
mod user;

/// Words that begin steps; a user may not be named after one.
pub const STEP_WORDS: [&str; 6] = ["user", "business", "advance", "wait", "expect", "then"];

/// What a user can do: the word after a user's name.
pub const USER_VERBS: [&str; 12] = [
    "says", "taps", "opens", "calls", "hangs", "answers", "declines", "accepts", "rejects",
    "reads", "presses", "plays",
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

fn parse_step(cur: &mut Cur) -> PResult<StepKind> {
    let first = cur.peek().expect("lines are not empty");
    let Tok::Word(word) = &first.tok else {
        return Err(unknown_step(first, None));
    };
    let kind = match word.as_str() {
        "user" => {
            cur.bump();
            StepKind::User(user::declaration(cur)?)
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
                StepKind::UseNumber(business::number(cur)?)
            } else if cur.eat("has").is_some() {
                let number = business::has_number(cur)?;
                let bind = cur.bind()?;
                StepKind::AddNumber { number, bind }
            } else {
                let action = business::action(cur)?;
                let bind = cur.bind()?;
                StepKind::Business { action, bind }
            }
        }
        "expect" => {
            cur.bump();
            expect::expectation(cur, false)?
        }
        "then" => {
            cur.bump();
            cur.expect("expect")?;
            let kind = expect::expectation(cur, true)?;
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
                let action = user::action(cur)?;
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
    fn parses_media_steps_keys_tones_and_expectations() {
        let StepKind::Act {
            action: UserAction::Press { keys, call },
            ..
        } = one("alice presses \"12#\" on $call")
        else {
            panic!()
        };
        assert_eq!((keys.value.as_str(), call.name.as_str()), ("12#", "call"));
        // Bare digits are keys too; `#` unquoted would start a comment.
        let StepKind::Act {
            action: UserAction::Press { keys, .. },
            ..
        } = one("alice presses 42 on $call")
        else {
            panic!()
        };
        assert_eq!(keys.value, "42");
        assert!(matches!(
            one("alice plays a 440 Hz tone on $call"),
            StepKind::Act {
                action: UserAction::Play {
                    sound: Sound::Tone(Int { value: 440, .. }),
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            one("alice plays silence on $call"),
            StepKind::Act {
                action: UserAction::Play {
                    sound: Sound::Silence,
                    ..
                },
                ..
            }
        ));
        let StepKind::ExpectMedia(m) = one("expect alice to hear audio on $call within 3s") else {
            panic!()
        };
        assert!(matches!(m.check, MediaCheck::Hears { keys: None, .. }));
        assert_eq!(m.within.unwrap().ms, 3_000);
        let StepKind::ExpectMedia(m) = one("expect alice to hear keys \"12\" on $call") else {
            panic!()
        };
        assert!(
            matches!(m.check, MediaCheck::Hears { keys: Some(Text { ref value, .. }), .. } if value == "12")
        );
        assert!(m.within.is_none());
        let StepKind::ExpectMedia(m) =
            one("expect media for $call with {\"state\": \"connected\"} within 2s")
        else {
            panic!()
        };
        assert!(matches!(m.check, MediaCheck::Report(_)));
        let d = err("alice plays a 440 tone on $call");
        assert!(d.message.contains("Hz"), "{}", d.message);
        let d = err("expect alice to hear music on $call");
        assert!(d.message.contains("audio"), "{}", d.message);
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
            Some("did you mean `uses`? the business can: sends, asks, creates, calls, pre-accepts, accepts, rejects, terminates, checks, enables, disables, updates, reads, uses, has, requests")
        );
    }

    #[test]
    fn parses_a_business_number_to_add() {
        let StepKind::AddNumber { number, bind } = one("business has number 5511962185237 as $br")
        else {
            panic!()
        };
        assert_eq!(number.number.value, "5511962185237");
        assert_eq!(
            (number.country, number.test, number.business_initiated),
            (None, false, None)
        );
        assert_eq!(bind.unwrap().name, "br");
        let StepKind::AddNumber { number, bind } = one(
            "business has a test number \"+55 11 96218-5237\" without business-initiated calling in country BR",
        ) else {
            panic!()
        };
        assert_eq!(number.number.value, "+55 11 96218-5237");
        assert_eq!(number.country.unwrap().text, "BR");
        assert!(number.test);
        assert_eq!(number.business_initiated, Some(false));
        assert!(bind.is_none());
        assert!(err("business has number 5511962185237 in BR")
            .message
            .contains("expected `country`"));
        assert!(
            err("business has number 5511962185237 with business-initiated calls")
                .message
                .contains("expected `calling`")
        );
    }

    #[test]
    fn parses_response_expectations_with_and_without_keys() {
        let StepKind::ExpectResponse(ResponseExpect::Body { with, without }) =
            one("expect response {\"a\": now + 7d} without error, \"b c\"")
        else {
            panic!()
        };
        assert!(with.is_some());
        assert_eq!(without.len(), 2);
        let StepKind::ExpectResponse(ResponseExpect::Body { with, without }) =
            one("expect response without error")
        else {
            panic!()
        };
        assert!(with.is_none());
        assert_eq!(without[0].value, "error");
        assert!(err("expect response")
            .message
            .contains("expected a JSON pattern or `without`"));
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
