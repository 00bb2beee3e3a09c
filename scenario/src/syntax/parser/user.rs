//! Steps about users: declaring one (`user alice is android 2.25.30 named "Alice"`)
//! and what a user does (`alice says …`, `alice taps $msg`, `alice opens the call link
//! …`, `alice calls the business`, `alice hangs up $call`, `alice accepts the call
//! permission request $req`, …).

use super::cursor::{once, Cur, PResult};
use super::STEP_WORDS;
use crate::diagnostic::{closest, Diagnostic};
use crate::syntax::ast::*;
use crate::syntax::lexer::{Tok, Token};

/// After `user`: `alice is android 2.25.30` and its clauses, in any order.
pub(super) fn declaration(cur: &mut Cur) -> PResult<UserDecl> {
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

/// After a user's name: the verb (one of `USER_VERBS`) and what follows it.
pub(super) fn action(cur: &mut Cur) -> PResult<UserAction> {
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
        "presses" => {
            let keys =
                cur.text_or_number("the keys, like \"12#\" (quoted: `#` starts a comment)")?;
            cur.expect("on")?;
            UserAction::Press {
                keys,
                call: cur.var("the call, like `$call`")?,
            }
        }
        "plays" => {
            let sound = if cur.eat("silence").is_some() {
                Sound::Silence
            } else {
                cur.eat_any(&["a", "an"]);
                let hz = cur.int("the tone's frequency, as in `plays a 440 Hz tone`")?;
                cur.expect("Hz")?;
                cur.expect("tone")?;
                Sound::Tone(hz)
            };
            cur.expect("on")?;
            UserAction::Play {
                sound,
                call: cur.var("the call, like `$call`")?,
            }
        }
        _ => unreachable!("only called when the verb is a user verb"),
    })
}
