//! JSON written inside a scenario, with `$name` allowed wherever a value goes, times
//! on the emulator's clock (`now + 7d`), and repeated strings (`"x" * 513`, also in step
//! arguments).
//!
//! A small hand parser instead of serde_json because patterns carry variables
//! (`{"context": {"id": $msg}}`) and errors need spans into the scenario file.

use super::ast::Var;
use super::duration::{format_duration, parse_duration};
use crate::diagnostic::{Diagnostic, Span};
use serde_json::{Map, Number, Value};

/// A JSON value that may hold variables.
#[derive(Clone, Debug, PartialEq)]
pub enum Pat {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Arr(Vec<Pat>),
    Obj(Vec<(String, Pat)>),
    Var(Var),
    /// `now`, `now + 7d`, `now - 1h30m`: the emulator's clock when the step runs, in Unix
    /// seconds, moved by `offset_ms` (the sum of the offsets written).
    Now(ClockValue),
}

/// A time on the emulator's clock written in JSON: `now` and an offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockValue {
    pub offset_ms: i64,
    /// The whole expression, for diagnostics.
    pub span: Span,
}

impl ClockValue {
    /// Canonical text: `now`, `now + 7d`, `now - 1h`.
    pub fn print(&self) -> String {
        match self.offset_ms {
            0 => "now".into(),
            o if o > 0 => format!("now + {}", format_duration(o.unsigned_abs())),
            o => format!("now - {}", format_duration(o.unsigned_abs())),
        }
    }

    /// The Unix second it names when the clock reads `now_secs`.
    pub fn at(&self, now_secs: i64) -> i64 {
        now_secs.saturating_add(self.offset_ms.div_euclid(1000))
    }
}

impl Pat {
    /// Every variable used, in order of appearance.
    pub fn vars(&self) -> Vec<&Var> {
        let mut out = Vec::new();
        self.collect_vars(&mut out);
        out
    }

    fn collect_vars<'a>(&'a self, out: &mut Vec<&'a Var>) {
        match self {
            Pat::Var(v) => out.push(v),
            Pat::Arr(items) => items.iter().for_each(|p| p.collect_vars(out)),
            Pat::Obj(fields) => fields.iter().for_each(|(_, p)| p.collect_vars(out)),
            _ => {}
        }
    }

    /// Every clock value used, in order of appearance.
    pub fn clock_values(&self) -> Vec<&ClockValue> {
        let mut out = Vec::new();
        self.collect_clock_values(&mut out);
        out
    }

    fn collect_clock_values<'a>(&'a self, out: &mut Vec<&'a ClockValue>) {
        match self {
            Pat::Now(c) => out.push(c),
            Pat::Arr(items) => items.iter().for_each(|p| p.collect_clock_values(out)),
            Pat::Obj(fields) => fields.iter().for_each(|(_, p)| p.collect_clock_values(out)),
            _ => {}
        }
    }

    /// The JSON value with variables replaced by their bound strings. A pattern with
    /// `now` needs the clock: see [`Pat::to_value_at`].
    pub fn to_value(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
        self.to_value_at(lookup, None)
    }

    /// The JSON value with variables replaced by their bound strings and `now + …` by
    /// the Unix second it names (an integer) when the clock reads `now_secs`.
    pub fn to_value_at(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        now_secs: Option<i64>,
    ) -> Result<Value, String> {
        Ok(match self {
            Pat::Null => Value::Null,
            Pat::Bool(b) => Value::Bool(*b),
            Pat::Num(n) => Value::Number(n.clone()),
            Pat::Str(s) => Value::String(s.clone()),
            Pat::Arr(items) => Value::Array(
                items
                    .iter()
                    .map(|p| p.to_value_at(lookup, now_secs))
                    .collect::<Result<_, _>>()?,
            ),
            Pat::Obj(fields) => {
                let mut map = Map::new();
                for (k, p) in fields {
                    map.insert(k.clone(), p.to_value_at(lookup, now_secs)?);
                }
                Value::Object(map)
            }
            Pat::Var(v) => {
                Value::String(lookup(&v.name).ok_or_else(|| format!("`${}` is not bound", v.name))?)
            }
            Pat::Now(c) => {
                let now = now_secs.ok_or_else(|| {
                    format!(
                        "`{}` needs the emulator's clock, which was not read",
                        c.print()
                    )
                })?;
                Value::from(c.at(now))
            }
        })
    }

    /// Canonical text: `{"a": 1, "b": [true, $x]}`.
    pub fn print(&self) -> String {
        match self {
            Pat::Null => "null".into(),
            Pat::Bool(b) => b.to_string(),
            Pat::Num(n) => n.to_string(),
            Pat::Str(s) => print_string(s),
            Pat::Arr(items) => format!(
                "[{}]",
                items.iter().map(Pat::print).collect::<Vec<_>>().join(", ")
            ),
            Pat::Obj(fields) => format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|(k, v)| format!("{}: {}", quote(k), v.print()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Pat::Var(v) => format!("${}", v.name),
            Pat::Now(c) => c.print(),
        }
    }
}

