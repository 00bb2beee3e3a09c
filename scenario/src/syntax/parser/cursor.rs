//! The cursor over one line's tokens, and what every step family shares: reading a
//! name, a string, a `$var`, a duration, a number, JSON or a list of keys; "expected X, found Y" errors
//! with a did-you-mean; the end-of-line check; clauses given at most once; a method and
//! a path (`business requests …`, `expect the app to request …`).

use crate::diagnostic::{closest, Diagnostic, Span};
use crate::syntax::ast::*;
use crate::syntax::duration::parse_duration;
use crate::syntax::lexer::{Tok, Token};

pub(super) type PResult<T> = Result<T, Diagnostic>;

/// One line's tokens and how far the parse has read.
pub(super) struct Cur<'a> {
    pub(super) toks: &'a [Token],
    pub(super) pos: usize,
}

impl<'a> Cur<'a> {
    pub(super) fn new(toks: &'a [Token]) -> Cur<'a> {
        Cur { toks, pos: 0 }
    }

    pub(super) fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos)
    }

    pub(super) fn peek_word(&self) -> Option<&'a str> {
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    pub(super) fn bump(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// Where "found the end of the line" points: just after the last token.
    pub(super) fn here(&self) -> Span {
        match self.peek() {
            Some(t) => t.span,
            None => {
                let end = self.toks.last().map(|t| t.span.end).unwrap_or(0);
                Span::new(end, end)
            }
        }
    }

    pub(super) fn found(&self) -> String {
        self.peek()
            .map(|t| t.tok.describe())
            .unwrap_or_else(|| "the end of the line".into())
    }

    /// "expected X, found Y", with a did-you-mean when the found word is a near miss.
    pub(super) fn expected(&self, what: &str, options: &[&str]) -> Diagnostic {
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

    pub(super) fn eat(&mut self, word: &str) -> Option<Span> {
        if self.peek_word() == Some(word) {
            self.bump().map(|t| t.span)
        } else {
            None
        }
    }

    pub(super) fn eat_any(&mut self, words: &[&str]) -> Option<Span> {
        words.iter().find_map(|w| self.eat(w))
    }

    pub(super) fn expect(&mut self, word: &str) -> PResult<Span> {
        self.eat(word)
            .ok_or_else(|| self.expected(&format!("`{word}`"), &[word]))
    }

    pub(super) fn name(&mut self, what: &str) -> PResult<Name> {
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

    pub(super) fn text(&mut self, what: &str) -> PResult<Text> {
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
    pub(super) fn text_or_number(&mut self, what: &str) -> PResult<Text> {
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

    pub(super) fn var(&mut self, what: &str) -> PResult<Var> {
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

    pub(super) fn dur(&mut self, what: &str) -> PResult<Dur> {
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

    pub(super) fn int(&mut self, what: &str) -> PResult<Int> {
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

    pub(super) fn json(&mut self, what: &str) -> PResult<Json> {
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

    /// After `without`: `key, "other key", …`, keys bare or quoted.
    pub(super) fn keys(&mut self) -> PResult<Vec<Text>> {
        let mut keys = Vec::new();
        loop {
            let key =
                match self.peek() {
                    Some(Token {
                        tok: Tok::Word(w),
                        span,
                    }) => {
                        self.pos += 1;
                        Text {
                            value: w.clone(),
                            span: *span,
                        }
                    }
                    Some(Token {
                        tok: Tok::Str(_), ..
                    }) => self.text("a key")?,
                    _ => return Err(self.expected("a key that must be absent", &[]).help(
                        "list keys after `without`, like `without cta_payload, deeplink_payload`",
                    )),
                };
            keys.push(key);
            if self.peek().map(|t| &t.tok) == Some(&Tok::Comma) {
                self.bump();
            } else {
                return Ok(keys);
            }
        }
    }

    /// An optional trailing `as $name`.
    pub(super) fn bind(&mut self) -> PResult<Option<Var>> {
        if self.eat("as").is_some() {
            Ok(Some(self.var("a `$name` after `as`")?))
        } else {
            Ok(None)
        }
    }

    pub(super) fn finish(&self) -> PResult<()> {
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
pub(super) fn once<T>(slot: &mut Option<T>, value: T, clause: &str, span: Span) -> PResult<()> {
    if slot.is_some() {
        return Err(
            Diagnostic::new(format!("`{clause}` is given twice"), span, "second time")
                .help(format!("keep one `{clause}`")),
        );
    }
    *slot = Some(value);
    Ok(())
}

/// `GET /path`: after `business requests` and `expect the app to request`.
pub(super) fn method_and_path(cur: &mut Cur) -> PResult<(Name, Text)> {
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
