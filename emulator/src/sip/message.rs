//! SIP message text: a tolerant parser and a plain renderer.
//!
//! The parser accepts what real SIP servers send, not only what RFC 3261 recommends:
//! header names in any case, compact forms (`v`, `f`, `t`, `i`, `m`, `l`, `c`, `k`, `s`,
//! `e`, …), folded (continuation) lines, bare LF line ends, comma-joined values, and a
//! missing `Content-Length` over UDP. It never panics: garbage is an `Err`.

use std::fmt;

/// Largest message accepted; a TCP peer that sends more without a blank line is broken.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The first line of a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { status: u16, reason: String },
}

/// One header line, with its name as written (lookups ignore case and compact forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A parsed or to-be-rendered SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: String,
}

/// Why some bytes are not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    BadStartLine(String),
    BadHeader(String),
    BadContentLength(String),
    /// `Content-Length` promises more body than arrived.
    Truncated {
        expected: usize,
        got: usize,
    },
    TooLarge,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "empty message"),
            ParseError::BadStartLine(line) => write!(f, "not a SIP start line: {line:?}"),
            ParseError::BadHeader(line) => write!(f, "not a SIP header line: {line:?}"),
            ParseError::BadContentLength(v) => write!(f, "bad Content-Length: {v:?}"),
            ParseError::Truncated { expected, got } => {
                write!(f, "body has {got} bytes, Content-Length says {expected}")
            }
            ParseError::TooLarge => write!(f, "message larger than {MAX_MESSAGE_LEN} bytes"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The lowercase full name of a header, expanding compact forms (RFC 3261 §7.3.3 and the
/// extensions that define one).
pub fn canonical_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let full = match lower.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        "o" => "event",
        "r" => "refer-to",
        "b" => "referred-by",
        "u" => "allow-events",
        "x" => "session-expires",
        _ => return lower,
    };
    full.to_owned()
}

impl SipMessage {
    pub fn request(method: &str, uri: &str) -> SipMessage {
        SipMessage {
            start: StartLine::Request {
                method: method.to_owned(),
                uri: uri.to_owned(),
            },
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn response(status: u16, reason: &str) -> SipMessage {
        SipMessage {
            start: StartLine::Response {
                status,
                reason: reason.to_owned(),
            },
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Appends a header (builder style).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> SipMessage {
        self.push(name, value);
        self
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.to_owned(),
            value: value.into(),
        });
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header, by any spelling of its name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every header line with this name, in order, values as written.
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let wanted = canonical_name(name);
        self.headers
            .iter()
            .filter(move |h| canonical_name(&h.name) == wanted)
            .map(|h| h.value.as_str())
    }

    /// Every value of a list header (Via, Route, Record-Route, Contact, Allow, …), whether
    /// sent as several lines or comma-joined on one line.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers_named(name).flat_map(split_list).collect()
    }

    /// `(number, method)` of the CSeq header.
    pub fn cseq(&self) -> Option<(u32, String)> {
        let value = self.header("cseq")?;
        let mut parts = value.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        let method = parts.next()?.to_ascii_uppercase();
        Some((number, method))
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    /// The `branch` parameter of the topmost Via.
    pub fn top_via_branch(&self) -> Option<&str> {
        let via = *self.header_values("via").first()?;
        header_param(via, "branch")
    }

    /// The message as sent on the wire. A `Content-Length` is added when the headers carry
    /// none, so every rendered message frames correctly over TCP.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.push_str(&format!("{method} {uri} SIP/2.0\r\n"))
            }
            StartLine::Response { status, reason } => {
                out.push_str(&format!("SIP/2.0 {status} {reason}\r\n"))
            }
        }
        for h in &self.headers {
            out.push_str(&h.name);
            out.push_str(": ");
            out.push_str(&h.value);
            out.push_str("\r\n");
        }
        if self.header("content-length").is_none() {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out
    }

