//! Turns scenario text into tokens with spans. Newlines end steps, except inside JSON,
//! which may run over several lines.

use super::json::{parse_json, print_string, scan_repeat, scan_string, Pat};
use crate::diagnostic::{Diagnostic, Span};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A bare word: keywords, user names, fields, events (`pre-accepts`, `calls`).
    Word(String),
    /// `$name`
    Var(String),
    /// `"…"`, or `"…" * N`: the string repeated N times.
    Str(String),
    /// Starts with a digit: `200`, `2.25.30`, `30s`, `1h30m`.
    Num(String),
    /// Starts with `/`: a Graph path such as `/messages`.
    Path(String),
    /// `{…}` or `[…]`
    Json(Pat),
    Comma,
    Newline,
    /// Stands where a token could not be read; its line has a diagnostic already.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Tok {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Var(v) => format!("`${v}`"),
            Tok::Str(s) => format!("the string {}", print_string(s)),
            Tok::Num(n) => format!("`{n}`"),
            Tok::Path(p) => format!("`{p}`"),
            Tok::Json(_) => "JSON".into(),
            Tok::Comma => "`,`".into(),
            Tok::Newline => "the end of the line".into(),
            Tok::Error => "an unreadable token".into(),
        }
    }
}

pub fn lex(text: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut tokens = Vec::new();
    let mut diags = Vec::new();
    let mut pos = 0;
    let skip_line = |from: usize| {
        text[from..]
            .find('\n')
            .map(|i| from + i)
            .unwrap_or(text.len())
    };
    while let Some(c) = text[pos..].chars().next() {
        let start = pos;
        match c {
            '\n' => {
                tokens.push(Token {
                    tok: Tok::Newline,
                    span: Span::new(start, start + 1),
                });
                pos += 1;
            }
            c if c.is_whitespace() => pos += c.len_utf8(),
            '#' => pos = skip_line(pos),
            ',' => {
                tokens.push(Token {
                    tok: Tok::Comma,
                    span: Span::new(start, start + 1),
                });
                pos += 1;
            }
            '"' => match scan_string(text, pos).and_then(|(s, end)| scan_repeat(text, pos, s, end))
            {
                Ok((s, end)) => {
                    tokens.push(Token {
                        tok: Tok::Str(s),
                        span: Span::new(start, end),
                    });
                    pos = end;
                }
                Err(d) => {
                    diags.push(d);
                    tokens.push(Token {
                        tok: Tok::Error,
                        span: Span::new(start, start + 1),
                    });
                    pos = skip_line(pos);
                }
            },
            '{' | '[' => match parse_json(text, pos) {
                Ok((pat, end)) => {
                    tokens.push(Token {
                        tok: Tok::Json(pat),
                        span: Span::new(start, end),
                    });
                    pos = end;
                }
                Err(d) => {
                    // Resume after the line the error is on, so later steps still get checked.
                    let resume = skip_line(d.span.start.max(pos));
                    diags.push(d);
                    tokens.push(Token {
                        tok: Tok::Error,
                        span: Span::new(start, start + 1),
                    });
                    pos = resume;
                }
            },
            '$' => {
                let len = word_len(&text[pos + 1..], false);
                if len == 0 {
                    diags.push(
                        Diagnostic::new(
                            "`$` must be followed by a name",
                            Span::new(start, start + 1),
                            "expected a name",
                        )
                        .help("variables look like `$call` or `$first_message`"),
                    );
                    tokens.push(Token {
                        tok: Tok::Error,
                        span: Span::new(start, start + 1),
                    });
                    pos += 1;
                } else {
                    let end = pos + 1 + len;
                    tokens.push(Token {
                        tok: Tok::Var(text[pos + 1..end].to_string()),
                        span: Span::new(start, end),
                    });
                    pos = end;
                }
            }
            '/' => {
                let len: usize = text[pos..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '{' && *c != '#')
                    .map(char::len_utf8)
                    .sum();
                let end = pos + len;
                tokens.push(Token {
                    tok: Tok::Path(text[pos..end].to_string()),
                    span: Span::new(start, end),
                });
                pos = end;
            }
            c if c.is_ascii_digit() => {
                let len: usize = text[pos..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                    .map(char::len_utf8)
                    .sum();
                let end = pos + len;
                tokens.push(Token {
                    tok: Tok::Num(text[pos..end].to_string()),
                    span: Span::new(start, end),
                });
                pos = end;
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = pos + word_len(&text[pos..], true);
                tokens.push(Token {
                    tok: Tok::Word(text[pos..end].to_string()),
                    span: Span::new(start, end),
                });
                pos = end;
            }
            other => {
                diags.push(
                    Diagnostic::new(
                        format!("unexpected character `{other}`"),
                        Span::new(start, start + other.len_utf8()),
                        "not part of any step",
                    )
                    .help("text goes in double quotes; comments start with `#`"),
                );
                tokens.push(Token {
                    tok: Tok::Error,
                    span: Span::new(start, start + other.len_utf8()),
                });
                pos += other.len_utf8();
            }
        }
    }
    (tokens, diags)
}

/// Length in bytes of the word at the start of `s`. Words may contain `-` (as in
/// `pre-accepts`) but variables may not, so `$a-b` stays a variable and a dash.
fn word_len(s: &str, allow_dash: bool) -> usize {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || (allow_dash && *c == '-'))
        .map(char::len_utf8)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let (t, d) = lex(text);
        assert!(d.is_empty(), "{d:?}");
        t.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_a_step_with_every_kind_of_token() {
        assert_eq!(
            toks("business requests POST /messages {\"a\": $x} # why\nadvance 2h"),
            vec![
                Tok::Word("business".into()),
                Tok::Word("requests".into()),
                Tok::Word("POST".into()),
                Tok::Path("/messages".into()),
                Tok::Json(Pat::Obj(vec![(
                    "a".into(),
                    Pat::Var(super::super::ast::Var {
                        name: "x".into(),
                        span: Span::default()
                    })
                )])),
                Tok::Newline,
                Tok::Word("advance".into()),
                Tok::Num("2h".into()),
            ]
        );
    }

    #[test]
    fn json_may_span_lines() {
        let t = toks("business updates settings {\n  \"calling\": {}\n}\nadvance 1s");
        assert_eq!(t.iter().filter(|t| **t == Tok::Newline).count(), 1);
    }

    #[test]
    fn a_string_times_a_count_is_one_repeated_string() {
        assert_eq!(
            toks("alice says \"ab\" * 3 # three times\nalice says \"x\"*2"),
            vec![
                Tok::Word("alice".into()),
                Tok::Word("says".into()),
                Tok::Str("ababab".into()),
                Tok::Newline,
                Tok::Word("alice".into()),
                Tok::Word("says".into()),
                Tok::Str("xx".into()),
            ]
        );
        // The count is on the same line: a `*` on the next one is not part of it.
        let (_, d) = lex("alice says \"x\"\n* 2");
        assert!(d[0].message.contains("unexpected character `*`"), "{d:?}");
    }

    #[test]
    fn bad_input_becomes_a_diagnostic_and_the_next_line_still_lexes() {
        let (t, d) = lex("alice says \"hi\nadvance 1s");
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("unterminated"));
        assert!(t.iter().any(|t| t.tok == Tok::Word("advance".into())));
    }
}