/// A string as a JSON (and scenario) string literal, ASCII control characters escaped.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialise")
}

/// Strings at least this long that are one short piece repeated print as `"x" * 513`.
const PRINT_AS_REPEAT_FROM: usize = 32;
/// The longest piece a printed repetition uses.
const LONGEST_REPEATED_PIECE: usize = 8;

/// A string as the printer writes it: a literal, or `"x" * 513` when it is one short
/// piece (up to 8 characters) repeated to 32 characters or more, as limit tests write
/// them. Either form reads back as the same string.
pub fn print_string(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n >= PRINT_AS_REPEAT_FROM {
        for p in 1..=LONGEST_REPEATED_PIECE.min(n / 2) {
            if n.is_multiple_of(p) && (p..n).all(|i| chars[i] == chars[i % p]) {
                let piece: String = chars[..p].iter().collect();
                return format!("{} * {}", quote(&piece), n / p);
            }
        }
    }
    quote(s)
}

/// The most a repeated string may grow to, in bytes: far beyond any Graph limit (the
/// emulator refuses bodies over 4 MiB), small enough to keep a typo from eating memory.
pub const MAX_REPEATED_BYTES: usize = 16 << 20;

/// After a string literal that ended at `end`: an optional `* N` (spaces or tabs around
/// the `*`, on the same line), which repeats the string N times. Returns the string and
/// the offset just past what was read.
pub fn scan_repeat(
    text: &str,
    start: usize,
    s: String,
    end: usize,
) -> Result<(String, usize), Diagnostic> {
    let blank = |from: usize| {
        from + text[from..]
            .bytes()
            .take_while(|b| *b == b' ' || *b == b'\t')
            .count()
    };
    let star = blank(end);
    if text.as_bytes().get(star) != Some(&b'*') {
        return Ok((s, end));
    }
    let at = blank(star + 1);
    let help = "repeat a string with a whole number after `*`, like \"x\" * 513";
    if !text[at..].starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Diagnostic::new(
            "expected how many times to repeat the string after `*`",
            Span::new(star, star + 1),
            "expected a count after this",
        )
        .help(help));
    }
    let len: usize = text[at..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '_')
        .map(char::len_utf8)
        .sum();
    let word = &text[at..at + len];
    let times: usize = word.parse().map_err(|_| {
        Diagnostic::new(
            format!("`{word}` is not a whole number"),
            Span::new(at, at + len),
            "not a count",
        )
        .help(help)
    })?;
    if s.len().saturating_mul(times) > MAX_REPEATED_BYTES {
        return Err(Diagnostic::new(
            format!(
                "repeating this string {times} times makes more than {} MiB",
                MAX_REPEATED_BYTES >> 20
            ),
            Span::new(start, at + len),
            "too long",
        )
        .help("limits of the Graph API are far below this; check the count"));
    }
    Ok((s.repeat(times), at + len))
}

/// Reads a `"…"` literal starting at `start` (which must hold `"`), with JSON escapes.
/// Returns the value and the offset just past the closing quote.
pub fn scan_string(text: &str, start: usize) -> Result<(String, usize), Diagnostic> {
    let bytes = text.as_bytes();
    debug_assert_eq!(bytes[start], b'"');
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(c) = text[i..].chars().next() else {
            return Err(unterminated(start, i));
        };
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return Err(unterminated(start, i)),
            '\\' => {
                let esc_start = i;
                i += 1;
                let Some(e) = text[i..].chars().next() else {
                    return Err(unterminated(start, i));
                };
                i += e.len_utf8();
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let (ch, next) = scan_unicode_escape(text, esc_start)?;
                        out.push(ch);
                        i = next;
                    }
                    other => {
                        return Err(Diagnostic::new(
                            format!("unknown escape `\\{other}` in a string"),
                            Span::new(esc_start, i),
                            "not an escape",
                        )
                        .help("strings use JSON escapes: \\\" \\\\ \\n \\t \\uXXXX"))
                    }
                }
            }
            c => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
}