    /// Parses one whole message (a UDP datagram, or a frame cut by [`frame_len`]).
    /// Leading blank lines (keep-alives) are skipped. Without a `Content-Length`, the body
    /// is everything after the blank line.
    pub fn parse(input: &[u8]) -> Result<SipMessage, ParseError> {
        let input = skip_keepalive(input);
        if input.is_empty() {
            return Err(ParseError::Empty);
        }
        if input.len() > MAX_MESSAGE_LEN {
            return Err(ParseError::TooLarge);
        }
        let (head_len, body_start) = head_end(input).unwrap_or((input.len(), input.len()));
        let head = String::from_utf8_lossy(&input[..head_len]);
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let first = lines.next().unwrap_or_default();
        let start = parse_start_line(first)?;
        let headers = parse_headers(lines)?;
        let rest = &input[body_start..];
        let body_bytes = match content_length(&headers)? {
            Some(len) if len > rest.len() => {
                return Err(ParseError::Truncated {
                    expected: len,
                    got: rest.len(),
                })
            }
            Some(len) => &rest[..len],
            None => rest,
        };
        Ok(SipMessage {
            start,
            headers,
            body: String::from_utf8_lossy(body_bytes).into_owned(),
        })
    }
}

impl fmt::Display for SipMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Drops CR/LF keep-alives in front of a message.
pub fn skip_keepalive(input: &[u8]) -> &[u8] {
    let skip = input
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    &input[skip..]
}

/// TCP framing: the length of the first complete message in `buf` (which must not start
/// with keep-alive CR/LFs; see [`skip_keepalive`]), `None` if more bytes are needed.
/// A missing `Content-Length` means an empty body, as RFC 3261 §18.3 requires on streams.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let Some((head_len, body_start)) = head_end(buf) else {
        return if buf.len() > MAX_MESSAGE_LEN {
            Err(ParseError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..head_len]);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    lines.next();
    let headers = parse_headers(lines)?;
    let total = body_start + content_length(&headers)?.unwrap_or(0);
    if total > MAX_MESSAGE_LEN {
        return Err(ParseError::TooLarge);
    }
    Ok((buf.len() >= total).then_some(total))
}

/// `(length of the head without its final empty line, offset of the body)`.
fn head_end(input: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'\n' {
            // A blank line is "\n\n" or "\n\r\n".
            if input.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if input.get(i + 1) == Some(&b'\r') && input.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::BadStartLine(line.chars().take(200).collect());
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().ok_or_else(bad)?;
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(bad());
        }
        let code = parts.next().ok_or_else(bad)?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let status: u16 = code.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&status) {
            return Err(bad());
        }
        let reason = parts.next().unwrap_or("").trim().to_owned();
        return Ok(StartLine::Response { status, reason });
    }
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") || !method.bytes().all(is_token_byte) {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
    })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Header>, ParseError> {
    let mut headers: Vec<Header> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folding: the line continues the previous header's value.
            let Some(last) = headers.last_mut() else {
                return Err(ParseError::BadHeader(line.to_owned()));
            };
            let more = line.trim();
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::BadHeader(line.chars().take(200).collect()));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::BadHeader(line.chars().take(200).collect()));
        }
        headers.push(Header {
            name: name.to_owned(),
            value: value.trim().to_owned(),
        });
    }
    Ok(headers)
}

fn content_length(headers: &[Header]) -> Result<Option<usize>, ParseError> {
    let Some(h) = headers
        .iter()
        .find(|h| canonical_name(&h.name) == "content-length")
    else {
        return Ok(None);
    };
    h.value
        .trim()
        .parse::<usize>()
        .map(Some)
        .map_err(|_| ParseError::BadContentLength(h.value.clone()))
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, ch) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The byte range of the part of a From/To/Contact/Via value that carries header
/// parameters: after the `>` of a name-addr, else after the first `;`.
fn params_part(value: &str) -> &str {
    let mut quoted = false;
    let mut open = None;
    for (i, ch) in value.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted && open.is_none() => open = Some(i),
            '>' if !quoted && open.is_some() => return &value[i + 1..],
            _ => {}
        }
    }
    if open.is_some() {
        return "";
    }
    value.find(';').map_or("", |i| &value[i..])
}

/// A header parameter (`tag`, `branch`, `received`, …); `Some("")` for a flag like `rport`.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    params_part(value).split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The URI of a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`) or addr-spec (`sip:a@b;tag=1`).
pub fn uri_of(value: &str) -> &str {
    let mut quoted = false;
    for (i, ch) in value.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => {
                let rest = &value[i + 1..];
                return rest.find('>').map_or(rest, |end| &rest[..end]).trim();
            }
            _ => {}
        }
    }
    value.split(';').next().unwrap_or("").trim()
}

