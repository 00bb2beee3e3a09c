//! Source text, spans, and diagnostics rendered like rustc.
//!
//! Every parse or check problem becomes a [`Diagnostic`] with a span into the
//! [`Source`]; all of a file's problems are collected and rendered together so a test
//! author fixes them in one pass instead of one per run.

use std::fmt::Write as _;

/// A byte range in a [`Source`].
///
/// Spans are provenance, not meaning: two syntax trees that say the same thing are equal
/// whatever their positions, so `PartialEq` ignores the offsets. That is what lets the
/// printer/parser round-trip test compare a generated tree with its reparse.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Span {}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A scenario file's text with a line index, for `file:line:col` positions.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and 1-based column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.text[start..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map(|&e| e - 1)
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches('\r')
    }

    /// `name:line:col` of a byte offset.
    pub fn position(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        format!("{}:{}:{}", self.name, line, col)
    }
}

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
    /// Short text printed beside the caret.
    pub label: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Renders like rustc:
    ///
    /// ```text
    /// error: unknown user `bob`
    ///  --> tests/invalid/unknown-user.scn:3:1
    ///   |
    /// 3 | bob taps $msg
    ///   | ^^^ not declared
    ///   |
    ///   = help: declare it first: `user bob is android 2.25.30`
    /// ```
    pub fn render(&self, src: &Source) -> String {
        let (line, col) = src.line_col(self.span.start);
        let text = src.line_text(line);
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        // The caret covers the span's characters on its first line, at least one.
        let line_start_byte = src.text[..self.span.start]
            .rfind('\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let line_end_byte = line_start_byte + text.len();
        let caret_end = self.span.end.min(line_end_byte).max(self.span.start);
        let width = src.text[self.span.start..caret_end].chars().count().max(1);
        let indent: String = text
            .chars()
            .take(col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let _ = writeln!(out, "{pad}--> {}:{}:{}", src.name, line, col);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {text}");
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!(" {}", self.label)
        };
        let _ = writeln!(out, "{pad} | {indent}{}{label}", "^".repeat(width));
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out
    }
}

/// Renders a file's diagnostics one after the other, with a closing count.
pub fn render_all(diagnostics: &[Diagnostic], src: &Source) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(src));
        out.push('\n');
    }
    let n = diagnostics.len();
    let _ = writeln!(
        out,
        "error: {} has {} error{}",
        src.name,
        n,
        if n == 1 { "" } else { "s" }
    );
    out
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = Source::new("x.scn", "a\nüü bob\n");
        assert_eq!(src.line_col(0), (1, 1));
        let bob = src.text.find("bob").unwrap();
        assert_eq!(src.line_col(bob), (2, 4));
        assert_eq!(src.line_text(2), "üü bob");
    }

    #[test]
    fn render_puts_the_caret_under_the_span() {
        let src = Source::new("f.scn", "user alice is android\nbob taps $m\n");
        let start = src.text.find("bob").unwrap();
        let d = Diagnostic::new(
            "unknown user `bob`",
            Span::new(start, start + 3),
            "not declared",
        )
        .help("declare it first");
        assert_eq!(
            d.render(&src),
            "error: unknown user `bob`\n --> f.scn:2:1\n  |\n2 | bob taps $m\n  | ^^^ not declared\n  |\n  = help: declare it first\n"
        );
    }

    #[test]
    fn closest_suggests_only_near_misses() {
        assert_eq!(closest("advence", &["advance", "expect"]), Some("advance"));
        assert_eq!(closest("zzz", &["advance", "expect"]), None);
    }
}