fn scan_unicode_escape(text: &str, esc_start: usize) -> Result<(char, usize), Diagnostic> {
    let hex4 = |at: usize| -> Option<u32> {
        let h = text.get(at..at + 4)?;
        if h.chars().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(h, 16).ok()
        } else {
            None
        }
    };
    let bad = |end: usize| {
        Diagnostic::new(
            "invalid `\\u` escape",
            Span::new(esc_start, end.min(text.len())),
            "expected four hex digits naming a character",
        )
    };
    let first = hex4(esc_start + 2).ok_or_else(|| bad(esc_start + 6))?;
    let mut next = esc_start + 6;
    let code = if (0xD800..0xDC00).contains(&first) {
        // A surrogate pair spells one character outside the basic plane.
        if text.get(next..next + 2) != Some("\\u") {
            return Err(bad(next));
        }
        let second = hex4(next + 2).ok_or_else(|| bad(next + 6))?;
        if !(0xDC00..0xE000).contains(&second) {
            return Err(bad(next + 6));
        }
        next += 6;
        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
    } else {
        first
    };
    char::from_u32(code)
        .map(|c| (c, next))
        .ok_or_else(|| bad(next))
}

fn unterminated(start: usize, at: usize) -> Diagnostic {
    Diagnostic::new(
        "unterminated string",
        Span::new(start, at.max(start + 1)),
        "this string has no closing `\"`",
    )
    .help("close the string on the same line with `\"`")
}

/// Parses a JSON pattern starting at `start` (`{` or `[`), possibly across lines.
/// Returns the pattern and the offset just past it.
pub fn parse_json(text: &str, start: usize) -> Result<(Pat, usize), Diagnostic> {
    let mut p = JsonParser { text, pos: start };
    match p.value(0) {
        Ok(pat) => Ok((pat, p.pos)),
        // Running off the end of the file means a bracket was never closed; the
        // opening one is the useful place to point at.
        Err(_) if text[p.pos..].trim().is_empty() => {
            let open = &text[start..start + 1];
            let close = if open == "{" { "}" } else { "]" };
            Err(Diagnostic::new(
                format!("this `{open}` is never closed"),
                Span::new(start, start + 1),
                format!("no matching `{close}` before the end of the file"),
            )
            .help(format!(
                "JSON may run over several lines, but must end with `{close}`"
            )))
        }
        Err(e) => Err(e),
    }
}

struct JsonParser<'a> {
    text: &'a str,
    pos: usize,
}

/// Deeper nesting than any scenario needs; the guard keeps hostile input from
/// overflowing the stack.
const MAX_DEPTH: usize = 64;