/// A response to `request` with the headers RFC 3261 §8.2.6.2 copies (Via, From, To,
/// Call-ID, CSeq). `to_tag` is added to To when the request's To has none.
pub fn response_to(request: &SipMessage, status: u16, reason: &str, to_tag: &str) -> SipMessage {
    let mut resp = SipMessage::response(status, reason);
    for via in request.headers_named("via") {
        resp.push("Via", via);
    }
    if let Some(from) = request.header("from") {
        resp.push("From", from);
    }
    if let Some(to) = request.header("to") {
        if header_param(to, "tag").is_some() || to_tag.is_empty() {
            resp.push("To", to);
        } else {
            resp.push("To", format!("{to};tag={to_tag}"));
        }
    }
    if let Some(call_id) = request.call_id() {
        resp.push("Call-ID", call_id);
    }
    if let Some(cseq) = request.header("cseq") {
        resp.push("CSeq", cseq);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RESPONSE_180: &str = "SIP/2.0 180 Ringing\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKabc;rport=5062\r\n\
        From: \"16315551234\" <sip:+16315551234@wa.meta.vc>;tag=aaa\r\n\
        To: <sip:+15550783881@pbx.example.com>;tag=bbb\r\n\
        Call-ID: outgoing:wacid.X\r\n\
        CSeq: 2824 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_a_response_and_its_dialog_fields() {
        let msg = SipMessage::parse(RESPONSE_180.as_bytes()).unwrap();
        assert_eq!(msg.status(), Some(180));
        assert_eq!(
            msg.start,
            StartLine::Response {
                status: 180,
                reason: "Ringing".into()
            }
        );
        assert_eq!(msg.cseq(), Some((2824, "INVITE".into())));
        assert_eq!(msg.call_id(), Some("outgoing:wacid.X"));
        assert_eq!(msg.top_via_branch(), Some("z9hG4bKabc"));
        assert_eq!(header_param(msg.header("to").unwrap(), "tag"), Some("bbb"));
        assert_eq!(msg.body, "");
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let raw = "SIP/2.0 200 OK\r\nCALL-ID: a\r\ncseq: 1 invite\r\nvIa: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        let msg = SipMessage::parse(raw.as_bytes()).unwrap();
        assert_eq!(msg.header("Call-ID"), Some("a"));
        assert_eq!(msg.header("call-id"), Some("a"));
        assert_eq!(msg.cseq(), Some((1, "INVITE".into())));
        assert_eq!(msg.top_via_branch(), Some("z9hG4bK1"));
    }

    #[test]
    fn compact_forms_are_the_same_headers() {
        let raw = "SIP/2.0 200 OK\r\n\
            v: SIP/2.0/TCP h:5060;branch=z9hG4bKc\r\n\
            f: <sip:a@b>;tag=1\r\n\
            t: <sip:c@d>;tag=2\r\n\
            i: call-1\r\n\
            m: <sip:e@f:5070>\r\n\
            c: application/sdp\r\n\
            k: timer\r\n\
            s: hello\r\n\
            e: gzip\r\n\
            l: 4\r\n\r\nv=0\r\n";
        let msg = SipMessage::parse(raw.as_bytes()).unwrap();
        assert_eq!(msg.top_via_branch(), Some("z9hG4bKc"));
        assert_eq!(header_param(msg.header("From").unwrap(), "tag"), Some("1"));
        assert_eq!(header_param(msg.header("To").unwrap(), "tag"), Some("2"));
        assert_eq!(msg.call_id(), Some("call-1"));
        assert_eq!(uri_of(msg.header("Contact").unwrap()), "sip:e@f:5070");
        assert_eq!(msg.header("Content-Type"), Some("application/sdp"));
        assert_eq!(msg.header("Supported"), Some("timer"));
        assert_eq!(msg.header("Subject"), Some("hello"));
        assert_eq!(msg.header("Content-Encoding"), Some("gzip"));
        // l: 4 cuts the body after "v=0\r" even though more bytes follow.
        assert_eq!(msg.body, "v=0\r");
    }

    #[test]
    fn folded_lines_continue_the_header_value() {
        let raw = "SIP/2.0 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Digest realm=\"wa.meta.vc\",\r\n \
            nonce=\"n1\",\r\n\t  qop=\"auth\"\r\n\
            Subject: one\r\n  two\r\n\r\n";
        let msg = SipMessage::parse(raw.as_bytes()).unwrap();
        assert_eq!(
            msg.header("proxy-authenticate"),
            Some("Digest realm=\"wa.meta.vc\", nonce=\"n1\", qop=\"auth\"")
        );
        assert_eq!(msg.header("subject"), Some("one two"));
    }

    #[test]
    fn a_continuation_line_before_any_header_is_an_error() {
        let raw = "SIP/2.0 200 OK\r\n  orphan\r\n\r\n";
        assert!(matches!(
            SipMessage::parse(raw.as_bytes()),
            Err(ParseError::BadHeader(_))
        ));
    }

    #[test]
    fn multiple_values_come_from_repeated_lines_and_commas() {
        let raw = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
            Via: SIP/2.0/UDP c;branch=z9hG4bK3\r\n\
            Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\n\
            Record-Route: <sip:p3;lr>\r\n\
            Contact: \"Smith, J\" <sip:j@h>\r\n\r\n";
        let msg = SipMessage::parse(raw.as_bytes()).unwrap();
        let vias = msg.header_values("via");
        assert_eq!(vias.len(), 3);
        assert_eq!(header_param(vias[2], "branch"), Some("z9hG4bK3"));
        assert_eq!(msg.top_via_branch(), Some("z9hG4bK1"));
        assert_eq!(
            msg.header_values("record-route"),
            vec!["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
        );
        // The comma inside the quoted display name does not split.
        assert_eq!(msg.header_values("contact"), vec!["\"Smith, J\" <sip:j@h>"]);
    }

    #[test]
    fn parses_requests_with_bare_lf_and_a_body() {
        let raw = "BYE sip:+16315551234@127.0.0.1:5062;transport=udp SIP/2.0\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\n\
            Call-ID: outgoing:wacid.X\n\
            CSeq: 2 BYE\n\
            Content-Length: 3\n\nabc";
        let msg = SipMessage::parse(raw.as_bytes()).unwrap();
        assert_eq!(msg.method(), Some("BYE"));
        assert_eq!(
            msg.start,
            StartLine::Request {
                method: "BYE".into(),
                uri: "sip:+16315551234@127.0.0.1:5062;transport=udp".into()
            }
        );
        assert_eq!(msg.body, "abc");
    }

    #[test]
    fn udp_message_without_content_length_takes_the_rest_as_body() {
        let raw = "SIP/2.0 200 OK\r\nCall-ID: a\r\n\r\nv=0\r\n";
        assert_eq!(SipMessage::parse(raw.as_bytes()).unwrap().body, "v=0\r\n");
        let no_blank_line = "SIP/2.0 100 Trying\r\nCall-ID: a\r\n";
        assert_eq!(
            SipMessage::parse(no_blank_line.as_bytes())
                .unwrap()
                .call_id(),
            Some("a")
        );
    }

    #[test]
    fn rejects_garbage() {
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b"hello world",
            b"SIP/2.0 abc OK\r\n\r\n",
            b"SIP/2.0 99 Low\r\n\r\n",
            b"SIP/3.0 200 OK\r\n\r\n",
            b"INVITE sip:a SIP/1.0\r\n\r\n",
            b"INV ITE sip:a SIP/2.0\r\n\r\n",
            b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n",
            b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"\xff\xfe\x00\x01",
        ] {
            assert!(SipMessage::parse(raw).is_err(), "{raw:?} parsed");
        }
    }

    #[test]
    fn frames_a_tcp_stream() {
        let one = "SIP/2.0 100 Trying\r\nCall-ID: a\r\nContent-Length: 0\r\n\r\n";
        let two = "SIP/2.0 200 OK\r\nCall-ID: a\r\nl: 5\r\n\r\nv=0\r\n";
        let stream = format!("{one}{two}");
        let bytes = stream.as_bytes();
        assert_eq!(frame_len(bytes).unwrap(), Some(one.len()));
        let rest = &bytes[one.len()..];
        assert_eq!(frame_len(rest).unwrap(), Some(two.len()));
        // A partial body is not a frame yet.
        assert_eq!(frame_len(&rest[..rest.len() - 1]).unwrap(), None);
        assert_eq!(frame_len(&bytes[..10]).unwrap(), None);
        assert_eq!(skip_keepalive(b"\r\n\r\nSIP"), b"SIP");
        assert!(frame_len(&vec![b'a'; MAX_MESSAGE_LEN + 1]).is_err());
    }

    #[test]
    fn header_params_and_uris() {
        let from = "\"16315551234\" <sip:+16315551234@wa.meta.vc;transport=tls>;tag=abc;x=\"q\"";
        assert_eq!(header_param(from, "tag"), Some("abc"));
        assert_eq!(header_param(from, "TAG"), Some("abc"));
        assert_eq!(header_param(from, "x"), Some("q"));
        // A parameter inside the URI is not a header parameter.
        assert_eq!(header_param(from, "transport"), None);
        assert_eq!(uri_of(from), "sip:+16315551234@wa.meta.vc;transport=tls");
        assert_eq!(uri_of("sip:a@b;tag=1"), "sip:a@b");
        assert_eq!(header_param("sip:a@b;tag=1", "tag"), Some("1"));
        let via = "SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK77";
        assert_eq!(header_param(via, "rport"), Some(""));
        assert_eq!(header_param(via, "branch"), Some("z9hG4bK77"));
        assert_eq!(header_param("<sip:a@b;tag=1", "tag"), None);
    }

    #[test]
    fn response_to_copies_the_transaction_headers() {
        let bye = SipMessage::request("BYE", "sip:x@y")
            .with("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")
            .with("v", "SIP/2.0/UDP b;branch=z9hG4bK2")
            .with("From", "<sip:biz@h>;tag=s")
            .with("To", "<sip:user@h>")
            .with("Call-ID", "c")
            .with("CSeq", "7 BYE");
        let ok = response_to(&bye, 200, "OK", "mine");
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.header_values("via").len(), 2);
        assert_eq!(ok.header("to"), Some("<sip:user@h>;tag=mine"));
        assert_eq!(ok.cseq(), Some((7, "BYE".into())));
        let rendered = ok.render();
        assert!(rendered.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(rendered.ends_with("Content-Length: 0\r\n\r\n"));
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9-]{0,15}".prop_filter("not a length header", |n| {
            canonical_name(n) != "content-length"
        })
    }

    fn value() -> impl Strategy<Value = String> {
        // Printable text without CR/LF, trimmed as the parser trims it.
        "[ -~]{0,40}".prop_map(|v| v.trim().to_owned())
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(
            is_request in any::<bool>(),
            method in "[A-Z]{3,9}",
            uri in "sip:[a-z0-9+]{1,10}@[a-z0-9.]{1,12}(:[0-9]{1,5})?",
            status in 100u16..700,
            reason in "[A-Za-z][A-Za-z ]{0,20}",
            headers in prop::collection::vec((token(), value()), 0..12),
            body in "[ -~\r\n]{0,200}",
        ) {
            let mut msg = if is_request {
                SipMessage::request(&method, &uri)
            } else {
                SipMessage::response(status, reason.trim())
            };
            for (n, v) in &headers {
                msg.push(n, v.clone());
            }
            msg.body = body.clone();
            let parsed = SipMessage::parse(msg.render().as_bytes()).unwrap();
            prop_assert_eq!(&parsed.start, &msg.start);
            prop_assert_eq!(&parsed.body, &body);
            prop_assert_eq!(&parsed.headers[..headers.len()], &msg.headers[..]);
            let length = body.len().to_string();
            prop_assert_eq!(parsed.header("content-length"), Some(length.as_str()));
            // The TCP framer cuts exactly this message out of a longer stream.
            let mut stream = msg.render().into_bytes();
            let len = stream.len();
            stream.extend_from_slice(b"SIP/2.0 100 Trying\r\n");
            prop_assert_eq!(frame_len(&stream).unwrap(), Some(len));
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = SipMessage::parse(&bytes);
            let _ = frame_len(&bytes);
        }

        #[test]
        fn parsing_sip_like_text_never_panics(text in "(SIP/2.0 [0-9]{3} [A-Za-z]*|[A-Z]+ sip:[a-z@.]* SIP/2.0)(\r?\n[ \t]?[A-Za-z-]{0,8}:?[ -~]{0,20}){0,8}(\r?\n){0,2}[ -~]{0,20}") {
            if let Ok(msg) = SipMessage::parse(text.as_bytes()) {
                let _ = msg.cseq();
                let _ = msg.top_via_branch();
                let _ = msg.header_values("via");
                for h in &msg.headers {
                    let _ = header_param(&h.value, "tag");
                    let _ = uri_of(&h.value);
                }
            }
        }
    }
}