impl JsonParser<'_> {
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn error_here(&self, message: &str, label: &str) -> Diagnostic {
        let end = self
            .peek()
            .map(|c| self.pos + c.len_utf8())
            .unwrap_or(self.pos);
        Diagnostic::new(message, Span::new(self.pos, end), label)
    }

    fn value(&mut self, depth: usize) -> Result<Pat, Diagnostic> {
        if depth > MAX_DEPTH {
            return Err(self.error_here("JSON nested too deeply", "too deep"));
        }
        self.skip_ws();
        match self.peek() {
            Some('{') => self.object(depth),
            Some('[') => self.array(depth),
            Some('"') => {
                let start = self.pos;
                let (s, end) = scan_string(self.text, start)?;
                let (s, end) = scan_repeat(self.text, start, s, end)?;
                self.pos = end;
                Ok(Pat::Str(s))
            }
            Some('$') => {
                let start = self.pos;
                self.pos += 1;
                let len: usize = self.text[self.pos..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .map(char::len_utf8)
                    .sum();
                if len == 0 {
                    return Err(Diagnostic::new(
                        "`$` must be followed by a name",
                        Span::new(start, start + 1),
                        "expected a variable name",
                    ));
                }
                self.pos += len;
                Ok(Pat::Var(Var {
                    name: self.text[start + 1..self.pos].to_string(),
                    span: Span::new(start, self.pos),
                }))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_alphabetic() => {
                let start = self.pos;
                let len: usize = self.text[self.pos..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric())
                    .map(char::len_utf8)
                    .sum();
                self.pos += len;
                match &self.text[start..self.pos] {
                    "true" => Ok(Pat::Bool(true)),
                    "false" => Ok(Pat::Bool(false)),
                    "null" => Ok(Pat::Null),
                    "now" => self.clock_value(start),
                    word => Err(Diagnostic::new(
                        format!("`{word}` is not a JSON value"),
                        Span::new(start, self.pos),
                        "not a JSON value",
                    )
                    .help("quote strings (\"…\"); bare words allowed are true, false, null and now (`now + 7d`)")),
                }
            }
            None => Err(self.error_here("JSON ends too early", "expected a value")),
            Some(_) => Err(self.error_here("expected a JSON value", "expected a value")),
        }
    }

    /// After `now` (which started at `start`): any number of `+ D` / `- D` offsets.
    fn clock_value(&mut self, start: usize) -> Result<Pat, Diagnostic> {
        let mut offset_ms: i64 = 0;
        loop {
            let before = self.pos;
            self.skip_ws();
            let sign: i64 = match self.peek() {
                Some('+') => 1,
                Some('-') => -1,
                _ => {
                    self.pos = before;
                    break;
                }
            };
            let op = self.pos;
            self.pos += 1;
            self.skip_ws();
            let at = self.pos;
            let len: usize = self.text[at..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .map(char::len_utf8)
                .sum();
            let help = "write `now`, `now + 7d` or `now - 1h30m`: a duration after `+` or `-`";
            if len == 0 {
                return Err(Diagnostic::new(
                    "expected a duration after `now +` or `now -`",
                    Span::new(op, op + 1),
                    "expected a duration like 7d",
                )
                .help(help));
            }
            self.pos = at + len;
            let word = &self.text[at..self.pos];
            let ms = parse_duration(word).map_err(|e| {
                Diagnostic::new(
                    format!("bad duration: {}", e.0),
                    Span::new(at, self.pos),
                    "not a duration",
                )
                .help(help)
            })?;
            offset_ms = i64::try_from(ms)
                .ok()
                .and_then(|ms| offset_ms.checked_add(sign * ms))
                .ok_or_else(|| {
                    Diagnostic::new(
                        "this time is too far from now",
                        Span::new(start, self.pos),
                        "too far",
                    )
                })?;
        }
        Ok(Pat::Now(ClockValue {
            offset_ms,
            span: Span::new(start, self.pos),
        }))
    }

    fn number(&mut self) -> Result<Pat, Diagnostic> {
        let start = self.pos;
        let len: usize = self.text[self.pos..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
            .count();
        self.pos += len;
        let text = &self.text[start..self.pos];
        let bad = || {
            Diagnostic::new(
                format!("`{text}` is not a JSON number"),
                Span::new(start, self.pos),
                "not a number",
            )
        };
        // Shape check by serde_json; floats then re-parsed by the standard library,
        // which rounds correctly, so printed numbers read back to the same value.
        let shaped = serde_json::from_str::<Number>(text).map_err(|_| bad())?;
        if shaped.is_f64() {
            let f: f64 = text.parse().map_err(|_| bad())?;
            Number::from_f64(f).map(Pat::Num).ok_or_else(bad)
        } else {
            Ok(Pat::Num(shaped))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Pat, Diagnostic> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(']') {
            self.pos += 1;
            return Ok(Pat::Arr(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    return Ok(Pat::Arr(items));
                }
                _ => {
                    return Err(self
                        .error_here("expected `,` or `]` in a JSON array", "expected `,` or `]`"))
                }
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Pat, Diagnostic> {
        self.pos += 1;
        let mut fields: Vec<(String, Pat)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some('}') {
            self.pos += 1;
            return Ok(Pat::Obj(fields));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some('"') {
                return Err(self
                    .error_here(
                        "expected a quoted key in a JSON object",
                        "expected `\"key\"`",
                    )
                    .help("JSON keys are quoted: {\"cta_payload\": \"x\"}"));
            }
            let key_start = self.pos;
            let (key, end) = scan_string(self.text, self.pos)?;
            self.pos = end;
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(Diagnostic::new(
                    format!("key `{key}` appears twice"),
                    Span::new(key_start, end),
                    "duplicate key",
                ));
            }
            self.skip_ws();
            if self.peek() != Some(':') {
                return Err(self.error_here("expected `:` after a JSON key", "expected `:`"));
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            fields.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {
                    self.pos += 1;
                    return Ok(Pat::Obj(fields));
                }
                _ => {
                    return Err(self.error_here(
                        "expected `,` or `}` in a JSON object",
                        "expected `,` or `}`",
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pat, Diagnostic> {
        parse_json(text, 0).map(|(p, _)| p)
    }

    #[test]
    fn parses_nested_json_with_variables() {
        let p = parse(r#"{"a": [1, -2.5e3, true, null], "id": $call, "s": "\u00e9\n"}"#).unwrap();
        assert_eq!(
            p.print(),
            r#"{"a": [1, -2500.0, true, null], "id": $call, "s": "é\n"}"#
        );
        assert_eq!(p.vars().len(), 1);
    }

    #[test]
    fn substitutes_bound_variables() {
        let p = parse(r#"{"id": $call}"#).unwrap();
        let v = p
            .to_value(&|n| (n == "call").then(|| "wacid.X".to_string()))
            .unwrap();
        assert_eq!(v, serde_json::json!({"id": "wacid.X"}));
        assert!(p.to_value(&|_| None).is_err());
    }

    #[test]
    fn reports_unquoted_keys_and_bare_words() {
        assert!(parse("{a: 1}").unwrap_err().message.contains("quoted key"));
        assert!(parse(r#"{"a": yes}"#)
            .unwrap_err()
            .message
            .contains("`yes`"));
        assert!(parse(r#"{"a": 1"#)
            .unwrap_err()
            .message
            .contains("never closed"));
        assert!(parse(r#"{"a": 1 2}"#)
            .unwrap_err()
            .message
            .contains("`,` or `}`"));
        assert!(parse(r#"{"a": 1, "a": 2}"#)
            .unwrap_err()
            .message
            .contains("twice"));
    }

    #[test]
    fn now_takes_offsets_and_prints_them_as_one() {
        let p = parse(r#"{"a": now + 7d, "b": [now, now - 1h30m], "c": now + 1d - 1h}"#).unwrap();
        assert_eq!(
            p.print(),
            r#"{"a": now + 7d, "b": [now, now - 1h30m], "c": now + 23h}"#
        );
        assert_eq!(p.clock_values().len(), 4);
        let v = p.to_value_at(&|_| None, Some(1_000)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 605_800, "b": [1_000, -4_400], "c": 83_800})
        );
        assert!(p.to_value(&|_| None).unwrap_err().contains("clock"));
        assert!(parse(r#"{"a": now +}"#)
            .unwrap_err()
            .message
            .contains("expected a duration"));
        assert!(parse(r#"{"a": now + 7x}"#)
            .unwrap_err()
            .message
            .contains("bad duration"));
    }

    #[test]
    fn strings_repeat_with_a_count_and_print_back_that_way() {
        let p = parse(r#"{"payload": "x" * 513, "short": "ab" *3, "none": "y" * 0}"#).unwrap();
        let Pat::Obj(fields) = &p else { panic!() };
        assert_eq!(fields[0].1, Pat::Str("x".repeat(513)));
        assert_eq!(fields[1].1, Pat::Str("ababab".into()));
        assert_eq!(fields[2].1, Pat::Str(String::new()));
        assert_eq!(
            p.print(),
            r#"{"payload": "x" * 513, "short": "ababab", "none": ""}"#
        );
        assert_eq!(print_string(&"é\n".repeat(40)), r#""é\n" * 40"#);
        assert_eq!(print_string(&"abc".repeat(10)), quote(&"abc".repeat(10)));
        assert!(parse(r#"["x" * ]"#)
            .unwrap_err()
            .message
            .contains("how many times"));
        assert!(parse(r#"["x" * 2.5]"#)
            .unwrap_err()
            .message
            .contains("not a whole number"));
        assert!(parse(r#"["x" * 99999999999]"#)
            .unwrap_err()
            .message
            .contains("MiB"));
    }

    #[test]
    fn surrogate_pairs_decode_to_one_character() {
        assert_eq!(
            parse(r#"["\ud83d\ude00"]"#).unwrap(),
            Pat::Arr(vec![Pat::Str("😀".into())])
        );
    }
}
